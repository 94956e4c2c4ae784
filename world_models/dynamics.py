"""State dynamics model: an MLP (optionally an ensemble) predicting the next observation and reward.

``next_obs = obs + delta(obs, action)`` (a residual, Henaff et al. 2017 and PETS), ``reward =
r(obs, action)``. Inputs and targets are standardised with statistics of the training data, which
are stored inside the params (as non-trained leaves) so that a checkpoint is self-contained.

Params layout: every leaf has a leading ensemble axis of length ``ensemble_size`` (also for 1, and
also the normalisation statistics, broadcast), so ``jax.tree.map(lambda x: x[m], params)`` is
member ``m`` and :mod:`planners.cem` can assign particles to members. The model is written for one
sample; the loss ``vmap``s it over the batch and the members, and trains through the shared
:func:`world_models.trainer.fit`.

The planner interface (:mod:`planners.gbp`) is ``model.step(params, obs, action) -> (next_obs,
reward)``: the ensemble mean. ``model.member_step`` is one member (params sliced).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from world_models import trainer
from world_models.data import Transitions

_MIN_STD = 1e-6


@dataclasses.dataclass(frozen=True)
class DynamicsConfig:
    """Architecture and training options of the state dynamics model."""

    hidden_sizes: tuple[int, ...] = (128, 128)
    """Widths of the hidden layers (SiLU activations: smooth, so planning gradients are too)."""
    ensemble_size: int = 1
    """Independently initialised members trained on the same data; predictions are averaged."""
    action_noise_std: float = 0.0
    """Std of Gaussian noise added to the simplex (one-hot) entries of action inputs in training.

    Henaff et al. (2017): makes the model defined inside the simplex for discrete planning."""
    reward_weight: float = 1.0
    """Weight of the standardised reward error relative to the standardised state error."""
    reward_loss: str = "huber"
    """"huber" or "mse" on the standardised reward. Rewards are standardised with statistics of
    the steps that do not end an episode, so the rare large crash/escape penalties do not swamp
    the smooth progress reward; Huber keeps those outliers from dominating the fit."""

    def __post_init__(self) -> None:
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"DynamicsConfig.hidden_sizes={self.hidden_sizes!r}: need widths >= 1")
        if self.ensemble_size < 1:
            raise ValueError(f"DynamicsConfig.ensemble_size={self.ensemble_size!r}: need >= 1")
        if self.reward_loss not in ("huber", "mse"):
            raise ValueError(f"DynamicsConfig.reward_loss={self.reward_loss!r}: 'huber' or 'mse'")
        if self.action_noise_std < 0 or self.reward_weight < 0:
            raise ValueError("DynamicsConfig.action_noise_std and reward_weight must be >= 0")


class MLP(nn.Module):
    """SiLU MLP ``(D,) -> (out_size,)`` of the forward model and the distilled policy."""

    hidden_sizes: tuple[int, ...]
    """Widths of the hidden layers."""
    out_size: int
    """Width of the linear output layer."""
    zero_output: bool = False
    """Start the output layer's kernel at zero (a forward model that first predicts no change)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps (D,) inputs to (out_size,) outputs."""
        for width in self.hidden_sizes:
            x = nn.silu(nn.Dense(width)(x))
        init = nn.initializers.zeros if self.zero_output else nn.linear.default_kernel_init
        return nn.Dense(self.out_size, kernel_init=init)(x)


def normalizer(data: Transitions) -> dict[str, jax.Array]:
    """Means and stds of inputs and targets: obs (D,), delta (D,), reward () (non-final steps)."""
    obs = np.asarray(data.obs, np.float64)
    delta = np.asarray(data.next_obs, np.float64) - obs
    reward = np.asarray(data.reward, np.float64)
    steady = reward[~np.asarray(data.terminated, bool)]
    reward = steady if len(steady) > 1 else reward
    stats = {
        "obs_mean": obs.mean(0),
        "obs_std": np.maximum(obs.std(0), _MIN_STD),
        "delta_mean": delta.mean(0),
        "delta_std": np.maximum(delta.std(0), _MIN_STD),
        "reward_mean": reward.mean(),
        "reward_std": np.maximum(reward.std(), _MIN_STD),
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in stats.items()}


@dataclasses.dataclass(frozen=True)
class DynamicsModel:
    """The model's static description; params are passed to every method."""

    config: DynamicsConfig
    obs_dim: int
    """Length of the observation vector D."""
    action_dim: int
    """Length of the model action vector A (:mod:`planners.relax`)."""
    simplex_mask: tuple[bool, ...] = ()
    """(A,) entries of the action that are one-hot/simplex (where training noise goes)."""

    @property
    def net(self) -> MLP:
        """The Flax module of one member."""
        return MLP(self.config.hidden_sizes, self.obs_dim + 1, zero_output=True)

    def init(self, key: jax.Array, data: Transitions) -> dict[str, Any]:
        """Fresh params (leading ensemble axis E) with normalisation statistics of ``data``."""
        self.check(data)
        x = jnp.zeros(self.obs_dim + self.action_dim)
        keys = jax.random.split(key, self.config.ensemble_size)
        net = jax.vmap(lambda k: self.net.init(k, x))(keys)
        stats = jax.tree.map(
            lambda s: jnp.broadcast_to(s, (self.config.ensemble_size, *s.shape)), normalizer(data)
        )
        return {"net": net, "stats": stats}

    def template(self) -> dict[str, Any]:
        """Params of this model's structure (values meaningless): the target to load saved ones."""
        n, zeros = 2, np.zeros
        dummy = Transitions(
            zeros((n, self.obs_dim), np.float32),
            zeros((n, self.action_dim), np.float32),
            zeros(n, np.float32),
            zeros((n, self.obs_dim), np.float32),
            zeros(n, bool),
        )
        return self.init(jax.random.key(0), dummy)

    def check(self, data: Transitions) -> None:
        """Raises ValueError naming the field if shapes or values of ``data`` are wrong."""
        n = len(data.obs)
        expected = {
            "obs": (n, self.obs_dim),
            "action": (n, self.action_dim),
            "reward": (n,),
            "next_obs": (n, self.obs_dim),
        }
        for name, shape in expected.items():
            value = np.asarray(getattr(data, name))
            if value.shape != shape:
                raise ValueError(f"data.{name}: expected shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"data.{name} contains NaN or inf")

    def predict_normalized(self, member: dict[str, Any], obs: jax.Array, action: jax.Array):
        """One member, one sample: standardised (delta (D,), reward ())."""
        stats = jax.lax.stop_gradient(member["stats"])
        x = jnp.concatenate([(obs - stats["obs_mean"]) / stats["obs_std"], action])
        out = self.net.apply(member["net"], x)
        return out[:-1], out[-1]

    def member_step(self, member: dict[str, Any], obs: jax.Array, action: jax.Array):
        """One member: ``(next_obs (D,), reward ())`` from obs (D,) and action (A,)."""
        stats = jax.lax.stop_gradient(member["stats"])
        delta, reward = self.predict_normalized(member, obs, action)
        next_obs = obs + stats["delta_mean"] + stats["delta_std"] * delta
        return next_obs, stats["reward_mean"] + stats["reward_std"] * reward

    def step(self, params: dict[str, Any], obs: jax.Array, action: jax.Array):
        """Ensemble mean ``(next_obs (D,), reward ())``: the planners' ``model_step``."""
        next_obs, reward = jax.vmap(self.member_step, in_axes=(0, None, None))(params, obs, action)
        return next_obs.mean(0), reward.mean(0)

    def loss(self, params: dict[str, Any], batch: Transitions, key: jax.Array):
        """Mean standardised squared error over members and the batch (the trainer's loss_fn)."""
        action = batch.action
        if self.config.action_noise_std > 0 and any(self.simplex_mask):
            mask = jnp.asarray(self.simplex_mask, jnp.float32)
            noise = jax.random.normal(key, action.shape) * self.config.action_noise_std
            action = action + mask * noise

        def member_loss(member: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
            stats = jax.lax.stop_gradient(member["stats"])
            predict = jax.vmap(self.predict_normalized, in_axes=(None, 0, 0))
            delta, reward = predict(member, batch.obs, action)
            delta_target = (batch.next_obs - batch.obs - stats["delta_mean"]) / stats["delta_std"]
            reward_target = (batch.reward - stats["reward_mean"]) / stats["reward_std"]
            if self.config.reward_loss == "huber":
                reward_error = jnp.mean(optax.huber_loss(reward, reward_target, delta=1.0)) * 2.0
            else:
                reward_error = jnp.mean((reward - reward_target) ** 2)
            return jnp.mean((delta - delta_target) ** 2), reward_error

        state_error, reward_error = jax.vmap(member_loss)(params)
        loss = jnp.mean(state_error) + self.config.reward_weight * jnp.mean(reward_error)
        return loss, {"state_mse": jnp.mean(state_error), "reward_mse": jnp.mean(reward_error)}

    def fit(
        self,
        data: Transitions,
        trainer_config: trainer.TrainerConfig,
        key: jax.Array,
        *,
        val_data: Transitions | None = None,
        params: dict[str, Any] | None = None,
        log: Any = print,
    ) -> trainer.FitResult:
        """Trains with the shared trainer; ``params`` continues a previous model and its stats.

        Without ``val_data``, ``trainer_config.validation_fraction`` of ``data`` is held out
        (as :func:`world_models.trainer.fit` would) before fresh params take the normalisation
        statistics of the rest, so nothing about the validation set leaks into the model.
        """
        self.check(data)
        if val_data is None:  # split here, so the statistics come from the training part only
            data, val_data = trainer.split_validation(
                data, trainer_config.validation_fraction, trainer_config.seed
            )
        if params is None:
            params = self.init(key, data)
        data = Transitions(*(jnp.asarray(x) for x in data))
        return trainer.fit(self.loss, params, data, trainer_config, val_data=val_data, log=log)


def prediction_errors(model: DynamicsModel, params: dict[str, Any], data: Transitions):
    """Mean squared one-step errors ``(next_obs (D,), reward ())`` of the model on ``data``."""
    predict = jax.jit(jax.vmap(model.step, in_axes=(None, 0, 0)))
    next_obs, reward = predict(params, jnp.asarray(data.obs), jnp.asarray(data.action))
    obs_error = np.mean((np.asarray(next_obs) - np.asarray(data.next_obs)) ** 2, axis=0)
    return obs_error, float(np.mean((np.asarray(reward) - np.asarray(data.reward)) ** 2))
