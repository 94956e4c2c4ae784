"""The spaceship Gymnasium VectorEnv: N spaceships in one jitted step (``envs.jax_vector``)."""

from __future__ import annotations

from typing import Any

from gymnasium.vector import AutoresetMode

from envs.jax_vector import JaxVectorEnv
from envs.spaceship.env import make_params
from envs.spaceship.functional import make_jax
from envs.spaceship.params import SpaceshipParams
from envs.spaceship.spaces import check_action


class SpaceshipVectorEnv(JaxVectorEnv):
    """``num_envs`` spaceships (see :class:`envs.spaceship.env.SpaceshipEnv`) in one jitted step.

    Made by ``gymnasium.make_vec("worldplan/Spaceship-v0", num_envs=N,
    vectorization_mode="vector_entry_point")``. Autoreset: ``autoreset_mode=`` (a keyword of
    ``make_vec``) picks Gymnasium's ``NEXT_STEP`` (default: the step after an episode ends resets
    that env, its action ignored, reward 0, flags False), ``SAME_STEP`` (reset within the step
    that ends it; ``info["final_obs"]``, ``info["final_info"]``) or ``DISABLED`` (reset finished
    envs with ``reset(options={"reset_mask": mask})``), each as ``SyncVectorEnv`` over
    ``SpaceshipEnv`` does it (``envs.jax_vector.JaxVectorEnv``). Seeds: ``reset(seed=s)`` seeds
    env i with ``s + i``, so env i replays ``SpaceshipEnv.reset(seed=s+i)``.
    Time limit: ``max_episode_steps`` (registered as 200), shortened by a ``max_steps`` given
    explicitly (or a ``params`` object's), the step where ``gymnasium.make`` truncates the single
    env. Actions are checked by ``spaces.check_action``, as in the single env.
    """

    def __init__(
        self,
        num_envs: int,
        action_mode: str = "continuous",
        obs_mode: str = "state",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        params: SpaceshipParams | None = None,
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
