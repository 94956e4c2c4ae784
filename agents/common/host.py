"""Host path: rollouts on any Gymnasium ``VectorEnv``, stepped in Python; the update is jitted.

Handles both autoreset modes of Gymnasium 1.x vector envs. ``SAME_STEP``: the final observation
of a finished episode is in ``info["final_obs"]``. ``NEXT_STEP`` (the default of ``make_vec``): the
step after an episode ends only resets that env and ignores its action; it is recorded with
``valid = 0`` (and ``done = True``) so that the loss leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import numpy as np

from agents.common.rollout import Transition, episode_bookkeeping


class HostCarry(NamedTuple):
    """Carry of the host rollout loop over ``B`` envs (NumPy arrays)."""

    obs: np.ndarray
    """(B, *obs_shape) current observations."""
    episode_return: np.ndarray
    """(B,) return of the running episodes so far."""
    needs_reset: np.ndarray
    """(B,) bool: NEXT_STEP mode only, the env's next step is an autoreset step."""
    key: jax.Array
    """PRNG key for actions (split like the device rollout)."""


def autoreset_mode(vec_env: gym.vector.VectorEnv) -> gym.vector.AutoresetMode:
    """The env's autoreset mode; ``DISABLED`` is refused.

    Raises:
        ValueError: for ``AutoresetMode.DISABLED``.
    """
    mode = vec_env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    mode = gym.vector.AutoresetMode(mode)
    if mode == gym.vector.AutoresetMode.DISABLED:
        raise ValueError("env: vector envs with autoreset_mode=DISABLED are not supported")
    return mode


def reset_host(vec_env: gym.vector.VectorEnv, key: jax.Array, seed: int) -> HostCarry:
    """Resets all envs with ``seed`` and starts the carry."""
    obs, _ = vec_env.reset(seed=seed)
    num_envs = vec_env.num_envs
    return HostCarry(np.asarray(obs), np.zeros(num_envs, np.float32), np.zeros(num_envs, bool), key)


def _final_obs(info: dict, next_obs: np.ndarray, same_step: bool) -> np.ndarray:
    """Final observations of finished episodes (NEXT_STEP: ``next_obs`` already is one)."""
    if not same_step or "_final_obs" not in info:
        return next_obs
    final = next_obs.copy()
    for i in np.flatnonzero(info["_final_obs"]):
        final[i] = info["final_obs"][i]
    return final


def check_env_output(obs: np.ndarray, reward: np.ndarray) -> None:
    """Refuses non-finite observations or rewards from a vector env, before they reach a loss.

    Args:
        obs: (B, *obs_shape) observations of one vector step.
        reward: (B,) rewards of the same step.

    Raises:
        ValueError: naming the sub-envs that returned NaN or infinite values.
    """
    for name, values in (("observation", obs), ("reward", reward)):
        if values.dtype.kind != "f":
            continue
        bad = ~np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"env: the vector env returned a non-finite {name} (NaN or inf) from sub-env(s) "
                f"{np.flatnonzero(bad).tolist()}; training on it would make the parameters NaN"
            )


def host_step(
    vec_env: gym.vector.VectorEnv,
    act_fn: Callable,
    value_fn: Callable,
    params: Any,
    carry: HostCarry,
    same_step: bool,
) -> tuple[HostCarry, Transition]:
    """One step of the vector env; mirrors :func:`agents.common.rollout.rollout_step`.

    ``act_fn`` is the jitted :func:`agents.common.rollout.split_and_act`: one dispatch per step.
    """
    key, outputs = act_fn(params, carry.obs, carry.key)
    # np.asarray per leaf, not jax.device_get: on a CPU the latter costs ~25 us more per call,
    # which at one call per env step was a fifth of a 1-env step. The key stays on the device.
    raw, env_action, value, log_prob = jax.tree.map(np.asarray, outputs)
    next_obs, reward, terminated, truncated, info = vec_env.step(env_action)
    next_obs = np.asarray(next_obs)
    reward = np.asarray(reward, np.float32)
    check_env_output(next_obs, reward)
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    valid = ~carry.needs_reset
    done = terminated | truncated | carry.needs_reset
    cut = truncated & ~terminated & valid
    bootstrap = np.zeros_like(reward)
    if cut.any():
        final_value = np.asarray(value_fn(params, _final_obs(info, next_obs, same_step)))
        bootstrap = np.where(cut, final_value, 0.0).astype(np.float32)
    running, finished = episode_bookkeeping(carry.episode_return, reward, done)
    needs_reset = (terminated | truncated) & valid if not same_step else np.zeros_like(done)
    transition = Transition(
        obs=carry.obs,
        action=raw,
        reward=reward,
        done=done,
        value=np.asarray(value),
        log_prob=np.asarray(log_prob),
        bootstrap=bootstrap,
        valid=valid.astype(np.float32),
        finished_return=np.asarray(finished, np.float32),
    )
    new_carry = HostCarry(next_obs, np.asarray(running, np.float32), needs_reset, key)
    return new_carry, transition


def host_rollout(
    vec_env: gym.vector.VectorEnv,
    act_fn: Callable,
    value_fn: Callable,
    params: Any,
    carry: HostCarry,
    n_steps: int,
) -> tuple[HostCarry, Transition]:
    """``n_steps`` host steps, stacked into a :class:`Transition` with leaves (T, B, ...).

    Args:
        vec_env: any Gymnasium ``VectorEnv`` with autoreset.
        act_fn: jitted ``split_and_act(params, obs, key) -> (next_key, act outputs)`` (see
            :func:`agents.common.rollout.split_and_act`).
        value_fn: jitted ``values(params, obs)``.
        params: network parameters.
        carry: the running :class:`HostCarry`.
        n_steps: steps per env.
    """
    same_step = autoreset_mode(vec_env) == gym.vector.AutoresetMode.SAME_STEP
    steps = []
    for _ in range(n_steps):
        carry, transition = host_step(vec_env, act_fn, value_fn, params, carry, same_step)
        steps.append(transition)
    return carry, jax.tree.map(lambda *xs: np.stack(xs), *steps)
