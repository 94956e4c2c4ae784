"""pymunk physics of the poke table: build a space from a state, read it back, poke it.

Table friction: pymunk has no planar friction, so each object is tied to the static body by a
:class:`pymunk.PivotJoint` and a :class:`pymunk.GearJoint` with ``max_bias = 0`` (no position
correction) and a force limit equal to the Coulomb friction ``mu m g`` (torque limit
``2/3 mu m g r``, that of a uniform disk of radius ``r``), the top-down friction of pymunk's
``tank.py`` example. The joints then stop sliding below that limit and slip above it.

The fingertip is a dynamic disk dragged along the poke line with a bounded force
(:mod:`envs.poke.finger`), so a wall stops an object it pins there instead of the finger
squeezing the object through the wall. pymunk's default collision slop (0.1, meant for pixels)
would leave 10 cm overlaps uncorrected on this metre-scale table; ``params.collision_slop`` sets it.

A poke rebuilds the space from the state first (:func:`transition`), so the outcome is a function
of (state, action) alone: pymunk's cached contacts (warm starting) never carry over between
pokes, which makes a reset to a stored state reproduce a dataset transition bit for bit. The
finger is added and removed within the poke, so it is no part of the state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np
import pymunk

from envs.poke import finger
from envs.poke.params import PokeParams

BOX, DISK, TRIANGLE = 0, 1, 2
ACTION_DIM = 4
"""Poke action: start x [m], start y [m], angle [rad], length [m]."""
WALL_THICKNESS = 0.1
"""Walls fill ``table_half_size < |x| or |y| <= table_half_size + WALL_THICKNESS`` [m]."""


class PokeState(NamedTuple):
    """State of the table with ``n`` objects (NumPy float64 arrays, world frame, y up).

    Attributes:
        kind: (n,) int64 shape index into ``params.SHAPE_KINDS`` (box, disk, triangle).
        half_size: (n, 2) half extents [m]: box half sides; disk radius and triangle
            circumradius repeated.
        pose: (n, 3) centre x [m], centre y [m], angle [rad] (unbounded, as pymunk keeps it).
        velocity: (n, 3) x velocity [m/s], y velocity [m/s], angular velocity [rad/s].
    """

    kind: np.ndarray
    half_size: np.ndarray
    pose: np.ndarray
    velocity: np.ndarray


@dataclasses.dataclass
class World:
    """A pymunk space and the bodies of its objects, in state order."""

    space: pymunk.Space
    bodies: list[pymunk.Body]
    kind: np.ndarray
    half_size: np.ndarray


def shape_vertices(kind: int, half_size: np.ndarray) -> np.ndarray | None:
    """Polygon vertices in the body frame [m], (k, 2); None for a disk."""
    if kind == BOX:
        hx, hy = half_size
        return np.array([(-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy)])
    if kind == TRIANGLE:
        angles = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
        return half_size[0] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    return None


def _add_object(space: pymunk.Space, kind: int, half_size: np.ndarray, params: PokeParams):
    vertices = shape_vertices(kind, half_size)
    if vertices is None:
        radius = float(half_size[0])
        mass = params.object_density * math.pi * radius**2
        body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0.0, radius))
        shape: pymunk.Shape = pymunk.Circle(body, radius)
    else:
        points = [tuple(map(float, v)) for v in vertices]
        area = abs(pymunk.area_for_poly(points))
        mass = params.object_density * area
        body = pymunk.Body(mass, pymunk.moment_for_poly(mass, points))
        shape = pymunk.Poly(body, points)
    shape.friction = params.contact_friction
    shape.elasticity = params.elasticity
    force = params.table_friction * mass * params.gravity
    pivot = pymunk.PivotJoint(space.static_body, body, (0.0, 0.0), (0.0, 0.0))
    gear = pymunk.GearJoint(space.static_body, body, 0.0, 1.0)
    pivot.max_bias, pivot.max_force = 0.0, force
    gear.max_bias, gear.max_force = 0.0, force * 2.0 / 3.0 * float(half_size.max())
    space.add(body, shape, pivot, gear)
    return body


def _add_walls(space: pymunk.Space, params: PokeParams) -> None:
    h, r = params.table_half_size, WALL_THICKNESS / 2
    corners = [(-h - r, -h - r), (h + r, -h - r), (h + r, h + r), (-h - r, h + r)]
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        wall = pymunk.Segment(space.static_body, a, b, r)
        wall.friction, wall.elasticity = params.contact_friction, params.elasticity
        space.add(wall)


def build_space(params: PokeParams, state: PokeState) -> World:
    """A fresh space with walls and one body per object of ``state``, set to ``state``."""
    space = pymunk.Space()
    space.gravity = (0.0, 0.0)
    space.collision_slop = params.collision_slop
    _add_walls(space, params)
    kind = np.asarray(state.kind, dtype=np.int64)
    half_size = np.asarray(state.half_size, dtype=np.float64)
    bodies = [_add_object(space, int(k), s, params) for k, s in zip(kind, half_size, strict=True)]
    world = World(space, bodies, kind.copy(), half_size.copy())
    set_state(world, state)
    return world


def get_state(world: World) -> PokeState:
    """Reads the objects' poses and velocities (float64, exact copies of pymunk's values)."""
    pose = np.array([(b.position.x, b.position.y, b.angle) for b in world.bodies], np.float64)
    velocity = np.array(
        [(b.velocity.x, b.velocity.y, b.angular_velocity) for b in world.bodies], np.float64
    )
    return PokeState(
        world.kind.copy(), world.half_size.copy(), pose.reshape(-1, 3), velocity.reshape(-1, 3)
    )


def set_state(world: World, state: PokeState) -> None:
    """Writes poses and velocities into the bodies without stepping the space.

    Raises:
        ValueError: the state's objects (count, kinds, sizes) differ from the world's, or a
            pose/velocity is not finite.
    """
    n = len(world.bodies)
    if not (
        np.array_equal(state.kind, world.kind) and np.array_equal(state.half_size, world.half_size)
    ):
        raise ValueError("state: its kind/half_size do not match the objects of this space")
    for name in ("pose", "velocity"):
        value = np.asarray(getattr(state, name))
        if value.shape != (n, 3) or not np.all(np.isfinite(value)):
            raise ValueError(f"state.{name}: expected finite ({n}, 3) array, got {value.shape}")
    for body, pose, velocity in zip(world.bodies, state.pose, state.velocity, strict=True):
        body.position = (float(pose[0]), float(pose[1]))
        body.angle = float(pose[2])
        body.velocity = (float(velocity[0]), float(velocity[1]))
        body.angular_velocity = float(velocity[2])
        world.space.reindex_shapes_for_body(body)


def copy_state(state: PokeState) -> PokeState:
    """A copy of ``state`` that shares no array with it."""
    return PokeState(*(np.array(x, copy=True) for x in state))


def check_action(action: np.ndarray, params: PokeParams) -> np.ndarray:
    """Validates a poke; returns it as a float64 (4,) array.

    Raises:
        ValueError: wrong shape, NaN/inf, or a length outside [0, max_poke_length].
    """
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (ACTION_DIM,):
        raise ValueError(f"action: expected shape (4,) [x, y, angle, length], got {action.shape}")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"action: must be finite, got {action}")
    if not 0.0 <= action[3] <= params.max_poke_length + 1e-6:
        raise ValueError(
            f"action[3] (length): expected in [0, {params.max_poke_length}] m, got {action[3]}"
        )
    return action


def poke(world: World, action: np.ndarray, params: PokeParams) -> None:
    """Drags a fingertip along the poke line, lifts it, and lets the objects settle.

    The fingertip's control body covers ``finger_speed * time_step`` per step (a shorter last
    step for the remainder); the tip follows it, pushing with at most ``finger_max_force``
    (:mod:`envs.poke.finger`).

    Args:
        world: the space to step (mutated).
        action: (4,) start x [m], start y [m], direction angle [rad], length [m].
        params: physical constants.
    """
    action = check_action(action, params)
    direction = np.array([math.cos(action[2]), math.sin(action[2])])
    step_length = params.finger_speed * params.time_step
    full_steps = int(action[3] // step_length)
    remainder = float(action[3] - full_steps * step_length)
    distances = [step_length] * full_steps + ([remainder] if remainder > 0 else [])
    velocities = [direction * distance / params.time_step for distance in distances]
    first = velocities[0] if velocities else np.zeros(2)
    fingertip = finger.add_finger(world.space, action[:2], first, params)
    for velocity in velocities:
        finger.drive(fingertip, velocity)
        world.space.step(params.time_step)
    finger.lift(world.space, fingertip)
    for _ in range(params.settle_steps):
        world.space.step(params.time_step)


def transition(params: PokeParams, state: PokeState, action: np.ndarray) -> PokeState:
    """The state after poking ``state`` with ``action`` (a pure function of its inputs)."""
    world = build_space(params, state)
    poke(world, action, params)
    return get_state(world)


def bounding_radius(kind: int, half_size: np.ndarray) -> float:
    """Radius of the smallest disk about the centre holding the shape [m] (box: half diagonal)."""
    return float(np.hypot(*half_size)) if kind == BOX else float(half_size[0])


def sample_state(
    rng: np.random.Generator, params: PokeParams, num_objects: int | None = None
) -> PokeState:
    """Random objects at rest, non-overlapping, inside the table.

    Args:
        rng: NumPy generator (the env's ``np_random``).
        params: ranges of counts and sizes.
        num_objects: fixed count; None draws it uniformly in [min_objects, max_objects].
    """
    if num_objects is None:
        num_objects = int(rng.integers(params.min_objects, params.max_objects + 1))
    if not 1 <= num_objects <= params.max_objects:
        raise ValueError(f"num_objects: expected 1..{params.max_objects}, got {num_objects}")
    low, high = params.object_half_size_range
    kind = rng.integers(0, 3, size=num_objects).astype(np.int64)
    half_size = rng.uniform(low, high, size=(num_objects, 2))
    half_size[kind != BOX, 1] = half_size[kind != BOX, 0]
    radii = np.array([bounding_radius(k, s) for k, s in zip(kind, half_size, strict=True)])
    pose = np.zeros((num_objects, 3))
    for i in range(num_objects):
        for _ in range(params.placement_attempts):
            margin = params.table_half_size - radii[i]
            xy = rng.uniform(-margin, margin, size=2)
            gaps = np.hypot(*(pose[:i, :2] - xy).T) - radii[:i] - radii[i]
            if np.all(gaps > 0.01):
                break
        else:
            raise RuntimeError("could not place the objects without overlap; shrink them")
        pose[i] = (xy[0], xy[1], rng.uniform(-np.pi, np.pi))
    return PokeState(kind, half_size, pose, np.zeros((num_objects, 3)))
