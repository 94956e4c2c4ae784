"""Validation of user actions, shared by the single and vector envs of the JAX-core tasks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_action(action: Any, params: Any, num_envs: int | None = None) -> Any:
    """Validates one action of ``params.action_mode`` (or a batch of ``num_envs``) as NumPy.

    Shared by the tasks whose params have an ``action_mode`` ("continuous": a (2,) command,
    "discrete", "hybrid") and ``num_discrete_actions`` (Spaceship, Driving). A task's single env
    and its vector env both call this, so they accept and reject the same actions.
    Continuous values outside [-1, 1] are clipped later (``core.action_to_thrust``); hybrid angles
    are periodic, so any finite angle is accepted; a hybrid ``fire`` must be exactly 0 or 1 (a
    bool, int or float), never rounded.

    Args:
        action: one action, or ``num_envs`` actions stacked on a leading axis.
        params: task parameters; ``params.action_mode`` picks the action's form.
        num_envs: None for one action, else the batch size N.

    Returns:
        continuous: float32 (..., 2); discrete: int32 (...); hybrid: ``{"fire": int32 (...),
        "angle": float32 (..., 1)}``, where ``...`` is ``()`` or ``(N,)``.

    Raises:
        ValueError: naming the action and the offending value: a wrong shape or type, NaN/inf,
            a discrete value outside [0, num_discrete_actions), or a fire value other than 0
            or 1, or an action mode that is not one of these.
    """
    check = _CHECKS.get(params.action_mode)
    if check is None:
        raise ValueError(f"action_mode must be one of {tuple(_CHECKS)}, got {params.action_mode!r}")
    return check(action, params, num_envs)


def check_action_form(action: Any, params: Any) -> None:
    """Checks the shape and dtype of ONE action for the pure JAX core, traced or not.

    Shapes and dtypes are static under ``jit`` and ``vmap``, so this costs nothing in a compiled
    step and raises at trace time. Values are traced and are NOT checked here: the core clips
    continuous actions into [-1, 1], and a discrete action outside [0, num_discrete_actions) or a
    NaN gives an undefined step. :func:`check_action` (the Gymnasium envs) checks values too.

    Raises:
        ValueError: continuous not of shape (2,); discrete not an integer scalar; hybrid not a
            dict of a scalar ``fire`` and an ``angle`` of shape (1,).
    """
    mode = params.action_mode
    if mode == "continuous" and np.shape(action) != (2,):
        raise ValueError(f"continuous action must have shape (2,), got {np.shape(action)}")
    if mode == "discrete" and (np.shape(action) != () or _kind(action) not in "iu"):
        raise ValueError(
            f"discrete action must be an integer scalar, got shape {np.shape(action)} and "
            f"dtype {_dtype(action)}"
        )
    if mode == "hybrid":
        if not isinstance(action, dict) or set(action) != {"fire", "angle"}:
            raise ValueError(
                f"hybrid action must be a dict with keys 'fire' and 'angle', got {action!r}"
            )
        if np.shape(action["fire"]) != () or np.shape(action["angle"]) != (1,):
            raise ValueError(
                "hybrid action must have fire of shape () and angle of shape (1,), got "
                f"{np.shape(action['fire'])} and {np.shape(action['angle'])}"
            )


def _dtype(x: Any) -> np.dtype:
    """The dtype of an array, a tracer or a Python number, without converting a tracer."""
    return np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype


def _kind(x: Any) -> str:
    return _dtype(x).kind


# The single env checks one action per step on the host, so each check below has a scalar fast
# path: Python float/int tests cost a fraction of NumPy's ufunc calls on 0-d or (2,) arrays.


def _check_continuous(action: Any, params: Any, num_envs: int | None) -> np.ndarray:
    batch, name = _batch(num_envs)
    a = np.asarray(action, dtype=np.float32)
    if a.shape != batch + (2,):
        raise ValueError(f"continuous {name} must have shape {batch + (2,)}, got {a.shape}")
    if num_envs is None:
        x, y = a.tolist()
        finite = math.isfinite(x) and math.isfinite(y)
    else:
        finite = bool(np.isfinite(a).all())
    if not finite:
        raise ValueError(f"continuous {name} contains NaN or inf: {_first_bad(a, ~np.isfinite(a))}")
    return a


def _check_discrete(action: Any, params: Any, num_envs: int | None) -> np.ndarray:
    batch, name = _batch(num_envs)
    n = params.num_discrete_actions
    a = np.asarray(action)
    if a.shape != batch or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"discrete {name} must be integers of shape {batch}, got {action!r}")
    in_range = 0 <= int(a) < n if num_envs is None else bool(((a >= 0) & (a < n)).all())
    if not in_range:
        raise ValueError(
            f"discrete {name} must be in [0, {n}), got {_first_bad(a, (a < 0) | (a >= n))}"
        )
    return a.astype(np.int32)


def _check_hybrid(action: Any, params: Any, num_envs: int | None) -> dict:
    batch, name = _batch(num_envs)
    if not isinstance(action, dict) or set(action) != {"fire", "angle"}:
        raise ValueError(
            f"hybrid {name} must be a dict with keys 'fire' and 'angle', got {action!r}"
        )
    fire = np.asarray(action["fire"])
    if fire.shape != batch or fire.dtype.kind not in "biuf":
        raise ValueError(
            f"hybrid {name}['fire'] must be numbers of shape {batch}, got {action['fire']!r}"
        )
    # Exact comparison: NaN, 0.7 and 1.9 are rejected, never rounded to 0 or 1.
    if num_envs is None:
        exact = fire.item() in (0, 1)
    else:
        exact = bool(((fire == 0) | (fire == 1)).all())
    if not exact:
        bad = _first_bad(fire, (fire != 0) & (fire != 1))
        raise ValueError(f"hybrid {name}['fire'] must be exactly 0 or 1, got {bad}")
    angle = np.asarray(action["angle"], dtype=np.float32)
    if angle.shape != batch + (1,):
        raise ValueError(
            f"hybrid {name}['angle'] must have shape {batch + (1,)}, got {angle.shape}"
        )
    finite = math.isfinite(angle[0]) if num_envs is None else bool(np.isfinite(angle).all())
    if not finite:
        bad = _first_bad(angle, ~np.isfinite(angle))
        raise ValueError(f"hybrid {name}['angle'] contains NaN or inf: {bad}")
    return {"fire": fire.astype(np.int32), "angle": angle}


_CHECKS = {"continuous": _check_continuous, "discrete": _check_discrete, "hybrid": _check_hybrid}


def _batch(num_envs: int | None) -> tuple[tuple[int, ...], str]:
    """The batch shape, ``()`` or ``(N,)``, and the word for the action(s) in error messages."""
    return ((), "action") if num_envs is None else ((int(num_envs),), "actions")


def _first_bad(values: np.ndarray, bad: np.ndarray) -> str:
    """``"<value>"``, or ``"<value> at index i"`` in an array, for the first flagged element."""
    if values.ndim == 0:
        return repr(values.item())
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return f"{values[index].item()!r} at index {index[0] if len(index) == 1 else index}"
