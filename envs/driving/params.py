"""Constants of the highway driving task (``worldplan/Driving-v0``), each with its unit.

The road is straight and runs along +x; y is lateral, up (to the left of a car driving along +x)
positive, with the right road edge at y = 0 and the left edge at y = num_lanes * lane_width.
Positions in metres [m], speeds [m/s], accelerations [m/s^2], angles [rad], time [s].
"""

from __future__ import annotations

import jax
import numpy as np
from flax import struct

from envs.params_check import Rule, check_fields, field_error, non_negative, ordered, positive

ACTION_MODES = ("continuous", "discrete")
OBS_MODES = ("state", "pixels")


@struct.dataclass
class DrivingParams:
    """Fixed parameters of a driving run. Changing any of them changes the task.

    Fields marked static are Python values that shape the computation (jit recompiles when they
    change); the others are pytree leaves and may be traced.

    Building the dataclass or calling ``params.replace(...)`` checks nothing: JAX rebuilds
    params pytrees with tracers, ``None`` or ``vmap`` axis numbers as leaves, which a check in
    ``__post_init__`` would refuse. The Gymnasium envs and ``envs.jax_env.make_jax_env`` check
    the params they are given; params you build or replace yourself for the pure core go
    through :func:`check_params` (``params = check_params(params.replace(dt=0.05))``), or a
    negative ``dt`` or braking runs on silently.
    """

    action_mode: str = struct.field(pytree_node=False, default="continuous")
    """How actions are given: "continuous" (acceleration, steering) or "discrete" (9 choices)."""
    num_lanes: int = struct.field(pytree_node=False, default=3)
    """Lanes of the highway (>= 2), all in the ego car's direction."""
    num_cars: int = struct.field(pytree_node=False, default=12)
    """Other cars around the ego car; they are recycled to keep the traffic density constant."""
    obs_cars: int = struct.field(pytree_node=False, default=6)
    """Nearest other cars reported in the state observation (<= num_cars)."""
    max_steps: int = struct.field(pytree_node=False, default=200)
    """Episode time limit [steps]: the JAX core, the single and the vector env truncate here."""
    pixel_rows: int = struct.field(pytree_node=False, default=40)
    """Pixel observation height, across the road [px]."""
    pixel_cols: int = struct.field(pytree_node=False, default=128)
    """Pixel observation width, along the road [px]."""
    dt: float = 0.1
    """Duration of one environment step [s]."""
    lane_width: float = 3.7
    """Width of one lane [m] (US interstate standard)."""
    car_length: float = 4.5
    """Length of every car, the ego car included [m]."""
    car_width: float = 1.8
    """Width of every car [m]."""
    wheelbase: float = 2.7
    """Ego car's axle distance in the kinematic bicycle model [m]."""
    max_accel: float = 3.0
    """Ego acceleration at a command of +1 [m/s^2]."""
    max_brake: float = 6.0
    """Ego deceleration at a command of -1 [m/s^2]."""
    max_steer: float = 0.1
    """Ego front-wheel angle at a steering command of +-1 [rad]; positive turns left (+y)."""
    max_speed: float = 40.0
    """The ego car's speed is clipped to [0, max_speed] [m/s]."""
    ego_speed_range: tuple[float, float] = (20.0, 28.0)
    """Ego start speed, drawn uniformly [m/s]."""
    desired_speed_range: tuple[float, float] = (20.0, 30.0)
    """Other cars' desired speeds, drawn uniformly per car [m/s]."""
    idm_accel: float = 1.5
    """IDM maximum acceleration a [m/s^2] (Treiber, Hennecke & Helbing 2000)."""
    idm_decel: float = 2.0
    """IDM comfortable deceleration b [m/s^2]."""
    idm_headway: float = 1.2
    """IDM safe time headway T [s]."""
    idm_min_gap: float = 2.0
    """IDM jam distance s0, bumper to bumper [m]."""
    idm_max_brake: float = 9.0
    """Other cars never brake harder than this [m/s^2]."""
    follow_width: float = 2.5
    """A car follows another whose centre is within this lateral distance of its own [m]."""
    lane_change_rate: float = 0.1
    """Lane changes attempted per car per second (at most one car attempts per step) [1/s]."""
    lane_change_safe_decel: float = 4.0
    """MOBIL safety: a lane change is made only if no car must brake harder than this [m/s^2]."""
    lateral_speed: float = 1.5
    """Other cars' lateral speed while changing lanes [m/s]."""
    view_behind: float = 60.0
    """Cars more than this far behind the ego car are recycled to the front [m]."""
    view_ahead: float = 140.0
    """Cars more than this far ahead of the ego car are recycled to the back [m]."""
    spawn_gap: float = 30.0
    """A recycled car enters only where its lane is free this far around it [m]."""
    pixel_scale: float = 0.5
    """Size of one observation pixel [m]."""
    pixel_behind: float = 20.0
    """The pixel view starts this far behind the ego car's centre [m]."""
    progress_reward: float = 0.1
    """Reward per metre driven along the road [1/m]."""
    proximity_cost: float = 1.0
    """Cost per step at full proximity to another car (see ``task.proximity``) [-]."""
    lane_cost: float = 0.1
    """Cost per step when centred on a lane marking (quadratic in the offset) [-]."""
    crash_penalty: float = 10.0
    """Penalty for hitting another car (ends the episode) [-]."""
    off_road_penalty: float = 10.0
    """Penalty for leaving the road (ends the episode) [-]."""

    @property
    def num_discrete_actions(self) -> int:
        """Discrete mode: coast, the 3 x 3 grid of brake/coast/accelerate x left/straight/right."""
        return 9

    @property
    def road_width(self) -> float:
        """Total width of the road [m]."""
        return self.num_lanes * self.lane_width


_POSITIVE_INTS = ("num_lanes", "num_cars", "obs_cars", "max_steps", "pixel_rows", "pixel_cols")
"""Static integer fields; each must be an int >= 1."""


_FLOAT_RULES: dict[str, Rule] = {
    **{
        name: ("> 0", positive)
        for name in (
            "dt",
            "lane_width",
            "car_length",
            "car_width",
            "wheelbase",
            "max_speed",
            "idm_accel",
            "idm_decel",
            "idm_headway",
            "idm_max_brake",
            "follow_width",
            "lane_change_safe_decel",
            "lateral_speed",
            "view_behind",
            "view_ahead",
            "pixel_scale",
        )
    },
    **{
        name: (">= 0", non_negative)
        for name in (
            "max_accel",
            "max_brake",
            "idm_min_gap",
            "lane_change_rate",
            "spawn_gap",
            "pixel_behind",
            "progress_reward",
            "proximity_cost",
            "lane_cost",
            "crash_penalty",
            "off_road_penalty",
        )
    },
    "max_steer": ("in [0, 0.5]", lambda x: (x >= 0) & (x <= 0.5)),
    "ego_speed_range": ("0 <= low <= high", ordered(non_negative)),
    "desired_speed_range": ("0 < low <= high", ordered(positive)),
}
"""Pytree-leaf fields: the allowed range, as the error message states it, and its check."""


def check_params(params: DrivingParams) -> DrivingParams:
    """Range-checks every field of ``params`` (``envs.params_check``) and returns it unchanged.

    Then the fields that must agree with each other (:func:`_check_consistent`).

    Raises:
        ValueError: naming the first field out of range, its value and the allowed range.
    """
    check_fields(params, {"action_mode": ACTION_MODES}, _POSITIVE_INTS, _FLOAT_RULES)
    if params.num_lanes < 2:
        raise field_error(params, "num_lanes", "an int >= 2 (the ego car starts clear of traffic)")
    if params.obs_cars > params.num_cars:
        raise field_error(params, "obs_cars", f"an int <= num_cars ({params.num_cars})")
    _check_consistent(params)
    return params


def _concrete(params: DrivingParams, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The named leaves as float64 arrays, or None when any is traced (checked outside jit)."""
    values = [getattr(params, name) for name in names]
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values)):
        return None
    return {name: np.asarray(value, np.float64) for name, value in zip(names, values, strict=True)}


def _check_consistent(params: DrivingParams) -> None:
    """Checks the fields that bound each other; array leaves element by element.

    - ``ego_speed_range`` high <= ``max_speed``: the start speed is observed in [0, max_speed].
    - ``car_width`` <= ``lane_width``: the ego car starts on the road, clear of cars alongside.
    - ``num_cars`` fits the window: ``core.initial_state`` puts one car per slot of
      ``(view_behind + view_ahead) / num_cars`` metres and keeps neighbouring slots' cars
      ``idm_min_gap`` apart bumper to bumper, which needs slots of ``car_length + idm_min_gap``;
      shorter ones start cars too close for IDM, then overlapping.
    """
    names = ("max_speed", "ego_speed_range", "car_width", "lane_width")
    names += ("view_behind", "view_ahead", "car_length", "idm_min_gap")
    x = _concrete(params, names)
    if x is None:
        return
    if not np.all(x["ego_speed_range"][..., 1] <= x["max_speed"]):
        allowed = f"high <= max_speed ({params.max_speed!r}), the observed speed's bound"
        raise field_error(params, "ego_speed_range", allowed)
    if not np.all(x["car_width"] <= x["lane_width"]):
        raise field_error(params, "car_width", f"<= lane_width ({params.lane_width!r})")
    window = x["view_behind"] + x["view_ahead"]
    slot = x["car_length"] + x["idm_min_gap"]
    if not np.all(params.num_cars * slot <= window):
        capacity = np.min(window / slot)
        allowed = (
            f"at most (view_behind + view_ahead) / (car_length + idm_min_gap) = "
            f"({params.view_behind!r} + {params.view_ahead!r}) / ({params.car_length!r} + "
            f"{params.idm_min_gap!r}) = {capacity:.4g}, one car per start slot"
        )
        raise field_error(params, "num_cars", allowed)
