"""The poking fingertip: a dynamic disk led along the poke line by a force-limited pivot.

This is pymunk's "mouse control" pattern: a kinematic control body moves exactly along the poke
line and a :class:`pymunk.PivotJoint` with ``max_force = finger_max_force`` drags the fingertip
after it. A kinematic fingertip, as before, has infinite mass and force, so an object caught
between it and a wall had to give way into the wall: 178 of 10,000 pokes aimed outward at
objects by a wall left a centre past the table edge (4 past 0.5 m, outside the observation
space then; a contrived one 0.613 m, ``tests/test_poke_walls.py``), and so did 28 of 10,000
random dataset pokes. With a finite force the wall contact wins and the finger stalls against
the pinned object: none of the same 20,000 pokes reached more than 2.3 mm into a wall.

The finger exists only inside one poke (:func:`envs.poke.physics.poke` adds and removes it), so
the table's state between pokes is still the objects' poses and velocities alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pymunk

from envs.poke.params import PokeParams

PIVOT_ERROR_BIAS = 0.0
"""Share of the finger's lag behind its path the pivot leaves uncorrected after 1 s [-].

pymunk's default (0.18%) corrects only 6% of the lag per 0.01 s step, so the finger trailed its
path after each impact; 0 corrects the whole lag each step, within ``finger_max_force``, so an
unobstructed finger follows its path like the kinematic one (on random dataset pokes, median
change of the outcome 1.0 mm against 1.5 mm with the default bias).
"""


@dataclasses.dataclass
class Finger:
    """The bodies of one fingertip in a space."""

    control: pymunk.Body
    """Kinematic body moving exactly along the poke line (no shape: it touches nothing)."""
    body: pymunk.Body
    """Dynamic fingertip body, mass ``finger_mass``, no rotation (infinite moment)."""
    tip: pymunk.Circle
    """The fingertip's disk, radius ``finger_radius``; it collides with objects and walls."""
    pivot: pymunk.PivotJoint
    """Pulls ``body`` onto ``control`` with at most ``finger_max_force``."""


def add_finger(
    space: pymunk.Space, start: np.ndarray, velocity: np.ndarray, params: PokeParams
) -> Finger:
    """Puts a fingertip down at ``start``, already moving with ``velocity``.

    Args:
        space: the table's space (mutated).
        start: (2,) fingertip centre [m], world frame.
        velocity: (2,) initial velocity of the fingertip and of its control body [m/s].
        params: finger radius, mass and force limit, contact friction and elasticity.
    """
    position, speed = (float(start[0]), float(start[1])), (float(velocity[0]), float(velocity[1]))
    control = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
    body = pymunk.Body(params.finger_mass, float("inf"))
    for moving in (control, body):
        moving.position, moving.velocity = position, speed
    tip = pymunk.Circle(body, params.finger_radius)
    tip.friction, tip.elasticity = params.contact_friction, params.elasticity
    pivot = pymunk.PivotJoint(control, body, (0.0, 0.0), (0.0, 0.0))
    pivot.max_force, pivot.error_bias = params.finger_max_force, PIVOT_ERROR_BIAS
    space.add(control, body, tip, pivot)
    return Finger(control, body, tip, pivot)


def drive(finger: Finger, velocity: np.ndarray) -> None:
    """Sets the control body's velocity (2,) [m/s] for the next step; the tip follows."""
    finger.control.velocity = (float(velocity[0]), float(velocity[1]))


def lift(space: pymunk.Space, finger: Finger) -> None:
    """Removes the finger from ``space`` (with its contacts: nothing of it carries over)."""
    space.remove(finger.control, finger.body, finger.tip, finger.pivot)
