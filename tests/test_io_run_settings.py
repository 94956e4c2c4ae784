"""Corrupt or incomplete run settings (planners.json, config.json) name the file and the key."""

import dataclasses
import json

import pytest

from agents import a2c
from agents.common import cli
from experiments import io
from planners import checkpoints, gbp, shaping
from world_models import dynamics


def _planner_settings():
    return {
        "action_mode": "continuous",
        "obs_dim": 4,
        "dynamics": dataclasses.asdict(dynamics.DynamicsConfig()),
        "gbp": dataclasses.asdict(gbp.GBPConfig()),
        "gbp_true": dataclasses.asdict(gbp.GBPConfig()),
        "barrier": dataclasses.asdict(shaping.BarrierConfig(weight=0.0)),
        "distill_hidden": [8],
        "a2c": None,
    }


def _write_planners(run_dir, settings):
    io.write_json(run_dir / checkpoints.SETTINGS, settings)
    return run_dir


def test_valid_planner_settings_still_load(tmp_path):
    run_dir = _write_planners(tmp_path, _planner_settings())
    assert isinstance(checkpoints.load_policy(run_dir, "gbp-true"), checkpoints.HostPolicy)


def test_truncated_planner_settings_name_the_file(tmp_path):
    text = json.dumps(_planner_settings())
    (tmp_path / checkpoints.SETTINGS).write_text(text[: len(text) // 2])
    with pytest.raises(io.CheckpointError, match=r"planners\.json"):
        checkpoints.load_policy(tmp_path, "gbp-true")


def test_planner_settings_missing_a_key_name_the_file_and_key(tmp_path):
    settings = _planner_settings()
    del settings["gbp_true"]
    run_dir = _write_planners(tmp_path, settings)
    with pytest.raises(io.CheckpointError, match=r"planners\.json: missing key 'gbp_true'"):
        checkpoints.load_policy(run_dir, "gbp-true")


@pytest.mark.parametrize(("policy", "entry"), [("gbp-true", "gbp_true"), ("gbp", "dynamics"),
                                               ("gbp", "barrier")])  # fmt: skip
def test_planner_settings_with_an_unknown_field_name_the_file_and_field(tmp_path, policy, entry):
    settings = _planner_settings()
    settings[entry]["learning_rat"] = 0.1
    run_dir = _write_planners(tmp_path, settings)
    with pytest.raises(io.CheckpointError, match=rf"planners\.json: '{entry}'.*'learning_rat'"):
        checkpoints.load_policy(run_dir, policy)


def _write_run_config(run_dir, saved):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(saved if isinstance(saved, str) else json.dumps(saved))
    return ["--resume", str(run_dir)]


def _saved_run(**config):
    saved = {"algorithm": "a2c", "env": "CartPole-v1", "path": "host", "seed": 3}
    return {**saved, "config": io.to_jsonable(a2c.A2CConfig(**config))}


def test_resume_defaults_come_from_config_json(tmp_path):
    argv = _write_run_config(tmp_path, _saved_run(total_steps=123))
    defaults = cli._defaults(a2c.A2CConfig, argv)
    assert defaults.config == a2c.A2CConfig(total_steps=123)
    assert (defaults.env, defaults.seed, defaults.host) == ("CartPole-v1", 3, True)


def _bad_run_configs():
    text = json.dumps(_saved_run())
    unknown = _saved_run()
    unknown["config"]["clip_epsilon"] = 0.2
    missing = {k: v for k, v in _saved_run().items() if k != "config"}
    return {
        "truncated": (text[: len(text) // 2], "config.json"),
        "missing": (missing, r"config\.json: missing key 'config'"),
        "unknown": (unknown, r"config\.json: 'config'.*unknown fields \['clip_epsilon'\]"),
    }


@pytest.mark.parametrize("case", ["truncated", "missing", "unknown"])
def test_bad_config_json_on_resume_names_the_file(tmp_path, case):
    saved, pattern = _bad_run_configs()[case]
    argv = _write_run_config(tmp_path / "run", saved)
    with pytest.raises(io.CheckpointError, match=pattern):
        cli._defaults(a2c.A2CConfig, argv)
    with pytest.raises(SystemExit, match=r"--resume.*config\.json"):
        cli.main(a2c.A2C, a2c.A2CConfig, argv)
