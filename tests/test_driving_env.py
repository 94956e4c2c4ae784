"""The highway driving env: Gymnasium contract, exact replay, vector env, bad input refused."""

from __future__ import annotations

import pickle

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers worldplan/*)
from envs.driving.env import make_params
from envs.jax_env import make_jax_env


@pytest.mark.parametrize("action_mode", ["continuous", "discrete"])
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_check_env_and_pickle(action_mode: str, obs_mode: str) -> None:
    env = gym.make(
        "worldplan/Driving-v0", action_mode=action_mode, obs_mode=obs_mode, render_mode="rgb_array"
    )
    check_env(env.unwrapped, skip_render_check=False)
    env.reset(seed=3)
    copy = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    np.testing.assert_array_equal(env.step(action)[0], copy.step(action)[0])


def test_same_seed_same_episode_and_seeds_differ() -> None:
    def episode(seed: int) -> np.ndarray:
        env = gym.make("worldplan/Driving-v0")
        obs = [env.reset(seed=seed)[0]]
        for t in range(60):
            obs.append(env.step(np.array([0.2, 0.02 * np.sin(t)], np.float32))[0])
        return np.stack(obs)

    np.testing.assert_array_equal(episode(5), episode(5))
    assert not np.array_equal(episode(5), episode(6))


def test_get_state_round_trip_replays_the_random_traffic_exactly() -> None:
    env = gym.make("worldplan/Driving-v0").unwrapped
    env.reset(seed=11)
    for _ in range(20):
        env.step(np.array([0.1, 0.0], np.float32))
    saved = env.get_state()
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, (80, 2)).astype(np.float32)

    def play() -> list[np.ndarray]:
        out = []
        for a in actions:
            obs, _, terminated, _, _ = env.step(a)
            out.append(obs)
            if terminated:
                break
        return out

    first = play()
    env.reset(options={"state": saved})
    second = play()
    assert len(first) == len(second)
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    # ... and the traffic did change lanes in that time, so the randomness was replayed.
    lanes = [saved.car_lane, env.get_state().car_lane]
    assert not np.array_equal(*lanes)


def test_vector_env_replays_single_envs() -> None:
    vector = gym.make_vec(
        "worldplan/Driving-v0", num_envs=3, vectorization_mode="vector_entry_point"
    )
    singles = [gym.make("worldplan/Driving-v0") for _ in range(3)]
    obs, _ = vector.reset(seed=20)
    for i, env in enumerate(singles):
        np.testing.assert_allclose(env.reset(seed=20 + i)[0], obs[i], rtol=1e-6, atol=1e-5)
    alive = np.ones(3, bool)
    rng = np.random.default_rng(2)
    for _ in range(60):
        actions = rng.uniform(-0.2, 0.2, (3, 2)).astype(np.float32)
        obs, rewards, terminated, truncated, _ = vector.step(actions)
        for i, env in enumerate(singles):
            if alive[i]:
                single = env.step(actions[i])
                np.testing.assert_allclose(single[0], obs[i], atol=1e-3)
                np.testing.assert_allclose(single[1], rewards[i], atol=1e-4)
                assert single[2] == terminated[i]
                alive[i] = not (single[2] or single[3])


def test_bad_input_is_refused_with_a_clear_error() -> None:
    env = gym.make("worldplan/Driving-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    discrete = gym.make("worldplan/Driving-v0", action_mode="discrete")
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        discrete.step(9)
    with pytest.raises(ValueError, match="DrivingParams.lane_width"):
        make_params(lane_width=-1.0)
    with pytest.raises(ValueError, match="DrivingParams.num_lanes"):
        make_params(num_lanes=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'lanes'"):
        make_params(lanes=4)
    with pytest.raises(ValueError, match="action_mode"):
        make_params("hybrid")
    state = env.unwrapped.get_state()
    with pytest.raises(ValueError, match="car_lane must be in"):
        env.reset(options={"state": state.replace(car_lane=np.full(12, 5, np.int32))})
    with pytest.raises(ValueError, match="ego_speed contains NaN"):
        env.reset(options={"state": state.replace(ego_speed=np.float32(np.nan))})
    with pytest.raises(ValueError, match="missing fields"):
        env.reset(options={"state": {"ego_speed": 1.0}})


def test_jax_env_handle_and_render() -> None:
    jax_env = make_jax_env("worldplan/Driving-v0", action_mode="discrete")
    obs, state = jax_env.reset(jax.random.PRNGKey(0), jax_env.params)
    assert obs.shape == jax_env.observation_space.shape
    assert jax_env.action_space.n == 9
    env = gym.make("worldplan/Driving-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (192, 768, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4  # road, grass, cars, ego, text
    env.close()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=40),
)
def test_observations_stay_in_their_space(seed, actions) -> None:
    """Out-of-range commands are clipped (documented), never corrupt the state."""
    env = gym.make("worldplan/Driving-v0")
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for action in actions:
        obs, reward, terminated, _, _ = env.step(np.array(action, np.float32))
        assert env.observation_space.contains(obs) and np.isfinite(reward)
        if terminated:
            break


def test_vector_step_compiles_once_across_envs_and_resets() -> None:
    from envs.jax_vector import _jit_step

    first = gym.make_vec(
        "worldplan/Driving-v0", num_envs=2, vectorization_mode="vector_entry_point"
    )
    first.reset(seed=0)
    first.step(first.action_space.sample())
    before = _jit_step._cache_size()
    second = gym.make_vec(
        "worldplan/Driving-v0", num_envs=2, vectorization_mode="vector_entry_point"
    )
    for venv in (first, second):
        venv.reset(seed=1)
        for _ in range(5):
            venv.step(venv.action_space.sample())
    assert _jit_step._cache_size() == before
