"""Constants of the poke task (``worldplan/Poke-v0``), each with its unit.

The world is a top-down table, SI-like and y up: positions in metres [m], angles in radians
[rad], time in seconds [s], masses in kilograms [kg]. The table is the square
``[-table_half_size, table_half_size]^2`` centred on the origin, bounded by walls.
"""

from __future__ import annotations

import dataclasses
import math

from envs.params_check import Rule, check_fields, field_error, non_negative, ordered, positive

SHAPE_KINDS = ("box", "disk", "triangle")
"""Object shape names, indexed by the ``kind`` integer of a state."""


@dataclasses.dataclass(frozen=True)
class PokeParams:
    """Fixed parameters of a poke run. Derived quantities are properties."""

    table_half_size: float = 0.4
    """Half the side of the square table [m]; walls stand just outside it."""
    min_objects: int = 1
    """Fewest objects placed at reset."""
    max_objects: int = 3
    """Most objects placed at reset (also the rows of the object observation)."""
    object_half_size_range: tuple[float, float] = (0.04, 0.07)
    """Object half extent (box half side, disk radius, triangle circumradius) [m]."""
    object_density: float = 20.0
    """Areal density of the objects [kg/m^2]."""
    table_friction: float = 0.4
    """Coulomb friction coefficient between object and table [-]."""
    gravity: float = 9.81
    """Gravity pressing objects onto the table, sets the friction force mu*m*g [m/s^2]."""
    contact_friction: float = 0.5
    """Friction coefficient between objects, the finger and the walls [-]."""
    elasticity: float = 0.0
    """Restitution of all contacts [-]."""
    finger_radius: float = 0.015
    """Radius of the round fingertip [m]."""
    finger_speed: float = 0.5
    """Speed of the finger along its line [m/s]."""
    finger_max_force: float = 20.0
    """Most force the finger pushes with [N]. Over 4x the friction of the three heaviest objects
    in a row (3 x 0.4 x 0.39 kg x 9.81 m/s^2 = 4.6 N), so the finger keeps its speed on the
    table; finite, so a wall stops an object the finger pins to it (envs.poke.finger)."""
    finger_mass: float = 0.5
    """Mass of the fingertip [kg], of the objects' order (0.04-0.39 kg)."""
    collision_slop: float = 1e-3
    """Overlap of two shapes pymunk leaves uncorrected [m]; its default 0.1 is far too large for
    4-7 cm objects (they could sink 10 cm into each other and into the walls)."""
    max_poke_length: float = 0.3
    """Longest poke the action allows [m]."""
    time_step: float = 0.01
    """Physics step [s]."""
    settle_time: float = 0.4
    """Simulated time after the finger is lifted, for objects to come to rest [s]."""
    image_size: int = 32
    """Side of the square top-down RGB observation [px]."""
    goal_tolerance: float = 0.04
    """Goal task: success when object 0 is this close to its goal [m]."""
    goal_distance_range: tuple[float, float] = (0.06, 0.2)
    """Goal task: distance of the goal from object 0's start, drawn uniformly [m]."""
    placement_attempts: int = 200
    """Rejection-sampling tries to place non-overlapping objects at reset."""

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def settle_steps(self) -> int:
        """Physics steps after the finger is lifted."""
        return int(math.ceil(self.settle_time / self.time_step))

    @property
    def pixels_per_metre(self) -> float:
        """Image scale of the observation [px/m]."""
        return self.image_size / (2 * self.table_half_size)


_POSITIVE_INTS = ("min_objects", "max_objects", "image_size", "placement_attempts")
"""Integer fields; each must be an int >= 1."""


_FLOAT_RULES: dict[str, Rule] = {
    **{
        name: ("> 0", positive)
        for name in (
            "table_half_size",
            "object_density",
            "finger_radius",
            "finger_speed",
            "finger_max_force",
            "finger_mass",
            "max_poke_length",
            "time_step",
            "goal_tolerance",
        )
    },
    # Chipmunk aborts the process on a negative friction or joint force (mu m g), or slop.
    **{
        name: (">= 0", non_negative)
        for name in ("table_friction", "gravity", "contact_friction", "collision_slop")
    },
    "settle_time": (">= 0", non_negative),
    "elasticity": ("in [0, 1]", lambda x: (x >= 0) & (x <= 1)),
    "object_half_size_range": ("0 < low <= high", ordered(positive)),
    "goal_distance_range": ("0 <= low <= high", ordered(non_negative)),
}
"""Float fields: the allowed range, as the error message states it, and its check."""


def check_params(params: PokeParams) -> PokeParams:
    """Range-checks every field of ``params`` (``envs.params_check``) and returns it unchanged.

    Called by ``PokeParams.__post_init__``, so no out-of-range params reach pymunk, whose C
    assertions (a negative friction force, a zero moment of inertia) abort the whole process.

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """
    check_fields(params, {}, _POSITIVE_INTS, _FLOAT_RULES)
    if params.min_objects > params.max_objects:
        raise field_error(params, "min_objects", f"an int <= max_objects ({params.max_objects})")
    if params.image_size < 8:
        raise field_error(params, "image_size", "an int >= 8 [px]")
    if not params.object_half_size_range[1] < params.table_half_size / 2:
        raise field_error(
            params,
            "object_half_size_range",
            f"high < table_half_size / 2 ({params.table_half_size / 2}), so objects fit",
        )
    return params
