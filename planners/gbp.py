"""Gradient-based planning (GBP): gradient ascent on an action sequence through a forward model.

Henaff, Whitney & LeCun (2017), arXiv:1705.07177: given a differentiable forward model, plan the
next ``H`` actions by ``N`` optimiser steps on the summed predicted reward, execute the first
action, and re-plan at the next step from the shifted plan (receding horizon, warm start). As in
brax's APG, the objective is ``jax.grad`` of the return of a ``lax.scan`` of the model step.

The model interface (``model_step``, ``done_fn``), the rollout return and the receding-horizon
wrappers are shared with :mod:`planners.cem` and live in :mod:`planners.mpc`.

The optimiser loop (K restarts, best kept by hard-action return) is the shared
:func:`planners.ascent.maximise`. Everything is written for one state; :func:`make_planner` jits
it once, and ``vmap`` batches it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from planners import ascent as ascent_lib
from planners import relax as relax_lib
from planners.mpc import (
    DoneFn,
    ModelStep,
    PlanResult,
    jit_planner,
    receding_policy,
    rollout_return,
    shift_plan,  # noqa: F401  (re-exported: callers use gbp.shift_plan)
)


@dataclasses.dataclass(frozen=True)
class GBPConfig:
    """Settings of the gradient-based planner."""

    horizon: int = 20
    """Planned steps H."""
    n_iterations: int = 20
    """Optimiser steps N per planned action."""
    learning_rate: float = 0.1
    """Step size of the optimiser on the free action parameters."""
    optimizer: str = "adam"
    """"adam" or "sgd" (plain gradient ascent, as in the paper)."""
    n_restarts: int = 4
    """K plans optimised in parallel (vmap) from different starts; the best is kept."""
    init_std: float = 0.5
    """Std of the Gaussian initial free parameters of the restarts."""
    noise_std: float = 0.0
    """Std of the Gaussian noise on discrete logits at each optimiser step (0 = off)."""
    discount: float = 1.0
    """Per-step discount of predicted rewards in the objective."""
    warm_start: bool = True
    """Restart 0 starts from the shifted previous plan (the policy carry)."""
    unroll: int = 1
    """Model steps unrolled per loop iteration of the rollout (``lax.scan``'s ``unroll``; >= the
    horizon unrolls it fully): fewer sequential loop iterations and kernel launches, longer
    compiles. Pays for small learned models (2-core CPU: the experiment's H10 MLP plan 1.4-2.6x
    faster fully unrolled), not for the true dynamics (4 physics substeps per step: no faster,
    and compiling H20 fully unrolled took 84 s instead of 11 s)."""

    def __post_init__(self) -> None:
        checks = {
            "horizon": self.horizon >= 1,
            "n_iterations": self.n_iterations >= 0,
            "learning_rate": self.learning_rate > 0,
            "optimizer": self.optimizer in ("adam", "sgd"),
            "n_restarts": self.n_restarts >= 1,
            "init_std": self.init_std >= 0,
            "noise_std": self.noise_std >= 0,
            "discount": 0 < self.discount <= 1,
            "unroll": self.unroll >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"GBPConfig.{name}={getattr(self, name)!r} is out of range")

    @property
    def ascent(self) -> ascent_lib.AscentConfig:
        """The optimiser settings of each restart (constant step size, last iterate kept)."""
        return ascent_lib.AscentConfig(
            steps=self.n_iterations, learning_rate=self.learning_rate, optimizer=self.optimizer
        )


def plan_objective(
    z: jax.Array,
    noise: jax.Array | None,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    discount: float = 1.0,
    done_fn: DoneFn | None = None,
    unroll: int = 1,
) -> jax.Array:
    """Predicted return of free parameters ``z`` (H, param_dim) through the relaxation."""
    if noise is None:
        actions = jax.vmap(relax.relaxed)(z)
    else:
        actions = jax.vmap(relax.relaxed)(z, noise)
    return rollout_return(model_step, model_params, state, actions, discount, done_fn, unroll)


def hard_return(
    z: jax.Array,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    discount: float = 1.0,
    done_fn: DoneFn | None = None,
    unroll: int = 1,
) -> jax.Array:
    """Predicted return of the actions that would actually be executed (hard, no noise)."""
    actions = jax.vmap(relax.hard_vector)(z)
    return rollout_return(model_step, model_params, state, actions, discount, done_fn, unroll)


def noisy_objective(
    config: GBPConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    done_fn: DoneFn | None = None,
) -> ascent_lib.Objective:
    """The ascent objective ``(z, key) -> ()``: :func:`plan_objective` with fresh logit noise.

    ``key`` draws Gaussian noise of std ``config.noise_std`` on the discrete logits of ``z``
    (H, param_dim), as in the paper's exploration of discrete actions.
    """
    noise_mask = jnp.asarray(relax_lib.discrete_noise_mask(relax))

    def objective(z: jax.Array, key: jax.Array) -> jax.Array:
        noise = config.noise_std * noise_mask * jax.random.normal(key, z.shape)
        return plan_objective(
            z,
            noise,
            relax,
            model_step,
            model_params,
            state,
            config.discount,
            done_fn,
            config.unroll,
        )

    return objective


def plan(
    config: GBPConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    init_plan: jax.Array,
    key: jax.Array,
    done_fn: DoneFn | None = None,
) -> PlanResult:
    """Plans from one state: K restarts optimised in parallel, best (hard-action return) kept.

    Args:
        config: planner settings.
        relax: action relaxation (:mod:`planners.relax`).
        model_step: ``(model_params, state, action) -> (next_state, reward)``.
        model_params: parameters of the model.
        state: the current state pytree (one state, no batch axis).
        init_plan: (H, param_dim) warm start for restart 0 (e.g. :func:`shift_plan` of the last).
        key: PRNG key.
        done_fn: optional termination test for reward masking.

    Returns:
        A :class:`PlanResult`.
    """
    shape = (config.horizon, relax.param_dim)
    if init_plan.shape != shape:
        raise ValueError(f"init_plan: expected shape {shape}, got {init_plan.shape}")
    init_key, opt_key = jax.random.split(key)
    starts = config.init_std * jax.random.normal(init_key, (config.n_restarts, *shape))
    if config.warm_start:
        starts = starts.at[0].set(init_plan)
    result = ascent_lib.maximise(
        noisy_objective(config, relax, model_step, model_params, state, done_fn),
        starts,
        opt_key,
        config.ascent,
        score=functools.partial(
            hard_return,
            relax=relax,
            model_step=model_step,
            model_params=model_params,
            state=state,
            discount=config.discount,
            done_fn=done_fn,
            unroll=config.unroll,
        ),
    )
    return PlanResult(result.x, relax.hard(result.x[0]), result.score, result.scores)


def init_plan(config: GBPConfig, relax: relax_lib.Relaxation) -> jax.Array:
    """A neutral first plan: zeros (no thrust, or uniform over discrete actions)."""
    return jnp.zeros((config.horizon, relax.param_dim), jnp.float32)


def make_planner(
    config: GBPConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    done_fn: DoneFn | None = None,
) -> Callable[[Any, Any, jax.Array, jax.Array], PlanResult]:
    """``jit(plan)`` with the static parts bound: ``(model_params, state, init_plan, key)``."""
    return jit_planner(plan, config, relax, model_step, done_fn)


def make_policy(
    config: GBPConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    *,
    use_env_state: bool = False,
    done_fn: DoneFn | None = None,
) -> Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[Any, jax.Array]]:
    """A policy ``(carry, obs, state, key) -> (action, carry)`` that re-plans every step.

    The carry is the previous plan (H, param_dim), start it with :func:`init_plan`. The model
    state is ``obs`` for a learned model and the env ``state`` when ``use_env_state`` (oracle).
    Pure and not jitted, for ``evaluate_jax`` and ``data.collect``, which jit it with their own
    loop; in a host loop wrap it in ``jax.jit`` or use :func:`make_planner`.
    """
    return receding_policy(
        plan, config, relax, model_step, model_params, use_env_state=use_env_state, done_fn=done_fn
    )
