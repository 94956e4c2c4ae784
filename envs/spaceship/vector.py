"""The Gymnasium VectorEnv: N spaceships stepped in one jitted call, their states kept on device."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.spaceship.env import make_params
from envs.spaceship.functional import make_jax
from envs.spaceship.params import SpaceshipParams
from envs.spaceship.spaces import check_action


def _where(mask: jax.Array, a: Any, b: Any) -> Any:
    """Per-env select between two batched pytrees; mask (N,) bool."""

    def pick(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y)

    return jax.tree_util.tree_map(pick, a, b)


def _batched_reset(reset_fn, keys: jax.Array, params: SpaceshipParams):
    """Splits each env's key (N, 2) and resets every env: ``(keys, obs, states)``."""
    split = jax.vmap(jax.random.split)(keys)
    obs, states = jax.vmap(reset_fn, in_axes=(0, None))(split[:, 1], params)
    return split[:, 0], obs, states


def _batched_step(reset_fn, step_fn, keys, states, actions, needs_reset, params):
    """Steps every env, resetting instead those whose episode ended at the previous call.

    This is Gymnasium's next-step autoreset: a resetting env's reward is 0 and its flags False.
    """
    new_keys, reset_obs, reset_states = _batched_reset(reset_fn, keys, params)
    obs, next_states, rewards, terminated, truncated, info = jax.vmap(
        step_fn, in_axes=(None, 0, 0, None)
    )(None, states, actions, params)
    obs = _where(needs_reset, reset_obs, obs)
    states = _where(needs_reset, reset_states, next_states)
    keys = _where(needs_reset, new_keys, keys)
    zero = jnp.zeros_like
    rewards, terminated, truncated, info = _where(
        needs_reset,
        (zero(rewards), zero(terminated), zero(truncated), jax.tree_util.tree_map(zero, info)),
        (rewards, terminated, truncated, info),
    )
    return keys, obs, states, rewards, terminated, truncated, terminated | truncated, info


_jit_reset = jax.jit(_batched_reset, static_argnums=0)
_jit_step = jax.jit(_batched_step, static_argnums=(0, 1))


class SpaceshipVectorEnv(VectorEnv):
    """``num_envs`` spaceships (see :class:`envs.spaceship.env.SpaceshipEnv`) in one jitted step.

    Made by ``gymnasium.make_vec("worldplan/Spaceship-v0", num_envs=N,
    vectorization_mode="vector_entry_point")``. Autoreset is Gymnasium's next-step mode: the step
    after an episode ends resets that env (its action is ignored, reward 0, flags False). Seeds:
    ``reset(seed=s)`` seeds env i with ``s + i``, so env i replays ``SpaceshipEnv.reset(seed=s+i)``.
    Time limit: ``max_episode_steps`` (registered as 200), shortened by a ``max_steps`` given
    explicitly (or a ``params`` object's), the step where ``gymnasium.make`` truncates the single
    env. Actions are checked by ``spaces.check_action``, as in the single env.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

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
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError("SpaceshipVectorEnv does not render; use SpaceshipEnv to watch")
        explicit = "max_steps" in param_overrides or params is not None
        params = make_params(action_mode, params, **param_overrides)
        if max_episode_steps is not None and max_episode_steps != -1:  # -1: none, as in make
            if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
                raise ValueError(
                    f"max_episode_steps must be a positive integer or -1, got {max_episode_steps!r}"
                )
            # make_vec always passes a limit (the registered 200 unless the user set one): it
            # shortens an explicit max_steps, and otherwise is the limit, as in SpaceshipEnv.
            limit = int(max_episode_steps)
            params = params.replace(max_steps=min(params.max_steps, limit) if explicit else limit)
        self._env = make_jax(params.action_mode, obs_mode, params)
        self.params = params
        self.num_envs = int(num_envs)
        self.render_mode = None
        self.single_observation_space = self._env.observation_space
        self.single_action_space = self._env.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._keys = self._states = self._needs_reset = None

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every env; ``seed`` is an int (env i gets seed + i) or a list of N ints."""
        if options:
            raise ValueError(f"SpaceshipVectorEnv.reset takes no options, got {sorted(options)}")
        super().reset(seed=seed if isinstance(seed, (int, type(None))) else None)
        if seed is None and self._keys is None:
            seed = int(self.np_random.integers(2**31 - self.num_envs))
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed list must have {self.num_envs} entries, got {len(seeds)}")
            self._keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
        self._keys, obs, self._states = _jit_reset(self._env.reset, self._keys, self.params)
        self._needs_reset = jnp.zeros(self.num_envs, bool)
        return np.asarray(obs), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Steps all envs with a batch of N actions (see the single env for their meaning)."""
        if self._states is None:
            raise RuntimeError("call reset() before step()")
        actions = check_action(actions, self.params, self.num_envs)
        (
            self._keys,
            obs,
            self._states,
            rewards,
            terminated,
            truncated,
            self._needs_reset,
            info,
        ) = _jit_step(
            self._env.reset,
            self._env.step,
            self._keys,
            self._states,
            actions,
            self._needs_reset,
            self.params,
        )
        infos = {k: np.asarray(v) for k, v in info.items()}
        infos.update({f"_{k}": np.ones(self.num_envs, bool) for k in info})
        return (
            np.asarray(obs),
            np.asarray(rewards, dtype=np.float64),
            np.asarray(terminated),
            np.asarray(truncated),
            infos,
        )

    def get_state(self) -> Any:
        """The batched state pytree (leaves with a leading (N,) axis), on device."""
        return self._states
