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
        poses: (..., k, 3) block ``x, y`` [block widths] and ``angle`` [rad] (state columns 0-2);
            leading axes batch several towers in one call.
        params: world constants (view and block size).
        size: image side [pixels]; defaults to ``params.image_size``.
        softness: 0 for hard 0/1 masks; else the sigmoid edge width [block widths].
        xp: array module, ``numpy`` or ``jax.numpy``.

    Returns:
        (..., k, size, size) float masks in [0, 1].
    """
    px, py = (xp.asarray(a) for a in pixel_centres(params, size))
    poses = xp.asarray(poses, dtype=xp.float32)
    dx = px - poses[..., 0, None, None]
    dy = py - poses[..., 1, None, None]
    cos, sin = xp.cos(poses[..., 2])[..., None, None], xp.sin(poses[..., 2])[..., None, None]
    along = xp.abs(cos * dx + sin * dy)
    across = xp.abs(cos * dy - sin * dx)
    half = 0.5 * params.block_size
    if softness <= 0:
        return ((along <= half) & (across <= half)).astype(xp.float32)
    sig = lambda z: 0.5 + 0.5 * xp.tanh(z / (2 * softness))  # noqa: E731  (the logistic, no overflow)
    return sig(half - along) * sig(half - across)


def upright_masks(
    centres: Any, params: Params, size: int | None = None, softness: float = 0.0, xp: Any = np
) -> Any:
    """:func:`block_masks` of blocks at angle 0, as outer products of 1-D edge profiles.

    Args:
        centres: (..., k, 2) block ``x, y`` [block widths].
        params: world constants.
        size: image side [pixels].
        softness: 0 for hard masks; else the sigmoid edge width [block widths].
        xp: array module.

    Returns:
        (..., k, size, size) float masks in [0, 1], equal to ``block_masks`` with zero angles
        (up to float rounding) at a fraction of its cost.
    """
    px, py = pixel_centres(params, size)
    xs, ys = xp.asarray(px[0]), xp.asarray(py[:, 0])
    centres = xp.asarray(centres, dtype=xp.float32)
    half = 0.5 * params.block_size
    along = half - xp.abs(xs - centres[..., 0, None])  # (..., k, size) over columns
    across = half - xp.abs(ys - centres[..., 1, None])  # (..., k, size) over rows
    if softness <= 0:
        along, across = (along >= 0).astype(xp.float32), (across >= 0).astype(xp.float32)
    else:
        along = 0.5 + 0.5 * xp.tanh(along / (2 * softness))
        across = 0.5 + 0.5 * xp.tanh(across / (2 * softness))
    return across[..., :, None] * along[..., None, :]


def table_mask(params: Params, size: int | None = None) -> np.ndarray:
    """(size, size) bool: pixels inside the table (a fresh array)."""
    return _table_mask(params, params.image_size if size is None else size).copy()


@functools.lru_cache(maxsize=16)
def _table_mask(params: Params, size: int) -> np.ndarray:
    x, y = pixel_centres(params, size)
    return (x <= 0) & (x >= -params.table_width) & (y <= 0) & (y >= -params.table_height)


def compose(
    masks: Any,
    params: Params,
    size: int | None = None,
    xp: Any = np,
    colours: np.ndarray | None = None,
) -> Any:
    """Paints the table and the blocks on white, block ``i`` over blocks ``< i``.

    Args:
        masks: (..., k, size, size) block occupancy in [0, 1].
        params: world constants.
        size: image side [pixels].
        xp: array module.
        colours: (..., k) ``BLOCK_COLOURS`` index of each block (default: its level).

    Returns:
        (..., size, size, 3) float image in [0, 1].
    """
    size = params.image_size if size is None else size
    k = masks.shape[-3]
    index = np.arange(k) if colours is None else np.asarray(colours)[..., :k]
    palette = xp.asarray(np.asarray(BLOCK_COLOURS, np.float32)[index] / 255.0)  # (..., k, 3)
    table = xp.asarray(table_mask(params, size), dtype=xp.float32)[..., None]
    background = xp.asarray(BACKGROUND_COLOUR, dtype=xp.float32) / 255.0
    image = background * (1 - table) + table * xp.asarray(TABLE_COLOUR, dtype=xp.float32) / 255.0
    for i in range(k):
        m = masks[..., i, :, :, None]
        image = image * (1 - m) + m * palette[..., i, None, None, :]
    return image


def render_state(
    state: np.ndarray,
    params: Params,
    size: int | None = None,
    colours: np.ndarray | None = None,
    softness: float = 0.0,
) -> np.ndarray:
    """Side-view RGB image of a tower state (..., k, >=3): (..., size, size, 3) uint8.

    ``colours`` (..., k) picks each block's ``BLOCK_COLOURS`` index (default: its level). With
    ``softness > 0`` [block widths] block edges are sigmoid ramps (:func:`compose`), whose grey
    levels carry sub-pixel positions; 0 gives hard pixels (:func:`paint`).
    """
    poses = np.asarray(state)[..., :3]
    if softness > 0:
        masks = block_masks(poses, params, size, softness=softness)
        return np.round(255.0 * compose(masks, params, size, colours=colours)).astype(np.uint8)
    return paint(block_masks(poses, params, size) > 0, params, size, colours)


def paint(
    masks: np.ndarray, params: Params, size: int | None = None, colours: np.ndarray | None = None
) -> np.ndarray:
    """Hard-mask fast path of :func:`compose`: (..., k, size, size) bool -> (..., size, size, 3).

    Block ``i`` is painted in ``BLOCK_COLOURS[colours[..., i]]`` (default ``colours[i] = i``);
    where masks overlap, the larger colour index wins. The result is uint8.
    """
    k = masks.shape[-3]
    index = np.arange(k) if colours is None else np.asarray(colours)[..., :k]
    levels = (2 + index).astype(np.uint8)[..., None, None]
    labels = (masks * levels).max(axis=-3, initial=0)
    table = _table_mask(params, params.image_size if size is None else size)
    return _palette()[np.where(labels > 0, labels, table.astype(np.uint8))]


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    return np.array([BACKGROUND_COLOUR, TABLE_COLOUR, *BLOCK_COLOURS], dtype=np.uint8)
