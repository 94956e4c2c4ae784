"""How faithfully a learned model stands in for the true dynamics, as a planner sees it.

A planner never looks at one-step error. GBP follows the gradient of the model's return of a
plan; CEM and MPPI rank plans by that return; both roll the model out open loop for the whole
horizon. :func:`compare` measures exactly those things for one start state and one plan, against
the true dynamics from the same state with the same actions:

* the open-loop predicted observation after each of the H steps, next to the true one;
* the planner's objective (return, shaping included) through the model and through the truth;
* the cosine between the two objectives' gradients with respect to the plan's free parameters
  (what GBP's ascent step follows; 1: the same direction, 0: unrelated, -1: opposite).

:func:`summarise` turns a batch of comparisons into the figures a table reports: the relative
h-step error (mean squared error over the variance of the true h-step change, per observation
entry: 0 is exact, about 1 is no better than predicting the average change), the return's mean
absolute error, its rank correlation across the plans from each state (what CEM's elite
selection needs) and the gradient cosines.

Both sides take the planners' model interface (:mod:`planners.mpc`): ``step(params, state,
action_vector) -> (next_state, reward)`` and an optional ``done_fn``. The model's state is its
observation vector; the truth's is any pytree, with ``observe(true_params, state) -> (D,)``.
Everything is written for one sample and batched with ``vmap``; :func:`make_compare` jits it for
(N states, K plans).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from planners import mpc
from planners import relax as relax_lib


class Dynamics(NamedTuple):
    """One side of the comparison, as a planner would use it (static: functions only)."""

    step: mpc.ModelStep
    """``(params, state, action_vector) -> (next_state, reward)``."""
    done_fn: mpc.DoneFn | None = None
    """Optional ``(params, next_state) -> bool``: rewards after it are masked."""


class Comparison(NamedTuple):
    """One plan from one start state, through the model and through the true dynamics."""

    model_obs: jax.Array
    """(H, D) observation the model predicts after each step, open loop."""
    true_obs: jax.Array
    """(H, D) the true observation after each step."""
    start_obs: jax.Array
    """(D,) the observation before the first step."""
    valid: jax.Array
    """(H,) bool: the true episode is still running after the step (later steps are frozen)."""
    model_return: jax.Array
    """() the planner's objective through the model."""
    true_return: jax.Array
    """() the same objective through the true dynamics."""
    grad_cosine: jax.Array
    """() cosine between the two objectives' gradients w.r.t. the plan (NaN if one is zero)."""


def _objective(
    relax: relax_lib.Relaxation, side: Dynamics, discount: float, params: Any, state: Any, z: Any
) -> tuple[jax.Array, mpc.Rollout]:
    """The planner's objective of plan ``z`` (H, param_dim) from ``state``, and its rollout."""
    actions = jax.vmap(relax.relaxed)(z)
    out = mpc.rollout(side.step, params, state, actions, discount, side.done_fn)
    return out.total, out


def compare(
    relax: relax_lib.Relaxation,
    model: Dynamics,
    truth: Dynamics,
    observe: Callable[[Any, Any], jax.Array],
    discount: float,
    model_params: Any,
    true_params: Any,
    state: Any,
    z: jax.Array,
) -> Comparison:
    """Compares one plan ``z`` (H, param_dim) from one true start ``state``.

    The model starts from ``observe(true_params, state)``; both roll out the relaxed actions
    of ``z`` (:mod:`planners.relax`), as GBP's objective does.
    """
    obs = observe(true_params, state)
    grad = jax.value_and_grad(_objective, argnums=5, has_aux=True)
    (model_return, model_out), model_grad = grad(relax, model, discount, model_params, obs, z)
    (true_return, true_out), true_grad = grad(relax, truth, discount, true_params, state, z)
    true_obs = jax.vmap(observe, in_axes=(None, 0))(true_params, true_out.states)
    norms = jnp.linalg.norm(model_grad) * jnp.linalg.norm(true_grad)
    safe = jnp.where(norms > 0, norms, 1.0)
    cosine = jnp.where(norms > 0, jnp.vdot(model_grad, true_grad) / safe, jnp.nan)
    return Comparison(
        model_obs=model_out.states,
        true_obs=true_obs,
        start_obs=obs,
        valid=true_out.alive > 0,
        model_return=model_return,
        true_return=true_return,
        grad_cosine=cosine,
    )


def make_compare(
    relax: relax_lib.Relaxation,
    model: Dynamics,
    truth: Dynamics,
    observe: Callable[[Any, Any], jax.Array],
    discount: float = 1.0,
) -> Callable[[Any, Any, Any, jax.Array], Comparison]:
    """``jit`` of :func:`compare` over N start states and K plans each.

    Returns ``run(model_params, true_params, states, z)`` with ``states`` leaves (N, ...) and
    ``z`` (N, K, H, param_dim); every :class:`Comparison` field gains leading axes (N, K).
    """
    one = functools.partial(compare, relax, model, truth, observe, discount)
    per_plan = jax.vmap(one, in_axes=(None, None, None, 0))
    return jax.jit(jax.vmap(per_plan, in_axes=(None, None, 0, 0)))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..K-1 of ``x`` (K,), ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two (K,) vectors; NaN when either is constant."""
    ra, rb = _average_ranks(np.asarray(a)), _average_ranks(np.asarray(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def _relative_errors(r: Comparison, h: int) -> np.ndarray:
    """(D,) ``MSE / Var(true change)`` after step ``h`` per entry (NaN: the change is constant)."""
    n, k = r.valid.shape[:2]
    valid = r.valid[:, :, h - 1].reshape(-1)
    change = (r.true_obs[:, :, h - 1] - r.start_obs).reshape(n * k, -1)[valid]
    error = (r.model_obs[:, :, h - 1] - r.true_obs[:, :, h - 1]).reshape(n * k, -1)[valid]
    variance = change.var(axis=0) if len(change) > 1 else np.zeros(change.shape[1])
    varies = variance > 1e-12 * max(1.0, float(variance.max(initial=0.0)))
    return np.where(varies, (error**2).mean(axis=0) / np.where(varies, variance, 1.0), np.nan)


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, np.float64)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def summarise(
    result: Comparison,
    steps: Sequence[int] = (1, 5, 10),
    groups: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Table figures of a batch of comparisons with leading axes (N states, K plans).

    Args:
        result: :func:`make_compare`'s output.
        steps: the open-loop steps ``h`` (1..H) at which the error is reported.
        groups: named sets of observation entries whose relative errors are averaged separately
            (e.g. the ship's position and velocity apart from the target bookkeeping); None: all.

    Returns:
        A JSON-ready dict:

        * ``relative_error``: ``{group: {h: e}}``: the mean over the group's entries whose true
          h-step change varies of ``MSE / Var(true change)``, over the samples whose true
          episode runs through step h;
        * ``relative_error_per_entry``: ``{h: [e or None per entry]}``;
        * ``return_mae``: mean absolute error of the model's objective;
        * ``rank_correlation``: mean over states of Spearman's correlation between the model's
          and the true objectives of the K plans (states where either is constant, or K < 2, are
          left out), with ``rank_correlation_states`` the states counted;
        * ``grad_cosine``: mean cosine (zero gradients left out), ``grad_cosine_positive``: the
          share of plans whose cosine is positive.

    Raises:
        ValueError: a step outside 1..H, or a group naming an entry outside 0..D-1.
    """
    r = jax.tree.map(np.asarray, result)
    n, k, horizon = r.valid.shape
    dim = r.true_obs.shape[-1]
    bad = [h for h in steps if not 1 <= h <= horizon]
    if bad:
        raise ValueError(f"steps {bad} are outside 1..H={horizon}")
    groups = {"all": range(dim)} if groups is None else groups
    for name, entries in groups.items():
        if not entries or not all(0 <= i < dim for i in entries):
            raise ValueError(f"group {name!r}: entries {list(entries)} must lie in 0..{dim - 1}")
    per_entry = {h: _relative_errors(r, h) for h in steps}
    relative = {
        name: {h: _nanmean(per_entry[h][list(entries)]) for h in steps}
        for name, entries in groups.items()
    }
    if k >= 2:
        pairs = zip(r.model_return, r.true_return, strict=True)
        correlations = np.asarray([rank_correlation(a, b) for a, b in pairs], np.float64)
    else:
        correlations = np.full(n, np.nan)
    cosines = r.grad_cosine[np.isfinite(r.grad_cosine)]
    return {
        "relative_error": relative,
        "relative_error_per_entry": {
            h: [None if np.isnan(x) else float(x) for x in e] for h, e in per_entry.items()
        },
        "return_mae": float(np.mean(np.abs(r.model_return - r.true_return))),
        "rank_correlation": _nanmean(correlations),
        "rank_correlation_states": int(np.isfinite(correlations).sum()),
        "grad_cosine": _nanmean(cosines),
        "grad_cosine_positive": float((cosines > 0).mean()) if len(cosines) else float("nan"),
        "states": int(n),
        "plans_per_state": int(k),
    }
