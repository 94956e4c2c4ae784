"""pygame drawing of a tower for ``render_mode`` "human" and "rgb_array" (imported lazily).

Only ``pygame.display`` is initialised (never the mixer), and only for "human"; "rgb_array"
draws on an off-screen surface, so it works headless. The y-up world to y-down screen flip is
:meth:`TowerRenderer.to_screen`.
"""

from __future__ import annotations

import numpy as np
import pygame

from envs.towers.params import BACKGROUND_COLOUR, BLOCK_COLOURS, TABLE_COLOUR, Params


class TowerRenderer:
    """Draws block states on a square window or surface of ``size`` pixels."""

    def __init__(self, params: Params, mode: str, size: int = 400, fps: int = 4) -> None:
        self.params, self.mode, self.size, self.fps = params, mode, size, fps
        self.scale = size / params.view_size
        self.window: pygame.Surface | None = None
        self.clock: pygame.time.Clock | None = None

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """World point [block widths], y up -> screen pixel, y down."""
        p = self.params
        return (x - p.view_left) * self.scale, self.size - (y - p.view_bottom) * self.scale

    def draw(self, state: np.ndarray) -> pygame.Surface:
        """A surface showing the table and blocks ``state`` (k, >=3)."""
        p = self.params
        surface = pygame.Surface((self.size, self.size))
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
        surface = self.draw(state)
        if self.mode == "rgb_array":
            return np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)).copy()
        if self.window is None:
            pygame.display.init()
            self.window = pygame.display.set_mode((self.size, self.size))
            self.clock = pygame.time.Clock()
        self.window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)
        return None

    def close(self) -> None:
        """Closes the window, if one was opened."""
        if self.window is not None:
            pygame.display.quit()
            self.window = None
