"""Gradient ascent from K starts at once: the optimiser core every gradient planner shares.

:func:`maximise` runs ``config.steps`` optax steps on ``objective(x, key) -> ()`` from each of K
starts (``vmap`` over the restarts, ``lax.scan`` over the steps), then picks the restart whose
result has the highest ``score``. ``x`` is any pytree of float arrays (an action sequence, block
offsets, a poke's angle and length). Options, all off unless asked for:

* a step-size schedule (constant, or linear / cosine decay to ``final_lr_fraction`` of it);
* ``project(x) -> x`` after every update (e.g. clip to the action bounds);
* ``gradient_noise(grad, key, step) -> grad`` before every update (e.g. annealed Gaussian noise,
  Neelakantan et al. 2015);
* ``keep_best``: return the best iterate seen rather than the last one.

Gradients are ``nan_to_num``-ed by default, so one diverging rollout cannot poison a plan.
Nothing here is jitted: callers ``jit`` their planner once, at the outermost entry.

Used by :mod:`planners.gbp` (action sequences through a model), :mod:`envs.towers.grad_planning`
(block offsets through PhysNet) and :mod:`experiments.poke_goal` (pokes through the EEN model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from world_models.optimizer import SCHEDULES, decay_schedule

Objective = Callable[[Any, jax.Array], jax.Array]
"""``objective(x, key) -> ()``: the value to maximise at one iterate ``x`` (a pytree)."""
Score = Callable[[Any], jax.Array]
"""``score(x) -> ()``: ranks the restarts' results (higher is better)."""
Project = Callable[[Any], Any]
"""``project(x) -> x``: maps an iterate back into the feasible set."""
GradientNoise = Callable[[Any, jax.Array, jax.Array], Any]
"""``gradient_noise(grad, key, step) -> grad``: perturbs the ascent direction at ``step``."""


@dataclasses.dataclass(frozen=True)
class AscentConfig:
    """Settings of the gradient ascent."""

    steps: int = 50
    """Optimiser steps N per restart (N objective evaluations)."""
    learning_rate: float = 0.1
    """Initial step size, in the units of ``x`` per step."""
    optimizer: str = "adam"
    """"adam" or "sgd" (plain gradient ascent)."""
    schedule: str = "constant"
    """"constant" step size, or "linear" / "cosine" decay to ``final_lr_fraction`` of it over
    the steps (the trainer's :func:`world_models.optimizer.decay_schedule`)."""
    final_lr_fraction: float = 0.1
    """Step size after ``steps`` steps over the initial one (decaying schedules only)."""
    keep_best: bool = False
    """Return the iterate with the highest objective among ``x_0 .. x_{N-1}`` (the ones whose
    objective was evaluated) instead of the last iterate ``x_N``."""
    nan_safe: bool = True
    """Replace NaN gradients by 0 and infinite ones by the largest finite float."""

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 0,
            "learning_rate": self.learning_rate > 0,
            "optimizer": self.optimizer in ("adam", "sgd"),
            "schedule": self.schedule in SCHEDULES,
            "final_lr_fraction": self.final_lr_fraction >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"AscentConfig.{name}={getattr(self, name)!r} is out of range")


class AscentCarry(NamedTuple):
    """Carry of the optimiser scan of one restart."""

    x: Any
    """The current iterate (pytree)."""
    opt_state: optax.OptState
    """Optimiser state."""
    key: jax.Array
    """PRNG key; split once per step."""
    best_x: Any
    """The iterate with the highest objective so far (``keep_best``; else the start)."""
    best_value: jax.Array
    """() its objective (-inf before the first step)."""


class AscentResult(NamedTuple):
    """What :func:`maximise` returns."""

    x: Any
    """The result of the restart with the highest score (pytree shaped like one start)."""
    score: jax.Array
    """() its score."""
    candidates: Any
    """The result of every restart (pytree with a leading (K,) axis)."""
    scores: jax.Array
    """(K,) score of every restart; non-finite scores are replaced by -inf."""


def make_optimizer(config: AscentConfig) -> optax.GradientTransformation:
    """The optax optimiser of ``config`` (it minimises: feed it the negated gradient)."""
    rate = decay_schedule(
        config.schedule, config.learning_rate, config.final_lr_fraction, config.steps
    )
    if config.optimizer == "adam":
        return optax.adam(rate)
    return optax.sgd(rate)


def ascend(
    objective: Objective,
    x0: Any,
    key: jax.Array,
    config: AscentConfig,
    project: Project | None = None,
    gradient_noise: GradientNoise | None = None,
) -> AscentCarry:
    """One restart: ``config.steps`` optimiser steps uphill on ``objective`` from ``x0``.

    Step ``t`` splits the carried key into the next carry key and ``step_key``; the objective is
    evaluated as ``objective(x_t, step_key)`` (and the noise hook gets
    ``fold_in(step_key, 1)``), so a noisy objective draws fresh noise every step.

    Args:
        objective: ``(x, key) -> ()`` value to maximise.
        x0: the start (pytree of float arrays). It is not projected.
        key: PRNG key of this restart.
        config: ascent settings.
        project: optional ``x -> x`` applied after every update.
        gradient_noise: optional ``(grad, key, step) -> grad`` applied before every update.

    Returns:
        The final :class:`AscentCarry`: ``x`` is ``x_N``, ``best_x`` the best evaluated
        iterate when ``config.keep_best`` (else ``x0``).
    """
    optimizer = make_optimizer(config)
    value_and_grad = jax.value_and_grad(objective)

    def body(carry: AscentCarry, step: jax.Array) -> tuple[AscentCarry, None]:
        key, step_key = jax.random.split(carry.key)
        value, grad = value_and_grad(carry.x, step_key)
        if config.nan_safe:
            grad = jax.tree.map(jnp.nan_to_num, grad)  # a diverging rollout must not poison x
        if gradient_noise is not None:
            grad = gradient_noise(grad, jax.random.fold_in(step_key, 1), step)
        best_x, best_value = carry.best_x, carry.best_value
        if config.keep_best:
            better = value > best_value  # False for NaN
            best_x = jax.tree.map(lambda new, old: jnp.where(better, new, old), carry.x, best_x)
            best_value = jnp.where(better, value, best_value).astype(best_value.dtype)
        descent = jax.tree.map(jnp.negative, grad)  # optax minimises
        updates, opt_state = optimizer.update(descent, carry.opt_state, carry.x)
        x = optax.apply_updates(carry.x, updates)
        if project is not None:
            x = project(x)
        return AscentCarry(x, opt_state, key, best_x, best_value), None

    no_value = jnp.full((), -jnp.inf, jnp.result_type(float))  # default float dtype
    init = AscentCarry(x0, optimizer.init(x0), key, x0, no_value)
    carry, _ = jax.lax.scan(body, init, jnp.arange(config.steps))
    return carry


def maximise(
    objective: Objective,
    starts: Any,
    key: jax.Array,
    config: AscentConfig,
    *,
    score: Score | None = None,
    project: Project | None = None,
    gradient_noise: GradientNoise | None = None,
) -> AscentResult:
    """Gradient ascent from K starts in parallel (``vmap``); the best-scoring result is picked.

    Args:
        objective: ``(x, key) -> ()`` value to maximise at one iterate.
        starts: the K starts: a pytree whose leaves have a leading (K,) axis.
        key: PRNG key, split into one key per restart.
        config: ascent settings.
        score: ``x -> ()`` that ranks the restarts' results (e.g. the return of the hard actions
            a relaxed objective stands for); default ``objective(x, final key)``.
        project: optional ``x -> x`` applied after every update (e.g. clip to bounds).
        gradient_noise: optional ``(grad, key, step) -> grad`` applied before every update.

    Returns:
        An :class:`AscentResult`. Each restart's result is its last iterate, or its best
        evaluated one when ``config.keep_best``.
    """
    restarts = jax.tree.leaves(starts)[0].shape[0]
    keys = jax.random.split(key, restarts)

    def run(x0: Any, restart_key: jax.Array) -> AscentCarry:
        return ascend(objective, x0, restart_key, config, project, gradient_noise)

    carries = jax.vmap(run)(starts, keys)
    candidates = carries.best_x if config.keep_best else carries.x
    if score is None:
        scores = jax.vmap(objective)(candidates, carries.key)
    else:
        scores = jax.vmap(score)(candidates)
    scores = jnp.where(jnp.isfinite(scores), scores, -jnp.inf)
    best = jnp.argmax(scores)
    best_x = jax.tree.map(lambda leaf: leaf[best], candidates)
    return AscentResult(best_x, scores[best], candidates, scores)
