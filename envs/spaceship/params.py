"""Constants of the spaceship task (``worldplan/Spaceship-v0``), each with its unit.

The world is 2D, SI-like and y up: positions in metres [m], velocities in [m/s], accelerations in
[m/s^2], angles in radians, time in seconds [s]. The planet's gravitational parameter is derived
from its surface gravity and radius (``mu = g_surface * radius**2``) and is never stored.
"""

from __future__ import annotations

from flax import struct

from envs.params_check import Rule, check_fields, non_negative, ordered, positive

ACTION_MODES = ("continuous", "discrete", "hybrid")
OBS_MODES = ("state", "pixels")


@struct.dataclass
class SpaceshipParams:
    """Fixed parameters of a spaceship run. Changing any of them changes the task.

    Fields marked static are Python values that shape the computation (jit recompiles when they
    change); the others are pytree leaves and may be traced.

    Building the dataclass or calling ``params.replace(...)`` checks nothing: JAX rebuilds
    params pytrees with tracers, ``None`` or ``vmap`` axis numbers as leaves, which a check in
    ``__post_init__`` would refuse. The Gymnasium envs and ``envs.jax_env.make_jax_env`` check
    the params they are given; params you build or replace yourself for the pure core go
    through :func:`check_params` (``params = check_params(params.replace(dt=0.05))``), or a
    negative ``dt`` or thrust runs on silently.
    """

    action_mode: str = struct.field(pytree_node=False, default="continuous")
    """How actions are given: "continuous" (thrust vector), "discrete" (9 choices), "hybrid"."""
    num_targets: int = struct.field(pytree_node=False, default=3)
    """Targets to visit, in order, per episode."""
    substeps: int = struct.field(pytree_node=False, default=4)
    """Semi-implicit Euler substeps per environment step."""
    max_steps: int = struct.field(pytree_node=False, default=200)
    """Episode time limit [steps]: the JAX core, the single and the vector env truncate here."""
    pixel_size: int = struct.field(pytree_node=False, default=64)
    """Side of the square RGB observation in pixel mode [px]."""
    dt: float = 0.1
    """Duration of one environment step [s]."""
    arena_half_width: float = 10.0
    """The arena is the square [-w, w]^2 [m]; leaving it ends the episode."""
    planet_radius_range: tuple[float, float] = (1.0, 2.0)
    """Planet radius, drawn uniformly per episode [m]."""
    surface_gravity_range: tuple[float, float] = (2.0, 4.0)
    """Gravity at the planet's surface, drawn uniformly per episode [m/s^2]."""
    planet_offset: float = 1.0
    """Planet centre drawn uniformly in [-planet_offset, planet_offset]^2 [m]."""
    max_thrust: float = 4.0
    """Thruster acceleration at full command |u| = 1 [m/s^2]."""
    start_altitude_range: tuple[float, float] = (2.0, 5.0)
    """Ship start: height above the planet's surface [m], on a near-circular orbit."""
    start_speed_noise: float = 0.2
    """Relative noise on the start speed: v = v_circular * (1 + U(-n, n)) [-]."""
    target_altitude_range: tuple[float, float] = (1.5, 6.0)
    """Targets: height above the surface, at a uniformly random bearing [m]."""
    target_tolerance: float = 0.75
    """A target counts as reached within this distance of the ship [m]."""
    target_bonus: float = 10.0
    """Reward for reaching a target [-]."""
    progress_scale: float = 1.0
    """Reward per metre of progress towards the current target [1/m]."""
    fuel_cost: float = 0.05
    """Cost per step of a thrust command u: fuel_cost * |u|^2 [-]."""
    crash_penalty: float = 50.0
    """Penalty for touching the planet (ends the episode) [-]."""
    escape_penalty: float = 50.0
    """Penalty for leaving the arena (ends the episode) [-]."""

    @property
    def num_discrete_actions(self) -> int:
        """Discrete mode: no-op plus 8 thrust directions (0, 45, ..., 315 degrees)."""
        return 9


_POSITIVE_INTS = ("num_targets", "substeps", "max_steps", "pixel_size")
"""Static integer fields; each must be an int >= 1."""


_FLOAT_RULES: dict[str, Rule] = {
    "dt": ("> 0", positive),
    "arena_half_width": ("> 0", positive),
    "planet_radius_range": ("0 < low <= high", ordered(positive)),
    "surface_gravity_range": ("0 <= low <= high", ordered(non_negative)),
    "planet_offset": (">= 0", non_negative),
    "max_thrust": (">= 0", non_negative),
    "start_altitude_range": ("0 <= low <= high", ordered(non_negative)),
    "start_speed_noise": ("in [0, 1]", lambda x: (x >= 0) & (x <= 1)),
    "target_altitude_range": ("0 <= low <= high", ordered(non_negative)),
    "target_tolerance": ("> 0", positive),
    "target_bonus": (">= 0", non_negative),
    "progress_scale": (">= 0", non_negative),
    "fuel_cost": (">= 0", non_negative),
    "crash_penalty": (">= 0", non_negative),
    "escape_penalty": (">= 0", non_negative),
}
"""Pytree-leaf fields: the allowed range, as the error message states it, and its check."""


def check_params(params: SpaceshipParams) -> SpaceshipParams:
    """Range-checks every field of ``params`` (``envs.params_check``) and returns it unchanged.

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """
    check_fields(params, {"action_mode": ACTION_MODES}, _POSITIVE_INTS, _FLOAT_RULES)
    return params
