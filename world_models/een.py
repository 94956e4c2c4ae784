"""Error-Encoding Network and its deterministic and CVAE baselines.

Henaff, Zhao and LeCun, "Prediction Under Uncertainty with Error-Encoding Networks" (2017). A
deterministic network ``g`` predicts ``y`` from ``x``. A second network ``f`` of the same shape
predicts ``y`` from ``x`` and a latent ``z = phi(y - g(x))``, bounded by ``tanh`` (eq. 2 of the
paper): the latent can only carry what ``g`` could not predict from ``x``. Training has two
phases, ``g`` alone, then ``f`` (initialised from ``g``) and ``phi`` with ``g`` frozen. At test
time ``z`` is drawn from the bank of latents computed on the training set, so each draw is a
different plausible future. The conditional VAE baseline replaces ``phi`` by a Gaussian posterior
``q(z | x, y)`` with a standard normal prior.

Every function here takes ONE example; batch with ``jax.vmap`` where it is called (the losses
do). Frames are ``(H, W, C)`` with ``H`` and ``W`` multiples of 8: floats in [0, 1], or integer
pixel values in 0..255 of any integer dtype (uint8, int32, ...), which every public function
that takes frames scales to [0, 1] itself (:func:`world_models.frames.to_float`), so a model
trained on uint8 data sees the same inputs at inference. Predictions are floats in [0, 1] (up
to the network's error). Shapes are checked when a function is traced (they are static, so the
checks cost nothing under ``jit``). Networks predict a residual: ``y_hat = x + decoder(...)``,
since most of the table does not change in a poke.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from world_models import frames

Params = Any

ACTIVATION = nn.elu
"""Hidden activation. ELU, not ReLU: with the L1 loss the best guess for most pixels is "no
change", and ReLU units of g then die early; f inherits them from g, and a latent added to dead
maps cannot reach the output."""


@dataclasses.dataclass(frozen=True)
class EENConfig:
    """Architecture and loss of the frame predictors (shared by g, f, phi and the CVAE)."""

    features: int = 64
    """Feature maps of every conv layer (paper: 64)."""
    latent_dim: int = 8
    """Size of z (paper: nz = 8)."""
    loss: str = "l1"
    """Per-pixel loss: "l1" (paper) or "l2"."""
    kl_weight: float = 1e-3
    """CVAE: weight of KL(q || N(0, I)) [nats] against the per-pixel loss."""

    def __post_init__(self) -> None:
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"EENConfig.loss: expected 'l1' or 'l2', got {self.loss!r}")
        if self.features < 1 or self.latent_dim < 1 or self.kl_weight < 0:
            raise ValueError("EENConfig: features and latent_dim must be >= 1, kl_weight >= 0")


class Encoder(nn.Module):
    """Conv 7x7/2, 5x5/2, 5x5/2 with ELU: (H, W, C) -> (H/8, W/8, features)."""

    features: int

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:  # noqa: D102
        for i, size in enumerate((7, 5, 5)):
            image = ACTIVATION(nn.Conv(self.features, (size, size), (2, 2), name=f"conv{i}")(image))
        return image


class Decoder(nn.Module):
    """Transposed conv 5x5/2, 5x5/2 (ELU), 7x7/2: (H/8, W/8, F) -> (H, W, channels).

    The last layer starts at zero (see the comment there), so ``x + Decoder(...)`` starts at x.
    """

    features: int
    channels: int

    @nn.compact
    def __call__(self, hidden: jax.Array) -> jax.Array:  # noqa: D102
        for i in range(2):
            hidden = ACTIVATION(
                nn.ConvTranspose(self.features, (5, 5), (2, 2), name=f"deconv{i}")(hidden)
            )
        # zero init: the predictor starts as "copy the input", the best guess for the ~96% of
        # pixels a poke leaves unchanged, so training only has to learn where things move
        return nn.ConvTranspose(
            self.channels, (7, 7), (2, 2), kernel_init=nn.initializers.zeros, name="deconv2"
        )(hidden)


class Predictor(nn.Module):
    """``g(x)`` (``latent=False``) or ``f(x, z)``: z enters the encoder's maps via a Dense layer.

    ``f``'s parameters are ``g``'s plus ``latent_proj``, so ``f`` can start as a copy of ``g``.
    """

    features: int
    channels: int
    latent: bool = False

    @nn.compact
    def __call__(self, frame: jax.Array, z: jax.Array | None = None) -> jax.Array:
        """(H, W, C) frame and optional (nz,) latent -> (H, W, C) predicted next frame."""
        hidden = Encoder(self.features, name="encoder")(frame)
        if self.latent:
            if z is None:
                raise ValueError("z: this predictor needs a latent of shape (latent_dim,)")
            # zero init: f starts exactly as g, and z's effect grows from there
            project = nn.Dense(hidden.size, kernel_init=nn.initializers.zeros, name="latent_proj")
            hidden = hidden + project(z).reshape(hidden.shape)
        return frame + Decoder(self.features, self.channels, name="decoder")(hidden)


class LatentEncoder(nn.Module):
    """``phi`` (tanh-bounded z) or the CVAE posterior (mean, log-variance) from an image."""

    features: int
    latent_dim: int
    variational: bool = False

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array | tuple[jax.Array, jax.Array]:
        """(H, W, C) -> (nz,) z, or ((nz,), (nz,)) mean and log-variance."""
        hidden = Encoder(self.features, name="encoder")(image).reshape(-1)
        # The error image is sparse and small; normalising its features keeps z from starting
        # (and staying) near a constant, which would let f ignore it.
        hidden = nn.LayerNorm(name="norm")(hidden)
        if self.variational:
            return nn.Dense(self.latent_dim, name="mean")(hidden), nn.Dense(
                self.latent_dim, name="log_var"
            )(hidden)
        return jnp.tanh(nn.Dense(self.latent_dim, name="latent")(hidden))


def _g(config: EENConfig, channels: int) -> Predictor:
    return Predictor(config.features, channels)


def _f(config: EENConfig, channels: int) -> Predictor:
    return Predictor(config.features, channels, latent=True)


def check_frame_shape(shape: tuple[int, ...], name: str = "frame_shape") -> None:
    """Raises ValueError unless ``shape`` is (H, W, C) with H, W positive multiples of 8."""
    if len(shape) != 3 or shape[0] % 8 or shape[1] % 8 or min(shape) < 1:
        raise ValueError(
            f"{name}: expected (H, W, C) with H, W positive multiples of 8, got {tuple(shape)}"
        )


def as_frame(frame: jax.Array, name: str = "frame") -> jax.Array:
    """One (H, W, C) frame, shape checked (:func:`check_frame_shape`), as float32 in [0, 1]."""
    check_frame_shape(jnp.shape(frame), name)
    return frames.to_float(frame, name)


def init_deterministic(key: jax.Array, config: EENConfig, frame_shape: tuple[int, ...]) -> Params:
    """Parameters of ``g`` for frames of shape (H, W, C)."""
    check_frame_shape(frame_shape)
    return _g(config, frame_shape[-1]).init(key, jnp.zeros(frame_shape))["params"]


def init_een(
    key: jax.Array, config: EENConfig, g_params: Params, frame_shape: tuple[int, ...]
) -> Params:
    """Phase-two parameters ``{"f", "phi"}``; ``f`` starts as ``g`` plus a new ``latent_proj``."""
    check_frame_shape(frame_shape)
    f_key, phi_key = jax.random.split(key)
    f_new = _f(config, frame_shape[-1]).init(
        f_key, jnp.zeros(frame_shape), jnp.zeros(config.latent_dim)
    )["params"]
    phi = LatentEncoder(config.features, config.latent_dim).init(phi_key, jnp.zeros(frame_shape))[
        "params"
    ]
    return {"f": {**g_params, "latent_proj": f_new["latent_proj"]}, "phi": phi}


def init_cvae(
    key: jax.Array, config: EENConfig, g_params: Params, frame_shape: tuple[int, ...]
) -> Params:
    """CVAE parameters ``{"f", "q"}``; ``f`` starts from ``g``; ``q`` reads (x, y) stacked."""
    een = init_een(key, config, g_params, frame_shape)
    pair_shape = (*frame_shape[:2], 2 * frame_shape[-1])
    q = LatentEncoder(config.features, config.latent_dim, variational=True).init(
        jax.random.fold_in(key, 1), jnp.zeros(pair_shape)
    )["params"]
    return {"f": een["f"], "q": q}


def predict_deterministic(config: EENConfig, g_params: Params, frame: jax.Array) -> jax.Array:
    """``g(x)``: (H, W, C) frame (see the module's pixel convention) -> (H, W, C) float32."""
    frame = as_frame(frame)
    return _g(config, frame.shape[-1]).apply({"params": g_params}, frame)


def predict_latent(config: EENConfig, f_params: Params, frame: jax.Array, z: jax.Array):
    """``f(x, z)``: (H, W, C) frame and (nz,) latent -> (H, W, C) float32 predicted next frame."""
    frame = as_frame(frame)
    if jnp.shape(z) != (config.latent_dim,):
        raise ValueError(f"z: expected shape ({config.latent_dim},), got {jnp.shape(z)}")
    return _f(config, frame.shape[-1]).apply({"params": f_params}, frame, z)


def encode_error(
    config: EENConfig,
    g_params: Params,
    phi_params: Params,
    frame: jax.Array,
    next_frame: jax.Array,
) -> jax.Array:
    """``z = phi(y - g(x))``, (nz,) in (-1, 1); g is held fixed (no gradient flows into it).

    ``frame`` and ``next_frame``: (H, W, C) each, in the module's pixel convention.
    """
    frames.same_shape(frame, next_frame, "frame, next_frame")
    next_frame = as_frame(next_frame, "next_frame")
    error = next_frame - jax.lax.stop_gradient(predict_deterministic(config, g_params, frame))
    return LatentEncoder(config.features, config.latent_dim).apply({"params": phi_params}, error)


def cvae_posterior(config: EENConfig, q_params: Params, frame: jax.Array, next_frame: jax.Array):
    """Mean and log-variance, each (nz,), of the CVAE posterior q(z | x, y).

    ``frame`` and ``next_frame``: (H, W, C) each, in the module's pixel convention.
    """
    frames.same_shape(frame, next_frame, "frame, next_frame")
    pair = jnp.concatenate([as_frame(frame), as_frame(next_frame, "next_frame")], axis=-1)
    module = LatentEncoder(config.features, config.latent_dim, variational=True)
    return module.apply({"params": q_params}, pair)


def pixel_loss(config: EENConfig, prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Mean per-pixel L1 or squared error over one frame (scalar); integer frames are scaled."""
    frames.same_shape(prediction, target, "prediction, target")
    error = frames.to_float(prediction, "prediction") - frames.to_float(target, "target")
    return jnp.mean(jnp.abs(error)) if config.loss == "l1" else jnp.mean(error**2)


def _batch_frames(batch: dict) -> tuple[jax.Array, jax.Array]:
    """``batch["frame"]`` and ``batch["next_frame"]`` (B, H, W, C) as float32 in [0, 1]."""
    return frames.to_float(batch["frame"], "batch['frame']"), frames.to_float(
        batch["next_frame"], "batch['next_frame']"
    )


def deterministic_loss(config: EENConfig, g_params: Params, batch: dict, key: jax.Array):
    """Phase one. ``batch``: ``frame``, ``next_frame`` (B, H, W, C). Returns (loss, metrics)."""
    del key
    x, y = _batch_frames(batch)
    prediction = jax.vmap(predict_deterministic, (None, None, 0))(config, g_params, x)
    loss = jnp.mean(jax.vmap(pixel_loss, (None, 0, 0))(config, prediction, y))
    return loss, {}


def _een_one(config: EENConfig, g_params: Params, params: Params, x, y) -> jax.Array:
    z = encode_error(config, g_params, params["phi"], x, y)
    return pixel_loss(config, predict_latent(config, params["f"], x, z), y)


def een_loss(config: EENConfig, g_params: Params, params: Params, batch: dict, key: jax.Array):
    """Phase two: loss of ``f(x, phi(y - g(x)))``; trains ``params = {"f", "phi"}``, not g."""
    del key
    x, y = _batch_frames(batch)
    losses = jax.vmap(_een_one, (None, None, None, 0, 0))(config, g_params, params, x, y)
    return jnp.mean(losses), {}


def _cvae_one(config: EENConfig, params: Params, x, y, key) -> tuple[jax.Array, jax.Array]:
    mean, log_var = cvae_posterior(config, params["q"], x, y)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
    kl = 0.5 * jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var)
    return pixel_loss(config, predict_latent(config, params["f"], x, z), y), kl


def cvae_loss(config: EENConfig, params: Params, batch: dict, key: jax.Array):
    """CVAE loss: pixel loss + ``kl_weight`` * KL(q(z|x,y) || N(0, I)); metrics recon, kl."""
    x, y = _batch_frames(batch)
    keys = jax.random.split(key, x.shape[0])
    recon, kl = jax.vmap(_cvae_one, (None, None, 0, 0, 0))(config, params, x, y, keys)
    return jnp.mean(recon) + config.kl_weight * jnp.mean(kl), {
        "recon": jnp.mean(recon),
        "kl": jnp.mean(kl),
    }


def latent_bank(
    config: EENConfig, g_params: Params, phi_params: Params, data: dict, batch_size: int = 256
) -> jax.Array:
    """``z = phi(y - g(x))`` for every training pair: (N, nz), drawn from at test time."""
    encode = jax.jit(jax.vmap(encode_error, (None, None, None, 0, 0)), static_argnums=0)
    parts = [
        encode(
            config,
            g_params,
            phi_params,
            frames.to_float(jnp.asarray(data["frame"][i : i + batch_size])),
            frames.to_float(jnp.asarray(data["next_frame"][i : i + batch_size])),
        )
        for i in range(0, len(data["frame"]), batch_size)
    ]
    return jnp.concatenate(parts)


def sample_errors(
    config: EENConfig, f_params: Params, frame: jax.Array, next_frame: jax.Array, zs: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """L1 and PSNR, each (k,), of ``f(x, z)`` for k latents ``zs`` (k, nz) of one example.

    ``frame`` and ``next_frame``: (H, W, C) each, in the module's pixel convention.
    """
    frames.same_shape(frame, next_frame, "frame, next_frame")
    if jnp.ndim(zs) != 2 or jnp.shape(zs)[1] != config.latent_dim:
        raise ValueError(f"zs: expected shape (k, {config.latent_dim}), got {jnp.shape(zs)}")
    predictions = jax.vmap(predict_latent, (None, None, None, 0))(config, f_params, frame, zs)
    return jax.vmap(frames.frame_errors, (0, None))(predictions, next_frame)


def draw_latents(
    kind: str, key: jax.Array, shape: tuple[int, int], bank: jax.Array | None, latent_dim: int
) -> jax.Array:
    """(B, k, nz) latents: uniform draws from the EEN ``bank`` or N(0, I) for the CVAE.

    Args:
        kind: "een" or "cvae".
        key: PRNG key.
        shape: (B, k) draws.
        bank: "een": (N, latent_dim) latents of the training pairs (:func:`latent_bank`), N >= 1;
            unused by "cvae".
        latent_dim: nz, the size of every latent (``EENConfig.latent_dim``).
    """
    if kind == "een":
        if bank is None:
            raise ValueError("bank: the EEN needs a latent bank (N, nz) to sample from")
        if jnp.ndim(bank) != 2 or jnp.shape(bank)[1] != latent_dim or len(bank) < 1:
            raise ValueError(
                f"bank: expected shape (N >= 1, latent_dim={latent_dim}), got {jnp.shape(bank)}"
            )
        return bank[jax.random.randint(key, shape, 0, bank.shape[0])]
    if kind == "cvae":
        return jax.random.normal(key, (*shape, latent_dim))
    raise ValueError(f"kind: expected 'een' or 'cvae', got {kind!r}")
