"""Pygame drawing of the spaceship task.

pygame is imported lazily; the y-up world to y-down screen flip lives in this module alone
(``to_screen`` and ``pixel_centres``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.pygame_window import Window
from envs.spaceship.params import SpaceshipParams

WINDOW_SIZE = 512
"""Side of the rendered frame [px]."""


def pixel_centres(size: int, half_width: Any, xp: Any = np) -> Any:
    """World coordinates [m] of the centres of a size x size frame's pixels, (size, size, 2).

    Row 0 is the top of the frame (largest y), column 0 the left (smallest x). ``xp`` is NumPy
    or ``jax.numpy``; with the latter ``half_width`` [m] may be traced (params passed to a jit).
    """
    ticks = ((xp.arange(size, dtype=xp.float32) + 0.5) / size * 2.0 - 1.0) * half_width
    xs, ys = xp.meshgrid(ticks, ticks[::-1])
    return xp.stack([xs, ys], axis=-1).astype(xp.float32)


def to_screen(point: Sequence[float], half_width: float, size: int) -> tuple[int, int]:
    """Maps a world point (2,) [m] to integer screen coordinates (x right, y down) [px]."""
    scale = size / (2.0 * half_width)
    return int(round((point[0] + half_width) * scale)), int(round((half_width - point[1]) * scale))


class Renderer:
    """Draws spaceship states with pygame into a window ("human") or an array ("rgb_array")."""

    def __init__(self, render_mode: str, fps: int) -> None:
        self.window = Window(
            render_mode, fps, (WINDOW_SIZE, WINDOW_SIZE), "worldplan: Spaceship-v0"
        )
        self.pygame, self.font = self.window.pygame, self.window.font

    def draw(
        self, state: Any, params: SpaceshipParams, trail: Sequence[np.ndarray], total_reward: float
    ) -> np.ndarray | None:
        """Draws one state; returns an (H, W, 3) uint8 frame in "rgb_array" mode."""
        pg, canvas, hw = self.pygame, self.window.canvas, params.arena_half_width

        def screen(p: Sequence[float]) -> tuple[int, int]:
            return to_screen(p, hw, WINDOW_SIZE)

        scale = WINDOW_SIZE / (2.0 * hw)
        canvas.fill((8, 10, 28))
        pg.draw.circle(
            canvas,
            (160, 115, 70),
            screen(state.planet_position),
            float(state.planet_radius) * scale,
        )
        for k, target in enumerate(np.asarray(state.targets)):
            index = int(state.target_index)
            colour = (70, 70, 80) if k < index else (70, 230, 100) if k == index else (40, 110, 60)
            pg.draw.circle(canvas, colour, screen(target), params.target_tolerance * scale, 2)
            label = self.font.render(str(k + 1), True, colour)
            canvas.blit(label, label.get_rect(center=screen(target)))
        if len(trail) > 1:
            pg.draw.lines(canvas, (90, 120, 200), False, [screen(p) for p in trail], 1)
        thrust = np.asarray(state.thrust, dtype=np.float64)
        position = np.asarray(state.position, dtype=np.float64)
        if np.linalg.norm(thrust) > 1e-3:
            tip = position - 1.2 * thrust
            side = 0.25 * np.array([-thrust[1], thrust[0]])
            flame = [screen(position + side), screen(position - side), screen(tip)]
            pg.draw.polygon(canvas, (255, 150, 40), flame)
        pg.draw.circle(canvas, (240, 240, 240), screen(position), max(3, int(0.3 * scale)))
        text = f"t={int(state.time)}  return={total_reward:.1f}  targets={int(state.target_index)}"
        canvas.blit(self.font.render(text, True, (220, 220, 220)), (8, 8))
        return self.window.present()

    def close(self) -> None:
        """Closes the window (if any)."""
        self.window.close()
