"""Planning costs added to a model's reward: a smooth barrier around what ends an episode badly.

A crash (or any failure tested by an indicator) costs the planner a large reward, but an indicator
has no gradient: gradient-based planning cannot see a crash coming, and it steers the ship into the
planet as often as not (on the spaceship, GBP through the true dynamics with the experiment's
horizon crashed in half the episodes). A soft barrier that grows as the ship nears the failure
region gives the optimiser that gradient. It changes only what the planner optimises; returns are
still measured with the env's reward.

``penalised(model_step, penalty)`` wraps any planner model ``(params, state, action) ->
(next_state, reward)`` into one whose reward is ``reward - penalty(next_state)``; GBP, CEM and
DISTGBP take the wrapped model unchanged. :func:`spaceship_penalty` builds the spaceship's planet
barrier for either model state: the env state (true dynamics) or the observation (learned model);
:func:`road_penalty` the driving task's road-edge barrier on its env state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from envs.driving import task as driving_task
from envs.driving.core import DrivingState
from envs.driving.params import DrivingParams
from envs.spaceship import core

ModelStep = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]
Penalty = Callable[[Any], jax.Array]

OBS_PLANET = slice(4, 6)
"""Observation entries holding the planet centre relative to the ship [m] (see core.observe)."""
OBS_RADIUS = 10
"""Observation entry holding the planet radius [m]."""


@dataclasses.dataclass(frozen=True)
class BarrierConfig:
    """A softplus barrier ``weight * scale * softplus((radius + margin - distance) / scale)``.

    Outside ``radius + margin`` it fades to zero within a few ``scale``; inside it grows by about
    ``weight`` reward per metre of approach. ``weight = 0`` turns the barrier off.
    """

    weight: float = 5.0
    """Barrier slope inside the margin [reward / m]; 0 disables the barrier."""
    margin: float = 0.5
    """Clearance above the planet surface where the barrier starts [m]."""
    scale: float = 0.25
    """Softness of the barrier's onset [m]."""

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise ValueError(f"BarrierConfig.weight must be >= 0, got {self.weight}")
        if not self.margin >= 0:
            raise ValueError(f"BarrierConfig.margin must be >= 0, got {self.margin}")
        if not self.scale > 0:
            raise ValueError(f"BarrierConfig.scale must be > 0, got {self.scale}")

    @property
    def enabled(self) -> bool:
        """Whether the barrier costs anything."""
        return self.weight > 0


def soft_barrier(distance: jax.Array, radius: jax.Array, config: BarrierConfig) -> jax.Array:
    """Barrier cost of being ``distance`` [m] from the centre of a sphere of ``radius`` [m].

    Args:
        distance: () or (...) distance to the centre [m].
        radius: () or (...) radius of the forbidden region [m], broadcast with ``distance``.
        config: barrier shape.

    Returns:
        Cost >= 0 with ``distance``'s broadcast shape [reward units].
    """
    inside = (radius + config.margin - distance) / config.scale
    return config.weight * config.scale * jax.nn.softplus(inside)


def penalised(model_step: ModelStep, penalty: Penalty) -> ModelStep:
    """``model_step`` whose reward is reduced by ``penalty(next_state)`` (differentiable)."""

    def step(params: Any, state: Any, action: jax.Array) -> tuple[Any, jax.Array]:
        next_state, reward = model_step(params, state, action)
        return next_state, reward - penalty(next_state)

    return step


def _norm(xy: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(xy), axis=-1) + 1e-6)


def spaceship_penalty(config: BarrierConfig, state_kind: str) -> Penalty:
    """The planet barrier of the spaceship for a model whose state is ``state_kind``.

    Args:
        config: barrier shape.
        state_kind: ``"env_state"`` (a :class:`core.SpaceshipState`, true-dynamics planning) or
            ``"obs"`` ((OBS_DIM,) observation, learned-model planning).

    Returns:
        ``penalty(state) -> ()`` cost.

    Raises:
        ValueError: unknown ``state_kind``.
    """
    if state_kind == "env_state":

        def from_state(state: core.SpaceshipState) -> jax.Array:
            distance = _norm(state.position - state.planet_position)
            return soft_barrier(distance, state.planet_radius, config)

        return from_state
    if state_kind == "obs":

        def from_obs(obs: jax.Array) -> jax.Array:
            if obs.shape[-1] != core.OBS_DIM:
                raise ValueError(f"obs must have {core.OBS_DIM} entries, got shape {obs.shape}")
            return soft_barrier(_norm(obs[..., OBS_PLANET]), obs[..., OBS_RADIUS], config)

        return from_obs
    raise ValueError(f"state_kind={state_kind!r}: expected 'env_state' or 'obs'")


def shaped(model_step: ModelStep, config: BarrierConfig, state_kind: str) -> ModelStep:
    """``model_step`` with the spaceship barrier, or ``model_step`` itself when it is off."""
    if not config.enabled:
        return model_step
    return penalised(model_step, spaceship_penalty(config, state_kind))


def road_penalty(config: BarrierConfig, params: DrivingParams) -> Penalty:
    """The driving task's barrier at the road's edges, on its env state (true dynamics).

    Leaving the road ends the episode with an indicator penalty, which has no gradient; the
    barrier ``soft_barrier(clearance, 0, config)`` grows as the clearance [m] between the ego
    car's bounding box and the nearer road edge falls below ``config.margin``.
    """

    def penalty(state: DrivingState) -> jax.Array:
        _, half_y = driving_task.half_extents(state.ego_heading, params)
        y = state.ego_position[1]
        clearance = jnp.minimum(y - half_y, params.road_width - y - half_y)
        return soft_barrier(clearance, 0.0, config)

    return penalty
