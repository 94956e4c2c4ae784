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


def image_patches(image: jax.Array, size: int, stride: int) -> jax.Array:
    """The ``size`` x ``size`` patches of one image at a stride, as rows of a matrix.

    Args:
        image: (H, W, C) array.
        size: patch side k [pixels].
        stride: step s between patches [pixels].

    Returns:
        (Ho, Wo, k * k * C) with Ho = (H - k) // s + 1 (and Wo alike): entry ``[p, q]`` holds
        ``image[s*p + i, s*q + j, c]`` at index ``(i * k + j) * C + c``, the order of an HWIO
        kernel reshaped to (k * k * C, features).
    """
    height, width, channels = image.shape
    rows, cols = (height - size) // stride + 1, (width - size) // stride + 1
    shifts = [
        jax.lax.slice(
            image,
            (i, j, 0),
            (i + stride * (rows - 1) + 1, j + stride * (cols - 1) + 1, channels),
            (stride, stride, 1),
        )
        for i in range(size)
        for j in range(size)
    ]
    return jnp.stack(shifts, axis=2).reshape(rows, cols, size * size * channels)


class PatchConv(nn.Module):
    """A "VALID" 2-D convolution of one (H, W, C) image, as its patches times the kernel.

    The function and the parameters (``kernel`` (k, k, C, features) in HWIO order, ``bias``
    (features,)) of ``nn.Conv(features, (k, k), (s, s), padding="VALID")`` on a batch of one,
    to float rounding. The reason is speed inside loops: the device path trains inside one
    ``lax.scan``, and XLA's CPU backend runs the gradient of a convolution ~10x slower in a
    loop body than outside one (jax-ml/jax#12868: there the kernel- and input-gradient
    convolutions keep their non-canonical dimension orders). Slices and a matmul have gradients
    that run as fast in a loop (``python -m benchmarks.agents --pixels`` measures both).
    """

    features: int
    """Output channels."""
    size: int
    """Kernel side k [pixels]."""
    stride: int
    """Step between output pixels s [pixels]."""
    kernel_init: Callable[..., jax.Array] = nn.initializers.lecun_normal()
    """Initialiser of the (k, k, C, features) kernel."""

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        """Maps one (H, W, C) image to ((H - k) // s + 1, (W - k) // s + 1, features)."""
        channels = image.shape[-1]
        shape = (self.size, self.size, channels, self.features)
        kernel = self.param("kernel", self.kernel_init, shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        matrix = kernel.reshape(self.size * self.size * channels, self.features)
        return image_patches(image, self.size, self.stride) @ matrix + bias


class SmallCNN(nn.Module):
    """Conv 32x8/4, 64x4/2, 64x3/1 then Dense(features), ReLU, for one (H, W, C) image.

    Images need at least 36 x 36 pixels (the third convolution's input is then 3 x 3).
    """

    features: int = 256
    """Output width."""

    LAYERS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
    """(channels, kernel side, stride) of each convolution."""
    MIN_SIDE = 36
    """Smallest image side [pixels] that leaves every convolution an output."""

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        """Maps one (H, W, C) image (uint8 in [0, 255] or float in [0, 1]) to (features,).

        Raises:
            ValueError: not an (H, W, C) image, or a side under :attr:`MIN_SIDE`.
        """
        if image.ndim != 3 or min(image.shape[:2]) < self.MIN_SIDE:
            raise ValueError(
                f"SmallCNN takes one (H, W, C) image with H, W >= {self.MIN_SIDE} (its "
                f"8x8/4, 4x4/2, 3x3/1 convolutions leave no pixels of smaller ones), got "
                f"shape {image.shape}; resize the env's images or flatten them for the MLP"
            )
        x = image.astype(jnp.float32)
        if jnp.issubdtype(image.dtype, jnp.integer):
            x = x / 255.0
        for i, (features, size, stride) in enumerate(self.LAYERS):
            # Named as nn.Conv's were, so runs saved before PatchConv load unchanged.
            conv = PatchConv(features, size, stride, orthogonal(math.sqrt(2.0)), name=f"Conv_{i}")
            x = nn.relu(conv(x))
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
            "gymnasium.wrappers.vector.FlattenObservation(gymnasium.make_vec(env_id, num_envs)) "
            "(python -m agents.a2c / agents.ppo: --flatten-observation); or keep one Box entry "
            "of a Dict (e.g. the image) with gymnasium.wrappers.vector.TransformObservation, and "
            "reload that run with agents.common.policy.load_policy(run_dir, env=<the same "
            "wrapped env>)"
        )
    return ActorCritic(
        num_inputs=num_inputs,
        free_mask=tuple(bool(m) for m in free_mask),
        hidden=tuple(hidden),
        pixels=is_pixel_space(observation_space),
    )
