"""Several seeds at once (agents.common.seeds): the same runs as one seed at a time, one folder."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

from agents import a2c, evaluate
from agents.a2c import a2c as a2c_impl
from agents.common import cli
from agents.common.policy import load_policy
from agents.common.results import CHECKPOINT, PARAMS
from agents.common.seeds import group_metrics, train_seeds
from agents.common.stats import t_quantile_975
from agents.common.train import train
from experiments import io
from experiments import runs as runs_lib
from tests.test_agents_toy_env import ToyVectorEnv, make_toy_env

CONFIG = a2c.A2CConfig(total_steps=480, num_envs=16, n_steps=5, log_every_steps=160)


def test_each_seed_trains_as_it_would_alone_and_gets_its_own_folder(tmp_path):
    env = make_toy_env("discrete", max_steps=10)
    runs = train_seeds(a2c_impl.A2C, CONFIG, env, [3, 5], run_dir=tmp_path / "g", progress=False)
    alone = train(a2c_impl.A2C, CONFIG, env, jax.random.key(5), progress=False)
    assert [r.run_dir.name for r in runs] == ["seed3", "seed5"]
    assert runs[1].env_steps == alone.env_steps == 480
    # vmapped kernels may round differently from single ones: same run up to float rounding
    for x, y in zip(jax.tree.leaves(runs[1].params), jax.tree.leaves(alone.params), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert not np.allclose(jax.tree.leaves(runs[0].params)[0], jax.tree.leaves(alone.params)[0])
    for a, b in zip(runs[1].metrics, alone.metrics, strict=True):
        np.testing.assert_allclose(a["mean_return"], b["mean_return"], rtol=1e-4)
    # each seed's folder is a run of its own; the group's folder holds the one checkpoint
    group = tmp_path / "g"
    assert (group / CHECKPOINT).exists() and not (group / PARAMS).exists()
    assert not (group / "seed5" / CHECKPOINT).exists()
    saved = io.read_json(group / "seed5" / "config.json")
    assert (saved["seed"], saved["path"]) == (5, "device")
    loaded = a2c.load_params(CONFIG, env, group / "seed5")
    for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(runs[1].params), strict=True):
        np.testing.assert_array_equal(x, y)
    rows = io.read_csv(group / "metrics.csv")
    assert [int(r["env_steps"]) for r in rows] == [160, 320, 480]
    last = [float(rows[-1][f"mean_return_seed{s}"]) for s in (3, 5)]
    assert float(rows[-1]["mean_return"]) == pytest.approx(np.mean(last))
    with pytest.raises(io.CheckpointError, match="holds 2 seeds trained together; load one"):
        load_policy(group, env)
    with pytest.raises(io.CheckpointError, match=f"seed's folder: {group}/seed3, {group}/seed5"):
        runs_lib.describe(group)  # what experiments.render --run reads
    assert runs_lib.describe(group / "seed3").policies == ("a2c",)


def test_a_resumed_group_continues_exactly(tmp_path):
    env = make_toy_env("discrete", max_steps=10)
    full = train_seeds(a2c_impl.A2C, CONFIG, env, [0, 1], run_dir=tmp_path / "full",
                       progress=False)  # fmt: skip
    half = dataclasses.replace(CONFIG, total_steps=320)
    train_seeds(a2c_impl.A2C, half, env, [0, 1], run_dir=tmp_path / "split", progress=False)
    resumed = train_seeds(a2c_impl.A2C, CONFIG, env, [0, 1], run_dir=tmp_path / "split",
                          resume=True, progress=False)  # fmt: skip
    for a, b in zip(full, resumed, strict=True):
        assert [r["env_steps"] for r in b.metrics] == [160, 320, 480]
        for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params), strict=True):
            np.testing.assert_array_equal(x, y)
    split_rows = io.read_csv(tmp_path / "split" / "seed1" / "metrics.csv")
    assert [int(r["env_steps"]) for r in split_rows] == [160, 320, 480]
    with pytest.raises(io.RunFolderError, match="already holds a run"):
        train_seeds(a2c_impl.A2C, CONFIG, env, [0, 1], run_dir=tmp_path / "full", progress=False)


def test_group_metrics_by_hand():
    rows = [{"env_steps": 10, "wall_time": 1.0, "mean_return": r} for r in (1.0, math.nan, 3.0)]
    row = group_metrics([0, 1, 2], rows)
    half = t_quantile_975(1) * np.std([1.0, 3.0], ddof=1) / np.sqrt(2)
    assert row["mean_return"] == 2.0  # seed 1 finished no episode in the chunk
    assert row["ci95_low"] == pytest.approx(2.0 - half)
    assert math.isnan(row["mean_return_seed1"]) and row["mean_return_seed2"] == 3.0


def test_bad_requests_are_refused(tmp_path):
    env = make_toy_env("discrete", max_steps=10)
    with pytest.raises(ValueError, match="distinct"):
        train_seeds(a2c_impl.A2C, CONFIG, env, [1, 1], progress=False)
    with pytest.raises(TypeError, match="train one --seed at a time"):
        train_seeds(a2c_impl.A2C, CONFIG, ToyVectorEnv(env, 16), [0, 1], progress=False)
    root = ["--results-dir", str(tmp_path), "--total-steps", "160", "--log-every-steps", "160"]
    with pytest.raises(SystemExit, match="--host turns off"):
        cli.main(a2c_impl.A2C, a2c.A2CConfig, [*root, "--num-seeds", "2", "--host"])
    with pytest.raises(SystemExit, match="--num-seeds must be >= 1, got 0"):
        cli.main(a2c_impl.A2C, a2c.A2CConfig, [*root, "--num-seeds", "0"])
    assert not (tmp_path / "a2c").exists()  # refused before any run folder was made
    run = cli.main(a2c_impl.A2C, a2c.A2CConfig, [*root, "--num-seeds", "2", "--run-name", "g"])
    assert io.read_json(run / "config.json")["seeds"] == [0, 1]
    # agents.evaluate on the group plays each seed's folder and adds the mean over seeds
    settings = {"episodes": 3, "timing_repeats": 1}
    out = evaluate.main(evaluate.Config(run, **settings), log=lambda _: None)
    alone = [evaluate.evaluate_run(run / f"seed{s}", evaluate.Config(run, **settings))
             for s in (0, 1)]  # fmt: skip
    assert [r["returns"] for r in out["runs"]] == [r["returns"] for r in alone]
    means = [r["mean_return"] for r in alone]
    assert out["over_seeds"]["mean_return"] == pytest.approx(np.mean(means))
    assert out["over_seeds"]["ci95_low"] <= np.mean(means) <= out["over_seeds"]["ci95_high"]
    with pytest.raises(SystemExit, match="trains 2 seed\\(s\\), not 3"):
        cli.main(a2c_impl.A2C, a2c.A2CConfig, ["--resume", str(run), "--num-seeds", "3"])
