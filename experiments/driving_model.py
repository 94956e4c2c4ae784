"""The learned forward model of ``experiments.driving``: its data, its training, planning with it.

Henaff, Whitney & LeCun (2017)'s recipe, moved from the spaceship to the highway:

1. collect ``steps`` env steps with an exploring driver (``envs.driving.driver``: the IDM
   driver's commands plus noise) and fit the state dynamics model (``world_models.dynamics``) to
   the env's state observations (ego car and the nearest cars) and rewards;
2. GBP (and CEM, the sampling baseline) re-plans every step through the model, with soft
   barriers at the road's edges and around the cars the model predicts
   (``planners.shaping.driving_penalty``): the model predicts the smooth part of the reward well
   but not the rare crash penalty, and a planner that does not see a crash coming in its model
   drives into the car ahead;
3. DISTGBP (``planners.distill``) distils that planner into a policy network.

The model and the student are saved as phases of the run folder (``experiments.stages``), so
``--resume`` loads them, and ``python -m experiments.render --policy gbp|distgbp --run <run>``
plays them (:func:`load_policy`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from envs.driving import driver
from envs.jax_env import JaxEnv, make_jax_env
from experiments import io
from experiments.stages import Stages
from planners import cem, gbp, relax, shaping
from planners import distill as distill_lib
from planners.checkpoints import HostPolicy
from world_models import data as data_lib
from world_models import dynamics as dynamics_lib
from world_models.trainer import TrainerConfig

Barrier = shaping.BarrierConfig

STAGE = "model"
"""Name of the run phase that holds the model's params and data."""
STUDENT_STAGE = "distgbp"
"""Name of the run phase that holds the distilled policy."""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The learned model and the planners through it (all on the env's state observations)."""

    steps: int = 200_000
    """Env steps of the model's data (0 skips the learned-model rows)."""
    noise_std: float = 0.4
    """Std of the Gaussian noise on the exploring IDM driver's commands."""
    random_prob: float = 0.1
    """Probability that the exploring driver takes a uniform random command instead."""
    n_envs: int = 64
    """Envs collected in parallel."""
    dynamics: dynamics_lib.DynamicsConfig = dynamics_lib.DynamicsConfig(hidden_sizes=(128, 128))
    """The state dynamics model (measured at 100K steps, scratch runs: an ensemble of 5 scored
    29.2 against 23.8 for one model, at 5x the time per action)."""
    trainer: TrainerConfig = TrainerConfig(
        learning_rate=1e-3, batch_size=256, max_epochs=30, patience=4
    )
    """Training of the model (its seed is offset by the experiment's seed)."""
    gbp: gbp.GBPConfig = gbp.GBPConfig(
        horizon=15, n_iterations=10, n_restarts=2, learning_rate=0.1, unroll=15
    )
    """GBP through the model."""
    cem: cem.CEMConfig = cem.CEMConfig(horizon=15, n_samples=64, n_iterations=3, n_elites=8)
    """CEM through the model (the sampling baseline, on the same objective as GBP)."""
    distill: distill_lib.DistillConfig = distill_lib.DistillConfig(
        buffer_states=20_000, dagger_rounds=1, imagined_starts=1_000
    )
    """DISTGBP: GBP through the model distilled into a policy network (measured on the default
    model: 24.8; a 256x256 student 26.3; 2 DAgger rounds of 20K env steps 27.8; GBP 32.0)."""
    policy_trainer: TrainerConfig = TrainerConfig(
        learning_rate=1e-3, batch_size=128, max_epochs=40, patience=5
    )
    """Training of the distilled policy (its seed is offset by the experiment's seed)."""

    def __post_init__(self) -> None:
        if self.steps < 0 or 0 < self.steps < self.n_envs:
            raise ValueError(
                f"ModelConfig.steps={self.steps!r}: 0 (skip) or >= n_envs ({self.n_envs})"
            )
        if not self.noise_std >= 0 or not 0.0 <= self.random_prob <= 1.0:
            raise ValueError(
                f"ModelConfig.noise_std={self.noise_std!r} must be >= 0 and "
                f"random_prob={self.random_prob!r} in [0, 1]"
            )
        cem.check_model_config(self.cem, self.dynamics)


class Learned(NamedTuple):
    """The trained model and what the table reports of it."""

    model: dynamics_lib.DynamicsModel
    params: Any
    """Its params (leading ensemble axis)."""
    buffer_obs: np.ndarray
    """(T, n_envs, obs_dim) observations of its data, time-major (DISTGBP labels them)."""
    env_steps: int
    """Env steps its data took."""


def _model(config: ModelConfig, env: JaxEnv) -> dynamics_lib.DynamicsModel:
    actions = relax.for_action_mode("continuous")
    dim = env.observation_space.shape[0]
    return dynamics_lib.DynamicsModel(config.dynamics, dim, actions.action_dim, (False, False))


def fit_model(config: ModelConfig, env: JaxEnv, seed: int, log=print) -> Learned:
    """Collects ``config.steps`` env steps with the exploring driver and fits the model."""
    actions = relax.for_action_mode("continuous")
    behaviour = driver.exploring_driver(env.params, config.noise_std, config.random_prob)
    collect_key, fit_key = jax.random.split(jax.random.PRNGKey(seed + 2000))
    collected = data_lib.collect(
        env, behaviour, None, actions, config.steps, collect_key, config.n_envs
    )
    ended = len(collected.episode_returns)
    log(f"model data: {collected.env_steps:,} env steps of the exploring driver, {ended} episodes")
    model = _model(config, env)
    trainer = dataclasses.replace(config.trainer, seed=config.trainer.seed + seed)
    fit = model.fit(collected.data, trainer, fit_key, log=None)
    log(f"model: best validation loss {fit.best_val_loss:.4f} after {len(fit.history)} epochs")
    buffer = np.asarray(collected.data.obs).reshape(-1, config.n_envs, model.obs_dim)
    return Learned(model, fit.params, buffer, collected.env_steps)


def model_stage(config: ModelConfig, env: JaxEnv, seed: int, stages: Stages, log=print) -> Learned:
    """:func:`fit_model`, or the model a finished phase of this run saved."""
    model = _model(config, env)
    stage = stages.load(STAGE, model.template())
    if stage is not None:
        log(f"model: reloaded from {stages.folder}")
        return Learned(model, stage.params, stage.arrays["buffer_obs"], stage.values["env_steps"])
    learned = fit_model(config, env, seed, log)
    stages.save(
        STAGE,
        {"env_steps": learned.env_steps},
        arrays={"buffer_obs": learned.buffer_obs},
        params=learned.params,
    )
    return learned


def planner_step(
    model: dynamics_lib.DynamicsModel, road: Barrier, cars: Barrier, env: JaxEnv, step: Any = None
) -> Any:
    """The model as the planners see it: ``step`` minus the barriers on its predicted obs.

    ``step`` defaults to ``model.step``; CEM passes the one its particles need
    (``planners.cem.model_step_for``).
    """
    penalty = shaping.driving_penalty(road, cars, env.params, "obs")
    return shaping.penalised(model.step if step is None else step, penalty)


def replanning_policy(
    planner: str,
    config: ModelConfig,
    model: dynamics_lib.DynamicsModel,
    params: Any,
    road: Barrier,
    cars: Barrier,
    env: JaxEnv,
) -> tuple[Any, Any]:
    """``"gbp"`` or ``"cem"`` re-planning every step through the model: ``(policy, first plan)``.

    Both plan on :func:`planner_step`'s objective. CEM needs the barriers as much as GBP: the
    model does not predict crashes (CEM through it without them: 11.08, 25 of 32 episodes ended
    early; with them 27.33, 3 of 32; scratch runs on the default model).
    """
    actions = relax.for_action_mode("continuous")
    make_policy, planner_config = {
        "gbp": (gbp.make_policy, config.gbp),
        "cem": (cem.make_policy, config.cem),
    }[planner]
    model_step = cem.model_step_for(config.cem, model) if planner == "cem" else model.step
    step = planner_step(model, road, cars, env, model_step)
    return make_policy(planner_config, actions, step, params), gbp.init_plan(
        planner_config, actions
    )


def distgbp_policy(
    config: ModelConfig,
    learned: Learned,
    road: Barrier,
    cars: Barrier,
    env: JaxEnv,
    seed: int,
    stages: Stages,
    log=print,
) -> tuple[Any, int]:
    """DISTGBP's policy (distilled, or reloaded from this run) and the env steps it used."""
    actions = relax.for_action_mode("continuous")
    dim = learned.model.obs_dim
    student = distill_lib.DistilledPolicy(actions, dim, config.distill.hidden_sizes)
    stage = stages.load(STUDENT_STAGE, student.template())
    if stage is not None:
        log(f"DISTGBP: reloaded from {stages.folder}")
        return student.policy(stage.params), int(stage.values["env_steps"])
    result = distill_lib.distill(
        config.distill,
        dataclasses.replace(config.policy_trainer, seed=config.policy_trainer.seed + seed),
        env,
        actions,
        config.gbp,
        planner_step(learned.model, road, cars, env),
        learned.params,
        jax.random.PRNGKey(seed + 3000),
        log=None,
        buffer_obs=learned.buffer_obs,
    )
    env_steps = learned.env_steps + result.env_steps
    log(f"DISTGBP: {result.history[-1]['examples']:,} labelled states")
    stages.save(
        STUDENT_STAGE, {"env_steps": env_steps, "history": result.history}, params=result.params
    )
    return result.student.policy(result.params), env_steps


def _settings(run_dir: Path) -> tuple[ModelConfig, Barrier, Barrier]:
    """The model, GBP and distillation settings and the barriers of a run's ``config.json``."""
    file = run_dir / "config.json"
    settings = io.read_settings(file)
    fields = dict(io.settings_entry(settings, "state_model", file))
    nested = {
        "dynamics": dynamics_lib.DynamicsConfig,
        "trainer": TrainerConfig,
        "gbp": gbp.GBPConfig,
        "cem": cem.CEMConfig,
        "distill": distill_lib.DistillConfig,
        "policy_trainer": TrainerConfig,
    }
    for key, cls in nested.items():
        entry = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.get(key, {}).items()}
        fields[key] = io.config_from_settings(cls, entry, file, f"state_model.{key}")
    config = io.config_from_settings(ModelConfig, fields, file, "state_model")
    road, cars = (
        io.config_from_settings(Barrier, io.settings_entry(settings, k, file), file, k)
        for k in ("road_barrier", "car_barrier")
    )
    return config, road, cars


class SavedModel(NamedTuple):
    """A driving run's learned model, with the settings and barriers its planners used."""

    config: ModelConfig
    """The run's model, GBP, CEM and distillation settings."""
    road: Barrier
    """The road-edge barrier its planners added."""
    cars: Barrier
    """The barrier around the other cars its planners added."""
    model: dynamics_lib.DynamicsModel
    """The model."""
    params: Any
    """Its trained parameters."""


def load_model(run_dir: str | Path) -> SavedModel:
    """The learned model a driving results folder saved (its finished "model" phase).

    Raises:
        experiments.io.CheckpointError: no ``config.json`` with the model's settings, no
            finished model phase, or a checkpoint that does not fit the settings.
    """
    run_dir = Path(run_dir)
    config, road, cars = _settings(run_dir)
    model = _model(config, make_jax_env("worldplan/Driving-v0"))
    stages = Stages(run_dir)
    phase = stages.load(STAGE, model.template())
    if phase is None:
        raise io.CheckpointError(f"{stages.folder} has no finished {STAGE!r} phase")
    return SavedModel(config, road, cars, model, phase.params)


def load_policy(run_dir: str | Path, name: str, seed: int = 0) -> HostPolicy:
    """GBP through the learned model (``"gbp"``) or DISTGBP (``"distgbp"``) of a driving run.

    Args:
        run_dir: ``results/driving/<run>``, whose drivers phase finished its learned model
            (and, for ``"distgbp"``, the distillation).
        name: ``"gbp"`` or ``"distgbp"``.
        seed: seed of the policy's own randomness (GBP restarts).

    Returns:
        A host policy ``policy(obs) -> action`` (``planners.checkpoints.HostPolicy``).

    Raises:
        ValueError: unknown ``name``.
        experiments.io.CheckpointError: no ``config.json``, no finished phase, or a checkpoint
            that does not fit the settings.
    """
    if name not in ("gbp", "distgbp"):
        raise ValueError(f"name={name!r}: a driving run holds 'gbp' and 'distgbp'")
    saved = load_model(run_dir)
    config, model = saved.config, saved.model
    if name == "gbp":
        env = make_jax_env("worldplan/Driving-v0")
        policy = replanning_policy("gbp", config, model, saved.params, saved.road, saved.cars, env)
        return HostPolicy(*policy, seed)
    actions = relax.for_action_mode("continuous")
    student = distill_lib.DistilledPolicy(actions, model.obs_dim, config.distill.hidden_sizes)
    stages = Stages(Path(run_dir))
    phase = stages.load(STUDENT_STAGE, student.template())
    if phase is None:
        raise io.CheckpointError(f"{stages.folder} has no finished {STUDENT_STAGE!r} phase")
    return HostPolicy(student.policy(phase.params), np.zeros(()), seed)
