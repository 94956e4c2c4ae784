"""Gymnasium spaces of the spaceship task, shared by the single, vector and JAX envs.

``check_action`` (``envs.action_checks``) validates actions for the single and the vector env.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.action_checks import check_action
from envs.spaceship.core import OBS_DIM
from envs.spaceship.params import ACTION_MODES, OBS_MODES, SpaceshipParams


def action_space(params: SpaceshipParams) -> spaces.Space:
    """The action space of ``params.action_mode`` (see ``core.action_to_thrust``)."""
    if params.action_mode == "continuous":
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    if params.action_mode == "discrete":
        return spaces.Discrete(params.num_discrete_actions)
    if params.action_mode == "hybrid":
        return spaces.Dict(
            {
                "fire": spaces.Discrete(2),
                "angle": spaces.Box(-np.pi, np.pi, shape=(1,), dtype=np.float32),
            }
        )
    raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {params.action_mode!r}")


def observation_space(params: SpaceshipParams, obs_mode: str) -> spaces.Box:
    """The observation space for ``obs_mode`` "state" (OBS_DIM floats) or "pixels" (RGB uint8)."""
    if obs_mode == "state":
        low = np.full(OBS_DIM, -np.inf, np.float32)
        high = np.full(OBS_DIM, np.inf, np.float32)
        low[10:], high[12] = 0.0, 1.0
        return spaces.Box(low, high, dtype=np.float32)
    if obs_mode == "pixels":
        size = params.pixel_size
        return spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8)
    raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")


__all__ = ["action_space", "check_action", "observation_space"]
