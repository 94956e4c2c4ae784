"""``experiments.driving`` end to end on a tiny config, and its data pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.ppo import PPOConfig
from envs.driving.dataset import FrameDataConfig, collect_pairs
from envs.driving.params import DrivingParams
from experiments import io
from experiments.driving import Config, main
from experiments.driving_model import ModelConfig
from planners.cem import CEMConfig
from planners.distill import DistillConfig
from planners.gbp import GBPConfig
from world_models.trainer import TrainerConfig

TINY_MODEL = ModelConfig(
    steps=512,
    n_envs=16,
    trainer=TrainerConfig(batch_size=64, max_epochs=2),
    gbp=GBPConfig(horizon=3, n_iterations=2, n_restarts=1),
    cem=CEMConfig(horizon=3, n_samples=4, n_iterations=1, n_elites=2),
    distill=DistillConfig(buffer_states=64, dagger_rounds=1, imagined_starts=8, imagined_horizon=2),
    policy_trainer=TrainerConfig(batch_size=32, max_epochs=2),
)


def test_pairs_are_the_frames_horizon_steps_apart() -> None:
    params = DrivingParams(pixel_rows=8, pixel_cols=16, pixel_scale=2.0, pixel_behind=8.0)
    config = FrameDataConfig(episodes=2, steps=12, horizon=4, stride=4, seed=3)
    data = collect_pairs(config, params)
    assert config.pairs_per_episode == 3  # start frames 0, 4, 8
    assert data["frame"].shape == (6, 8, 16, 3) and data["frame"].dtype == np.uint8
    np.testing.assert_array_equal(data["episode"], [0, 0, 0, 1, 1, 1])
    # the target of the pair starting at 0 is the start frame of the pair starting at 4
    np.testing.assert_array_equal(data["next_frame"][0], data["frame"][1])
    np.testing.assert_array_equal(data["next_frame"][1], data["frame"][2])
    # the same pairs, simulated two episodes per call (the last call padded)
    again = collect_pairs(dataclasses.replace(config, episodes=3), params, episodes_per_call=2)
    np.testing.assert_array_equal(again["next_frame"][:6], data["next_frame"])
    with pytest.raises(ValueError, match="horizon"):
        FrameDataConfig(steps=5, horizon=5)


def test_main_tiny_config_end_to_end(tmp_path) -> None:
    config = Config(
        results_root=str(tmp_path / "results"),
        run_name="tiny",
        policy_episodes=4,
        ppo=PPOConfig(total_steps=512, num_envs=8, n_steps=16, batch_size=32, n_epochs=1),
        state_model=TINY_MODEL,
        timing_repeats=2,
        planner_episodes=2,
        planner=GBPConfig(horizon=3, n_iterations=2, n_restarts=1),
        cem_planner=CEMConfig(horizon=3, n_samples=4, n_iterations=1, n_elites=2),
        episodes=6,
        test_episodes=2,
        steps=20,
        horizon=5,
        stride=5,
        frame_rows=8,
        frame_cols=16,
        frame_scale=2.0,
        features=4,
        epochs=2,
        eval_examples=6,
        ks=(1, 3),
    )
    run_dir = main(config, log=lambda _: None)
    for name in ("config.json", "metrics.json", "best_of_k.csv", "table.md", "samples.png"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = io.read_json(run_dir / "metrics.json")
    drivers = metrics["drivers"]
    # the lane-keeping driver survives its episodes; random steering leaves the road early
    assert drivers["IDM driver"]["ci95_low"] > drivers["random"]["ci95_high"]
    assert drivers["IDM driver"]["mean_episode_length"] > drivers["random"]["mean_episode_length"]
    assert drivers["random"]["ended_early"] == 4 and drivers["IDM driver"]["ended_early"] == 0
    assert (
        drivers["GBP, true dynamics"]["episodes"] == drivers["CEM, true dynamics"]["episodes"] == 2
    )
    assert drivers["PPO, 512 env steps"]["episodes"] == 4
    assert drivers["GBP, learned model, 512 env steps"]["episodes"] == 2
    assert drivers["DISTGBP, 512 env steps"]["episodes"] == 4  # DAgger in the model: no steps
    assert drivers["CEM, learned model, 512 env steps"]["episodes"] == 2
    assert set(metrics["single_env_seconds_per_action"]) == {
        "GBP, learned model, 512 env steps",
        "CEM, learned model, 512 env steps",
        "DISTGBP, 512 env steps",
    }
    rows = {(r["model"], r["k"]): r for r in metrics["best_of_k"]}
    assert rows[("deterministic", 1)]["l1"] == rows[("deterministic", 3)]["l1"]
    for model in ("een", "cvae"):
        assert rows[(model, 3)]["l1"] < rows[(model, 1)]["l1"], (model, rows)  # k draws differ
    assert len(metrics["claims"]) == 8  # 3 of the learned model's, 5 of prediction
    assert set(metrics["phase_seconds"]) == {"model", "distgbp", "drivers"}
    assert sum(metrics["phase_seconds"].values()) <= metrics["seconds"]
    assert metrics["claims"][0]["claim"].startswith("model-based (GBP, learned model, 512")
    table = (run_dir / "table.md").read_text()
    assert "| IDM driver |" in table and "| een | 3 |" in table and "| 0/4 |" in table
    resolved = io.read_json(run_dir / "config.json")
    assert resolved["frame_params"]["pixel_rows"] == 8 and resolved["data"]["episodes"] == 6
    assert resolved["planner"]["horizon"] == 3 and resolved["road_barrier"]["weight"] == 5.0
    # the learned model's planner and its student play in experiments.render from the run folder
    from experiments import render

    for policy in ("gbp", "distgbp"):
        watch = render.Config(
            env="worldplan/Driving-v0",
            policy=policy,
            run=run_dir,
            episodes=1,
            out=tmp_path / f"{policy}.gif",
            env_kwargs='{"max_steps": 5}',
        )
        assert len(render.main(watch)) == 1 and watch.out.stat().st_size > 0
    with pytest.raises(ValueError, match="driving run"):
        render.main(dataclasses.replace(watch, env="worldplan/Spaceship-v0"))
    # resuming reloads the driver table and the three models' checkpoints, and measures the same
    lines = []
    main(dataclasses.replace(config, resume=True), log=lines.append)
    assert sum(line.startswith("resumed from") for line in lines) == 3
    assert sum(line.startswith("drivers: reloaded") for line in lines) == 1
    again = io.read_json(run_dir / "metrics.json")
    assert again["best_of_k"] == metrics["best_of_k"] and again["drivers"] == metrics["drivers"]


def test_config_checks_and_full_scale() -> None:
    with pytest.raises(ValueError, match="test_episodes"):
        Config(episodes=5, test_episodes=5)
    full = Config(full=True)
    assert full.frame_params == DrivingParams() and full.model.features == 64
    assert full.data.episodes == 1600 and full.num_eval == 1000


def test_render_plays_the_idm_driver(tmp_path) -> None:
    from experiments import render

    out = tmp_path / "drive.gif"
    config = render.Config(
        env="worldplan/Driving-v0",
        policy="idm-driver",
        episodes=1,
        out=out,
        env_kwargs='{"max_steps": 30}',
    )
    returns = render.main(config)
    assert out.stat().st_size > 0 and returns[0] > 0  # it drives on, and is paid for it
    with pytest.raises(ValueError, match="drives worldplan/Driving-v0 only"):
        render.main(dataclasses.replace(config, env="worldplan/Spaceship-v0"))


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("ks", (), "--ks"),
        ("ks", (3,), "--ks"),  # the claims compare against k=1
        ("ks", (1, -5), "--ks"),
        ("eval_examples", 1, "--eval-examples"),
        ("frame_rows", 20, "--frame-rows"),
        ("frame_rows", 0, "--frame-rows"),
        ("frame_cols", 60, "--frame-cols"),
    ],
)
def test_bad_settings_are_refused_before_training(field, value, flag) -> None:
    with pytest.raises(ValueError, match=flag):
        Config(**{field: value})
