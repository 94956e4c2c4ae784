"""Side-view images and per-block masks of a tower, drawn with array maths (no pygame).

Observations, dataset images and masks come from here rather than from pygame (``render.py``):
rasterising a few squares over a 64 x 64 grid in NumPy is much faster than a pygame surface per
tower, needs no display in worker processes, and the same formulas run under ``jax.numpy``. With
``softness > 0`` the masks have sigmoid edges, so an image is differentiable in block positions.

This module holds the general formulas and the entry points (:func:`render_state`,
:func:`render_towers`); the pixel grid and the NumPy fast paths that give the same bits live in
:mod:`envs.towers.raster`, whose public names are re-exported here.

Image convention: ``image[row, col]``, row 0 at the top (largest y). The flip from the y-up world
lives in ``raster.pixel_centres`` alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.towers.params import BLOCK_COLOURS, Params
from envs.towers.raster import (
    backdrop,
    colourise,
    occupancy,
    paint,
    palette_labels,
    pixel_centres,
    soft_upright,
    table_mask,
)

__all__ = [
    "away_pose",
    "backdrop",
    "block_masks",
    "colourise",
    "compose",
    "occupancy",
    "paint",
    "palette_labels",
    "pixel_centres",
    "render_state",
    "render_towers",
    "soft_upright",
    "table_mask",
    "upright_masks",
]


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
    px, py = pixel_centres(params, size)
    xs, ys = xp.asarray(px[0]), xp.asarray(py[:, 0])  # (size,) column and row centres
    poses = xp.asarray(poses, dtype=xp.float32)
    # dx depends on the column alone and dy on the row alone, so each product below is a
    # (..., k, size) vector and only the sums are full images: the same float operations per
    # pixel as on full grids, at a fraction of the cost.
    dx = xs - poses[..., 0, None]
    dy = ys - poses[..., 1, None]
    cos, sin = xp.cos(poses[..., 2])[..., None], xp.sin(poses[..., 2])[..., None]
    along = xp.abs((cos * dx)[..., None, :] + (sin * dy)[..., :, None])
    across = xp.abs((cos * dy)[..., :, None] - (sin * dx)[..., None, :])
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
    image = backdrop(params, size, xp)
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
        if not np.any(poses[..., 2]):
            return soft_upright(poses[..., :2], params, size, colours, softness)
        masks = block_masks(poses, params, size, softness=softness)
        return np.round(255.0 * compose(masks, params, size, colours=colours)).astype(np.uint8)
    return paint(occupancy(poses, params, size), params, size, colours)


def away_pose(params: Params) -> tuple[float, float, float]:
    """A block pose ``(x, y, angle)`` [block widths, rad] far outside the view.

    A block drawn there covers no pixel and leaves every bit of an image unchanged (a soft edge
    is exactly 0 that far out), so moving a block there hides it.
    """
    away = 100.0 * (params.view_size + abs(params.view_left) + abs(params.view_bottom))
    return away, away, 0.0


def render_towers(
    initial: np.ndarray,
    final: np.ndarray,
    present: np.ndarray,
    colours: np.ndarray,
    params: Params,
    softness: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images of many towers of any heights at once, as the dataset stores them.

    Args:
        initial: (m, k, >=3) states when released (angles 0) [block widths, rad].
        final: (m, k, >=3) states at the end.
        present: (m, k) bool, which rows are blocks (the others are padding).
        colours: (m, k) ``BLOCK_COLOURS`` index of each block.
        params: world constants.
        softness: edge width of the initial images [block widths] (:func:`render_state`).

    Returns:
        Initial images: (m, size, size) uint8 :func:`palette_labels` if ``softness`` is 0, else
        (m, size, size, 3) uint8 RGB; final frames, (m, size, size) palette labels; and the
        final hard masks (m, k, size, size) bool, per level. Padding blocks are moved far
        outside the view, where they cover no pixel and add exactly nothing, so every image
        (after :func:`colourise`) equals :func:`render_state` of its tower alone.
    """
    start, end = np.array(initial)[..., :3], np.array(final)[..., :3]
    start[~present] = end[~present] = away_pose(params)
    if softness > 0:
        images = render_state(start, params, colours=colours, softness=softness)
    else:
        images = palette_labels(occupancy(start, params), params, colours=colours)
    masks = occupancy(end, params)
    return images, palette_labels(masks, params, colours=colours), masks
