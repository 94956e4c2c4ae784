"""gymnax's ``Environment`` interface over worldplan's JAX cores, without depending on gymnax.

``make_gymnax_env("worldplan/Spaceship-v0", action_mode="discrete")`` returns a
:class:`GymnaxEnv` that code and wrappers written against gymnax 1.0 (PureJaxRL-style loops,
``gymnax.wrappers.LogWrapper``, ``FlattenObservationWrapper``, ``GymnaxToGymWrapper``) run
unchanged. How gymnax's interface maps onto :class:`envs.jax_env.JaxEnv`:

- ``step(key, state, action, params=None)`` is :func:`envs.jax_env.autoreset_step`, which splits
  the key and resets in the same call as gymnax's ``Environment.step`` does. The info holds the
  core's keys and gymnax's ``"terminated"``, ``"truncated"`` and ``"final_observation"`` (the
  observation before any reset; ``autoreset_step``'s ``"final_obs"`` under gymnax's name).
- Time limit: gymnax truncates at ``params.max_steps_in_episode``; the worldplan cores truncate at
  ``params.max_steps`` themselves and ``step`` returns their flag. There is no
  ``max_steps_in_episode`` field and no ``is_truncated``; ``max_steps`` is static, so
  ``make_gymnax_env(env_id, max_steps=50)`` (or ``params.replace``) sets it and jit recompiles.
- Spaces: gymnax's own classes (``gymnax.environments.spaces``) when gymnax is installed, so the
  ``isinstance`` checks in its wrappers pass; otherwise :class:`Discrete`, :class:`Box` and
  :class:`Dict` below, with gymnax's constructors and attributes.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import partial
from typing import Any, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from envs.jax_env import JaxEnv, autoreset_step, make_jax_env


class Discrete:
    """The integers ``0 .. n-1``, as gymnax's ``spaces.Discrete``."""

    def __init__(self, num_categories: int, dtype: Any = jnp.int32):
        self.n = int(num_categories)
        self.shape: tuple[int, ...] = ()
        self.dtype = jnp.dtype(dtype)

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniform draw: () int32."""
        return jax.random.randint(key, self.shape, 0, self.n, self.dtype)

    def contains(self, x: Any) -> jax.Array:
        """Whether ``x`` is a scalar whole number in [0, n): () bool, traceable."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.array(False)
        return (x >= 0) & (x < self.n) & (x == jnp.round(x))


class Box:
    """An array of ``shape`` between ``low`` and ``high``, as gymnax's ``spaces.Box``."""

    def __init__(self, low: Any, high: Any, shape: tuple[int, ...], dtype: Any = jnp.float32):
        self.low = low
        self.high = high
        self.shape = tuple(shape)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, dtype={np.dtype(self.dtype).name})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A draw of ``shape``: uniform where both bounds are finite (as gymnax).

        Where a bound is infinite (state observations), gymnax's uniform draw is inf or NaN; here,
        as in Gymnasium's ``Box.sample``, it is a standard normal, or an exponential off the one
        finite bound.
        """
        key_uniform, key_normal, key_exp = jax.random.split(key, 3)
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), self.shape)
        has_low, has_high = jnp.isfinite(low), jnp.isfinite(high)
        uniform = jax.random.uniform(
            key_uniform,
            self.shape,
            minval=jnp.where(has_low, low, 0.0),
            maxval=jnp.where(has_high, high, 1.0),
        )
        normal = jax.random.normal(key_normal, self.shape)
        exponential = jax.random.exponential(key_exp, self.shape)
        value = jnp.where(
            has_low & has_high,
            uniform,
            jnp.where(has_low, low + exponential, jnp.where(has_high, high - exponential, normal)),
        )
        return value.astype(self.dtype)

    def contains(self, x: Any) -> jax.Array:
        """Whether ``x`` has ``shape`` and lies within the bounds (NaN does not): () bool."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.array(False)
        return jnp.all((x >= self.low) & (x <= self.high))


class Dict:
    """A dict of named subspaces, as gymnax's ``spaces.Dict``."""

    def __init__(self, spaces: dict[str, Any]):
        self.spaces = spaces
        self.num_spaces = len(spaces)

    def __repr__(self) -> str:
        return f"Dict({self.spaces!r})"

    def sample(self, key: jax.Array) -> dict[str, jax.Array]:
        """One draw from each subspace, under the subspace's name."""
        keys = jax.random.split(key, self.num_spaces)
        items = zip(self.spaces.items(), keys, strict=True)
        return {name: space.sample(k) for (name, space), k in items}

    def contains(self, x: Any) -> jax.Array:
        """Whether ``x`` is a mapping with exactly these keys, each in its subspace: () bool."""
        if not hasattr(x, "keys") or set(x.keys()) != set(self.spaces):
            return jnp.array(False)
        return jnp.all(jnp.stack([space.contains(x[k]) for k, space in self.spaces.items()]))


class SpaceClasses(NamedTuple):
    """The three space classes a :class:`GymnaxEnv` builds its spaces from."""

    discrete: type
    box: type
    dict: type


BUILTIN_SPACES = SpaceClasses(Discrete, Box, Dict)
"""This module's look-alikes of gymnax's spaces."""


def default_space_classes() -> SpaceClasses:
    """The space classes of gymnax if it is installed, else :data:`BUILTIN_SPACES`."""
    if importlib.util.find_spec("gymnax") is None:
        return BUILTIN_SPACES
    spaces = importlib.import_module("gymnax.environments.spaces")
    return SpaceClasses(spaces.Discrete, spaces.Box, spaces.Dict)


def _bound(bound: np.ndarray) -> np.ndarray | float | int:
    """A Box bound as gymnax's own envs write it: a scalar where it is the same everywhere.

    gymnax 1.0.1's ``gymnax_space_to_gym_space`` (``GymnaxToGymWrapper``) calls ``float()`` on any
    bound of size 1, which NumPy 2 refuses for a (1,) array such as a hybrid action's angle.
    """
    return bound.flat[0].item() if np.all(bound == bound.flat[0]) else bound


def to_gymnax_space(space: gymnasium.Space, classes: SpaceClasses) -> Any:
    """The gymnax-style counterpart of a Gymnasium Discrete, Box or Dict space.

    Raises:
        ValueError: a Discrete space that does not start at 0, or another kind of space.
    """
    if isinstance(space, gymnasium.spaces.Discrete):
        if space.start != 0:
            raise ValueError(f"gymnax Discrete spaces start at 0, got start={space.start}")
        return classes.discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.Box):
        return classes.box(_bound(space.low), _bound(space.high), space.shape, space.dtype)
    if isinstance(space, gymnasium.spaces.Dict):
        return classes.dict({k: to_gymnax_space(v, classes) for k, v in space.spaces.items()})
    raise ValueError(f"no gymnax counterpart for {space!r}: expected Discrete, Box or Dict")


class GymnaxEnv:
    """A worldplan JAX env behind gymnax 1.0's ``Environment`` interface (duck-typed).

    Hashable by identity, as gymnax envs are, so ``jax.jit(..., static_argnames="self")`` (gymnax's
    wrappers) and ``copy.deepcopy`` (``GymnaxToGymWrapper``) work. ``reset`` and ``step`` are
    jitted with ``self`` static like gymnax's, although our house jits only at the outermost entry
    point: gymnax code calls them from Python loops and expects compiled speed, and a jit nested
    in an outer jit is inlined.
    """

    def __init__(
        self,
        env_id: str,
        env: JaxEnv,
        obs_mode: str | None = None,
        space_classes: SpaceClasses | None = None,
    ):
        self._env_id = env_id
        self._env = env
        self._obs_mode = obs_mode
        self._classes = space_classes if space_classes is not None else default_space_classes()

    @property
    def jax_env(self) -> JaxEnv:
        """The wrapped :class:`JaxEnv` (its spaces are the Gymnasium ones)."""
        return self._env

    @property
    def default_params(self) -> Any:
        """The params the env was made with (``SpaceshipParams`` or ``DrivingParams``)."""
        return self._env.params

    @property
    def name(self) -> str:
        """The registered id, e.g. ``"worldplan/Spaceship-v0"``."""
        return self._env_id

    @property
    def num_actions(self) -> int:
        """Discrete: the number of actions; continuous: the action's length (gymnax's usage).

        Raises:
            NotImplementedError: Spaceship's hybrid (Dict) actions have no single count.
        """
        space = self.action_space()
        if hasattr(space, "n"):
            return int(space.n)
        if hasattr(space, "shape"):
            return int(np.prod(space.shape))
        raise NotImplementedError(f"{self.name}: a {space!r} action has no single num_actions")

    def reset_env(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]:
        """The core's reset: ``(obs, state)`` of a fresh episode."""
        return self._env.reset(key, params)

    def step_env(
        self, key: jax.Array, state: Any, action: Any, params: Any
    ) -> tuple[jax.Array, Any, jax.Array, jax.Array, dict[str, Any]]:
        """The core's step without reset: ``(obs, state, reward, terminated, info)``.

        gymnax's ``step_env`` returns no truncation flag (gymnax derives it from the state's time);
        here the core's flag is in ``info["truncated"]``.
        """
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, terminated, {**info, "truncated": truncated}

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, Any]:
        """``(obs, state)`` of a fresh episode; ``params`` defaults to :attr:`default_params`."""
        return self.reset_env(key, self.default_params if params is None else params)

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self, key: jax.Array, state: Any, action: Any, params: Any = None
    ) -> tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One step with gymnax 1.0's same-step autoreset.

        Returns:
            ``(obs, state, reward, terminated, truncated, info)``: obs and state of the new episode
            where ``terminated | truncated``; info holds the core's keys and ``"terminated"``,
            ``"truncated"``, ``"final_observation"`` (the observation before any reset).
        """
        params = self.default_params if params is None else params
        obs, state, reward, terminated, truncated, info = autoreset_step(
            self._env, key, state, action, params
        )
        final_observation = info.pop("final_obs")
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": final_observation,
        }
        return obs, state, reward, terminated, truncated, info

    def _spaces_env(self, params: Any) -> JaxEnv:
        """The :class:`JaxEnv` whose Gymnasium spaces belong to ``params`` (default: the env's).

        Traced params (inside ``jit``) keep their static fields (modes, sizes: the shapes and
        counts), and bounds that other fields set (Driving's speed and lane width) are the
        default params' values, as spaces need concrete bounds.
        """
        if params is None or params is self.default_params:
            return self._env
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(params)):
            defaults = jax.tree.leaves(self.default_params)
            params = jax.tree.unflatten(jax.tree.structure(params), defaults)
        modes = {} if self._obs_mode is None else {"obs_mode": self._obs_mode}
        return make_jax_env(self._env_id, action_mode=params.action_mode, params=params, **modes)

    def action_space(self, params: Any = None) -> Any:
        """The gymnax-style space of one action under ``params``."""
        return to_gymnax_space(self._spaces_env(params).action_space, self._classes)

    def observation_space(self, params: Any = None) -> Any:
        """The gymnax-style space of one observation under ``params``."""
        return to_gymnax_space(self._spaces_env(params).observation_space, self._classes)


def make_gymnax_env(
    env_id: str, *, space_classes: SpaceClasses | None = None, **kwargs: Any
) -> GymnaxEnv:
    """A gymnax-compatible env for a registered id with a JAX core.

    Args:
        env_id: "worldplan/Spaceship-v0" or "worldplan/Driving-v0".
        space_classes: the classes to build spaces from; default :func:`default_space_classes`.
        **kwargs: as :func:`envs.jax_env.make_jax_env` (``action_mode``, ``obs_mode``, ``params``,
            params overrides such as ``max_steps``).

    Raises:
        ValueError: an id without a JAX core (e.g. the pymunk envs), or bad kwargs.
    """
    env = make_jax_env(env_id, **kwargs)
    return GymnaxEnv(env_id, env, kwargs.get("obs_mode"), space_classes)
