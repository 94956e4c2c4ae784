"""Small top-down RGB frames around the ego car, rasterised with array ops (NumPy or JAX).

Used for ``obs_mode="pixels"`` by the single env (NumPy path) and the vector/JAX envs (JAX path,
jit/vmap-able). Colours separate the semantic layers, as the cost maps of Henaff, Canziani &
LeCun (ICLR 2019) do with channels: the ego car is the only blue, other cars the only red.
The pygame renderer in ``render.py`` draws the larger frames for people.
"""

from __future__ import annotations

from typing import Any

from envs.driving import render, traffic
from envs.driving.core import DrivingState
from envs.driving.params import DrivingParams

GRASS = (40, 90, 40)
ROAD = (60, 60, 60)
MARKING = (220, 220, 220)
CAR = (230, 50, 50)
EGO = (40, 110, 255)
DASH = 3.0
"""Lane dividers are dashed: DASH metres painted, DASH metres not."""


def rasterize(state: DrivingState, params: DrivingParams) -> Any:
    """Draws one state as a (pixel_rows, pixel_cols, 3) uint8 image around the ego car.

    Later layers paint over earlier ones: grass, road, lane markings, cars, the ego car.
    """
    xp = traffic.namespace(state.car_speed)
    grid = render.pixel_centres(state.ego_position, params, xp)
    x, y = grid[..., 0], grid[..., 1]
    image = xp.broadcast_to(xp.asarray(GRASS, dtype=xp.float32), grid.shape[:2] + (3,))

    def paint(img: Any, mask: Any, colour: tuple[int, int, int]) -> Any:
        return xp.where(mask[..., None], xp.asarray(colour, dtype=xp.float32), img)

    image = paint(image, (y >= 0) & (y <= params.road_width), ROAD)
    half_pixel = params.pixel_scale / 2
    line = y / params.lane_width
    nearest = xp.round(line)
    on_line = xp.abs(y - nearest * params.lane_width) < half_pixel
    edge = (nearest == 0) | (nearest == params.num_lanes)
    dashed = (x % (2 * DASH)) < DASH
    on_road = (nearest >= 0) & (nearest <= params.num_lanes)
    image = paint(image, on_line & (edge | dashed) & on_road, MARKING)
    dx = x[..., None] - state.car_position[:, 0]
    dy = y[..., None] - state.car_position[:, 1]
    cars = xp.any(
        (xp.abs(dx) < params.car_length / 2) & (xp.abs(dy) < params.car_width / 2), axis=-1
    )
    image = paint(image, cars, CAR)
    c, s = xp.cos(state.ego_heading), xp.sin(state.ego_heading)
    ex, ey = x - state.ego_position[0], y - state.ego_position[1]
    along, across = c * ex + s * ey, -s * ex + c * ey
    ego = (xp.abs(along) < params.car_length / 2) & (xp.abs(across) < params.car_width / 2)
    image = paint(image, ego, EGO)
    return image.astype(xp.uint8)
