"""The Gymnasium shell of the poke table (``worldplan/Poke-v0``) over :mod:`envs.poke.physics`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.poke import checks, physics, task
from envs.poke.params import PokeParams
from envs.pygame_window import OwnsRenderer

OBS_MODES = ("state", "image", "state_image")
OBJECT_FEATURES = 8
"""Columns of the object observation: present, x, y, cos, sin, kind, half_x, half_y."""


def object_features(state: physics.PokeState, max_objects: int) -> np.ndarray:
    """The object observation, (max_objects, 8) float32; rows past the object count are zero."""
    rows = np.zeros((max_objects, OBJECT_FEATURES), np.float32)
    n = len(state.kind)
    rows[:n, 0] = 1.0
    rows[:n, 1:3] = state.pose[:, :2]
    rows[:n, 3] = np.cos(state.pose[:, 2])
    rows[:n, 4] = np.sin(state.pose[:, 2])
    rows[:n, 5] = state.kind
    rows[:n, 6:8] = state.half_size
    return rows


class PokeEnv(OwnsRenderer, gym.Env):
    """Poke objects on a table with a finger moving along a straight line.

    ## Description
    A top-down square table (side 0.8 m, walled) holds one to three objects: boxes, disks and
    triangles of random size and pose that slide with Coulomb friction against the table. An
    action is one poke: a round fingertip starts at a point, moves in a straight line at
    0.5 m/s pushing with at most 20 N (``finger_max_force``), is lifted, and the objects come to
    rest. The walls stop what the finger pins against them: object centres stay on the table.
    After Agrawal et al., "Learning to Poke by Poking" (2016), and the poke experiment of Henaff
    et al., "Prediction Under Uncertainty with Error-Encoding Networks" (2017).

    ## Action Space
    ``Box(4,)`` float32, one poke. A finger started inside an object pushes it out (pymunk
    resolves the overlap). Actions outside the box, of another shape or not finite raise
    ``ValueError``.

    | index | meaning                             | min    | max              | unit |
    |-------|-------------------------------------|--------|------------------|------|
    | 0     | finger start x                      | -0.4   | 0.4              | m    |
    | 1     | finger start y                      | -0.4   | 0.4              | m    |
    | 2     | direction of motion (from +x, ccw)  | -pi    | pi               | rad  |
    | 3     | length of the finger's path         | 0      | max_poke_length  | m    |

    ## Observation Space
    A ``Dict``: ``obs_mode`` picks ``objects``, ``image`` or both; ``task="goal"`` adds ``goal``.

    | key     | shape                          | content                              | unit |
    |---------|--------------------------------|--------------------------------------|------|
    | objects | (max_objects, 8) float32       | one row per object, zeros if absent  | below|
    | image   | (image_size, image_size, 3) u8 | top-down RGB, row 0 at +y            | -    |
    | goal    | (2,) float32                   | goal position of object 0            | m    |

    | objects column | meaning                                   | unit |
    |----------------|-------------------------------------------|------|
    | 0              | present (1) or padding (0)                | -    |
    | 1, 2           | centre x, y                               | m    |
    | 3, 4           | cos, sin of the orientation               | -    |
    | 5              | kind: 0 box, 1 disk, 2 triangle           | -    |
    | 6, 7           | half extents (box half sides; disk radius | m    |
    |                | or triangle circumradius, twice)          |      |

    ## Rewards
    ``task="free"``: 0. ``task="goal"``: minus the distance of object 0 from its goal [m] after
    the poke (:func:`envs.poke.task.reward`).

    ## Starting State
    Object count uniform in [min_objects, max_objects] (or ``num_objects``), kinds uniform, half
    extents uniform in [0.04, 0.07] m, positions uniform without overlap, angles uniform, at rest.
    The goal lies 0.06-0.2 m from object 0 in a uniform direction, inside the table.
    ``reset(options={"state": PokeState, "goal": (2,)})`` starts from a given state instead
    (:func:`envs.poke.checks.check_state`: 1..max_objects objects, kinds 0..2, half sizes in
    ``object_half_size_range``, centres on the table, no point of an object faster than
    2.5 m/s (:func:`~envs.poke.checks.speed_bound`), all finite); a goal must be two finite
    coordinates on the table. Anything else raises ValueError (TypeError for a state that is
    not a ``PokeState``) and leaves the env as it was. A step is a pure function of the state,
    the action and the goal, so ``reset(options={"state": env.get_state(), "goal": env.goal})``
    (the goal only for ``task="goal"``, where it would otherwise be drawn anew) continues
    exactly as the env would.

    ## Episode Termination
    ``task="goal"``: terminated when object 0 is within ``goal_tolerance`` (0.04 m) of the goal.
    Truncated by the registered time limit (10 pokes).

    ## Arguments
    ``obs_mode`` ("state", "image", "state_image"), ``task`` ("free", "goal"), ``num_objects``
    (None or 1..max_objects), ``params`` (:class:`~envs.poke.params.PokeParams`, range-checked
    by :func:`~envs.poke.params.check_params` when built), ``render_mode`` ("human",
    "rgb_array" or None).

    ``info``: ``state`` (a copy of the :class:`~envs.poke.physics.PokeState`) and, for
    ``task="goal"``, ``distance`` of object 0 from the goal [m].

    ## Version History
    * v0: initial version.
    * v0, 2026-11-27: the fingertip is a dynamic disk dragged with at most ``finger_max_force``
      instead of a kinematic one, and pymunk's collision slop is 1 mm instead of 0.1 m, so a
      poke no longer squeezes an object into or through a wall (before: 0.3% of random dataset
      pokes left a centre past the table edge, some outside the observation space). Centres
      are now bounded by the table edge (0.4 m), not the walls' outer face (0.5 m). The id
      stays v0: no worldplan env has been versioned past v0, and poke datasets are cached under
      a hash of ``PokeParams``, whose new fields keep old data from being reused.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        obs_mode: str = "state_image",
        task: str = "free",
        num_objects: int | None = None,
        params: PokeParams | None = None,
        render_mode: str | None = None,
    ) -> None:
        if params is not None and not isinstance(params, PokeParams):
            raise TypeError(f"params: expected a PokeParams or None, got {type(params).__name__}")
        self.params = PokeParams() if params is None else params
        for name, value, allowed in (
            ("obs_mode", obs_mode, OBS_MODES),
            ("task", task, globals()["task"].TASKS),
            ("render_mode", render_mode, (None, "human", "rgb_array")),
        ):
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
        if num_objects is not None and not 1 <= num_objects <= self.params.max_objects:
            raise ValueError(f"num_objects: expected 1..{self.params.max_objects} or None")
        self.obs_mode, self.task, self.num_objects = obs_mode, task, num_objects
        self.render_mode = render_mode
        h, p = self.params.table_half_size, self.params
        self.action_space = spaces.Box(
            np.array([-h, -h, -np.pi, 0.0], np.float32),
            np.array([h, h, np.pi, p.max_poke_length], np.float32),
        )
        keys: dict[str, spaces.Space] = {}
        if obs_mode in ("state", "state_image"):
            bound, size = checks.position_bound(p), p.object_half_size_range[1]
            low = np.array([0, -bound, -bound, -1, -1, 0, 0, 0], np.float32)
            high = np.array([1, bound, bound, 1, 1, 2, size, size], np.float32)
            keys["objects"] = spaces.Box(
                np.tile(low, (p.max_objects, 1)), np.tile(high, (p.max_objects, 1))
            )
        if obs_mode in ("image", "state_image"):
            keys["image"] = spaces.Box(0, 255, (p.image_size, p.image_size, 3), np.uint8)
        if task == "goal":
            keys["goal"] = spaces.Box(-h, h, (2,), np.float32)
        self.observation_space = spaces.Dict(keys)
        self.state: physics.PokeState | None = None
        self.goal: np.ndarray | None = None
        self._last_action: np.ndarray | None = None
        self._renderer = None

    def _sample_goal(self, position: np.ndarray) -> np.ndarray:
        low, high = self.params.goal_distance_range
        margin = self.params.table_half_size - self.params.object_half_size_range[1]
        for _ in range(100):
            angle = self.np_random.uniform(-np.pi, np.pi)
            goal = position + self.np_random.uniform(low, high) * np.array(
                [np.cos(angle), np.sin(angle)]
            )
            if np.all(np.abs(goal) <= margin):
                return goal
        return np.clip(goal, -margin, margin)

    def _check_goal(self, goal: Any) -> np.ndarray:
        """``options["goal"]`` as a (2,) float64 position [m] on the table, or ValueError."""
        try:
            position = np.array(goal, dtype=np.float64)  # a copy: the caller keeps its array
        except (TypeError, ValueError):
            raise ValueError(f"options['goal'] must be 2 numbers [m], got {goal!r}") from None
        if position.shape != (2,):
            raise ValueError(f"options['goal'] must have shape (2,), got {position.shape}")
        if not np.all(np.isfinite(position)):
            raise ValueError(f"options['goal'] must be finite, got {position}")
        h = self.params.table_half_size
        if np.any(np.abs(position) > h):
            raise ValueError(
                f"options['goal'] must lie on the table [-{h}, {h}]^2 m, got {position}"
            )
        return position

    def _observation(self) -> dict[str, np.ndarray]:
        assert self.state is not None
        obs: dict[str, np.ndarray] = {}
        if "objects" in self.observation_space.spaces:
            obs["objects"] = object_features(self.state, self.params.max_objects)
        if "image" in self.observation_space.spaces:
            from envs.poke.render import draw_image

            obs["image"] = draw_image(self.state, self.params)
        if self.goal is not None:
            obs["goal"] = self.goal.astype(np.float32)
        return obs

    def _info(self) -> dict[str, Any]:
        assert self.state is not None
        info: dict[str, Any] = {"state": self.get_state()}
        if self.goal is not None:
            info["distance"] = float(task.goal_distance(self.state.pose[0, :2], self.goal))
        return info

    def get_state(self) -> physics.PokeState:
        """A copy of the table's state; ``reset(options={"state": ...})`` takes it back.

        For ``task="goal"`` pass ``env.goal`` as ``options["goal"]`` too: the state holds only
        the objects, and a step's outcome depends on nothing else (no randomness).

        Raises:
            RuntimeError: before the first ``reset``.
        """
        if self.state is None:
            raise RuntimeError("call reset() before get_state()")
        return physics.copy_state(self.state)

    def _check_options(self, options: Any) -> tuple[physics.PokeState | None, Any]:
        """The checked ``options["state"]`` and ``options["goal"]`` (None where absent)."""
        if options is None:
            return None, None
        if not isinstance(options, Mapping):
            raise TypeError(f"options: expected a dict or None, got {type(options).__name__}")
        goal = options.get("goal") if self.task == "goal" else None
        if goal is not None:
            goal = self._check_goal(goal)
        state = options.get("state")
        if state is not None:
            state = checks.check_state(state, self.params, "options['state']")
        return state, goal

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draws a new table (or takes ``options["state"]``/``options["goal"]``).

        Raises:
            TypeError: ``options`` is not a dict, or ``options["state"]`` not a ``PokeState``.
            ValueError: ``options["goal"]`` is not 2 finite numbers on the table [m], or
                ``options["state"]`` does not fit (:func:`checks.check_state`). The env, its
                random generator included, is then left as it was.
        """
        state, goal = self._check_options(options)  # before anything changes
        super().reset(seed=seed)
        if state is None:
            state = physics.sample_state(self.np_random, self.params, self.num_objects)
        self.state = state
        self.goal = None
        if self.task == "goal":
            self.goal = self._sample_goal(self.state.pose[0, :2]) if goal is None else goal
        self._last_action = None
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        """Applies one poke; see the class docstring for the action's units."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
            raise ValueError(f"action: expected a finite array of shape (4,), got {action!r}")
        if not self.action_space.contains(action):
            raise ValueError(f"action: {action} lies outside {self.action_space}")
        self.state = physics.transition(self.params, self.state, action.astype(np.float64))
        self._last_action = action
        reward, terminated = 0.0, False
        if self.goal is not None:
            position = self.state.pose[0, :2]
            reward = float(task.reward(position, self.goal))
            terminated = bool(task.terminated(position, self.goal, self.params.goal_tolerance))
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, False, self._info()

    def render(self) -> np.ndarray | None:
        """An RGB frame (``rgb_array``) or a window update (``human``)."""
        if self.render_mode is None or self.state is None:
            return None
        if self._renderer is None:
            from envs.poke.render import Renderer

            self._renderer = Renderer(self.params, self.render_mode)
        return self._renderer.frame(self.state, self._last_action, self.goal)
