"""Sampling planners over the model interface of :mod:`planners.mpc`: CEM and MPPI, with ensembles.

The cross-entropy method (Rubinstein 1999) as used by PETS (Chua et al. 2018, mbrl-lib) and MPPI
(Williams et al. 2017) as used by TD-MPC2 (Hansen et al. 2024) search the same free action
parameters as :mod:`planners.gbp`, sampled from a diagonal Gaussian that is refitted to the best
samples. Each sample is scored with the hard actions it would execute
(:meth:`planners.relax.Continuous.hard_vector`), averaged over particles.

Ensembles: when ``config.ensemble_size > 1`` every leaf of ``model_params`` has a leading axis of
that size (as :mod:`world_models.dynamics` builds them) and particle ``p`` rolls out through member
``p % ensemble_size`` (PETS' TS-inf propagation); ``particle_noise_std`` adds fixed Gaussian noise
to the float leaves of each particle's predicted state (a deterministic model's stand-in for the
noise a probabilistic model predicts).

Probabilistic models (PETS' trajectory sampling): with ``config.stochastic_model`` the model step
draws its prediction, ``model_step(model_params, state, action, key) -> (next_state, reward)``
(``DynamicsModel.member_sample_step``, or ``sample_step`` for the whole ensemble), and every
particle draws with keys of its own at every step. :func:`model_step_for` picks the step of a
``DynamicsModel`` that a config needs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from planners import relax as relax_lib
from planners.mpc import (
    DoneFn,
    ModelStep,
    PlanResult,
    jit_planner,
    receding_policy,
    rollout_return,
)


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """Settings of the CEM / MPPI planner."""

    method: str = "cem"
    """"cem" (uniform weights over elites) or "mppi" (softmax(return / temperature) weights)."""
    horizon: int = 20
    """Planned steps H."""
    n_samples: int = 200
    """Action sequences sampled per iteration."""
    n_iterations: int = 5
    """Refits of the sampling distribution per planned action."""
    n_elites: int = 20
    """Best samples the distribution is refitted to (CEM; MPPI weights all samples)."""
    temperature: float = 1.0
    """MPPI temperature in return units: weights are softmax(return / temperature)."""
    momentum: float = 0.1
    """Share of the old mean/std kept at each refit (mbrl-lib's alpha)."""
    init_std: float = 1.0
    """Std of the sampling distribution over free parameters at the first iteration."""
    min_std: float = 0.05
    """Lower bound on the sampling std."""
    n_particles: int = 1
    """Rollouts per sample; returns are averaged over them."""
    ensemble_size: int = 1
    """Members of an ensemble model (leading axis of every model_params leaf); 1 = no ensemble.

    With more than 1, ``model_step`` steps ONE member (``DynamicsModel.member_step``), and
    particle p rolls out through member p % ensemble_size; a leaf without that leading axis is
    refused. With 1, ``model_step`` is the whole model (``DynamicsModel.step``)."""
    particle_noise_std: float = 0.0
    """Gaussian noise added to each particle's predicted state per step (0 = deterministic)."""
    stochastic_model: bool = False
    """``model_step`` samples its prediction (a probabilistic model, as in PETS): it takes a
    fourth argument, a key, fresh for every particle and step. ``particle_noise_std`` must then
    be 0 (the model supplies the noise)."""
    discount: float = 1.0
    """Per-step discount of rewards."""
    warm_start: bool = True
    """Start the mean from the shifted previous plan (the policy carry)."""

    def __post_init__(self) -> None:
        checks = {
            "method": self.method in ("cem", "mppi"),
            "horizon": self.horizon >= 1,
            "n_samples": self.n_samples >= 1,
            "n_iterations": self.n_iterations >= 1,
            "n_elites": 1 <= self.n_elites <= self.n_samples,
            "temperature": self.temperature > 0,
            "momentum": 0 <= self.momentum < 1,
            "init_std": self.init_std > 0,
            "min_std": self.min_std >= 0,
            "n_particles": self.n_particles >= 1,
            "ensemble_size": self.ensemble_size >= 1,
            "particle_noise_std": self.particle_noise_std >= 0,
            "discount": 0 < self.discount <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"CEMConfig.{name}={getattr(self, name)!r} is out of range")
        if self.stochastic_model and self.particle_noise_std > 0:
            raise ValueError(
                f"CEMConfig.particle_noise_std={self.particle_noise_std!r} with "
                "stochastic_model=True: the model samples its own noise; set it to 0"
            )


class _Dist(NamedTuple):
    mean: jax.Array
    std: jax.Array
    key: jax.Array


StochasticStep = Callable[[Any, Any, jax.Array, jax.Array], tuple[Any, jax.Array]]
"""``model_step(model_params, state, action, key) -> (next_state, reward)``, a sampled step."""


def model_step_for(config: CEMConfig, model: Any) -> ModelStep | StochasticStep:
    """The step of a ``world_models.dynamics.DynamicsModel`` that ``config``'s particles need.

    One member's step when particles are spread over an ensemble (``ensemble_size > 1``), the
    whole model's otherwise; the sampling step when ``stochastic_model``, the mean otherwise.
    """
    if config.stochastic_model:
        return model.member_sample_step if config.ensemble_size > 1 else model.sample_step
    return model.member_step if config.ensemble_size > 1 else model.step


def check_model_config(config: CEMConfig, model_config: Any) -> None:
    """Refuses a CEM config that a ``DynamicsConfig`` (``model_config``) cannot serve.

    Call it where both are known, before any training, so that a mismatch fails at once.

    Raises:
        ValueError: ``ensemble_size`` neither 1 (the ensemble's mean) nor the model's, or
            ``stochastic_model`` with a model that is not probabilistic.
    """
    if config.ensemble_size not in (1, model_config.ensemble_size):
        raise ValueError(
            f"CEMConfig.ensemble_size={config.ensemble_size}: use 1 (plan on the ensemble's "
            f"mean, or sample it) or the model's ensemble_size={model_config.ensemble_size}"
        )
    if config.stochastic_model and not model_config.probabilistic:
        raise ValueError(
            "CEMConfig.stochastic_model samples the model's predicted Gaussian: it needs "
            "DynamicsConfig(probabilistic=True)"
        )


def _noisy(model_step: ModelStep, noise_std: float) -> StochasticStep:
    """A deterministic step plus Gaussian noise on every float leaf of its next state."""

    def step(params: Any, state: Any, action: jax.Array, key: jax.Array):
        next_state, reward = model_step(params, state, action)
        leaves, treedef = jax.tree.flatten(next_state)
        keys = jax.random.split(key, len(leaves))
        leaves = [
            leaf + noise_std * jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf))
            if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
            else leaf
            for leaf, k in zip(leaves, keys, strict=True)
        ]
        return jax.tree.unflatten(treedef, leaves), reward

    return step


def _keyed(model_step: StochasticStep) -> ModelStep:
    """A sampled step as a deterministic one on ``(state, key)``: a fresh key every step."""

    def step(params: Any, state_and_key: tuple[Any, jax.Array], action: jax.Array):
        state, key = state_and_key
        key, draw_key = jax.random.split(key)
        next_state, reward = model_step(params, state, action, draw_key)
        return (next_state, key), reward

    return step


def sample_returns(
    config: CEMConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep | StochasticStep,
    model_params: Any,
    state: Any,
    z: jax.Array,
    key: jax.Array,
    done_fn: DoneFn | None = None,
) -> jax.Array:
    """Mean return over particles of one sample ``z`` (H, param_dim), executed with hard actions."""
    actions = jax.vmap(relax.hard_vector)(z)
    members = jnp.arange(config.n_particles) % config.ensemble_size
    keys = jax.random.split(key, config.n_particles)

    def one_particle(member: jax.Array, particle_key: jax.Array) -> jax.Array:
        params = model_params
        if config.ensemble_size > 1:
            params = jax.tree.map(lambda leaf: leaf[member], model_params)
        if config.stochastic_model:
            step = _keyed(model_step)
        elif config.particle_noise_std > 0:
            step = _keyed(_noisy(model_step, config.particle_noise_std))
        else:
            return rollout_return(model_step, params, state, actions, config.discount, done_fn)
        done = None if done_fn is None else (lambda p, s: done_fn(p, s[0]))
        return rollout_return(step, params, (state, particle_key), actions, config.discount, done)

    return jnp.mean(jax.vmap(one_particle)(members, keys))


def _refit(
    config: CEMConfig, samples: jax.Array, returns: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """New (mean, std) of shape (H, param_dim) from samples (S, H, P) and returns (S,)."""
    if config.method == "cem":
        _, elite_idx = jax.lax.top_k(returns, config.n_elites)
        weights = jnp.zeros_like(returns).at[elite_idx].set(1.0 / config.n_elites)
    else:
        weights = jax.nn.softmax(returns / config.temperature)
    mean = jnp.einsum("s,shp->hp", weights, samples)
    var = jnp.einsum("s,shp->hp", weights, (samples - mean) ** 2)
    return mean, jnp.sqrt(var)


def _check_ensemble(config: CEMConfig, model_params: Any) -> None:
    """Every leaf of an ensemble's params has a leading axis of ``config.ensemble_size``.

    JAX clamps out-of-range indices, so a smaller ensemble would silently give the extra
    particles its last member. Shapes are static, so this costs nothing under jit.
    """
    if config.ensemble_size == 1:
        return
    for path, leaf in jax.tree_util.tree_leaves_with_path(model_params):
        size = jnp.shape(leaf)[0] if jnp.ndim(leaf) else None
        if size != config.ensemble_size:
            raise ValueError(
                f"model_params{jax.tree_util.keystr(path)}: expected a leading ensemble axis of "
                f"CEMConfig.ensemble_size={config.ensemble_size}, got shape {jnp.shape(leaf)} "
                "(pass an ensemble's params with a single-member model_step, e.g. "
                "DynamicsModel.member_step)"
            )


def plan(
    config: CEMConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    state: Any,
    init_plan: jax.Array,
    key: jax.Array,
    done_fn: DoneFn | None = None,
) -> PlanResult:
    """CEM/MPPI from one state; returns the final mean as the plan and its first hard action.

    Args and result as :func:`planners.gbp.plan` (``returns`` holds the last iteration's
    per-sample returns, shape (n_samples,)).
    """
    shape = (config.horizon, relax.param_dim)
    if init_plan.shape != shape:
        raise ValueError(f"init_plan: expected shape {shape}, got {init_plan.shape}")
    _check_ensemble(config, model_params)
    mean0 = init_plan if config.warm_start else jnp.zeros(shape, jnp.float32)
    score = functools.partial(
        sample_returns, config, relax, model_step, model_params, state, done_fn=done_fn
    )

    def body(dist: _Dist, _: None) -> tuple[_Dist, jax.Array]:
        key, sample_key, particle_key = jax.random.split(dist.key, 3)
        eps = jax.random.normal(sample_key, (config.n_samples, *shape))
        samples = dist.mean + dist.std * eps
        samples = samples.at[0].set(dist.mean)  # the current mean is always scored
        returns = jax.vmap(score)(samples, jax.random.split(particle_key, config.n_samples))
        returns = jnp.where(jnp.isfinite(returns), returns, -jnp.inf)
        mean, std = _refit(config, samples, returns)
        mean = config.momentum * dist.mean + (1 - config.momentum) * mean
        std = config.momentum * dist.std + (1 - config.momentum) * std
        return _Dist(mean, jnp.maximum(std, config.min_std), key), returns

    init = _Dist(mean0, jnp.full(shape, config.init_std, jnp.float32), key)
    dist, history = jax.lax.scan(body, init, None, length=config.n_iterations)
    objective = score(dist.mean, dist.key)
    return PlanResult(dist.mean, relax.hard(dist.mean[0]), objective, history[-1])


def make_planner(
    config: CEMConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    done_fn: DoneFn | None = None,
) -> Callable[[Any, Any, jax.Array, jax.Array], PlanResult]:
    """``jit(plan)`` with the static parts bound: ``(model_params, state, init_plan, key)``."""
    return jit_planner(plan, config, relax, model_step, done_fn)


def make_policy(
    config: CEMConfig,
    relax: relax_lib.Relaxation,
    model_step: ModelStep,
    model_params: Any,
    *,
    use_env_state: bool = False,
    done_fn: DoneFn | None = None,
) -> Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[Any, jax.Array]]:
    """A re-planning policy ``(carry, obs, state, key) -> (action, carry)``; carry = last plan.

    Pure and not jitted, for ``evaluate_jax`` and ``data.collect``, which jit it with their own
    loop; in a host loop wrap it in ``jax.jit`` or use :func:`make_planner`.
    """
    return receding_policy(
        plan, config, relax, model_step, model_params, use_env_state=use_env_state, done_fn=done_fn
    )
