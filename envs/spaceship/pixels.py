"""Small RGB frames of the spaceship state, rasterised with array ops (NumPy or JAX, jit/vmap-able).

Used for ``obs_mode="pixels"`` by the single env (NumPy path) and the vector/JAX envs (JAX path).
The pygame renderer in ``render.py`` draws the larger, prettier frames for people.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from envs.ops import HostOps, ops_for
from envs.spaceship import render
from envs.spaceship.core import SpaceshipState
from envs.spaceship.params import SpaceshipParams

BACKGROUND = (8, 10, 28)
PLANET = (160, 115, 70)
TARGET_CURRENT = (70, 230, 100)
TARGET_LATER = (40, 110, 60)
TARGET_VISITED = (70, 70, 80)
SHIP = (240, 240, 240)
FLAME = (255, 150, 40)
SHIP_RADIUS = 0.4
"""Drawn ship radius [m] (the physics treats the ship as a point)."""


def rasterize(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """Draws one state as a (pixel_size, pixel_size, 3) uint8 image, y up on screen.

    Later layers paint over earlier ones: planet, targets, flame, ship.
    """
    xp = np if ops_for(state.planet_radius) is HostOps else jnp
    grid = render.pixel_centres(params.pixel_size, params.arena_half_width, xp)

    def disc(centre: Any, radius: Any) -> Any:
        d = grid - centre
        return xp.sum(d * d, axis=-1) < radius * radius

    image = xp.broadcast_to(xp.asarray(BACKGROUND, dtype=xp.float32), grid.shape[:2] + (3,))

    def paint(img: Any, mask: Any, colour: tuple[int, int, int]) -> Any:
        return xp.where(mask[..., None], xp.asarray(colour, dtype=xp.float32), img)

    image = paint(image, disc(state.planet_position, state.planet_radius), PLANET)
    for k in range(params.num_targets):
        mask = disc(state.targets[k], params.target_tolerance)
        later = paint(image, mask, TARGET_LATER)
        current = paint(image, mask, TARGET_CURRENT)
        visited = paint(image, mask, TARGET_VISITED)
        image = xp.where(
            state.target_index > k, visited, xp.where(state.target_index == k, current, later)
        )
    flame_centre = state.position - 0.7 * state.thrust
    flame_size = 0.35 * xp.sqrt(xp.sum(xp.asarray(state.thrust) ** 2))
    image = paint(image, disc(flame_centre, flame_size), FLAME)
    image = paint(image, disc(state.position, SHIP_RADIUS), SHIP)
    return image.astype(xp.uint8)
