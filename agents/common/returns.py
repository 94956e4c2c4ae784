"""n-step returns and generalised advantage estimation (GAE), one implementation each.

Both work on a rollout of ``T`` steps from ``B`` environments laid out time-major, ``(T, B)``.
``dones[t]`` is true when the episode ended at step ``t`` (terminated or truncated), so step
``t + 1`` belongs to a new episode and nothing is bootstrapped across the boundary. A truncated
episode is bootstrapped by the caller, who adds ``gamma * V(final_obs)`` to its last reward
(as Stable-Baselines3 does); see :mod:`agents.common.rollout`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class _GAECarry(NamedTuple):
    advantage: jax.Array
    next_value: jax.Array


class _ReturnCarry(NamedTuple):
    next_return: jax.Array


def gae(
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    last_value: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438, eq. 16).

    ``delta_t = r_t + gamma * (1 - done_t) * V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}``, computed backwards with
    ``lax.scan``.

    Args:
        rewards: (T, B) rewards [-].
        values: (T, B) value estimates V(s_t) of the observations the actions were taken in.
        dones: (T, B) bool or {0, 1}: the episode ended at step t.
        last_value: (B,) V(s_T) of the observation after the last step.
        gamma: discount factor in [0, 1].
        gae_lambda: GAE lambda in [0, 1]; 1 gives Monte-Carlo / n-step advantages.

    Returns:
        ``(advantages, returns)``, both (T, B); ``returns = advantages + values`` are the
        value targets.
    """
    not_done = 1.0 - dones.astype(values.dtype)

    def backward(carry: _GAECarry, step: tuple) -> tuple[_GAECarry, jax.Array]:
        reward, value, mask = step
        delta = reward + gamma * mask * carry.next_value - value
        advantage = delta + gamma * gae_lambda * mask * carry.advantage
        return _GAECarry(advantage, value), advantage

    init = _GAECarry(jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(backward, init, (rewards, values, not_done), reverse=True)
    return advantages, advantages + values


def nstep_returns(
    rewards: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float
) -> jax.Array:
    """Bootstrapped n-step returns ``R_t = r_t + gamma * (1 - done_t) * R_{t+1}``, ``R_T = V(s_T)``.

    This is the A2C target of Mnih et al. 2016 (arXiv:1602.01783, Algorithm S3); it equals
    ``gae(..., gae_lambda=1)[1]``, which the tests check.

    Args:
        rewards: (T, B) rewards [-].
        dones: (T, B) bool or {0, 1}: the episode ended at step t.
        last_value: (B,) V(s_T) of the observation after the last step.
        gamma: discount factor in [0, 1].

    Returns:
        (T, B) returns.
    """
    not_done = 1.0 - dones.astype(rewards.dtype)

    def backward(carry: _ReturnCarry, step: tuple) -> tuple[_ReturnCarry, jax.Array]:
        reward, mask = step
        ret = reward + gamma * mask * carry.next_return
        return _ReturnCarry(ret), ret

    _, returns = jax.lax.scan(backward, _ReturnCarry(last_value), (rewards, not_done), reverse=True)
    return returns
