"""The pygame canvas and window that every task's renderer draws into.

Each task's ``render.py`` draws a frame onto ``Window.canvas`` and hands it to
:meth:`Window.present`: shown in a window ("human") or returned as an array ("rgb_array").
pygame is imported here, lazily (only when an env renders); only ``pygame.display`` and the
fonts are initialised, never the mixer.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class Window:
    """A pygame canvas of ``size`` (width, height) [px], shown in a window or read as an array."""

    def __init__(self, render_mode: str, fps: int, size: tuple[int, int], caption: str) -> None:
        if render_mode == "human" and "DISPLAY" not in os.environ and os.name != "nt":
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless machines: no window
        try:
            import pygame
        except ImportError as e:  # pragma: no cover - pygame is a hard dependency
            raise ImportError("rendering needs pygame: pip install pygame") from e
        self.pygame = pygame
        self.render_mode = render_mode
        self.fps = fps
        pygame.display.init()
        pygame.font.init()
        self.font = pygame.font.Font(None, 22)
        if render_mode == "human":
            self.screen = pygame.display.set_mode(size)
            pygame.display.set_caption(caption)
            self.clock = pygame.time.Clock()
        self.canvas = pygame.Surface(size)

    def present(self) -> np.ndarray | None:
        """Shows the canvas ("human", paced to ``fps``) or returns it, (H, W, 3) uint8."""
        if self.render_mode == "human":
            self.screen.blit(self.canvas, (0, 0))
            self.pygame.event.pump()
            self.pygame.display.flip()
            self.clock.tick(self.fps)
            return None
        return np.transpose(self.pygame.surfarray.array3d(self.canvas), (1, 0, 2)).copy()

    def close(self) -> None:
        """Closes the window (if any)."""
        if self.render_mode == "human":
            self.pygame.display.quit()


class OwnsRenderer:
    """Closing and pickling for an env whose lazily made pygame renderer is ``self._renderer``.

    List it before ``gymnasium.Env`` in the bases. ``close`` closes the renderer; pickling
    leaves it out (a pygame window does not pickle; a copy opens its own on its first render).
    """

    _renderer: Any = None

    def close(self) -> None:
        """Closes the render window, if one was opened."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_renderer"] = None
        return state
