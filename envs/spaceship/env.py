"""The Gymnasium single environment: a thin NumPy shell over ``core.py``."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from envs import host_random
from envs.core_env import CoreEnv, state_fields
from envs.params_check import build_params
from envs.spaceship import core, pixels, spaces
from envs.spaceship.params import ACTION_MODES, OBS_MODES, SpaceshipParams, check_params


def make_params(
    action_mode: str = "continuous", params: SpaceshipParams | None = None, **overrides: Any
) -> SpaceshipParams:
    """Builds :class:`SpaceshipParams` from a base (default: the ``-v0`` values) and overrides.

    Raises:
        ValueError: an unknown action mode, or a field out of range (:func:`check_params`).
        TypeError: an override that is not a SpaceshipParams field.
    """
    return build_params(SpaceshipParams, check_params, ACTION_MODES, action_mode, params, overrides)


def state_shapes(params: SpaceshipParams) -> dict[str, tuple[tuple[int, ...], type]]:
    """Each :class:`core.SpaceshipState` field's shape and dtype for ``params``."""
    return {
        name: (
            (params.num_targets, 2) if shape is None else shape,
            np.int32 if name in ("target_index", "time") else np.float32,
        )
        for name, shape in core.STATE_SHAPES.items()
    }


THRUST_SLACK = 1e-5
"""Float32 rounding allowed on a thrust command's norm: ``cos^2 + sin^2`` may exceed 1 by ulps."""


def check_state(state: Any, params: SpaceshipParams) -> core.SpaceshipState:
    """Validates a user-given state (a SpaceshipState or a dict of its fields).

    Besides shapes and finite values (``envs.core_env.state_fields``), the fields must be
    physically possible and inside the observation space: a planet radius > 0, a surface gravity
    >= 0, a target index that is an integer in [0, num_targets], a time step count that is an
    integer >= 0, and a thrust command of norm <= 1.

    Returns:
        The state as a SpaceshipState with NumPy leaves (float32, int32 counters).

    Raises:
        ValueError: naming the first missing, misshapen, non-finite or out-of-range field and
            the valid range.
    """
    n = params.num_targets
    rules = {
        "planet_radius": ("> 0 [m]", lambda x: x > 0),
        "surface_gravity": (">= 0 [m/s^2]", lambda x: x >= 0),
        "target_index": (f"in [0, {n}] (num_targets: all visited)", lambda x: (x >= 0) & (x <= n)),
        "time": (">= 0 [steps]", lambda x: x >= 0),
        "thrust": ("a command of norm <= 1", lambda x: np.hypot(*x) <= 1 + THRUST_SLACK),
    }
    fields = state_fields(state, core.SpaceshipState, state_shapes(params), rules)
    return core.SpaceshipState(**fields)


class SpaceshipEnv(CoreEnv):
    """Spaceship gravity control (``worldplan/Spaceship-v0``).

    ## Description
    A ship flies around a planet whose gravity pulls it in (inverse square, Henaff, Whitney & LeCun,
    arXiv:1705.07177). Its thruster can point in any direction. It must visit ``num_targets``
    targets in order without touching the planet or leaving the square arena, spending little fuel.
    Physics: semi-implicit Euler with ``substeps`` per step of ``dt`` seconds (see ``dynamics.py``).

    ## Action Space
    Chosen with ``action_mode``; the thrust acceleration is ``max_thrust * u`` (4 m/s^2 at |u| = 1).

    | mode       | space                          | meaning                            | unit |
    |------------|--------------------------------|------------------------------------|------|
    | continuous | Box(-1, 1, (2,))               | thrust command u, clipped, |u|<=1   | -    |
    | discrete   | Discrete(9)                    | 0 no-op; k: full thrust, (k-1)*45  | deg  |
    | hybrid     | Dict(fire=Discrete(2),         | fire or not;                       | -    |
    |            |      angle=Box(-pi, pi, (1,))) | thruster angle (periodic)          | rad  |

    A wrong shape, NaN/inf, a discrete value out of range or a ``fire`` other than exactly 0 or 1
    raises ValueError (``spaces.check_action``, shared with the vector env).

    ## Observation Space
    ``obs_mode="state"``: Box (13,) float32:

    | idx | observation                         | unit  |
    |-----|-------------------------------------|-------|
    | 0-1 | ship position                       | m     |
    | 2-3 | ship velocity                       | m/s   |
    | 4-5 | planet centre - ship position       | m     |
    | 6-7 | current target - ship position      | m     |
    | 8-9 | next target - ship position         | m     |
    | 10  | planet radius                       | m     |
    | 11  | planet surface gravity              | m/s^2 |
    | 12  | fraction of targets left            | -     |

    ``obs_mode="pixels"``: Box(0, 255, (64, 64, 3), uint8), a top-down frame of the arena.

    ## Rewards
    Per step: +1 per metre of progress towards the current target, +10 on reaching it,
    -0.05 |u|^2 fuel, -50 on crashing into the planet, -50 on leaving the arena (``task.py``).

    ## Starting State
    Planet radius U(1, 2) m, surface gravity U(2, 4) m/s^2, centre U(-1, 1)^2 m. Ship 2-5 m above
    the surface on a near-circular orbit (speed noise +-20%, random direction). Three targets
    1.5-6 m above the surface at random bearings. ``reset(options={"state": s})`` starts from any
    valid state (``check_state`` lists the ranges).

    ## Episode End
    Terminated: crash, leaving the arena [-10, 10]^2 m, or all targets visited.
    Truncated: by Gymnasium's TimeLimit (``max_episode_steps``, registered as 200 steps = 20 s),
    and at step ``max_steps`` when it is given (a ``max_steps=`` override or a ``params``
    object): the episode ends at the smaller of the two, flagged once, as in the vector env.

    ## Arguments
    ``gymnasium.make("worldplan/Spaceship-v0", action_mode="continuous", obs_mode="state",
    render_mode=None, params=None, **param_overrides)``; overrides are SpaceshipParams fields,
    range-checked (ValueError naming the field).

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
        params: SpaceshipParams | None = None,
        **param_overrides: Any,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        own_limit = "max_steps" in param_overrides or params is not None
        super().__init__(
            make_params(action_mode, params, **param_overrides), obs_mode, render_mode, own_limit
        )
        self._trail: collections.deque = collections.deque(maxlen=300)

    def _start_state(self, reset_key: np.ndarray) -> core.SpaceshipState:
        draws = host_random.uniforms(reset_key, core.reset_draws(self.params))
        return core.as_numpy(core.initial_state(draws, self.params)[1])

    def _checked_state(self, state: Any) -> core.SpaceshipState:
        return check_state(state, self.params)

    def _on_new_state(self, reset: bool) -> None:
        if reset:
            self._trail.clear()
        if reset or self.render_mode is not None:  # only a rendering env draws the trail
            self._trail.append(self._state.position.copy())

    def _make_renderer(self) -> Any:
        from envs.spaceship.render import Renderer

        return Renderer(self.render_mode, self.metadata["render_fps"])

    def _draw(self) -> np.ndarray | None:
        return self._renderer.draw(self._state, self.params, list(self._trail), self._return)
