"""Actor-critic networks, written for one observation and batched with ``jax.vmap`` by callers.

The MLP follows Stable-Baselines3's ``MlpPolicy``: separate policy and value MLPs (64, 64) with
tanh, orthogonal initialisation (gain sqrt 2 for hidden layers, 0.01 for the policy head, 1 for
the value head) and zero biases. Pixel observations ``(H, W, C)`` use a small Nature-DQN-like
CNN torso shared by both heads (as SB3's ``CnnPolicy``), with uint8 inputs scaled to [0, 1].
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np


def orthogonal(gain: float) -> Callable[..., jax.Array]:
    """Orthogonal initialiser whose QR runs one matrix at a time even under ``jax.vmap``.

    ``jit(vmap(train_fn))`` over seeds would otherwise batch the QR decomposition, and jaxlib's
    batched CPU LAPACK kernel (``ParallelBatchMap``) was seen to deadlock its thread pool on this
    2-core machine (jax 0.10.2). ``sequential_vmap`` turns the batch into a loop.
    """
    return functools.partial(_orthogonal, gain)


def _orthogonal(gain: float, key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32):
    init = functools.partial(nn.initializers.orthogonal(gain), shape=shape, dtype=dtype)
    return jax.custom_batching.sequential_vmap(init)(key)


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=orthogonal(gain), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    """Tanh MLP ``x -> h`` with orthogonal init."""

    hidden: Sequence[int]
    """Widths of the hidden layers."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps (D,) features to (hidden[-1],) features."""
        for width in self.hidden:
            x = nn.tanh(_dense(width, math.sqrt(2.0))(x))
        return x


class SmallCNN(nn.Module):
    """Conv 32x8/4, 64x4/2, 64x3/1 then Dense(features), ReLU, for one (H, W, C) image."""

    features: int = 256
    """Output width."""

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        """Maps one (H, W, C) image (uint8 in [0, 255] or float in [0, 1]) to (features,)."""
        x = image.astype(jnp.float32)
        if jnp.issubdtype(image.dtype, jnp.integer):
            x = x / 255.0
        x = x[None]  # flax Conv wants a batch axis; this module sees one image.
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            x = nn.Conv(
                features,
                (kernel, kernel),
                (stride, stride),
                padding="VALID",
                kernel_init=orthogonal(math.sqrt(2.0)),
            )(x)
            x = nn.relu(x)
        return nn.relu(_dense(self.features, math.sqrt(2.0))(x.reshape(-1)))


class ActorCritic(nn.Module):
    """Policy inputs and value for one observation.

    ``free_mask[i]`` marks distribution inputs that are free parameters (Gaussian log standard
    deviations, initialised to ``log_std_init``) rather than outputs of the policy head.
    """

    num_inputs: int
    """Length of the distribution input vector (see ``Distribution.num_inputs``)."""
    free_mask: tuple[bool, ...]
    """Which inputs are state-independent parameters."""
    hidden: Sequence[int] = (64, 64)
    """Hidden widths of each MLP (ignored for pixels)."""
    pixels: bool = False
    """Use the CNN torso (observations are (H, W, C) images)."""
    log_std_init: float = 0.0
    """Initial Gaussian log standard deviation."""

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Maps one observation to ``(inputs (num_inputs,), value ())``."""
        if self.pixels:
            features = SmallCNN()(obs)
            pi_features = vf_features = features
        else:
            flat = obs.reshape(-1).astype(jnp.float32)
            pi_features = MLP(self.hidden)(flat)
            vf_features = MLP(self.hidden)(flat)
        inputs = _dense(self.num_inputs, 0.01)(pi_features)
        value = _dense(1, 1.0)(vf_features)[0]
        mask = np.asarray(self.free_mask, bool)
        if mask.any():
            init = nn.initializers.constant(self.log_std_init)
            free = self.param("log_std", init, (int(mask.sum()),))
            inputs = inputs.at[np.flatnonzero(mask)].set(free)
        return inputs, value


def is_pixel_space(space: gym.Space) -> bool:
    """True for (H, W, C) ``Box`` observations (images)."""
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 3


def make_network(
    observation_space: gym.Space, num_inputs: int, free_mask: np.ndarray, hidden: Sequence[int]
) -> ActorCritic:
    """Chooses the MLP or CNN actor-critic for an observation space.

    Raises:
        ValueError: for a non-``Box`` observation space (``Dict``, ``Tuple``, ``Discrete``...);
            the message says how to flatten it.
    """
    if not isinstance(observation_space, gym.spaces.Box):
        raise ValueError(
            f"observation_space must be a Box (a vector, or an (H, W, C) image for the CNN), got "
            f"{observation_space}. Flatten it into one vector before training: for a VectorEnv "
            "gymnasium.wrappers.vector.FlattenObservation(gymnasium.make_vec(env_id, num_envs)); "
            "or keep one Box entry of a Dict (e.g. the image) with "
            "gymnasium.wrappers.vector.TransformObservation. Reload such a run with "
            "agents.common.policy.load_policy(run_dir, env=<the same wrapped env>)"
        )
    return ActorCritic(
        num_inputs=num_inputs,
        free_mask=tuple(bool(m) for m in free_mask),
        hidden=tuple(hidden),
        pixels=is_pixel_space(observation_space),
    )
