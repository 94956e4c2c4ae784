"""Rollout collection: a ``lax.scan`` over a batch of JAX envs, and the same on a host VectorEnv.

Both paths split keys identically (``key -> key, act_key, env_key`` per step) and produce the same
:class:`Transition` record, so a deterministic env gives the same batch on either path.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from envs.jax_env import autoreset_step

if TYPE_CHECKING:
    from agents.common.loop import Learner


class EnvCarry(NamedTuple):
    """Carry of the device rollout scan over ``B`` environments."""

    env_state: Any
    """Batched env state pytree, leaves (B, ...)."""
    obs: jax.Array
    """(B, *obs_shape) current observations."""
    episode_return: jax.Array
    """(B,) undiscounted return of the running episodes so far."""
    key: jax.Array
    """PRNG key for actions and env steps."""


class Transition(NamedTuple):
    """One step of ``B`` envs; a rollout stacks them to leaves (T, B, ...)."""

    obs: jax.Array
    """(B, *obs_shape) observation the action was taken in."""
    action: Any
    """Raw actions (see :mod:`agents.common.distributions`), leaves (B, ...)."""
    reward: jax.Array
    """(B,) env reward."""
    done: jax.Array
    """(B,) bool: the episode ended (terminated or truncated) at this step."""
    value: jax.Array
    """(B,) V(obs)."""
    log_prob: jax.Array
    """(B,) log-probability of the action under the behaviour policy."""
    bootstrap: jax.Array
    """(B,) V(final_obs) where the episode was truncated (not terminated), else 0."""
    valid: jax.Array
    """(B,) float 1 for a real transition, 0 for a host NEXT_STEP autoreset step."""
    finished_return: jax.Array
    """(B,) return of the episode that ended at this step, 0 elsewhere."""


def act(
    learner: Learner, params: Any, obs: jax.Array, key: jax.Array
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """Samples actions for (B, *obs_shape) observations.

    Returns:
        ``(raw_actions, env_actions, values (B,), log_probs (B,))``.
    """
    inputs, value = jax.vmap(learner.network.apply, in_axes=(None, 0))(params, obs)
    keys = jax.random.split(key, obs.shape[0])
    raw = jax.vmap(learner.dist.sample)(inputs, keys)
    log_prob = jax.vmap(learner.dist.log_prob)(inputs, raw)
    return raw, jax.vmap(learner.dist.to_env)(raw), value, log_prob


def split_and_act(
    learner: Learner, params: Any, obs: jax.Array, key: jax.Array
) -> tuple[jax.Array, tuple[Any, Any, jax.Array, jax.Array]]:
    """The host path's per-step call: the key split of :func:`rollout_step` and :func:`act` in one.

    Returns:
        ``(next_key, act(...))``, with the same keys as the device rollout uses.
    """
    key, act_key, _ = jax.random.split(key, 3)
    return key, act(learner, params, obs, act_key)


def values(network: Any, params: Any, obs: jax.Array) -> jax.Array:
    """(B,) values of (B, *obs_shape) observations."""
    return jax.vmap(network.apply, in_axes=(None, 0))(params, obs)[1]


def reset_envs(env: Any, key: jax.Array, num_envs: int) -> EnvCarry:
    """Resets ``num_envs`` copies of a JAX env (see ``envs.jax_env.JaxEnv``)."""
    key, reset_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, num_envs), env.params
    )
    return EnvCarry(state, obs, jnp.zeros(num_envs, jnp.float32), key)


def episode_bookkeeping(
    episode_return: jax.Array, reward: jax.Array, done: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Returns ``(running returns after this step, returns of episodes that just ended)``.

    NumPy inputs (the host path) stay in NumPy: no JAX dispatch per host step.
    """
    total = episode_return + reward
    where = np.where if isinstance(total, np.ndarray) else jnp.where
    return where(done, 0.0, total), where(done, total, 0.0)


def rollout_step(
    learner: Learner, env: Any, params: Any, carry: EnvCarry, _: Any = None
) -> tuple[EnvCarry, Transition]:
    """One step of ``B`` JAX envs with ``autoreset_step`` (the body of the rollout scan)."""
    key, act_key, env_key = jax.random.split(carry.key, 3)
    raw, env_action, value, log_prob = act(learner, params, carry.obs, act_key)
    env_keys = jax.random.split(env_key, carry.obs.shape[0])
    step = functools.partial(autoreset_step, env)
    obs, state, reward, terminated, truncated, info = jax.vmap(step, in_axes=(0, 0, 0, None))(
        env_keys, carry.env_state, env_action, env.params
    )
    final_value = values(learner.network, params, info["final_obs"])
    reward = reward.astype(jnp.float32)
    done = terminated | truncated
    bootstrap = jnp.where(truncated & ~terminated, final_value, 0.0)
    running, finished = episode_bookkeeping(carry.episode_return, reward, done)
    transition = Transition(
        obs=carry.obs,
        action=raw,
        reward=reward,
        done=done,
        value=value,
        log_prob=log_prob,
        bootstrap=bootstrap,
        valid=jnp.ones_like(reward),
        finished_return=finished,
    )
    return EnvCarry(state, obs, running, key), transition


def collect_rollout(
    learner: Learner, env: Any, params: Any, carry: EnvCarry, n_steps: int
) -> tuple[EnvCarry, Transition]:
    """``n_steps`` steps of all envs in one ``lax.scan``; transitions have leaves (T, B, ...)."""
    body = functools.partial(rollout_step, learner, env, params)
    return jax.lax.scan(body, carry, None, length=n_steps)
