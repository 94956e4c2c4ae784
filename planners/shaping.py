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
:func:`driving_penalty` the driving task's barriers at the road's edges and around the other cars,
for either model state too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from envs.driving import core as driving_core
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
    """``model_step`` whose reward is reduced by ``penalty(next_state)`` (differentiable).

    A sampled step's key (``planners.cem``'s ``stochastic_model``) is passed through.
    """

    def step(params: Any, state: Any, action: jax.Array, *key: jax.Array) -> tuple[Any, jax.Array]:
        next_state, reward = model_step(params, state, action, *key)
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


def driving_penalty(
    road: BarrierConfig, cars: BarrierConfig, params: DrivingParams, state_kind: str
) -> Penalty:
    """The driving task's barriers at the road's edges and around the other cars.

    Leaving the road and crashing end the episode with indicator penalties, which have no
    gradient. ``soft_barrier(clearance, 0, road)`` grows as the gap [m] between the ego car's
    bounding box and the nearer road edge falls below ``road.margin``
    (:func:`envs.driving.task.road_clearance`); ``cars`` does the same, summed over the cars, for
    the gap to each car's box (:func:`envs.driving.task.car_clearance`). A config with weight 0
    turns its barrier off.

    Args:
        road: barrier at the road's edges.
        cars: barrier around each other car.
        params: the task's sizes.
        state_kind: ``"env_state"`` (a :class:`DrivingState`, true-dynamics planning: every car)
            or ``"obs"`` ((obs_dim,) state observation, learned-model planning: the
            ``params.obs_cars`` nearest cars it lists).

    Returns:
        ``penalty(state) -> ()`` cost.

    Raises:
        ValueError: unknown ``state_kind``.
    """

    def cost(y: jax.Array, heading: jax.Array, dx: jax.Array, dy: jax.Array) -> jax.Array:
        total = jnp.zeros(())
        if road.enabled:
            total += soft_barrier(driving_task.road_clearance(y, heading, params), 0.0, road)
        if cars.enabled:
            clearance = driving_task.car_clearance(heading, dx, dy, params)
            total += jnp.sum(soft_barrier(clearance, 0.0, cars))
        return total

    if state_kind == "env_state":

        def from_state(state: DrivingState) -> jax.Array:
            ego = state.ego_position
            dx = state.car_position[:, 0] - ego[0]
            dy = state.car_position[:, 1] - ego[1]
            return cost(ego[1], state.ego_heading, dx, dy)

        return from_state
    if state_kind == "obs":
        obs_dim = driving_core.obs_dim(params)

        def from_obs(obs: jax.Array) -> jax.Array:
            if obs.shape != (obs_dim,):
                raise ValueError(f"obs must have shape ({obs_dim},), got {obs.shape}")
            others = obs[driving_core.EGO_FEATURES :].reshape(-1, driving_core.CAR_FEATURES)
            y = obs[0] + params.road_width / 2  # obs[0] is measured from the centre line
            return cost(y, obs[1], others[:, 0], others[:, 1])

        return from_obs
    raise ValueError(f"state_kind={state_kind!r}: expected 'env_state' or 'obs'")
