"""Image frames for the image models (EEN, PhysNet): one pixel convention, shape checks, errors.

Frames are ``(H, W, C)`` arrays: floats in [0, 1], or integer pixel values in 0..255 of any
integer dtype, which :func:`to_float` scales, so a model trained on uint8 data sees the same
inputs at inference as in its losses. Every function takes ONE example; batch with ``jax.vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def to_float(frames: jax.Array, name: str = "frames") -> jax.Array:
    """Frames of any shape as float32 in [0, 1], the pixel convention of the image models.

    Args:
        frames: integer pixel values in 0..255 (any integer dtype: an int32 copy of a uint8
            image is the same image), scaled by 1/255; or floats already in [0, 1], or bools,
            only cast to float32.
        name: the argument's name in the error message.

    Raises:
        ValueError: ``frames`` has a dtype that is not integer, floating or bool.
    """
    frames = jnp.asarray(frames)
    if jnp.issubdtype(frames.dtype, jnp.integer):
        return frames.astype(jnp.float32) / 255.0
    if jnp.issubdtype(frames.dtype, jnp.floating) or frames.dtype == jnp.bool_:
        return frames.astype(jnp.float32)
    raise ValueError(
        f"{name}: expected integer (0..255) or float ([0, 1]) pixels, got {frames.dtype}"
    )


def same_shape(first: jax.Array, second: jax.Array, names: str) -> None:
    """Raises ValueError naming ``names`` ("a, b") unless the two arrays' shapes are equal."""
    if jnp.shape(first) != jnp.shape(second):
        raise ValueError(
            f"{names}: expected equal shapes, got {jnp.shape(first)} and {jnp.shape(second)}"
        )


def frame_errors(prediction: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean absolute error and PSNR [dB] of one (H, W, C) prediction clipped to [0, 1].

    Both frames follow the pixel convention of :func:`to_float` (integer ones are scaled).
    """
    same_shape(prediction, target, "prediction, target")
    prediction = jnp.clip(to_float(prediction, "prediction"), 0.0, 1.0)
    target = to_float(target, "target")
    mse = jnp.mean((prediction - target) ** 2)
    return jnp.mean(jnp.abs(prediction - target)), -10.0 * jnp.log10(mse + 1e-10)
