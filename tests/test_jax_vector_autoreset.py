"""SAME_STEP and DISABLED autoreset, and masked resets, of the JAX vector envs.

Each mode is stepped side by side with ``gymnasium.vector.SyncVectorEnv`` over the single envs
(same mode, seeds and actions) and must agree at every step: observations, rewards, flags and
the info dicts (keys, masks, dtypes, values; ``final_obs`` entries to float rounding).
"""

from __future__ import annotations

import dataclasses
import re

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the ids)
from agents import a2c
from envs import jax_vector_steps

SPACESHIP, DRIVING = "worldplan/Spaceship-v0", "worldplan/Driving-v0"
N = 3
# Short episodes: every env truncates at step 8 unless it crashed before (env 0 heads for the
# planet or off the road; a strong thruster makes the spaceship's crash quick).
SINGLE_KWARGS = {SPACESHIP: {"max_steps": 8, "max_thrust": 40.0}, DRIVING: {"max_steps": 8}}
STEP_JITS = {
    AutoresetMode.NEXT_STEP: jax_vector_steps.jit_step_next_step,
    AutoresetMode.SAME_STEP: jax_vector_steps.jit_step_same_step,
    AutoresetMode.DISABLED: jax_vector_steps.jit_step_disabled,
}


def make_pair(env_id, mode, num_envs=N):
    """Our vector env and SyncVectorEnv over the single envs, both in ``mode``."""
    kwargs = SINGLE_KWARGS[env_id]
    ours = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=mode,
        **kwargs,
    )
    sync = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **kwargs)] * num_envs, autoreset_mode=mode
    )
    return ours, sync


def into_trouble(env_id, obs, actions):
    """``actions`` with env 0's replaced: towards the planet's centre, or full left."""
    actions = np.array(actions, np.float32)
    if env_id == SPACESHIP:
        actions[0] = obs[0, 4:6] / np.linalg.norm(obs[0, 4:6])
    else:
        actions[0] = [0.0, 1.0]
    return actions


def assert_same_infos(info, expected):
    assert sorted(info) == sorted(expected)
    for key, value in expected.items():
        if key == "final_info":
            assert_same_infos(info[key], value)
        elif key == "final_obs":
            assert info[key].dtype == object and info[key].shape == value.shape
            for ours, ref in zip(info[key], value, strict=True):
                assert (ours is None) == (ref is None)
                if ref is not None:
                    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)
        else:
            assert info[key].dtype == value.dtype, key
            if value.dtype.kind == "f":
                np.testing.assert_allclose(info[key], value, atol=1e-3, err_msg=key)
            else:
                np.testing.assert_array_equal(info[key], value, err_msg=key)


def assert_same_step(out, expected):
    obs, rewards, terminated, truncated, info = out
    np.testing.assert_allclose(obs, expected[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(rewards, expected[1], atol=1e-3)
    assert rewards.dtype == expected[1].dtype == np.float64
    np.testing.assert_array_equal(terminated, expected[2])
    np.testing.assert_array_equal(truncated, expected[3])
    assert_same_infos(info, expected[4])


def masked_reset_both(ours, sync, mask, seed):
    out = ours.reset(seed=seed, options={"reset_mask": mask})
    expected = sync.reset(seed=seed, options={"reset_mask": mask.copy()})
    np.testing.assert_allclose(out[0], expected[0], rtol=1e-5, atol=1e-5)
    assert out[1] == expected[1] == {}
    return out[0]


@pytest.mark.parametrize(
    ("env_id", "mode"),
    # NEXT_STEP is compared at length in test_spaceship_env.py and test_jax_env.py; here for its
    # masked resets, whose bookkeeping (pending autoresets) is the same for every task.
    [(SPACESHIP, mode) for mode in AutoresetMode]
    + [(DRIVING, AutoresetMode.SAME_STEP), (DRIVING, AutoresetMode.DISABLED)],
)
def test_steps_and_masked_resets_match_sync_vector_env(env_id, mode):
    ours, sync = make_pair(env_id, mode)
    assert ours.metadata["autoreset_mode"] is mode
    obs, info = ours.reset(seed=3)
    expected_obs, expected_info = sync.reset(seed=3)
    np.testing.assert_allclose(obs, expected_obs, rtol=1e-5, atol=1e-5)
    assert info == expected_info == {}
    ours.action_space.seed(0)
    crashes = truncations = partial = refused = cleared = kept = 0
    for t in range(24):
        actions = into_trouble(env_id, obs, ours.action_space.sample())
        out, expected = ours.step(actions), sync.step(actions)
        assert_same_step(out, expected)
        if t == 0:
            compiled = STEP_JITS[mode]._cache_size()
        obs, _, terminated, truncated, _ = out
        done = terminated | truncated
        crashes += terminated.sum()
        truncations += truncated.sum()
        partial += 0 < done.sum() < N
        if mode == AutoresetMode.DISABLED and done.any():
            finished = re.escape(f"envs {np.flatnonzero(done).tolist()} ended")
            with pytest.raises(RuntimeError, match=finished):
                ours.step(actions)
            refused += 1
            # Finished envs restart; every other time with seeds (env i: 50 + t + i).
            obs = masked_reset_both(ours, sync, done, 50 + t if refused % 2 else None)
        elif t % 4 == 3:
            # Any mode: reset one env; the others keep their episodes and pending autoresets.
            mask = np.arange(N) == (t // 4) % N
            obs = masked_reset_both(ours, sync, mask, [7 * t + i for i in range(N)])
            cleared += (mask & done).any()
            kept += (~mask & done).any()
    assert crashes >= 1 and truncations >= 1 and partial >= 2
    if mode == AutoresetMode.NEXT_STEP:
        assert cleared >= 1 and kept >= 1  # masked resets met pending autoresets, both ways
    assert STEP_JITS[mode]._cache_size() == compiled  # one compilation for all steps and resets


def test_same_step_infos_when_every_env_ends_at_once():
    """No env keeps its step info: the top level holds the final observations and infos only."""
    ours, sync = make_pair(SPACESHIP, AutoresetMode.SAME_STEP)
    ours.reset(seed=0)
    sync.reset(seed=0)
    coast = np.zeros((N, 2), np.float32)
    for _ in range(8):
        out = ours.step(coast)
        assert_same_step(out, sync.step(coast))
    assert out[3].all()
    assert sorted(out[4]) == ["_final_info", "_final_obs", "final_info", "final_obs"]


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        ([True, False], TypeError, "must be a numpy array"),
        (np.array([True, False, True]), ValueError, r"must have shape \(2,\)"),
        (np.array([1, 0]), TypeError, "must have dtype bool"),
        (np.zeros(2, bool), ValueError, "at least one True"),
    ],
)
def test_bad_reset_masks_are_refused_like_sync_vector_env(mask, error, message):
    ours, sync = make_pair(SPACESHIP, AutoresetMode.DISABLED, num_envs=2)
    with pytest.raises(RuntimeError, match="without a reset_mask"):
        ours.reset(options={"reset_mask": np.array([True, False])})  # nothing to keep yet
    ours.reset(seed=0)
    sync.reset(seed=0)
    with pytest.raises(error, match=message):
        ours.reset(options={"reset_mask": mask})
    with pytest.raises(error):
        sync.reset(options={"reset_mask": mask})
    with pytest.raises(ValueError, match=r"takes no options.*\['state'\]"):
        ours.reset(options={"reset_mask": np.array([True, False]), "state": None})


@pytest.mark.parametrize("bad", ["same_step", "SAME_STEP", 1, None])
def test_unknown_autoreset_modes_are_refused(bad):
    with pytest.raises(ValueError, match="autoreset_mode must be .*'SameStep'"):
        gym.make_vec(
            SPACESHIP, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=bad
        )


@pytest.mark.parametrize("env_id", [SPACESHIP, DRIVING])
def test_autoreset_mode_is_in_each_envs_metadata(env_id):
    made = {
        mode: gym.make_vec(
            env_id, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode=given
        )
        for mode, given in [(m, m.value) for m in AutoresetMode]
    }
    for mode, venv in made.items():
        assert venv.metadata["autoreset_mode"] is mode
    default = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert default.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP


class InfoRecorder(gym.vector.VectorWrapper):
    """Counts the steps whose info holds final observations."""

    final_obs_steps = 0

    def step(self, actions):
        out = super().step(actions)
        self.final_obs_steps += "final_obs" in out[4]
        return out


def test_host_training_runs_on_a_same_step_vector_env():
    venv = InfoRecorder(
        gym.make_vec(
            SPACESHIP,
            num_envs=2,
            vectorization_mode="vector_entry_point",
            autoreset_mode=AutoresetMode.SAME_STEP,
            max_steps=4,
        )
    )
    config = dataclasses.replace(
        a2c.A2CConfig(), total_steps=40, num_envs=2, n_steps=5, log_every_steps=40, hidden=(8,)
    )
    result = a2c.train(config, venv, jax.random.key(0), progress=False)
    assert result.env_steps == 40 and len(result.metrics) == 1
    assert venv.final_obs_steps >= 5  # every 4th step (at least) ends both episodes
    (row,) = result.metrics
    assert row["episodes"] >= 10 and np.isfinite(row["mean_return"])
    assert all(np.isfinite(row[k]) for k in ("policy_loss", "value_loss", "entropy"))
