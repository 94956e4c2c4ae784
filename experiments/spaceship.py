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
import time
from pathlib import Path

import jax
import numpy as np
import tyro

import agents.a2c as a2c_lib
from agents.common.evaluate import evaluate_jax
from envs.jax_env import make_jax_env
from experiments import io
from experiments.spaceship_report import PAPER_A2C_STEPS, PAPER_MODEL_STEPS, Row, write_results
from planners import cem as cem_lib
from planners import checkpoints, oracle, shaping
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
    """Steps per evaluation episode; None = the env's time limit (200)."""
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
    """Envs collected in parallel."""
    timing_repeats: int = 50
    """Single-env calls timed to measure time per action, the median reported (0: report the
    batched evaluation's wall time per step instead, which skips one compile per row)."""
    dynamics: dynamics_lib.DynamicsConfig = dynamics_lib.DynamicsConfig()
    """Forward model."""
    model_trainer: trainer.TrainerConfig = trainer.TrainerConfig(
        learning_rate=1e-3, batch_size=256, max_epochs=30, patience=4
    )
    """Training of the forward model."""
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
    """Training of the distilled policy."""
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

    @property
    def a2c_budget(self) -> int:
        """A2C env steps used."""
        return PAPER_A2C_STEPS if self.full else self.a2c_steps

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
        if any(not 0 < f < 1 for f in self.curve_fractions):
            raise ValueError(f"curve_fractions={self.curve_fractions}: each must be in (0, 1)")


def seconds_per_action(
    policy, init_carry, env, repeats: int, key: jax.Array, uses_state: bool = False
) -> float:
    """Median wall time of ``repeats`` compiled single-env policy calls, each timed alone [s].

    The call takes what the policy acts on: its carry, the observation and a key, plus the env
    state only when the policy reads it (``uses_state``; planning through the true dynamics).
    Otherwise the state is fixed when the call is traced: passing its 9 arrays to every call
    added ~65 us of dispatch on the 2-core CPU, against ~30 us for DISTGBP's whole network.
    The compile and one warm-up call are excluded. The median, not the mean: a sub-millisecond
    call on a shared CPU is now and then stalled by the OS, and one stall moved a mean of 20
    calls by 2x.
    """
    obs, state = env.reset(key, env.params)
    if uses_state:
        act, args = jax.jit(policy), (init_carry, obs, state)
    else:
        act = jax.jit(lambda carry, obs, key: policy(carry, obs, state, key))
        args = (init_carry, obs)
    jax.block_until_ready(act(*args, key))
    times = []
    for k in jax.random.split(key, repeats):
        start = time.perf_counter()
        jax.block_until_ready(act(*args, k))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def barrier_note(barrier: shaping.BarrierConfig) -> str:
    """One line for the table saying what the planners optimised."""
    if not barrier.enabled:
        return "Planners (GBP, DISTGBP's teacher, CEM) optimise the model's reward alone."
    return (
        "Planners (GBP, DISTGBP's teacher, CEM) optimise the model's reward minus a planet "
        f"barrier ({barrier.weight:g} reward/m inside {barrier.margin:g} m of the surface, "
        f"softness {barrier.scale:g} m; planners.shaping); returns are the env's reward. "
        "--barrier.weight 0 turns it off."
    )


def planner_step(config: Config, model: dynamics_lib.DynamicsModel):
    """The learned model as the planners see it: ``model.step`` with the planet barrier."""
    return shaping.shaped(model.step, config.barrier, "obs")


def train_model(config: Config, env, relax, key: jax.Array, log) -> tuple:
    """Collects the model budget (random, then GBP refreshes) and trains: (model, params, data)."""
    model = dynamics_lib.DynamicsModel(
        config.dynamics,
        env.observation_space.shape[0],
        relax.action_dim,
        tuple(map(bool, relax.simplex_mask)),
    )
    fraction = config.random_fraction if config.refresh_rounds > 0 else 1.0
    random_steps = int(config.model_budget * fraction)
    refresh = (config.model_budget - random_steps) // max(config.refresh_rounds, 1)
    keys = jax.random.split(key, config.refresh_rounds + 2)
    sticky = data_lib.sticky_policy(relax, 0.8)
    parts = [
        data_lib.collect(
            env, sticky, relax.random(keys[0]), relax, random_steps, keys[0], config.n_envs
        ).data
    ]
    params = model.fit(parts[0], config.model_trainer, keys[1], log=None).params
    step = planner_step(config, model)
    for round_index in range(config.refresh_rounds if refresh >= config.n_envs else 0):
        policy = gbp_lib.make_policy(config.gbp, relax, step, params)
        k = keys[round_index + 2]
        new = data_lib.collect(
            env, policy, gbp_lib.init_plan(config.gbp, relax), relax, refresh, k, config.n_envs
        )
        parts.append(new.data)
        log(f"refresh {round_index}: GBP rollouts return {np.mean(new.episode_returns):.1f}")
        params = model.fit(
            data_lib.concatenate(parts), config.model_trainer, k, params=params, log=None
        ).params
    data = data_lib.concatenate(parts)
    return model, params, data


class _Run:
    """What every phase of :func:`main` shares: settings, env, a key stream and a clock."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.env = make_jax_env("worldplan/Spaceship-v0", action_mode=config.action_mode)
        self.relax = relax_lib.for_action_mode(config.action_mode)
        self._root = jax.random.key(config.seed)
        self._count = 0
        self._start = time.perf_counter()

    def key(self) -> jax.Array:
        """A fresh PRNG key."""
        self._count += 1
        return jax.random.fold_in(self._root, self._count)

    def log(self, message: str) -> None:
        """Prints a phase line with the elapsed wall time."""
        print(f"[{time.perf_counter() - self._start:6.0f} s] {message}", flush=True)

    def row(
        self,
        name: str,
        policy,
        init_carry,
        env_steps: int,
        n: int | None = None,
        uses_state: bool = False,
    ) -> Row:
        """Evaluates a policy and times it for one env (batched time when timing_repeats=0).

        ``uses_state``: the policy reads the env state (see :func:`seconds_per_action`).
        """
        n = n or self.config.eval_episodes
        max_steps = self.config.eval_max_steps
        result = evaluate_jax(self.env, policy, n, self.key(), max_steps, init_carry)
        seconds = result.seconds_per_action
        if self.config.timing_repeats > 0:
            seconds = seconds_per_action(
                policy, init_carry, self.env, self.config.timing_repeats, self.key(), uses_state
            )
        self.log(f"{name}: {result.mean:.1f} [{result.ci95_low:.1f}, {result.ci95_high:.1f}]")
        return Row(name, result, seconds, env_steps)


def _quiet(message: str) -> None:
    """Trainer log sink: per-epoch lines are too chatty for the table run."""


def run_a2c(run: _Run, run_dir: Path) -> tuple[Row, list, a2c_lib.A2CConfig]:
    """Trains and evaluates A2C; returns its row, its training curve and its config."""
    a2c_config = dataclasses.replace(run.config.a2c, total_steps=run.config.a2c_budget)
    trained = a2c_lib.train(a2c_config, run.env, run.key(), run_dir=run_dir / "a2c", progress=False)
    policy = a2c_lib.make_policy(a2c_config, run.env, trained.params)
    curve = [
        (m["env_steps"], m["mean_return"])
        for m in trained.metrics
        if np.isfinite(m.get("mean_return", np.nan))
    ]
    return run.row("A2C", policy, None, trained.env_steps), curve, a2c_config


def run_model_based(
    run: _Run, model, params, buffer_obs: np.ndarray, n: int | None = None
) -> tuple:
    """GBP and DISTGBP through a model; returns (rows, distill result).

    ``buffer_obs`` (N, obs_dim) are the observations of the model's dataset, one per env step of
    its budget; DISTGBP labels them with GBP (no new env steps).
    """
    budget = len(buffer_obs)
    config, relax = run.config, run.relax
    step = planner_step(config, model)
    gbp_policy = gbp_lib.make_policy(config.gbp, relax, step, params)
    gbp_row = run.row("GBP", gbp_policy, gbp_lib.init_plan(config.gbp, relax), budget, n)
    result = distill_lib.distill(
        config.distill,
        config.policy_trainer,
        run.env,
        relax,
        config.gbp,
        step,
        params,
        run.key(),
        log=_quiet,
        buffer_obs=buffer_obs,
    )
    student = result.student.policy(result.params)
    dist_row = run.row("DISTGBP", student, np.zeros(()), budget + result.env_steps, n)
    return [gbp_row, dist_row], result


def main(config: Config) -> Path:
    """Runs the experiment and writes its results folder; returns the folder."""
    run_dir = io.make_run_dir(config.results_root, config.run_name)
    budgets = {"a2c_budget": config.a2c_budget, "model_budget": config.model_budget}
    io.write_json(run_dir / "config.json", {**io.to_jsonable(config), **budgets})
    run = _Run(config)
    relax = run.relax
    rows = [run.row("RANDOM", data_lib.random_policy(relax), None, 0)]
    a2c_row, a2c_curve, a2c_config = run_a2c(run, run_dir)
    rows.append(a2c_row)
    curve = {"A2C": a2c_curve, "GBP": [], "DISTGBP": []}

    model, params, data = train_model(config, run.env, relax, run.key(), run.log)
    run.log(f"forward model trained on {len(data.obs):,} env steps")
    for fraction in config.curve_fractions:
        budget = int(fraction * len(data.obs))
        part = data_lib.take(data, slice(0, budget))
        small = model.fit(part, config.model_trainer, run.key(), log=_quiet).params
        small_rows, _ = run_model_based(run, model, small, part.obs, config.curve_episodes)
        for row in small_rows:
            curve[row.name].append((row.env_steps, row.result.mean))
    model_rows, student = run_model_based(run, model, params, data.obs)
    rows += model_rows
    for row in model_rows:
        curve[row.name].append((row.env_steps, row.result.mean))

    cem_policy = cem_lib.make_policy(config.cem, relax, planner_step(config, model), params)
    cem_plan0 = np.zeros((config.cem.horizon, relax.param_dim), np.float32)
    rows.append(run.row("CEM", cem_policy, cem_plan0, len(data.obs)))
    true_policy = gbp_lib.make_policy(
        config.gbp_true,
        relax,
        shaping.shaped(oracle.model_step, config.barrier, "env_state"),
        run.env.params,
        use_env_state=True,
        done_fn=oracle.done_fn,
    )
    true_plan0 = gbp_lib.init_plan(config.gbp_true, relax)
    rows.append(run.row("GBP (true dynamics)", true_policy, true_plan0, 0, uses_state=True))

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
        student_params=student.params,
        a2c_config=a2c_config,
    )
    budgets = (config.a2c_budget, config.model_budget)
    write_results(
        run_dir, config.full, budgets, rows, curve, student.history, (barrier_note(config.barrier),)
    )
    return run_dir


if __name__ == "__main__":
    main(tyro.cli(Config))
