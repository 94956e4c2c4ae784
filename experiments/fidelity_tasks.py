"""The experiments whose forward models ``experiments.model_fidelity`` compares: one adapter each.

A :class:`Task` says, for one experiment's env, what the comparison needs: how to load a run's
model and the planner settings it was used with (:class:`Subject`), the true dynamics as the
planners see them (the same shaping as through the model), the observation of a true state,
the observation entries reported apart, and the reference policies whose visited states are the
start states. :func:`task_of` picks the adapter of a results folder.

* spaceship (``experiments.spaceship`` runs): the truth is ``planners.oracle`` with the run's
  planet barrier; "random" start states come from the sticky random policy that collects most
  of the model's data.
* driving (``experiments.driving`` runs): the truth is ``envs.driving.planning`` with the run's
  road and car barriers. Plans through the truth are made, as the experiment's true-dynamics
  planners make them, with ``lane_change_rate=0`` (a planner must not foresee the lane changes
  drawn in the state); plans are scored and compared in the env's own dynamics, lane changes
  included. "random" start states come from the exploring IDM driver that collects the model's
  data.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, NamedTuple

import jax

from envs.driving import core as driving_core
from envs.driving import driver, planning
from envs.driving.params import DrivingParams
from envs.jax_env import JaxEnv
from envs.spaceship import core as spaceship_core
from experiments import io, runs
from planners import checkpoints, gbp, oracle, shaping
from planners import relax as relax_lib
from planners.mpc import DoneFn, ModelStep
from world_models import data as data_lib
from world_models import dynamics

Policy = Callable[[Any, Any, Any, jax.Array], tuple[Any, Any]]
"""``policy(carry, obs, state, key) -> (action, carry)`` (``agents.common.evaluate``'s form)."""


class Subject(NamedTuple):
    """One model compared, with what its run's planners used it with."""

    model: dynamics.DynamicsModel
    """The learned model (an ensemble member alone is a model of its own)."""
    params: Any
    """Its parameters."""
    relax: relax_lib.Relaxation
    """The action relaxation its planners used."""
    gbp: gbp.GBPConfig
    """The GBP settings its run planned with."""
    shaping: Hashable
    """The barrier(s) its planners added to the reward (a BarrierConfig or a tuple of them)."""
    action_mode: str
    """The env's action mode."""
    model_settings: Any = None
    """Task-specific settings of the run (driving: the ``ModelConfig``, for its data policy)."""


class Task(NamedTuple):
    """One experiment's env, as the fidelity comparison needs it."""

    experiment: str
    """"spaceship" or "driving"."""
    env_id: str
    """The registered env id."""
    obs_groups: dict[str, tuple[int, ...]]
    """Observation entries whose relative errors are reported apart, by group name."""
    load: Callable[[Path], Subject]
    """Reads a run's model and planner settings."""
    model_step: Callable[[Subject, JaxEnv], ModelStep]
    """The model step as the run's planners saw it (shaping included), on observations."""
    true_step: Callable[[Subject, Any], ModelStep]
    """``(subject, env params) -> step``: the true dynamics with the same shaping, on states."""
    planning_params: Callable[[JaxEnv], Any]
    """The env params the truth's planners plan with."""
    done_fn: DoneFn
    """Termination test of the true dynamics."""
    observe: Callable[[Any, Any], jax.Array]
    """``(env params, state) -> (D,)`` observation of a true state."""
    reference_gbp: Callable[[JaxEnv, relax_lib.Relaxation], tuple[Policy, Any]]
    """GBP through the true dynamics at the experiment's default settings: (policy, carry)."""
    data_policy: Callable[[Subject, JaxEnv, jax.Array], tuple[Policy, Any]]
    """The policy that collects a model's data: (policy, first carry)."""
    env_kwargs: Callable[[Subject], dict[str, Any]]
    """``make_jax_env`` keyword arguments of the env a run's model was trained in."""
    note: str = ""
    """What the table's notes add for this experiment (how its comparison differs)."""


def _spaceship_load(run: Path) -> Subject:
    saved = checkpoints.load_model(run)
    return Subject(
        saved.model, saved.params, saved.relax, saved.gbp, saved.barrier, saved.action_mode
    )


def _spaceship_reference(env: JaxEnv, relax: relax_lib.Relaxation) -> tuple[Policy, Any]:
    from experiments.spaceship import Config

    defaults = Config()
    step = shaping.shaped(oracle.model_step, defaults.barrier, "env_state")
    policy = gbp.make_policy(
        defaults.gbp_true, relax, step, env.params, use_env_state=True, done_fn=oracle.done_fn
    )
    return policy, gbp.init_plan(defaults.gbp_true, relax)


SPACESHIP = Task(
    experiment="spaceship",
    env_id="worldplan/Spaceship-v0",
    # the ship's motion (position, velocity, planet offset) and the target bookkeeping (offsets
    # to the current and next target, share still to visit), which jumps when a target is reached
    obs_groups={"ship": (0, 1, 2, 3, 4, 5), "targets": (6, 7, 8, 9, 12)},
    load=_spaceship_load,
    model_step=lambda s, env: shaping.shaped(s.model.step, s.shaping, "obs"),
    true_step=lambda s, params: shaping.shaped(oracle.model_step, s.shaping, "env_state"),
    planning_params=lambda env: env.params,
    done_fn=oracle.done_fn,
    observe=lambda params, state: spaceship_core.observe(state, params),
    reference_gbp=_spaceship_reference,
    data_policy=lambda s, env, key: (data_lib.sticky_policy(s.relax, 0.8), s.relax.random(key)),
    env_kwargs=lambda s: {"action_mode": s.action_mode},
)


def _driving_load(run: Path) -> Subject:
    from experiments.driving_model import load_model

    saved = load_model(run)
    relax = relax_lib.for_action_mode("continuous")
    barriers = (saved.road, saved.cars)
    return Subject(
        saved.model, saved.params, relax, saved.config.gbp, barriers, "continuous", saved.config
    )


def _driving_model_step(subject: Subject, env: JaxEnv) -> ModelStep:
    from experiments.driving_model import planner_step

    road, cars = subject.shaping
    return planner_step(subject.model, road, cars, env)


def _driving_true_step(subject: Subject, params: Any) -> ModelStep:
    road, cars = subject.shaping
    penalty = shaping.driving_penalty(road, cars, params, "env_state")
    return shaping.penalised(planning.model_step, penalty)


def _driving_reference(env: JaxEnv, relax: relax_lib.Relaxation) -> tuple[Policy, Any]:
    from experiments.driving import Config
    from experiments.driving_drivers import true_dynamics_planners

    return true_dynamics_planners(Config(), env)["GBP, true dynamics"]


def _driving_data_policy(subject: Subject, env: JaxEnv, key: jax.Array) -> tuple[Policy, Any]:
    settings = subject.model_settings
    return driver.exploring_driver(env.params, settings.noise_std, settings.random_prob), None


DRIVING = Task(
    experiment="driving",
    env_id="worldplan/Driving-v0",
    # the ego car (lateral position, heading, speed, lane offset) and the nearest other cars
    # (offsets and relative speeds, nearest first: the order changes as cars pass)
    obs_groups={"ego": (0, 1, 2, 3), "cars": tuple(range(4, 4 + 3 * DrivingParams().obs_cars))},
    load=_driving_load,
    model_step=_driving_model_step,
    true_step=_driving_true_step,
    planning_params=lambda env: env.params.replace(lane_change_rate=0.0),
    done_fn=planning.done_fn,
    observe=lambda params, state: driving_core.observe(state, params),
    reference_gbp=_driving_reference,
    data_policy=_driving_data_policy,
    env_kwargs=lambda s: {},  # the experiment drives the registered env's defaults
    note=(
        "Driving: the truth's plans are made without lane changes (lane_change_rate 0, as the "
        "experiment's true-dynamics planners plan); every true return and rollout is the env's "
        "own, lane changes included."
    ),
)

TASKS = {"experiments.spaceship": SPACESHIP, "experiments.driving": DRIVING}
"""The adapters, by the ``experiments.runs.describe`` source of a run folder."""


def task_of(run: str | Path) -> Task:
    """The adapter of a results folder (by what wrote it).

    Raises:
        experiments.io.CheckpointError: not a results folder, or one of an experiment without
            a learned state model (agents runs, towers, poke).
    """
    source = runs.describe(run).source
    if source not in TASKS:
        raise io.CheckpointError(
            f"{run} is an {source} run, which has no learned state model: pass "
            f"{' or '.join(TASKS)} runs"
        )
    return TASKS[source]


def load_subjects(folders: tuple[str, ...]) -> tuple[Task, list[Subject]]:
    """The experiment adapter of the run folders, and their models.

    Raises:
        experiments.io.CheckpointError: a folder without a learned state model.
        experiments.io.RunFolderError: runs of two experiments or two action modes.
    """
    tasks = [task_of(folder) for folder in folders]
    kinds = sorted({task.experiment for task in tasks})
    if len(kinds) > 1:
        raise io.RunFolderError(f"--runs mix experiments {kinds}: compare runs of one experiment")
    subjects = [task.load(Path(f)) for task, f in zip(tasks, folders, strict=True)]
    modes = {s.action_mode for s in subjects}
    if len(modes) > 1:
        raise io.RunFolderError(
            f"--runs mix action modes {sorted(modes)}: compare runs of one mode"
        )
    return tasks[0], subjects


def with_members(names: list[str], saved: list[Subject]) -> tuple[list[str], list[Subject]]:
    """``names`` and ``saved`` with each ensemble's members after it, each as a model alone."""
    out_names, out_saved = [], []
    for name, one in zip(names, saved, strict=True):
        out_names.append(name)
        out_saved.append(one)
        size = one.model.config.ensemble_size
        for k in range(size) if size > 1 else ():
            model, params = one.model.member(one.params, k)
            out_names.append(f"{name} member {k}")
            out_saved.append(one._replace(model=model, params=params))
    return out_names, out_saved
