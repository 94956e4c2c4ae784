"""Checks of a poke table state given from outside (``reset(options={"state": ...})``).

A state is checked whole before any of it reaches pymunk, whose C assertions abort the process
on a zero or NaN size, and before the env changes anything. The bounds on centres and speeds are
those the physics keeps: a poke never takes an object past them (``tests/test_poke_walls.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.poke.params import SHAPE_KINDS, PokeParams
from envs.poke.physics import BOX, WALL_THICKNESS, PokeState, bounding_radius


def position_bound(params: PokeParams) -> float:
    """Largest ``|x|``, ``|y|`` of an object centre [m]: the table's edge (the walls' inner face).

    The force-limited finger pushes an object at most about ``collision_slop`` into a wall
    (measured: at most 2.3 mm in 20,000 pokes, half aimed outward at objects by a wall), far
    less than the smallest distance from an object's centre to its rim (a triangle's inradius,
    20 mm), so centres stay on the table.
    """
    return params.table_half_size


def speed_bound(params: PokeParams) -> float:
    """Fastest point of an object a given state may have [m/s]: a quarter wall per step.

    Chipmunk has no continuous collision detection, so a fast object tunnels through a wall
    (measured, 4-7 cm objects sent at a wall from 0.3 m: the first escape at 15 m/s, a triangle;
    none at 10 m/s). Pokes leave objects nearly at rest (the finger moves at ``finger_speed``),
    so only hand-made states come near the bound.
    """
    return 0.25 * WALL_THICKNESS / params.time_step


def _field(state: PokeState, name: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    """``state.<name>`` as a finite float64 array of ``shape``, or ValueError naming it."""
    try:
        value = np.array(getattr(state, name), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{name}: expected numbers of shape {shape}") from None
    if value.shape != shape or not np.all(np.isfinite(value)):
        raise ValueError(f"{where}.{name}: expected a finite array of shape {shape}, got {value}")
    return value


def check_state(state: Any, params: PokeParams, where: str = "state") -> PokeState:
    """Validates a whole table state before it reaches pymunk; returns a float64 copy.

    pymunk aborts the process on a zero or NaN size (a C assertion), so every field is checked
    here, first, and the caller changes nothing until this returns.

    Args:
        state: a :class:`PokeState` with ``n`` objects, 1 <= n <= ``params.max_objects``.
        params: the env's constants; half sizes must lie in ``object_half_size_range`` (compared
            in float32, as the observation stores them), centres within
            :func:`position_bound` (as the observation space allows), no point of an object
            faster than :func:`speed_bound`.
        where: how error messages name the state (e.g. ``"options['state']"``).

    Raises:
        TypeError: ``state`` is not a :class:`PokeState`.
        ValueError: naming the first field of the wrong shape, type or range.
    """
    if not isinstance(state, PokeState):
        raise TypeError(
            f"{where}: expected a PokeState(kind, half_size, pose, velocity), got "
            f"{type(state).__name__}"
        )
    n = np.shape(state.kind)[0] if np.ndim(state.kind) == 1 else -1
    if not 1 <= n <= params.max_objects:
        raise ValueError(
            f"{where}.kind: expected shape (n,) with 1 <= n <= max_objects "
            f"({params.max_objects}), got shape {np.shape(state.kind)}"
        )
    kind = _field(state, "kind", (n,), where)
    if not np.all((kind == np.round(kind)) & (kind >= 0) & (kind < len(SHAPE_KINDS))):
        raise ValueError(
            f"{where}.kind: expected integers in 0..{len(SHAPE_KINDS) - 1}, got {kind}"
        )
    half_size = _field(state, "half_size", (n, 2), where)
    low, high = params.object_half_size_range
    size32 = half_size.astype(np.float32)
    if not np.all((size32 >= np.float32(low)) & (size32 <= np.float32(high))):
        raise ValueError(
            f"{where}.half_size: expected values in object_half_size_range [{low}, {high}] m, "
            f"got {half_size}"
        )
    kind = kind.astype(np.int64)
    if np.any(half_size[kind != BOX, 0] != half_size[kind != BOX, 1]):
        raise ValueError(
            f"{where}.half_size: expected equal columns for a disk or triangle (its radius "
            f"twice), got {half_size}"
        )
    pose = _field(state, "pose", (n, 3), where)
    bound = position_bound(params)
    if np.any(np.abs(pose[:, :2]) > bound):
        raise ValueError(
            f"{where}.pose: expected centres within the walls [-{bound}, {bound}]^2 m, got {pose}"
        )
    velocity = _field(state, "velocity", (n, 3), where)
    radius = np.array([bounding_radius(k, s) for k, s in zip(kind, half_size, strict=True)])
    fastest = np.hypot(velocity[:, 0], velocity[:, 1]) + np.abs(velocity[:, 2]) * radius
    if np.any(fastest > speed_bound(params)):
        raise ValueError(
            f"{where}.velocity: expected |v| + |angular velocity| * bounding radius <= "
            f"{speed_bound(params)} m/s for every object, got {velocity}"
        )
    return PokeState(kind, half_size, pose, velocity)
