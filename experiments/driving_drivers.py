"""The driver table of ``experiments.driving``: every driver's return on the env's reward.

Rows: a random policy, the lane-keeping IDM driver, PPO trained on device, GBP and CEM
re-planning through the learned state model and DISTGBP distilled from GBP
(``experiments.driving_model``),
and GBP and CEM re-planning through the true dynamics. The talk's claims, moved to the highway,
are checked on the measured rows (:func:`model_claims`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np

import agents.ppo as ppo_lib
from agents.common.evaluate import EvalResult, evaluate_jax, seconds_per_action
from agents.common.results import CHECKPOINT as AGENT_CHECKPOINT
from envs.driving import driver, planning
from envs.jax_env import JaxEnv, make_jax_env
from experiments.claims import claim
from experiments.driving_model import distgbp_policy, model_stage, replanning_policy
from experiments.stages import Stages
from planners import cem, gbp, relax, shaping

if TYPE_CHECKING:
    from experiments.driving import Config


def ppo_policy(config: Config, env: JaxEnv, run_dir: Path, log=print) -> tuple[Any, int]:
    """Trains PPO (or continues it, resuming) in ``run_dir/ppo``: ``(policy, env steps)``."""
    ppo_dir = run_dir / "ppo"
    resume = config.resume and (ppo_dir / AGENT_CHECKPOINT).exists()
    log(f"PPO: {config.ppo.total_steps:,} env steps on device")
    trained = ppo_lib.train(
        config.ppo, env, jax.random.PRNGKey(config.seed), run_dir=ppo_dir, resume=resume,
        progress=False,
    )  # fmt: skip
    return ppo_lib.make_policy(config.ppo, env, trained.params), trained.env_steps


def true_dynamics_planners(config: Config, env: JaxEnv) -> dict[str, tuple[Any, Any]]:
    """GBP and CEM re-planning through the true dynamics: ``{name: (policy, first carry)}``.

    They plan through ``envs.driving.planning.model_step`` with the env's params but no lane
    changes: the traffic's random draws are in the state, and a planner that rolled the env's
    own params forward would see the lane changes to come.
    """
    actions = relax.for_action_mode("continuous")
    model_params = env.params.replace(lane_change_rate=0.0)
    penalty = shaping.driving_penalty(
        config.road_barrier, config.car_barrier, model_params, "env_state"
    )
    gbp_policy_true = gbp.make_policy(
        config.planner,
        actions,
        shaping.penalised(planning.model_step, penalty),
        model_params,
        use_env_state=True,
        done_fn=planning.done_fn,
    )
    cem_policy = cem.make_policy(
        config.cem_planner,
        actions,
        planning.model_step,
        model_params,
        use_env_state=True,
        done_fn=planning.done_fn,
    )
    return {
        "GBP, true dynamics": (gbp_policy_true, gbp.init_plan(config.planner, actions)),
        "CEM, true dynamics": (cem_policy, gbp.init_plan(config.cem_planner, actions)),
    }


class Drivers(NamedTuple):
    """The driver table's measurements."""

    results: dict[str, EvalResult]
    """Each driver's evaluation, in table order."""
    single_env_seconds: dict[str, float]
    """Median time per action of one env [s] (:func:`seconds_per_action`), for the rows
    through the learned model (GBP, CEM, DISTGBP)."""


def evaluate_drivers(config: Config, stages: Stages, run_dir: Path, log=print) -> Drivers:
    """Returns of the random policy, the IDM driver, PPO, the model-based drivers and planners."""
    env: JaxEnv = make_jax_env("worldplan/Driving-v0")

    def random_policy(carry, obs, state, key):
        del obs, state
        return jax.random.uniform(key, (2,), minval=-1.0, maxval=1.0), carry

    def idm_policy(carry, obs, state, key):
        del obs, key
        return driver.idm_driver(state, env.params), carry

    key = jax.random.PRNGKey(config.seed + 1000)
    results = {
        name: evaluate_jax(env, policy, config.policy_episodes, key)
        for name, policy in (("random", random_policy), ("IDM driver", idm_policy))
    }
    if config.ppo.total_steps > 0:
        policy, steps = ppo_policy(config, env, run_dir, log)
        results[f"PPO, {steps:,} env steps"] = evaluate_jax(
            env, policy, config.policy_episodes, key
        )
    timed = {}  # name: seconds per action of one env
    if config.state_model.steps > 0:
        learned = model_stage(config.state_model, env, config.seed, stages, log)
        for planner in ("gbp", "cem"):
            name = f"{planner.upper()}, learned model, {learned.env_steps:,} env steps"
            policy, plan = replanning_policy(
                planner, config.state_model, learned.model, learned.params,
                config.road_barrier, config.car_barrier, env,
            )  # fmt: skip
            results[name] = evaluate_jax(env, policy, config.planner_episodes, key, init_carry=plan)
            timed[name] = seconds_per_action(policy, plan, env, config.timing_repeats, key)
        student, steps = distgbp_policy(
            config.state_model, learned, config.road_barrier, config.car_barrier, env,
            config.seed, stages, log,
        )  # fmt: skip
        name = f"DISTGBP, {steps:,} env steps"
        results[name] = evaluate_jax(
            env, student, config.policy_episodes, key, init_carry=np.zeros(())
        )
        timed[name] = seconds_per_action(student, np.zeros(()), env, config.timing_repeats, key)
    for name, (policy, plan) in true_dynamics_planners(config, env).items():
        results[name] = evaluate_jax(env, policy, config.planner_episodes, key, init_carry=plan)
    return Drivers(results, timed)


def drivers_stage(config: Config, stages: Stages, run_dir: Path, log=print) -> Drivers:
    """:func:`evaluate_drivers`, or its results as a finished run phase saved them.

    Saved as the phase ``drivers`` of the run folder (``experiments.stages``), so a resumed run
    does not plan its planners' episodes again.
    """
    stage = stages.load("drivers")
    if stage is not None:
        log(f"drivers: reloaded from {stages.folder}")
        results = {
            name: EvalResult(
                **stage.values["summaries"][i],
                returns=stage.arrays[f"returns_{i}"],
                episode_lengths=stage.arrays[f"lengths_{i}"],
            )
            for i, name in enumerate(stage.values["drivers"])
        }
        return Drivers(results, stage.values["single_env_seconds"])
    drivers = evaluate_drivers(config, stages, run_dir, log)
    fields = ("mean", "ci95_low", "ci95_high", "seconds_per_action")
    values = {
        "drivers": list(drivers.results),  # in table order (JSON object keys may be sorted)
        "summaries": [{k: getattr(r, k) for k in fields} for r in drivers.results.values()],
        "single_env_seconds": drivers.single_env_seconds,
    }
    arrays = {}
    for i, r in enumerate(drivers.results.values()):
        arrays[f"returns_{i}"], arrays[f"lengths_{i}"] = r.returns, r.episode_lengths
    stages.save("drivers", values, arrays=arrays)
    return drivers


def drivers_markdown(drivers: Drivers, max_steps: int) -> str:
    """The driver table: return (95% CI), episode length, episodes ended early, time per action.

    Time per action: batched over the evaluation's episodes, and of one env where measured.
    """
    lines = [
        "| driver | return (95% CI) | episode length [steps] | ended early "
        "| ms per step (batched) | ms per action (one env) |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in drivers.results.items():
        single = drivers.single_env_seconds.get(name)
        lines.append(
            f"| {name} | {r.mean:.2f} ({r.ci95_low:.2f} to {r.ci95_high:.2f}) | "
            f"{float(np.mean(r.episode_lengths)):.1f} | "
            f"{int(np.sum(r.episode_lengths < max_steps))}/{len(r.returns)} | "
            f"{r.seconds_per_action * 1e3:.3f} | "
            f"{'-' if single is None else f'{single * 1e3:.3f}'} |"
        )
    return "\n".join(lines)


def _row(results: dict[str, EvalResult], prefix: str) -> tuple[str, EvalResult] | None:
    return next(((n, r) for n, r in results.items() if n.startswith(prefix)), None)


def _ci(result: Any) -> str:
    """``mean [low, high]`` with two decimals."""
    return f"{result.mean:.2f} [{result.ci95_low:.2f}, {result.ci95_high:.2f}]"


def model_claims(drivers: Drivers, log=print) -> list[dict]:
    """The talk's spaceship claims checked on the highway's rows (those the run measured).

    Model-based (GBP through the learned model, and DISTGBP) with its env steps beats model-free
    (PPO) with its own (both 95% CIs above PPO's); GBP's mean lies inside DISTGBP's 95% CI;
    DISTGBP acts at least 10 times faster than GBP (one env each). Empty when the run skipped
    the learned model.
    """
    ppo = _row(drivers.results, "PPO")
    model_gbp = _row(drivers.results, "GBP, learned model")
    student = _row(drivers.results, "DISTGBP")
    if model_gbp is None or student is None:
        return []
    (gbp_name, g), (dist_name, d) = model_gbp, student
    out = []
    if ppo is not None:
        p = ppo[1]
        out.append(
            claim(  # both 95% CIs above PPO's: higher means alone can be noise
                f"model-based ({gbp_name}; {dist_name}) beats model-free ({ppo[0]})",
                min(g.ci95_low, d.ci95_low) > p.ci95_high,
                f"GBP {_ci(g)}, DISTGBP {_ci(d)} vs PPO {_ci(p)}; held needs both 95% CIs "
                "above PPO's",
                log,
            )
        )
    out.append(
        claim(
            "DISTGBP matches GBP within its CI",
            d.ci95_low <= g.mean <= d.ci95_high,
            f"GBP {g.mean:.2f}, DISTGBP {d.mean:.2f} [{d.ci95_low:.2f}, {d.ci95_high:.2f}]",
            log,
        )
    )
    slow, fast = drivers.single_env_seconds[gbp_name], drivers.single_env_seconds[dist_name]
    speedup = slow / max(fast, 1e-12)
    out.append(
        claim(
            "DISTGBP acts >= 10x faster than GBP",
            speedup >= 10,
            f"{speedup:.1f}x: {slow * 1e3:.2f} ms vs {fast * 1e3:.3f} ms per action, one env",
            log,
        )
    )
    return out
