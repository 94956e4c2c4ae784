"""Reward and termination of the spaceship task, written once for the env and the planners.

Reward of a step from ``state`` to ``moved`` (physics applied, target not yet advanced):
    progress_scale * (|p - target| - |p' - target|)     progress towards the current target
  + target_bonus   * [|p' - target| < target_tolerance]
  - fuel_cost      * |u|^2
  - crash_penalty  * [ship inside the planet]
  - escape_penalty * [ship outside the arena]
The progress term telescopes, so it shapes without changing which plans are best, and it gives
gradient-based planners a signal everywhere. The indicator terms are piecewise constant.
Like ``core.py``, every function runs on host NumPy scalars or on JAX arrays (``envs.ops``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from envs.ops import ops_for
from envs.spaceship.params import SpaceshipParams

if TYPE_CHECKING:
    from envs.spaceship.core import SpaceshipState

_EPS = 1e-6


def _distance(ops: Any, position: Any, point: Any) -> Any:
    (px, py), (qx, qy) = ops.xy(position), ops.xy(point)
    return ops.sqrt((px - qx) * (px - qx) + (py - qy) * (py - qy) + _EPS)


def current_target(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """(2,) position of the target being sought (the last one once all are visited) [m]."""
    ops = ops_for(state.planet_radius)
    return state.targets[ops.minimum(state.target_index, params.num_targets - 1)]


def crashed(state: SpaceshipState) -> Any:
    """() bool: the ship is inside the planet."""
    ops = ops_for(state.planet_radius)
    return _distance(ops, state.position, state.planet_position) < state.planet_radius


def escaped(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """() bool: the ship is outside the arena square."""
    w = params.arena_half_width
    px, py = ops_for(state.planet_radius).xy(state.position)
    return (px > w) | (px < -w) | (py > w) | (py < -w)


def reached(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """() bool: the ship is within tolerance of its current (unvisited) target."""
    ops = ops_for(state.planet_radius)
    distance = _distance(ops, state.position, current_target(state, params))
    return (distance < params.target_tolerance) & (state.target_index < params.num_targets)


class Outcome(NamedTuple):
    """Everything a step decides, computed once (see :func:`outcome`)."""

    reward: Any
    """() float32 reward of the step."""
    next_state: Any
    """The moved state with its target index advanced."""
    terminated: Any
    """() bool: crashed, escaped, or every target visited."""
    reached: Any
    """() bool: the current target was reached this step."""
    crashed: Any
    """() bool: the ship is inside the planet."""
    escaped: Any
    """() bool: the ship left the arena."""


def outcome(
    state: SpaceshipState, thrust: Any, moved: SpaceshipState, params: SpaceshipParams
) -> Outcome:
    """Reward, target bookkeeping and termination of the step ``state -> moved``.

    Args:
        state: the state before the step.
        thrust: (2,) thrust command u of the step [-].
        moved: ``core.dynamics(state, thrust, params)``: physics applied, target not advanced.
        params: task parameters.
    """
    ops = ops_for(state.planet_radius)
    index = state.target_index
    target = state.targets[ops.minimum(index, params.num_targets - 1)]
    tx, ty = ops.xy(target)
    px, py = ops.xy(state.position)
    qx, qy = ops.xy(moved.position)
    dx, dy = qx - tx, qy - ty
    distance = ops.sqrt(dx * dx + dy * dy + _EPS)
    hit = (distance < params.target_tolerance) & (index < params.num_targets)
    cx, cy = ops.xy(moved.planet_position)
    cx, cy = qx - cx, qy - cy
    crash = ops.sqrt(cx * cx + cy * cy + _EPS) < ops.scalar(moved.planet_radius)
    w = params.arena_half_width
    escape = (qx > w) | (qx < -w) | (qy > w) | (qy < -w)
    ux, uy = ops.xy(thrust)
    before = ops.sqrt((px - tx) * (px - tx) + (py - ty) * (py - ty) + _EPS)
    total = ops.f32(
        params.progress_scale * (before - distance) * ops.f32(index < params.num_targets)
        + params.target_bonus * ops.f32(hit)
        - params.fuel_cost * (ux * ux + uy * uy)
        - params.crash_penalty * ops.f32(crash)
        - params.escape_penalty * ops.f32(escape)
    )
    index = index + ops.i32(hit)
    next_state = type(moved)(**{**vars(moved), "target_index": index})
    done = crash | escape | (index >= params.num_targets)
    return Outcome(total, next_state, done, hit, crash, escape)


def reward(
    state: SpaceshipState, thrust: Any, moved: SpaceshipState, params: SpaceshipParams
) -> Any:
    """() float32 reward of the step ``state -> moved`` under thrust command ``thrust`` (2,)."""
    return outcome(state, thrust, moved, params).reward


def terminated(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """() bool: crashed, escaped, or every target visited."""
    return crashed(state) | escaped(state, params) | (state.target_index >= params.num_targets)
