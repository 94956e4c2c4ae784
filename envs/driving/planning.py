"""The driving task's own dynamics as a planner model (``planners.gbp`` / ``planners.cem``).

``model_step(params, state, action)`` is :func:`envs.driving.core.transition` (ego car, traffic,
``task.outcome``'s reward: the env's reward, not a copy), differentiable in the action through
the ego car, the proximity and the lane costs. ``done_fn`` masks rewards after a crash or leaving
the road. Plan with ``params.replace(lane_change_rate=0.0)`` for a model that foresees no lane
changes: the traffic's random draws live in the state, so with the env's own params a planner
would see the very lane changes the episode will make. ``planners.shaping.road_penalty`` is the
soft road-edge barrier that gradient-based planning needs here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.driving import core, task
from envs.driving.params import DrivingParams


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
