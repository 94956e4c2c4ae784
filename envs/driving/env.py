"""The Gymnasium single environment: a thin NumPy shell over ``core.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.core_env import CoreEnv, state_fields
from envs.driving import core, pixels, spaces
from envs.driving.params import ACTION_MODES, OBS_MODES, DrivingParams, check_params
from envs.params_check import build_params


def make_params(
    action_mode: str = "continuous", params: DrivingParams | None = None, **overrides: Any
) -> DrivingParams:
    """Builds :class:`DrivingParams` from a base (default: the ``-v0`` values) and overrides.

    Raises:
        ValueError: an unknown action mode, or a field out of range (:func:`check_params`).
        TypeError: an override that is not a DrivingParams field.
    """
    return build_params(DrivingParams, check_params, ACTION_MODES, action_mode, params, overrides)


def check_state(state: Any, params: DrivingParams) -> core.DrivingState:
    """Validates a user-given state (a DrivingState or a dict of its fields).

    Besides shapes and finite values (``envs.core_env.state_fields``), the fields must be
    physically possible and inside the observation space: an ego speed in [0, max_speed], other
    cars' speeds >= 0 and desired speeds > 0 (IDM divides by them), lanes that are integers in
    [0, num_lanes), a key of integers in [0, 2**32) and a time step count that is an integer >= 0.

    Returns:
        The state as a DrivingState with NumPy leaves of the documented dtypes.

    Raises:
        ValueError: naming the first missing, misshapen, non-finite or out-of-range field and
            the valid range.
    """
    lanes = params.num_lanes
    rules = {
        "ego_speed": (
            f"in [0, {params.max_speed}] (max_speed) [m/s]",
            lambda x: (x >= 0) & (x <= np.float32(params.max_speed)),
        ),
        "car_speed": (">= 0 [m/s]", lambda x: x >= 0),
        "car_desired_speed": ("> 0 [m/s]", lambda x: x > 0),
        "car_lane": (f"in [0, {lanes}) (num_lanes)", lambda x: (x >= 0) & (x < lanes)),
        "key": ("in [0, 2**32) (a raw uint32 threefry key)", lambda x: x >= 0),
        "time": (">= 0 [steps]", lambda x: x >= 0),
    }
    fields = state_fields(state, core.DrivingState, core.state_shapes(params), rules)
    return core.DrivingState(**fields)


class DrivingEnv(CoreEnv):
    """Highway driving in dense traffic (``worldplan/Driving-v0``), seen from above.

    ## Description
    The ego car drives along a straight highway of ``num_lanes`` lanes among ``num_cars`` other
    cars, as in Henaff, Canziani & LeCun's dense-traffic setting (ICLR 2019). The other cars follow
    the Intelligent Driver Model and change lanes at random when it is safe (MOBIL's safety
    criterion), so their future is uncertain: the task for prediction under uncertainty (EEN).
    They react to the ego car. Cars that fall out of the window [-60 m, +140 m] around the ego car
    re-enter at its other end. The ego car is a kinematic bicycle (``dynamics.py``).

    ## Action Space
    | mode       | space            | meaning                                           | unit |
    |------------|------------------|---------------------------------------------------|------|
    | continuous | Box(-1, 1, (2,)) | 0: throttle (+1: 3 m/s^2) / brake (-1: 6 m/s^2)    | -    |
    |            |                  | 1: steering (+-1: front wheels at +-0.1 rad, + left) | -    |
    | discrete   | Discrete(9)      | 0 coast, 1 accelerate, 2 brake, 3 left, 4 right,   | -    |
    |            |                  | 5-8 accelerate/brake x left/right; full throttle   |      |
    |            |                  | and brake, half steering (core.DISCRETE_ACTIONS)   |      |

    Continuous values are clipped to [-1, 1]; a wrong shape, NaN/inf or a discrete value out of
    range raises ValueError (``envs.action_checks``, shared with the vector env).

    ## Observation Space
    ``obs_mode="state"``: Box (4 + 3 * obs_cars,) float32 (22 by default):

    | idx  | observation                                     | unit |
    |------|-------------------------------------------------|------|
    | 0    | ego lateral position from the road centre line  | m    |
    | 1    | ego heading (0 along the road, + left)          | rad  |
    | 2    | ego speed                                       | m/s  |
    | 3    | ego offset from the nearest lane centre         | m    |
    | 4+3k | k-th nearest car: x - ego x                     | m    |
    | 5+3k | k-th nearest car: y - ego y                     | m    |
    | 6+3k | k-th nearest car: speed - ego speed along x     | m/s  |

    ``obs_mode="pixels"``: Box(0, 255, (40, 128, 3), uint8), a top-down view centred on the ego
    car, 0.5 m per pixel, the road running left to right, 20 m behind to 44 m ahead: grass, road,
    lane markings, other cars (red) and the ego car (blue), as in the paper's cost maps.

    ## Rewards
    Per step: +0.1 per metre driven along the road, -1 x proximity to the nearest car (0 far,
    1 touching; ``task.proximity``), -0.1 x (offset from the lane centre / half a lane)^2, -10 on
    hitting a car, -10 on leaving the road.

    ## Starting State
    The ego car at x = 0 in the centre of a random lane at 20-28 m/s; the other cars spread over
    the window at their desired speeds (20-30 m/s), none in the ego's lane within 24 m of it.
    ``reset(options={"state": s})`` starts from any valid state (``get_state()`` returns one;
    ``check_state`` lists the ranges).

    ## Episode End
    Terminated: a crash (the ego car's bounding box overlaps a car) or any part of the ego car off
    the road. Truncated: by Gymnasium's TimeLimit (``max_episode_steps``, registered as 200 steps
    = 20 s), and at step ``max_steps`` when it is given (an override or a ``params`` object).

    ## Arguments
    ``gymnasium.make("worldplan/Driving-v0", action_mode="continuous", obs_mode="state",
    render_mode=None, params=None, **param_overrides)``; overrides are DrivingParams fields,
    range-checked and checked against each other (ValueError naming the field): the start
    speeds within ``max_speed``, the cars within a lane, ``num_cars`` placeable in the window.

    ## Version History
    - v0: initial release.
    """

    core = core
    pixels = pixels
    spaces = spaces

    def __init__(
        self,
        action_mode: str = "continuous",
        obs_mode: str = "state",
        render_mode: str | None = None,
        params: DrivingParams | None = None,
        **param_overrides: Any,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        own_limit = "max_steps" in param_overrides or params is not None
        super().__init__(
            make_params(action_mode, params, **param_overrides), obs_mode, render_mode, own_limit
        )

    def _start_state(self, reset_key: np.ndarray) -> core.DrivingState:
        return core.reset(reset_key, self.params)[1]

    def _checked_state(self, state: Any) -> core.DrivingState:
        return check_state(state, self.params)

    def _make_renderer(self) -> Any:
        from envs.driving.render import Renderer

        return Renderer(self.render_mode, self.metadata["render_fps"])

    def _draw(self) -> np.ndarray | None:
        return self._renderer.draw(self._state, self.params, self._return)
