"""The batched reset and step functions behind ``envs.jax_vector.JaxVectorEnv``, and its infos.

One jit per autoreset mode, at module level: ``reset_fn`` and ``step_fn`` (a task's pure
``JaxEnv.reset`` and ``JaxEnv.step``) are static, so each compiles once per task, mode and
batch size N, however many vector envs are made and reset. Keys are raw threefry keys, (N, 2)
uint32; states, observations and infos are pytrees whose leaves have a leading (N,) axis.
:func:`vector_infos` and :func:`same_step_infos` turn a jitted step's batched info into the
infos ``gymnasium.vector.SyncVectorEnv`` returns, on the host.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def where(mask: jax.Array, a: Any, b: Any) -> Any:
    """Per-env select between two batched pytrees: ``a`` where mask (N,) bool is True, else b."""

    def pick(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y)

    return jax.tree_util.tree_map(pick, a, b)


def batched_reset(reset_fn, keys: jax.Array, params: Any) -> tuple[jax.Array, Any, Any]:
    """Splits each env's key (N, 2) and resets every env: ``(keys, obs, states)``.

    The split is the single env's (``CoreEnv._next_reset_key``): the first half carries the
    env's key chain on, the second draws this reset.
    """
    split = jax.vmap(jax.random.split)(keys)
    obs, states = jax.vmap(reset_fn, in_axes=(0, None))(split[:, 1], params)
    return split[:, 0], obs, states


def masked_reset(
    reset_fn, keys: jax.Array, obs: Any, states: Any, mask: jax.Array, params: Any
) -> tuple[jax.Array, Any, Any]:
    """Resets the envs in ``mask`` (N,) bool; the others keep their keys, obs and states.

    Args:
        reset_fn: the task's ``reset(key, params) -> (obs, state)``.
        keys: (N, 2) keys, those of seeded envs already restarted at ``PRNGKey(seed)``.
        obs: the (N, ...) observations the envs last returned.
        states: the batched states.
        mask: (N,) bool, the envs to reset.
        params: the task's params.

    Returns:
        ``(keys, obs, states)`` after the reset.
    """
    new_keys, reset_obs, reset_states = batched_reset(reset_fn, keys, params)
    return (
        where(mask, new_keys, keys),
        where(mask, reset_obs, obs),
        where(mask, reset_states, states),
    )


def _step_all(step_fn, states: Any, actions: Any, params: Any) -> tuple:
    """Every env's ``step_fn(None, state, action, params)`` (the cores' steps are deterministic)."""
    return jax.vmap(step_fn, in_axes=(None, 0, 0, None))(None, states, actions, params)


def step_next_step(reset_fn, step_fn, keys, states, actions, needs_reset, params) -> tuple:
    """Steps every env, resetting instead those whose episode ended at the previous call.

    This is Gymnasium's next-step autoreset: a resetting env's reward is 0, its flags False and
    its info zeros.

    Args:
        reset_fn: the task's ``reset(key, params) -> (obs, state)``.
        step_fn: the task's ``step(key, state, action, params)``.
        keys: (N, 2) keys.
        states: the batched states.
        actions: the batched actions, leading axis N, checked by the task.
        needs_reset: (N,) bool, the envs whose previous step ended an episode.
        params: the task's params.

    Returns:
        ``(keys, obs, states, rewards, terminated, truncated, done, info)``, rewards and flags
        (N,), done = terminated | truncated.
    """
    new_keys, reset_obs, reset_states = batched_reset(reset_fn, keys, params)
    obs, next_states, rewards, terminated, truncated, info = _step_all(
        step_fn, states, actions, params
    )
    obs = where(needs_reset, reset_obs, obs)
    states = where(needs_reset, reset_states, next_states)
    keys = where(needs_reset, new_keys, keys)
    zero = jnp.zeros_like
    rewards, terminated, truncated, info = where(
        needs_reset,
        (zero(rewards), zero(terminated), zero(truncated), jax.tree_util.tree_map(zero, info)),
        (rewards, terminated, truncated, info),
    )
    return keys, obs, states, rewards, terminated, truncated, terminated | truncated, info


def step_same_step(reset_fn, step_fn, keys, states, actions, params) -> tuple:
    """Steps every env and resets, in the same call, those whose episode ends at this step.

    Gymnasium's same-step autoreset: a finished env returns its reset observation, with the
    reward and flags of the step it took. Arguments as :func:`step_next_step`, without
    ``needs_reset``.

    Returns:
        ``(keys, obs, final_obs, states, rewards, terminated, truncated, info)``: obs (N, ...)
        is the reset observation where the episode ended, final_obs (N, ...) every env's
        observation after its step; info is the step's.
    """
    new_keys, reset_obs, reset_states = batched_reset(reset_fn, keys, params)
    final_obs, next_states, rewards, terminated, truncated, info = _step_all(
        step_fn, states, actions, params
    )
    done = terminated | truncated
    return (
        where(done, new_keys, keys),
        where(done, reset_obs, final_obs),
        final_obs,
        where(done, reset_states, next_states),
        rewards,
        terminated,
        truncated,
        info,
    )


def step_disabled(step_fn, states, actions, params) -> tuple:
    """Steps every env, no autoreset: ``(obs, states, rewards, terminated, truncated, info)``."""
    return _step_all(step_fn, states, actions, params)


def _host_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``SyncVectorEnv`` gives an info key: float64, int64 or bool.

    That of the Python scalar the single env returns (``.item()`` of the core's value).
    """
    return np.dtype(type(np.zeros((), dtype).item()))


def vector_infos(info: dict[str, Any], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Gymnasium's vector infos: each key's (N,) values and ``_key``, (N,) bool: who has it.

    Built as ``VectorEnv._add_info`` builds them from the single envs' infos: values where the
    mask is False are zeros, dtypes those of the single envs' Python scalars, and a key no env
    has is left out (so no env: ``{}``).

    Args:
        info: the batched step info, each value (N,).
        mask: (N,) bool, the envs whose info this is (False: a reset, whose info is ``{}``).
    """
    if not mask.any():
        return {}
    infos = {}
    for key, value in info.items():
        value = np.asarray(value)
        infos[key] = np.where(mask, value, np.zeros_like(value)).astype(_host_dtype(value.dtype))
        infos[f"_{key}"] = mask.copy()
    return infos


def same_step_infos(info: dict[str, Any], final_obs: Any, done: np.ndarray) -> dict[str, Any]:
    """The infos of a same-step autoreset, as ``SyncVectorEnv`` gives them.

    A finished env's ``final_obs`` (an object array, None elsewhere) and ``final_info`` (its
    step info, with its own ``_key`` masks) are marked by ``_final_obs`` and ``_final_info``; its
    top-level info is its reset's, ``{}``, so its top-level masks are False.

    Args:
        info: the batched step info, each value (N,).
        final_obs: (N, ...) the observations the step produced, on device until needed.
        done: (N,) bool, terminated | truncated.
    """
    infos: dict[str, Any] = {}
    if done.any():
        observed = np.asarray(final_obs)
        finals = np.full(len(done), None, dtype=object)
        for i in np.flatnonzero(done):
            finals[i] = observed[i].copy()
        infos["final_obs"], infos["_final_obs"] = finals, done.copy()
        infos["final_info"], infos["_final_info"] = vector_infos(info, done), done.copy()
    return {**infos, **vector_infos(info, ~done)}


jit_reset = jax.jit(batched_reset, static_argnums=0)
jit_masked_reset = jax.jit(masked_reset, static_argnums=0)
jit_step_next_step = jax.jit(step_next_step, static_argnums=(0, 1))
jit_step_same_step = jax.jit(step_same_step, static_argnums=(0, 1))
jit_step_disabled = jax.jit(step_disabled, static_argnums=0)
