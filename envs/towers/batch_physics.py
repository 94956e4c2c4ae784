"""Many towers simulated in one pymunk space, far apart, each with its own table and floor.

:func:`simulate_batch` releases ``m`` resting towers together and steps them until each has
settled (the criterion and check schedule of :func:`physics.settle`) or the horizon is reached.
Every check reads all blocks' speeds in one call (``pymunk.batch``, experimental in pymunk 7),
and a settled tower's blocks are read and removed from the space, so it costs nothing
afterwards. One space per batch amortises pymunk's per-space and per-step Python costs: bare
physics runs ~1.7x the towers per second of one space per tower (``benchmarks/towers.py``); the
rest is pymunk's C step.

Towers sit on a square grid of cells ``CELL`` block widths apart, farther than any block can
fall, slide or bounce within a horizon of a few seconds, so they cannot touch. The result differs
from simulating each tower alone (:func:`envs.towers.dataset.simulate_tower`) only by floating-point
rounding (coordinates are offset by the cell; the first tower's frame is the world's, and it
gives the same bits as alone) and by the order in which pymunk's solver visits contacts. That
changes labels only at the edge of stability: 2 of 480 random towers (both with a support margin
under 0.04 block widths) and 0 of 480 near-boundary ones in the benchmark. The result is a
function of the inputs alone: the same batch gives the same bits.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pymunk
from pymunk import batch

from envs.towers import physics
from envs.towers.params import Params

CELL = 128.0
"""Distance between neighbouring towers' table edges, in x and in y [block widths]."""
FLOOR_REACH = 50.0
"""The floor runs from ``FLOOR_REACH`` left of the table to ``FLOOR_REACH`` right of its edge,
as in :func:`physics.build_space` [block widths]."""


def _check_batch(initial: np.ndarray, n_blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    initial = np.asarray(initial, dtype=np.float64)
    if initial.ndim != 3 or initial.shape[2] != physics.STATE_DIM:
        raise ValueError(
            f"initial must have shape (m, k, {physics.STATE_DIM}), got {initial.shape}"
        )
    n_blocks = np.asarray(n_blocks)
    if n_blocks.shape != initial.shape[:1] or not np.issubdtype(n_blocks.dtype, np.integer):
        raise ValueError(f"n_blocks must be ({initial.shape[0]},) integers, got {n_blocks.shape}")
    if np.any(n_blocks < 1) or np.any(n_blocks > initial.shape[1]):
        raise ValueError(f"n_blocks must lie in [1, {initial.shape[1]}], got {n_blocks}")
    used = np.arange(initial.shape[1]) < n_blocks[:, None]
    if not np.all(np.isfinite(initial[used])):
        raise ValueError("initial contains NaN or infinite values")
    return initial, n_blocks


def origins(count: int) -> np.ndarray:
    """(count, 2) offsets of each tower's frame in the shared space [block widths]."""
    columns = max(1, math.ceil(math.sqrt(count)))
    index = np.arange(count)
    return CELL * np.stack([index % columns, index // columns], axis=1).astype(np.float64)


def build_batch_space(params: Params, corners: np.ndarray) -> pymunk.Space:
    """A space with one table and floor (as :func:`physics.build_space`) per row of ``corners``.

    Args:
        params: world constants.
        corners: (m, 2) offset of each tower's frame (table edge at its ``x``, top at its ``y``).
    """
    space = pymunk.Space()
    space.gravity = (0.0, -params.gravity)
    space.iterations = params.solver_iterations
    space.collision_slop = params.collision_slop
    static = space.static_body
    left, bottom = -params.table_width, -params.table_height
    shapes = []
    for x, y in corners.tolist():
        corners_xy = [(x + left, y + bottom), (x, y + bottom), (x, y), (x + left, y)]
        table = pymunk.Poly(static, corners_xy)
        floor = pymunk.Segment(
            static, (x + left - FLOOR_REACH, y + bottom), (x + FLOOR_REACH, y + bottom), 0.0
        )
        table.friction = floor.friction = params.friction
        shapes += [table, floor]
    space.add(*shapes)
    return space


def _new_blocks(count: int, params: Params) -> list[pymunk.Body]:
    """``count`` new block bodies, each with its box shape, in no space.

    Blocks are not reused between batches: pymunk keeps a body's bias velocities (the solver's
    position correction, applied at the next step) after it leaves a space, and exposes no way
    to clear them, so a reused block would not move like a new one.
    """
    size, mass = params.block_size, params.block_mass
    moment = pymunk.moment_for_box(mass, (size, size))
    bodies = []
    for _ in range(count):
        body = pymunk.Body(mass, moment)
        shape = pymunk.Poly.create_box(body, (size, size), radius=0.0)
        shape.friction = params.friction
        bodies.append(body)
    return bodies


_FIELDS = (
    batch.BodyFields.BODY_ID
    | batch.BodyFields.POSITION
    | batch.BodyFields.ANGLE
    | batch.BodyFields.VELOCITY
    | batch.BodyFields.ANGULAR_VELOCITY
)
"""Body fields read in one C call (``pymunk.batch``): the id, an int, and floats in the order
of the state columns (x, y, angle, x and y velocity, angular velocity)."""


class _Blocks(NamedTuple):
    """The blocks of a batch: pymunk bodies and, per body, its tower and level."""

    bodies: list[pymunk.Body]
    tower: np.ndarray
    level: np.ndarray
    order: np.ndarray  # argsort of the body ids
    sorted_ids: np.ndarray

    def index(self, ids: np.ndarray) -> np.ndarray:
        """Positions in ``bodies`` of the bodies with pymunk ``ids`` (all in ``bodies``)."""
        return self.order[np.searchsorted(self.sorted_ids, ids)]

    def contains(self, ids: np.ndarray) -> np.ndarray:
        """Which ``ids`` are blocks of this batch (pymunk also lists the static body)."""
        at = np.minimum(np.searchsorted(self.sorted_ids, ids), len(self.sorted_ids) - 1)
        return self.sorted_ids[at] == ids


def _add_blocks(
    space: pymunk.Space,
    initial: np.ndarray,
    present: np.ndarray,
    corners: np.ndarray,
    params: Params,
) -> _Blocks:
    """Adds the ``present`` (m, k) blocks of ``initial`` (m, k, 6), moved by ``corners`` (m, 2).

    Each block is put in place before it joins the space: a block added elsewhere and moved in
    afterwards would keep a stale entry in pymunk's spatial index for a step and start falling
    through its support (it does not give the same trajectory).
    """
    tower, level = np.nonzero(present)
    placed = initial[tower, level]
    placed[:, :2] += corners[tower]
    bodies = _new_blocks(len(tower), params)
    for body, (x, y, angle, vx, vy, spin) in zip(bodies, placed.tolist(), strict=True):
        body.position = (x, y)
        if angle or vx or vy or spin:  # a new body is at rest and upright already
            body.angle = angle
            body.velocity = (vx, vy)
            body.angular_velocity = spin
    space.add(*bodies, *(shape for body in bodies for shape in body.shapes))
    ids = np.array([body.id for body in bodies], dtype=np.uintp)
    order = np.argsort(ids)
    return _Blocks(bodies, tower, level, order, ids[order])


def _read(space: pymunk.Space, blocks: _Blocks) -> tuple[np.ndarray, np.ndarray]:
    """Ids (b,) and states (b, 6) of the ``blocks`` in ``space``, in pymunk's order."""
    buffer = batch.Buffer()
    batch.get_space_bodies(space, _FIELDS, buffer)
    ids = np.frombuffer(buffer.int_buf(), dtype=np.uintp)
    states = np.frombuffer(buffer.float_buf(), dtype=np.float64).reshape(-1, physics.STATE_DIM)
    mine = blocks.contains(ids)  # pymunk also lists the space's static body
    return ids[mine], states[mine]


def simulate_batch(
    initial: np.ndarray,
    n_blocks: np.ndarray,
    params: Params,
    horizon: float,
    check_every: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``m`` towers side by side until each settles or ``horizon`` passes.

    Every ``check_every`` steps from ``min_settle_time`` on, a tower whose blocks are all slower
    than ``settle_speed`` (linear and angular) is read and taken out of the space, as
    :func:`physics.settle` would stop; the speeds of all blocks are read in one call.

    Args:
        initial: (m, k, 6) block states (see :mod:`envs.towers.physics`), bottom first; rows
            ``>= n_blocks[j]`` of tower ``j`` are padding and ignored.
        n_blocks: (m,) int blocks per tower, in ``[1, k]``.
        params: world constants (time step, settle speed, ``min_settle_time``).
        horizon: longest simulated time [s] (the role of ``params.max_settle_time``).
        check_every: test the speeds every this many steps, as :func:`physics.settle`.

    Returns:
        ``final`` (m, k, 6) states in each tower's own frame (padding rows zero) and
        ``seconds`` (m,) simulated time of each tower [s].

    Raises:
        ValueError: shapes, counts or values of ``initial`` / ``n_blocks`` are invalid.
    """
    initial, n_blocks = _check_batch(initial, n_blocks)
    if len(initial) == 0:
        return np.zeros_like(initial), np.zeros(0)
    with _collector_paused():
        return _simulate(initial, n_blocks, params, horizon, check_every)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector for the block (as it was before, after).

    Every pymunk body and shape is a reference cycle (it holds a cffi handle to itself), so
    only the collector frees them. Collections during a batch would move its thousands of
    live blocks into older generations, to be freed later by full collections that also walk
    every other object; paused, they stay young and are freed at the next young collection.
    That halves the time spent collecting (timed with ``gc.callbacks`` while generating
    shards: ~100 -> ~50 us per tower, 5-10% of the whole).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _simulate(
    initial: np.ndarray, n_blocks: np.ndarray, params: Params, horizon: float, check_every: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulate_batch` of checked, non-empty input."""
    m, k = initial.shape[:2]
    corners = origins(m)
    present = np.arange(k) < n_blocks[:, None]
    space = build_batch_space(params, corners)
    blocks = _add_blocks(space, initial, present, corners, params)
    min_steps = int(round(params.min_settle_time / params.time_step))
    max_steps = int(round(horizon / params.time_step))
    final = np.zeros_like(initial)
    seconds = np.full(m, max_steps * params.time_step)
    active = np.ones(m, bool)
    for step in range(1, max_steps + 1):
        space.step(params.time_step)
        if step < min_steps or step % check_every or step == max_steps:
            continue
        ids, states = _read(space, blocks)
        which = blocks.index(ids)
        speed = np.sqrt(states[:, 3] * states[:, 3] + states[:, 4] * states[:, 4])
        fast = (speed >= params.settle_speed) | (np.abs(states[:, 5]) >= params.settle_speed)
        moving = np.bincount(blocks.tower[which], weights=fast, minlength=m) > 0
        done = active & ~moving
        if done.any():
            rows = done[blocks.tower[which]]
            _store(final, blocks, which[rows], states[rows], corners)
            _remove(space, blocks, which[rows])
            seconds[done] = step * params.time_step
            active &= ~done
            if not active.any():
                break
    ids, states = _read(space, blocks)  # towers still moving at the horizon
    _store(final, blocks, blocks.index(ids), states, corners)
    return final, seconds


def _store(
    final: np.ndarray, blocks: _Blocks, which: np.ndarray, states: np.ndarray, corners: np.ndarray
) -> None:
    """Writes ``states`` (b, 6) of bodies ``which`` (b,) into ``final`` in their towers' frames."""
    tower, level = blocks.tower[which], blocks.level[which]
    final[tower, level] = states
    final[tower, level, :2] -= corners[tower]


def _remove(space: pymunk.Space, blocks: _Blocks, which: np.ndarray) -> None:
    """Takes bodies ``which`` (positions in ``blocks``) and their shapes out of ``space``."""
    gone = [blocks.bodies[i] for i in which.tolist()]
    space.remove(*gone, *(shape for body in gone for shape in body.shapes))
