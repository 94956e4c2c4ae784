"""Action distributions built from Gymnasium spaces: categorical, Gaussian, and products of them.

A policy network outputs one flat vector of ``num_inputs`` distribution inputs per observation;
:func:`make_distribution` turns an action space into an object that reads that vector. Entries
where ``free_mask`` is true are state-independent parameters (the Gaussian log standard
deviations, as in Stable-Baselines3) that the network supplies from a free parameter instead of
its last layer.

Each distribution works on *raw* actions, the values that were sampled, and maps them to what the
environment receives with ``to_env``. For a clipped Gaussian the raw action is the unclipped
sample; for a squashed Gaussian it is the pre-tanh sample. Storing raw actions keeps PPO ratios
exact where clipping or squashing would lose information.

Supported spaces: ``Discrete``, ``Box`` (float), and ``Dict`` / ``Tuple`` of supported spaces
(a factorised policy: independent parts, summed log-probabilities and entropies). The hybrid
spaceship action ``Dict({"fire": Discrete(2), "angle": Box(1)})`` is such a product.

Distributions are hashable and equal by value, so two policies built for the same space share
their compiled functions (:mod:`agents.common.compiled`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Categorical over ``Discrete(n, start)``; inputs are ``n`` unnormalised logits."""

    n: int
    """Number of choices."""
    start: int = 0
    """Offset of the first choice, as in ``gymnasium.spaces.Discrete``."""

    @property
    def num_inputs(self) -> int:
        """Length of the input vector: the logits."""
        return self.n

    @property
    def free_mask(self) -> np.ndarray:
        """No state-independent inputs."""
        return np.zeros(self.n, bool)

    def sample(self, inputs: jax.Array, key: jax.Array) -> jax.Array:
        """Samples an int32 raw action in [0, n) from (n,) logits."""
        return jax.random.categorical(key, inputs).astype(jnp.int32)

    def mode(self, inputs: jax.Array) -> jax.Array:
        """The most likely raw action."""
        return jnp.argmax(inputs).astype(jnp.int32)

    def log_prob(self, inputs: jax.Array, raw: jax.Array) -> jax.Array:
        """Log-probability of raw action ``raw`` (int scalar) under (n,) logits."""
        return jax.nn.log_softmax(inputs)[raw]

    def entropy(self, inputs: jax.Array) -> jax.Array:
        """Entropy ``-sum p log p`` [nats]."""
        log_p = jax.nn.log_softmax(inputs)
        return -jnp.sum(jnp.exp(log_p) * log_p)

    def to_env(self, raw: jax.Array) -> jax.Array:
        """The action the environment receives: ``raw + start``."""
        return raw + self.start


@dataclasses.dataclass(frozen=True, eq=False)
class Gaussian:
    """Diagonal Gaussian over a ``Box``, clipped or tanh-squashed into its bounds.

    Inputs: ``size`` means followed by ``size`` log standard deviations (the latter are free,
    state-independent parameters). ``squash=False`` clips the sample to the bounds when it goes
    to the env (Stable-Baselines3's default); ``squash=True`` maps it through
    ``low + (tanh(u) + 1) (high - low) / 2`` and needs finite bounds.
    """

    shape: tuple[int, ...]
    """Shape of one action."""
    low: np.ndarray
    """Lower bounds, shape ``shape``."""
    high: np.ndarray
    """Upper bounds, shape ``shape``."""
    squash: bool = False
    """Squash with tanh instead of clipping."""

    def _value(self) -> tuple:
        return (self.shape, self.low.tobytes(), self.high.tobytes(), self.squash)

    def __eq__(self, other: object) -> bool:
        """Equal shape, bounds and squash: the same distribution (compiled functions are shared)."""
        return isinstance(other, Gaussian) and self._value() == other._value()

    def __hash__(self) -> int:
        return hash(self._value())

    @property
    def size(self) -> int:
        """Number of action dimensions."""
        return int(np.prod(self.shape))

    @property
    def num_inputs(self) -> int:
        """Means then log standard deviations."""
        return 2 * self.size

    @property
    def free_mask(self) -> np.ndarray:
        """The log standard deviations are state-independent."""
        return np.arange(2 * self.size) >= self.size

    def _split(self, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return inputs[: self.size], inputs[self.size :]

    def sample(self, inputs: jax.Array, key: jax.Array) -> jax.Array:
        """Samples a raw action of shape ``shape``."""
        mean, log_std = self._split(inputs)
        noise = jax.random.normal(key, mean.shape, mean.dtype)
        return (mean + jnp.exp(log_std) * noise).reshape(self.shape)

    def mode(self, inputs: jax.Array) -> jax.Array:
        """The mean, as a raw action."""
        return self._split(inputs)[0].reshape(self.shape)

    def log_prob(self, inputs: jax.Array, raw: jax.Array) -> jax.Array:
        """Log-density of the env action that ``raw`` maps to.

        Clipped: the Gaussian density of ``raw`` (clipping is ignored, as in SB3). Squashed: the
        change of variables ``log N(u) - sum log |d a / d u|`` with
        ``d a / d u = (1 - tanh(u)^2) (high - low) / 2``.
        """
        mean, log_std = self._split(inputs)
        u = raw.reshape(-1)
        z = (u - mean) * jnp.exp(-log_std)
        log_p = -0.5 * jnp.sum(z**2 + 2.0 * log_std + LOG_2PI)
        if self.squash:
            # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
            log_det = 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))
            half_range = (self.high - self.low).reshape(-1) / 2.0
            log_p = log_p - jnp.sum(log_det + jnp.log(half_range))
        return log_p

    def entropy(self, inputs: jax.Array) -> jax.Array:
        """Entropy of the Gaussian ``sum(log_std + (1 + log 2 pi) / 2)`` [nats].

        For ``squash=True`` this is the entropy of the pre-squash Gaussian (the squashed one has
        no closed form); it is used only as a regulariser.
        """
        log_std = self._split(inputs)[1]
        return jnp.sum(log_std + 0.5 * (1.0 + LOG_2PI))

    def to_env(self, raw: jax.Array) -> jax.Array:
        """Clips or squashes a raw action into ``[low, high]``."""
        low = jnp.asarray(self.low, raw.dtype)
        high = jnp.asarray(self.high, raw.dtype)
        if self.squash:
            return low + (jnp.tanh(raw) + 1.0) * (high - low) / 2.0
        return jnp.clip(raw, low, high)


@dataclasses.dataclass(frozen=True)
class Factorised:
    """Independent parts for a ``Dict`` or ``Tuple`` space; raw actions are dicts or tuples."""

    names: tuple[Any, ...]
    """Dict keys, or tuple indices."""
    parts: tuple[Any, ...]
    """One distribution per name."""
    is_dict: bool
    """Actions are dicts (``Dict`` space) rather than tuples."""

    @property
    def num_inputs(self) -> int:
        """Sum over parts."""
        return sum(p.num_inputs for p in self.parts)

    @property
    def free_mask(self) -> np.ndarray:
        """Concatenation over parts."""
        return np.concatenate([p.free_mask for p in self.parts])

    def _inputs(self, inputs: jax.Array) -> list[jax.Array]:
        bounds = np.cumsum([0] + [p.num_inputs for p in self.parts])
        return [inputs[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def _pack(self, values: list[Any]) -> Any:
        return dict(zip(self.names, values, strict=True)) if self.is_dict else tuple(values)

    def _unpack(self, raw: Any) -> list[Any]:
        return [raw[n] for n in self.names] if self.is_dict else list(raw)

    def sample(self, inputs: jax.Array, key: jax.Array) -> Any:
        """Samples every part with its own key."""
        keys = jax.random.split(key, len(self.parts))
        xs = self._inputs(inputs)
        return self._pack([p.sample(x, k) for p, x, k in zip(self.parts, xs, keys, strict=True)])

    def mode(self, inputs: jax.Array) -> Any:
        """Mode of every part."""
        xs = self._inputs(inputs)
        return self._pack([p.mode(x) for p, x in zip(self.parts, xs, strict=True)])

    def log_prob(self, inputs: jax.Array, raw: Any) -> jax.Array:
        """Sum of the parts' log-probabilities."""
        xs, rs = self._inputs(inputs), self._unpack(raw)
        return sum(p.log_prob(x, r) for p, x, r in zip(self.parts, xs, rs, strict=True))

    def entropy(self, inputs: jax.Array) -> jax.Array:
        """Sum of the parts' entropies."""
        return sum(p.entropy(x) for p, x in zip(self.parts, self._inputs(inputs), strict=True))

    def to_env(self, raw: Any) -> Any:
        """Maps every part to its env action."""
        rs = self._unpack(raw)
        return self._pack([p.to_env(r) for p, r in zip(self.parts, rs, strict=True)])


Distribution = Categorical | Gaussian | Factorised


def make_distribution(space: gym.Space, squash: bool = False) -> Distribution:
    """Builds the action distribution for a Gymnasium action space.

    Args:
        space: ``Discrete``, float ``Box``, or ``Dict`` / ``Tuple`` of those (nested allowed).
        squash: squash Gaussians with tanh (needs finite bounds) instead of clipping.

    Raises:
        ValueError: for an unsupported space, or ``squash=True`` with an unbounded ``Box``.
    """
    if isinstance(space, gym.spaces.Discrete):
        return Categorical(int(space.n), int(space.start))
    if isinstance(space, gym.spaces.Box) and np.issubdtype(space.dtype, np.floating):
        low = np.asarray(space.low, np.float32)
        high = np.asarray(space.high, np.float32)
        if squash and not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"squash=True needs a bounded Box action space, got {space}")
        return Gaussian(tuple(space.shape), low, high, squash)
    if isinstance(space, gym.spaces.Dict):
        names = tuple(space.spaces.keys())
        parts = tuple(make_distribution(space[n], squash) for n in names)
        return Factorised(names, parts, True)
    if isinstance(space, gym.spaces.Tuple):
        parts = tuple(make_distribution(s, squash) for s in space.spaces)
        return Factorised(tuple(range(len(parts))), parts, False)
    raise ValueError(
        f"action space {space} is not supported: expected Discrete, float Box, "
        "or Dict/Tuple of them"
    )
