"""pymunk physics of block towers: build a world, read and write its state, let it settle.

A tower state is a ``(k, 6)`` float64 array, one row per block from the bottom level up:

| column | quantity          | unit               |
|--------|-------------------|--------------------|
| 0      | x of centre       | block widths       |
| 1      | y of centre       | block widths       |
| 2      | angle             | rad, anticlockwise |
| 3      | x velocity        | block widths / s   |
| 4      | y velocity        | block widths / s   |
| 5      | angular velocity  | rad / s            |

``set_state(space, get_state(space))`` round-trips exactly and steps nothing. pymunk also keeps
contact caches (warm-start impulses) that a state array cannot hold, so callers that need the
same future from the same state (the env, the dataset) build a fresh space and ``set_state`` it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pymunk

from envs.towers.params import Params

STATE_DIM = 6


def build_space(params: Params) -> pymunk.Space:
    """A world with gravity, a table whose right edge is at ``x = 0`` and a floor, no blocks."""
    space = pymunk.Space()
    space.gravity = (0.0, -params.gravity)
    space.iterations = params.solver_iterations
    space.collision_slop = params.collision_slop
    static = space.static_body
    left, top, bottom = -params.table_width, 0.0, -params.table_height
    table = pymunk.Poly(static, [(left, bottom), (0.0, bottom), (0.0, top), (left, top)])
    floor = pymunk.Segment(static, (left - 50.0, bottom), (50.0, bottom), 0.0)
    for shape in (table, floor):
        shape.friction = params.friction
    space.add(table, floor)
    return space


def _blocks(space: pymunk.Space) -> list[pymunk.Body]:
    return [body for body in space.bodies if body.body_type == pymunk.Body.DYNAMIC]


def add_block(space: pymunk.Space, params: Params, row: np.ndarray) -> pymunk.Body:
    """Adds one block with state ``row`` (6,) (see the module table) on top of the list."""
    size = params.block_size
    body = pymunk.Body(params.block_mass, pymunk.moment_for_box(params.block_mass, (size, size)))
    body.position = (float(row[0]), float(row[1]))
    body.angle = float(row[2])
    body.velocity = (float(row[3]), float(row[4]))
    body.angular_velocity = float(row[5])
    shape = pymunk.Poly.create_box(body, (size, size), radius=0.0)
    shape.friction = params.friction
    space.add(body, shape)
    return body


def get_state(space: pymunk.Space) -> np.ndarray:
    """State of every block, in the order they were added: ``(k, 6)`` float64."""
    rows = [
        (b.position.x, b.position.y, b.angle, b.velocity.x, b.velocity.y, b.angular_velocity)
        for b in _blocks(space)
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), STATE_DIM)


def check_state(state: np.ndarray, name: str = "state") -> np.ndarray:
    """Returns ``state`` as float64 ``(k, 6)``; raises a clear ValueError otherwise."""
    state = np.asarray(state, dtype=np.float64)
    if state.ndim != 2 or state.shape[1] != STATE_DIM:
        raise ValueError(f"{name} must have shape (k, {STATE_DIM}), got {state.shape}")
    if not np.all(np.isfinite(state)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return state


def set_state(space: pymunk.Space, state: np.ndarray, params: Params) -> None:
    """Replaces every block of ``space`` by blocks with ``state`` ``(k, 6)``; steps nothing."""
    state = check_state(state)
    for body in _blocks(space):
        space.remove(body, *body.shapes)
    for row in state:
        add_block(space, params, row)


def simulate(space: pymunk.Space, params: Params, seconds: float) -> None:
    """Steps the world for ``seconds`` in fixed steps of ``params.time_step``."""
    for _ in range(int(round(seconds / params.time_step))):
        space.step(params.time_step)


def settle(space: pymunk.Space, params: Params, check_every: int = 6) -> float:
    """Steps until every block is slower than ``settle_speed`` (after ``min_settle_time``).

    Args:
        space: world to step in place.
        params: world constants (time step, settle speed and times).
        check_every: test the speeds every this many steps (the test costs more than a step).

    Returns:
        Simulated time [s], at most ``max_settle_time``.
    """
    min_steps = int(round(params.min_settle_time / params.time_step))
    max_steps = int(round(params.max_settle_time / params.time_step))
    blocks = _blocks(space)
    limit = params.settle_speed
    for step in range(1, max_steps + 1):
        space.step(params.time_step)
        if step >= min_steps and step % check_every == 0:
            if all(b.velocity.length < limit and abs(b.angular_velocity) < limit for b in blocks):
                return step * params.time_step
    return max_steps * params.time_step


def stacked_state(offsets: np.ndarray, params: Params) -> np.ndarray:
    """Blocks at rest, one per level, from placement offsets.

    Args:
        offsets: (..., k) offsets [block widths]; ``offsets[..., 0]`` is relative to the block
            lying flush with the table edge (centre at ``x = -size / 2``), ``offsets[..., i]`` to
            block ``i - 1``. Leading axes batch several towers.
        params: world constants.

    Returns:
        (..., k, 6) state with ``y_i = (i + 1/2) size``, zero angle and velocity.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    offsets = offsets.reshape(-1) if offsets.ndim == 0 else offsets
    size, k = params.block_size, offsets.shape[-1]
    state = np.zeros((*offsets.shape, STATE_DIM))
    state[..., 0] = -0.5 * size + size * np.cumsum(offsets, axis=-1)
    state[..., 1] = (np.arange(k) + 0.5) * size
    return state


def simulate_stack(offsets: np.ndarray, params: Params, horizon: float) -> dict[str, Any]:
    """Releases the resting stack built from ``offsets`` (n,) alone and settles it.

    Args:
        offsets: (n,) placement offsets [block widths] (:func:`stacked_state`).
        params: world constants.
        horizon: longest simulated time [s] (replaces ``params.max_settle_time``).

    Returns:
        Dict with ``initial``/``final`` (n, 6) states, ``displacement`` (n,) [widths], ``fell``.
    """
    initial = stacked_state(offsets, params)
    space = build_space(params)
    set_state(space, initial, params)
    settle(space, dataclasses.replace(params, max_settle_time=horizon))
    final = get_state(space)
    moved = displacement(initial, final, params)
    fell = bool(np.any(moved > params.fall_threshold))
    return {"initial": initial, "final": final, "displacement": moved, "fell": fell}


def displacement(before: np.ndarray, after: np.ndarray, params: Params) -> np.ndarray:
    """How far each block moved: centre distance plus the arc its half-width swept [widths].

    Args:
        before: (..., k, 6) states; leading axes batch several towers.
        after: (..., k, 6) states of the same blocks later.
        params: world constants.

    Returns:
        (..., k) displacement [block widths].
    """
    distance = np.hypot(after[..., 0] - before[..., 0], after[..., 1] - before[..., 1])
    return distance + 0.5 * params.block_size * np.abs(after[..., 2] - before[..., 2])


def stability_margins(x: np.ndarray, params: Params) -> np.ndarray:
    """Analytic statics of an axis-aligned stack: how far inside its support each CoM lies.

    Level ``i`` carries blocks ``i..k-1``; their centre of mass must lie over the contact interval
    of block ``i`` with what is below it (block ``i - 1``, or the table top ``[-table_width, 0]``).

    Args:
        x: (..., k) block centres [block widths], bottom first.
        params: world constants.

    Returns:
        (..., k) signed margins [block widths]; a stack stands iff all its margins are > 0.
    """
    x = np.asarray(x, dtype=np.float64)
    k, half = x.shape[-1], 0.5 * params.block_size
    com = np.flip(np.cumsum(np.flip(x, -1), -1), -1) / np.arange(k, 0, -1)
    edge = np.ones_like(x[..., :1])
    below_lo = np.concatenate([-params.table_width * edge, x[..., :-1] - half], -1)
    below_hi = np.concatenate([0.0 * edge, x[..., :-1] + half], -1)
    lo = np.maximum(below_lo, x - half)
    hi = np.minimum(below_hi, x + half)
    return np.minimum(com - lo, hi - com)
