"""Constants of the spaceship task (``worldplan/Spaceship-v0``), each with its unit.

The world is 2D, SI-like and y up: positions in metres [m], velocities in [m/s], accelerations in
[m/s^2], angles in radians, time in seconds [s]. The planet's gravitational parameter is derived
from its surface gravity and radius (``mu = g_surface * radius**2``) and is never stored.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from flax import struct

ACTION_MODES = ("continuous", "discrete", "hybrid")
OBS_MODES = ("state", "pixels")


@struct.dataclass
class SpaceshipParams:
    """Fixed parameters of a spaceship run. Changing any of them changes the task.

    Fields marked static are Python values that shape the computation (jit recompiles when they
    change); the others are pytree leaves and may be traced.
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


def _ordered(low_ok: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """The check of a (low, high) range: ``low_ok(low)`` and ``low <= high``."""
    return lambda pair: low_ok(pair[..., 0]) & (pair[..., 0] <= pair[..., 1])


_FLOAT_RULES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "dt": ("> 0", lambda x: x > 0),
    "arena_half_width": ("> 0", lambda x: x > 0),
    "planet_radius_range": ("0 < low <= high", _ordered(lambda low: low > 0)),
    "surface_gravity_range": ("0 <= low <= high", _ordered(lambda low: low >= 0)),
    "planet_offset": (">= 0", lambda x: x >= 0),
    "max_thrust": (">= 0", lambda x: x >= 0),
    "start_altitude_range": ("0 <= low <= high", _ordered(lambda low: low >= 0)),
    "start_speed_noise": ("in [0, 1]", lambda x: (x >= 0) & (x <= 1)),
    "target_altitude_range": ("0 <= low <= high", _ordered(lambda low: low >= 0)),
    "target_tolerance": ("> 0", lambda x: x > 0),
    "target_bonus": (">= 0", lambda x: x >= 0),
    "progress_scale": (">= 0", lambda x: x >= 0),
    "fuel_cost": (">= 0", lambda x: x >= 0),
    "crash_penalty": (">= 0", lambda x: x >= 0),
    "escape_penalty": (">= 0", lambda x: x >= 0),
}
"""Pytree-leaf fields: the allowed range, as the error message states it, and its check."""


def check_params(params: SpaceshipParams) -> SpaceshipParams:
    """Range-checks every field of ``params`` and returns it unchanged.

    Called where params come from users (``env.make_params``), not in ``__post_init__``: JAX
    rebuilds this pytree with ``None``, tracers or in_axes numbers as leaves (``tree_map``,
    ``jit``, ``vmap``), which such a check would reject. Traced leaves are skipped; array leaves
    (params batched for ``vmap``) are checked element by element.

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """

    def error(name: str, allowed: str) -> ValueError:
        value = getattr(params, name)
        return ValueError(f"SpaceshipParams.{name}={value!r} is out of range: expected {allowed}")

    if params.action_mode not in ACTION_MODES:
        raise error("action_mode", f"one of {ACTION_MODES}")
    for name in _POSITIVE_INTS:
        value = getattr(params, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise error(name, "an int >= 1")
    for name, (rule, ok) in _FLOAT_RULES.items():
        value = getattr(params, name)
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value)):
            continue
        is_range = name.endswith("_range")
        allowed = (
            f"a finite (low, high) pair with {rule}" if is_range else f"a finite number {rule}"
        )
        try:
            x = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise error(name, allowed) from None
        if (is_range and x.shape[-1:] != (2,)) or not np.all(np.isfinite(x) & ok(x)):
            raise error(name, allowed)
    return params
