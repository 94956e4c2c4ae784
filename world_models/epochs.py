"""Epoch machinery of the shared trainer: minibatch steps, jitted epochs and evaluation.

:func:`world_models.trainer.fit` drives these; models and benchmarks that need a custom loop (the
EEN's two phases, PhysNet's throughput benchmark) use them directly. A loss has the signature::

    def loss_fn(params, batch, key) -> tuple[loss, dict[str, scalar]]

where ``batch`` has the pytree structure of the data with a leading example axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


class TrainState(NamedTuple):
    """Carry of the epoch scan: everything that changes from step to step."""

    params: Any
    opt_state: Any
    key: jax.Array


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
