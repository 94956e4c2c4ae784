"""The driving task as pure JAX functions for a chosen observation mode (``envs.jax_env``)."""

from __future__ import annotations

from typing import Any

from envs.driving import core, pixels, spaces
from envs.driving.env import make_params
from envs.driving.params import OBS_MODES, DrivingParams
from envs.jax_env import JaxEnv


def reset_pixels(key: Any, params: DrivingParams) -> tuple[Any, core.DrivingState]:
    """:func:`core.reset` with a (pixel_rows, pixel_cols, 3) uint8 observation."""
    _, state = core.reset(key, params)
    return pixels.rasterize(state, params), state


def step_pixels(key: Any, state: core.DrivingState, action: Any, params: DrivingParams) -> tuple:
    """:func:`core.step` with a (pixel_rows, pixel_cols, 3) uint8 observation."""
    _, state, reward, terminated, truncated, info = core.step(key, state, action, params)
    return pixels.rasterize(state, params), state, reward, terminated, truncated, info


def make_jax(
    action_mode: str = "continuous",
    obs_mode: str = "state",
    params: DrivingParams | None = None,
    **overrides: Any,
) -> JaxEnv:
    """The driving :class:`JaxEnv` for an action mode and observation mode."""
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
    params = make_params(action_mode, params, **overrides)
    pixel = obs_mode == "pixels"
    return JaxEnv(
        reset=reset_pixels if pixel else core.reset,
        step=step_pixels if pixel else core.step,
        params=params,
        observation_space=spaces.observation_space(params, obs_mode),
        action_space=spaces.action_space(params),
    )
