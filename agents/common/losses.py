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
    """Standardises advantages over the valid samples, as SB3 does.

    SB3 divides by torch's ``std()``, the unbiased one (over ``n - 1``), plus 1e-8, and leaves a
    batch of one sample as it is (its std is undefined); so does this, over the samples with
    ``weight`` 1.

    Args:
        advantage: (N,) advantages.
        weight: (N,) 1 for a valid sample, 0 for one left out (host autoreset steps).

    Returns:
        (N,) standardised advantages (invalid samples are standardised too; the losses mask them).
    """
    count = jnp.sum(weight)
    mean = weighted_mean(advantage, weight)
    variance = jnp.sum(weight * (advantage - mean) ** 2) / jnp.maximum(count - 1.0, 1.0)
    standardised = (advantage - mean) / (jnp.sqrt(variance) + 1e-8)
    return jnp.where(count > 1.0, standardised, advantage)


def evaluate_actions(
    learner: Learner, params: Any, batch: Batch
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(log_prob (N,), entropy (N,), value (N,))`` of the batch's actions under ``params``."""
    inputs, value = jax.vmap(learner.network.apply, in_axes=(None, 0))(params, batch.obs)
    log_prob = jax.vmap(learner.dist.log_prob)(inputs, batch.action)
    entropy = jax.vmap(learner.dist.entropy)(inputs)
    return log_prob, entropy, value
