"""The spaceship Gymnasium VectorEnv: N spaceships in one jitted step (``envs.jax_vector``)."""

from __future__ import annotations

from typing import Any

from envs.jax_vector import JaxVectorEnv
from envs.spaceship.env import make_params
from envs.spaceship.functional import make_jax
from envs.spaceship.params import SpaceshipParams
from envs.spaceship.spaces import check_action


class SpaceshipVectorEnv(JaxVectorEnv):
    """``num_envs`` spaceships (see :class:`envs.spaceship.env.SpaceshipEnv`) in one jitted step.

    Made by ``gymnasium.make_vec("worldplan/Spaceship-v0", num_envs=N,
    vectorization_mode="vector_entry_point")``. Autoreset is Gymnasium's next-step mode: the step
    after an episode ends resets that env (its action is ignored, reward 0, flags False). Seeds:
    ``reset(seed=s)`` seeds env i with ``s + i``, so env i replays ``SpaceshipEnv.reset(seed=s+i)``.
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
        )
