"""Pygame drawing of the driving task.

pygame is imported lazily; the y-up world to y-down screen flip lives in this module alone
(``pixel_centres`` for the observation frames, ``Renderer`` for the window).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.driving.params import DrivingParams
from envs.pygame_window import Window

WINDOW_SIZE = (768, 192)
"""Rendered frame (width, height) [px]."""
PIXELS_PER_METRE = 6.0
VIEW_BEHIND = 32.0
"""The window starts this far behind the ego car [m]."""


def pixel_centres(ego_position: Any, params: DrivingParams, xp: Any = np) -> Any:
    """World coordinates [m] of an observation frame's pixel centres, (pixel_rows, pixel_cols, 2).

    The frame is centred across the road on the ego car and starts ``pixel_behind`` behind it.
    Row 0 is the top of the frame (largest y, the left of the road), column 0 the left (the
    rearmost x). ``xp`` is NumPy or ``jax.numpy``; ``ego_position`` (2,) [m] may be traced.
    """
    scale = params.pixel_scale
    cols = (xp.arange(params.pixel_cols, dtype=xp.float32) + 0.5) * scale - params.pixel_behind
    rows = (params.pixel_rows / 2 - 0.5 - xp.arange(params.pixel_rows, dtype=xp.float32)) * scale
    xs, ys = xp.meshgrid(cols + ego_position[0], rows + ego_position[1])
    return xp.stack([xs, ys], axis=-1).astype(xp.float32)


class Renderer:
    """Draws driving states with pygame into a window ("human") or an array ("rgb_array")."""

    def __init__(self, render_mode: str, fps: int) -> None:
        self.window = Window(render_mode, fps, WINDOW_SIZE, "worldplan: Driving-v0")
        self.pygame, self.font = self.window.pygame, self.window.font

    def draw(self, state: Any, params: DrivingParams, episode_return: float) -> np.ndarray | None:
        """Draws one state (NumPy leaves); returns the frame (H, W, 3) uint8 in "rgb_array" mode."""
        pg = self.pygame
        width, height = WINDOW_SIZE
        ego_x = float(state.ego_position[0])
        road_centre = params.road_width / 2

        def to_screen(x: float, y: float) -> tuple[float, float]:
            return (
                (x - ego_x + VIEW_BEHIND) * PIXELS_PER_METRE,
                height / 2 - (y - road_centre) * PIXELS_PER_METRE,
            )

        canvas = self.window.canvas
        canvas.fill((40, 90, 40))
        top = to_screen(0.0, params.road_width)[1]
        pg.draw.rect(canvas, (60, 60, 60), (0, top, width, params.road_width * PIXELS_PER_METRE))
        for k in range(params.num_lanes + 1):
            y = to_screen(0.0, k * params.lane_width)[1]
            if k in (0, params.num_lanes):
                pg.draw.line(canvas, (230, 230, 230), (0, y), (width, y), 2)
                continue
            start = np.floor((ego_x - VIEW_BEHIND) / 6.0) * 6.0
            for dash in np.arange(start, start + width / PIXELS_PER_METRE + 12.0, 6.0):
                x0, x1 = to_screen(dash, 0.0)[0], to_screen(dash + 3.0, 0.0)[0]
                pg.draw.line(canvas, (230, 230, 230), (x0, y), (x1, y), 2)
        half = np.array([params.car_length, params.car_width]) / 2
        for (cx, cy), lane in zip(
            np.asarray(state.car_position), np.asarray(state.car_lane), strict=True
        ):
            sx, sy = to_screen(cx - half[0], cy + half[1])
            rect = (sx, sy, 2 * half[0] * PIXELS_PER_METRE, 2 * half[1] * PIXELS_PER_METRE)
            changing = abs(cy - (lane + 0.5) * params.lane_width) > 0.1
            pg.draw.rect(canvas, (250, 170, 40) if changing else (230, 50, 50), rect)
        heading = float(state.ego_heading)
        c, s = np.cos(heading), np.sin(heading)
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        ex, ey = (float(v) for v in state.ego_position)
        points = [
            to_screen(
                ex + c * a * half[0] - s * b * half[1], ey + s * a * half[0] + c * b * half[1]
            )
            for a, b in corners
        ]
        pg.draw.polygon(canvas, (40, 110, 255), points)
        text = (
            f"t={int(state.time)}  speed {float(state.ego_speed) * 3.6:5.1f} km/h"
            f"  return {episode_return:7.2f}"
        )
        canvas.blit(self.font.render(text, True, (255, 255, 255)), (8, 6))
        return self.window.present()

    def close(self) -> None:
        """Closes the window (if any)."""
        self.window.close()
