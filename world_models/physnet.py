"""PhysNet (Lerer, Gross & Fergus 2016, "Learning Physical Intuition of Block Towers by Example").

A ConvNet reads the side-view image of a tower at rest and predicts whether it falls and where
each block ends up: one mask per block level in the final frame. Here it is a small U-Net: an
encoder of strided convolutions, a fall head on globally pooled bottleneck features (so it
treats a block at an unseen height like any other) and an upsampling decoder with skip
connections for the masks. The plain classifier baseline is the same encoder
and fall head without the decoder (``with_masks=False``).

Modules are written for one sample (an image ``(S, S, 3)``); add the batch axis with ``jax.vmap``
at the call site, as :func:`batch_loss` does. ``S`` must be divisible by 16. Pixels follow
:func:`world_models.frames.to_float`: integer images of any dtype are 0..255 and scaled by 1/255
(an int32 copy of a uint8 image predicts the same), float images are in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from world_models.frames import to_float


class PhysNet(nn.Module):
    """Fall logit and per-block final-mask logits from one tower image."""

    max_blocks: int = 4
    """Mask channels: channel ``c`` is the block drawn in colour ``BLOCK_COLOURS[c]``."""
    features: Sequence[int] = (16, 32, 64, 64)
    """Channels of the four stride-2 encoder convolutions (the decoder mirrors them)."""
    decoder_features: Sequence[int] = (32, 16, 8)
    """Channels of the decoder convolutions at 8, 16 and 32 pixels (for S = 64)."""
    hidden: int = 128
    """Width of the fall head's hidden layer."""
    with_masks: bool = True
    """False gives the classifier baseline (no decoder, masks returned as None)."""

    @nn.compact
    def __call__(self, image: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Predicts from one image.

        Args:
            image: (S, S, 3) RGB, square, S divisible by 16: integers (any integer dtype) in
                0..255 or floats in [0, 1].

        Returns:
            ``fall_logit``: () logit of "some block moves more than the threshold";
            ``mask_logits``: (max_blocks, S, S) logits of the final occupancy of the block of
            each colour, or None.
        """
        check_image_shape(jnp.shape(image))
        x = to_float(image, "image") - 0.5
        skips = []
        for width in self.features:
            x = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2))(x))
            skips.append(x)
        # Fall head on globally pooled features, not a flattened map: a dense layer over
        # positions would never train the weights of a 4th level that 2-3 block towers never
        # reach. One more convolution widens the receptive field to ~6 block widths.
        h = nn.relu(nn.Conv(self.features[-1], (3, 3))(x))
        h = jnp.concatenate([h.max(axis=(0, 1)), h.mean(axis=(0, 1))])
        fall_logit = nn.Dense(1)(nn.relu(nn.Dense(self.hidden)(h)))[0]
        if not self.with_masks:
            return fall_logit, None
        # Decoder up to S/2, then logits upsampled: masks of 2x2-pixel cells cost a quarter.
        y = skips[-1]
        for width, skip in zip(self.decoder_features, skips[-2::-1], strict=True):
            y = nn.relu(nn.Conv(width, (3, 3))(upsample(y)))
            y = jnp.concatenate([y, skip], axis=-1)
        mask_logits = upsample(nn.Conv(self.max_blocks, (3, 3))(y))
        return fall_logit, jnp.moveaxis(mask_logits, -1, 0)


def check_image_shape(shape: tuple[int, ...], name: str = "image") -> None:
    """Raises ValueError unless ``shape`` is (S, S, 3) with S a positive multiple of 16.

    The decoder upsamples the maps of side S/16 ... S/2 onto the encoder's skips, which only line
    up for such S; square, as the tower images and the (max_blocks, S, S) masks are.
    """
    if len(shape) != 3 or shape[-1] != 3 or shape[0] != shape[1] or shape[0] % 16 or not shape[0]:
        raise ValueError(
            f"{name}: expected a square (S, S, 3) image with S > 0 divisible by 16, "
            f"got {tuple(shape)}"
        )


def upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling of (H, W, C) to (2H, 2W, C).

    Used instead of ``nn.ConvTranspose``, whose gradient XLA runs ~10x slower on the CPU.
    """
    return jnp.repeat(jnp.repeat(x, 2, axis=0), 2, axis=1)


def init_params(model: PhysNet, key: jax.Array, image_size: int = 64) -> Any:
    """Parameters for images of side ``image_size`` (a positive multiple of 16)."""
    check_image_shape((image_size, image_size, 3), "image_size")
    return model.init(key, jnp.zeros((image_size, image_size, 3), jnp.float32))["params"]


def sample_loss(
    model: PhysNet, params: Any, example: dict[str, jax.Array], mask_weight: float = 1.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Loss of one example.

    Args:
        model: the network.
        params: its parameters.
        example: ``image`` (S, S, 3) uint8; ``fell`` () float 0/1; ``masks`` (max_blocks, S, S)
            0/1 final occupancy per colour; ``present`` (max_blocks,) 1 for colours in the tower.
        mask_weight: weight of the mask term against the fall term.

    Returns:
        ``loss`` (): fall BCE + ``mask_weight`` * mean per-pixel mask BCE over present blocks;
        ``metrics``: ``fall_bce``, ``accuracy``, and with masks ``mask_bce``, ``mask_iou``.
    """
    fall_logit, mask_logits = model.apply({"params": params}, example["image"])
    fell = example["fell"].astype(jnp.float32)
    fall_bce = optax.sigmoid_binary_cross_entropy(fall_logit, fell)
    metrics = {"fall_bce": fall_bce, "accuracy": ((fall_logit > 0) == (fell > 0.5)).astype(float)}
    if mask_logits is None:
        return fall_bce, metrics
    target = example["masks"].astype(jnp.float32)
    present = example["present"].astype(jnp.float32)
    per_block = optax.sigmoid_binary_cross_entropy(mask_logits, target).mean(axis=(1, 2))
    mask_bce = jnp.sum(per_block * present) / jnp.maximum(present.sum(), 1.0)
    metrics["mask_bce"] = mask_bce
    metrics["mask_iou"] = masks_iou(mask_logits > 0, target > 0.5, present)
    return fall_bce + mask_weight * mask_bce, metrics


def masks_iou(predicted: jax.Array, target: jax.Array, present: jax.Array) -> jax.Array:
    """Mean intersection over union of (k, S, S) bool masks over levels with ``present`` (k,) 1.

    A level whose masks are both empty (a block that left the view) counts as IoU 1.
    """
    inter = jnp.sum(predicted & target, axis=(1, 2))
    union = jnp.sum(predicted | target, axis=(1, 2))
    iou = jnp.where(union > 0, inter / jnp.maximum(union, 1), 1.0)
    return jnp.sum(iou * present) / jnp.maximum(present.sum(), 1.0)


def batch_loss(
    model: PhysNet, params: Any, batch: dict[str, jax.Array], mask_weight: float = 1.0
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`sample_loss` vmapped over a batch (leading axis B) and averaged."""
    losses, metrics = jax.vmap(lambda ex: sample_loss(model, params, ex, mask_weight))(batch)
    return losses.mean(), jax.tree_util.tree_map(jnp.mean, metrics)


def fall_probability(model: PhysNet, params: Any, image: jax.Array) -> jax.Array:
    """() probability that the tower in ``image`` (S, S, 3) falls."""
    return jax.nn.sigmoid(model.apply({"params": params}, image)[0])


def training_arrays(data: dict[str, Any], max_blocks: int = 4) -> dict[str, Any]:
    """The fields of a tower dataset (``envs.towers.dataset``) that the loss reads.

    Args:
        data: arrays with leading axis N: ``image``, ``fell``, ``masks`` (channel ``c`` = the
            block coloured ``BLOCK_COLOURS[c]``), ``colours`` (N, max_blocks) per level, -1 pad.
        max_blocks: mask channels of the model.

    Returns:
        ``image`` (N, S, S, 3) uint8, ``fell`` (N,) float32, ``masks`` (N, max_blocks, S, S)
        uint8, ``present`` (N, max_blocks) float32: 1 for colours used in the tower.
    """
    colours = np.asarray(data["colours"])
    present = (colours[:, :, None] == np.arange(max_blocks)[None, None]).any(axis=1)
    return {
        "image": data["image"],
        "fell": data["fell"].astype("float32"),
        "masks": data["masks"][:, :max_blocks].astype("uint8"),
        "present": present.astype(np.float32),
    }
