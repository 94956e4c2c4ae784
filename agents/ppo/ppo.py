"""PPO with the clipped surrogate (Schulman et al. 2017, arXiv:1707.06347), SB3 defaults.

SB3 PPO defaults: lr 3e-4, n_steps 2048, batch_size 64, n_epochs 10, gamma 0.99, gae_lambda
0.95, clip_range 0.2, ent_coef 0, vf_coef 0.5, max_grad_norm 0.5, Adam eps 1e-5, advantages
normalised per minibatch, value loss unclipped. We keep all of these except ``n_steps``: 2048 steps
per env x 16 envs is 32K steps per update, too few updates for our budgets, so we use 128 steps
per env (2048 transitions per update with 16 envs, the same batch as SB3 with one env).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from agents.common.config import ActorCriticConfig
from agents.common.loop import Batch, Learner
from agents.common.losses import evaluate_actions, normalize, weighted_mean
from agents.common.train import Algorithm


@dataclasses.dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """PPO settings; SB3's defaults except ``n_steps`` (see the module docstring)."""

    learning_rate: float = 3e-4
    """Adam learning rate (constant)."""
    n_steps: int = 128
    """Steps per env per rollout (SB3: 2048)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    normalize_advantage: bool = True
    """Standardise advantages per minibatch."""
    batch_size: int = 64
    """Minibatch size; must divide ``n_steps * num_envs``."""
    n_epochs: int = 10
    """Passes over each rollout."""
    clip_range: float = 0.2
    """Clip of the probability ratio."""
    adam_eps: float = 1e-5
    """Adam epsilon."""

    def __post_init__(self) -> None:
        """Validates the fields."""
        super().__post_init__()
        if self.batch_size < 1 or self.steps_per_update % self.batch_size:
            raise ValueError(
                f"batch_size={self.batch_size} must divide n_steps * num_envs = "
                f"{self.steps_per_update}"
            )

    @property
    def num_minibatches(self) -> int:
        """Minibatches per epoch."""
        return self.steps_per_update // self.batch_size


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Gradient clipping then Adam."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm),
        optax.adam(config.learning_rate, eps=config.adam_eps),
    )


def ppo_loss(params: Any, learner: Learner, batch: Batch) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + vf_coef * value MSE - ent_coef * entropy, over valid samples."""
    config = learner.config
    log_prob, entropy, value = evaluate_actions(learner, params, batch)
    advantage = batch.advantage
    if config.normalize_advantage:
        advantage = normalize(advantage, batch.valid)
    ratio = jnp.exp(log_prob - batch.log_prob)
    clipped = jnp.clip(ratio, 1.0 - config.clip_range, 1.0 + config.clip_range)
    surrogate = jnp.minimum(advantage * ratio, advantage * clipped)
    policy_loss = -weighted_mean(surrogate, batch.valid)
    value_loss = weighted_mean((batch.target - value) ** 2, batch.valid)
    entropy_mean = weighted_mean(entropy, batch.valid)
    loss = policy_loss - config.ent_coef * entropy_mean + config.vf_coef * value_loss
    clip_fraction = weighted_mean((jnp.abs(ratio - 1.0) > config.clip_range), batch.valid)
    metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy_mean,
               "clip_fraction": clip_fraction}  # fmt: skip
    return loss, metrics


class _OptCarry(NamedTuple):
    params: Any
    opt_state: Any


def _minibatch_step(
    learner: Learner, carry: _OptCarry, minibatch: Batch
) -> tuple[_OptCarry, dict[str, jax.Array]]:
    grads, metrics = jax.grad(ppo_loss, has_aux=True)(carry.params, learner, minibatch)
    updates, opt_state = learner.optimizer.update(grads, carry.opt_state, carry.params)
    return _OptCarry(optax.apply_updates(carry.params, updates), opt_state), metrics


def _epoch(
    learner: Learner, batch: Batch, carry: _OptCarry, key: jax.Array
) -> tuple[_OptCarry, dict[str, jax.Array]]:
    config = learner.config
    order = jax.random.permutation(key, config.steps_per_update)
    shape = (config.num_minibatches, config.batch_size)
    minibatches = jax.tree.map(lambda x: x[order].reshape(shape + x.shape[1:]), batch)
    carry, metrics = jax.lax.scan(lambda c, mb: _minibatch_step(learner, c, mb), carry, minibatches)
    return carry, metrics


def update(
    learner: Learner, params: Any, opt_state: Any, batch: Batch, key: jax.Array
) -> tuple[Any, Any, dict[str, jax.Array]]:
    """``n_epochs`` passes of shuffled minibatch Adam steps over the rollout."""
    keys = jax.random.split(key, learner.config.n_epochs)
    carry, metrics = jax.lax.scan(
        lambda c, k: _epoch(learner, batch, c, k), _OptCarry(params, opt_state), keys
    )
    return carry.params, carry.opt_state, jax.tree.map(jnp.mean, metrics)


PPO = Algorithm("ppo", make_optimizer, update)
"""The PPO algorithm for :func:`agents.common.train.train`."""
