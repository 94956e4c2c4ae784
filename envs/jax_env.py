"""A gymnax-style handle on an environment's pure JAX core, for fully jitted loops.

``make_jax_env("worldplan/Spaceship-v0", action_mode="discrete")`` returns a :class:`JaxEnv` whose
``reset(key, params)`` and ``step(key, state, action, params)`` are pure, written for one env, and
batch with ``jax.vmap``. ``autoreset_step`` is the same-step autoreset that on-device training
loops (PureJaxRL-style) use; ``optimistic_autoreset_step`` is its batched, cheaper variant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp


class JaxEnv(NamedTuple):
    """Pure functions and spaces of one environment with a JAX core."""

    reset: Callable[[jax.Array, Any], tuple[jax.Array, Any]]
    """``reset(key, params) -> (obs, state)``."""
    step: Callable[..., tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict]]
    """``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``."""
    params: Any
    """Default parameters (a pytree; static fields select modes)."""
    observation_space: gymnasium.Space
    """Space of one observation."""
    action_space: gymnasium.Space
    """Space of one action."""


JAX_CORES = ("worldplan/Spaceship-v0", "worldplan/Driving-v0")
"""Registered ids whose env has a pure JAX core (:func:`make_jax_env` builds it)."""


def has_jax_core(env_id: str) -> bool:
    """Whether :func:`make_jax_env` can build ``env_id`` (the others step on the host)."""
    return env_id in JAX_CORES


def make_jax_env(env_id: str, **kwargs: Any) -> JaxEnv:
    """Builds the :class:`JaxEnv` of a registered id that has a JAX core.

    Raises:
        ValueError: the id has no JAX core (e.g. a pymunk environment).
    """
    if env_id == "worldplan/Spaceship-v0":
        from envs.spaceship.functional import make_jax

        return make_jax(**kwargs)
    if env_id == "worldplan/Driving-v0":
        from envs.driving.functional import make_jax as make_driving

        return make_driving(**kwargs)
    raise ValueError(
        f"{env_id!r} has no JAX core; use gymnasium.make_vec for a host-side vector env instead"
    )


def autoreset_step(
    env: JaxEnv, key: jax.Array, state: Any, action: Any, params: Any
) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
    """Steps one env and, if the episode ended, resets it in the same call.

    Returns:
        ``(obs, state, reward, terminated, truncated, info)`` where obs and state belong to the
        new episode when ``terminated | truncated``; reward and the flags are those of the step
        taken; ``info["final_obs"]`` is the observation the step produced before any reset.
    """
    key_step, key_reset = jax.random.split(key)
    obs, next_state, reward, terminated, truncated, info = env.step(key_step, state, action, params)
    reset_obs, reset_state = env.reset(key_reset, params)
    done = terminated | truncated
    state = jax.tree_util.tree_map(lambda r, s: jnp.where(done, r, s), reset_state, next_state)
    info = {**info, "final_obs": obs}
    return jnp.where(done, reset_obs, obs), state, reward, terminated, truncated, info


def optimistic_autoreset_step(
    env: JaxEnv, key: jax.Array, state: Any, action: Any, params: Any, num_resets: int
) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
    """Steps ``B`` envs at once and resets the finished ones from only ``num_resets`` fresh draws.

    :func:`autoreset_step` under ``vmap`` draws a start state for every env at every step, which
    costs more than the step itself (Spaceship: about 4x the rollout's time). Here one step draws
    ``num_resets`` start states and hands them, in order, to the envs that finished (the k-th
    finished env gets draw ``k mod num_resets``), as Craftax's "optimistic resets" do. While at most
    ``num_resets`` envs finish in the same step, every finished env gets its own fresh draw and the
    start-state distribution is exact; beyond that, some finished envs share a start state (e.g.
    envs started together that time out together) — pick ``num_resets`` above the expected number
    of episode ends per step (``B / episode length``), or use :func:`autoreset_step`.

    Args:
        env: the environment.
        key: one PRNG key for the whole batch.
        state: pytree of batched states, leading axis ``B``.
        action: batched actions, leading axis ``B``.
        params: env parameters (shared by the batch).
        num_resets: start states drawn per step, 1 <= num_resets <= B.

    Returns:
        Like :func:`autoreset_step`, batched: ``(obs, state, reward, terminated, truncated, info)``
        with ``info["final_obs"]`` the observations before any reset.
    """
    batch = jax.tree_util.tree_leaves(state)[0].shape[0]
    if not 1 <= num_resets <= batch:
        raise ValueError(f"num_resets={num_resets} must be in [1, batch size {batch}]")
    key_step, key_reset = jax.random.split(key)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs, next_state, reward, terminated, truncated, info = step(
        jax.random.split(key_step, batch), state, action, params
    )
    reset = jax.vmap(env.reset, in_axes=(0, None))
    reset_obs, reset_state = reset(jax.random.split(key_reset, num_resets), params)
    done = terminated | truncated
    slot = (jnp.cumsum(done) - 1) % num_resets

    def pick(fresh: jax.Array, stepped: jax.Array) -> jax.Array:
        mask = done.reshape(done.shape + (1,) * (stepped.ndim - 1))
        return jnp.where(mask, fresh[slot], stepped)

    new_state = jax.tree_util.tree_map(pick, reset_state, next_state)
    info = {**info, "final_obs": obs}
    return pick(reset_obs, obs), new_state, reward, terminated, truncated, info
