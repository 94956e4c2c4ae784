"""Physical and task constants of the block-tower world, with their units.

Units: lengths in block widths (the block is 1 x 1), so overhangs read directly in block widths;
mass [kg], time [s], gravity [block widths / s^2], angles [rad]. World frame: x to the right, y up,
the table's right edge at ``x = 0`` and its top at ``y = 0``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from envs.params_check import Rule, check_fields, field_error, non_negative, positive

BLOCK_COLOURS: tuple[tuple[int, int, int], ...] = (
    (220, 50, 47),  # level 0: red
    (60, 170, 70),  # level 1: green
    (38, 110, 210),  # level 2: blue
    (230, 180, 20),  # level 3: yellow
    (150, 80, 190),  # level 4: purple
    (20, 170, 170),  # level 5: teal
)
TABLE_COLOUR = (110, 110, 110)
BACKGROUND_COLOUR = (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class Params:
    """Constants of one tower world. Every length is in block widths."""

    block_size: float = 1.0
    """Side of each square block [block widths]; 1 by definition, kept to name the unit."""
    block_mass: float = 1.0
    """Mass of each block [kg]."""
    friction: float = 0.8
    """Coulomb friction coefficient of blocks and table [-]."""
    gravity: float = 9.81
    """Downward gravitational acceleration [block widths / s^2] (a 1 m block on Earth)."""
    table_width: float = 6.0
    """Table top spans ``x in [-table_width, 0]`` [block widths]."""
    table_height: float = 1.0
    """Drop from the table top to the floor, where fallen blocks land [block widths]."""
    time_step: float = 1.0 / 60.0
    """Physics step [s]."""
    solver_iterations: int = 20
    """pymunk constraint-solver iterations per step."""
    collision_slop: float = 1e-3
    """Allowed penetration [block widths]; pymunk's default 0.1 is far too large for unit blocks."""
    settle_speed: float = 0.01
    """A tower has settled once every block is slower than this [block widths / s or rad / s]."""
    max_settle_time: float = 3.0
    """Longest simulation after a placement before the tower is judged [s]."""
    min_settle_time: float = 0.5
    """Shortest simulation after a placement, so a slow topple gets time to show [s]."""
    fall_threshold: float = 0.25
    """A block that moved farther than this from where it was put has fallen [block widths]."""
    collapse_penalty: float = 1.0
    """Reward on the step the tower collapses is ``-collapse_penalty`` [block widths]."""
    n_blocks: int = 4
    """Blocks per overhang episode (one per level)."""
    max_offset: float = 1.0
    """Action bound: placement offsets lie in ``[-max_offset, max_offset]`` [block widths]."""
    view_left: float = -3.5
    """Left edge of the side-view image [block widths]."""
    view_bottom: float = -1.0
    """Bottom edge of the side-view image (the floor) [block widths]."""
    view_size: float = 6.0
    """Width and height of the square side view [block widths]."""
    image_size: int = 64
    """Side of the observation / dataset images [pixels]."""

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def overhang_limit(self) -> float:
        """Greatest overhang with ``n_blocks`` one per level: ``H_n / 2`` [block widths]."""
        return harmonic_limit(self.n_blocks) * self.block_size


def harmonic_limit(n: int) -> float:
    """Greatest overhang of ``n`` unit blocks one per level, ``H_n / 2`` (harmonic number)."""
    return 0.5 * math.fsum(1.0 / k for k in range(1, n + 1))


_POSITIVE_INTS = ("solver_iterations", "n_blocks", "image_size")
"""Integer fields; each must be an int >= 1 (pymunk aborts on 0 solver iterations)."""


_FLOAT_RULES: dict[str, Rule] = {
    **{
        name: ("> 0", positive)
        for name in (
            "block_size",
            "block_mass",
            "gravity",
            "table_width",
            "table_height",
            "time_step",
            "settle_speed",
            "max_settle_time",
            "fall_threshold",
            "max_offset",
            "view_size",
        )
    },
    # Chipmunk aborts the process on a negative friction or collision slop.
    **{
        name: (">= 0", non_negative)
        for name in ("friction", "collision_slop", "min_settle_time", "collapse_penalty")
    },
    **{name: ("of any sign", np.isfinite) for name in ("view_left", "view_bottom")},
}
"""Float fields: the allowed range, as the error message states it, and its check."""


def check_params(params: Params) -> Params:
    """Range-checks every field of ``params`` (``envs.params_check``) and returns it unchanged.

    Called by ``Params.__post_init__``, so no out-of-range params reach pymunk, whose C
    assertions (a negative friction, zero solver iterations) abort the whole process.

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """
    check_fields(params, {}, _POSITIVE_INTS, _FLOAT_RULES)
    if params.n_blocks > len(BLOCK_COLOURS):
        raise field_error(
            params, "n_blocks", f"an int in [1, {len(BLOCK_COLOURS)}] (one colour each)"
        )
    if params.min_settle_time > params.max_settle_time:
        raise field_error(
            params, "min_settle_time", f"<= max_settle_time ({params.max_settle_time}) [s]"
        )
    return params
