"""The public routes of an agents run: evaluate_host resets, reload in a fresh process, Dict obs.

Each test reproduces an API-audit finding: evaluate_host never called ``policy.reset()``; an
agents run had no public reload (``planners.checkpoints.load_policy`` refuses it) and its
config.json did not name the env unless the caller said so; Dict observations were refused
without saying what to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import a2c, ppo
from agents.common.evaluate import evaluate_host
from experiments import io
from tests.test_agents_toy_env import make_toy_env

ROOT = Path(__file__).resolve().parents[1]
TINY_PPO = ppo.PPOConfig(total_steps=64, num_envs=2, n_steps=16, batch_size=16,
                         n_epochs=1, log_every_steps=64)  # fmt: skip


class _Recorder:
    """A host policy with memory: records its resets and calls, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def reset(self) -> None:
        self.events.append("reset")

    def __call__(self, obs: np.ndarray) -> int:
        self.events.append("act")
        return 0


def test_evaluate_host_resets_the_policy_at_every_episode_start():
    policy = _Recorder()
    result = evaluate_host(gym.make("CartPole-v1"), policy, 3, seed=0)
    starts = [i for i, e in enumerate(policy.events) if e == "reset"]
    assert len(starts) == 3 and starts[0] == 0, policy.events[:3]
    # every episode's actions come after its own reset, none between two resets is missing
    lengths = np.diff(starts + [len(policy.events)]) - 1
    np.testing.assert_array_equal(lengths, result.episode_lengths)
    # a plain function, without reset, still works
    assert evaluate_host(gym.make("CartPole-v1"), lambda obs: 0, 1).episode_lengths[0] > 0


def _actions_in_fresh_process(run_dir: Path, obs_file: Path) -> np.ndarray:
    code = (
        "import json, sys, numpy as np\n"
        "from agents.common.policy import load_policy\n"
        "policy = load_policy(sys.argv[1])\n"
        "policy.reset()\n"
        "print(json.dumps([int(policy(o)) for o in np.load(sys.argv[2])]))\n"
    )
    env = {"JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code, str(run_dir), str(obs_file)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return np.asarray(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_ppo_run_trained_from_python_reloads_in_a_fresh_process(tmp_path):
    vec = gym.make_vec("CartPole-v1", num_envs=2)
    run_dir = tmp_path / "run"
    result = ppo.train(TINY_PPO, vec, jax.random.key(0), run_dir=run_dir, progress=False)
    saved = io.read_json(run_dir / "config.json")
    assert saved["env"] == "CartPole-v1" and "num_envs" not in saved["env_kwargs"]
    obs = np.random.default_rng(0).uniform(-0.2, 0.2, (32, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    act = jax.vmap(ppo.make_policy(TINY_PPO, vec, result.params), (None, 0, None, None))
    expected = np.asarray(act(None, jnp.asarray(obs), None, jax.random.key(0))[0])
    assert 0 < expected.sum() < len(expected)  # both actions occur: the comparison can fail
    reloaded = _actions_in_fresh_process(run_dir, tmp_path / "obs.npy")
    np.testing.assert_array_equal(reloaded, expected)


def test_a_run_on_a_same_step_vector_env_reloads_on_the_single_env(tmp_path):
    from agents.common.policy import load_policy

    # autoreset_mode is the vector entry point's argument: gymnasium.make must not get it.
    mode = {"vectorization_mode": "vector_entry_point", "autoreset_mode": "SameStep"}
    vec = gym.make_vec("worldplan/Spaceship-v0", num_envs=2, **mode)
    ppo.train(TINY_PPO, vec, jax.random.key(0), run_dir=tmp_path / "run", progress=False)
    saved = io.read_json(tmp_path / "run" / "config.json")
    assert saved["env"] == "worldplan/Spaceship-v0" and "autoreset_mode" not in saved["env_kwargs"]
    policy = load_policy(tmp_path / "run")
    obs, _ = gym.make("worldplan/Spaceship-v0").reset(seed=0)
    assert np.asarray(policy(obs)).shape == (2,)


def test_a_jax_env_run_reloads_given_its_env_and_other_folders_say_why(tmp_path):
    from agents.common.policy import load_policy

    env = make_toy_env("continuous", max_steps=5)
    config = a2c.A2CConfig(total_steps=40, num_envs=4, n_steps=5, log_every_steps=40)
    result = a2c.train(config, env, jax.random.key(1), run_dir=tmp_path / "a2c", progress=False)
    with pytest.raises(io.CheckpointError, match="records no env id .*pass env="):
        load_policy(tmp_path / "a2c")
    policy = load_policy(tmp_path / "a2c", env)
    obs = np.array([1.0, 0.2], np.float32)
    expected = a2c.make_policy(config, env, result.params)(None, jnp.asarray(obs), None, None)[0]
    policy.reset()
    np.testing.assert_allclose(policy(obs), np.asarray(expected), rtol=1e-6)
    ship = tmp_path / "ship"
    ship.mkdir()
    io.write_json(ship / "config.json", {"experiment": "spaceship"})
    with pytest.raises(io.CheckpointError, match="planners.checkpoints.load_policy"):
        load_policy(ship)


class _DictObs(gym.Env):
    """Poke-v0's kind of observation (an image and an object table), random, 8 steps."""

    observation_space = gym.spaces.Dict({
        "image": gym.spaces.Box(0, 255, (4, 4, 1), np.uint8),
        "objects": gym.spaces.Box(-1.0, 1.0, (2, 3), np.float32),
    })  # fmt: skip
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), float(action), False, False, {}


if "test/DictObs-v0" not in gym.registry:
    gym.register("test/DictObs-v0", _DictObs, max_episode_steps=8)


def test_dict_observations_are_refused_with_the_flattening_route_which_then_trains(tmp_path):
    from gymnasium.wrappers.vector import FlattenObservation

    vec = gym.make_vec("test/DictObs-v0", num_envs=2)
    with pytest.raises(ValueError, match=r"must be a Box.*got Dict.*wrappers.vector.FlattenObs"):
        ppo.train(TINY_PPO, vec, jax.random.key(0), progress=False)
    from agents.common.policy import load_policy

    flat = FlattenObservation(vec)
    ppo.train(TINY_PPO, flat, jax.random.key(0), run_dir=tmp_path / "flat", progress=False)
    assert io.read_json(tmp_path / "flat" / "config.json")["flatten_observation"] is True
    policy = load_policy(tmp_path / "flat")  # config.json records the flattening
    assert policy(flat.single_observation_space.sample()) in (0, 1)
    policy = load_policy(tmp_path / "flat", flat)
    assert policy(flat.single_observation_space.sample()) in (0, 1)
    # another wrapper is not recorded: reloading says what to pass
    other = gym.wrappers.vector.RecordEpisodeStatistics(flat)  # not FlattenObservation alone
    ppo.train(TINY_PPO, other, jax.random.key(0), run_dir=tmp_path / "other", progress=False)
    with pytest.raises(io.CheckpointError, match="(?s)observation_space.*pass env="):
        load_policy(tmp_path / "other")


def test_the_command_line_flattens_dict_observations_and_every_reload_does_too(tmp_path):
    from agents import evaluate
    from agents.common import cli
    from agents.common.policy import load_policy

    tiny = "--total-steps 64 --num-envs 2 --n-steps 16 --batch-size 16 --n-epochs 1".split()
    argv = ["--env", "test/DictObs-v0", *tiny, "--results-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="Dict observations .*add --flatten-observation"):
        cli.main(ppo.PPO, ppo.PPOConfig, argv)
    assert not (tmp_path / "ppo").exists()  # refused before any run folder was made
    run = cli.main(ppo.PPO, ppo.PPOConfig, [*argv, "--flatten-observation", "--run-name", "f"])
    saved = io.read_json(run / "config.json")
    assert saved["flatten_observation"] is True and saved["observation_space"].startswith("Box")
    obs = gym.make("test/DictObs-v0").observation_space.sample()
    flat = gym.spaces.flatten(gym.make("test/DictObs-v0").observation_space, obs)
    assert load_policy(run)(flat) in (0, 1)
    out = evaluate.main(evaluate.Config(run, episodes=3), log=lambda _: None)
    assert out["runs"][0]["returns"] and out["runs"][0]["mean_episode_length"] == 8
    with pytest.raises(SystemExit, match="flattened observations; drop --flatten-observation"):
        cli.main(ppo.PPO, ppo.PPOConfig, ["--resume", str(run), "--no-flatten-observation"])
