"""The phases of ``experiments.spaceship``: A2C, the forward model, GBP and DISTGBP through it.

Each phase is saved in the run folder when it finishes (:class:`experiments.spaceship_run.Run`),
so that ``--resume`` loads it instead of running it again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

import agents.a2c as a2c_lib
from agents.common.results import CHECKPOINT as A2C_CHECKPOINT
from experiments.spaceship_report import Row, row_from_json, row_to_json
from experiments.spaceship_run import Run
from planners import cem as cem_lib
from planners import distill as distill_lib
from planners import gbp as gbp_lib
from planners import oracle, shaping
from world_models import data as data_lib
from world_models import dynamics as dynamics_lib

if TYPE_CHECKING:
    from experiments.spaceship import Config


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


def planner_step(config: Config, model: dynamics_lib.DynamicsModel, step: Any = None):
    """The learned model as the planners see it, with the planet barrier.

    ``step`` defaults to ``model.step``; CEM passes the one its particles need
    (``planners.cem.model_step_for``: a member's, or a sampled one for a probabilistic model).
    """
    return shaping.shaped(model.step if step is None else step, config.barrier, "obs")


def train_model(config: Config, model, env, relax, key: jax.Array, log) -> tuple:
    """Collects the model budget (random, then GBP refreshes) and trains: (model, params, data)."""
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
    params = model.fit(parts[0], config.model_fit, keys[1], log=None).params
    step = planner_step(config, model)
    for round_index in range(config.refresh_rounds if refresh >= config.n_envs else 0):
        policy = gbp_lib.make_policy(config.gbp, relax, step, params)
        k = keys[round_index + 2]
        new = data_lib.collect(
            env, policy, gbp_lib.init_plan(config.gbp, relax), relax, refresh, k, config.n_envs
        )
        parts.append(new.data)
        finished = len(new.episode_returns)
        returns = f"return {np.mean(new.episode_returns):.1f}" if finished else "none ended"
        log(f"refresh {round_index}: {len(new.data.obs):,} steps of GBP rollouts, {finished} "
            f"episodes, {returns}")  # fmt: skip
        params = model.fit(
            data_lib.concatenate(parts), config.model_fit, k, params=params, log=None
        ).params
    data = data_lib.concatenate(parts)
    return model, params, data


def quiet(message: str) -> None:
    """Trainer log sink: per-epoch lines are too chatty for the table run."""


def run_a2c(run: Run, run_dir: Path) -> tuple[Row, list]:
    """Trains and evaluates A2C (phase "a2c"); returns its row and its training curve.

    A resumed run whose A2C did not finish continues from A2C's last checkpoint.
    """
    stage = run.finished("a2c")
    if stage is not None:
        return row_from_json(stage.values["row"]), [tuple(p) for p in stage.values["curve"]]
    a2c_dir = run_dir / "a2c"
    resume = run.config.resume and (a2c_dir / A2C_CHECKPOINT).exists()
    a2c_config = run.config.a2c_run
    key = run.key()
    trained = a2c_lib.train(
        a2c_config, run.env, key, run_dir=a2c_dir, resume=resume, progress=False
    )
    policy = a2c_lib.make_policy(a2c_config, run.env, trained.params)
    curve = [
        (m["env_steps"], m["mean_return"])
        for m in trained.metrics
        if np.isfinite(m.get("mean_return", np.nan))
    ]
    row = run.row("A2C", policy, None, trained.env_steps)
    run.save("a2c", {"row": row_to_json(row), "curve": curve})
    return row, curve


def forward_model(run: Run) -> tuple:
    """The forward model (phase "model"): ``(model, params, data)``, trained or loaded."""
    config, relax = run.config, run.relax
    model = dynamics_lib.DynamicsModel(
        config.dynamics,
        run.env.observation_space.shape[0],
        relax.action_dim,
        tuple(map(bool, relax.simplex_mask)),
    )
    data = run.stages.load("model_data")
    if data is not None:
        data = data_lib.Transitions(**data.arrays)
        template = model.template()
        stage = run.finished("model", template)
        if stage is not None:
            return model, stage.params, data
    model, params, data = train_model(config, model, run.env, relax, run.key(), run.log)
    run.stages.save("model_data", {}, arrays=data._asdict())
    run.save("model", {"env_steps": len(data.obs)}, params=params)
    return model, params, data


def run_model_based(run: Run, model, params, buffer_obs: np.ndarray, n: int | None = None) -> tuple:
    """GBP and DISTGBP through a model; returns (rows, distill result).

    ``buffer_obs`` (N, obs_dim) are the observations of the model's dataset, one per env step of
    its budget, as collected: time-major, ``n_envs`` envs side by side (N a multiple of it).
    DISTGBP labels them with GBP along those trajectories (no new env steps).
    """
    budget = len(buffer_obs)
    trajectories = np.asarray(buffer_obs).reshape(-1, run.config.n_envs, buffer_obs.shape[-1])
    config, relax = run.config, run.relax
    step = planner_step(config, model)
    gbp_policy = gbp_lib.make_policy(config.gbp, relax, step, params)
    gbp_row = run.row("GBP", gbp_policy, gbp_lib.init_plan(config.gbp, relax), budget, n)
    result = distill_lib.distill(
        config.distill,
        config.policy_fit,
        run.env,
        relax,
        config.gbp,
        step,
        params,
        run.key(),
        log=quiet,
        buffer_obs=trajectories,
    )
    student = result.student.policy(result.params)
    dist_row = run.row("DISTGBP", student, np.zeros(()), budget + result.env_steps, n)
    return [gbp_row, dist_row], result


def model_based_rows(run: Run, name: str, model, params, buffer_obs, n=None) -> tuple:
    """Phase ``name``: :func:`run_model_based`'s rows and the student's params and history."""
    student = distill_lib.DistilledPolicy(run.relax, model.obs_dim, run.config.distill.hidden_sizes)
    stage = run.finished(name, student.template())
    if stage is not None:
        rows = [row_from_json(r) for r in stage.values["rows"]]
        return rows, stage.params, stage.values["history"]
    rows, result = run_model_based(run, model, params, buffer_obs, n)
    values = {"rows": [row_to_json(r) for r in rows], "history": result.history}
    run.save(name, values, params=result.params)
    return rows, result.params, result.history


def learning_curve(run: Run, model, data: data_lib.Transitions, curve: dict[str, list]) -> None:
    """GBP and DISTGBP through models fitted on the first ``curve_fractions`` of ``data``.

    Each fraction is phase ``curve-<fraction>`` (fitted, or loaded when finished); its points
    ``(env steps, mean return)`` are appended to ``curve["GBP"]`` and ``curve["DISTGBP"]``.
    """
    config = run.config
    for fraction in config.curve_fractions:
        budget = int(fraction * len(data.obs)) // config.n_envs * config.n_envs  # whole steps
        part = data_lib.take(data, slice(0, budget))
        stage = f"curve-{fraction:g}"
        small = None  # a finished stage's rows are loaded: no model needed
        if not run.stages.has(stage):
            small = model.fit(part, config.model_fit, run.key(), log=quiet).params
        rows, _, _ = model_based_rows(run, stage, model, small, part.obs, config.curve_episodes)
        for row in rows:
            curve[row.name].append((row.env_steps, row.result.mean))


def planner_rows(run: Run, model, params, model_steps: int) -> list[Row]:
    """The rows of phases ``cem`` and ``gbp-true``, run or loaded.

    CEM plans through the learned model; GBP (true dynamics) through the env's own dynamics,
    from the env state.

    Args:
        run: the experiment's run.
        model: the forward model.
        params: its parameters.
        model_steps: env steps the model was trained on (the CEM row's budget).
    """
    config, relax = run.config, run.relax
    cem_step = planner_step(config, model, cem_lib.model_step_for(config.cem, model))
    cem_policy = cem_lib.make_policy(config.cem, relax, cem_step, params)
    cem_plan0 = np.zeros((config.cem.horizon, relax.param_dim), np.float32)
    rows = run.rows("cem", lambda: [run.row("CEM", cem_policy, cem_plan0, model_steps)])
    true_policy = gbp_lib.make_policy(
        config.gbp_true,
        relax,
        shaping.shaped(oracle.model_step, config.barrier, "env_state"),
        run.env.params,
        use_env_state=True,
        done_fn=oracle.done_fn,
    )
    true_plan0 = gbp_lib.init_plan(config.gbp_true, relax)
    name = "GBP (true dynamics)"
    return rows + run.rows(
        "gbp-true", lambda: [run.row(name, true_policy, true_plan0, 0, uses_state=True)]
    )
