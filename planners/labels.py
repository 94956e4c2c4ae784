"""GBP's labels for DISTGBP: batched plans, and states imagined in a learned model.

:func:`label` runs GBP from each of many observations at once (one jitted, vmapped plan per
chunk) from a cold (zero) plan and keeps the first action. :func:`label_trajectories` labels
recorded trajectories as the receding-horizon GBP policy would act along them: each step's plan
starts from the previous step's plan, shifted, so the labels are those of the planner that the
experiment's GBP row runs. :func:`imagine` rolls a policy network out in the learned model, so
DAgger (Ross et al. 2011) can show the student its own mistakes without env steps.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from planners import gbp
from planners import relax as relax_lib


class Labelled(NamedTuple):
    """Imitation data: observations and GBP's model action vectors."""

    obs: Any
    """(N, obs_dim) float32."""
    target: Any
    """(N, action_dim) float32 model action of GBP's first action (one-hot for discrete)."""


def label(
    planner: Any,
    model_params: Any,
    gbp_config: gbp.GBPConfig,
    relax: relax_lib.Relaxation,
    obs: np.ndarray,
    key: jax.Array,
    chunk: int,
) -> np.ndarray:
    """GBP's first action (model action vector (N, A)) for each observation, cold-start plans.

    ``planner`` is ``jax.jit(jax.vmap(plan, in_axes=(None, 0, None, 0)))`` as built by
    :func:`make_labeller`. A short chunk (the last one, or the only one when fewer than
    ``chunk`` states arrive) is padded to ``chunk`` rows (its last row repeated, the extra
    labels dropped), so every call has one shape and compiles once however many states arrive.
    """
    out = []
    plan0 = gbp.init_plan(gbp_config, relax)
    for start in range(0, len(obs), chunk):
        batch = jnp.asarray(obs[start : start + chunk])
        keys = jax.random.split(jax.random.fold_in(key, start), len(batch))
        n = len(batch)
        if n < chunk:
            batch = jnp.concatenate([batch, jnp.repeat(batch[-1:], chunk - n, axis=0)])
            keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], chunk - n, axis=0)])
        result = planner(model_params, batch, plan0, keys)
        out.append(np.asarray(jax.vmap(relax.hard_vector)(result.plan[:n, 0])))
    return np.concatenate(out)


def make_labeller(gbp_config: gbp.GBPConfig, relax: relax_lib.Relaxation, model_step: Any):
    """The batched GBP used by :func:`label`: ``(model_params, obs (B, D), plan0, keys (B,))``."""
    plan = functools.partial(gbp.plan, gbp_config, relax, model_step)
    return jax.jit(jax.vmap(plan, in_axes=(None, 0, None, 0)))


def segments(n_steps: int, wanted: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced runs of consecutive time steps, for warm-started labelling.

    Args:
        n_steps: time steps T of the recorded trajectories.
        wanted: time steps to pick (all of them if ``wanted >= n_steps``).
        length: steps per run (the last run is shorter when ``length`` does not divide
            ``wanted``).

    Returns:
        ``index`` (K,) distinct time steps, increasing, K = min(wanted, n_steps), and
        ``starts`` (K,) bool, True where a run begins (its plan starts cold). The first run
        starts at step 0; the unpicked steps are spread evenly over the gaps between runs, so
        with two runs or more the last one ends at step T - 1.
    """
    if wanted >= n_steps:
        index = np.arange(n_steps)
        return index, index == 0
    runs = -(-wanted // length)
    sizes = np.full(runs, length)
    sizes[-1] = wanted - length * (runs - 1)
    gaps = np.zeros(runs, int)  # unpicked steps before each run; the first starts at step 0
    if runs > 1:
        gaps[1:] = np.diff(np.linspace(0, n_steps - wanted, runs).round().astype(int))
    firsts = np.cumsum(gaps) + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    index = np.concatenate([np.arange(f, f + size) for f, size in zip(firsts, sizes, strict=True)])
    starts = np.zeros(len(index), bool)
    starts[np.concatenate([[0], np.cumsum(sizes)[:-1]])] = True
    return index, starts


class _TimeStep(NamedTuple):
    """What :func:`make_trajectory_labeller`'s scan reads at one time step."""

    obs: Any
    """(B, D) observations."""
    start: Any
    """() bool: plans start cold here."""
    key: Any
    """PRNG key of the step."""


def _label_step(plan: Any, relax: relax_lib.Relaxation, cold: Any, model_params: Any, plans, step):
    """One time step of B trajectories: ``(next warm starts (B, H, P), targets (B, A))``."""
    batch = step.obs.shape[0]
    plans = jnp.where(step.start, cold, plans)
    result = plan(model_params, step.obs, plans, jax.random.split(step.key, batch))
    targets = jax.vmap(relax.hard_vector)(result.plan[:, 0])
    return jax.vmap(gbp.shift_plan)(result.plan), targets


def _label_run(plan: Any, relax: relax_lib.Relaxation, cold: Any, model_params, obs, starts, keys):
    """(T, B, A) targets: the scan of :func:`_label_step` over T time steps."""
    body = functools.partial(_label_step, plan, relax, cold, model_params)
    plans = jnp.broadcast_to(cold, (obs.shape[1], *cold.shape))  # the carry: (B, H, P) plans
    return jax.lax.scan(body, plans, _TimeStep(obs, starts, keys))[1]


def make_trajectory_labeller(
    gbp_config: gbp.GBPConfig, relax: relax_lib.Relaxation, model_step: Any
) -> Any:
    """The jitted scan of :func:`label_trajectories`.

    Returns:
        ``(model_params, obs (T, B, D), starts (T,) bool, keys (T,)) -> targets (T, B, A)``.
    """
    plan = jax.vmap(functools.partial(gbp.plan, gbp_config, relax, model_step),
                    in_axes=(None, 0, 0, 0))  # fmt: skip
    cold = gbp.init_plan(gbp_config, relax)
    return jax.jit(functools.partial(_label_run, plan, relax, cold))


def label_trajectories(
    labeller: Any, model_params: Any, obs: np.ndarray, starts: np.ndarray, key: jax.Array
) -> Labelled:
    """Labels B trajectories step by step, each plan warm-started from the previous one.

    Args:
        labeller: :func:`make_trajectory_labeller`'s function.
        model_params: the learned model's params.
        obs: (T, B, D) observations, time-major: ``obs[t, b]`` follows ``obs[t - 1, b]``. Where
            it does not (an episode boundary), the warm start is merely a worse first guess.
        starts: (T,) bool, True where the plans start cold (see :func:`segments`).
        key: PRNG key.

    Returns:
        The (T * B) observations, flattened time-major, with GBP's first actions.
    """
    keys = jax.random.split(key, len(obs))
    targets = labeller(model_params, jnp.asarray(obs), jnp.asarray(starts), keys)
    flat = np.asarray(obs, np.float32).reshape(-1, obs.shape[-1])
    return Labelled(flat, np.asarray(targets).reshape(len(flat), -1))


def gbp_labelled(
    labeller: Any,
    model_params: Any,
    gbp_config: gbp.GBPConfig,
    relax: relax_lib.Relaxation,
    chunk: int,
    obs: np.ndarray,
    key: jax.Array,
) -> Labelled:
    """``obs`` (N, D) with GBP's cold-start first actions as targets (see :func:`label`)."""
    targets = label(labeller, model_params, gbp_config, relax, obs, key, chunk)
    return Labelled(np.asarray(obs, np.float32), targets)


def join(parts: list[Labelled]) -> Labelled:
    """The parts' examples, concatenated in order."""
    return Labelled(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _rollout(student: Any, model_step: Any, horizon: int, params, model_params, obs):
    def body(obs, _):
        # The executed (hard) action, as the model sees it: the student acts with relax.hard.
        action = student.relax.hard_vector(student.params_z(params, obs))
        next_obs, _ = model_step(model_params, obs, action)
        return next_obs, next_obs

    return jax.lax.scan(body, obs, None, length=horizon)[1]


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _rollouts(student, model_step, horizon, params, model_params, starts):
    return jax.vmap(_rollout, in_axes=(None, None, None, None, None, 0))(
        student, model_step, horizon, params, model_params, starts
    )


def imagine(
    student: Any,
    params: Any,
    model_step: gbp.ModelStep,
    model_params: Any,
    starts: np.ndarray,
    horizon: int,
    reference: np.ndarray,
) -> np.ndarray:
    """States the policy visits when rolled out in the learned model (no env steps).

    Args:
        student: the policy network (a ``DistilledPolicy``: ``relax`` and ``params_z``).
        params: its params.
        model_step: ``(model_params, obs, action) -> (next_obs, reward)``.
        model_params: the learned model's params.
        starts: (N, D) start observations.
        horizon: steps per rollout.
        reference: (M, D) observations that bound plausible states: a visited state is kept only
            if it is finite and each entry lies within the reference's range widened by half of
            it on either side (a learned model can drift far out of its data in a few steps).

    Returns:
        (K, D) float32 visited states, K <= N * horizon.
    """
    visited = np.asarray(
        _rollouts(student, model_step, horizon, params, model_params, jnp.asarray(starts))
    ).reshape(-1, starts.shape[-1])
    low, high = np.min(reference, 0), np.max(reference, 0)
    span = 0.5 * (high - low)
    keep = np.all(np.isfinite(visited), -1)
    keep &= np.all((visited >= low - span) & (visited <= high + span), -1)
    return visited[keep]
