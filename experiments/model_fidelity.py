"""How well a learned forward model serves a planner: open-loop error, ranking, gradients.

``python -m experiments.model_fidelity --runs results/spaceship/A results/spaceship/B`` loads the
forward model of each finished spaceship run (``planners.checkpoints.load_model``) and compares it
with the true dynamics the way the planners use it (:mod:`planners.fidelity`), from the same start
states and with the same plans for every model. ``experiments.driving`` runs are compared the same
way (their state model through the road and car barriers; :mod:`experiments.fidelity_tasks` holds
what differs between the two experiments):

* start states: where episodes of a reference policy are after ``warmup_steps`` steps, one table
  per ``--states`` kind; by default both GBP through the true dynamics (the states a good
  planner visits, the same for every model) and GBP through each model (``own-gbp``: the states
  it visits when it plans); ``random``: the policy that collects most of a model's data (the
  sticky random policy; for driving, the exploring IDM driver);
* plans: ``n_plans`` random plans per state, drawn as GBP's restarts start
  (``N(0, init_std)`` free parameters over the run's GBP horizon), plus the plan GBP makes through
  the model from that state (cold start);
* figures: relative open-loop error after 1, 5 and H steps, the objective's absolute error and
  rank correlation across the plans of a state (CEM's elite selection), the cosine between the
  model's and the true objective's gradients (GBP's ascent direction); and for GBP's own plan,
  its true return against GBP's plan through the true dynamics (same settings; the difference is
  the regret) and against what the model predicted for it (the difference is the optimism: how
  far the planner exploits the model's errors).

Next to them, GBP's return through each model in the env (``closed_loop_episodes``, the same
episodes for every model): what the figures are meant to explain.

``--members`` also compares each member of an ensemble model alone (rows "<run> member k"): how
much averaging the members changes what the planner gets.

Writes ``results/model_fidelity/<run>/`` with ``table.md``, ``metrics.json`` and ``config.json``,
and each comparison as a phase in ``stages/``: an interrupted run continues with the same flags
plus ``--run-name <run> --resume``.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agents.common.evaluate import evaluate_jax, visited_states
from agents.common.stats import mean_ci
from envs.jax_env import make_jax_env
from experiments import io
from experiments.configs import run_main
from experiments.fidelity_tasks import Subject, Task, load_subjects, with_members
from experiments.stages import Stages, open_run
from planners import fidelity, gbp

STATE_POLICIES = ("gbp-true", "own-gbp", "random")


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the model-fidelity comparison.

    Defaults: about a minute a spaceship model and table on a 2-core CPU; two driving models took
    3 min 49 s with ``--n-episodes 8 --closed-loop-episodes 8`` (cold compilation cache).
    """

    runs: tuple[str, ...] = ()
    """Finished ``experiments.spaceship`` (or ``experiments.driving``) results folders whose
    forward models are compared (one experiment and one action mode for all)."""
    states: tuple[str, ...] = ("gbp-true", "own-gbp")
    """Reference policies whose visited states are the start states, one table each: "gbp-true"
    (GBP through the true dynamics, the experiment's settings; the same states for every
    model), "own-gbp" (GBP through the model compared: the states it visits when it plans,
    different per model) and "random" (the policy that collects most of a model's data: the
    sticky random policy; for driving, the exploring IDM driver)."""
    n_episodes: int = 64
    """Episodes of the reference policy; each gives one start state per warmup step."""
    warmup_steps: tuple[int, ...] = (0, 15, 30, 45)
    """Steps into each episode at which start states are taken (episodes that ended before are
    left out)."""
    n_plans: int = 8
    """Random plans per start state, besides GBP's own (>= 2, for a rank correlation)."""
    closed_loop_episodes: int = 64
    """Episodes of GBP through each model in the env (the run's settings, replanning every step,
    the same episodes for every model): the return the other figures are meant to explain; 0
    skips it."""
    members: bool = False
    """Also compare each member of an ensemble model on its own (rows "<run> member k", after
    the ensemble's): what averaging the members changes, for the planner."""
    seed: int = 0
    """Seed of the start states and plans (the same for every model)."""
    results_root: str = "results/model_fidelity"
    """Parent folder of the run folder."""
    run_name: str | None = None
    """Run folder name (default: a timestamp)."""
    resume: bool = False
    """Continue the run ``results_root/run_name`` (same flags): the comparisons it finished
    (one per model and table, and each closed-loop return) are loaded, not recomputed."""

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError(
                "--runs: name at least one experiments.spaceship or experiments.driving folder"
            )
        unknown = [kind for kind in self.states if kind not in STATE_POLICIES]
        if not self.states or unknown or len(set(self.states)) < len(self.states):
            raise ValueError(
                f"--states {' '.join(self.states)}: expected distinct ones of {STATE_POLICIES}"
            )
        if self.n_episodes < 1 or self.n_plans < 2 or self.closed_loop_episodes < 0:
            raise ValueError(
                "--n-episodes must be >= 1, --n-plans >= 2 and --closed-loop-episodes >= 0"
            )
        if not self.warmup_steps or min(self.warmup_steps) < 0:
            raise ValueError(f"--warmup-steps {self.warmup_steps}: expected steps >= 0")


def _reference_policy(kind: str, config: Config, env: Any, task: Task, subject: Subject):
    """(policy, init_carry) of the ``kind`` of start states (:attr:`Config.states`)."""
    if kind == "random":
        return task.data_policy(subject, env, jax.random.key(config.seed))
    if kind == "own-gbp":
        policy = gbp.make_policy(
            subject.gbp, subject.relax, task.model_step(subject, env), subject.params
        )
        return policy, gbp.init_plan(subject.gbp, subject.relax)
    return task.reference_gbp(env, subject.relax)


def start_states(
    kind: str, config: Config, env: Any, task: Task, subject: Subject
) -> tuple[Any, dict[int, int]]:
    """Start states of ``kind`` (leaves (M, ...)) and how many each warmup step gave."""
    policy, carry = _reference_policy(kind, config, env, task, subject)
    steps = max(config.warmup_steps) + 1
    keys = jax.random.split(jax.random.key(config.seed), config.n_episodes)
    run = jax.jit(jax.vmap(functools.partial(visited_states, env, policy, steps, carry)))
    states, _, done = run(keys)
    picked, counts = [], {}
    for t in config.warmup_steps:
        running = ~np.asarray(done[:, t])
        counts[t] = int(running.sum())
        picked.append(jax.tree.map(lambda x, t=t, m=running: np.asarray(x[:, t])[m], states))
    if not sum(counts.values()):
        raise ValueError(f"every reference episode ended before steps {config.warmup_steps}")
    return jax.tree.map(lambda *xs: jnp.asarray(np.concatenate(xs)), *picked), counts


def _gbp_plans(subject: Subject, step, params, states, key, done_fn=None, config=None):
    """GBP's plans (``config``, default the run's settings; cold start) from N start states."""
    config = subject.gbp if config is None else config
    planner = gbp.make_planner(config, subject.relax, step, done_fn)
    batched = jax.jit(jax.vmap(planner, in_axes=(None, 0, None, 0)))
    n = jax.tree.leaves(states)[0].shape[0]
    plan0 = gbp.init_plan(config, subject.relax)
    return batched(params, states, plan0, jax.random.split(key, n))


def _mean_ci(values: Any) -> list[float]:
    mean, low, high = mean_ci(np.asarray(values, np.float64))
    return [mean, low, high]


def compare_model(
    config: Config,
    task: Task,
    subject: Subject,
    env: Any,
    states: Any,
    truth_plans: dict | None = None,
) -> dict:
    """The fidelity figures of one model from ``states`` (JSON-ready dict).

    ``truth_plans`` keeps GBP's plans through the true dynamics from these ``states``, keyed by
    the GBP settings and shaping, for the next model compared from the same states (they do not
    depend on the model; planning through the physics is the costliest part).

    Besides :func:`planners.fidelity.summarise`'s figures on the random plans: GBP's plan
    through the model from each state, its return predicted by the model and its true return
    (open loop, executed actions), GBP's plan through the true dynamics with the same settings
    (made with ``task.planning_params``), the regret (true return of the truth's plan minus the
    model's) and the optimism (predicted minus true return of the model's plan), as
    ``[mean, ci95_low, ci95_high]`` over the states. True returns and rollouts use the env's
    own params.
    """
    relax, plan_config = subject.relax, subject.gbp
    model_step = task.model_step(subject, env)
    true_step = task.true_step(subject, env.params)
    n = jax.tree.leaves(states)[0].shape[0]
    shape = (plan_config.horizon, relax.param_dim)
    plan_key, model_key, true_key = jax.random.split(jax.random.key(config.seed + 1), 3)
    random_plans = plan_config.init_std * jax.random.normal(plan_key, (n, config.n_plans, *shape))
    obs = jax.vmap(task.observe, in_axes=(None, 0))(env.params, states)
    model_plan = _gbp_plans(subject, model_step, subject.params, obs, model_key)
    truth_plans = {} if truth_plans is None else truth_plans
    if (subject.gbp, subject.shaping) not in truth_plans:
        planning_params = task.planning_params(env)
        truth_plans[subject.gbp, subject.shaping] = _gbp_plans(
            subject,
            task.true_step(subject, planning_params),
            planning_params,
            states,
            true_key,
            task.done_fn,
            # the same plans, the rollout not unrolled: the learned models' unroll makes the
            # physics compile for minutes (driving H15: 82 s instead of 9 s) and runs no faster
            dataclasses.replace(plan_config, unroll=1),
        )
    true_plan = truth_plans[subject.gbp, subject.shaping]
    true_return = jax.jit(jax.vmap(functools.partial(
        gbp.hard_return, relax=relax, model_step=true_step, model_params=env.params,
        discount=plan_config.discount, done_fn=task.done_fn,
    )))  # fmt: skip
    model_plan_return = np.asarray(true_return(model_plan.plan, state=states))
    true_plan_return = np.asarray(true_return(true_plan.plan, state=states))
    run = fidelity.make_compare(
        relax,
        fidelity.Dynamics(model_step),
        fidelity.Dynamics(true_step, task.done_fn),
        task.observe,
        plan_config.discount,
    )
    z = jnp.concatenate([model_plan.plan[:, None], random_plans], axis=1)
    result = run(subject.params, env.params, states, z)
    steps = sorted({1, min(5, plan_config.horizon), plan_config.horizon})
    figures = fidelity.summarise(jax.tree.map(lambda x: x[:, 1:], result), steps, task.obs_groups)
    at_plan = np.asarray(result.grad_cosine[:, 0])
    at_plan = at_plan[np.isfinite(at_plan)]
    return {
        **figures,
        "horizon": plan_config.horizon,
        "grad_cosine_at_gbp_plan": float(at_plan.mean()) if len(at_plan) else None,
        "gbp_plan_predicted_return": _mean_ci(model_plan.objective),
        "gbp_plan_true_return": _mean_ci(model_plan_return),
        "true_gbp_plan_return": _mean_ci(true_plan_return),
        "gbp_plan_regret": _mean_ci(true_plan_return - model_plan_return),
        "gbp_plan_optimism": _mean_ci(np.asarray(model_plan.objective) - model_plan_return),
    }


def closed_loop_return(config: Config, task: Task, subject: Subject, env: Any) -> list[float]:
    """GBP's episode return through the model in the env (``[mean, ci95_low, ci95_high]``).

    The run's GBP settings and shaping, replanning every step with warm start as the
    experiment's GBP row does; the same episodes (key from ``config.seed``) for every model.
    """
    step = task.model_step(subject, env)
    policy = gbp.make_policy(subject.gbp, subject.relax, step, subject.params)
    key = jax.random.fold_in(jax.random.key(config.seed), 2)
    init = gbp.init_plan(subject.gbp, subject.relax)
    result = evaluate_jax(env, policy, config.closed_loop_episodes, key, None, init)
    return [result.mean, result.ci95_low, result.ci95_high]


def _ci(values: list[float]) -> str:
    mean, low, high = values
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def table(names: list[str], figures: list[dict], groups: tuple[str, ...]) -> str:
    """The markdown table of every model's figures; ``groups``: the observation groups."""
    errors = [f"{group} rel. error, 1 / 5 / H steps" for group in groups[:1]]
    errors += [f"{group}'" for group in groups[1:]]
    lines = [
        f"| model | {' | '.join(errors)} | objective MAE | rank corr. "
        "| grad cos: random plans | grad cos: GBP's plan | GBP's plan: predicted / true "
        "return | truth's plan | regret | optimism |",
        "|" + "---|" * (9 + len(groups)),
    ]
    for name, f in zip(names, figures, strict=True):
        by_group = [
            " / ".join(f"{v:.3f}" for v in f["relative_error"][group].values()) for group in groups
        ]
        by_group[0] += f" (H={f['horizon']})"
        at_plan = f["grad_cosine_at_gbp_plan"]
        lines.append(
            f"| {name} | {' | '.join(by_group)} | {f['return_mae']:.2f} | "
            f"{f['rank_correlation']:.2f} | {f['grad_cosine']:.2f} | "
            f"{'-' if at_plan is None else f'{at_plan:.2f}'} | "
            f"{f['gbp_plan_predicted_return'][0]:.2f} / {f['gbp_plan_true_return'][0]:.2f} | "
            f"{f['true_gbp_plan_return'][0]:.2f} | {_ci(f['gbp_plan_regret'])} | "
            f"{_ci(f['gbp_plan_optimism'])} |"
        )
    return "\n".join(lines) + "\n"


def main(config: Config) -> Path:
    """Compares the runs' models and writes the results folder; returns it."""
    task, saved = load_subjects(config.runs)
    run_dir, stages = open_run(
        config.results_root, config.run_name, io.to_jsonable(config), config.resume,
        "model_fidelity",
    )  # fmt: skip
    env = make_jax_env(task.env_id, **task.env_kwargs(saved[0]))
    names = [Path(run).name for run in config.runs]
    if len(set(names)) < len(names):  # folders of the same name: tell them apart by their path
        names = [str(run) for run in config.runs]
    if config.members:
        names, saved = with_members(names, saved)
    sections, metrics = [], {"experiment": task.experiment}
    for kind in config.states:
        figures = _compare_all(kind, config, env, task, names, saved, stages)
        metrics[kind] = dict(zip(names, figures, strict=True))
        text = table(names, figures, tuple(task.obs_groups))
        sections.append(f"## Start states: {kind}\n\n{text}")
    notes = (
        f"\nStart states: those of each reference policy ({', '.join(config.states)}) after "
        f"{list(config.warmup_steps)} steps of {config.n_episodes} episodes (those still "
        "running). Relative error: MSE / variance of the true change, per observation entry, "
        "averaged (0 exact, ~1 no better than the average change). Objective: the planners' "
        "(reward and barrier) over the run's GBP horizon; random plans: N(0, init_std) free "
        "parameters, as GBP's restarts start. GBP's plan: through the model, cold start; "
        "truth's plan: GBP through the true dynamics, same settings; regret and optimism with "
        "95% CIs over the start states.\n"
    )
    if task.note:
        notes += task.note + "\n"
    if config.closed_loop_episodes:
        returns = []
        for index, one in enumerate(saved):
            stage = f"closed-loop-{index}"
            if not stages.has(stage):
                stages.save(stage, {"return": closed_loop_return(config, task, one, env)})
            returns.append(stages.load(stage).values["return"])
        metrics["closed_loop_gbp_return"] = dict(zip(names, returns, strict=True))
        rows = [f"| {name} | {_ci(r)} |" for name, r in zip(names, returns, strict=True)]
        sections.append(
            f"## GBP through each model, in the env ({config.closed_loop_episodes} episodes)\n\n"
            "| model | return [95% CI] |\n|---|---|\n" + "\n".join(rows) + "\n"
        )
    text = "\n".join(sections) + notes
    io.atomic_write_text(run_dir / "table.md", text)
    io.write_json(run_dir / "metrics.json", metrics)
    print(text)
    print(f"wrote {run_dir}")
    return run_dir


def _compare_all(
    kind: str,
    config: Config,
    env: Any,
    task: Task,
    names: list[str],
    saved: list[Subject],
    stages: Stages,
) -> list:
    """Every model's figures from start states of ``kind`` (shared unless "own-gbp").

    Each model's figures are phase ``<kind>-<index>`` of the run (loaded when it finished).
    """
    phases = [f"{kind}-{index}" for index in range(len(saved))]
    shared = None
    if kind != "own-gbp" and not all(stages.has(phase) for phase in phases):
        shared = start_states(kind, config, env, task, saved[0])
    truth_plans: dict = {}  # GBP through the truth from the shared states: one per settings
    figures = []
    for name, one, phase in zip(names, saved, phases, strict=True):
        if not stages.has(phase):
            states, counts = shared or start_states(kind, config, env, task, one)
            print(f"{kind}, {name}: start states {counts} (per warmup step: episodes running)")
            plans = truth_plans if shared else None
            figure = compare_model(config, task, one, env, states, plans)
            stages.save(phase, {**figure, "start_states": counts})
            print(f"{kind}, {name}: {figure}", flush=True)
        figures.append(stages.load(phase).values)
    return figures


if __name__ == "__main__":
    run_main(main, Config)
