"""The driving experiment's learned state model: its behaviour policy, its fit, its run phases."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.common.evaluate import EvalResult, evaluate_jax, random_policy
from envs.driving import core, driver
from envs.jax_env import make_jax_env
from experiments import driving_model, io
from experiments.driving_drivers import Drivers, model_claims
from experiments.driving_model import ModelConfig
from experiments.stages import Stages
from planners import relax
from planners.distill import DistillConfig
from planners.gbp import GBPConfig
from planners.shaping import BarrierConfig
from world_models import data as data_lib
from world_models import dynamics
from world_models.trainer import TrainerConfig

ENV = make_jax_env("worldplan/Driving-v0")
EGO = slice(0, 3)  # lateral position [m], heading [rad], speed [m/s]


def test_exploring_driver_perturbs_the_idm_driver_within_the_action_box() -> None:
    obs, state = ENV.reset(jax.random.PRNGKey(0), ENV.params)
    calm = driver.exploring_driver(ENV.params, noise_std=0.0, random_prob=0.0)
    action, carry = calm(None, obs, state, jax.random.PRNGKey(1))
    np.testing.assert_allclose(action, driver.idm_driver(state, ENV.params), atol=1e-6)
    assert carry is None
    wild = jax.jit(jax.vmap(driver.exploring_driver(ENV.params, 2.0, 0.5), (None, None, None, 0)))
    actions, _ = wild(None, obs, state, jax.random.split(jax.random.PRNGKey(2), 256))
    actions = np.asarray(actions)
    assert actions.min() >= -1.0 and actions.max() <= 1.0
    assert np.std(actions[:, 1]) > 0.3  # the steering is perturbed, not only the throttle
    with pytest.raises(ValueError, match="noise_std"):
        driver.exploring_driver(ENV.params, noise_std=-0.1)
    with pytest.raises(ValueError, match="random_prob"):
        driver.exploring_driver(ENV.params, random_prob=1.5)


def test_model_predicts_the_ego_car_better_than_no_change_and_its_phases_reload(tmp_path) -> None:
    config = ModelConfig(
        steps=4096,
        n_envs=32,
        trainer=TrainerConfig(batch_size=128, max_epochs=15, patience=15),
        gbp=GBPConfig(horizon=10, n_iterations=10, n_restarts=2, learning_rate=0.1),
        distill=DistillConfig(buffer_states=64, dagger_rounds=0),
        policy_trainer=TrainerConfig(batch_size=32, max_epochs=2),
    )
    stages = Stages(tmp_path)
    learned = driving_model.model_stage(config, ENV, 0, stages, log=lambda _: None)
    assert learned.env_steps == 4096 and learned.buffer_obs.shape == (
        128,
        32,
        core.obs_dim(ENV.params),
    )
    behaviour = driver.exploring_driver(ENV.params)
    actions = relax.for_action_mode("continuous")
    held_out = data_lib.collect(ENV, behaviour, None, actions, 1024, jax.random.PRNGKey(7), 32)
    errors, _ = dynamics.prediction_errors(learned.model, learned.params, held_out.data)
    no_change = np.mean((held_out.data.next_obs - held_out.data.obs) ** 2, axis=0)
    assert np.all(errors[EGO] < 0.2 * no_change[EGO]), (errors[EGO], no_change[EGO])

    lines = []
    again = driving_model.model_stage(config, ENV, 0, stages, log=lines.append)
    assert lines == [f"model: reloaded from {stages.folder}"]
    for a, b in zip(jax.tree.leaves(again.params), jax.tree.leaves(learned.params), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.buffer_obs, learned.buffer_obs)

    road, cars = BarrierConfig(weight=5.0, margin=0.3, scale=0.1), BarrierConfig()
    args = (config, learned.model, learned.params, road, cars, ENV)
    policy, plan = driving_model.replanning_policy("gbp", *args)
    obs, state = ENV.reset(jax.random.PRNGKey(3), ENV.params)
    action, next_plan = jax.jit(policy)(plan, obs, state, jax.random.PRNGKey(4))
    assert action.shape == (2,) and bool(jnp.all(jnp.abs(action) <= 1.0))
    assert next_plan.shape == plan.shape
    # GBP through even this small model drives on, where random commands leave the road at once
    planned = evaluate_jax(ENV, policy, 8, jax.random.PRNGKey(6), max_steps=60, init_carry=plan)
    random = evaluate_jax(ENV, random_policy(ENV.action_space), 8, jax.random.PRNGKey(6), 60)
    assert planned.mean > random.ci95_high  # measured: 6.1 vs -6.8
    assert planned.episode_lengths.min() > random.episode_lengths.max()  # measured: 38 vs 21
    args = (config, learned, road, cars, ENV, 0, stages)
    student, steps = driving_model.distgbp_policy(*args, log=lambda _: None)
    lines = []
    reloaded, steps_again = driving_model.distgbp_policy(*args, log=lines.append)
    assert lines == [f"DISTGBP: reloaded from {stages.folder}"] and steps == steps_again == 4096
    key = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(
        student(np.zeros(()), obs, state, key)[0], reloaded(np.zeros(()), obs, state, key)[0]
    )

    # what experiments.render loads from a run folder: the same policies, or a clear error
    settings = {"state_model": config, "road_barrier": road, "car_barrier": cars}
    io.write_json(tmp_path / "config.json", io.to_jsonable(settings))
    host = driving_model.load_policy(tmp_path, "distgbp")
    np.testing.assert_allclose(
        host(np.asarray(obs)), reloaded(np.zeros(()), obs, state, key)[0], atol=1e-6
    )
    assert driving_model.load_policy(tmp_path, "gbp")(np.asarray(obs)).shape == (2,)
    with pytest.raises(ValueError, match="'gbp' and 'distgbp'"):
        driving_model.load_policy(tmp_path, "ppo")
    _check_model_fidelity(tmp_path, settings)
    narrower = dataclasses.replace(config.dynamics, hidden_sizes=(64, 64))
    settings["state_model"] = dataclasses.replace(config, dynamics=narrower)
    io.write_json(tmp_path / "config.json", io.to_jsonable(settings))
    with pytest.raises(io.CheckpointError, match="model"):
        driving_model.load_policy(tmp_path, "gbp")
    with pytest.raises(io.CheckpointError, match="config.json"):
        driving_model.load_policy(tmp_path / "elsewhere", "gbp")


def test_config_rejects_bad_budgets_and_noise() -> None:
    with pytest.raises(ValueError, match="steps"):
        ModelConfig(steps=10, n_envs=64)
    assert ModelConfig(steps=0).steps == 0  # skips the learned-model rows
    with pytest.raises(ValueError, match="noise_std"):
        ModelConfig(noise_std=float("nan"))
    with pytest.raises(ValueError, match="random_prob"):
        ModelConfig(random_prob=-0.5)


def _result(mean: float, half_width: float, n: int = 4) -> EvalResult:
    return EvalResult(mean, mean - half_width, mean + half_width, np.zeros(n), np.zeros(n), 1e-3)


@pytest.mark.parametrize(
    "distgbp, held",
    [
        ((30.0, 3.0), (True, True, True)),  # beats PPO, GBP's 31 inside [27, 33]
        ((25.0, 1.0), (True, False, True)),  # beats PPO ([24, 26] above [18, 22]), below GBP
        ((22.5, 1.0), (False, False, True)),  # above PPO's mean, but [21.5, 23.5] reaches 22
        ((15.0, 9.0), (False, False, True)),  # below PPO
    ],
)
def test_model_claims_read_the_measured_rows(distgbp, held) -> None:
    results = {
        "PPO, 1,000 env steps": _result(20.0, 2.0),
        "GBP, learned model, 100 env steps": _result(31.0, 2.0),
        "DISTGBP, 100 env steps": _result(*distgbp),
    }
    timings = {"GBP, learned model, 100 env steps": 2e-3, "DISTGBP, 100 env steps": 1e-4}
    claims = model_claims(Drivers(results, timings), log=lambda _: None)
    assert tuple(c["held"] for c in claims) == held
    assert "20.0x" in claims[2]["detail"]
    slower = Drivers(results, {**timings, "DISTGBP, 100 env steps": 5e-4})
    assert not model_claims(slower, log=lambda _: None)[2]["held"]  # 4x is not 10x
    no_model = {k: v for k, v in results.items() if k.startswith("PPO")}
    assert model_claims(Drivers(no_model, {}), log=lambda _: None) == []


def _check_model_fidelity(run_dir, settings) -> None:
    """experiments.model_fidelity on a driving run (its GBP made smaller): groups, regret and
    optimism add up."""
    from experiments import model_fidelity

    small = GBPConfig(horizon=3, n_iterations=2, n_restarts=1)  # what is compared: few compiles
    settings = {**settings, "experiment": "driving"}
    settings["state_model"] = dataclasses.replace(settings["state_model"], gbp=small)
    io.write_json(run_dir / "config.json", io.to_jsonable(settings))
    config = model_fidelity.Config(
        runs=(str(run_dir),), states=("random",), n_episodes=2, warmup_steps=(0, 3), n_plans=2,
        closed_loop_episodes=0, results_root=str(run_dir / "fidelity"), run_name="f",
    )  # fmt: skip
    out = model_fidelity.main(config)
    metrics = io.read_json(out / "metrics.json")
    assert metrics["experiment"] == "driving" and set(metrics) == {"experiment", "random"}
    (figures,) = metrics["random"].values()
    assert set(figures["relative_error"]) == {"ego", "cars"} and figures["horizon"] == 3
    assert figures["start_states"] == {"0": 2, "3": 2}  # the exploring driver is still driving
    regret = figures["true_gbp_plan_return"][0] - figures["gbp_plan_true_return"][0]
    assert figures["gbp_plan_regret"][0] == pytest.approx(regret, abs=1e-4)
    optimism = figures["gbp_plan_predicted_return"][0] - figures["gbp_plan_true_return"][0]
    assert figures["gbp_plan_optimism"][0] == pytest.approx(optimism, abs=1e-4)
    assert -1.0 <= figures["grad_cosine"] <= 1.0 and np.isfinite(figures["return_mae"])
    table = (out / "table.md").read_text()
    assert "| model | ego rel. error, 1 / 5 / H steps | cars' | objective MAE |" in table
    assert "without lane changes" in table


def test_model_fidelity_refuses_runs_without_a_model_and_mixed_experiments(tmp_path) -> None:
    from experiments.fidelity_tasks import load_subjects

    def run(name, config):
        (tmp_path / name).mkdir()
        io.write_json(tmp_path / name / "config.json", config)
        return str(tmp_path / name)

    agent = run("a2c", {"algorithm": "a2c", "env": "worldplan/Spaceship-v0"})
    with pytest.raises(io.CheckpointError, match="agents.a2c run, which has no learned state"):
        load_subjects((agent,))
    ship = run("ship", {"experiment": "spaceship", "action_mode": "continuous"})
    road = run("road", {"experiment": "driving", "state_model": {}})
    with pytest.raises(ValueError, match="mix experiments \\['driving', 'spaceship'\\]"):
        load_subjects((ship, road))
