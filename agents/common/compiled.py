"""Compile once per (env, policy, static settings): a bounded cache of jitted functions.

:func:`agents.common.evaluate.evaluate_jax` and :func:`world_models.data.collect` are called
again and again with the same env and policy (every evaluation, every refresh round). They look
their compiled function up here instead of tracing and compiling anew.

What makes a key:

* the policy's *static* parts. A ``functools.partial`` (``agents.a2c.make_policy``,
  ``DistilledPolicy.policy``) is split by :func:`split_arrays`: arguments that are pytrees of
  arrays (the network parameters) become arguments of the compiled function, so new parameters
  of the same shapes reuse it, and the cache never holds them; every other argument is static.
  Any other callable (e.g. a closure over its parameters) is static as a whole: the same object
  reuses the compiled function, a new closure compiles again.
* static values by equality when they are hashable, else by identity (:func:`static_key`); an
  identity key holds its object, so the id cannot be reused while the entry lives.

The cache keeps the ``maxsize`` most recently used entries (least recently used dropped first),
which bounds what it keeps alive: compiled executables, envs and static policy parts.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import jax
import numpy as np


class _Identity:
    """A key equal only to itself: for unhashable (or equal-by-value-unsafe) static values."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def static_key(value: Any) -> Hashable:
    """``value`` itself if it is hashable (equal values share a key), else its identity."""
    try:
        hash(value)
    except TypeError:
        return _Identity(value)
    return value


def is_array_tree(value: Any) -> bool:
    """True for a non-empty pytree whose leaves are all arrays (e.g. network parameters)."""
    leaves = jax.tree.leaves(value)
    return bool(leaves) and all(isinstance(x, jax.Array | np.ndarray) for x in leaves)


class _Slot:
    """Marks where an array argument of a split partial goes back."""

    def __repr__(self) -> str:
        return "<array argument>"


_SLOT = _Slot()


class SplitPolicy(NamedTuple):
    """A policy cut into what a compiled function is keyed on and what it takes as arguments."""

    key: Hashable
    """The static parts: equal keys give the same function for the same array shapes."""
    arrays: tuple
    """The array arguments (pytrees), in order; pass them to the compiled function."""
    rebuild: Callable[[tuple], Callable]
    """``rebuild(arrays)`` is the policy again (call it inside the traced function)."""


def _rebuild(func: Callable, args: tuple, kwargs: tuple, arrays: tuple) -> Callable:
    values = iter(arrays)
    args = tuple(next(values) if a is _SLOT else a for a in args)
    kwargs = {k: next(values) if v is _SLOT else v for k, v in kwargs}
    return functools.partial(func, *args, **kwargs)


def _whole(policy: Callable, arrays: tuple) -> Callable:
    del arrays
    return policy


def split_arrays(policy: Callable) -> SplitPolicy:
    """Splits a ``functools.partial`` into static parts and array arguments (see module doc).

    Any other callable is static as a whole, with no array arguments.
    """
    if not isinstance(policy, functools.partial):
        return SplitPolicy(static_key(policy), (), functools.partial(_whole, policy))
    args = tuple(_SLOT if is_array_tree(a) else a for a in policy.args)
    kwargs = tuple(sorted((k, _SLOT if is_array_tree(v) else v)
                          for k, v in policy.keywords.items()))  # fmt: skip
    arrays = tuple(a for a in policy.args if is_array_tree(a))
    arrays += tuple(policy.keywords[k] for k, v in kwargs if v is _SLOT)
    key = (static_key(policy.func), tuple(static_key(a) for a in args),
           tuple((k, static_key(v)) for k, v in kwargs))  # fmt: skip
    return SplitPolicy(key, arrays, functools.partial(_rebuild, policy.func, args, kwargs))


def signature(tree: Any) -> Hashable:
    """Tree structure and abstract values (shape, dtype, weak type) of a pytree's leaves."""
    leaves, treedef = jax.tree.flatten(tree)
    # A Python scalar has no dtype: its type stands for it (jit treats it as weakly typed).
    return treedef, tuple(
        (np.shape(x), getattr(x, "dtype", type(x)), bool(getattr(x, "weak_type", False)))
        for x in leaves
    )


class CompileCache:
    """At most ``maxsize`` compiled functions, least recently used dropped first."""

    def __init__(self, maxsize: int = 8) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made with ``make()`` on a miss."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = make()
        self._entries[key] = value
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drops every entry."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
