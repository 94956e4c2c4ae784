"""What the Gymnasium single envs of the JAX-core tasks share (Spaceship, Driving).

Each task's ``env.py`` subclasses :class:`CoreEnv` and writes its own ``reset`` and ``step``
over its core, run on the host in NumPy: no JAX computation, reset included (start states are
drawn from JAX's own threefry numbers computed in NumPy, ``envs.host_random``), so worker
processes forked after the parent used JAX stay safe.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import gymnasium as gym
import jax
import numpy as np

from envs import host_random
from envs.pygame_window import OwnsRenderer


class CoreEnv(OwnsRenderer, gym.Env):
    """A single env over a task's pure core: spaces, seeding, state access, rendering."""

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}

    def __init__(
        self,
        params: Any,
        obs_mode: str,
        render_mode: str | None,
        own_limit: bool,
        spaces: ModuleType,
    ) -> None:
        """Sets the spaces and the episode bookkeeping.

        Args:
            params: the task's checked params (``make_params``).
            obs_mode: one of the task's observation modes (checked by ``spaces``).
            render_mode: None, "human" or "rgb_array".
            own_limit: the user gave a step limit (a ``max_steps`` override or a params
                object), so the env truncates at ``params.max_steps`` itself; otherwise
                Gymnasium's TimeLimit (``max_episode_steps``) alone sets the episode length.
            spaces: the task's spaces module (``action_space(params)``,
                ``observation_space(params, obs_mode)``).
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.params = params
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self._own_limit = own_limit
        self.observation_space = spaces.observation_space(params, obs_mode)
        self.action_space = spaces.action_space(params)
        self._key: np.ndarray | None = None
        self._state: Any = None
        self._return = 0.0
        self._renderer: Any = None

    def _next_reset_key(self, seed: int | None) -> np.ndarray:
        """The raw threefry key of this reset, (2,) uint32: the JAX vector env's for env ``seed``.

        A seed restarts the key chain at ``PRNGKey(seed)``; without one, the chain continues
        (or starts from ``np_random`` on the first reset). Call after ``super().reset(seed)``.
        """
        if seed is not None:
            self._key = host_random.prng_key(seed)
        elif self._key is None:
            self._key = host_random.prng_key(int(self.np_random.integers(2**31)))
        self._key, reset_key = host_random.split(self._key)
        return reset_key

    def _truncated(self, truncated: Any) -> bool:
        """The core's own time limit counts only when the user gave one (see ``__init__``)."""
        return bool(truncated) and self._own_limit

    def get_state(self) -> Any:
        """A copy of the current state (NumPy leaves); reset(options={"state": s}) restores it."""
        if self._state is None:
            raise RuntimeError("call reset() before get_state()")
        return jax.tree_util.tree_map(np.array, self._state)

    def render(self) -> np.ndarray | None:
        """Draws the current state: a window ("human") or an (H, W, 3) uint8 frame."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode to make()")
            return None
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        if self._renderer is None:
            self._renderer = self._make_renderer()
        return self._draw()

    def _make_renderer(self) -> Any:
        """The task's pygame renderer (imported lazily)."""
        raise NotImplementedError

    def _draw(self) -> np.ndarray | None:
        """Draws ``self._state`` with ``self._renderer``."""
        raise NotImplementedError
