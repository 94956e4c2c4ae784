"""A Gymnasium VectorEnv over any environment's pure JAX core (``envs.jax_env.JaxEnv``).

N envs are stepped in one jitted call and their states stay on device. Each task's vector env
(``envs.spaceship.vector``, ``envs.driving.vector``) is this class with its own params builder,
JAX env builder and action check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs import host_random
from envs.core_env import check_seed
from envs.jax_env import JaxEnv


def _is_list(seed: Any) -> bool:
    """Whether ``reset``'s seed is a list (tuple, 1-D array) of per-env seeds."""
    return isinstance(seed, (list, tuple)) or (isinstance(seed, np.ndarray) and seed.ndim == 1)


def _where(mask: jax.Array, a: Any, b: Any) -> Any:
    """Per-env select between two batched pytrees; mask (N,) bool."""

    def pick(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y)

    return jax.tree_util.tree_map(pick, a, b)


def _batched_reset(reset_fn, keys: jax.Array, params: Any):
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


def _vector_infos(info: dict[str, jax.Array], stepped: np.ndarray) -> dict[str, np.ndarray]:
    """Gymnasium's vector infos: each key's (N,) values and ``_key``, (N,) bool: who has it.

    An env that autoresets this step has no step info (a Gymnasium single env's ``reset`` returns
    ``{}``), so its mask is False and its value the zero filler; a key no env has is left out, as
    ``SyncVectorEnv`` does.

    Args:
        info: the batched step info, each value (N,).
        stepped: (N,) bool, False for the envs that autoreset this step.
    """
    if not stepped.any():
        return {}
    infos = {}
    for key, value in info.items():
        infos[key] = np.asarray(value)
        infos[f"_{key}"] = stepped.copy()
    return infos


class JaxVectorEnv(VectorEnv):
    """``num_envs`` copies of a task with a JAX core, stepped in one jitted call.

    Autoreset is Gymnasium's next-step mode: the step after an episode ends resets that env (its
    action is ignored, reward 0, flags False, no info: its ``_key`` masks are False, as in
    ``SyncVectorEnv``). Seeds: ``reset(seed=s)`` seeds env i with ``s + i``, so env i replays
    the task's single env reset with seed ``s + i``. Time limit: ``max_episode_steps`` (as
    registered), shortened by a ``max_steps`` given explicitly (or a ``params`` object's), the
    step where ``gymnasium.make`` truncates the single env.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        make_params: Callable[..., Any],
        make_jax: Callable[..., JaxEnv],
        check_action: Callable[[Any, Any, int], Any],
        action_mode: str,
        obs_mode: str,
        max_episode_steps: int | None,
        render_mode: str | None,
        params: Any,
        param_overrides: dict[str, Any],
    ) -> None:
        """Builds the vector env.

        Args:
            num_envs: number of envs N >= 1.
            make_params: the task's ``make_params(action_mode, params, **overrides)``.
            make_jax: the task's ``make_jax(action_mode, obs_mode, params)``.
            check_action: the task's ``check_action(actions, params, num_envs)``, shared with
                its single env.
            action_mode: the task's action mode.
            obs_mode: the task's observation mode.
            max_episode_steps: the time limit ``gymnasium.make_vec`` passes (-1 or None: none).
            render_mode: must be None (vector envs do not render; use the single env to watch).
            params: a params object or None for the defaults.
            param_overrides: params fields to override.
        """
        name = type(self).__name__
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError(f"{name} does not render; use the single env to watch")
        explicit = "max_steps" in param_overrides or params is not None
        params = make_params(action_mode, params, **param_overrides)
        if max_episode_steps is not None and max_episode_steps != -1:  # -1: none, as in make
            if not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1:
                raise ValueError(
                    f"max_episode_steps must be a positive integer or -1, got {max_episode_steps!r}"
                )
            # make_vec always passes a limit (the registered one unless the user set one): it
            # shortens an explicit max_steps, and otherwise is the limit, as in the single env.
            limit = int(max_episode_steps)
            params = params.replace(max_steps=min(params.max_steps, limit) if explicit else limit)
        self._env = make_jax(params.action_mode, obs_mode, params)
        self._check_action = check_action
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
        """Resets every env; ``seed`` is an int (env i gets seed + i) or a list of N ints.

        Seeds are integers >= 0 (NumPy integers too), as in the single env, which replays env i
        (``envs.core_env.check_seed``): keys are ``host_random.prng_key``, JAX's
        ``PRNGKey`` of the seed's low 32 bits, for seeds of any size.

        Raises:
            ValueError: options given, a seed that is not an integer >= 0, or a list of seeds
                whose length is not N.
        """
        if options:
            raise ValueError(f"{type(self).__name__}.reset takes no options, got {sorted(options)}")
        seeds = self._seeds(seed)
        # np_random (unused by the envs, but part of the Gymnasium API) takes an int seed only.
        super().reset(seed=None if seeds is None or _is_list(seed) else seeds[0])
        if seeds is None and self._keys is None:
            first = int(self.np_random.integers(2**31 - self.num_envs))
            seeds = [first + i for i in range(self.num_envs)]
        if seeds is not None:
            self._keys = jnp.asarray(np.stack([host_random.prng_key(s) for s in seeds]))
        self._keys, obs, self._states = _jit_reset(self._env.reset, self._keys, self.params)
        self._needs_reset = jnp.zeros(self.num_envs, bool)
        return np.asarray(obs), {}

    def _seeds(self, seed: Any) -> list[int] | None:
        """The N per-env seeds of ``reset(seed=...)``, None for none (see :meth:`reset`)."""
        if seed is None:
            return None
        if not _is_list(seed):
            first = check_seed(seed)
            return [first + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"seed list must have {self.num_envs} entries, got {len(seed)}")
        seeds = [check_seed(s) for s in seed]
        if None in seeds:
            raise ValueError(f"seed list entries must be integers >= 0, got {list(seed)!r}")
        return seeds

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Steps all envs with a batch of N actions (see the single env for their meaning)."""
        if self._states is None:
            raise RuntimeError("call reset() before step()")
        actions = self._check_action(actions, self.params, self.num_envs)
        stepped = ~np.asarray(self._needs_reset)
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
        return (
            np.asarray(obs),
            np.asarray(rewards, dtype=np.float64),
            np.asarray(terminated),
            np.asarray(truncated),
            _vector_infos(info, stepped),
        )

    def get_state(self) -> Any:
        """The batched state pytree (leaves with a leading (N,) axis), on device."""
        return self._states
