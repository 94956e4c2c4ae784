"""A2C and PPO training: learning on small tasks, host = device updates, results folder, resume."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import a2c, evaluate, ppo
from agents.a2c import a2c as a2c_impl
from agents.common import cli
from agents.common.evaluate import evaluate_host, evaluate_jax
from agents.common.loop import init_train_state, run_updates
from agents.common.results import CHECKPOINT
from agents.common.train import HostPath, make_run_learner, train
from envs.jax_env import make_jax_env
from experiments import io
from tests.test_agents_toy_env import ToyVectorEnv, make_toy_env

# Random play on the toy env returns about 1 (discrete and hybrid; measured in
# test_agents_common.py); the optimum is max_steps = 10.
RANDOM_TOY_RETURN = 1.0
TINY_A2C = a2c.A2CConfig(total_steps=16_000, num_envs=16, n_steps=5, log_every_steps=4_000)


def test_a2c_device_path_trains_seeds_in_one_jit_and_beats_random():
    env = make_toy_env("discrete", max_steps=10)
    train_fn = a2c.make_train_fn(TINY_A2C, env)
    states, metrics = jax.jit(jax.vmap(train_fn))(jax.random.split(jax.random.key(0), 2))
    assert metrics["policy_loss"].shape == (2, TINY_A2C.num_updates)
    assert int(states.env_steps[0]) == TINY_A2C.num_updates * TINY_A2C.steps_per_update
    # Both seeds: training returns of the last 20 updates (stochastic policy) beat random.
    recent = metrics["return_sum"][:, -20:].sum(1) / metrics["episodes"][:, -20:].sum(1)
    assert np.all(recent > RANDOM_TOY_RETURN + 4.0), recent
    assert not np.allclose(metrics["policy_loss"][0], metrics["policy_loss"][1])
    params = jax.tree.map(lambda x: x[0], states.params)
    result = evaluate_jax(env, a2c.make_policy(TINY_A2C, env, params), 200, jax.random.key(2))
    assert result.mean > RANDOM_TOY_RETURN + 5.0, result.mean


def test_ppo_device_path_learns_hybrid_actions():
    env = make_toy_env("hybrid", max_steps=10)
    config = ppo.PPOConfig(total_steps=24_576, n_steps=32, batch_size=128, n_epochs=4,
                           log_every_steps=8_192, learning_rate=1e-3)  # fmt: skip
    result = ppo.train(config, env, jax.random.key(0), progress=False)
    assert len(result.metrics) == 3 and result.env_steps == 24_576
    trained = evaluate_jax(env, ppo.make_policy(config, env, result.params), 200, jax.random.key(2))
    assert trained.mean > RANDOM_TOY_RETURN + 5.0, trained.mean


def test_host_and_device_paths_give_the_same_updates():
    env = make_toy_env("discrete", max_steps=4, random_start=False)
    config = dataclasses.replace(TINY_A2C, num_envs=4)
    learner = make_run_learner(a2c.A2C, config, env)
    key = jax.random.key(3)
    device = jax.jit(lambda k: run_updates(learner, env, init_train_state(learner, env, k), 3))
    device, _ = device(key)
    host_path = HostPath(learner, ToyVectorEnv(env, 4))
    host, metrics = host_path.run(host_path.init(key), 3)
    assert metrics["policy_loss"].shape == (3,)
    leaves = zip(jax.tree.leaves(device.params), jax.tree.leaves(host.params), strict=True)
    for d, h in leaves:
        np.testing.assert_allclose(d, h, rtol=1e-5, atol=1e-6)
    assert int(device.env_steps) == int(host.env_steps) == 3 * config.steps_per_update


def test_host_path_compiles_nothing_after_its_first_chunk():
    # Every per-step and per-update call is jitted once; chunks of other lengths must not compile
    # again (the metrics used to be stacked with jnp.stack, which compiled per chunk length).
    env = make_toy_env("discrete", max_steps=4)
    config = dataclasses.replace(TINY_A2C, num_envs=4)
    host_path = HostPath(make_run_learner(a2c.A2C, config, env), ToyVectorEnv(env, 4))
    state, _ = host_path.run(host_path.init(jax.random.key(0)), 2)
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        state, metrics = host_path.run(state, 3)
        host_path.run(state, 5)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    assert isinstance(metrics["policy_loss"], np.ndarray) and metrics["episodes"].shape == (3,)
    assert int(state.env_steps) == 5 * config.steps_per_update


def test_resume_continues_the_same_curve_and_refuses_other_configs(tmp_path):
    env = make_toy_env("discrete", max_steps=10)
    config = dataclasses.replace(TINY_A2C, total_steps=480, log_every_steps=160)
    traces = []

    def counted_update(*args):
        traces.append(1)  # runs only while jax traces the update
        return a2c_impl.update(*args)

    counted = a2c_impl.A2C._replace(update=counted_update)
    full = train(counted, config, env, jax.random.key(0), run_dir=tmp_path / "full", progress=False)
    assert len(traces) == 1  # three chunks of 2 updates, one compile
    half = dataclasses.replace(config, total_steps=320)
    a2c.train(half, env, jax.random.key(0), run_dir=tmp_path / "split", progress=False)
    resumed = a2c.train(config, env, jax.random.key(0), run_dir=tmp_path / "split", resume=True,
                        progress=False)  # fmt: skip
    assert full.env_steps == resumed.env_steps == 480
    rows_full = io.read_csv(tmp_path / "full" / "metrics.csv")
    rows_split = io.read_csv(tmp_path / "split" / "metrics.csv")
    assert [int(r["env_steps"]) for r in rows_split] == [160, 320, 480]
    for a, b in zip(rows_full, rows_split, strict=True):
        for column in ("env_steps", "mean_return", "policy_loss", "value_loss"):
            np.testing.assert_allclose(float(a[column]), float(b[column]), rtol=1e-5)
    loaded = a2c.load_params(config, env, tmp_path / "split")
    for x, y in zip(jax.tree.leaves(loaded), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(x, y)
    other = dataclasses.replace(config, learning_rate=1e-3)
    with pytest.raises(io.CheckpointError, match="learning_rate"):
        a2c.train(other, env, jax.random.key(0), run_dir=tmp_path / "split", resume=True)
    with pytest.raises(io.CheckpointError, match="kind"):
        ppo.load_params(ppo.PPOConfig(), env, tmp_path / "split")
    before = (tmp_path / "split" / "metrics.csv").read_bytes()
    with pytest.raises(io.RunFolderError, match="already holds a run"):
        a2c.train(config, env, jax.random.key(1), run_dir=tmp_path / "split", progress=False)
    assert (tmp_path / "split" / "metrics.csv").read_bytes() == before
    (tmp_path / "split" / CHECKPOINT).write_bytes(b"garbage")
    with pytest.raises(io.CheckpointError, match="not a worldplan checkpoint"):
        a2c.train(config, env, jax.random.key(0), run_dir=tmp_path / "split", resume=True)


class NanObsVectorEnv(ToyVectorEnv):
    """The toy vector env, with a NaN observation from sub-env 1 at its third step."""

    def step(self, actions):
        obs, *rest = super().step(actions)
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps == 3:
            obs = obs.copy()
            obs[1, 0] = np.nan
        return (obs, *rest)


def test_nan_from_the_env_or_a_diverged_update_stops_training_without_writing(tmp_path):
    env = make_toy_env("discrete", max_steps=10)
    config = dataclasses.replace(TINY_A2C, num_envs=4, total_steps=40, log_every_steps=20)
    with pytest.raises(ValueError, match=r"non-finite observation .* sub-env\(s\) \[1\]"):
        a2c.train(config, NanObsVectorEnv(env, 4), jax.random.key(0), progress=False)

    def nan_reward_step(key, state, action, params):
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        return obs, state, reward * jnp.nan, terminated, truncated, info

    nan_env = env._replace(step=nan_reward_step)
    with pytest.raises(FloatingPointError, match="diverged by env step 20: the parameters"):
        a2c.train(config, nan_env, jax.random.key(0), run_dir=tmp_path / "nan", progress=False)
    assert not (tmp_path / "nan" / CHECKPOINT).exists()


def test_a2c_cli_host_path_learns_cartpole_and_writes_results(tmp_path):
    argv = ["--env", "CartPole-v1", "--total-steps", "20000", "--log-every-steps", "10000",
            "--results-dir", str(tmp_path), "--run-name", "cp"]  # fmt: skip
    run_dir = cli.main(a2c.A2C, a2c.A2CConfig, argv)
    assert run_dir == tmp_path / "a2c" / "cp"
    for name in ("config.json", "metrics.csv", "learning_curve.png", "checkpoint.ckpt"):
        assert (run_dir / name).stat().st_size > 0, name
    saved = io.read_json(run_dir / "config.json")
    assert saved["env"] == "CartPole-v1" and saved["path"] == "host"
    assert saved["config"]["total_steps"] == 20000
    rows = io.read_csv(run_dir / "metrics.csv")
    assert [int(r["env_steps"]) for r in rows] == [10000, 20000]
    assert {"env_steps", "wall_time", "mean_return"} <= set(rows[0])
    env = gym.make("CartPole-v1")
    config = a2c.A2CConfig(total_steps=20000, log_every_steps=10000)
    params = a2c.load_params(config, env, run_dir)
    act = jax.jit(a2c.make_policy(config, env, params))
    policy = lambda obs: int(act(None, jnp.asarray(obs), None, jax.random.key(0))[0])  # noqa: E731
    trained = evaluate_host(env, policy, 10, seed=100)
    random = evaluate_host(env, lambda obs: env.action_space.sample(), 10, seed=100)
    assert trained.mean > random.mean + 50.0, (trained.mean, random.mean)
    # python -m agents.evaluate plays the same episodes (no JAX core: the host, seeds 100..109)
    out = evaluate.main(evaluate.Config(run_dir, episodes=10, seed=100), log=lambda _: None)
    np.testing.assert_array_equal(out["runs"][0]["returns"], trained.returns)
    assert out["runs"][0]["env_steps_trained"] == 20000
    assert io.read_json(run_dir / "evaluation" / "10ep_seed100.json") == io.to_jsonable(out)
    with pytest.raises(SystemExit, match="already holds a run; continue it with --resume"):
        cli.main(a2c.A2C, a2c.A2CConfig, argv)  # the same --run-name again: nothing overwritten
    assert len(io.read_csv(run_dir / "metrics.csv")) == 2


def test_env_kwargs_reach_the_env_the_run_folder_and_its_reload(tmp_path):
    from agents.common.policy import load_policy

    root = ["--results-dir", str(tmp_path), "--total-steps", "160", "--log-every-steps", "160"]
    discrete = ["--env-kwargs", '{"action_mode": "discrete", "max_steps": 20}']
    for bad, message in (
        ("[1]", "--env-kwargs must be a JSON dict, got '\\[1\\]'"),
        ("{'a': 1}", "--env-kwargs must be a JSON dict"),
        ('{"action_mod": "discrete"}', "unknown SpaceshipParams fields: \\['action_mod'\\]"),
        ('{"action_mode": "discret"}', "action_mode must be one of"),
    ):
        with pytest.raises(SystemExit, match=message):
            cli.main(a2c.A2C, a2c.A2CConfig, [*root, "--env-kwargs", bad])
    assert not (tmp_path / "a2c").exists()  # refused before any run folder was made
    run_dir = cli.main(a2c.A2C, a2c.A2CConfig, [*root, *discrete, "--run-name", "d"])
    saved = io.read_json(run_dir / "config.json")
    assert saved["path"] == "device" and saved["action_space"] == "Discrete(9)"
    assert saved["env_kwargs"] == {"action_mode": "discrete", "max_steps": 20}
    policy = load_policy(run_dir)  # rebuilds the env from the recorded kwargs
    env = gym.make(saved["env"], **saved["env_kwargs"])
    obs, _ = env.reset(seed=0)
    policy.reset()
    assert env.action_space.contains(policy(obs))
    with pytest.raises(SystemExit, match="takes --env-kwargs .*discrete.*drop --env-kwargs"):
        cli.main(a2c.A2C, a2c.A2CConfig, ["--resume", str(run_dir), "--env-kwargs", "{}"])
    resumed = cli.main(a2c.A2C, a2c.A2CConfig, ["--resume", str(run_dir), "--total-steps", "320"])
    assert io.read_json(resumed / "config.json")["env_kwargs"] == saved["env_kwargs"]
    assert [int(r["env_steps"]) for r in io.read_csv(run_dir / "metrics.csv")] == [160, 320]
    # python -m agents.evaluate rebuilds the same JAX env and plays the experiments' rollouts
    out = evaluate.main(evaluate.Config(run_dir, episodes=4, timing_repeats=2), log=print)
    jax_env = make_jax_env(saved["env"], **saved["env_kwargs"])
    config = a2c.A2CConfig(total_steps=320, log_every_steps=160)
    params = a2c.load_params(config, jax_env, run_dir)
    expected = evaluate_jax(jax_env, a2c.make_policy(config, jax_env, params), 4, jax.random.key(0))
    np.testing.assert_array_equal(out["runs"][0]["returns"], expected.returns)
    assert out["runs"][0]["seconds_per_action"] > 0
    assert (run_dir / "evaluation" / "4ep_seed0.json").exists()
    with pytest.raises(SystemExit, match="cannot read run settings"):
        evaluate.cli([str(tmp_path / "nothing")])
