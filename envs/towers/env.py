"""Gymnasium shell of the block-tower overhang task over the pymunk physics in ``physics.py``."""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.pygame_window import OwnsRenderer
from envs.towers import image, physics, task
from envs.towers.params import Params

POSITION_BOUND = 20.0
"""Observed block positions are clipped to ``[-POSITION_BOUND, POSITION_BOUND]`` [widths]."""
BLOCK_FEATURES = 4


class BlockTowerEnv(OwnsRenderer, gym.Env):
    """Stack blocks one per level to reach as far past the table edge as possible.

    ## Description
    A 2D table whose right edge is at ``x = 0`` and whose top is at ``y = 0``. Square blocks of
    equal size arrive one at a time; the agent chooses where to put each one, horizontally,
    relative to the block below. pymunk physics (gravity, friction) then runs until the tower
    settles. The goal is the overhang: how far the tower reaches past the table edge. With ``n``
    blocks one per level the supremum is ``H_n / 2`` block widths (the harmonic stack).

    ## Action Space
    ``Box(-max_offset, max_offset, (1,), float32)``; values outside are clipped, NaN is an error.

    | index | action                                                     | unit         |
    |-------|------------------------------------------------------------|--------------|
    | 0     | offset of the new block's centre from the block below's;   | block widths |
    |       | for the first block, from a block flush with the edge      |              |
    |       | (centre at ``x = -0.5``)                                   |              |

    ## Observation Space
    ``obs_mode="state"`` (default): ``Box((4 * n_blocks,), float32)``, per level ``i`` (bottom
    first) four entries, zeros for blocks not yet placed:

    | index     | observation                                | unit         |
    |-----------|--------------------------------------------|--------------|
    | 4 i + 0   | x of block centre (clipped to +-20)        | block widths |
    | 4 i + 1   | y of block centre (clipped to +-20)        | block widths |
    | 4 i + 2   | angle, wrapped to [-pi, pi]                | rad          |
    | 4 i + 3   | 1 if the block is placed, else 0           | -            |

    ``obs_mode="pixels"``: ``Box(0, 255, (image_size, image_size, 3), uint8)``, a side view
    (``image.py``) with level ``i`` in ``BLOCK_COLOURS[i]`` and the table in grey.

    ## Rewards
    The gain in overhang [block widths] from each placement while the tower stands;
    ``-collapse_penalty`` on the step it collapses (a block moved more than ``fall_threshold``).
    The return of a standing episode equals its final overhang.

    ``info``: ``overhang`` [block widths] and ``overhang_fraction`` (of ``H_n / 2``) of the
    standing tower, both 0 once it has collapsed (``task.tower_overhang``: fallen blocks may lie
    far past the edge, and their reach is no overhang); ``collapsed``; ``n_placed``.

    ## Starting State
    An empty table; ``reset(options={"state": s})`` starts from block states ``s`` (k, 6)
    (``physics.py`` layout) with ``k < n_blocks`` instead, taken as standing.

    ## Episode Termination
    Terminated when the tower collapses or all ``n_blocks`` blocks are placed; ``step`` then
    raises RuntimeError until ``reset``. The registered ``max_episode_steps`` is a safety
    truncation only.

    ## Arguments
    ``gymnasium.make("worldplan/BlockTower-v0", obs_mode="state", render_mode=None, **params)``
    where ``params`` override fields of :class:`envs.towers.params.Params` (e.g. ``n_blocks=3``);
    a field out of range raises ValueError naming it (:func:`envs.towers.params.check_params`).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self, obs_mode: str = "state", render_mode: str | None = None, **param_overrides: Any
    ) -> None:
        if obs_mode not in ("state", "pixels"):
            raise ValueError(f"obs_mode must be 'state' or 'pixels', got {obs_mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.params = dataclasses.replace(Params(), **param_overrides)
        self.obs_mode, self.render_mode = obs_mode, render_mode
        bound = np.float32(self.params.max_offset)
        self.action_space = spaces.Box(-bound, bound, (1,), np.float32)
        if obs_mode == "pixels":
            side = self.params.image_size
            self.observation_space = spaces.Box(0, 255, (side, side, 3), np.uint8)
        else:
            high = np.tile([POSITION_BOUND, POSITION_BOUND, np.pi, 1.0], self.params.n_blocks)
            low = np.tile([-POSITION_BOUND, -POSITION_BOUND, -np.pi, 0.0], self.params.n_blocks)
            self.observation_space = spaces.Box(
                low.astype(np.float32), high.astype(np.float32), dtype=np.float32
            )
        self.state = np.zeros((0, physics.STATE_DIM))
        self.collapsed = False
        self._started = False  # step() before the first reset() is an error, as in the other envs
        self._renderer = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Empties the table, or starts from ``options["state"]`` (k, 6) with k < n_blocks.

        Raises:
            ValueError: ``options["state"]`` is not a finite (k, 6) array with k < n_blocks; the
                env is then left as it was.
        """
        state = (options or {}).get("state")
        if state is not None:
            state = physics.check_state(state, "options['state']")
            if state.shape[0] >= self.params.n_blocks:
                raise ValueError(
                    f"options['state'] has {state.shape[0]} blocks; at most "
                    f"n_blocks - 1 = {self.params.n_blocks - 1} leave a block to place"
                )
            space = physics.build_space(self.params)
            physics.set_state(space, state, self.params)
            state = physics.get_state(space)
        super().reset(seed=seed)
        self.state = np.zeros((0, physics.STATE_DIM)) if state is None else state
        self.collapsed, self._started = False, True
        if self.render_mode == "human":
            self.render()
        return self._observe(), self._info(fell=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Places the next block at ``action[0]`` widths from the one below and lets it settle."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        offset = self._check_action(action)
        params = self.params
        if self.collapsed or self.state.shape[0] >= params.n_blocks:
            raise RuntimeError("the episode is over; call reset() before step()")
        intended = np.concatenate([self.state, self._new_block(offset)[None]])
        space = physics.build_space(params)  # fresh: the future depends on the state alone
        physics.set_state(space, intended, params)
        physics.settle(space, params)
        settled = physics.get_state(space)
        fell = task.collapsed(intended, settled, params)
        reward = task.reward(
            task.overhang(self.state, params), task.overhang(settled, params), fell, params
        )
        self.state, self.collapsed = settled, fell
        if self.render_mode == "human":
            self.render()
        terminated = task.terminated(settled.shape[0], fell, params)
        return self._observe(), float(reward), terminated, False, self._info(fell)

    def _check_action(self, action: Any) -> float:
        action = np.asarray(action, dtype=np.float64)
        if action.size != 1 or action.ndim > 1:
            raise ValueError(f"action must have shape (1,), got {action.shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action must be finite, got {action}")
        return float(np.clip(action.reshape(()), -self.params.max_offset, self.params.max_offset))

    def _new_block(self, offset: float) -> np.ndarray:
        size = self.params.block_size
        row = np.zeros(physics.STATE_DIM)
        if self.state.shape[0] == 0:
            row[:2] = -0.5 * size + offset * size, 0.5 * size
        else:
            row[:2] = self.state[-1, 0] + offset * size, self.state[-1, 1] + size
        return row

    def _observe(self) -> np.ndarray:
        if self.obs_mode == "pixels":
            return image.render_state(self.state, self.params)
        obs = np.zeros((self.params.n_blocks, BLOCK_FEATURES), np.float32)
        k = self.state.shape[0]
        obs[:k, :2] = np.clip(self.state[:, :2], -POSITION_BOUND, POSITION_BOUND)
        obs[:k, 2] = np.arctan2(np.sin(self.state[:, 2]), np.cos(self.state[:, 2]))
        obs[:k, 3] = 1.0
        return obs.reshape(-1)

    def _info(self, fell: bool) -> dict[str, Any]:
        overhang = task.tower_overhang(self.state, fell, self.params)
        return {
            "overhang": overhang,
            "overhang_fraction": overhang / self.params.overhang_limit,
            "collapsed": fell,
            "n_placed": int(self.state.shape[0]),
        }

    def render(self) -> np.ndarray | None:
        """The current tower, drawn by ``render.py`` (pygame) in the chosen ``render_mode``."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode")
            return None
        if self._renderer is None:
            from envs.towers.render import TowerRenderer

            fps = self.metadata["render_fps"]
            self._renderer = TowerRenderer(self.params, self.render_mode, fps=fps)
        return self._renderer.render(self.state)
