"""The spaceship table of Henaff, Whitney & LeCun (2017), arXiv:1705.07177, re-measured.

``python -m experiments.spaceship`` (add ``--full`` for the paper's budgets) runs RANDOM, A2C,
GBP and DISTGBP through a learned forward model, CEM through the same model, and GBP through the
true dynamics, evaluates each on >= 100 episodes, and writes ``results/spaceship/<run>/`` with
``table.md``, ``curve.png``, ``metrics.json``, ``config.json`` and the checkpoints that
``planners.checkpoints.load_policy`` reads. It prints the table and checks the talk's claims on the
measured numbers:

    paper (spaceship): RANDOM -62.7 (0 steps); A2C -19.2, 0.01 s/action, 3.8M steps;
    GBP 11.1, 0.19 s/action, 800K steps; DISTGBP 12.2, 0.01 s/action, 800K steps.

Every planner optimises the model's reward minus a smooth planet barrier (:mod:`planners.shaping`:
a crash is an indicator with no gradient, so without it GBP flies into the planet as often as not);
``--barrier.weight 0`` plans on the reward alone. Returns are always the env's reward.

Time per action is measured for ONE env (the latency of an agent acting alone), compiled, on this
machine's default JAX device.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import agents.a2c as a2c_lib
from experiments import io
from experiments.configs import inline_cpu_dispatch, refuse_replaced, run_main, timing_note
from experiments.spaceship_phases import (
    barrier_note,
    forward_model,
    learning_curve,
    model_based_rows,
    planner_rows,
    run_a2c,
)
from experiments.spaceship_report import (
    PAPER_A2C_STEPS,
    PAPER_MODEL_STEPS,
    write_results,
)
from experiments.spaceship_run import Run
from experiments.stages import open_run
from planners import cem as cem_lib
from planners import checkpoints, shaping
from planners import distill as distill_lib
from planners import gbp as gbp_lib
from planners import relax as relax_lib
from world_models import data as data_lib
from world_models import dynamics as dynamics_lib
from world_models import trainer


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the spaceship experiment (defaults: a few minutes on a 2-core CPU)."""

    full: bool = False
    """Paper budgets: A2C 3.8M env steps, forward model 800K env steps."""
    action_mode: str = "continuous"
    """Spaceship action mode: "continuous", "discrete" or "hybrid"."""
    seed: int = 0
    """Seed of everything."""
    eval_episodes: int = 100
    """Evaluation episodes per table row (95% CI over them)."""
    eval_max_steps: int | None = None
    """Steps per evaluation episode (>= 1); None = the env's time limit (200)."""
    curve_episodes: int = 32
    """Evaluation episodes per intermediate point of the learning curve."""
    a2c_steps: int = 400_000
    """A2C env steps when not ``full``."""
    model_steps: int = 60_000
    """Forward-model env steps when not ``full`` (random data, then planner refreshes)."""
    random_fraction: float = 0.75
    """Share of the model budget collected by the sticky random policy; the rest by GBP rollouts."""
    refresh_rounds: int = 1
    """Rounds of GBP rollouts with the current model that refresh the dataset (0 = random only)."""
    curve_fractions: tuple[float, ...] = (0.25,)
    """Smaller model budgets (fractions of the data, in collection order) for the curve."""
    n_envs: int = 64
    """Envs collected in parallel; the sticky random policy's share of the model budget must
    give each at least one step."""
    timing_repeats: int = 50
    """Single-env calls timed to measure time per action, the median reported (0: report the
    batched evaluation's wall time per step instead, which skips one compile per row)."""
    dynamics: dynamics_lib.DynamicsConfig = dynamics_lib.DynamicsConfig()
    """Forward model."""
    model_trainer: trainer.TrainerConfig = trainer.TrainerConfig(
        learning_rate=1e-3, batch_size=256, max_epochs=30, patience=4
    )
    """Training of the forward model (its seed is added to :attr:`seed`: :attr:`model_fit`)."""
    gbp: gbp_lib.GBPConfig = gbp_lib.GBPConfig(
        horizon=10, n_iterations=10, n_restarts=2, learning_rate=0.2, unroll=10
    )
    """GBP through the learned model."""
    gbp_true: gbp_lib.GBPConfig = gbp_lib.GBPConfig(horizon=20, n_iterations=20, learning_rate=0.1)
    """GBP through the true dynamics."""
    cem: cem_lib.CEMConfig = cem_lib.CEMConfig(horizon=12, n_samples=64, n_iterations=3, n_elites=8)
    """CEM through the learned model."""
    distill: distill_lib.DistillConfig = distill_lib.DistillConfig()
    """DISTGBP."""
    policy_trainer: trainer.TrainerConfig = trainer.TrainerConfig(
        learning_rate=1e-3, batch_size=128, max_epochs=40, patience=5
    )
    """Training of the distilled policy (its seed is added to :attr:`seed`: :attr:`policy_fit`)."""
    barrier: shaping.BarrierConfig = shaping.BarrierConfig()
    """Planet barrier added to every planner's objective (GBP, DISTGBP's teacher, CEM, GBP through
    the true dynamics; never to the returns reported); ``--barrier.weight 0`` plans on the reward
    alone."""
    a2c: a2c_lib.A2CConfig = a2c_lib.A2CConfig(num_envs=16, log_every_steps=50_000)
    """A2C baseline (its total_steps is replaced by the budget)."""
    results_root: str = "results/spaceship"
    """Parent folder of the run folder."""
    run_name: str | None = None
    """Run folder name (default: a timestamp)."""
    resume: bool = False
    """Continue the run in ``results_root/run_name`` (same flags): its finished phases are loaded
    (``<run>/stages/``, A2C from its last checkpoint), the rest is run; the table is the one an
    uninterrupted run would have written."""

    @property
    def a2c_budget(self) -> int:
        """A2C env steps used."""
        return PAPER_A2C_STEPS if self.full else self.a2c_steps

    @property
    def a2c_run(self) -> a2c_lib.A2CConfig:
        """The A2C config trained: :attr:`a2c` with :attr:`a2c_budget` steps."""
        return dataclasses.replace(self.a2c, total_steps=self.a2c_budget)

    @property
    def model_fit(self) -> trainer.TrainerConfig:
        """:attr:`model_trainer`, its seed (validation split, shuffling) offset by :attr:`seed`."""
        return dataclasses.replace(self.model_trainer, seed=self.model_trainer.seed + self.seed)

    @property
    def policy_fit(self) -> trainer.TrainerConfig:
        """:attr:`policy_trainer` with its seed offset by :attr:`seed`."""
        return dataclasses.replace(self.policy_trainer, seed=self.policy_trainer.seed + self.seed)

    @property
    def model_budget(self) -> int:
        """Forward-model env steps used."""
        return PAPER_MODEL_STEPS if self.full else self.model_steps

    def __post_init__(self) -> None:
        relax_lib.for_action_mode(self.action_mode)
        if self.eval_episodes < 2 or self.curve_episodes < 2:
            raise ValueError("eval_episodes and curve_episodes must be >= 2 (for a CI)")
        if not 0 < self.random_fraction <= 1 or self.refresh_rounds < 0:
            raise ValueError("random_fraction must be in (0, 1] and refresh_rounds >= 0")
        refuse_replaced(self, {("a2c", "total_steps"): "--a2c-steps (or --full)"})
        if any(not 0 < f < 1 for f in self.curve_fractions):
            raise ValueError(f"curve_fractions={self.curve_fractions}: each must be in (0, 1)")
        if self.a2c_steps < 1:
            raise ValueError(f"--a2c-steps must be >= 1, got {self.a2c_steps}")
        if self.n_envs < 1:
            raise ValueError(f"--n-envs must be >= 1, got {self.n_envs}")
        cem_lib.check_model_config(self.cem, self.dynamics)
        # train_model collects int(budget * share) random steps first; data.collect needs at
        # least one step per env.
        share = self.random_fraction if self.refresh_rounds > 0 else 1.0
        if int(self.model_budget * share) < self.n_envs:
            raise ValueError(
                f"--model-steps: the model budget {self.model_budget} times the random share "
                f"{share:g} (--random-fraction, or 1 with --refresh-rounds 0) must be >= "
                f"--n-envs={self.n_envs}"
            )
        if self.eval_max_steps is not None and self.eval_max_steps < 1:
            raise ValueError(
                f"--eval-max-steps must be >= 1 (or None: the env's time limit), "
                f"got {self.eval_max_steps}"
            )
        if self.timing_repeats < 0:
            raise ValueError(
                f"--timing-repeats must be >= 1 (or 0: batched wall time), "
                f"got {self.timing_repeats}"
            )


def main(config: Config) -> Path:
    """Runs the experiment and writes its results folder; returns the folder.

    With ``config.resume``, the phases an earlier attempt of the same run finished are loaded.
    """
    budgets = {"a2c_budget": config.a2c_budget, "model_budget": config.model_budget}
    resolved = {**io.to_jsonable(config), **budgets}
    run_dir, stages = open_run(
        config.results_root, config.run_name, resolved, config.resume, "spaceship"
    )
    run = Run(config, stages)
    relax = run.relax
    rows = run.rows("random", lambda: [run.row("RANDOM", data_lib.random_policy(relax), None, 0)])
    a2c_row, a2c_curve = run_a2c(run, run_dir)
    rows.append(a2c_row)
    curve = {"A2C": a2c_curve, "GBP": [], "DISTGBP": []}

    model, params, data = forward_model(run)
    run.log(f"forward model trained on {len(data.obs):,} env steps")
    learning_curve(run, model, data, curve)
    model_rows, student_params, history = model_based_rows(
        run, "model-based", model, params, data.obs
    )
    rows += model_rows
    for row in model_rows:
        curve[row.name].append((row.env_steps, row.result.mean))
    rows += planner_rows(run, model, params, len(data.obs))

    checkpoints.save_artifacts(
        run_dir,
        action_mode=config.action_mode,
        obs_dim=model.obs_dim,
        dynamics_config=config.dynamics,
        gbp_config=config.gbp,
        oracle_config=config.gbp_true,
        barrier=config.barrier,
        distill_hidden=config.distill.hidden_sizes,
        model_params=params,
        student_params=student_params,
        a2c_config=config.a2c_run,
    )
    budgets = (config.a2c_budget, config.model_budget)
    write_results(
        run_dir,
        config.full,
        budgets,
        rows,
        curve,
        history,
        (barrier_note(config.barrier), timing_note(config.timing_repeats)),
        stages.seconds(),
    )
    return run_dir


if __name__ == "__main__":
    inline_cpu_dispatch()  # before any JAX computation: steadier single-call timings
    run_main(main, Config)
