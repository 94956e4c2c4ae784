"""Best-of-k scoring and the samples figure of the poke experiment.

Each held-out poke is predicted ``max(ks)`` times per model (the deterministic model and "copy
input" once, repeated), and best-of-k keeps the best of the first k predictions per example.
Scores are the per-frame L1 and PSNR of :func:`world_models.frames.frame_errors` (mean over
examples with its Student-t 95% CI), and the PSNR of the mean squared error over examples: a
per-example PSNR is unbounded on frames the poke left unchanged (copying the input scores
100 dB there, the ``1e-10`` floor of ``frame_errors``), so its mean is dominated by those few
frames.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from agents.common.stats import mean_ci
from experiments import io
from world_models import een, frames

PSNR_FLOOR = 1e-10
"""The MSE floor inside ``frames.frame_errors`` (inverted by :func:`mse_from_psnr`)."""


def best_of_k_errors(
    model: een.EENConfig, params: dict, bank: jax.Array, test: dict, kmax: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-example L1 and PSNR of ``kmax`` predictions: ``{model: (l1 (N, K), psnr (N, K))}``.

    Args:
        model: architecture of the frame models.
        params: ``g`` (deterministic params), ``een`` and ``cvae`` (params of their ``f``) and
            ``phi`` (the EEN's error encoder).
        bank: (M, nz) EEN latents of the training set.
        test: ``frame``, ``next_frame`` (N, H, W, C) uint8 held-out pokes.
        kmax: predictions per example.
        seed: seed of the latent draws.

    Returns:
        Scores for "copy input" (predict no change: how much the models learned),
        "deterministic", "een", "cvae" and "een, z of the truth": ``f(x, phi(y - g(x)))``,
        the EEN given the latent of the true outcome (what a well-drawn latent can reach).
    """
    x = frames.to_float(jnp.asarray(test["frame"]))
    y = frames.to_float(jnp.asarray(test["next_frame"]))
    det = jax.jit(jax.vmap(een.predict_deterministic, (None, None, 0)), static_argnums=0)
    encode = jax.jit(jax.vmap(een.encode_error, (None, None, None, 0, 0)), static_argnums=0)
    decode = jax.jit(jax.vmap(een.predict_latent, (None, None, 0, 0)), static_argnums=0)
    z_true = encode(model, params["g"], params["phi"], x, y)
    out = {}
    for name, prediction in (
        ("copy input", x),
        ("deterministic", det(model, params["g"], x)),
        ("een, z of the truth", decode(model, params["een"], x, z_true)),
    ):
        l1, psnr = jax.vmap(frames.frame_errors)(prediction, y)
        out[name] = tuple(np.repeat(np.asarray(m)[:, None], kmax, 1) for m in (l1, psnr))
    sample = jax.jit(jax.vmap(een.sample_errors, (None, None, 0, 0, 0)), static_argnums=0)
    chunk, n = max(1, 4000 // kmax), x.shape[0]
    for i, name in enumerate(("een", "cvae")):
        key = jax.random.PRNGKey(seed + 100 + i)
        zs = een.draw_latents(name, key, (n, kmax), bank, model.latent_dim)
        parts = [
            sample(model, params[name], x[j : j + chunk], y[j : j + chunk], zs[j : j + chunk])
            for j in range(0, n, chunk)
        ]
        out[name] = tuple(np.concatenate([np.asarray(p[m]) for p in parts]) for m in (0, 1))
    return out


def mse_from_psnr(psnr: np.ndarray) -> np.ndarray:
    """Inverts ``frames.frame_errors``' PSNR [dB] to the per-frame mean squared error."""
    return np.maximum(10.0 ** (-np.asarray(psnr, np.float64) / 10.0) - PSNR_FLOOR, 0.0)


def best_of_k(errors: dict, model: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-example best L1, best PSNR [dB] and the MSE of that best-PSNR sample, each (N,)."""
    l1, psnr = errors[model]
    best_psnr = psnr[:, :k].max(axis=1)
    return l1[:, :k].min(axis=1), best_psnr, mse_from_psnr(best_psnr)


def best_of_k_rows(errors: dict, ks: tuple[int, ...]) -> list[dict]:
    """One row per (model, k): mean L1, PSNR and PSNR of the mean MSE, with 95% CIs."""
    rows = []
    for name in errors:
        for k in ks:
            l1, psnr, mse = best_of_k(errors, name, k)
            row = {"model": name, "k": k}
            for metric, values in (("l1", l1), ("psnr", psnr)):
                row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = mean_ci(values)
            # a larger mean MSE is a lower PSNR: the CI ends swap
            m, lo, hi = mean_ci(mse)
            row["psnr_of_mean_mse"] = float(-10 * np.log10(m))
            row["psnr_of_mean_mse_lo"] = float(-10 * np.log10(hi))
            row["psnr_of_mean_mse_hi"] = float(-10 * np.log10(max(lo, PSNR_FLOOR)))
            rows.append(row)
    return rows


def best_of_k_markdown(rows: list[dict]) -> str:
    """The best-of-k rows as a markdown table."""
    lines = [
        "| model | k | best L1 (95% CI) | best PSNR [dB] (95% CI) | "
        "PSNR of mean MSE [dB] (95% CI) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['k']} | {r['l1']:.4f} ({r['l1_lo']:.4f}-{r['l1_hi']:.4f}) | "
        f"{r['psnr']:.2f} ({r['psnr_lo']:.2f}-{r['psnr_hi']:.2f}) | "
        f"{r['psnr_of_mean_mse']:.2f} ({r['psnr_of_mean_mse_lo']:.2f}-"
        f"{r['psnr_of_mean_mse_hi']:.2f}) |"
        for r in rows
    ]
    return "\n".join(lines)


def save_samples_figure(
    path: Path,
    model: een.EENConfig,
    params: dict,
    bank: jax.Array,
    test: dict,
    seed: int,
    rows: int = 4,
    samples: int = 4,
) -> None:
    """Input, truth, deterministic prediction and EEN samples for a few test pokes.

    ``params`` holds ``g`` and ``een`` (the EEN's ``f``), as for :func:`best_of_k_errors`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(rows, len(test["frame"]))
    x = frames.to_float(jnp.asarray(test["frame"][:rows]))
    det = jax.vmap(een.predict_deterministic, (None, None, 0))(model, params["g"], x)
    zs = een.draw_latents("een", jax.random.PRNGKey(seed), (rows, samples), bank, model.latent_dim)
    sample = jax.vmap(jax.vmap(een.predict_latent, (None, None, None, 0)), (None, None, 0, 0))
    een_frames = sample(model, params["een"], x, zs)
    titles = ["input", "truth", "deterministic"] + [f"EEN {j + 1}" for j in range(samples)]
    fig, axes = plt.subplots(
        rows, len(titles), figsize=(1.6 * len(titles), 1.6 * rows), squeeze=False
    )
    for i in range(rows):
        images = [x[i], test["next_frame"][i] / 255.0, det[i], *een_frames[i]]
        for j, image in enumerate(images):
            axes[i, j].imshow(np.clip(np.asarray(image), 0, 1))
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=8)
    fig.tight_layout()
    io.save_figure(fig, path)
    plt.close(fig)
