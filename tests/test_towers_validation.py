"""BlockTower-v0: params range checks, rejected resets, and the overhang of a collapsed tower."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.towers import planning, task
from envs.towers.env import BlockTowerEnv
from envs.towers.params import Params


@pytest.mark.parametrize(
    "field, value",
    [
        ("friction", -1.0),  # was a Chipmunk abort (exit 134)
        ("solver_iterations", 0),  # was a Chipmunk abort
        ("collision_slop", -0.1),  # was a Chipmunk abort
        ("table_height", -1.0),  # was accepted: the floor above the table top
        ("fall_threshold", -1.0),  # was accepted: every placement a collapse
        ("solver_iterations", 2.5),
        ("block_mass", 0.0),
        ("gravity", -9.81),
        ("time_step", np.nan),
        ("settle_speed", 0.0),
        ("max_settle_time", 0.0),
        ("min_settle_time", 5.0),
        ("collapse_penalty", -1.0),
        ("n_blocks", 0),
        ("n_blocks", 7),
        ("max_offset", 0.0),
        ("view_left", np.inf),
        ("view_size", 0.0),
        ("image_size", 0),
    ],
)
def test_params_out_of_range_name_the_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"Params\.{field}=.* out of range: expected"):
        gym.make("worldplan/BlockTower-v0", **{field: value})
    with pytest.raises(ValueError, match=rf"Params\.{field}="):
        Params(**{field: value})


def test_params_at_their_limits_are_accepted():
    env = BlockTowerEnv(friction=0.0, collision_slop=0.0, min_settle_time=0.0, n_blocks=6)
    env.reset(seed=0)
    env.step(np.array([0.0], np.float32))


def test_rejected_reset_leaves_the_env_unchanged():
    env = BlockTowerEnv()
    env.reset(seed=0)
    env.step(np.array([0.2], np.float32))
    state, generator = env.state.copy(), env.np_random.bit_generator.state
    for bad in (np.zeros((2, 5)), np.full((1, 6), np.nan), np.zeros((4, 6))):
        with pytest.raises(ValueError, match=r"options\['state'\]"):
            env.reset(seed=5, options={"state": bad})
        np.testing.assert_array_equal(env.state, state)
        assert env.np_random.bit_generator.state == generator


def test_collapsed_tower_scores_no_overhang():
    """The audit's case: 6 blocks at 0.9 of the harmonic offsets topple on the last placement,
    and the fallen blocks reach 2.58 widths past the edge, above H_6 / 2 = 1.23."""
    env = BlockTowerEnv(n_blocks=6)
    env.reset(seed=0)
    total = 0.0
    for offset in task.harmonic_offsets(6, 0.9):
        _, reward, terminated, _, info = env.step(np.array([offset], np.float32))
        total += reward
        assert 0.0 <= info["overhang_fraction"] <= 1.0
        if info["collapsed"]:
            break
    assert info["collapsed"] and terminated and reward == -env.params.collapse_penalty
    assert task.overhang(env.state, env.params) > env.params.overhang_limit  # fallen blocks
    assert info["overhang"] == 0.0 and info["overhang_fraction"] == 0.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0.0], np.float32))
    result = planning.run_episode(env, task.harmonic_offsets(6, 0.9))
    assert result["overhang"] == result["fraction"] == 0.0 and result["collapsed"] == 1.0
    assert result["return"] == pytest.approx(total)


def test_standing_tower_reports_its_overhang():
    env = BlockTowerEnv()
    env.reset(seed=0)
    total = 0.0
    for offset in task.harmonic_offsets(4, 0.8):
        _, reward, _, _, info = env.step(np.array([offset], np.float32))
        total += reward
        assert not info["collapsed"]
        assert info["overhang"] == task.overhang(env.state, env.params) > 0.0
        assert info["overhang_fraction"] == info["overhang"] / env.params.overhang_limit
    assert total == pytest.approx(info["overhang"])


def test_step_before_reset_is_an_error():
    env = gym.make("worldplan/BlockTower-v0").unwrapped
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        env.step(np.zeros(1, np.float32))
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
