"""Pieces shared by the actor-critic losses: masked means, advantage normalisation, log-probs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from agents.common.loop import Batch, Learner


def weighted_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean of ``x`` over samples with ``weight`` 1 (weights are 0 or 1)."""
    return jnp.sum(x * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def normalize(advantage: jax.Array, weight: jax.Array) -> jax.Array:
    """Standardises advantages over the valid samples (SB3 adds 1e-8 to the std)."""
    mean = weighted_mean(advantage, weight)
    std = jnp.sqrt(weighted_mean((advantage - mean) ** 2, weight))
    return (advantage - mean) / (std + 1e-8)


def evaluate_actions(
    learner: Learner, params: Any, batch: Batch
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log_prob (N,), entropy (N,), value (N,))`` of the batch's actions under ``params``."""
    inputs, value = jax.vmap(learner.network.apply, in_axes=(None, 0))(params, batch.obs)
    log_prob = jax.vmap(learner.dist.log_prob)(inputs, batch.action)
    entropy = jax.vmap(learner.dist.entropy)(inputs)
    return log_prob, entropy, value
