"""The other cars: IDM car following, random MOBIL-safe lane changes, and recycling.

Every function is pure, written for one environment over the arrays of its ``N`` cars, and runs
on NumPy arrays (the Gymnasium single env) or ``jax.numpy`` arrays and tracers (the vector and
JAX envs): ``xp`` is the array namespace of the inputs.

Car following is the Intelligent Driver Model (Treiber, Hennecke & Helbing, Phys. Rev. E 62,
2000):
    a = a_max * (1 - (v / v0)^4 - (s* / s)^2)
    s* = s0 + max(0, v T + v (v - v_lead) / (2 sqrt(a_max b)))
with s the bumper-to-bumper gap to the car ahead. Lane changes are random (a Poisson process per
car, the source of the traffic's unpredictability) and made only when MOBIL's safety criterion
holds (Kesting, Treiber & Helbing, TRR 1999, 2007): neither the changing car nor its new follower
must brake harder than ``lane_change_safe_decel``. The ego car counts as a vehicle in every gap,
so traffic reacts to it, but it is never moved here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.driving.params import DrivingParams

NO_GAP = 1e6
"""Gap [m] that stands for "no vehicle in the way" (finite, so gradients stay finite)."""


def namespace(x: Any) -> Any:
    """NumPy for NumPy inputs, ``jax.numpy`` otherwise."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    import jax.numpy as jnp

    return jnp


def lane_centre(lane: Any, params: DrivingParams) -> Any:
    """Lateral position of the centre of lane ``lane`` (int, any shape) [m]."""
    return (lane + 0.5) * params.lane_width


def idm_acceleration(
    speed: Any, lead_speed: Any, gap: Any, desired_speed: Any, params: DrivingParams
) -> Any:
    """IDM acceleration [m/s^2], clipped to [-idm_max_brake, idm_accel]; arrays broadcast.

    Args:
        speed: follower speed v [m/s].
        lead_speed: speed of the vehicle ahead [m/s] (any value when there is none).
        gap: bumper-to-bumper distance to it [m]; ``NO_GAP`` when there is none.
        desired_speed: the follower's desired speed v0 [m/s], > 0.
        params: IDM constants.
    """
    xp = namespace(speed)
    comfort = 2.0 * xp.sqrt(xp.float32(params.idm_accel * params.idm_decel))
    dynamic = speed * params.idm_headway + speed * (speed - lead_speed) / comfort
    desired_gap = params.idm_min_gap + xp.maximum(dynamic, 0.0)
    free = 1.0 - (speed / desired_speed) ** 4
    interaction = (desired_gap / xp.maximum(gap, 0.1)) ** 2
    return xp.clip(params.idm_accel * (free - interaction), -params.idm_max_brake, params.idm_accel)


def gaps_ahead(
    x: Any, y: Any, from_x: Any, from_y: Any, params: DrivingParams, claims: Any = None
) -> tuple[Any, Any]:
    """For each query point, the bumper gap to and index of the nearest vehicle ahead in its lane.

    Args:
        x: (M,) positions along the road of the vehicles that may be ahead [m].
        y: (M,) their lateral positions [m].
        from_x: (Q,) query positions along the road [m]; a vehicle at the query's x is not ahead.
        from_y: (Q,) query lateral positions [m].
        params: car size and ``follow_width``.
        claims: optional (Q, M) bool: vehicle m counts as in query q's lane wherever it is
            (the same target lane: cars moving into a lane, or out of it, are in it).

    Returns:
        ``(gap, index)``: (Q,) gaps [m] (``NO_GAP`` when none) and (Q,) int indices into x.
    """
    xp = namespace(x)
    dx = x[None, :] - from_x[:, None]
    in_lane = xp.abs(y[None, :] - from_y[:, None]) < params.follow_width
    if claims is not None:
        in_lane = in_lane | claims
    gap = xp.where(in_lane & (dx > 0), dx - params.car_length, NO_GAP)
    index = xp.argmin(gap, axis=1)
    return xp.min(gap, axis=1), index


def gaps_behind(
    x: Any, y: Any, from_x: Any, from_y: Any, params: DrivingParams, claims: Any = None
) -> tuple[Any, Any]:
    """As :func:`gaps_ahead`, for the nearest vehicle behind each query point."""
    return gaps_ahead(-x, y, -from_x, from_y, params, claims)


def follow(
    vehicle_x: Any,
    vehicle_y: Any,
    vehicle_speed: Any,
    lane: Any,
    desired_speed: Any,
    params: DrivingParams,
) -> Any:
    """IDM accelerations of the cars, (N,) [m/s^2].

    Args:
        vehicle_x: (N + 1,) every vehicle's position along the road, the ego car last [m].
        vehicle_y: (N + 1,) their lateral positions [m].
        vehicle_speed: (N + 1,) their speeds along the road [m/s].
        lane: (N,) int32 the cars' target lanes.
        desired_speed: (N,) the cars' desired speeds [m/s].
        params: IDM constants and lane geometry.
    """
    xp = namespace(vehicle_x)
    num_cars = lane.shape[0]
    cars = slice(0, num_cars)
    # A car follows whoever is ahead within follow_width of it, and whoever shares its target
    # lane: during a lane change it watches both its old lane and the new one.
    ego_lane = xp.clip(xp.floor(vehicle_y[-1:] / params.lane_width), 0, params.num_lanes - 1)
    all_lanes = xp.concatenate([lane.astype(ego_lane.dtype), ego_lane])
    claims = lane[:, None] == all_lanes[None, :]
    gap, lead = gaps_ahead(vehicle_x, vehicle_y, vehicle_x[cars], vehicle_y[cars], params, claims)
    return idm_acceleration(vehicle_speed[cars], vehicle_speed[lead], gap, desired_speed, params)


def lane_change(
    lane: Any,
    vehicle_x: Any,
    vehicle_y: Any,
    vehicle_speed: Any,
    desired_speed: Any,
    draws: Any,
    params: DrivingParams,
) -> Any:
    """Lets at most one car start a random lane change, if MOBIL's safety criterion allows it.

    Args:
        lane: (N,) int32 target lane of each car.
        vehicle_x: (N + 1,) every vehicle's position along the road, the ego car last [m].
        vehicle_y: (N + 1,) their lateral positions [m].
        vehicle_speed: (N + 1,) their speeds along the road [m/s].
        desired_speed: (N + 1,) desired speeds; the ego car's is ``max_speed`` [m/s].
        draws: (3,) U[0, 1): which car, whether it tries (rate ``lane_change_rate`` per car per
            second), and the direction (left below 0.5).
        params: lane geometry, IDM constants and the safety threshold.

    Returns:
        (N,) int32 lanes, with the chosen car's changed when its change is safe.
    """
    xp = namespace(vehicle_x)
    n = params.num_cars
    car = xp.minimum((draws[0] * n).astype(xp.int32), n - 1)
    tries = draws[1] < xp.minimum(xp.float32(n * params.lane_change_rate * params.dt), 1.0)
    if xp is np and not tries:
        return lane  # host shortcut (most steps): the same result without the gap searches
    target = lane[car] + xp.where(draws[2] < 0.5, 1, -1).astype(xp.int32)
    settled = xp.abs(vehicle_y[car] - lane_centre(lane[car], params)) < 0.1
    # Gaps in the target lane, measured from the car's position moved there; the car itself is
    # taken out of the picture by moving it far away.
    others_x = xp.where(xp.arange(n + 1) == car, -NO_GAP, vehicle_x)
    at_y = lane_centre(target, params)[None].astype(vehicle_y.dtype)
    # Gaps are measured from 1 mm behind (front) and ahead (back) of the car, so that a vehicle
    # exactly alongside is both ahead and behind, with a negative gap: unsafe.
    at_x = vehicle_x[car][None]
    # Cars already changing into the target lane count as in it, wherever they are now: two
    # cars from either side must not merge into the same gap.
    claims = xp.concatenate([lane == target, xp.zeros((1,), bool)])[None, :]
    front_gap, front = gaps_ahead(others_x, vehicle_y, at_x - 1e-3, at_y, params, claims)
    back_gap, back = gaps_behind(others_x, vehicle_y, at_x + 1e-3, at_y, params, claims)
    speed = vehicle_speed[car]
    own = idm_acceleration(speed, vehicle_speed[front[0]], front_gap[0], desired_speed[car], params)
    follower = idm_acceleration(
        vehicle_speed[back[0]], speed, back_gap[0], desired_speed[back[0]], params
    )
    safe = (
        (front_gap[0] > 0)
        & (back_gap[0] > 0)
        & (own >= -params.lane_change_safe_decel)
        & (follower >= -params.lane_change_safe_decel)
    )
    ok = tries & settled & (target >= 0) & (target < params.num_lanes) & safe
    return xp.where((xp.arange(n) == car) & ok, target, lane).astype(xp.int32)


def recycle(
    car_x: Any,
    car_y: Any,
    car_speed: Any,
    desired_speed: Any,
    lane: Any,
    ego_x: Any,
    ego_y: Any,
    draw: Any,
    params: DrivingParams,
) -> tuple[Any, Any, Any, Any, Any]:
    """Moves one car that left the window around the ego car back into it, at the far end.

    A car more than ``view_behind`` behind re-enters ``view_ahead`` ahead, and one more than
    ``view_ahead`` ahead re-enters ``view_behind`` behind, in the lane with the most room there,
    at a new desired speed (and that speed), if that lane is free ``spawn_gap`` around it; else it
    waits outside and tries again next step. At most one car re-enters per step.

    Args:
        car_x: (N,) cars' positions along the road [m].
        car_y: (N,) their lateral positions [m].
        car_speed: (N,) their speeds [m/s].
        desired_speed: (N,) their IDM desired speeds [m/s].
        lane: (N,) int32 target lanes.
        ego_x: () ego position along the road [m].
        ego_y: () ego lateral position [m].
        draw: () U[0, 1) for the new desired speed.
        params: window, lane and speed constants.

    Returns:
        ``(car_x, car_y, car_speed, desired_speed, lane)`` updated.
    """
    xp = namespace(car_x)
    rel = car_x - ego_x
    behind, ahead = rel < -params.view_behind, rel > params.view_ahead
    out = behind | ahead
    if xp is np and not out.any():
        return car_x, car_y, car_speed, desired_speed, lane  # host shortcut, same result
    car = xp.argmax(out)
    spawn_x = xp.where(behind[car], ego_x + params.view_ahead, ego_x - params.view_behind)
    vehicle_x = xp.concatenate(
        [xp.where(xp.arange(params.num_cars) == car, NO_GAP, car_x), ego_x[None]]
    )
    vehicle_y = xp.concatenate([car_y, ego_y[None]])
    lanes = xp.arange(params.num_lanes)
    centres = lane_centre(lanes, params)
    targets = xp.concatenate([lane, xp.full((1,), -1, lane.dtype)])
    in_lane = (xp.abs(vehicle_y[None, :] - centres[:, None]) < params.follow_width) | (
        targets[None, :] == lanes[:, None]
    )
    room = xp.min(xp.where(in_lane, xp.abs(vehicle_x[None, :] - spawn_x), NO_GAP), axis=1)
    best = xp.argmax(room).astype(xp.int32)
    go = out[car] & (room[best] > params.spawn_gap)
    low, high = params.desired_speed_range
    speed = low + draw * (high - low)
    chosen = (xp.arange(params.num_cars) == car) & go
    return (
        xp.where(chosen, spawn_x, car_x),
        xp.where(chosen, centres[best].astype(car_y.dtype), car_y),
        xp.where(chosen, speed, car_speed),
        xp.where(chosen, speed, desired_speed),
        xp.where(chosen, best, lane).astype(xp.int32),
    )
