"""The driving task's own dynamics as a planner model (``planners.gbp`` / ``planners.cem``).

``model_step(params, state, action)`` is :func:`envs.driving.core.transition` (ego car, traffic,
``task.outcome``'s reward: the env's reward, not a copy), differentiable in the action through
the ego car, the proximity and the lane costs. ``done_fn`` masks rewards after a crash or leaving
the road. Plan with ``params.replace(lane_change_rate=0.0)`` for a model that foresees no lane
changes: the traffic's random draws live in the state, so with the env's own params a planner
would see the very lane changes the episode will make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from envs.driving import core, task
from envs.driving.params import DrivingParams
from planners.shaping import BarrierConfig, soft_barrier


def model_step(
    params: DrivingParams, state: core.DrivingState, action: jax.Array
) -> tuple[core.DrivingState, jax.Array]:
    """One true step from a (2,) continuous command: ``(next_state, reward)``; differentiable."""
    next_state, reward, _ = core.transition(state, jnp.clip(action, -1.0, 1.0), params)
    return next_state, reward


def done_fn(params: DrivingParams, state: core.DrivingState) -> Any:
    """() bool: the episode has ended at ``state`` (a crash, or off the road)."""
    crashed, off_road = task.collisions(state, params)
    return crashed | off_road


def road_penalty(
    config: BarrierConfig, params: DrivingParams
) -> Callable[[core.DrivingState], jax.Array]:
    """A soft barrier at the road's edges for gradient-based planning (``planners.shaping``).

    Leaving the road ends the episode with an indicator penalty, which has no gradient; the
    barrier ``shaping.soft_barrier(clearance, 0, config)`` grows as the clearance [m] between the
    ego car's bounding box and the nearer road edge falls below ``config.margin``. Wrap the model
    with ``shaping.penalised(model_step, road_penalty(config, params))``; returns are still
    measured with the env's reward.
    """

    def penalty(state: core.DrivingState) -> jax.Array:
        _, half_y = task.half_extents(state.ego_heading, params)
        y = state.ego_position[1]
        clearance = jnp.minimum(y - half_y, params.road_width - y - half_y)
        return soft_barrier(clearance, 0.0, config)

    return penalty
