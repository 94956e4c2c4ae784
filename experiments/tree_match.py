"""Does a loaded pytree fit the one a model expects? Structure, shapes and dtypes compared.

Used by :func:`experiments.io.load_checkpoint` before a checkpoint's arrays are restored into a
model's params, so a checkpoint of another model or config is refused with the first array that
differs named, instead of loading as wrong weights or failing deep inside Flax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def first_difference(expected: Any, got: Any, where: str = "") -> str | None:
    """The first place where ``got`` differs from ``expected``, described, or None.

    Both are state dicts (:func:`flax.serialization.to_state_dict`); their structure, shapes and
    dtypes are compared (a Python scalar in either matches any dtype of its kind). ``where`` is
    the path of the current node, named in the description.
    """
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping) or set(expected) != set(got):
            exp_keys = sorted(map(str, expected)) if isinstance(expected, Mapping) else None
            got_keys = sorted(map(str, got)) if isinstance(got, Mapping) else type(got).__name__
            return (
                f"structure differs at '{where or '/'}': expected keys {exp_keys}, found {got_keys}"
            )
        for k in expected:
            difference = first_difference(expected[k], got[k], f"{where}/{k}")
            if difference is not None:
                return difference
        return None
    exp_shape = np.shape(expected)
    got_shape = np.shape(got)
    if exp_shape != got_shape:
        return (
            f"array '{where}' has shape {got_shape} in the checkpoint, "
            f"but the model expects {exp_shape}"
        )
    exp_dtype, got_dtype = _leaf_dtype(expected), _leaf_dtype(got)
    if exp_dtype is None and got_dtype is None:  # None, strings: nothing numeric to compare
        return None
    if exp_dtype is None or got_dtype is None or not _same_dtype(exp_dtype, got_dtype):
        return (
            f"array '{where}' has dtype {_dtype_name(got, got_dtype)} in the checkpoint, "
            f"but the model expects {_dtype_name(expected, exp_dtype)}"
        )
    return None


_PYTHON_SCALARS = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}


def _leaf_dtype(leaf: Any) -> tuple[np.dtype, bool] | None:
    """``(dtype, weak)`` of a numeric leaf, None for other leaves (None, strings).

    ``weak`` marks a Python scalar (or a weakly typed JAX array): its dtype is not fixed, so only
    its kind (bool, integer, floating, complex) is compared. This keeps e.g. a Python ``int``
    step counter in a target compatible with the ``int32`` array a jitted step turned it into.
    """
    if isinstance(leaf, np.generic):  # before the Python types: np.float64 subclasses float
        return leaf.dtype, False
    if type(leaf) in _PYTHON_SCALARS:
        return _PYTHON_SCALARS[type(leaf)], True
    dtype = getattr(leaf, "dtype", None)  # numpy and JAX arrays, without a copy to the host
    if dtype is None or np.dtype(dtype).kind in "OSU":
        return None
    return np.dtype(dtype), bool(getattr(leaf, "weak_type", False))


def _dtype_kind(dtype: np.dtype) -> str:
    if dtype.kind in "iu":
        return "integer"
    return {"b": "bool", "c": "complex"}.get(dtype.kind, "floating")  # "V": bfloat16, float8


def _same_dtype(expected: tuple[np.dtype, bool], got: tuple[np.dtype, bool]) -> bool:
    if expected[1] or got[1]:
        return _dtype_kind(expected[0]) == _dtype_kind(got[0])
    return expected[0] == got[0]


def _dtype_name(leaf: Any, dtype: tuple[np.dtype, bool] | None) -> str:
    if dtype is None:
        return f"none ({type(leaf).__name__})"
    if type(leaf) in _PYTHON_SCALARS:
        return f"Python {type(leaf).__name__}"
    return f"{dtype[0]} (weakly typed)" if dtype[1] else str(dtype[0])
