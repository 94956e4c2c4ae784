"""Driving in dense traffic: drivers, model-based driving, and predicting the traffic (EEN).

``worldplan/Driving-v0`` is a highway whose cars follow the IDM and change lanes at random, in
the spirit of Henaff, Canziani & LeCun (ICLR 2019), where a forward model of dense traffic is
learned from top-down frames. Measures:

1. drivers: return (mean, 95% CI), episode length and episodes ended early (a crash or off the
   road) of a random policy, the lane-keeping IDM driver (``envs.driving.driver``), PPO trained
   on device (``agents.ppo``, a model-free baseline with its env steps), GBP and CEM re-planning
   every step through a state dynamics model learned from ``--state-model.steps`` env steps and
   DISTGBP distilled from GBP (``experiments.driving_model``), and GBP and CEM re-planning every
   step through the true dynamics with a model that foresees no lane changes
   (``envs.driving.planning``; GBP with soft road and car barriers), with the env's rewards; and
   the talk's claims moved to the highway (model-based with fewer env steps beats model-free;
   DISTGBP matches GBP; DISTGBP acts 10x faster);
2. prediction under uncertainty: from one top-down frame, predict the frame ``horizon`` steps
   (1 s) later. One frame shows no speeds and no intentions, so the future is uncertain. Best-of-k
   L1 and PSNR (mean, 95% CI) on held-out episodes for copying the input, the deterministic model,
   the EEN (latents drawn from the training bank), a conditional VAE, and the EEN given the
   latent of the truth (Henaff, Zhao & LeCun, 2017), with the poke experiment's scoring
   (``experiments.poke_eval``) and verdicts (``experiments.poke_claims``);
3. a PNG of test frames with the deterministic prediction and EEN samples beside the truth.

``python -m experiments.driving`` (CPU, a few minutes) or ``--full`` (the env's 40x128 frames,
10x the data, 64 feature maps: meant for a GPU). Writes ``results/driving/<run>/``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Literal

import numpy as np

import agents.ppo as ppo_lib
from envs.driving.dataset import FrameDataConfig, collect_pairs
from envs.driving.params import DrivingParams
from experiments import io
from experiments.claims import verdict_lines
from experiments.configs import inline_cpu_dispatch, run_main, timing_note
from experiments.driving_drivers import drivers_markdown, drivers_stage, model_claims
from experiments.driving_model import ModelConfig
from experiments.een_frames import train_frame_models
from experiments.poke_claims import prediction_claims
from experiments.poke_eval import (
    best_of_k_errors,
    best_of_k_markdown,
    best_of_k_rows,
    save_samples_figure,
)
from experiments.stages import open_run
from planners import cem, gbp, shaping
from world_models import een
from world_models.trainer import TrainerConfig


@dataclasses.dataclass(frozen=True)
class Config:
    """Driving experiment settings; ``full`` switches the sizes to GPU scale (see properties)."""

    full: bool = False
    """GPU-scale run: the env's own 40x128 frames, 1,600 episodes, 64 feature maps."""
    seed: int = 0
    """Seed of the episodes, the initialisations and the evaluation draws."""
    run_name: str | None = None
    """Results subfolder name (default: a timestamp)."""
    resume: bool = False
    """Continue the run ``results_root/run_name`` (same flags) from each model's last epoch."""
    results_root: str = "results/driving"
    """Where run folders are created."""
    policy_episodes: int = 100
    """Episodes per driver in the driver table (random, IDM driver)."""
    ppo: ppo_lib.PPOConfig = ppo_lib.PPOConfig(total_steps=1_000_000, num_envs=64)
    """PPO baseline, trained on device (always run: ``--ppo.total-steps`` must be >= 1;
    measured: 3M steps reached a recent return of 24-30)."""
    state_model: ModelConfig = ModelConfig()
    """The learned state dynamics model, and GBP and DISTGBP through it
    (``--state-model.steps 0`` skips them)."""
    timing_repeats: int = 20
    """Single-env calls of GBP through the learned model and of DISTGBP timed for their time
    per action (the median is reported; ``agents.common.evaluate.seconds_per_action``)."""
    planner_episodes: int = 32
    """Episodes of each re-planning planner (GBP through the learned model or the true
    dynamics, CEM)."""
    planner: gbp.GBPConfig = gbp.GBPConfig(
        horizon=15, n_iterations=10, n_restarts=2, learning_rate=0.1
    )
    """GBP settings (measured on 32 episodes without the barrier: H20 N20 K4 scored 43.8 at 5x
    the time per action; H30 37.2)."""
    road_barrier: shaping.BarrierConfig = shaping.BarrierConfig(weight=5.0, margin=0.3, scale=0.1)
    """GBP's soft barrier at the road edges (``planners.shaping.driving_penalty``); weight 0
    turns it off. Without it GBP through the true dynamics drove off the road in 5 of 32
    episodes: the off-road penalty is an indicator, with no gradient."""
    car_barrier: shaping.BarrierConfig = shaping.BarrierConfig(weight=5.0, margin=0.5, scale=0.25)
    """GBP's soft barrier around each other car (``planners.shaping.driving_penalty``); weight 0
    turns it off. The learned model predicts the smooth reward but not the rare crash penalty:
    without the barrier GBP through it ended 16 of 32 episodes early (scratch run, 100K steps)."""
    cem_planner: cem.CEMConfig = cem.CEMConfig(horizon=15, n_samples=64, n_iterations=3, n_elites=8)
    """CEM settings (it scores sampled plans with the env's own reward: no barrier needed)."""
    episodes: int = 160
    """Simulated episodes for the frame data (default scale)."""
    test_episodes: int = 20
    """Of those, the last ones are held out for scoring (default scale)."""
    steps: int = 160
    """Steps per simulated episode."""
    horizon: int = 10
    """Steps between a frame and the frame to predict (10 steps = 1 s)."""
    stride: int = 5
    """Steps between consecutive pairs of one episode."""
    frame_rows: int = 24
    """Frame height across the road [px] (default scale; must be a multiple of 8)."""
    frame_cols: int = 64
    """Frame width along the road [px] (default scale; must be a multiple of 8)."""
    frame_scale: float = 0.75
    """Metres per pixel (default scale): 18 m x 48 m, 12 m behind the ego car to 36 m ahead."""
    features: int = 16
    """Conv feature maps (default scale)."""
    latent_dim: int = 8
    """EEN/CVAE latent size nz."""
    kl_weight: float = 1e-3
    """CVAE KL weight against the per-pixel loss."""
    loss: str = "l2"
    """Per-pixel loss ("l2" or "l1"). With L1, "no change" is the median of most pixels (the
    poke experiment measured that its latent path then never comes alive at CPU scale)."""
    epochs: int = 12
    """Epochs per training phase (default scale)."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "cosine"
    """Step-size decay over ``epochs``."""
    final_lr_fraction: float = 0.1
    """Step size at the end of the decay over ``learning_rate``."""
    learning_rate: float = 2e-3
    """Adam step size."""
    batch_size: int = 32
    """Minibatch size."""
    eval_examples: int = 150
    """Held-out pairs scored best-of-k (default scale; >= 2, for a CI)."""
    ks: tuple[int, ...] = (1, 5, 10, 50, 200)
    """Numbers of samples for best-of-k (each >= 1; must include 1, which the claims use)."""

    def __post_init__(self) -> None:
        if not 1 <= self.test_episodes < self.episodes:
            raise ValueError(
                f"test_episodes must be in [1, episodes={self.episodes}), got {self.test_episodes}"
            )
        if self.timing_repeats < 1:
            raise ValueError(f"timing_repeats must be >= 1, got {self.timing_repeats}")
        if self.policy_episodes < 2 or self.planner_episodes < 2:
            raise ValueError(
                f"policy_episodes and planner_episodes must be >= 2, got {self.policy_episodes} "
                f"and {self.planner_episodes}"
            )
        for flag, size in (("--frame-rows", self.frame_rows), ("--frame-cols", self.frame_cols)):
            if size < 8 or size % 8:
                raise ValueError(f"{flag} must be a positive multiple of 8, got {size}")
        if self.eval_examples < 2:
            raise ValueError(f"--eval-examples must be >= 2 (for a CI), got {self.eval_examples}")
        if not self.ks or min(self.ks) < 1 or 1 not in self.ks:
            raise ValueError(f"--ks must be non-empty, each >= 1, and include 1; got {self.ks}")

    @property
    def frame_params(self) -> DrivingParams:
        """The env's parameters with the observation frame of this scale."""
        if self.full:
            return DrivingParams()
        return DrivingParams(
            pixel_rows=self.frame_rows,
            pixel_cols=self.frame_cols,
            pixel_scale=self.frame_scale,
            pixel_behind=self.frame_cols * self.frame_scale / 4,
        )

    @property
    def data(self) -> FrameDataConfig:
        """The simulated frame pairs."""
        episodes = 1600 if self.full else self.episodes
        return FrameDataConfig(episodes, self.steps, self.horizon, self.stride, seed=self.seed)

    @property
    def num_test_episodes(self) -> int:
        """Held-out episodes."""
        return 200 if self.full else self.test_episodes

    @property
    def num_eval(self) -> int:
        """Held-out pairs scored best-of-k."""
        return 1000 if self.full else self.eval_examples

    @property
    def model(self) -> een.EENConfig:
        """Network settings."""
        return een.EENConfig(
            64 if self.full else self.features, self.latent_dim, self.loss, self.kl_weight
        )

    @property
    def trainer(self) -> TrainerConfig:
        """Optimiser settings of the three frame models (one fit per training phase)."""
        return TrainerConfig(
            self.learning_rate,
            64 if self.full else self.batch_size,
            30 if self.full else self.epochs,
            patience=30 if self.full else self.epochs,
            seed=self.seed,
            scan=False,  # convolutions inside lax.scan run 15-40x slower on XLA:CPU
            lr_schedule=self.lr_schedule,
            final_lr_fraction=self.final_lr_fraction,
        )


def resolved(config: Config) -> dict:
    """The config with its computed properties, as written to ``config.json``."""
    props = ("frame_params", "data", "num_test_episodes", "num_eval", "model", "trainer")
    return {**io.to_jsonable(config), **{p: io.to_jsonable(getattr(config, p)) for p in props}}


def main(config: Config, log=print) -> Path:
    """Runs the experiment and writes ``results/driving/<run>/``; returns that folder."""
    start = time.perf_counter()
    run_dir, stages = open_run(
        config.results_root, config.run_name, resolved(config), config.resume, "driving", log
    )
    drivers = drivers_stage(config, stages, run_dir, log)
    max_steps = DrivingParams().max_steps
    log(drivers_markdown(drivers, max_steps))
    driving_claims = model_claims(drivers, log)
    log(f"simulating {config.data.episodes} episodes of frames")
    data = collect_pairs(config.data, config.frame_params)
    is_test = data["episode"] >= config.data.episodes - config.num_test_episodes
    train = {k: data[k][~is_test] for k in ("frame", "next_frame")}
    test = {k: data[k][is_test] for k in ("frame", "next_frame")}
    log(f"{len(train['frame'])} training pairs, {len(test['frame'])} held-out pairs")
    model = config.model
    fits = train_frame_models(
        model, config.trainer, config.seed, config.resume, train, run_dir, log
    )
    g, f, phi = fits["g"].params, fits["een"].params["f"], fits["een"].params["phi"]
    bank = een.latent_bank(model, g, phi, train)
    params = {"g": g, "een": f, "phi": phi, "cvae": fits["cvae"].params["f"]}
    # Evenly spread over the held-out episodes (consecutive pairs of one episode are alike).
    pick = np.linspace(0, len(test["frame"]) - 1, min(config.num_eval, len(test["frame"])))
    scored = {k: v[pick.astype(int)] for k, v in test.items()}
    errors = best_of_k_errors(model, params, bank, scored, max(config.ks), config.seed)
    rows = best_of_k_rows(errors, config.ks)
    io.write_csv(run_dir / "best_of_k.csv", rows)
    save_samples_figure(run_dir / "samples.png", model, params, bank, scored, config.seed)
    claims = driving_claims + prediction_claims(errors, rows, max(config.ks), log)
    metrics = {
        "drivers": {
            name: {
                "mean": r.mean,
                "ci95_low": r.ci95_low,
                "ci95_high": r.ci95_high,
                "mean_episode_length": float(np.mean(r.episode_lengths)),
                "ended_early": int(np.sum(r.episode_lengths < max_steps)),
                "episodes": len(r.returns),
                "seconds_per_action": r.seconds_per_action,
            }
            for name, r in drivers.results.items()
        },
        "single_env_seconds_per_action": drivers.single_env_seconds,
        "best_of_k": rows,
        "histories": {k: v.history for k, v in fits.items()},
        "claims": claims,
        "seconds": time.perf_counter() - start,
        "phase_seconds": stages.seconds(),
    }
    io.write_json(run_dir / "metrics.json", metrics)
    table = (
        f"{drivers_markdown(drivers, max_steps)}\n\n{timing_note(config.timing_repeats)}\n\n"
        f"Frame {config.horizon} steps ahead:\n\n"
        f"{best_of_k_markdown(rows)}\n\n" + "\n".join(verdict_lines(claims)) + "\n"
    )
    io.atomic_write_text(run_dir / "table.md", table)
    log(table)
    log(f"wrote {run_dir} in {metrics['seconds']:.0f} s")
    return run_dir


if __name__ == "__main__":
    inline_cpu_dispatch()  # before any JAX computation: steadier single-call timings
    run_main(main, Config)
