"""A gymnax-style handle on an environment's pure JAX core, for fully jitted loops.

``make_jax_env("worldplan/Spaceship-v0", action_mode="discrete")`` returns a :class:`JaxEnv` whose
``reset(key, params)`` and ``step(key, state, action, params)`` are pure, written for one env, and
batch with ``jax.vmap``. ``autoreset_step`` is the same-step autoreset that on-device training
loops (PureJaxRL-style) use.
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


def make_jax_env(env_id: str, **kwargs: Any) -> JaxEnv:
    """Builds the :class:`JaxEnv` of a registered id that has a JAX core.

    Raises:
        ValueError: the id has no JAX core (e.g. a pymunk environment).
    """
    if env_id == "worldplan/Spaceship-v0":
        from envs.spaceship.functional import make_jax

        return make_jax(**kwargs)
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
