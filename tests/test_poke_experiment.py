import dataclasses

import numpy as np
import pytest

from agents.common.stats import mean_ci
from experiments import io
from experiments.poke import Config, main
from experiments.poke_eval import best_of_k_rows, mse_from_psnr
from experiments.poke_goal import success_rate
from experiments.poke_latent import ridge_r2


def test_main_tiny_config_end_to_end(tmp_path):
    config = Config(
        run_name="tiny",
        results_root=str(tmp_path / "results"),
        data_root=str(tmp_path / "data"),
        train_examples=64,
        test_examples=24,
        eval_examples=6,
        image_size=16,
        features=4,
        epochs=2,
        ks=(1, 3),
        num_workers=1,
        forward_examples=100,
        forward_epochs=1,
        goal_episodes=2,
        goal_pokes=1,
        plan_restarts=2,
        plan_steps=2,
    )
    run_dir = main(config, log=lambda _: None)
    assert run_dir == tmp_path / "results" / "tiny"
    for name in ("config.json", "metrics.json", "best_of_k.csv", "table.md", "samples.png"):
        assert (run_dir / name).stat().st_size > 0, name
    resolved = io.read_json(run_dir / "config.json")
    assert resolved["num_train"] == 64 and resolved["model"]["features"] == 4
    assert resolved["trainer"]["lr_schedule"] == "cosine" and resolved["trainer"]["max_epochs"] == 2
    metrics = io.read_json(run_dir / "metrics.json")
    rows = {(r["model"], r["k"]): r for r in metrics["best_of_k"]}
    models = ("copy input", "deterministic", "een", "cvae", "een, z of the truth")
    assert set(rows) == {(m, k) for m in models for k in (1, 3)}
    # the deterministic model gives one answer: more draws cannot help it
    assert rows[("deterministic", 1)]["l1"] == rows[("deterministic", 3)]["l1"]
    # the EEN given the latent of the true outcome makes one prediction per example
    assert rows[("een, z of the truth", 1)]["l1"] == rows[("een, z of the truth", 3)]["l1"]
    # the latent models draw k different latents, so their best of 3 beats their first draw
    for model in ("een", "cvae"):
        assert rows[(model, 3)]["l1"] < rows[(model, 1)]["l1"], (model, rows)
    assert len(metrics["claims"]) == 7
    assert {"planned", "random", "random_aimed"} <= set(metrics["goal_reaching"])
    # one fit per phase: the step size decays within it over config.epochs epochs
    assert set(metrics["histories"]) == {"g", "een", "cvae"}
    for history in metrics["histories"].values():
        assert [h["epoch"] for h in history] == [0, 1]
    table = (run_dir / "table.md").read_text()
    assert "| een | 3 |" in table
    assert sum(line.startswith(("- held", "- NOT held")) for line in table.splitlines()) == 7

    # every model was checkpointed; a resumed run loads them and measures the same
    for name in ("g", "een", "cvae", "forward"):
        assert (run_dir / f"{name}.ckpt").stat().st_size > 0, name
    stamps = {p.name: p.stat().st_mtime_ns for p in run_dir.glob("*.ckpt")}
    lines = []
    main(dataclasses.replace(config, resume=True), log=lines.append)
    assert sum(line.startswith("resumed from") for line in lines) == 3  # forward.ckpt: silent
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.glob("*.ckpt")} == stamps
    again = io.read_json(run_dir / "metrics.json")
    for key in ("best_of_k", "latent_regression", "goal_reaching", "histories"):
        assert again[key] == metrics[key], key


def test_full_flag_selects_paper_scale():
    config = Config(full=True)
    assert config.frame_size == 64 and config.model.features == 64 and config.num_train == 50_000
    assert config.model.latent_dim == 8 and config.trainer.batch_size == 64
    assert config.model.loss == "l1" and config.trainer.learning_rate == 5e-4
    assert config.trainer.lr_schedule == "constant" and config.trainer.max_epochs == 50
    default = Config()
    trainer = default.trainer
    assert trainer.lr_schedule == "cosine" and trainer.max_epochs == default.epochs == 12
    assert trainer.final_lr_fraction == 0.1 and trainer.patience == default.epochs


def test_statistics_helpers_on_hand_worked_cases():
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0 and np.isclose(hi - mean, 4.303 * 1.0 / np.sqrt(3))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = np.stack([x[:, 0] * 2.0, rng.normal(size=400)], axis=1)
    r2 = ridge_r2(x[:300], y[:300], x[300:], y[300:])
    assert r2[0] > 0.99 and r2[1] < 0.05
    rate = success_rate([True, False, False, False])
    assert rate["rate"] == 0.25 and rate["lo"] < 0.25 < rate["hi"]


def test_psnr_of_the_mean_mse_on_a_hand_worked_case():
    # two examples with MSE 1e-2 and 0 (an unchanged frame: 100 dB, the floor of frame_errors)
    psnr = np.array([[20.0, 10.0], [100.0, 100.0]], np.float32)
    l1 = np.array([[0.1, 0.2], [0.0, 0.0]])
    assert np.allclose(mse_from_psnr(psnr[:, 0]), [1e-2, 0.0], atol=1e-9)
    (k1,) = best_of_k_rows({"m": (l1, psnr)}, (1,))
    assert k1["psnr"] == 60.0 and np.isclose(k1["l1"], 0.05)
    # mean MSE 5e-3 -> 23.01 dB, whatever the floor on the unchanged frame
    assert np.isclose(k1["psnr_of_mean_mse"], -10 * np.log10(5e-3), atol=1e-4)
    assert k1["psnr_of_mean_mse_lo"] < k1["psnr_of_mean_mse"] < k1["psnr_of_mean_mse_hi"]


def test_the_latent_claim_needs_a_positive_r2():
    from experiments.poke_claims import other_claims

    goal = {name: {"rate": 0.5, "lo": 0.4, "hi": 0.6} for name in ("planned", "random")}
    goal["random_aimed"] = {"rate": 0.5}
    directions = {"r2_latent_direction": 0.0, "r2_frame_direction": 0.0}
    for r2_latent, r2_frame, held in (
        (-0.004, -10.4, False),
        (0.25, 0.08, True),
        (0.1, 0.2, False),
    ):
        regression = {"r2_latent": r2_latent, "r2_frame": r2_frame, **directions}
        assert other_claims(regression, goal, log=lambda _: None)[0]["held"] is held


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("ks", (), "--ks"),
        ("ks", (3,), "--ks"),  # the claims compare against k=1
        ("ks", (1, 0), "--ks"),
        ("goal_episodes", 0, "--goal-episodes"),
        ("eval_examples", 1, "--eval-examples"),
        ("test_examples", 1, "--test-examples"),
    ],
)
def test_bad_settings_are_refused_before_training(field, value, flag):
    with pytest.raises(ValueError, match=flag):
        Config(**{field: value})
