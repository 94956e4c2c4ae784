"""Diagonal Gaussian predictions for probabilistic forward models (PETS, Chua et al. 2018).

A probabilistic model predicts, per output dimension, a mean and a log-variance, and is trained
by the Gaussian negative log-likelihood, so that it learns how uncertain each prediction is
(aleatoric noise) instead of regressing to the mean. As in PETS, the log-variance is kept inside
learned soft bounds: a network output ``raw`` becomes

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

and a small penalty ``weight * (sum(max_logvar) - sum(min_logvar))`` pulls the bounds towards the
data, so that the variance cannot blow up where there is no data nor collapse to zero where there
is. Everything here is for one sample (arrays of shape (K,)); batch with ``jax.vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MAX_LOGVAR_INIT = 0.5
"""Initial upper bound on the log-variance (PETS' value), in standardised units."""
MIN_LOGVAR_INIT = -10.0
"""Initial lower bound on the log-variance (PETS' value), in standardised units."""
BOUND_PENALTY = 0.01
"""Weight of ``sum(max_logvar) - sum(min_logvar)`` in the loss (PETS' value)."""


def init_bounds(size: int) -> dict[str, jax.Array]:
    """Learned log-variance bounds ``{"max_logvar": (size,), "min_logvar": (size,)}``."""
    return {
        "max_logvar": jnp.full((size,), MAX_LOGVAR_INIT, jnp.float32),
        "min_logvar": jnp.full((size,), MIN_LOGVAR_INIT, jnp.float32),
    }


def bounded_logvar(raw: jax.Array, bounds: dict[str, jax.Array]) -> jax.Array:
    """Soft-clips a raw (K,) log-variance into ``(min_logvar, max_logvar)`` (both (K,))."""
    logvar = bounds["max_logvar"] - jax.nn.softplus(bounds["max_logvar"] - raw)
    return bounds["min_logvar"] + jax.nn.softplus(logvar - bounds["min_logvar"])


def nll(mean: jax.Array, logvar: jax.Array, target: jax.Array, beta: float = 0.0) -> jax.Array:
    """Per-dimension Gaussian negative log-likelihood, (K,) from three (K,) arrays.

    ``(target - mean)^2 * exp(-logvar) + logvar``: twice the negative log-density of ``target``
    under N(mean, exp(logvar)), less the constant log(2 pi), as PETS trains it. With ``beta`` > 0
    each entry is weighted by ``stop_gradient(exp(logvar))^beta`` (beta-NLL, Seitzer et al.
    2022): the likelihood's gradient for the mean is scaled by 1 / variance, so the mean is fit
    slowly where the predicted variance is large; beta = 0.5 cancels half of that, beta = 1 all
    of it (the mean's gradient is then the squared error's).
    """
    loss = jnp.square(target - mean) * jnp.exp(-logvar) + logvar
    if beta == 0:
        return loss
    return loss * jax.lax.stop_gradient(jnp.exp(beta * logvar))


def bound_penalty(bounds: dict[str, jax.Array]) -> jax.Array:
    """``BOUND_PENALTY * (sum(max_logvar) - sum(min_logvar))``, a scalar added to the loss."""
    return BOUND_PENALTY * (jnp.sum(bounds["max_logvar"]) - jnp.sum(bounds["min_logvar"]))


def sample(mean: jax.Array, logvar: jax.Array, key: jax.Array) -> jax.Array:
    """One draw (K,) from N(mean, exp(logvar)), reparameterised (differentiable in mean, logvar)."""
    return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, jnp.shape(mean), mean.dtype)
