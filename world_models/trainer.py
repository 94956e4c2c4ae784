"""The shared supervised trainer: one jitted epoch, early stopping, checkpoints and resume.

Every world model in worldplan trains through :func:`fit`. A model supplies a loss for a batch::

    def loss_fn(params, batch, key) -> tuple[loss, dict[str, scalar]]

where ``batch`` has the pytree structure of the data with a leading example axis of length
``batch_size``. An epoch shuffles the training set and runs ``lax.scan`` over its minibatches inside
one ``jax.jit``, so it compiles once for a given data shape and is reused every epoch. The params
with the lowest validation loss are returned, and a checkpoint written atomically after each epoch
(:mod:`experiments.io`) lets an interrupted run continue with ``resume=True``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments import io

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]

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
    """Decoupled weight decay; AdamW when > 0, Adam otherwise."""
    max_grad_norm: float | None = 1.0
    """Global gradient-norm clip; None disables clipping."""
    seed: int = 0
    """Seed for the validation split, shuffling and the per-batch loss keys."""
    scan: bool = True
    """Run each epoch as one jitted ``lax.scan``; False loops over one jitted step in Python,
    which XLA runs ~15x faster on the CPU for convolutional models (see :class:`EpochRunner`)."""

    def __post_init__(self) -> None:
        checks = {
            "learning_rate": self.learning_rate > 0,
            "batch_size": self.batch_size >= 1,
            "max_epochs": self.max_epochs >= 0,
            "patience": self.patience >= 1,
            "validation_fraction": 0.0 <= self.validation_fraction < 1.0,
            "weight_decay": self.weight_decay >= 0,
            "max_grad_norm": self.max_grad_norm is None or self.max_grad_norm > 0,
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


class TrainState(NamedTuple):
    """Carry of the epoch scan: everything that changes from step to step."""

    params: Any
    opt_state: Any
    key: jax.Array


def make_optimizer(config: TrainerConfig) -> optax.GradientTransformation:
    """Adam (or AdamW when ``weight_decay > 0``) after an optional global-norm clip."""
    if config.weight_decay > 0:
        opt = optax.adamw(config.learning_rate, weight_decay=config.weight_decay)
    else:
        opt = optax.adam(config.learning_rate)
    if config.max_grad_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
    return opt


def num_examples(data: Any, name: str = "data") -> int:
    """Length of the shared leading axis of every array in ``data``; raises if they differ."""
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError(f"{name} holds no arrays")
    sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"{name}: every array needs the same leading example axis, got lengths {sorted(sizes)}"
        )
    return sizes.pop()


def _take(data: Any, index: Any) -> Any:
    return jax.tree_util.tree_map(lambda x: x[index], data)


def shuffle(state: TrainState, n: int, batch_size: int) -> tuple[TrainState, jax.Array]:
    """Draws an epoch's minibatch order: ``(state with a fresh key, (n // batch_size, batch))``.

    The ``n % batch_size`` examples left over after shuffling are skipped this epoch.
    """
    key, perm_key = jax.random.split(state.key)
    steps = n // batch_size
    order = jax.random.permutation(perm_key, n)[: steps * batch_size]
    return state._replace(key=key), order.reshape(steps, batch_size)


def train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    data: Any,
    index: jax.Array,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimiser step on the examples ``index`` (batch,) of ``data``.

    Returns:
        The new state and ``{"loss": loss, **metrics}`` of the batch (before the update).
    """
    key, loss_key = jax.random.split(state.key)
    batch = _take(data, index)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch, loss_key
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, key), {"loss": loss, **metrics}


def train_epoch(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    state: TrainState,
    data: Any,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One shuffled pass over ``data`` as a ``lax.scan`` of :func:`train_step` (jit this).

    Args:
        loss_fn: ``(params, batch, key) -> (loss, metrics)``.
        optimizer: optax transformation whose state is ``state.opt_state``.
        batch_size: examples per step.
        state: params, optimiser state and PRNG key.
        data: pytree of arrays with leading axis ``n``.

    Returns:
        The new state and the mean ``loss`` and metrics over the epoch's steps.
    """
    state, order = shuffle(state, num_examples(data), batch_size)

    def step(carry: TrainState, index: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        return train_step(loss_fn, optimizer, carry, data, index)

    state, logs = jax.lax.scan(step, state, order)
    return state, jax.tree_util.tree_map(jnp.mean, logs)


class EpochRunner:
    """Runs epochs either as one jitted scan or as a Python loop over one jitted step.

    Both compile once per data shape and give the same updates. The loop exists because XLA on
    the CPU runs convolutions inside a ``while`` loop (what ``lax.scan`` lowers to) about 15x
    slower than the same convolutions at top level (measured on this project's 2-core CPU with
    PhysNet); for dense models the scan saves a dispatch per step.
    """

    def __init__(
        self, loss_fn: LossFn, optimizer: optax.GradientTransformation, batch_size: int, scan: bool
    ) -> None:
        self.batch_size, self.scan = batch_size, scan
        self._epoch = jax.jit(lambda s, d: train_epoch(loss_fn, optimizer, batch_size, s, d))
        self._shuffle = jax.jit(shuffle, static_argnums=(1, 2))
        self._step = jax.jit(lambda s, d, i: train_step(loss_fn, optimizer, s, d, i))

    def __call__(self, state: TrainState, data: Any) -> tuple[TrainState, dict[str, jax.Array]]:
        """One epoch: the new state and the mean loss/metrics over its steps."""
        if self.scan:
            return self._epoch(state, data)
        state, order = self._shuffle(state, num_examples(data), self.batch_size)
        logs = []
        for index in order:
            state, log = self._step(state, data, index)
            logs.append(log)
        return state, jax.tree_util.tree_map(lambda *xs: jnp.mean(jnp.stack(xs)), *logs)


def _eval_batches(loss_fn: LossFn, params: Any, batches: Any, key: jax.Array) -> dict[str, Any]:
    """Mean loss/metrics over stacked batches (leading axes ``(steps, batch)``); jit this."""

    def step(carry: None, inputs: tuple[Any, jax.Array]) -> tuple[None, dict[str, jax.Array]]:
        batch, batch_key = inputs
        loss, metrics = loss_fn(params, batch, batch_key)
        return None, {"loss": loss, **metrics}

    steps = num_examples(batches)
    _, logs = jax.lax.scan(step, None, (batches, jax.random.split(key, steps)))
    return jax.tree_util.tree_map(jnp.mean, logs)


def _eval_one(loss_fn: LossFn, params: Any, batch: Any, key: jax.Array) -> dict[str, jax.Array]:
    loss, metrics = loss_fn(params, batch, key)
    return {"loss": loss, **metrics}


class Evaluator:
    """Mean loss and metrics of ``loss_fn`` over a dataset; compiles once per batch shape.

    The ``n % batch_size`` remainder is evaluated as one extra, smaller batch, and the parts are
    weighted by their example counts, so the result is the exact per-example mean whenever the
    loss is a per-example mean. ``scan`` chooses one jitted scan over the full batches or a loop
    of jitted batches (faster for convolutions on the CPU, see :class:`EpochRunner`).
    """

    def __init__(self, loss_fn: LossFn, batch_size: int = 256, scan: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.scan = batch_size, scan
        self._scan = jax.jit(lambda p, b, k: _eval_batches(loss_fn, p, b, k))
        self._single = jax.jit(lambda p, b, k: _eval_one(loss_fn, p, b, k))

    def __call__(self, params: Any, data: Any, key: jax.Array | None = None) -> dict[str, float]:
        """Returns ``{"loss": float, **metrics}`` averaged over every example of ``data``."""
        n, size = num_examples(data), self.batch_size
        key = jax.random.PRNGKey(0) if key is None else key
        full = n // size
        parts: list[tuple[int, dict[str, Any]]] = []
        if full and self.scan:
            head = jax.tree_util.tree_map(
                lambda x: x[: full * size].reshape(full, size, *x.shape[1:]), data
            )
            parts.append((full * size, self._scan(params, head, key)))
        elif full:
            keys = jax.random.split(key, full)
            for i in range(full):
                batch = _take(data, slice(i * size, (i + 1) * size))
                parts.append((size, self._single(params, batch, keys[i])))
        if n % size:
            tail = _take(data, slice(full * size, n))
            parts.append((n % size, self._single(params, tail, jax.random.fold_in(key, 1))))
        return {
            name: float(sum(count * float(logs[name]) for count, logs in parts) / n)
            for name in parts[0][1]
        }


def evaluate(
    loss_fn: LossFn,
    params: Any,
    data: Any,
    batch_size: int = 256,
    key: jax.Array | None = None,
    scan: bool = True,
) -> dict[str, float]:
    """Mean loss and metrics of ``loss_fn`` over every example of ``data`` (see :class:`Evaluator`).

    Builds a fresh jit each call; in a loop, keep one :class:`Evaluator` instead.
    """
    return Evaluator(loss_fn, batch_size, scan)(params, data, key)


def split_validation(data: Any, fraction: float, seed: int) -> tuple[Any, Any | None]:
    """Splits off a random ``fraction`` of examples as ``(train, val)``; val is None if empty."""
    n = num_examples(data)
    n_val = int(round(n * fraction))
    if n_val == 0:
        return data, None
    if n_val >= n:
        raise ValueError(
            f"validation_fraction={fraction} leaves no training data from {n} examples"
        )
    order = np.random.default_rng(seed).permutation(n)
    return _take(data, np.sort(order[n_val:])), _take(data, np.sort(order[:n_val]))


class _Progress(NamedTuple):
    """Early-stopping bookkeeping saved in the checkpoint header."""

    epoch: int
    best_epoch: int
    best_val_loss: float
    bad_epochs: int
    history: list[dict]


def _checkpoint_meta(config: TrainerConfig, n_train: int, progress: _Progress) -> dict[str, Any]:
    return {
        "kind": CHECKPOINT_KIND,
        "fingerprint": config_fingerprint(config),
        "num_train": n_train,
        **progress._asdict(),
    }


def config_fingerprint(config: TrainerConfig) -> str:
    """Hash of the settings a resumed run must share (run length, patience, loop may change)."""
    return io.config_fingerprint(config, ignore=("max_epochs", "patience", "scan"))


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
        FloatingPointError: the training loss became NaN or infinite.
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
    optimizer = make_optimizer(config)
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
        val_loss = val_logs.get("loss", train_logs["loss"])
        record = {"epoch": progress.epoch, "train_loss": train_logs.pop("loss")}
        record["val_loss"] = val_loss
        record.update({f"train_{k}": v for k, v in train_logs.items()})
        record.update({f"val_{k}": v for k, v in val_logs.items() if k != "loss"})
        record["seconds"] = time.perf_counter() - start
        improved = val_loss < progress.best_val_loss
        if improved:
            best_params = state.params
        progress = _Progress(
            epoch=progress.epoch + 1,
            best_epoch=progress.epoch if improved else progress.best_epoch,
            best_val_loss=val_loss if improved else progress.best_val_loss,
            bad_epochs=0 if improved else progress.bad_epochs + 1,
            history=[*progress.history, record],
        )
        if path is not None:
            io.save_checkpoint(
                path,
                {"state": state, "best": best_params},
                _checkpoint_meta(config, n_train, progress),
            )
        if log:
            log(
                f"epoch {record['epoch']:3d}  train {record['train_loss']:.4g}  "
                f"val {val_loss:.4g}{'  *' if improved else ''}  ({record['seconds']:.2f}s)"
            )
    return FitResult(best_params, progress.history, progress.best_epoch, progress.best_val_loss)
