"""The driving Gymnasium VectorEnv: N highways in one jitted step (``envs.jax_vector``)."""

from __future__ import annotations

from typing import Any

from gymnasium.vector import AutoresetMode

from envs.driving.env import make_params
from envs.driving.functional import make_jax
from envs.driving.params import DrivingParams
from envs.driving.spaces import check_action
from envs.jax_vector import JaxVectorEnv


class DrivingVectorEnv(JaxVectorEnv):
    """``num_envs`` highways (see :class:`envs.driving.env.DrivingEnv`) in one jitted step.

    Made by ``gymnasium.make_vec("worldplan/Driving-v0", num_envs=N,
    vectorization_mode="vector_entry_point")``. ``autoreset_mode=`` (a keyword of ``make_vec``)
    picks Gymnasium's ``NEXT_STEP`` (default), ``SAME_STEP`` or ``DISABLED`` autoreset, each as
    ``SyncVectorEnv`` over ``DrivingEnv`` does it, and ``reset(options={"reset_mask": mask})``
    resets only the masked envs (``envs.jax_vector.JaxVectorEnv``). ``reset(seed=s)`` seeds env
    i with ``s + i``, so env i replays ``DrivingEnv.reset(seed=s+i)``, traffic included (its
    randomness is in the state). Time limit and action checks as in ``envs.jax_vector``.
    """

    def __init__(
        self,
        num_envs: int,
        action_mode: str = "continuous",
        obs_mode: str = "state",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        params: DrivingParams | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **param_overrides: Any,
    ) -> None:
        super().__init__(
            num_envs,
            make_params,
            make_jax,
            check_action,
            action_mode,
            obs_mode,
            max_episode_steps,
            render_mode,
            params,
            param_overrides,
            autoreset_mode,
        )
