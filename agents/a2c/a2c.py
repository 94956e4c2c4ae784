"""A2C (Mnih et al. 2016, arXiv:1602.01783), synchronous, with Stable-Baselines3's defaults.

SB3 uses ``torch.optim.RMSprop(alpha=0.99, eps=1e-5)``, which adds ``eps`` *outside* the square
root: ``g / (sqrt(v) + eps)`` with ``v`` starting at 0. ``optax.rmsprop`` puts it inside by
default; we pass ``eps_in_sqrt=False`` so the update is torch's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import optax

from agents.common.config import ActorCriticConfig
from agents.common.loop import Batch, Learner
from agents.common.losses import evaluate_actions, normalize, weighted_mean
from agents.common.train import Algorithm


@dataclasses.dataclass(frozen=True)
class A2CConfig(ActorCriticConfig):
    """A2C settings; defaults are SB3's ``A2C`` (lr 7e-4, 5 steps, RMSprop) with 16 envs."""

    learning_rate: float = 7e-4
    """RMSprop learning rate (constant)."""
    n_steps: int = 5
    """Steps per env per update."""
    gae_lambda: float = 1.0
    """GAE lambda; 1.0 gives A2C's n-step returns."""
    use_rms_prop: bool = True
    """RMSprop (SB3 default) instead of Adam."""
    rms_prop_alpha: float = 0.99
    """RMSprop decay of the squared-gradient average (torch ``alpha``, optax ``decay``)."""
    rms_prop_eps: float = 1e-5
    """RMSprop epsilon, added outside the square root as in torch."""


def make_optimizer(config: A2CConfig) -> optax.GradientTransformation:
    """Gradient clipping then RMSprop (torch semantics) or Adam."""
    if config.use_rms_prop:
        opt = optax.rmsprop(
            config.learning_rate,
            decay=config.rms_prop_alpha,
            eps=config.rms_prop_eps,
            eps_in_sqrt=False,
        )
    else:
        opt = optax.adam(config.learning_rate, eps=config.rms_prop_eps)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)


def a2c_loss(params: Any, learner: Learner, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """SB3's A2C loss: ``-mean(A log pi) - ent_coef mean(H) + vf_coef mean((R - V)^2)``."""
    config = learner.config
    log_prob, entropy, value = evaluate_actions(learner, params, batch)
    advantage = jax.lax.stop_gradient(batch.advantage)
    if config.normalize_advantage:
        advantage = normalize(advantage, batch.valid)
    policy_loss = -weighted_mean(advantage * log_prob, batch.valid)
    value_loss = weighted_mean((batch.target - value) ** 2, batch.valid)
    entropy_mean = weighted_mean(entropy, batch.valid)
    loss = policy_loss - config.ent_coef * entropy_mean + config.vf_coef * value_loss
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy_mean}


def update(
    learner: Learner, params: Any, opt_state: Any, batch: Batch, key: jax.Array
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """One gradient step on the whole rollout (``key`` is unused: A2C does not shuffle)."""
    del key
    grads, metrics = jax.grad(a2c_loss, has_aux=True)(params, learner, batch)
    updates, opt_state = learner.optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics


A2C = Algorithm("a2c", make_optimizer, update)
"""The A2C algorithm for :func:`agents.common.train.train`."""
