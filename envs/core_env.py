"""What the Gymnasium single envs of the JAX-core tasks share (Spaceship, Driving).

Each task's ``env.py`` subclasses :class:`CoreEnv`, names its core, pixels and spaces modules
and says how a start state is drawn and a user-given one checked; :class:`CoreEnv` writes
``reset`` and ``step`` once for both. Everything runs on the host in NumPy: no JAX computation,
reset included (start states are drawn from JAX's own threefry numbers computed in NumPy,
``envs.host_random``), so worker processes forked after the parent used JAX stay safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, ClassVar

import gymnasium as gym
import jax
import numpy as np

from envs import host_random
from envs.pygame_window import OwnsRenderer


def check_seed(seed: Any) -> int | None:
    """A reset seed as a Python int (or None), shared by the single and the vector envs.

    Any integer >= 0 is a seed, a NumPy integer included, as for Gymnasium's ``np_random``
    (which takes Python ints of any size). The start state depends on the seed's low 32 bits only
    (``host_random.prng_key``, the same as ``jax.random.PRNGKey`` with JAX's default 32-bit ints),
    in the single and the vector env alike.

    Raises:
        ValueError: a seed that is not an integer (a bool, a float, a string) or is negative.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def state_error(name: str, expected: str, value: Any) -> ValueError:
    """The error for a field of a user-given ``options["state"]`` that is not ``expected``."""
    return ValueError(f"options['state'].{name} must be {expected}, got {value!r}")


StateRule = tuple[str, Callable[[np.ndarray], Any]]
"""A state field's valid range as an error message states it ("> 0 [m]"), and its check."""


def state_fields(
    state: Any,
    state_class: type,
    shapes: Mapping[str, tuple[tuple[int, ...], Any]],
    rules: Mapping[str, StateRule],
) -> dict[str, np.ndarray]:
    """A user-given state's fields as NumPy arrays of their shapes and dtypes, checked.

    Every field must have its shape and hold finite numbers (after the cast to its dtype, so a
    float64 beyond float32's range is refused too); an integer field must hold integer values
    (1.7 is refused, never truncated to 1; -2 never wraps around in a uint32); and a field with
    a rule must pass it, checked on the cast values that the env will observe.

    Args:
        state: an instance of ``state_class`` or a dict of its fields.
        state_class: the task's state dataclass.
        shapes: field name -> (shape, dtype), e.g. ``{"time": ((), np.int32)}``.
        rules: field name -> :data:`StateRule`, the task's valid ranges.

    Returns:
        field name -> array of that shape and dtype.

    Raises:
        ValueError: naming the first missing, misshapen, non-numeric, non-finite, non-integer
            or out-of-range field, and what was expected.
    """
    if isinstance(state, state_class):
        fields = {name: getattr(state, name) for name in shapes}
    elif isinstance(state, dict):
        missing = set(shapes) - set(state)
        if missing:
            raise ValueError(f"options['state'] is missing fields {sorted(missing)}")
        fields = state
    else:
        raise ValueError(
            f"options['state'] must be a {state_class.__name__} or a dict of its fields, "
            f"got {type(state)}"
        )
    out = {}
    for name, (shape, dtype) in shapes.items():
        value = np.asarray(fields[name])
        if value.shape != shape:
            raise ValueError(f"options['state'].{name} must have shape {shape}, got {value.shape}")
        if value.dtype.kind not in "iuf":
            raise state_error(name, f"numbers ({np.dtype(dtype)})", value)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ValueError(f"options['state'].{name} contains NaN or inf: {value}")
        expected, ok = rules.get(name, (f"within the range of {np.dtype(dtype)}", None))
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            if not np.all((value == np.round(value)) & (value >= info.min) & (value <= info.max)):
                raise state_error(name, f"integer-valued, {expected}", value)
        with np.errstate(over="ignore"):  # a float64 beyond float32's range: refused below
            cast = value.astype(dtype)
        if not np.all(np.isfinite(cast)):
            raise state_error(name, f"within the range of {np.dtype(dtype)}", value)
        if ok is not None and not np.all(ok(cast)):
            raise state_error(name, expected, value)
        out[name] = cast
    return out


class CoreEnv(OwnsRenderer, gym.Env):
    """A single env over a task's pure core: spaces, seeding, reset, step, state, rendering.

    A subclass sets the class attributes ``core`` (``step(key, state, action, params)`` and
    ``observe(state, params)``, run on NumPy leaves), ``pixels`` (``rasterize(state, params)``)
    and ``spaces`` (``action_space``, ``observation_space``, ``check_action``), and implements
    :meth:`_start_state`, :meth:`_checked_state`, :meth:`_make_renderer` and :meth:`_draw`.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 10}
    core: ClassVar[ModuleType]
    pixels: ClassVar[ModuleType]
    spaces: ClassVar[ModuleType]

    def __init__(
        self, params: Any, obs_mode: str, render_mode: str | None, own_limit: bool
    ) -> None:
        """Sets the spaces and the episode bookkeeping.

        Args:
            params: the task's checked params (``make_params``).
            obs_mode: one of the task's observation modes (checked by ``spaces``).
            render_mode: None, "human" or "rgb_array".
            own_limit: the user gave a step limit (a ``max_steps`` override or a params
                object), so the env truncates at ``params.max_steps`` itself; otherwise
                Gymnasium's TimeLimit (``max_episode_steps``) alone sets the episode length.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.params = params
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self._own_limit = own_limit
        self.observation_space = self.spaces.observation_space(params, obs_mode)
        self.action_space = self.spaces.action_space(params)
        self._key: np.ndarray | None = None
        self._state: Any = None
        self._return = 0.0
        self._renderer: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Starts an episode; ``options={"state": s}`` starts from ``s``, not a random draw.

        A NumPy integer seed counts as its value (:func:`check_seed`); the start state is the
        JAX vector env's for the same seed (:meth:`_next_reset_key`).

        Raises:
            ValueError: a seed that is not an integer >= 0, or an invalid ``options["state"]``
                (naming the field and its valid range).
        """
        super().reset(seed=check_seed(seed), options=options)
        reset_key = self._next_reset_key(seed)
        if options and "state" in options:
            self._state = self._checked_state(options["state"])
        else:
            self._state = self._start_state(reset_key)
        self._return = 0.0
        self._on_new_state(reset=True)
        if self.render_mode == "human":
            self.render()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advances the core by one step; the task's class docstring has actions and rewards.

        Raises:
            RuntimeError: before the first ``reset``.
            ValueError: an action outside the action space, of the wrong shape, or NaN
                (``spaces.check_action``).
        """
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        action = self.spaces.check_action(action, self.params)
        obs, self._state, reward, terminated, truncated, info = self.core.step(
            None, self._state, action, self.params
        )
        reward = float(reward)
        self._return += reward
        self._on_new_state(reset=False)
        if self.render_mode == "human":
            self.render()
        info = {k: v.item() if hasattr(v, "item") else v for k, v in info.items()}
        if self.obs_mode == "pixels":
            obs = self.pixels.rasterize(self._state, self.params)
        # A TimeLimit wrapper ORs in its own limit.
        return obs, reward, bool(terminated), self._truncated(truncated), info

    def _observation(self) -> Any:
        if self.obs_mode == "pixels":
            return self.pixels.rasterize(self._state, self.params)
        return self.core.observe(self._state, self.params)

    def _start_state(self, reset_key: np.ndarray) -> Any:
        """A random start state with NumPy leaves, drawn from ``reset_key`` ((2,) uint32)."""
        raise NotImplementedError

    def _checked_state(self, state: Any) -> Any:
        """A user-given ``options["state"]``, validated, with NumPy leaves (raises ValueError)."""
        raise NotImplementedError

    def _on_new_state(self, reset: bool) -> None:
        """Called after every reset and step (a renderer's trail, say); does nothing here."""

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
