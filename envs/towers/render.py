"""pygame drawing of a tower for ``render_mode`` "human" and "rgb_array" (imported lazily).

The window, or the off-screen canvas of "rgb_array", is :class:`envs.pygame_window.Window`'s
(headless-safe; only ``pygame.display`` and the fonts are initialised, never the mixer). The
y-up world to y-down screen flip is :meth:`TowerRenderer.to_screen`.
"""

from __future__ import annotations

import numpy as np
import pygame

from envs.pygame_window import Window
from envs.towers.params import BACKGROUND_COLOUR, BLOCK_COLOURS, TABLE_COLOUR, Params


class TowerRenderer:
    """Draws block states on a square window or surface of ``size`` pixels."""

    def __init__(self, params: Params, mode: str, size: int = 400, fps: int = 4) -> None:
        self.params, self.size = params, size
        self.scale = size / params.view_size
        self.window = Window(mode, fps, (size, size), "worldplan BlockTower-v0")

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """World point [block widths], y up -> screen pixel, y down."""
        p = self.params
        return (x - p.view_left) * self.scale, self.size - (y - p.view_bottom) * self.scale

    def draw(self, state: np.ndarray) -> pygame.Surface:
        """The window's canvas, showing the table and blocks ``state`` (k, >=3)."""
        p = self.params
        surface = self.window.canvas
        surface.fill(BACKGROUND_COLOUR)
        table = [
            (-p.table_width, -p.table_height),
            (0, -p.table_height),
            (0, 0),
            (-p.table_width, 0),
        ]
        pygame.draw.polygon(surface, TABLE_COLOUR, [self.to_screen(*c) for c in table])
        half = 0.5 * p.block_size
        corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
        for i, (x, y, angle) in enumerate(np.asarray(state)[:, :3]):
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            points = corners @ rotation.T + (x, y)
            screen = [self.to_screen(*c) for c in points]
            pygame.draw.polygon(surface, BLOCK_COLOURS[i % len(BLOCK_COLOURS)], screen)
            pygame.draw.polygon(surface, (0, 0, 0), screen, width=1)
        return surface

    def render(self, state: np.ndarray) -> np.ndarray | None:
        """Shows the frame ("human", returns None) or returns it as (size, size, 3) uint8."""
        self.draw(state)
        return self.window.present()

    def close(self) -> None:
        """Closes the window, if one was opened."""
        self.window.close()
