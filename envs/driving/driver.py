"""A hand-written ego driver: lane keeping by steering feedback, speed by the IDM.

A baseline policy (what a careful driver who never changes lanes does) and the behaviour policy
of ``python -m experiments.driving``'s frame dataset. Pure and written for one state, on NumPy or
JAX arrays like the core (``traffic.namespace``); ``jax.vmap`` batches it.
"""

from __future__ import annotations

from typing import Any

from envs.driving import traffic
from envs.driving.core import DrivingState
from envs.driving.params import DrivingParams

LATERAL_GAIN = 0.02
"""Front-wheel angle per metre of offset from the lane centre [rad/m]."""
HEADING_GAIN = 0.6
"""Front-wheel angle per radian of heading [-]."""


def idm_driver(state: DrivingState, params: DrivingParams, desired_speed: float = 25.0) -> Any:
    """The (throttle, steering) command, (2,) in [-1, 1], of a lane-keeping IDM driver.

    Steering: wheel angle ``-(LATERAL_GAIN * offset + HEADING_GAIN * heading)`` towards the
    centre of the lane the car is in. Speed: the IDM acceleration (``traffic.idm_acceleration``)
    behind the nearest car ahead within ``follow_width``, at ``desired_speed`` [m/s].
    """
    xp = traffic.namespace(state.car_speed)
    ego_x, ego_y = state.ego_position[0], state.ego_position[1]
    lane = xp.clip(xp.floor(ego_y / params.lane_width), 0, params.num_lanes - 1)
    offset = ego_y - traffic.lane_centre(lane, params)
    wheel = -(LATERAL_GAIN * offset + HEADING_GAIN * state.ego_heading)
    gap, lead = traffic.gaps_ahead(
        state.car_position[:, 0], state.car_position[:, 1], ego_x[None], ego_y[None], params
    )
    accel = traffic.idm_acceleration(
        state.ego_speed, state.car_speed[lead[0]], gap[0], xp.float32(desired_speed), params
    )
    throttle = xp.where(
        accel >= 0, accel / xp.maximum(params.max_accel, 1e-6), accel / params.max_brake
    )
    steer = wheel / params.max_steer
    return xp.clip(xp.stack([throttle, steer]), -1.0, 1.0).astype(xp.float32)
