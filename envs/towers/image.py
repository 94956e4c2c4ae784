"""Side-view images and per-block masks of a tower, drawn with array maths (no pygame).

Observations, dataset images and masks come from here rather than from pygame (``render.py``):
rasterising a few squares over a 64 x 64 grid in NumPy is much faster than a pygame surface per
tower, needs no display in worker processes, and the same formulas run under ``jax.numpy``. With
``softness > 0`` the masks have sigmoid edges, so an image is differentiable in block positions.

Image convention: ``image[row, col]``, row 0 at the top (largest y). The flip from the y-up world
lives in :func:`pixel_centres` alone.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from envs.towers.params import BACKGROUND_COLOUR, BLOCK_COLOURS, TABLE_COLOUR, Params


def pixel_centres(params: Params, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """World coordinates of pixel centres: ``(x, y)``, each ``(size, size)`` float32 [widths]."""
    return _pixel_centres(params, params.image_size if size is None else size)


@functools.lru_cache(maxsize=16)
def _pixel_centres(params: Params, size: int) -> tuple[np.ndarray, np.ndarray]:
    step = params.view_size / size
    xs = params.view_left + step * (np.arange(size) + 0.5)
    ys = params.view_bottom + step * (size - np.arange(size) - 0.5)  # row 0 at the top
    x, y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    x.flags.writeable = y.flags.writeable = False
    return x, y


def block_masks(
    poses: Any, params: Params, size: int | None = None, softness: float = 0.0, xp: Any = np
) -> Any:
    """Occupancy of each block at every pixel.

    Args:
        poses: (k, 3) block ``x, y`` [block widths] and ``angle`` [rad] (state columns 0-2).
        params: world constants (view and block size).
        size: image side [pixels]; defaults to ``params.image_size``.
        softness: 0 for hard 0/1 masks; else the sigmoid edge width [block widths].
        xp: array module, ``numpy`` or ``jax.numpy``.

    Returns:
        (k, size, size) float masks in [0, 1].
    """
    px, py = (xp.asarray(a) for a in pixel_centres(params, size))
    poses = xp.asarray(poses, dtype=xp.float32)
    dx = px[None] - poses[:, 0, None, None]
    dy = py[None] - poses[:, 1, None, None]
    cos, sin = xp.cos(poses[:, 2])[:, None, None], xp.sin(poses[:, 2])[:, None, None]
    along = xp.abs(cos * dx + sin * dy)
    across = xp.abs(cos * dy - sin * dx)
    half = 0.5 * params.block_size
    if softness <= 0:
        return ((along <= half) & (across <= half)).astype(xp.float32)
    sig = lambda z: 1.0 / (1.0 + xp.exp(-z / softness))  # noqa: E731
    return sig(half - along) * sig(half - across)


def table_mask(params: Params, size: int | None = None) -> np.ndarray:
    """(size, size) bool: pixels inside the table (a fresh array)."""
    return _table_mask(params, params.image_size if size is None else size).copy()


@functools.lru_cache(maxsize=16)
def _table_mask(params: Params, size: int) -> np.ndarray:
    x, y = pixel_centres(params, size)
    return (x <= 0) & (x >= -params.table_width) & (y <= 0) & (y >= -params.table_height)


def compose(masks: Any, params: Params, size: int | None = None, xp: Any = np) -> Any:
    """Paints the table and the blocks (level ``i`` in ``BLOCK_COLOURS[i]``) on white.

    Args:
        masks: (k, size, size) block occupancy in [0, 1].
        params: world constants.
        size: image side [pixels].
        xp: array module.

    Returns:
        (size, size, 3) float image in [0, 1].
    """
    size = params.image_size if size is None else size
    table = xp.asarray(table_mask(params, size), dtype=xp.float32)[..., None]
    background = xp.asarray(BACKGROUND_COLOUR, dtype=xp.float32) / 255.0
    image = background * (1 - table) + table * xp.asarray(TABLE_COLOUR, dtype=xp.float32) / 255.0
    colours = xp.asarray(BLOCK_COLOURS[: masks.shape[0]], dtype=xp.float32) / 255.0
    for i in range(masks.shape[0]):
        m = masks[i][..., None]
        image = image * (1 - m) + m * colours[i]
    return image


def render_state(
    state: np.ndarray, params: Params, size: int | None = None, colours: np.ndarray | None = None
) -> np.ndarray:
    """Side-view RGB image of a tower state (k, >=3): (size, size, 3) uint8.

    ``colours`` (k,) picks each block's ``BLOCK_COLOURS`` index (default: its level).
    """
    masks = block_masks(np.asarray(state)[:, :3], params, size) > 0
    return paint(masks, params, size, colours)


def paint(
    masks: np.ndarray, params: Params, size: int | None = None, colours: np.ndarray | None = None
) -> np.ndarray:
    """Hard-mask fast path of :func:`compose`: (k, size, size) bool -> (size, size, 3) uint8.

    Block ``i`` is painted in ``BLOCK_COLOURS[colours[i]]`` (default ``colours[i] = i``); where
    masks overlap, the larger colour index wins.
    """
    k = masks.shape[0]
    index = np.arange(k) if colours is None else np.asarray(colours)[:k]
    levels = (2 + index).astype(np.uint8)[:, None, None]
    labels = (masks * levels).max(axis=0, initial=0)
    table = _table_mask(params, params.image_size if size is None else size)
    return _palette()[np.where(labels > 0, labels, table.astype(np.uint8))]


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    return np.array([BACKGROUND_COLOUR, TABLE_COLOUR, *BLOCK_COLOURS], dtype=np.uint8)
