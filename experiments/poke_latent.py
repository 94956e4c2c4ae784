"""How much of the poke the EEN's latent carries: held-out ridge R^2 from z vs from the frame.

On aimed pokes (whose parameters are well defined by the motion they cause), the latent
``z = phi(y - g(x))`` of each example is regressed onto the poke's start x, y, cos and sin of its
angle, and length; the same regression from the input frame's pixels is the reference for what
could be guessed without seeing the outcome (e.g. the start point lies near some object).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from world_models import een, frames

LAMBDAS = (1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5)
"""Ridge penalties tried; the one with the best R^2 on a 20% split of the training set wins."""


def ridge_r2(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    lambdas: tuple[float, ...] = LAMBDAS,
) -> np.ndarray:
    """Held-out R^2 per target, (targets,), of ridge regression on standardised features.

    Args:
        train_x: (n, features) training inputs.
        train_y: (n, targets) training targets.
        test_x: (m, features) held-out inputs.
        test_y: (m, targets) held-out targets.
        lambdas: penalties tried; picked on the last 20% of the training rows.
    """
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
    y_mu = train_y.mean(0)

    def solve(xs, ys, lam):
        return np.linalg.solve(xs.T @ xs + lam * np.eye(xs.shape[1]), xs.T @ (ys - y_mu))

    def r2(xs, ys, w):
        residual = ((ys - y_mu - xs @ w) ** 2).sum(0)
        return 1.0 - residual / (((ys - ys.mean(0)) ** 2).sum(0) + 1e-12)

    cut = int(0.8 * len(train_x))
    best = max(
        lambdas,
        key=lambda lam: r2(
            train_x[cut:], train_y[cut:], solve(train_x[:cut], train_y[:cut], lam)
        ).mean(),
    )
    return r2(test_x, test_y, solve(train_x, train_y, best))


def quadratic(z: np.ndarray) -> np.ndarray:
    """(n, d) -> (n, d + d(d+1)/2): z and its pairwise products."""
    rows, cols = np.triu_indices(z.shape[1])
    return np.concatenate([z, z[:, rows] * z[:, cols]], axis=1)


def poke_targets(poke: np.ndarray) -> np.ndarray:
    """Regression targets (n, 5) of pokes (n, 4): start x, start y, cos, sin of angle, length."""
    return np.stack(
        [poke[:, 0], poke[:, 1], np.cos(poke[:, 2]), np.sin(poke[:, 2]), poke[:, 3]], axis=1
    )


def latent_regression(
    model: een.EENConfig, g_params, phi_params, data: dict, num_train: int
) -> dict[str, float | list[float]]:
    """R^2 of the poke parameters from z = phi(y - g(x)) vs from the input frame's pixels.

    Args:
        model: architecture of the frame models.
        g_params: parameters of the deterministic model g.
        phi_params: parameters of the EEN's error encoder phi.
        data: ``frame``, ``next_frame`` (n, H, W, C) uint8, ``poke`` (n, 4), ``aimed`` (n,);
            the first ``num_train`` examples fit the regressions, the rest score them.
        num_train: examples in the regressions' training part.

    Returns:
        ``r2_<source>`` (mean over targets), ``r2_<source>_direction`` (mean over cos, sin)
        and ``r2_<source>_per_target`` for the sources "latent" and "frame".
    """
    encode = jax.jit(jax.vmap(een.encode_error, (None, None, None, 0, 0)), static_argnums=0)
    features: dict[str, list[np.ndarray]] = {"latent": [], "frame": []}
    targets = []
    for part in (slice(0, num_train), slice(num_train, None)):
        keep = data["aimed"][part]
        x = frames.to_float(jnp.asarray(data["frame"][part][keep]))
        y = frames.to_float(jnp.asarray(data["next_frame"][part][keep]))
        # z enters f through a nonlinear decoder, so its regression gets pairwise products too
        features["latent"].append(quadratic(np.asarray(encode(model, g_params, phi_params, x, y))))
        features["frame"].append(np.asarray(x).reshape(len(x), -1))
        targets.append(poke_targets(data["poke"][part][keep]))
    out: dict[str, float | list[float]] = {}
    for name, (train_x, test_x) in features.items():
        r2 = ridge_r2(train_x, targets[0], test_x, targets[1])
        out[f"r2_{name}"] = float(r2.mean())
        out[f"r2_{name}_direction"] = float(r2[2:4].mean())
        out[f"r2_{name}_per_target"] = r2.tolist()
    return out
