"""The one training loop shared by A2C and PPO; the algorithms differ only by their ``update``.

A :class:`Learner` bundles what stays fixed for a run (config, network, distribution, optimiser,
algorithm update). :func:`learn` turns one rollout into an update (value bootstrap, GAE, then the
algorithm's ``update``); the device path calls it inside a jitted ``lax.scan`` and the host path
calls the same function through ``jax.jit``, so both give the same update for the same batch.

:func:`make_train_fn` returns a pure ``train_fn(key) -> (TrainState, metrics)`` for envs with a
JAX core, so ``jax.jit(jax.vmap(train_fn))(keys)`` trains several seeds at once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from agents.common.distributions import Distribution, make_distribution
from agents.common.networks import ActorCritic, make_network
from agents.common.returns import gae
from agents.common.rollout import EnvCarry, Transition, collect_rollout, reset_envs, values


class Batch(NamedTuple):
    """A flattened rollout of ``N = n_steps * num_envs`` samples, ready for a loss."""

    obs: jax.Array
    """(N, *obs_shape) observations."""
    action: Any
    """Raw actions, leaves (N, ...)."""
    log_prob: jax.Array
    """(N,) log-probabilities under the behaviour policy."""
    value: jax.Array
    """(N,) value estimates at collection time."""
    advantage: jax.Array
    """(N,) GAE advantages."""
    target: jax.Array
    """(N,) value targets (advantage + value)."""
    valid: jax.Array
    """(N,) 1 for real transitions, 0 for host autoreset steps that must not be learned from."""


UpdateFn = Callable[..., tuple[Any, Any, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True, eq=False)
class Learner:
    """Everything fixed during a run. Built by :func:`make_learner`."""

    config: Any
    """The algorithm config (``A2CConfig`` or ``PPOConfig``)."""
    network: ActorCritic
    """The actor-critic, applied to one observation."""
    dist: Distribution
    """The action distribution."""
    optimizer: optax.GradientTransformation
    """The optimiser, gradient clipping included."""
    update: UpdateFn
    """``update(learner, params, opt_state, batch, key) -> (params, opt_state, metrics)``."""


class TrainState(NamedTuple):
    """Carry of the device training loop; everything a checkpoint needs to resume exactly."""

    params: Any
    opt_state: Any
    env: EnvCarry
    key: jax.Array
    env_steps: jax.Array
    """() int32 environment steps taken so far (all envs)."""


def make_learner(
    config: Any,
    observation_space: Any,
    action_space: Any,
    optimizer: optax.GradientTransformation,
    update: UpdateFn,
) -> Learner:
    """Builds the network and distribution for the env's spaces."""
    dist = make_distribution(action_space, squash=config.squash)
    network = make_network(observation_space, dist.num_inputs, dist.free_mask, config.hidden)
    return Learner(config, network, dist, optimizer, update)


def init_params(learner: Learner, observation_space: Any, key: jax.Array) -> Any:
    """Initial network parameters."""
    obs = jnp.zeros(observation_space.shape, observation_space.dtype)
    return learner.network.init(key, obs)


def flatten_rollout(
    learner: Learner, transitions: Transition, last_obs: jax.Array, params: Any
) -> Batch:
    """Bootstraps, computes GAE and flattens a (T, B) rollout into a :class:`Batch`."""
    config = learner.config
    last_value = values(learner.network, params, last_obs)
    # A truncated episode continues in expectation: add gamma * V(final_obs) (SB3's treatment).
    rewards = transitions.reward + config.gamma * transitions.bootstrap
    advantage, target = gae(
        rewards, transitions.value, transitions.done, last_value, config.gamma, config.gae_lambda
    )

    def flat(x: jax.Array) -> jax.Array:
        return x.reshape((-1, *x.shape[2:]))

    return Batch(
        obs=flat(transitions.obs),
        action=jax.tree.map(flat, transitions.action),
        log_prob=flat(transitions.log_prob),
        value=flat(transitions.value),
        advantage=flat(advantage),
        target=flat(target),
        valid=flat(transitions.valid),
    )


def learn(
    learner: Learner,
    params: Any,
    opt_state: Any,
    transitions: Transition,
    last_obs: jax.Array,
    key: jax.Array,
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One algorithm update from one (T, B) rollout; identical on the device and host paths."""
    batch = flatten_rollout(learner, transitions, last_obs, params)
    return learner.update(learner, params, opt_state, batch, key)


def rollout_metrics(transitions: Transition) -> dict[str, jax.Array]:
    """Sum of finished-episode returns and the number of finished episodes in a rollout."""
    finished = transitions.done & (transitions.valid > 0)
    return {
        "return_sum": jnp.sum(jnp.where(finished, transitions.finished_return, 0.0)),
        "episodes": jnp.sum(finished).astype(jnp.float32),
    }


def learn_from_rollout(
    learner: Learner, state: Any, transitions: Transition, last_obs: jax.Array
) -> tuple[Any, dict[str, jax.Array]]:
    """One update from a collected rollout, shared by the device and host paths.

    Args:
        learner: the learner.
        state: a :class:`TrainState` (or the host path's ``HostState``: the same fields); its
            ``env`` is not read and comes back as is.
        transitions: the rollout, leaves (T, B, ...), NumPy or JAX.
        last_obs: (B, *obs_shape) observations after the rollout, to bootstrap from.

    Returns:
        ``(state, metrics)``: updated params, optimiser state, key and env step count; the
        update's losses with ``return_sum`` and ``episodes`` of the rollout.
    """
    key, learn_key = jax.random.split(state.key)
    params, opt_state, metrics = learn(
        learner, state.params, state.opt_state, transitions, last_obs, learn_key
    )
    steps = state.env_steps + learner.config.n_steps * learner.config.num_envs
    new_state = state._replace(params=params, opt_state=opt_state, key=key, env_steps=steps)
    return new_state, {**metrics, **rollout_metrics(transitions)}


def update_step(
    learner: Learner, env: Any, state: TrainState, _: Any = None
) -> tuple[TrainState, dict[str, jax.Array]]:
    """Collects one rollout on device and learns from it (the body of the training scan)."""
    env_carry, transitions = collect_rollout(
        learner, env, state.params, state.env, learner.config.n_steps
    )
    return learn_from_rollout(learner, state._replace(env=env_carry), transitions, env_carry.obs)


def init_train_state(learner: Learner, env: Any, key: jax.Array) -> TrainState:
    """Initial parameters, optimiser state and environments for the device path."""
    key, init_key, env_key = jax.random.split(key, 3)
    params = init_params(learner, env.observation_space, init_key)
    env_carry = reset_envs(env, env_key, learner.config.num_envs)
    opt_state = learner.optimizer.init(params)
    return TrainState(params, opt_state, env_carry, key, jnp.zeros((), jnp.int32))


def run_updates(
    learner: Learner, env: Any, state: TrainState, num_updates: int
) -> tuple[TrainState, dict[str, jax.Array]]:
    """``num_updates`` update steps in one ``lax.scan``; metrics have a leading update axis."""
    body = functools.partial(update_step, learner, env)
    return jax.lax.scan(body, state, None, length=num_updates)


def make_train_fn(
    learner: Learner, env: Any, num_updates: int
) -> Callable[[jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """A pure ``train_fn(key) -> (final TrainState, metrics (num_updates,))``; jit and vmap it."""
    return functools.partial(_train_fn, learner, env, num_updates)


def _train_fn(
    learner: Learner, env: Any, num_updates: int, key: jax.Array
) -> tuple[TrainState, dict[str, jax.Array]]:
    return run_updates(learner, env, init_train_state(learner, env, key), num_updates)
