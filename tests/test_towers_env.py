"""BlockTower-v0: Gymnasium contract, determinism, state round trip, pickling, task rewards."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.towers import physics, task
from envs.towers.env import BlockTowerEnv
from envs.towers.params import Params, harmonic_limit

PARAMS = Params()


@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_check_env_and_spaces(obs_mode):
    env = gym.make("worldplan/BlockTower-v0", obs_mode=obs_mode)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, *_ = env.step(np.array([0.2], np.float32))
    assert env.observation_space.contains(obs)


def test_same_seed_same_episode_bit_for_bit():
    actions = [np.array([a], np.float32) for a in (0.1, 0.3, -0.2, 0.4)]

    def rollout():
        env = gym.make("worldplan/BlockTower-v0")
        out = [env.reset(seed=3)[0]]
        for a in actions:
            obs, reward, terminated, *_ = env.step(a)
            out += [obs, np.array([reward])]
            if terminated:
                break
        return np.concatenate([o.ravel() for o in out])

    np.testing.assert_array_equal(rollout(), rollout())


block_rows = st.lists(
    st.tuples(
        *(st.floats(-5, 5, allow_nan=False) for _ in range(2)),
        st.floats(-3.0, 3.0, allow_nan=False),
        *(st.floats(-10, 10, allow_nan=False) for _ in range(3)),
    ),
    min_size=0,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(block_rows)
def test_state_round_trip_is_exact_and_steps_nothing(rows):
    state = np.asarray(rows, np.float64).reshape(-1, physics.STATE_DIM)
    space = physics.build_space(PARAMS)
    physics.set_state(space, np.zeros((2, 6)), PARAMS)  # replaced, not appended to
    physics.set_state(space, state, PARAMS)
    np.testing.assert_array_equal(physics.get_state(space), state)
    physics.set_state(space, physics.get_state(space), PARAMS)
    np.testing.assert_array_equal(physics.get_state(space), state)


def test_reset_from_state_continues_like_the_original():
    a = BlockTowerEnv()
    a.reset(seed=0)
    for offset in (0.1, 0.2):
        a.step(np.array([offset], np.float32))
    b = pickle.loads(pickle.dumps(a))
    c = BlockTowerEnv()
    c.reset(options={"state": a.state})
    results = [env.step(np.array([0.25], np.float32)) for env in (a, b, c)]
    for other in results[1:]:
        np.testing.assert_array_equal(other[0], results[0][0])
        assert other[1] == results[0][1]


def test_harmonic_stack_reward_and_collapse():
    env = BlockTowerEnv()
    env.reset(seed=0)
    total = 0.0
    for offset in task.harmonic_offsets(4, safety=0.9):
        _, reward, terminated, truncated, info = env.step(np.array([offset], np.float32))
        total += reward
        assert not info["collapsed"] and not truncated
    assert terminated and info["n_placed"] == 4
    assert total == pytest.approx(info["overhang"])
    assert info["overhang"] == pytest.approx(0.9 * harmonic_limit(4), abs=0.02)
    assert harmonic_limit(4) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 2)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.array([0.9], np.float32))  # CoM 0.4 past edge
    assert info["collapsed"] and terminated and reward == -PARAMS.collapse_penalty


def test_bad_inputs_are_rejected():
    env = BlockTowerEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="options\\['state'\\]"):
        env.reset(options={"state": np.zeros((2, 5))})
    with pytest.raises(ValueError, match="n_blocks"):
        env.reset(options={"state": np.zeros((4, 6))})
    with pytest.raises(ValueError, match="obs_mode"):
        BlockTowerEnv(obs_mode="rgb")
    # Out-of-range actions are clipped to the box, as documented.
    env.reset(seed=0)
    env.step(np.array([-5.0], np.float32))
    assert env.state[0, 0] == pytest.approx(-0.5 - PARAMS.max_offset, abs=0.01)


def test_rgb_array_render_headless_and_pixels_show_blocks():
    env = BlockTowerEnv(obs_mode="pixels", render_mode="rgb_array")
    env.reset(seed=0)
    obs, *_ = env.step(np.array([0.2], np.float32))
    frame = env.render()
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    red = np.all(obs == np.array([220, 50, 47], np.uint8), axis=-1)
    # One block of 1 x 1 width on a 6-width, 64-pixel view covers about (64 / 6)^2 pixels.
    assert abs(red.sum() - (64 / 6) ** 2) < 25
    rows, cols = np.nonzero(red)
    assert rows.max() < 64 * 5 / 6  # above the table top (y = 0 at 1/6 from the bottom)
    env.close()
