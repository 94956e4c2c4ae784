"""pygame drawing of the poke table (imported lazily; the y-up to y-down flip lives here alone).

:func:`draw_image` makes the small RGB observation (supersampled, then box-filtered, so that
sub-pixel motion changes the image); :class:`Renderer` draws the larger ``human``/``rgb_array``
view with the last poke and the goal.
"""

from __future__ import annotations

import os

import numpy as np

from envs.poke.params import PokeParams
from envs.poke.physics import PokeState, shape_vertices
from envs.pygame_window import Window

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (after the prompt is silenced)

TABLE_COLOR = (205, 190, 160)
OBJECT_COLORS = ((200, 40, 40), (40, 90, 200), (40, 160, 60), (200, 160, 30))
FINGER_COLOR = (30, 30, 30)
GOAL_COLOR = (200, 40, 40)
SUPERSAMPLE = 4


def _to_pixels(points: np.ndarray, params: PokeParams, size: int) -> np.ndarray:
    """World points (k, 2) [m], y up, to pixel coordinates (k, 2), y down."""
    scale = size / (2 * params.table_half_size)
    x = (points[:, 0] + params.table_half_size) * scale
    y = (params.table_half_size - points[:, 1]) * scale
    return np.stack([x, y], axis=-1)


def draw_objects(surface: pygame.Surface, state: PokeState, params: PokeParams) -> None:
    """Fills ``surface`` with the table and draws every object at its pose."""
    size = surface.get_width()
    surface.fill(TABLE_COLOR)
    scale = size / (2 * params.table_half_size)
    for i, (kind, half_size, pose) in enumerate(
        zip(state.kind, state.half_size, state.pose, strict=True)
    ):
        color = OBJECT_COLORS[i % len(OBJECT_COLORS)]
        vertices = shape_vertices(int(kind), half_size)
        if vertices is None:
            center = _to_pixels(pose[None, :2], params, size)[0]
            pygame.draw.circle(surface, color, center.tolist(), float(half_size[0] * scale))
            continue
        c, s = np.cos(pose[2]), np.sin(pose[2])
        world = vertices @ np.array([[c, s], [-s, c]]) + pose[:2]
        pygame.draw.polygon(surface, color, _to_pixels(world, params, size).tolist())


def draw_image(state: PokeState, params: PokeParams) -> np.ndarray:
    """The top-down observation image, (image_size, image_size, 3) uint8, row 0 at the top."""
    size = params.image_size
    surface = pygame.Surface((size * SUPERSAMPLE, size * SUPERSAMPLE))
    draw_objects(surface, state, params)
    pixels = pygame.surfarray.array3d(surface).transpose(1, 0, 2).astype(np.float32)
    pixels = pixels.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.round(pixels).astype(np.uint8)


class Renderer:
    """The ``human`` window or ``rgb_array`` frames of a :class:`~envs.poke.env.PokeEnv`."""

    def __init__(self, params: PokeParams, mode: str, size: int = 400, fps: int = 4) -> None:
        self.params, self.size = params, size
        self.window = Window(mode, fps, (size, size), "worldplan Poke-v0")

    def frame(
        self, state: PokeState, last_action: np.ndarray | None, goal: np.ndarray | None
    ) -> np.ndarray | None:
        """Draws one frame; returns (size, size, 3) uint8 in ``rgb_array`` mode, else None."""
        surface = self.window.canvas
        draw_objects(surface, state, self.params)
        scale = self.size / (2 * self.params.table_half_size)
        if goal is not None:
            center = _to_pixels(np.asarray(goal)[None], self.params, self.size)[0]
            radius = self.params.goal_tolerance * scale
            pygame.draw.circle(surface, GOAL_COLOR, center.tolist(), radius, width=2)
        if last_action is not None:
            start = np.asarray(last_action[:2], dtype=np.float64)
            end = start + last_action[3] * np.array(
                [np.cos(last_action[2]), np.sin(last_action[2])]
            )
            points = _to_pixels(np.stack([start, end]), self.params, self.size)
            pygame.draw.line(surface, FINGER_COLOR, *points.tolist(), width=2)
            pygame.draw.circle(
                surface, FINGER_COLOR, points[1].tolist(), self.params.finger_radius * scale
            )
        return self.window.present()

    def close(self) -> None:
        """Closes the window, if one was opened."""
        self.window.close()
