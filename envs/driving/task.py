"""Reward and episode end of the driving task, shared by the env and any planner.

Written for one environment on NumPy or JAX arrays (``traffic.namespace``), differentiable in the
ego car's state: progress, proximity and lane costs are smooth almost everywhere.

Proximity follows the spirit of Henaff, Canziani & LeCun's driving cost (ICLR 2019): a car ahead
or behind costs more the closer it is, relative to a safe distance that grows with speed:
    proximity = max_j  relu(1 - |dx_j| / (car_length + v * 1 s)) * relu(1 - |dy_j| / lane_width)
"""

from __future__ import annotations

from typing import Any, NamedTuple

from envs.driving import traffic
from envs.driving.params import DrivingParams

SAFE_HEADWAY = 1.0
"""Time headway [s] in the proximity cost's safe distance."""


class Outcome(NamedTuple):
    """What one step of the task gave."""

    reward: Any
    """() float32 reward."""
    terminated: Any
    """() bool: crashed or off the road."""
    crashed: Any
    """() bool: the ego car overlaps another car."""
    off_road: Any
    """() bool: the ego car is partly off the road."""
    proximity: Any
    """() float32 proximity to the nearest car, in [0, 1]."""


def lane_offset(y: Any, params: DrivingParams) -> Any:
    """Signed distance from the nearest lane centre [m], in [-lane_width / 2, lane_width / 2].

    The wrap is discontinuous at lane boundaries, where float32 rounding can pick either lane
    and land an ulp beyond half a lane (y = 14.8 with 3.7 m lanes: -1.8500004); the clip keeps
    the observation inside its space's bounds, and changes the lane cost by ~1e-7 there only.
    """
    xp = traffic.namespace(y)
    w = params.lane_width
    return xp.clip((y - w / 2) - w * xp.round((y - w / 2) / w), -w / 2, w / 2)


def half_extents(heading: Any, params: DrivingParams) -> tuple[Any, Any]:
    """Half-length and half-width of the ego car's bounding box along x and y [m]."""
    xp = traffic.namespace(heading)
    c, s = xp.abs(xp.cos(heading)), xp.abs(xp.sin(heading))
    half_x = 0.5 * (params.car_length * c + params.car_width * s)
    half_y = 0.5 * (params.car_length * s + params.car_width * c)
    return half_x, half_y


def proximity(position: Any, speed: Any, car_position: Any, params: DrivingParams) -> Any:
    """Proximity cost in [0, 1] of an ego car at ``position`` (2,) [m] with ``speed`` [m/s].

    Args:
        position: (2,) ego centre [m].
        speed: () ego speed [m/s].
        car_position: (N, 2) other cars' centres [m].
        params: car size and lane width.
    """
    xp = traffic.namespace(car_position)
    dx = xp.abs(car_position[:, 0] - position[0])
    dy = xp.abs(car_position[:, 1] - position[1])
    safe = params.car_length + speed * SAFE_HEADWAY
    near = xp.maximum(1.0 - dx / safe, 0.0) * xp.maximum(1.0 - dy / params.lane_width, 0.0)
    return xp.max(near)


def car_clearance(heading: Any, dx: Any, dy: Any, params: DrivingParams) -> Any:
    """Gap [m] between the ego car's footprint and each car, negative where they overlap.

    Args:
        heading: () ego heading [rad].
        dx: (N,) each car's x minus the ego car's x [m].
        dy: (N,) each car's y minus the ego car's y [m].
        params: the task's sizes.

    Returns:
        (N,) ``max(|dx| - reach_x, |dy| - reach_y)``, each reach the sum of the two boxes'
        half-extents along that axis: the boxes overlap exactly where it is < 0. The ego car's
        footprint is the bounding box of its rotated rectangle (:func:`half_extents`).
    """
    xp = traffic.namespace(dx)
    half_x, half_y = half_extents(heading, params)
    return xp.maximum(
        xp.abs(dx) - half_x - params.car_length / 2, xp.abs(dy) - half_y - params.car_width / 2
    )


def road_clearance(y: Any, heading: Any, params: DrivingParams) -> Any:
    """() gap [m] between the ego car's footprint and the nearer road edge, < 0 when off it."""
    xp = traffic.namespace(y)
    _, half_y = half_extents(heading, params)
    return xp.minimum(y - half_y, params.road_width - y - half_y)


def collisions(state: Any, params: DrivingParams) -> tuple[Any, Any]:
    """``(crashed, off_road)``, () bools, of a state: its ego car overlaps a car / the verge."""
    xp = traffic.namespace(state.car_speed)
    position = state.ego_position
    dx = state.car_position[:, 0] - position[0]
    dy = state.car_position[:, 1] - position[1]
    crashed = xp.any(car_clearance(state.ego_heading, dx, dy, params) < 0.0)
    off_road = road_clearance(position[1], state.ego_heading, params) < 0.0
    return crashed, off_road


def outcome(state: Any, next_state: Any, command: Any, params: DrivingParams) -> Outcome:
    """Reward and end of the step ``state -> next_state`` (command: (2,) in [-1, 1]).

    reward = progress_reward * (metres driven along x)
             - proximity_cost * proximity - lane_cost * (2 offset / lane_width)^2
             - crash_penalty [if crashed] - off_road_penalty [if off the road]
    """
    del command  # no control cost: braking and steering are priced by their consequences
    xp = traffic.namespace(next_state.car_speed)
    position = next_state.ego_position
    crashed, off_road = collisions(next_state, params)
    near = proximity(position, next_state.ego_speed, next_state.car_position, params)
    offset = 2.0 * lane_offset(position[1], params) / params.lane_width
    reward = (
        params.progress_reward * (position[0] - state.ego_position[0])
        - params.proximity_cost * near
        - params.lane_cost * offset * offset
        - xp.where(crashed, params.crash_penalty, 0.0)
        - xp.where(off_road, params.off_road_penalty, 0.0)
    )
    return Outcome(
        reward=xp.asarray(reward, dtype=xp.float32),
        terminated=crashed | off_road,
        crashed=crashed,
        off_road=off_road,
        proximity=xp.asarray(near, dtype=xp.float32),
    )
