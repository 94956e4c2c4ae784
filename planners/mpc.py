"""Model-predictive control over a forward model: the pieces GBP and CEM/MPPI share.

A planner optimises the next ``H`` actions through a model, the policy executes the first one
and re-plans at the next step from the shifted plan (receding horizon, warm start). The model
interface, shared by :mod:`planners.gbp` and :mod:`planners.cem`::

    model_step(model_params, state, action_vector) -> (next_state, reward)
    done_fn(model_params, next_state) -> bool         # optional: rewards after it are masked

``state`` is any pytree: the observation vector for a learned model (:mod:`world_models.dynamics`),
or the env's ``State`` for planning through the true dynamics (:mod:`planners.oracle`).
``action_vector`` is the model action of :mod:`planners.relax`. ``model_params`` is an argument, not
a closure, so that one compiled planner serves every retrained model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners import relax as relax_lib

ModelStep = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]
DoneFn = Callable[[Any, Any], jax.Array]


class PlanResult(NamedTuple):
    """What a planner returns for one state."""

    plan: jax.Array
    """(H, param_dim) free parameters of the best plan."""
    action: Any
    """The environment action to execute now (hard first action of the best plan)."""
    objective: jax.Array
    """Scalar predicted return of the best plan, executed with hard actions."""
    returns: jax.Array
    """(K,) predicted return of every restart (hard actions)."""


class _RolloutCarry(NamedTuple):
    state: Any
    alive: jax.Array
    weight: jax.Array
    total: jax.Array


class Rollout(NamedTuple):
    """What :func:`rollout` returns for one start state and one action sequence."""

    total: jax.Array
    """Scalar discounted return ``sum_t discount^t * alive_t * r_t`` (as :func:`rollout_return`)."""
    states: Any
    """The state after each step, leaves with a leading axis H (frozen once the episode ended)."""
    alive: jax.Array
    """(H,) float32: 1 where the episode is still running after the step, else 0."""


def _rollout(
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    actions: jax.Array,
    discount: float,
    done_fn: DoneFn | None,
    unroll: int,
    record: bool,
) -> tuple[_RolloutCarry, Any]:
    def body(carry: _RolloutCarry, action: jax.Array) -> tuple[_RolloutCarry, Any]:
        next_state, reward = model_step(model_params, carry.state, action)
        total = carry.total + carry.weight * carry.alive * reward
        alive = carry.alive
        if done_fn is not None:
            alive = alive * (1.0 - jnp.asarray(done_fn(model_params, next_state), jnp.float32))
        next_state = jax.tree.map(
            lambda new, old: jnp.where(alive > 0, new, old), next_state, carry.state
        )
        new = _RolloutCarry(next_state, alive, carry.weight * discount, total)
        return new, (next_state, alive) if record else None

    one = jnp.ones((), jnp.float32)
    init = _RolloutCarry(state, one, one, jnp.zeros((), jnp.float32))
    return jax.lax.scan(body, init, actions, unroll=unroll)


def rollout_return(
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    actions: jax.Array,
    discount: float = 1.0,
    done_fn: DoneFn | None = None,
    unroll: int = 1,
) -> jax.Array:
    """Discounted return of an action sequence under the model; differentiable.

    After ``done_fn`` fires, later rewards are masked and the state is frozen, so the gradient
    never flows through physics past termination (e.g. inside the planet).

    Args:
        model_step: ``(model_params, state, action) -> (next_state, reward)``.
        model_params: parameters passed to ``model_step``.
        state: the start state pytree.
        actions: (H, action_dim) model actions.
        discount: per-step discount factor.
        done_fn: optional ``(model_params, next_state) -> bool`` termination test.
        unroll: steps unrolled per scan iteration (``lax.scan``'s ``unroll``).

    Returns:
        Scalar ``sum_t discount^t * alive_t * r_t``.
    """
    carry, _ = _rollout(model_step, model_params, state, actions, discount, done_fn, unroll, False)
    return carry.total


def rollout(
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    actions: jax.Array,
    discount: float = 1.0,
    done_fn: DoneFn | None = None,
) -> Rollout:
    """:func:`rollout_return` that also keeps the visited states (same arguments)."""
    carry, (states, alive) = _rollout(
        model_step, model_params, state, actions, discount, done_fn, 1, True
    )
    return Rollout(carry.total, states, alive)


def shift_plan(plan_z: jax.Array) -> jax.Array:
    """Receding horizon: drop the executed step and append a neutral (zero) one."""
    return jnp.concatenate([plan_z[1:], jnp.zeros_like(plan_z[:1])])


def jit_planner(
    plan_fn: Callable[..., PlanResult],
    config: Any,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    done_fn: DoneFn | None = None,
) -> Callable[[Any, Any, jax.Array, jax.Array], PlanResult]:
    """``jit(plan_fn)`` with its static parts bound; shared by GBP and CEM/MPPI."""
    return jax.jit(functools.partial(plan_fn, config, relax, model_step, done_fn=done_fn))


def receding_policy(
    plan_fn: Callable[..., PlanResult],
    config: Any,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    *,
    use_env_state: bool = False,
    done_fn: DoneFn | None = None,
) -> Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[Any, jax.Array]]:
    """Receding-horizon control with any planner ``plan_fn`` (:func:`planners.gbp.plan`, CEM's ...).

    Returns ``policy(carry, obs, state, key) -> (action, carry)`` whose carry is the previous
    plan, shifted by one step (:func:`shift_plan`) as the next warm start.
    """

    def policy(carry: jax.Array, obs: jax.Array, state: Any, key: jax.Array):
        model_state = state if use_env_state else obs
        result = plan_fn(config, relax, model_step, model_params, model_state, carry, key, done_fn)
        return result.action, shift_plan(result.plan)

    return policy
