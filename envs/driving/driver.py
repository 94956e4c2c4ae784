"""A hand-written ego driver: lane keeping by steering feedback, speed by the IDM.

A baseline policy (what a careful driver who never changes lanes does) and the behaviour policy
of ``python -m experiments.driving``'s frame dataset. Pure and written for one state, on NumPy or
JAX arrays like the core (``traffic.namespace``); ``jax.vmap`` batches it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

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


def exploring_driver(
    params: DrivingParams, noise_std: float = 0.4, random_prob: float = 0.1
) -> Callable[[Any, Any, DrivingState, Any], tuple[Any, Any]]:
    """A behaviour policy for a forward model's data: the IDM driver, perturbed.

    Each step the command is :func:`idm_driver`'s plus Gaussian noise of std ``noise_std`` on
    both entries, or, with probability ``random_prob``, a uniform random command; clipped to
    [-1, 1]. The noise carries the car off its lane and towards other cars, so the data show what
    the planner's actions do, not only the driver's; the feedback brings it back, so the data are
    not cut short by crashes as a random policy's are (off the road after 19 steps on average).

    Returns:
        ``policy(carry, obs, state, key) -> (command (2,), carry)`` on JAX arrays (the interface
        of ``world_models.data.collect``); the carry is unused (pass ``None``).

    Raises:
        ValueError: ``noise_std < 0`` or ``random_prob`` outside [0, 1].
    """
    if not noise_std >= 0 or not 0.0 <= random_prob <= 1.0:
        raise ValueError(
            f"noise_std={noise_std!r} must be >= 0 and random_prob={random_prob!r} in [0, 1]"
        )

    def policy(carry: Any, obs: Any, state: DrivingState, key: Any) -> tuple[Any, Any]:
        del obs
        noise_key, pick_key, random_key = jax.random.split(key, 3)
        command = idm_driver(state, params) + noise_std * jax.random.normal(noise_key, (2,))
        uniform = jax.random.uniform(random_key, (2,), minval=-1.0, maxval=1.0)
        command = jnp.where(jax.random.bernoulli(pick_key, random_prob), uniform, command)
        return jnp.clip(command, -1.0, 1.0), carry

    return policy
