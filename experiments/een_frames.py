"""Training of the three frame predictors that the EEN experiments compare (poke, driving).

The deterministic model g, then the EEN's f and phi with g frozen (the paper's two phases), then
the conditional VAE baseline, each through the shared trainer (``world_models.trainer.fit``) and
checkpointed every epoch in the run folder.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax

from world_models import een
from world_models.trainer import FitResult, TrainerConfig, fit


def train_frame_models(
    model: een.EENConfig,
    trainer: TrainerConfig,
    seed: int,
    resume: bool,
    train: dict,
    run_dir: Path,
    log=print,
) -> dict[str, FitResult]:
    """Phase one (g), phase two (f, phi; g frozen) and the CVAE; returns their FitResults.

    Args:
        model: the frame networks' architecture and loss.
        trainer: optimiser settings, used for each of the three fits.
        seed: seed of the initialisations (the trainer's own seed orders the minibatches).
        resume: continue each model from ``run_dir/<g|een|cvae>.ckpt`` where it exists.
        train: ``frame``, ``next_frame`` (N, H, W, C) uint8 training pairs.
        run_dir: the run folder.
        log: progress printer.
    """
    key = jax.random.PRNGKey(seed)
    frame_shape = train["frame"].shape[1:]

    def fit_saved(name: str, loss, init) -> FitResult:
        path = run_dir / f"{name}.ckpt"
        return fit(
            loss,
            init,
            train,
            trainer,
            checkpoint_path=path,
            resume=resume and path.exists(),
            log=log,
        )

    g0 = een.init_deterministic(key, model, frame_shape)
    log("phase 1: deterministic g")
    g = fit_saved("g", functools.partial(een.deterministic_loss, model), g0)
    log("phase 2: EEN f and phi, g frozen")
    e0 = een.init_een(jax.random.fold_in(key, 1), model, g.params, frame_shape)
    e = fit_saved("een", functools.partial(een.een_loss, model, g.params), e0)
    log("conditional VAE")
    c0 = een.init_cvae(jax.random.fold_in(key, 2), model, g.params, frame_shape)
    c = fit_saved("cvae", functools.partial(een.cvae_loss, model), c0)
    return {"g": g, "een": e, "cvae": c}
