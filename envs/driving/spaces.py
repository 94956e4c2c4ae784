"""Gymnasium spaces of the driving task, shared by the single, vector and JAX envs.

``check_action`` (``envs.action_checks``) validates actions for the single and the vector env.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.action_checks import check_action
from envs.driving.core import obs_dim
from envs.driving.params import ACTION_MODES, OBS_MODES, DrivingParams


def action_space(params: DrivingParams) -> spaces.Space:
    """The action space of ``params.action_mode`` (see ``core.action_to_command``)."""
    if params.action_mode == "continuous":
        return spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    if params.action_mode == "discrete":
        return spaces.Discrete(params.num_discrete_actions)
    raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {params.action_mode!r}")


def observation_space(params: DrivingParams, obs_mode: str) -> spaces.Box:
    """The observation space for ``obs_mode`` "state" (``core.observe``) or "pixels" (RGB)."""
    if obs_mode == "state":
        low = np.full(obs_dim(params), -np.inf, np.float32)
        high = np.full(obs_dim(params), np.inf, np.float32)
        low[2], high[2] = 0.0, params.max_speed  # ego speed
        low[3], high[3] = -params.lane_width / 2, params.lane_width / 2  # lane offset
        return spaces.Box(low, high, dtype=np.float32)
    if obs_mode == "pixels":
        return spaces.Box(0, 255, shape=(params.pixel_rows, params.pixel_cols, 3), dtype=np.uint8)
    raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")


__all__ = ["action_space", "check_action", "observation_space"]
