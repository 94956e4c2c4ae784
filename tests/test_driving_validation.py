"""Driving: params that contradict each other, impossible states, observation bounds."""

import gymnasium as gym
import jax
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.driving import core as driving_core
from envs.driving import task as driving_task
from envs.driving.params import DrivingParams
from envs.driving.params import check_params as check_driving_params

DRIVING = "worldplan/Driving-v0"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"ego_speed_range": (50.0, 60.0)}, "ego_speed_range"),  # above max_speed = 40
        ({"max_speed": 25.0}, "ego_speed_range"),  # the default range (20, 28) too
        ({"num_cars": 60}, "num_cars"),
        ({"num_cars": 31}, "num_cars"),  # one more than 200 m / (4.5 m + 2 m) fits
        ({"view_behind": 1.0, "view_ahead": 1.0}, "num_cars"),
        ({"car_length": 20.0}, "num_cars"),
        ({"car_width": 4.0}, "car_width"),  # wider than a 3.7 m lane
    ],
)
def test_driving_params_that_contradict_each_other_are_rejected(overrides, field):
    with pytest.raises(ValueError, match=rf"DrivingParams\.{field}=.* is out of range: expected"):
        gym.make(DRIVING, **overrides)
    with pytest.raises(ValueError, match=rf"DrivingParams\.{field}="):
        check_driving_params(DrivingParams().replace(**overrides))


def test_driving_params_at_the_limits_start_inside_the_space_and_apart():
    env = gym.make(DRIVING, num_cars=30, ego_speed_range=(40.0, 40.0)).unwrapped
    p = env.params
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert env.observation_space.contains(obs) and obs[2] == 40.0
        x, y = env.get_state().car_position.T
        dx, dy = np.abs(x[:, None] - x[None]), np.abs(y[:, None] - y[None])
        overlap = (dx < p.car_length) & (dy < p.car_width) & ~np.eye(p.num_cars, dtype=bool)
        assert not overlap.any()
    # Batched params are checked element by element; traced ones are left to the caller.
    with pytest.raises(ValueError, match=r"DrivingParams\.ego_speed_range="):
        check_driving_params(DrivingParams(max_speed=np.array([40.0, 25.0])))
    assert jax.jit(lambda q: check_driving_params(q).max_speed)(DrivingParams()) == 40.0


@pytest.fixture(scope="module")
def driving_env():
    env = gym.make(DRIVING).unwrapped
    env.reset(seed=0)
    return env, env.get_state()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("ego_speed", 60.0, r"ego_speed must be in \[0, 40.0\] \(max_speed\)"),
        ("ego_speed", -5.0, r"ego_speed must be in \[0, 40.0\]"),
        ("car_speed", np.full(12, -1.0), r"car_speed must be >= 0"),
        ("car_desired_speed", np.zeros(12), r"car_desired_speed must be > 0"),
        ("car_lane", np.full(12, 1.9), r"car_lane must be integer-valued, in \[0, 3\)"),
        ("car_lane", np.full(12, 3), r"car_lane must be in \[0, 3\)"),
        ("key", [1.5, -2.0], r"key must be integer-valued, in \[0, 2\*\*32\)"),
        ("key", [0, -2], r"key must be integer-valued"),  # would wrap in a uint32
        ("time", -1, r"time must be >= 0"),
        ("ego_position", ["a", "b"], r"ego_position must be numbers"),
    ],
)
def test_driving_state_option_rejects_impossible_values(driving_env, field, value, match):
    env, state = driving_env
    with pytest.raises(ValueError, match=r"options\['state'\]\." + match):
        env.reset(options={"state": state.replace(**{field: np.asarray(value)})})


def test_driving_state_option_accepts_the_edges_of_the_valid_ranges(driving_env):
    env, state = driving_env
    edge = state.replace(
        ego_speed=np.float64(40.0),
        car_lane=state.car_lane.astype(np.float64),  # integer values in floats
        key=np.array([2**32 - 1, 0], np.int64),
        car_speed=np.zeros(12, np.float32),
    )
    obs, _ = env.reset(options={"state": edge})
    assert env.observation_space.contains(obs) and obs[2] == 40.0
    restored = env.get_state()
    assert restored.car_lane.dtype == np.int32 and restored.key.dtype == np.uint32
    np.testing.assert_array_equal(restored.key, [2**32 - 1, 0])


@pytest.mark.parametrize("num_lanes", [4, 5, 8])
def test_lane_offset_stays_inside_its_bounds_at_lane_boundaries(num_lanes):
    """Float32 rounding at a boundary gave -1.8500004 < -1.85 (y = 14.8, 22.2)."""
    env = gym.make(DRIVING, num_lanes=num_lanes).unwrapped
    env.reset(seed=0)
    low, high = env.observation_space.low[3], env.observation_space.high[3]
    boundaries = np.float32(3.7) * np.arange(num_lanes + 1, dtype=np.float32)
    ys = [boundaries]
    for direction in (-np.inf, np.inf):  # 20 float32 neighbours on either side
        y = boundaries
        for _ in range(20):
            y = np.nextafter(y, np.float32(direction))
            ys.append(y)
    offsets = driving_task.lane_offset(np.concatenate(ys), env.params)
    assert offsets.dtype == np.float32 and np.all((offsets >= low) & (offsets <= high))
    for y in (14.8, 22.2):
        ego = np.array([0.0, y], np.float32)
        obs, _ = env.reset(options={"state": env.get_state().replace(ego_position=ego)})
        assert env.observation_space.contains(obs), obs[3]
        jax_obs = driving_core.observe(driving_core.as_jax(env.get_state()), env.params)
        assert env.observation_space.contains(np.asarray(jax_obs)), jax_obs[3]
