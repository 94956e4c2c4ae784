"""The highway driving core: traffic physics, bicycle model, task costs, host vs JAX, planning."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs import host_random
from envs.driving import core, dynamics, pixels, task, traffic
from envs.driving.env import DrivingEnv
from envs.driving.params import DrivingParams

PARAMS = DrivingParams()


def _state(**fields) -> core.DrivingState:
    """A hand-made state: the ego car in lane 1 at 25 m/s, every other car far away."""
    n = PARAMS.num_cars
    base = {
        "ego_position": np.array([0.0, 5.55], np.float32),
        "ego_heading": np.float32(0.0),
        "ego_speed": np.float32(25.0),
        "car_position": np.stack(
            [np.linspace(-3000.0, -2000.0, n), np.full(n, 1.85)], axis=-1
        ).astype(np.float32),
        "car_speed": np.full(n, 25.0, np.float32),
        "car_desired_speed": np.full(n, 25.0, np.float32),
        "car_lane": np.zeros(n, np.int32),
        "key": host_random.prng_key(0),
        "time": np.int32(0),
    }
    base.update(fields)
    return core.DrivingState(**{k: np.asarray(v) for k, v in base.items()})


def test_host_and_jax_cores_agree() -> None:
    key = jax.random.PRNGKey(7)
    obs_jax, state_jax = core.reset(key, PARAMS)
    obs_host, state_host = core.reset(np.asarray(key), PARAMS)
    np.testing.assert_allclose(obs_host, obs_jax, atol=1e-5)
    np.testing.assert_array_equal(state_host.key, np.asarray(state_jax.key))
    step = jax.jit(core.step, static_argnums=3)
    actions = np.random.default_rng(1).uniform(-0.3, 0.3, (120, 2)).astype(np.float32)
    for a in actions:
        obs_host, state_host, reward_host, done, *_ = core.step(None, state_host, a, PARAMS)
        obs_jax, state_jax, reward_jax, *_ = step(None, state_jax, jnp.asarray(a), PARAMS)
        np.testing.assert_allclose(obs_host, obs_jax, atol=1e-3)
        np.testing.assert_allclose(reward_host, reward_jax, atol=1e-4)
        np.testing.assert_array_equal(state_host.car_lane, np.asarray(state_jax.car_lane))
        if done:
            break


def test_traffic_never_overlaps_and_changes_lanes() -> None:
    """32 one-minute episodes of traffic (the ego car coasting): no two cars ever overlap."""
    params = PARAMS.replace(max_steps=10**6)

    def overlap(state: core.DrivingState) -> jax.Array:
        x, y = state.car_position[:, 0], state.car_position[:, 1]
        dx, dy = jnp.abs(x[:, None] - x[None]), jnp.abs(y[:, None] - y[None])
        close = (dx < params.car_length) & (dy < params.car_width)
        return jnp.any(close & ~jnp.eye(params.num_cars, dtype=bool))

    def episode(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        _, state = core.reset(key, params)

        def body(state: core.DrivingState, _: None) -> tuple[core.DrivingState, tuple]:
            _, state, *_ = core.step(None, state, jnp.zeros(2), params)
            return state, (overlap(state), state.car_lane)

        _, (overlaps, lanes) = jax.lax.scan(body, state, None, length=600)
        return overlaps, lanes

    overlaps, lanes = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(0), 32))
    assert not bool(overlaps.any())
    changes = np.sum(np.diff(np.asarray(lanes), axis=1) != 0, axis=(1, 2))
    # 12 cars x 60 s x 0.1 attempts/s = 72 attempts per episode, some refused as unsafe.
    assert 10 < changes.mean() < 72


def test_idm_acceleration_by_hand() -> None:
    # v = 20, leader at 20 m/s, 30 m ahead, v0 = 30: s* = 2 + 20 * 1.2 = 26 m,
    # a = 1.5 * (1 - (20/30)^4 - (26/30)^2) = 0.077037 m/s^2.
    a = traffic.idm_acceleration(
        np.float32(20.0), np.float32(20.0), np.float32(30.0), np.float32(30.0), PARAMS
    )
    assert a == pytest.approx(1.5 * (1 - (2 / 3) ** 4 - (26 / 30) ** 2), rel=1e-5)
    free = traffic.idm_acceleration(
        np.float32(0.0), np.float32(0.0), np.float32(traffic.NO_GAP), np.float32(30.0), PARAMS
    )
    assert free == pytest.approx(PARAMS.idm_accel, rel=1e-5)
    at_desired = traffic.idm_acceleration(
        np.float32(30.0), np.float32(0.0), np.float32(traffic.NO_GAP), np.float32(30.0), PARAMS
    )
    assert abs(at_desired) < 1e-3
    stopped_ahead = traffic.idm_acceleration(
        np.float32(25.0), np.float32(0.0), np.float32(5.0), np.float32(30.0), PARAMS
    )
    assert stopped_ahead == pytest.approx(-PARAMS.idm_max_brake)


def test_bicycle_model_by_hand() -> None:
    state = _state()
    position, heading, speed = dynamics.move_ego(state, np.array([1.0, 0.0], np.float32), PARAMS)
    assert speed == pytest.approx(25.0 + 3.0 * 0.1)
    np.testing.assert_allclose(position, [25.3 * 0.1, 5.55], rtol=1e-6)
    _, heading, speed = dynamics.move_ego(state, np.array([-1.0, 1.0], np.float32), PARAMS)
    assert speed == pytest.approx(25.0 - 6.0 * 0.1)
    assert heading == pytest.approx(24.4 * np.tan(0.1) / 2.7 * 0.1, rel=1e-5)


def test_crash_off_road_and_neighbours() -> None:
    env = DrivingEnv()
    env.reset(seed=0)
    cars = _state().car_position.copy()
    cars[0] = [5.0, 5.55]  # 0.5 m bumper gap, same lane, slower: the ego car hits it
    env.reset(options={"state": _state(car_position=cars, car_speed=np.full(12, 10.0, np.float32))})
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["crashed"] and not info["off_road"]
    assert reward < -PARAMS.crash_penalty + 1
    cars[0] = [0.0, 5.55 + 3.7]  # alongside, one lane to the left: no crash, no proximity cost
    lanes = np.zeros(12, np.int32)
    lanes[0] = 2
    env.reset(options={"state": _state(car_position=cars, car_lane=lanes)})
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert not terminated and reward == pytest.approx(0.1 * 2.5, abs=1e-3)
    env.reset(options={"state": _state(ego_position=np.array([0.0, 0.85], np.float32))})
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["off_road"] and not info["crashed"]


def test_lane_change_only_when_safe() -> None:
    n = PARAMS.num_cars
    state = _state()
    x = np.concatenate([state.car_position[:, 0], state.ego_position[:1]])
    y = np.concatenate([state.car_position[:, 1], state.ego_position[1:]])
    x[0], y[0] = 0.0, 1.85  # car 0 alongside the ego car, in lane 0
    speed = np.full(n + 1, 25.0, np.float32)
    desired = np.full(n + 1, 25.0, np.float32)
    draws = np.array([0.0, 0.0, 0.2], np.float32)  # car 0 tries, to the left (lane 1)
    lane = state.car_lane
    blocked = traffic.lane_change(lane, x, y, speed, desired, draws, PARAMS)
    assert blocked[0] == 0  # the ego car is in lane 1, right beside it
    y[-1] = 9.25  # the ego car moves to lane 2: lane 1 is free
    assert traffic.lane_change(lane, x, y, speed, desired, draws, PARAMS)[0] == 1
    to_the_right = traffic.lane_change(lane, x, y, speed, desired, draws + [0, 0, 0.6], PARAMS)
    assert to_the_right[0] == 0  # lane -1 does not exist


def test_proximity_and_pixels_show_what_is_there() -> None:
    cars = _state().car_position.copy()
    cars[0] = [10.0, 5.55]
    state = _state(car_position=cars)
    # 10 m ahead, safe distance 4.5 + 25 * 1 = 29.5 m, same lane centre.
    near = task.proximity(state.ego_position, state.ego_speed, state.car_position, PARAMS)
    assert near == pytest.approx(1 - 10 / 29.5, rel=1e-5)
    image = pixels.rasterize(state, PARAMS)
    row = PARAMS.pixel_rows // 2
    ego_col = int(PARAMS.pixel_behind / PARAMS.pixel_scale)
    car_col = int((PARAMS.pixel_behind + 10.0) / PARAMS.pixel_scale)
    assert tuple(image[row, ego_col]) == pixels.EGO
    assert tuple(image[row, car_col]) == pixels.CAR
    assert tuple(image[0, ego_col]) == pixels.GRASS  # 10 m left of the ego: off the road
    jax_image = jax.jit(pixels.rasterize, static_argnums=1)(core.as_jax(state), PARAMS)
    np.testing.assert_array_equal(image, np.asarray(jax_image))


def test_planning_model_is_the_env_step_and_the_road_barrier_rises_at_the_edges() -> None:
    from envs.driving import planning
    from planners.shaping import BarrierConfig, driving_penalty

    state = core.as_jax(_state())
    action = jnp.array([0.5, 0.0])
    next_state, reward = planning.model_step(PARAMS, state, action)
    _, env_state, env_reward, *_ = core.step(None, _state(), np.array([0.5, 0.0]), PARAMS)
    np.testing.assert_allclose(reward, env_reward, rtol=1e-5)
    np.testing.assert_allclose(next_state.ego_position, env_state.ego_position, rtol=1e-6)
    # more throttle, more metres driven this step: the reward's gradient says so
    throttle_gradient = jax.grad(lambda a: planning.model_step(PARAMS, state, a)[1])(action)
    assert throttle_gradient[0] > 0 and np.isfinite(throttle_gradient).all()
    barrier = BarrierConfig(weight=5.0, margin=0.3, scale=0.1)
    penalty = driving_penalty(barrier, BarrierConfig(weight=0.0), PARAMS, "env_state")
    assert float(penalty(state)) < 1e-3  # centred in the middle lane: 2.75 m of clearance
    near_edge = state.replace(ego_position=jnp.array([0.0, 1.0]))  # 0.1 m from the right edge
    expected = 5.0 * 0.1 * np.log1p(np.exp((0.3 - 0.1) / 0.1))
    np.testing.assert_allclose(penalty(near_edge), expected, rtol=1e-4)
    assert bool(planning.done_fn(PARAMS, near_edge.replace(ego_position=jnp.array([0.0, 0.5]))))


def test_car_barrier_rises_as_a_car_nears_and_reads_the_same_from_obs_and_state() -> None:
    from planners.shaping import BarrierConfig, driving_penalty

    road, cars = BarrierConfig(weight=5.0, margin=0.3, scale=0.1), BarrierConfig(weight=5.0)
    on_state = jax.jit(driving_penalty(road, cars, PARAMS, "env_state"))
    on_obs = jax.jit(driving_penalty(road, cars, PARAMS, "obs"))
    state = core.as_jax(_state())
    ego = state.ego_position
    costs = []
    for gap in (3.0, 0.5, 0.1):  # metres between the ego car's nose and the car ahead's tail
        ahead = ego + jnp.array([PARAMS.car_length + gap, 0.0])
        moved = state.replace(car_position=state.car_position.at[0].set(ahead))
        clearance = task.car_clearance(moved.ego_heading, ahead[0:1] - ego[0], jnp.zeros(1), PARAMS)
        np.testing.assert_allclose(clearance, [gap], atol=1e-5)
        costs.append(float(on_state(moved)))
        # the obs lists only the nearest cars: the far ones add (almost) nothing
        np.testing.assert_allclose(on_obs(core.observe(moved, PARAMS)), costs[-1], atol=1e-4)
    assert costs[0] < 1e-3 < costs[1] < costs[2]
    with pytest.raises(ValueError, match="obs must have shape"):
        on_obs(jnp.zeros(5))
