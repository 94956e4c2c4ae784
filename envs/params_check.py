"""Range checks of environment parameter dataclasses, shared by every env's ``check_params``.

JAX is not imported here: the pymunk envs use these checks too, and their dataset workers must
start without it (``tests/test_towers_dataset.py``). A value can only hold a tracer once JAX is
loaded, so :func:`is_traced` looks it up in ``sys.modules``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

Rule = tuple[str, Callable[[np.ndarray], np.ndarray]]
"""The allowed range as an error message states it (e.g. "> 0"), and its elementwise check."""


def positive(x: np.ndarray) -> np.ndarray:
    """Elementwise ``x > 0``."""
    return x > 0


def non_negative(x: np.ndarray) -> np.ndarray:
    """Elementwise ``x >= 0``."""
    return x >= 0


def ordered(low_ok: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The check of a (low, high) range: ``low_ok(low)`` and ``low <= high``."""
    return lambda pair: low_ok(pair[..., 0]) & (pair[..., 0] <= pair[..., 1])


def is_traced(value: Any) -> bool:
    """Whether any leaf of the pytree ``value`` is a JAX tracer (False while JAX is not loaded)."""
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def field_error(params: Any, name: str, allowed: str) -> ValueError:
    """The error for a field out of range: its class, name, value and the allowed range."""
    value = getattr(params, name)
    return ValueError(
        f"{type(params).__name__}.{name}={value!r} is out of range: expected {allowed}"
    )


def check_fields(
    params: Any,
    modes: Mapping[str, tuple[str, ...]],
    positive_ints: Iterable[str],
    float_rules: Mapping[str, Rule],
) -> None:
    """Checks the mode strings, static positive ints and float leaves of a params dataclass.

    Called where params come from users, not in ``__post_init__``: JAX rebuilds a params pytree
    with ``None``, tracers or in_axes numbers as leaves (``tree_map``, ``jit``, ``vmap``), which
    such a check would reject. Traced leaves are skipped; array leaves (params batched for
    ``vmap``) are checked element by element. Fields whose name ends in ``_range`` are
    ``(low, high)`` pairs.

    Args:
        params: the dataclass instance.
        modes: field name -> the strings it may hold.
        positive_ints: static integer fields, each an int >= 1.
        float_rules: field name -> :data:`Rule` for the float (or float pair) leaves.

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """
    for name, allowed in modes.items():
        if getattr(params, name) not in allowed:
            raise field_error(params, name, f"one of {allowed}")
    for name in positive_ints:
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise field_error(params, name, "an int >= 1")
    for name, (rule, ok) in float_rules.items():
        value = getattr(params, name)
        if is_traced(value):
            continue
        is_range = name.endswith("_range")
        allowed = (
            f"a finite (low, high) pair with {rule}" if is_range else f"a finite number {rule}"
        )
        try:
            x = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise field_error(params, name, allowed) from None
        if (is_range and x.shape[-1:] != (2,)) or not np.all(np.isfinite(x) & ok(x)):
            raise field_error(params, name, allowed)


def replace_fields(base: Any, **overrides: Any) -> Any:
    """``base.replace(**overrides)``, refusing a name that is not a field of ``base``'s class.

    Raises:
        TypeError: worded like Python's own ("got an unexpected keyword argument 'x'"), which
            wrappers such as TorchRL's ``GymEnv`` (it passes ``frameskip=1`` and retries without
            it) recognise, followed by the list of unknown fields.
    """
    unknown = set(overrides) - set(base.__dataclass_fields__)
    if unknown:
        raise TypeError(
            f"got an unexpected keyword argument {sorted(unknown)[0]!r}: unknown "
            f"{type(base).__name__} fields: {sorted(unknown)}"
        )
    return base.replace(**overrides)


def build_params(
    defaults: Callable[[], Any],
    check: Callable[[Any], Any],
    action_modes: tuple[str, ...],
    action_mode: str,
    params: Any,
    overrides: Mapping[str, Any],
) -> Any:
    """A task's params: ``params`` (or ``defaults()``) with the action mode and overrides, checked.

    Raises:
        ValueError: an unknown action mode, or a field out of range (``check``).
        TypeError: an override that is not a field (:func:`replace_fields`).
    """
    if action_mode not in action_modes:
        raise ValueError(f"action_mode must be one of {action_modes}, got {action_mode!r}")
    base = params if params is not None else defaults()
    return check(replace_fields(base, action_mode=action_mode, **overrides))
