"""The shared supervised trainer: one jitted epoch, early stopping, checkpoints and resume.

Every world model in worldplan trains through :func:`fit`. A model supplies a loss for a batch::

    def loss_fn(params, batch, key) -> tuple[loss, dict[str, scalar]]

where ``batch`` has the pytree structure of the data with a leading example axis of length
``batch_size``. An epoch shuffles the training set and runs ``lax.scan`` over its minibatches inside
one ``jax.jit``, so it compiles once for a given data shape and is reused every epoch. The params
with the lowest validation loss are returned, and a checkpoint written atomically after each epoch
(:mod:`experiments.io`) lets an interrupted run continue with ``resume=True``. The optimiser
(Adam(W), gradient clipping, step-size decay) is built by :mod:`world_models.optimizer`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax

from experiments import io
from world_models.epochs import (  # noqa: F401  (re-exported: the trainer's public API)
    EpochRunner,
    Evaluator,
    LossFn,
    TrainState,
    evaluate,
    num_examples,
    shuffle,
    split_validation,
    train_epoch,
    train_step,
)
from world_models.optimizer import SCHEDULES, make_optimizer

CHECKPOINT_KIND = "trainer"


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Optimisation settings for :func:`fit`."""

    learning_rate: float = 1e-3
    """Adam(W) step size."""
    batch_size: int = 64
    """Examples per minibatch (clamped to the training set size)."""
    max_epochs: int = 50
    """Upper bound on passes over the training set."""
    patience: int = 5
    """Early stopping: epochs without a lower validation loss before training stops."""
    validation_fraction: float = 0.1
    """Share of ``data`` held out for validation when ``val_data`` is None (0 = use train loss)."""
    weight_decay: float = 0.0
    """Decoupled weight decay; AdamW when > 0, Adam otherwise. It decays every parameter except
    those under a ``"stats"`` key (the normalisation statistics models keep in their params,
    which no gradient trains) or a ``"logvar_bounds"`` key (see
    :func:`world_models.optimizer.decay_mask`)."""
    max_grad_norm: float | None = 1.0
    """Global gradient-norm clip; None disables clipping."""
    seed: int = 0
    """Seed for the validation split, shuffling and the per-batch loss keys."""
    scan: bool = True
    """Run each epoch as one jitted ``lax.scan``; False loops over one jitted step in Python,
    which XLA runs ~15x faster on the CPU for convolutional models (see :class:`EpochRunner`)."""
    lr_schedule: str = "constant"
    """Step-size schedule over ``max_epochs`` epochs of optimiser steps: "constant", "linear"
    or "cosine" (Loshchilov & Hutter 2017, no restarts) decay from ``learning_rate`` to
    ``final_lr_fraction * learning_rate``. Early stopping may end a run before the decay does."""
    final_lr_fraction: float = 0.0
    """Step size at the end of the decay over ``learning_rate`` (unused when "constant")."""

    def __post_init__(self) -> None:
        checks = {
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 0,
            "patience": self.patience >= 1,
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "weight_decay": self.weight_decay >= 0,
            "max_grad_norm": self.max_grad_norm is None or self.max_grad_norm > 0,
            "lr_schedule": self.lr_schedule in SCHEDULES,
            "final_lr_fraction": 0.0 <= self.final_lr_fraction <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"TrainerConfig.{name}={getattr(self, name)!r} is out of range")


class FitResult(NamedTuple):
    """What :func:`fit` returns."""

    params: Any
    """Params with the lowest validation loss."""
    history: list[dict]
    """One dict per epoch: epoch, train_loss, val_loss, train_/val_ metrics, seconds."""
    best_epoch: int
    """Epoch (0-based) whose params are returned."""
    best_val_loss: float
    """Validation loss of the returned params."""


class _Progress(NamedTuple):
    """Early-stopping bookkeeping saved in the checkpoint header."""

    epoch: int
    best_epoch: int
    best_val_loss: float
    bad_epochs: int
    history: list[dict]


def _epoch_record(
    epoch: int, train_logs: dict[str, float], val_logs: dict[str, float], seconds: float
) -> dict[str, float]:
    """One history row: epoch, losses, other metrics, wall time [s].

    The validation loss falls back to the training loss when there is no validation set; every
    other logged metric is kept as ``train_<name>`` / ``val_<name>``.
    """
    record = {
        "epoch": epoch,
        "train_loss": train_logs["loss"],
        "val_loss": val_logs.get("loss", train_logs["loss"]),
    }
    record.update({f"train_{k}": v for k, v in train_logs.items() if k != "loss"})
    record.update({f"val_{k}": v for k, v in val_logs.items() if k != "loss"})
    record["seconds"] = seconds
    return record


def _advanced(progress: _Progress, record: dict[str, float]) -> tuple[_Progress, bool]:
    """The bookkeeping after the epoch ``record`` describes, and whether it improved."""
    improved = record["val_loss"] < progress.best_val_loss
    advanced = _Progress(
        epoch=progress.epoch + 1,
        best_epoch=progress.epoch if improved else progress.best_epoch,
        best_val_loss=record["val_loss"] if improved else progress.best_val_loss,
        bad_epochs=0 if improved else progress.bad_epochs + 1,
        history=[*progress.history, record],
    )
    return advanced, improved


def _checkpoint_meta(config: TrainerConfig, n_train: int, progress: _Progress) -> dict[str, Any]:
    return {
        "kind": CHECKPOINT_KIND,
        "fingerprint": config_fingerprint(config),
        "num_train": n_train,
        **progress._asdict(),
    }


def config_fingerprint(config: TrainerConfig) -> str:
    """Hash of the settings a resumed run must share (run length, patience, loop may change).

    A decaying step size depends on the run length, so ``max_epochs`` counts then; with the
    constant one, the schedule fields are left out, so older checkpoints still resume.
    """
    if config.lr_schedule == "constant":
        ignore = ("max_epochs", "patience", "scan", "lr_schedule", "final_lr_fraction")
    else:
        ignore = ("patience", "scan")
    return io.config_fingerprint(config, ignore=ignore)


def _restore(
    path: Path, state: TrainState, config: TrainerConfig, n_train: int
) -> tuple[TrainState, Any, _Progress]:
    expect = {"kind": CHECKPOINT_KIND, "fingerprint": config_fingerprint(config)}
    expect["num_train"] = n_train
    tree, meta = io.load_checkpoint(path, {"state": state, "best": state.params}, expect)
    progress = _Progress(*(meta[f] for f in _Progress._fields))
    return TrainState(*tree["state"]), tree["best"], progress


def fit(
    loss_fn: LossFn,
    params: Any,
    data: Any,
    config: TrainerConfig,
    *,
    val_data: Any | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    log: Callable[[str], Any] | None = print,
) -> FitResult:
    """Trains ``params`` on ``data`` with minibatch Adam(W) and early stopping.

    The step size follows ``config.lr_schedule`` over ``config.max_epochs`` epochs of
    ``n_train // batch_size`` updates each.

    Args:
        loss_fn: ``(params, batch, key) -> (loss scalar, {name: scalar})``; ``batch`` has the
            structure of ``data`` with leading axis ``batch_size``.
        params: initial parameter pytree.
        data: pytree of arrays sharing a leading example axis ``n``.
        config: optimisation settings.
        val_data: held-out pytree like ``data``; when None, ``config.validation_fraction`` of
            ``data`` is split off (with no validation set, the train loss drives early stopping).
        checkpoint_path: if given, the state is saved there atomically after every epoch.
        resume: continue from ``checkpoint_path`` if it exists (it must have been written with
            the same config, apart from ``max_epochs``/``patience``, and training-set size).
        log: called with a one-line summary per epoch; None for silence.

    Returns:
        :class:`FitResult` with the best params (lowest validation loss) and per-epoch history.

    Raises:
        ValueError: malformed data, or ``resume`` without ``checkpoint_path``.
        FloatingPointError: the training or validation loss became NaN or infinite.
        experiments.io.CheckpointError: a checkpoint that does not fit this run.
    """
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs a checkpoint_path")
    if val_data is None:
        data, val_data = split_validation(data, config.validation_fraction, config.seed)
    n_train = num_examples(data, "data")
    if val_data is not None:
        num_examples(val_data, "val_data")
    batch_size = min(config.batch_size, n_train)
    optimizer = make_optimizer(config, n_train // batch_size)  # shuffle()'s steps per epoch
    epoch_fn = EpochRunner(loss_fn, optimizer, batch_size, config.scan)
    evaluator = Evaluator(loss_fn, max(batch_size, 256), config.scan)
    data = jax.device_put(data)

    state = TrainState(params, optimizer.init(params), jax.random.PRNGKey(config.seed))
    best_params = params
    progress = _Progress(0, -1, math.inf, 0, [])
    path = None if checkpoint_path is None else Path(checkpoint_path)
    if resume and path is not None and path.exists():
        state, best_params, progress = _restore(path, state, config, n_train)
        if log:
            log(f"resumed from {path} at epoch {progress.epoch}")

    eval_key = jax.random.PRNGKey(config.seed + 1)
    while progress.epoch < config.max_epochs and progress.bad_epochs < config.patience:
        start = time.perf_counter()
        state, train_logs = epoch_fn(state, data)
        train_logs = {k: float(v) for k, v in train_logs.items()}
        if not math.isfinite(train_logs["loss"]):
            raise FloatingPointError(
                f"training loss is {train_logs['loss']} at epoch {progress.epoch}; "
                "lower learning_rate or check the data for NaN"
            )
        val_logs = evaluator(state.params, val_data, eval_key) if val_data is not None else {}
        if not math.isfinite(val_logs.get("loss", 0.0)):
            raise FloatingPointError(
                f"validation loss is {val_logs['loss']} at epoch {progress.epoch} while the "
                "training loss is finite; check val_data for NaN or inf"
            )
        record = _epoch_record(progress.epoch, train_logs, val_logs, time.perf_counter() - start)
        progress, improved = _advanced(progress, record)
        if improved:
            best_params = state.params
        if path is not None:
            io.save_checkpoint(
                path,
                {"state": state, "best": best_params},
                _checkpoint_meta(config, n_train, progress),
            )
        if log:
            log(
                f"epoch {record['epoch']:3d}  train {record['train_loss']:.4g}  "
                f"val {record['val_loss']:.4g}{'  *' if improved else ''}  "
                f"({record['seconds']:.2f}s)"
            )
    return FitResult(best_params, progress.history, progress.best_epoch, progress.best_val_loss)
