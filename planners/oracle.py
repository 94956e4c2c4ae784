"""The spaceship's own JAX dynamics as a planner model (the "true dynamics" oracle).

``model_step(params, state, action_vector)`` runs :func:`envs.spaceship.core.transition` (physics,
``envs.spaceship.task.reward`` and target bookkeeping: the env's reward, not a copy) on the
env ``State`` pytree; ``done_fn`` is ``task.terminated``, so the planners mask rewards after a
crash, an escape or the last target. The relaxed model action of :mod:`planners.relax` is
mapped to a
thrust command differentiably:

* continuous: ``core.action_to_thrust`` (clip to the box, scale to ``|u| <= 1``);
* discrete: ``probs @ table`` with ``table[k] = core.action_to_thrust(k)``, so a vertex of the
  simplex is exactly the env's thrust for that action and interior points interpolate;
* hybrid: ``p_fire * (cos, sin)``, exactly the env's map at ``p_fire in {0, 1}``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.spaceship import core, task
from envs.spaceship.params import SpaceshipParams


def thrust_table(params: SpaceshipParams) -> jax.Array:
    """(num_discrete_actions, 2) thrust command of every discrete action."""
    discrete = params.replace(action_mode="discrete")
    return jnp.stack(
        [
            core.action_to_thrust(jnp.asarray(k, jnp.int32), discrete)
            for k in range(params.num_discrete_actions)
        ]
    )


def vector_to_thrust(action_vector: jax.Array, params: SpaceshipParams) -> jax.Array:
    """(2,) thrust command of a (relaxed) model action vector of ``params.action_mode``."""
    if params.action_mode == "continuous":
        return core.action_to_thrust(action_vector, params)
    if params.action_mode == "discrete":
        return action_vector @ thrust_table(params)
    if params.action_mode == "hybrid":
        return action_vector[1] * action_vector[2:4]
    raise ValueError(f"params.action_mode={params.action_mode!r} is not a known action mode")


def model_step(
    params: SpaceshipParams, state: core.SpaceshipState, action_vector: jax.Array
) -> tuple[core.SpaceshipState, jax.Array]:
    """One true step from a model action vector: ``(next_state, reward)``; differentiable."""
    next_state, reward, _ = core.transition(state, vector_to_thrust(action_vector, params), params)
    return next_state, reward


def done_fn(params: SpaceshipParams, state: core.SpaceshipState) -> Any:
    """() bool: the episode has ended at ``state`` (crash, escape or all targets visited)."""
    return task.terminated(state, params)
