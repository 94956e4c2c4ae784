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
reward)``: the ensemble mean, taking the whole ensemble's params. ``model.member_step`` is one
member (params sliced): the ``model_step`` of :mod:`planners.cem` when its
``ensemble_size > 1``, since CEM slices a member for each particle itself.

Probabilistic models (``DynamicsConfig(probabilistic=True)``; with an ensemble, PETS' "PE"):
each member predicts a diagonal Gaussian over the standardised delta, trained by its negative
log-likelihood (:mod:`world_models.gaussian`), and the reward as a deterministic model does.
:meth:`DynamicsModel.step` and ``member_step`` still give the means (what GBP differentiates);
``member_sample_step`` and ``sample_step`` draw the next state from the predicted Gaussians, for
CEM with ``stochastic_model=True`` (PETS' trajectory sampling).

Saving and loading: :meth:`DynamicsModel.save` and :meth:`DynamicsModel.load` (the checkpoint
carries the model's description, so loading into another model is refused naming the field).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import io
from world_models import gaussian, trainer
from world_models.data import Transitions, normalizer
from world_models.mlp import MLP

CHECKPOINT_KIND = "dynamics_model"
"""``kind`` in the header of the checkpoints :meth:`DynamicsModel.save` writes."""


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
    the smooth progress reward; Huber keeps those outliers from dominating the fit. Probabilistic
    models fit the reward this way too."""
    probabilistic: bool = False
    """Predict a diagonal Gaussian over the next state (a mean and a log-variance per entry of
    the delta) trained by its negative log-likelihood, as PETS (Chua et al. 2018) does; ``step``
    returns the means. The reward stays a point prediction fitted by ``reward_loss``: on the
    spaceship's data a Gaussian likelihood for it too (the crash and target bonuses inflate its
    variance, which slows the fit of its mean) gave 9x the squared error on steps that do not
    end an episode, and GBP through that model scored 1.5 where the deterministic one scores
    29.2."""
    nll_beta: float = 0.0
    """beta of the beta-NLL (Seitzer et al. 2022) for a probabilistic model, in [0, 1]: each
    entry's likelihood weighted by its predicted variance^beta (held fixed), so that the means
    are fit as fast where the future is uncertain; 0 is PETS' plain likelihood."""

    def __post_init__(self) -> None:
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ValueError(f"DynamicsConfig.hidden_sizes={self.hidden_sizes!r}: need widths >= 1")
        if self.ensemble_size < 1:
            raise ValueError(f"DynamicsConfig.ensemble_size={self.ensemble_size!r}: need >= 1")
        if self.reward_loss not in ("huber", "mse"):
            raise ValueError(f"DynamicsConfig.reward_loss={self.reward_loss!r}: 'huber' or 'mse'")
        if not 0 <= self.nll_beta <= 1:
            raise ValueError(f"DynamicsConfig.nll_beta={self.nll_beta!r}: need 0 <= beta <= 1")
        if self.nll_beta > 0 and not self.probabilistic:
            raise ValueError(
                f"DynamicsConfig.nll_beta={self.nll_beta!r} weights a likelihood: it needs "
                "probabilistic=True"
            )
        if self.action_noise_std < 0 or self.reward_weight < 0:
            raise ValueError("DynamicsConfig.action_noise_std and reward_weight must be >= 0")


@dataclasses.dataclass(frozen=True)
class DynamicsModel:
    """The model's static description; params are passed to every method.

    Which step a planner gets: :meth:`step` (the ensemble mean) takes the whole params, as
    :mod:`planners.gbp` and :mod:`planners.cem` with ``ensemble_size == 1`` pass them;
    :meth:`member_step` takes one member's, as :mod:`planners.cem` with ``ensemble_size > 1``
    passes them (particle ``p`` through member ``p % E``). Each refuses the other's params.

    Saving and loading trained params (the normalisation statistics travel inside them)::

        result = model.fit(data, trainer.TrainerConfig(), jax.random.key(0))
        model.save("model.ckpt", result.params)
        params = model.load("model.ckpt")  # refused if written by a model of another config

    ``fit(..., checkpoint_path=..., resume=True)`` is something else: the trainer's per-epoch
    checkpoint (optimiser state included) that lets an interrupted ``fit`` continue.
    """

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
        outputs = self.obs_dim + 1
        if self.config.probabilistic:  # means, then raw log-variances of the delta
            outputs += self.obs_dim
        return MLP(self.config.hidden_sizes, outputs, zero_output=True)

    def init(self, key: jax.Array, data: Transitions) -> dict[str, Any]:
        """Fresh params (leading ensemble axis E) with normalisation statistics of ``data``."""
        self.check(data)
        x = jnp.zeros(self.obs_dim + self.action_dim)
        keys = jax.random.split(key, self.config.ensemble_size)
        net = jax.vmap(lambda k: self.net.init(k, x))(keys)
        stats = jax.tree.map(
            lambda s: jnp.broadcast_to(s, (self.config.ensemble_size, *s.shape)), normalizer(data)
        )
        params = {"net": net, "stats": stats}
        if self.config.probabilistic:
            bounds = gaussian.init_bounds(self.obs_dim)
            params["logvar_bounds"] = jax.tree.map(
                lambda b: jnp.broadcast_to(b, (self.config.ensemble_size, *b.shape)), bounds
            )
        return params

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
            "terminated": (n,),
        }
        for name, shape in expected.items():
            value = np.asarray(getattr(data, name))
            if value.shape != shape:
                raise ValueError(f"data.{name}: expected shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"data.{name} contains NaN or inf")

    def check_sample(self, obs: jax.Array, action: jax.Array) -> None:
        """Raises ValueError naming the argument unless obs is (D,) and action is (A,).

        Shapes are static, so under ``jit`` this runs once, while tracing.
        """
        for name, value, size in (("obs", obs, self.obs_dim), ("action", action, self.action_dim)):
            if jnp.shape(value) != (size,):
                raise ValueError(
                    f"{name}: expected shape ({size},) for one sample, got {jnp.shape(value)}"
                    " (batch with jax.vmap)"
                )

    def _check_params(self, params: dict[str, Any], leading: tuple[int, ...], what: str) -> None:
        """Raises ValueError unless ``params`` stats have shape ``(*leading, D)`` (``what``)."""
        shape = jnp.shape(params["stats"]["obs_mean"])
        if shape != (*leading, self.obs_dim):
            raise ValueError(
                f"{what}: expected params whose stats/obs_mean has shape "
                f"{(*leading, self.obs_dim)}, got {shape}; step takes the whole ensemble's "
                "params, member_step one member's (jax.tree.map(lambda x: x[m], params))"
            )

    def _outputs(self, member: dict[str, Any], obs: jax.Array, action: jax.Array):
        """One member, one sample: standardised (D + 1,) means, and (D,) log-variances or None.

        The means are the delta's and the reward's; the log-variances, the delta's (bounded,
        :func:`gaussian.bounded_logvar`), for a probabilistic model.
        """
        self.check_sample(obs, action)
        stats = jax.lax.stop_gradient(member["stats"])
        x = jnp.concatenate([(obs - stats["obs_mean"]) / stats["obs_std"], action])
        out = self.net.apply(member["net"], x)
        if not self.config.probabilistic:
            return out, None
        size = self.obs_dim + 1
        return out[:size], gaussian.bounded_logvar(out[size:], member["logvar_bounds"])

    def predict_normalized(self, member: dict[str, Any], obs: jax.Array, action: jax.Array):
        """One member, one sample: standardised (delta (D,), reward ()); means if probabilistic."""
        mean, _ = self._outputs(member, obs, action)
        return mean[:-1], mean[-1]

    def _destandardise(self, member: dict[str, Any], obs: jax.Array, out: jax.Array):
        """``(next_obs (D,), reward ())`` from standardised (D + 1,) outputs."""
        stats = jax.lax.stop_gradient(member["stats"])
        next_obs = obs + stats["delta_mean"] + stats["delta_std"] * out[:-1]
        return next_obs, stats["reward_mean"] + stats["reward_std"] * out[-1]

    def member_step(self, member: dict[str, Any], obs: jax.Array, action: jax.Array):
        """One member: ``(next_obs (D,), reward ())`` from obs (D,) and action (A,).

        ``member`` is one member's params, ``jax.tree.map(lambda x: x[m], params)``, with no
        ensemble axis. This is the ``model_step`` for :mod:`planners.cem` when
        ``CEMConfig.ensemble_size > 1`` (CEM slices the members itself); with
        ``ensemble_size == 1`` and for :mod:`planners.gbp`, use :meth:`step`.
        """
        self._check_params(member, (), "member")
        return self._destandardise(member, obs, self._outputs(member, obs, action)[0])

    def member_sample_step(
        self, member: dict[str, Any], obs: jax.Array, action: jax.Array, key: jax.Array
    ):
        """One member, one draw: ``(next_obs (D,), reward ())`` from obs (D,) and action (A,).

        Samples the probabilistic model's predicted Gaussian over the next state with ``key``
        (PETS' trajectory sampling); the reward is the prediction for ``(obs, action)``. The
        ``model_step`` of :mod:`planners.cem` with ``stochastic_model=True`` and
        ``ensemble_size > 1`` (CEM hands each particle one member and a fresh key every step).

        Raises:
            ValueError: the model is not probabilistic.
        """
        if not self.config.probabilistic:
            raise ValueError("member_sample_step needs DynamicsConfig(probabilistic=True)")
        self._check_params(member, (), "member")
        mean, logvar = self._outputs(member, obs, action)
        delta = gaussian.sample(mean[:-1], logvar, key)  # the reward is a point prediction
        return self._destandardise(member, obs, jnp.concatenate([delta, mean[-1:]]))

    def sample_step(
        self, params: dict[str, Any], obs: jax.Array, action: jax.Array, key: jax.Array
    ):
        """The whole ensemble, one draw: a random member each call (PETS' TS1), then sampled.

        As :meth:`member_sample_step`, through a member drawn with ``key``. The ``model_step`` of
        :mod:`planners.cem` with ``stochastic_model=True`` and ``ensemble_size == 1`` (CEM hands
        it the whole params).
        """
        self._check_params(params, (self.config.ensemble_size,), "params")
        member_key, draw_key = jax.random.split(key)
        index = jax.random.randint(member_key, (), 0, self.config.ensemble_size)
        member = jax.tree.map(lambda leaf: leaf[index], params)
        return self.member_sample_step(member, obs, action, draw_key)

    def step(self, params: dict[str, Any], obs: jax.Array, action: jax.Array):
        """Ensemble mean ``(next_obs (D,), reward ())`` from obs (D,) and action (A,).

        ``params`` are the whole ensemble's (leading axis E on every leaf). This is the
        ``model_step`` of :mod:`planners.gbp`, and of :mod:`planners.cem` only when
        ``CEMConfig.ensemble_size == 1``; CEM with ``ensemble_size > 1`` needs
        :meth:`member_step`, since it hands the step one member's params.
        """
        self._check_params(params, (self.config.ensemble_size,), "params")
        next_obs, reward = jax.vmap(self.member_step, in_axes=(0, None, None))(params, obs, action)
        return next_obs.mean(0), reward.mean(0)

    def loss(self, params: dict[str, Any], batch: Transitions, key: jax.Array):
        """The trainer's loss_fn: state error + reward_weight x reward error, standardised.

        Averaged over members and the batch.

        Deterministic models: mean squared state error and the ``reward_loss`` of the reward.
        Probabilistic ones: the state's Gaussian negative log-likelihood (:func:`gaussian.nll`)
        plus PETS' penalty on the log-variance bounds, and the reward's as above. Metrics: the
        means' squared errors (``state_mse``, ``reward_mse``), comparable between the kinds.
        """
        action = batch.action
        if self.config.action_noise_std > 0 and any(self.simplex_mask):
            mask = jnp.asarray(self.simplex_mask, jnp.float32)
            noise = jax.random.normal(key, action.shape) * self.config.action_noise_std
            action = action + mask * noise
        per_member = jax.vmap(self._member_loss, in_axes=(0, None, None))
        state_loss, reward_loss, state_mse, reward_mse = per_member(params, batch, action)
        loss = jnp.mean(state_loss) + self.config.reward_weight * jnp.mean(reward_loss)
        return loss, {"state_mse": jnp.mean(state_mse), "reward_mse": jnp.mean(reward_mse)}

    def _member_loss(self, member: dict[str, Any], batch: Transitions, action: jax.Array):
        """One member's (state loss, reward loss, state MSE, reward MSE) on a batch."""
        stats = jax.lax.stop_gradient(member["stats"])
        mean, logvar = jax.vmap(self._outputs, in_axes=(None, 0, 0))(member, batch.obs, action)
        delta_target = (batch.next_obs - batch.obs - stats["delta_mean"]) / stats["delta_std"]
        reward_target = (batch.reward - stats["reward_mean"]) / stats["reward_std"]
        state_mse = jnp.mean(jnp.square(mean[:, :-1] - delta_target))
        reward_mse = jnp.mean(jnp.square(mean[:, -1] - reward_target))
        if self.config.reward_loss == "huber":
            reward_loss = jnp.mean(optax.huber_loss(mean[:, -1], reward_target, delta=1.0)) * 2.0
        else:
            reward_loss = reward_mse
        if not self.config.probabilistic:
            return state_mse, reward_loss, state_mse, reward_mse
        nll = jnp.mean(gaussian.nll(mean[:, :-1], logvar, delta_target))
        if self.config.nll_beta > 0:
            # The value stays the likelihood (validation and early stopping compare epochs on
            # it; the weights move as the variances do); the gradient is beta-NLL's.
            weighted = jnp.mean(
                gaussian.nll(mean[:, :-1], logvar, delta_target, self.config.nll_beta)
            )
            nll = jax.lax.stop_gradient(nll) + weighted - jax.lax.stop_gradient(weighted)
        state_loss = nll + gaussian.bound_penalty(member["logvar_bounds"])
        return state_loss, reward_loss, state_mse, reward_mse

    def fit(
        self,
        data: Transitions,
        trainer_config: trainer.TrainerConfig,
        key: jax.Array,
        *,
        val_data: Transitions | None = None,
        params: dict[str, Any] | None = None,
        checkpoint_path: str | Path | None = None,
        resume: bool = False,
        log: Any = print,
    ) -> trainer.FitResult:
        """Trains with the shared trainer; ``params`` continues a previous model and its stats.

        Without ``val_data``, ``trainer_config.validation_fraction`` of ``data`` is held out
        (as :func:`world_models.trainer.fit` would) before fresh params take the normalisation
        statistics of the rest, so nothing about the validation set leaks into the model.
        ``checkpoint_path`` and ``resume`` go to :func:`world_models.trainer.fit`: the training
        state is saved there after every epoch, and ``resume=True`` continues from it (the
        split is seeded, so a resumed run trains on the same examples). To keep the result,
        :meth:`save` ``result.params``.
        """
        self.check(data)
        if val_data is None:  # split here, so the statistics come from the training part only
            data, val_data = trainer.split_validation(
                data, trainer_config.validation_fraction, trainer_config.seed
            )
        if params is None:
            params = self.init(key, data)
        data = Transitions(*(jnp.asarray(x) for x in data))
        return trainer.fit(
            self.loss,
            params,
            data,
            trainer_config,
            val_data=val_data,
            checkpoint_path=checkpoint_path,
            resume=resume,
            log=log,
        )

    def member(self, params: dict[str, Any], index: int) -> tuple[DynamicsModel, dict[str, Any]]:
        """Member ``index`` of an ensemble as a model of its own, e.g. to plan through it.

        Returns ``(model, params)``: the model with ``ensemble_size=1``, whose ``step`` is that
        member's, and the member's params (leading axis of length 1).

        Raises:
            ValueError: ``index`` outside ``[0, ensemble_size)``, or ``params`` not this
                ensemble's.
        """
        size = self.config.ensemble_size
        if not 0 <= index < size:
            raise ValueError(f"member index={index}: the ensemble has members 0..{size - 1}")
        self._check_params(params, (size,), "params")
        model = dataclasses.replace(self, config=dataclasses.replace(self.config, ensemble_size=1))
        return model, jax.tree.map(lambda leaf: leaf[index : index + 1], params)

    def description(self) -> dict[str, Any]:
        """The fields that fix the params' meaning, as flat JSON values (a checkpoint's header)."""
        config = io.to_jsonable(self.config)
        return {
            **{f"config.{name}": value for name, value in config.items()},
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "simplex_mask": io.to_jsonable(self.simplex_mask),
        }

    def save(self, path: str | Path, params: dict[str, Any]) -> Path:
        """Atomically writes ``params`` (e.g. ``fit(...).params``) with this model's description."""
        return io.save_checkpoint(
            path, params, {"kind": CHECKPOINT_KIND, "model": self.description()}
        )

    def load(self, path: str | Path) -> dict[str, Any]:
        """Params saved by :meth:`save` from a model with this very description.

        Raises:
            experiments.io.CheckpointError: a missing or corrupt file, another kind of
                checkpoint, or one from a model whose config or sizes differ (the field named).
        """
        meta = io.read_checkpoint_meta(path)
        if meta.get("kind") != CHECKPOINT_KIND:
            raise io.CheckpointError(
                f"{path}: expected a {CHECKPOINT_KIND!r} checkpoint, got kind={meta.get('kind')!r}"
            )
        _check_description(path, meta.get("model", {}), self.description())
        params, _ = io.load_checkpoint(path, self.template(), {"kind": CHECKPOINT_KIND})
        return params


_ADDED_LATER = {"config.probabilistic": False, "config.nll_beta": 0.0}
"""Description fields newer than some checkpoints, with the value those checkpoints imply."""


def _check_description(path: Any, saved: dict[str, Any], ours: dict[str, Any]) -> None:
    """Raises CheckpointError naming the first field (``config.hidden_sizes``) that differs."""
    saved = {**_ADDED_LATER, **saved}
    differ = io.differing_fields(saved, ours)
    if differ:
        name = differ[0]
        raise io.CheckpointError(
            f"{path} was saved by a model with {name}={saved.get(name)!r}, but this "
            f"model has {name}={ours.get(name)!r}; refusing to load it"
        )


def prediction_errors(model: DynamicsModel, params: dict[str, Any], data: Transitions):
    """Mean squared one-step errors ``(next_obs (D,), reward ())`` of the model on ``data``."""
    predict = jax.jit(jax.vmap(model.step, in_axes=(None, 0, 0)))
    next_obs, reward = predict(params, jnp.asarray(data.obs), jnp.asarray(data.action))
    obs_error = np.mean((np.asarray(next_obs) - np.asarray(data.next_obs)) ** 2, axis=0)
    return obs_error, float(np.mean((np.asarray(reward) - np.asarray(data.reward)) ** 2))
