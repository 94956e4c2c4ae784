"""Pure functional core of the highway driving task: reset, actions, step and observation.

Every function is pure and written for ONE environment; batch with ``jax.vmap`` and ``jax.jit``
at the outermost call. They run on NumPy arrays (the Gymnasium single env, which so runs no JAX
computation and is safe in forked worker processes) or on JAX arrays and tracers; ``xp`` is the
namespace of the inputs.

The traffic is random (``traffic.py``), and its randomness is part of the state: ``state.key``
is a raw threefry key that each step splits (``envs.host_random`` on the host, ``jax.random`` in
JAX, bit for bit the same draws). A state and an action sequence therefore fix the future
exactly: ``reset(options={"state": s})`` replays, and the gymnax ``key`` argument of
:func:`step` is unused.

The motion of one step (the ego car's kinematic bicycle model, the other cars' moves) lives in
:mod:`envs.driving.dynamics`; :func:`transition` composes it with the draws and the task.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs import host_random
from envs.action_checks import check_action_form
from envs.driving import task, traffic
from envs.driving.dynamics import move_ego, move_traffic
from envs.driving.params import DrivingParams
from envs.ops import uniforms

EGO_FEATURES = 4
"""Ego entries at the start of the state observation (see :func:`observe`)."""
CAR_FEATURES = 3
"""Entries per reported car in the state observation."""
START_CLEARANCE = 15.0
"""At the start, no car in the ego's lane is within this plus two car lengths of it [m]."""
STEP_DRAWS = 4
"""U[0, 1) draws per step: three for a lane change, one for a recycled car's speed."""

DISCRETE_ACTIONS = np.array(
    [[0, 0], [1, 0], [-1, 0], [0, 0.5], [0, -0.5], [1, 0.5], [1, -0.5], [-1, 0.5], [-1, -0.5]],
    np.float32,
)
"""(9, 2) the (acceleration, steering) command of each discrete action."""


@struct.dataclass
class DrivingState:
    """State of one driving episode (float32, except the int32 lanes, time and uint32 key)."""

    ego_position: Any
    """(2,) ego car centre [m]: x along the road, y across it from the right edge."""
    ego_heading: Any
    """() ego heading [rad], 0 along the road, positive to the left."""
    ego_speed: Any
    """() ego speed [m/s]."""
    car_position: Any
    """(num_cars, 2) other cars' centres [m]."""
    car_speed: Any
    """(num_cars,) other cars' speeds along the road [m/s]."""
    car_desired_speed: Any
    """(num_cars,) other cars' IDM desired speeds [m/s]."""
    car_lane: Any
    """(num_cars,) int32 lane each car is in or changing to."""
    key: Any
    """(2,) uint32 raw threefry key of the traffic's randomness."""
    time: Any
    """() int32 steps taken this episode."""


def state_shapes(params: DrivingParams) -> dict[str, tuple[tuple[int, ...], type]]:
    """Each :class:`DrivingState` field's shape and dtype for ``params``."""
    n = params.num_cars
    return {
        "ego_position": ((2,), np.float32),
        "ego_heading": ((), np.float32),
        "ego_speed": ((), np.float32),
        "car_position": ((n, 2), np.float32),
        "car_speed": ((n,), np.float32),
        "car_desired_speed": ((n,), np.float32),
        "car_lane": ((n,), np.int32),
        "key": ((2,), np.uint32),
        "time": ((), np.int32),
    }


def obs_dim(params: DrivingParams) -> int:
    """Length of the state observation vector."""
    return EGO_FEATURES + CAR_FEATURES * params.obs_cars


def _raw_key(key: Any) -> Any:
    """A raw (2,) uint32 key from a raw or typed JAX key (or a NumPy raw key)."""
    if isinstance(key, np.ndarray):
        return key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def split_draws(key: Any, count: int) -> tuple[Any, Any]:
    """Splits ``key`` into the next key and ``count`` U[0, 1) float32 draws, host or JAX alike."""
    if isinstance(key, np.ndarray):
        keys = host_random.split(key)
        return keys[0], host_random.uniforms(keys[1], count)
    keys = jax.random.split(_raw_key(key))
    return keys[0], uniforms(keys[1], count)


def reset_draws(params: DrivingParams) -> int:
    """Number of U[0, 1) draws that :func:`initial_state` turns into a start state."""
    return 2 + 3 * params.num_cars


def reset(key: Any, params: DrivingParams) -> tuple[Any, DrivingState]:
    """Draws a new episode from a PRNG key (JAX key, or a NumPy raw key for the host path).

    Returns:
        ``(obs, state)``: obs (:func:`obs_dim`,) float32 and the start state.
    """
    next_key, draws = split_draws(key, reset_draws(params))
    return initial_state(draws, next_key, params)


def initial_state(u: Any, key: Any, params: DrivingParams) -> tuple[Any, DrivingState]:
    """The start state that the draws ``u`` select: ``(obs, state)`` as :func:`reset`.

    The ego car starts at x = 0 in the centre of a random lane, heading along the road, at a speed
    drawn from ``ego_speed_range``. The other cars start one per slot of equal length along the
    window [-view_behind, view_ahead], jittered within the slot (never closer than ``idm_min_gap``
    bumper to bumper to the next slot's car), in random lanes, at their desired speeds or the
    lowest speed of a vehicle ahead in their lane, whichever is lower. A car whose slot lies
    within :data:`START_CLEARANCE` plus 2 car lengths of the ego car is moved out of its lane.

    Args:
        u: (:func:`reset_draws`,) U[0, 1) float32 draws (NumPy or JAX).
        key: (2,) uint32 raw key stored as the traffic's randomness.
        params: task parameters.
    """
    xp = traffic.namespace(u)
    u = u.astype(xp.float32)
    n, lanes = params.num_cars, params.num_lanes
    ego_lane = xp.minimum((u[0] * lanes).astype(xp.int32), lanes - 1)
    low, high = params.ego_speed_range
    ego_speed = xp.float32(low) + u[1] * xp.float32(high - low)
    car_lane = xp.minimum((u[2 : 2 + n] * lanes).astype(xp.int32), lanes - 1)
    spacing = (params.view_behind + params.view_ahead) / n
    jitter = xp.maximum(spacing - params.car_length - params.idm_min_gap, 0.0)
    slot = xp.arange(n, dtype=xp.float32)
    car_x = -params.view_behind + (slot + 0.5) * spacing + (u[2 + n : 2 + 2 * n] - 0.5) * jitter
    near_ego = xp.abs(car_x) < START_CLEARANCE + 2.0 * params.car_length
    car_lane = xp.where(near_ego & (car_lane == ego_lane), (car_lane + 1) % lanes, car_lane)
    car_lane = car_lane.astype(xp.int32)
    low, high = params.desired_speed_range
    desired = xp.float32(low) + u[2 + 2 * n : 2 + 3 * n] * xp.float32(high - low)
    car_y = traffic.lane_centre(car_lane, params).astype(xp.float32)
    ego_y = traffic.lane_centre(ego_lane, params)
    # No car starts faster than any vehicle ahead of it in its lane (the ego car included), so
    # the closely packed start needs no emergency braking.
    x_all = xp.concatenate([car_x, xp.zeros((1,), xp.float32)])
    lane_all = xp.concatenate([car_lane, ego_lane[None]])
    speed_all = xp.concatenate([desired, ego_speed[None]])
    ahead = (lane_all[None, :] == car_lane[:, None]) & (x_all[None, :] > car_x[:, None])
    car_speed = xp.minimum(desired, xp.min(xp.where(ahead, speed_all[None, :], xp.inf), axis=1))
    state = DrivingState(
        ego_position=xp.stack([xp.float32(0.0), ego_y]).astype(xp.float32),
        ego_heading=xp.zeros((), xp.float32),
        ego_speed=ego_speed.astype(xp.float32),
        car_position=xp.stack([car_x, car_y], axis=-1).astype(xp.float32),
        car_speed=car_speed.astype(xp.float32),
        car_desired_speed=desired.astype(xp.float32),
        car_lane=car_lane,
        key=key,
        time=xp.zeros((), xp.int32),
    )
    return observe(state, params), state


def action_to_command(action: Any, params: DrivingParams) -> Any:
    """An action of ``params.action_mode`` as an (acceleration, steering) command, (2,) in [-1, 1].

    continuous: (2,), clipped to [-1, 1]. discrete: int in [0, 9), looked up in
    :data:`DISCRETE_ACTIONS`.

    Raises:
        ValueError: an action of the wrong shape or dtype for the mode, at trace time
            (:func:`envs.action_checks.check_action_form`; values are not checked).
    """
    check_action_form(action, params)
    xp = traffic.namespace(action)
    if params.action_mode == "continuous":
        return xp.clip(xp.asarray(action, dtype=xp.float32), -1.0, 1.0)
    if params.action_mode == "discrete":
        return xp.asarray(DISCRETE_ACTIONS)[action]
    raise ValueError(f"unknown action_mode {params.action_mode!r}")


def transition(
    state: DrivingState, command: Any, params: DrivingParams
) -> tuple[DrivingState, Any, task.Outcome]:
    """One full step from an (acceleration, steering) command: traffic, ego, reward, end.

    Differentiable in ``command`` (through the ego car, the proximity and the lane costs); the
    traffic's random draws come from ``state.key``.

    Returns:
        ``(next_state, reward, outcome)``: reward () float32 and the :class:`task.Outcome`.
    """
    key, draws = split_draws(state.key, STEP_DRAWS)
    moved = move_traffic(state, draws, params)
    position, heading, speed = move_ego(state, command, params)
    next_state = moved.replace(
        ego_position=position, ego_heading=heading, ego_speed=speed, key=key, time=state.time + 1
    )
    outcome = task.outcome(state, next_state, command, params)
    return next_state, outcome.reward, outcome


def step(
    key: Any, state: DrivingState, action: Any, params: DrivingParams
) -> tuple[Any, DrivingState, Any, Any, Any, dict[str, Any]]:
    """Steps one environment (gymnax signature; ``key`` is unused, see the module docstring).

    Returns:
        ``(obs, state, reward, terminated, truncated, info)``; truncated is ``time >= max_steps``.
        info holds ``crashed``/``off_road`` () bool and ``speed`` () float32 [m/s].
    """
    del key
    next_state, reward, outcome = transition(state, action_to_command(action, params), params)
    info = {"crashed": outcome.crashed, "off_road": outcome.off_road, "speed": next_state.ego_speed}
    truncated = next_state.time >= params.max_steps
    return observe(next_state, params), next_state, reward, outcome.terminated, truncated, info


def observe(state: DrivingState, params: DrivingParams) -> Any:
    """The state observation, (:func:`obs_dim`,) float32, in the ego car's road frame.

    ======  ====================================================  =====
    idx     meaning                                               unit
    ======  ====================================================  =====
    0       ego lateral position from the road's centre line       m
    1       ego heading (0 along the road, + to the left)          rad
    2       ego speed                                              m/s
    3       ego offset from the nearest lane centre                m
    4+3k    k-th nearest car: x - ego x                            m
    5+3k    k-th nearest car: y - ego y                            m
    6+3k    k-th nearest car: its speed - ego's speed along x      m/s
    ======  ====================================================  =====

    Cars are sorted by distance, nearest first (k = 0 .. obs_cars - 1).
    """
    xp = traffic.namespace(state.car_speed)
    ego_x, ego_y = state.ego_position[0], state.ego_position[1]
    dx = state.car_position[:, 0] - ego_x
    dy = state.car_position[:, 1] - ego_y
    dv = state.car_speed - state.ego_speed * xp.cos(state.ego_heading)
    nearest = xp.argsort(dx * dx + dy * dy)[: params.obs_cars]
    cars = xp.stack([dx[nearest], dy[nearest], dv[nearest]], axis=-1).reshape(-1)
    ego = xp.stack(
        [
            ego_y - params.road_width / 2,
            state.ego_heading,
            state.ego_speed,
            task.lane_offset(ego_y, params),
        ]
    )
    return xp.concatenate([ego, cars]).astype(xp.float32)


def as_numpy(state: DrivingState) -> DrivingState:
    """Copies a state's leaves to NumPy, e.g. to step it on the host path."""
    return jax.tree_util.tree_map(lambda x: np.array(x), state)


def as_jax(state: DrivingState) -> DrivingState:
    """Moves a state's leaves onto the default JAX device."""
    return jax.tree_util.tree_map(jnp.asarray, state)
