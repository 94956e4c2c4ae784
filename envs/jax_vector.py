"""A Gymnasium VectorEnv over any environment's pure JAX core (``envs.jax_env.JaxEnv``).

N envs are stepped in one jitted call and their states stay on device. Each task's vector env
(``envs.spaceship.vector``, ``envs.driving.vector``) is this class with its own params builder,
JAX env builder and action check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs import host_random
from envs import jax_vector_steps as steps
from envs.core_env import check_seed
from envs.jax_env import JaxEnv

# The default mode's step; tests count its compilations (one per task and batch size).
_jit_step = steps.jit_step_next_step


def _is_list(seed: Any) -> bool:
    """Whether ``reset``'s seed is a list (tuple, 1-D array) of per-env seeds."""
    return isinstance(seed, (list, tuple)) or (isinstance(seed, np.ndarray) and seed.ndim == 1)


def _autoreset_mode(mode: Any) -> AutoresetMode:
    """An ``AutoresetMode`` or its string value ("NextStep", "SameStep", "Disabled") as the enum.

    Raises:
        ValueError: anything else, naming the accepted values.
    """
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if isinstance(mode, str) and mode == member.value:
            return member
    accepted = [m.value for m in AutoresetMode]
    raise ValueError(
        f"autoreset_mode must be a gymnasium.vector.AutoresetMode or one of {accepted}, "
        f"got {mode!r}"
    )


def check_reset_mask(mask: Any, num_envs: int) -> np.ndarray:
    """``reset(options={"reset_mask": mask})``'s mask, checked as ``SyncVectorEnv`` checks it.

    Raises:
        TypeError: not a NumPy array, or its dtype is not bool.
        ValueError: its shape is not (num_envs,), or no entry is True.
    """
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"options['reset_mask'] must be a numpy array, got {type(mask)}")
    if mask.shape != (num_envs,):
        raise ValueError(f"options['reset_mask'] must have shape ({num_envs},), got {mask.shape}")
    if mask.dtype != np.bool_:
        raise TypeError(f"options['reset_mask'] must have dtype bool, got {mask.dtype}")
    if not mask.any():
        raise ValueError(f"options['reset_mask'] must have at least one True entry, got {mask}")
    return mask.copy()


class JaxVectorEnv(VectorEnv):
    """``num_envs`` copies of a task with a JAX core, stepped in one jitted call.

    Autoreset (``autoreset_mode``) follows ``gymnasium.vector.SyncVectorEnv`` over the task's
    single env, step for step, infos included:

    - ``NEXT_STEP`` (default): the step after an episode ends resets that env (its action is
      ignored, reward 0, flags False, no info: its ``_key`` masks are False).
    - ``SAME_STEP``: a finished env is reset in the step that ends it and returns its reset
      observation, with that step's reward and flags; ``info["final_obs"]`` and
      ``info["final_info"]`` hold the step's observation and info
      (``envs.jax_vector_steps.same_step_infos``).
    - ``DISABLED``: no autoreset; stepping a finished env is an error until
      ``reset(options={"reset_mask": mask})`` resets it.

    ``reset(options={"reset_mask": mask})`` resets only the masked envs in every mode; the others
    keep their states and any pending autoreset. Seeds: ``reset(seed=s)`` seeds env i with
    ``s + i``, so env i replays the task's single env reset with seed ``s + i``. Time limit:
    ``max_episode_steps`` (as registered), shortened by a ``max_steps`` given explicitly (or a
    ``params`` object's), the step where ``gymnasium.make`` truncates the single env.
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
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
            autoreset_mode: an ``AutoresetMode`` or its string value ("NextStep", "SameStep",
                "Disabled").
        """
        name = type(self).__name__
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        if render_mode is not None:
            raise ValueError(f"{name} does not render; use the single env to watch")
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
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
        self._keys = self._obs = self._states = None
        self._needs_reset = np.zeros(self.num_envs, bool)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every env, or with ``options={"reset_mask": mask}`` the masked envs only.

        ``seed`` is an int (env i gets seed + i) or a list of N ints; with a mask, only the
        masked envs take theirs. Seeds are integers >= 0 (NumPy integers too), as in the single
        env, which replays env i (``envs.core_env.check_seed``): keys are
        ``host_random.prng_key``, JAX's ``PRNGKey`` of the seed's low 32 bits, for seeds of any
        size. Without a seed, each reset env draws its next start state from its own key chain.

        Returns:
            The (N, ...) observations (those of the envs not reset are their last ones) and
            ``{}`` (the single envs' reset info).

        Raises:
            ValueError: an option other than ``reset_mask``, a seed that is not an integer >= 0,
                a list of seeds whose length is not N, or a mask of the wrong shape or no True.
            TypeError: a mask that is not a NumPy bool array (see :func:`check_reset_mask`).
            RuntimeError: a masked reset before the first full reset.
        """
        options = dict(options or {})
        masked = "reset_mask" in options
        mask = check_reset_mask(options.pop("reset_mask"), self.num_envs) if masked else None
        if options:
            raise ValueError(
                f"{type(self).__name__}.reset takes no options but 'reset_mask', "
                f"got {sorted(options)}"
            )
        if masked and self._states is None:
            raise RuntimeError("call reset() without a reset_mask before resetting some envs")
        seeds = self._seeds(seed)
        # np_random (unused by the envs, but part of the Gymnasium API) takes an int seed only.
        super().reset(seed=None if seeds is None or _is_list(seed) else seeds[0])
        if seeds is None and self._keys is None:
            first = int(self.np_random.integers(2**31 - self.num_envs))
            seeds = [first + i for i in range(self.num_envs)]
        keys = self._keys
        if seeds is not None:
            seeded = np.stack([host_random.prng_key(s) for s in seeds])
            keys = seeded if mask is None else np.where(mask[:, None], seeded, np.asarray(keys))
        if mask is None:
            self._keys, self._obs, self._states = steps.jit_reset(
                self._env.reset, jnp.asarray(keys), self.params
            )
            self._needs_reset = np.zeros(self.num_envs, bool)
        else:
            self._keys, self._obs, self._states = steps.jit_masked_reset(
                self._env.reset, jnp.asarray(keys), self._obs, self._states, mask, self.params
            )
            self._needs_reset = self._needs_reset & ~mask
        return np.asarray(self._obs), {}

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
        """Steps all envs with a batch of N actions (see the single env for their meaning).

        Returns:
            ``(obs, rewards, terminated, truncated, info)``: obs (N, ...), rewards (N,) float64,
            flags (N,) bool, and the infos of the autoreset mode (see the class docstring).

        Raises:
            RuntimeError: stepping before ``reset``, or, with ``autoreset_mode`` DISABLED,
                stepping an env whose episode ended and that was not reset since.
        """
        if self._states is None:
            raise RuntimeError("call reset() before step()")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._needs_reset.any():
            raise RuntimeError(
                f"envs {np.flatnonzero(self._needs_reset).tolist()} ended their episodes and "
                "autoreset_mode is DISABLED: reset them with "
                "reset(options={'reset_mask': mask}) before stepping"
            )
        actions = self._check_action(actions, self.params, self.num_envs)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            rewards, terminated, truncated, infos = self._step_next_step(actions)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            rewards, terminated, truncated, infos = self._step_same_step(actions)
        else:
            rewards, terminated, truncated, infos = self._step_disabled(actions)
        self._needs_reset = terminated | truncated
        return (
            np.asarray(self._obs),
            np.asarray(rewards, dtype=np.float64),
            terminated,
            truncated,
            infos,
        )

    def _step_next_step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, dict]:
        """Next-step autoreset: ``(rewards, terminated, truncated, infos)``; updates the envs."""
        stepped = ~self._needs_reset
        self._keys, self._obs, self._states, rewards, terminated, truncated, _, info = _jit_step(
            self._env.reset,
            self._env.step,
            self._keys,
            self._states,
            actions,
            self._needs_reset,
            self.params,
        )
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        return rewards, terminated, truncated, steps.vector_infos(info, stepped)

    def _step_same_step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, dict]:
        """Same-step autoreset: ``(rewards, terminated, truncated, infos)``; updates the envs."""
        out = steps.jit_step_same_step(
            self._env.reset, self._env.step, self._keys, self._states, actions, self.params
        )
        self._keys, self._obs, final_obs, self._states, rewards, terminated, truncated, info = out
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        infos = steps.same_step_infos(info, final_obs, terminated | truncated)
        return rewards, terminated, truncated, infos

    def _step_disabled(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, dict]:
        """No autoreset: ``(rewards, terminated, truncated, infos)``; updates the envs."""
        self._obs, self._states, rewards, terminated, truncated, info = steps.jit_step_disabled(
            self._env.step, self._states, actions, self.params
        )
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        every = np.ones(self.num_envs, bool)
        return rewards, terminated, truncated, steps.vector_infos(info, every)

    def get_state(self) -> Any:
        """The batched state pytree (leaves with a leading (N,) axis), on device."""
        return self._states
