"""Fast NumPy rasterisers behind :mod:`envs.towers.image`: the pixel grid and its fast paths.

``image.py`` holds the general formulas (``block_masks``, ``upright_masks``, ``compose``), which
run under NumPy and ``jax.numpy`` alike. This module holds what they rest on (the pixel grid,
the table) and the NumPy-only paths that give the same bits at a fraction of the cost: hard
occupancy tested on a window around each block, soft upright towers blended on windows, and
hard masks painted through palette indices. ``image.py`` re-exports the public names.

Image convention: ``image[row, col]``, row 0 at the top (largest y). The flip from the y-up world
lives in :func:`pixel_centres` and :func:`_padded_axes` alone.
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


def table_mask(params: Params, size: int | None = None) -> np.ndarray:
    """(size, size) bool: pixels inside the table (a fresh array)."""
    return _table_mask(params, params.image_size if size is None else size).copy()


@functools.lru_cache(maxsize=16)
def _table_mask(params: Params, size: int) -> np.ndarray:
    x, y = pixel_centres(params, size)
    return (x <= 0) & (x >= -params.table_width) & (y <= 0) & (y >= -params.table_height)


def backdrop(params: Params, size: int | None = None, xp: Any = np) -> Any:
    """(size, size, 3) float image in [0, 1] of the table on the background, no blocks."""
    table = xp.asarray(table_mask(params, size), dtype=xp.float32)[..., None]
    background = xp.asarray(BACKGROUND_COLOUR, dtype=xp.float32) / 255.0
    return background * (1 - table) + table * xp.asarray(TABLE_COLOUR, dtype=xp.float32) / 255.0


def occupancy(poses: np.ndarray, params: Params, size: int | None = None) -> np.ndarray:
    """Hard masks as booleans, equal to ``image.block_masks(poses, params, size) > 0``.

    Args:
        poses: (..., k, 3) block ``x, y`` [block widths] and ``angle`` [rad].
        params: world constants.
        size: image side [pixels].

    Returns:
        (..., k, size, size) bool, bit for bit the pixels ``block_masks`` marks. When every
        angle is exactly 0 (a tower as stacked) the masks are outer products of 1-D row and
        column tests (``block_masks`` computes the same ``|dx|`` and ``|dy|`` there); otherwise
        each block is tested only on a window of pixels around it, with the same arithmetic.
    """
    size = params.image_size if size is None else size
    poses = np.asarray(poses, dtype=np.float32)
    half = 0.5 * params.block_size
    if not np.any(poses[..., 2]):
        px, py = pixel_centres(params, size)
        dx = px[0] - poses[..., 0, None]
        dy = py[:, 0] - poses[..., 1, None]
        return (np.abs(dy) <= half)[..., :, None] & (np.abs(dx) <= half)[..., None, :]
    flat = poses.reshape(-1, 3)
    xs, ys, reach = _padded_axes(params, size)
    pad, step = reach + 1, params.view_size / size
    offsets = np.arange(-reach, reach + 1)
    column = np.round((flat[:, 0] - params.view_left) / step - 0.5).astype(np.int64)
    row = np.round(size - 0.5 - (flat[:, 1] - params.view_bottom) / step).astype(np.int64)
    # Blocks far outside the view keep a window in the padding, where they cover nothing.
    columns = pad + np.clip(column, reach - pad, size + pad - reach - 1)[:, None] + offsets
    rows = pad + np.clip(row, reach - pad, size + pad - reach - 1)[:, None] + offsets
    dx = xs[columns] - flat[:, 0, None]  # (b, window)
    dy = ys[rows] - flat[:, 1, None]
    cos, sin = np.cos(flat[:, 2])[:, None], np.sin(flat[:, 2])[:, None]
    along = np.abs((cos * dx)[:, None, :] + (sin * dy)[:, :, None])
    across = np.abs((cos * dy)[:, :, None] - (sin * dx)[:, None, :])
    inside = (along <= half) & (across <= half)
    masks = np.zeros((len(flat), size, size), bool)
    width = len(offsets)
    corners = zip(rows[:, 0].tolist(), columns[:, 0].tolist(), strict=True)
    for block, (top, left) in enumerate(corners):
        top, left = top - pad, left - pad  # image pixel of the window's first row and column
        if top < size and left < size and top + width > 0 and left + width > 0:
            r0, c0 = max(top, 0), max(left, 0)
            r1, c1 = min(top + width, size), min(left + width, size)
            masks[block, r0:r1, c0:c1] = inside[block, r0 - top : r1 - top, c0 - left : c1 - left]
    return masks.reshape(*poses.shape[:-1], size, size)


@functools.lru_cache(maxsize=16)
def _padded_axes(params: Params, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixel column and row centres continued past the image, and a block's reach in pixels.

    The centres run ``reach + 1`` pixels past each side; a pixel a block covers lies within
    ``reach`` pixels of the block's nearest pixel (``half * sqrt(2)`` from its centre, plus 2
    pixels of slack). Inside the image the values are those of :func:`pixel_centres` (the same
    float64 formula, rounded to float32), so windowed tests match full-image tests bit for bit.
    """
    step = params.view_size / size
    reach = int(np.ceil(0.5 * params.block_size * np.sqrt(2.0) / step)) + 2
    index = np.arange(-reach - 1, size + reach + 1)
    xs = (params.view_left + step * (index + 0.5)).astype(np.float32)
    ys = (params.view_bottom + step * (size - index - 0.5)).astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys, reach


def soft_upright(
    centres: np.ndarray,
    params: Params,
    size: int | None = None,
    colours: np.ndarray | None = None,
    softness: float = 0.05,
) -> np.ndarray:
    """``image.compose(image.upright_masks(centres, ...))`` as uint8, bit for bit, on windows.

    Args:
        centres: (..., k, 2) block ``x, y`` [block widths], all at angle 0.
        params: world constants.
        size: image side [pixels].
        colours: (..., k) ``BLOCK_COLOURS`` index of each block (default: its level).
        softness: sigmoid edge width [block widths], > 0.

    Returns:
        (..., size, size, 3) uint8. A sigmoid edge is exactly 0 in float32 (``tanh`` rounds to
        -1) beyond ``20 * softness`` outside a block, and blending a 0 mask leaves a pixel's
        bits unchanged, so each block is blended only on a ``width``-pixel window around it,
        with the same float operations as ``compose`` on the same mask values. A window clipped
        to the image still covers the block's pixels in it. ~4x faster than blending whole
        images (``benchmarks/towers.py``).
    """
    size = params.image_size if size is None else size
    centres = np.asarray(centres, dtype=np.float32)
    lead, k = centres.shape[:-2], centres.shape[-2]
    flat = centres.reshape(-1, k, 2)
    index = np.arange(k) if colours is None else np.asarray(colours)[..., :k]
    palette = np.asarray(BLOCK_COLOURS, np.float32)[np.broadcast_to(index, (*lead, k))] / 255.0
    palette = palette.reshape(-1, k, 3)
    step, half = params.view_size / size, 0.5 * params.block_size
    reach = int(np.ceil((half + 20.0 * softness) / step)) + 2
    width = min(2 * reach + 1, size)
    px, py = pixel_centres(params, size)
    canvas = np.empty((len(flat), size, size, 3), np.float32)
    canvas[:] = backdrop(params, size)
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (width,) * 2, (1, 2), writeable=True)
    offsets = np.arange(width)
    sig = lambda z: 0.5 + 0.5 * np.tanh(z / (2 * softness))  # noqa: E731  (as upright_masks)
    for i in range(k):
        x, y = flat[:, i, 0], flat[:, i, 1]
        column = np.round((x - params.view_left) / step - 0.5).astype(np.int64)
        row = np.round(size - 0.5 - (y - params.view_bottom) / step).astype(np.int64)
        seen = np.flatnonzero(
            (np.abs(column - size / 2) < size / 2 + reach)
            & (np.abs(row - size / 2) < size / 2 + reach)
        )
        left = np.clip(column[seen] - reach, 0, size - width)
        top = np.clip(row[seen] - reach, 0, size - width)
        along = sig(half - np.abs(px[0][left[:, None] + offsets] - x[seen, None]))
        across = sig(half - np.abs(py[:, 0][top[:, None] + offsets] - y[seen, None]))
        mask = (across[:, :, None] * along[:, None, :])[:, None]  # (b, 1, width, width)
        patch = windows[seen, top, left]  # (b, 3, width, width)
        windows[seen, top, left] = patch * (1 - mask) + mask * palette[seen, i, :, None, None]
    return np.round(255.0 * canvas).astype(np.uint8).reshape(*lead, size, size, 3)


def paint(
    masks: np.ndarray,
    params: Params,
    size: int | None = None,
    colours: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Hard-mask fast path of ``image.compose``: (..., k, size, size) bool -> (..., size, size, 3).

    Block ``i`` is painted in ``BLOCK_COLOURS[colours[..., i]]`` (default ``colours[i] = i``);
    where masks overlap, the larger colour index wins. The result is uint8, written into
    ``out`` (a C-contiguous uint8 array of the result's shape) when given.
    """
    return colourise(palette_labels(masks, params, size, colours), out)


def palette_labels(
    masks: np.ndarray, params: Params, size: int | None = None, colours: np.ndarray | None = None
) -> np.ndarray:
    """The image :func:`paint` draws, as (..., size, size) uint8 indices into its palette.

    Index 0 is the background, 1 the table, ``2 + c`` block colour ``c``; :func:`colourise`
    turns indices into RGB. A third the bytes of RGB, so three times cheaper to compress.
    """
    k = masks.shape[-3]
    index = np.arange(k) if colours is None else np.asarray(colours)[..., :k]
    levels = np.broadcast_to((2 + index).astype(np.uint8), (*masks.shape[:-3], k))
    table = _table_mask(params, params.image_size if size is None else size)
    # Blocks' indices (>= 2) exceed the table's (1), so a running maximum over the levels,
    # started from the table, lets the larger colour win and blocks cover the table.
    labels = np.empty(masks.shape[:-3] + masks.shape[-2:], np.uint8)
    labels[...] = table
    level = np.empty_like(labels)
    for i in range(k):
        np.multiply(masks[..., i, :, :], levels[..., i, None, None], out=level)
        np.maximum(labels, level, out=labels)
    return labels


def colourise(labels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB (..., size, size, 3) uint8 of :func:`palette_labels` indices, into ``out`` if given."""
    if labels.size and labels.max() >= len(_palette()):
        raise ValueError(f"labels must be palette indices in [0, {len(_palette())})")
    if out is None:
        out = np.empty((*labels.shape, 3), np.uint8)
    if out.shape != (*labels.shape, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous uint8 of shape {(*labels.shape, 3)}")
    # Whole 3-byte pixels, unbuffered ("clip": labels are in range): ~4x faster than
    # indexing the (n, 3) palette.
    np.take(_palette().view("V3")[:, 0], labels, out=out.view("V3")[..., 0], mode="clip")
    return out


@functools.lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    return np.array([BACKGROUND_COLOUR, TABLE_COLOUR, *BLOCK_COLOURS], dtype=np.uint8)
