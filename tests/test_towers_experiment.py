"""``experiments.towers.main`` end to end on a tiny config."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from envs.towers.grad_planning import GradConfig
from envs.towers.params import Params
from envs.towers.planning import CEMConfig
from experiments import io
from experiments.towers import Config, main, split
from experiments.towers_planning import calibrate_threshold, summarise
from world_models.trainer import TrainerConfig


def test_main_tiny_config(tmp_path: Path, capsys):
    config = Config(
        n_towers=36,
        epochs=1,
        trainer=dataclasses.replace(Config().trainer, batch_size=16),
        cem=CEMConfig(samples=4, elites=2, iterations=1),
        grad=GradConfig(restarts=2, steps=2),
        planning_towers=24,
        planning_epochs=1,
        planner_episodes=2,
        grad_planner_episodes=1,
        random_episodes=2,
        params=Params(image_size=32),
        workers=1,
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        run_name="tiny",
    )
    run_dir = main(config)
    assert run_dir == tmp_path / "results" / "tiny"
    names = ("config.json", "metrics.json", "table.md", "masks.png", "planning_physnet.ckpt")
    for name in names:
        assert (run_dir / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for n in (2, 3, 4):
        row = metrics["fall"][f"{n}_blocks"]
        for model in ("chance", "classifier", "physnet", "analytic", "physnet_mask_iou"):
            assert 0.0 <= row[model] <= 1.0
    overhang = metrics["overhang"]
    assert overhang["analytic"]["collapse_rate"] == 0.0
    assert overhang["random"]["episodes"] == 2 and overhang["physnet_cem"]["episodes"] == 2
    assert overhang["physnet_grad"]["episodes"] == 1
    for row in overhang.values():
        low, high = row["collapse_ci"]
        assert 0.0 <= low <= row["collapse_rate"] <= high <= 1.0
    assert 0.05 <= metrics["planning_model"]["threshold"] <= 0.95
    table = (run_dir / "table.md").read_text()
    assert "| physnet |" in table and "4 blocks" in table and "H_n/2" in table
    assert "gradient ascent" in table and "cross-entropy" in table
    assert len(metrics["targets"]) == 6
    out = capsys.readouterr().out
    verdicts = [line for line in out.splitlines() if line.startswith(("[held]", "[NOT held]"))]
    assert len(verdicts) == 6 and str(run_dir) in out
    resolved = json.loads((run_dir / "config.json").read_text())
    assert resolved["max_epochs"] == 1 and resolved["planning_dataset"]["sampler"] == "overhang"

    with pytest.raises(ValueError, match="--resume"):
        main(config)  # the folder holds a run: nothing is overwritten without --resume
    with pytest.raises(io.CheckpointError, match="n_towers"):
        main(dataclasses.replace(config, resume=True, n_towers=48))
    main(dataclasses.replace(config, resume=True))
    out = capsys.readouterr().out
    for name in ("classifier", "physnet", "planning_physnet"):
        assert f"resumed from {run_dir / name}.ckpt" in out
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["fall"] == metrics["fall"] and again["overhang"] == metrics["overhang"]


def test_flags_the_run_sets_itself_are_refused():
    with pytest.raises(ValueError, match="--epochs"):
        Config(trainer=TrainerConfig(max_epochs=3))
    with pytest.raises(ValueError, match="--planning-softness"):
        Config(grad=GradConfig(softness=0.2))
    with pytest.raises(ValueError, match="--grad-margin"):
        Config(grad=GradConfig(restarts=6, learning_rate=0.03, margin=0.2))


def test_grad_margin_follows_the_scale():
    """The gradient planner's margin: --grad-margin by default, CEM's 0.05 at full scale."""
    assert Config().grad_planner.margin == 0.1
    assert Config(grad_margin=0.08).grad_planner.margin == 0.08
    assert Config(full=True).grad_planner.margin == Config().cem.margin == 0.05
    assert Config(full=True).grad_planner.restarts == Config().grad.restarts
    with pytest.raises(ValueError, match="--grad-margin"):
        Config(grad_margin=-0.1)


def test_summarise_and_calibrate_by_hand():
    none = summarise([{"fraction": 0.9, "collapsed": 0.0}] * 10, "p")
    assert none["collapse_rate"] == 0.0
    assert none["collapse_ci"][0] == 0.0 and none["collapse_ci"][1] == pytest.approx(0.2775, 1e-3)
    assert none["fraction_ci"] == pytest.approx([0.9, 0.9])
    probs = np.array([0.01, 0.1, 0.2, 0.35, 0.6, 0.9])
    fell = np.array([0, 0, 0, 1, 1, 1], bool)
    assert calibrate_threshold(probs, fell, 0.0) == pytest.approx(0.35)
    assert calibrate_threshold(probs, fell, 0.3) == pytest.approx(0.6)


def test_split_trains_on_2_and_3_blocks_and_keeps_every_test_tower_out():
    counts = np.repeat([2, 3, 4], [50, 40, 30])
    data = {"n_blocks": counts, "tower": np.arange(len(counts))}
    train, tests = split(data, Config(test_fraction=0.2))
    assert set(train["n_blocks"]) == {2, 3}  # 4-block towers are never trained on
    assert {n: len(t["tower"]) for n, t in tests.items()} == {2: 10, 3: 8, 4: 6}
    held_out = np.concatenate([t["tower"] for t in tests.values()])
    assert not set(held_out) & set(train["tower"])
    assert len(train["tower"]) == 40 + 32
    for n, t in tests.items():
        assert set(t["n_blocks"]) == {n}


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("test_fraction", 0.0, "--test-fraction"),
        ("test_fraction", 1.5, "--test-fraction"),
        ("planner_episodes", 0, "--planner-episodes"),
        ("grad_planner_episodes", -1, "--grad-planner-episodes"),
        ("random_episodes", 0, "--random-episodes"),
    ],
)
def test_bad_settings_are_refused_before_training(field, value, flag):
    with pytest.raises(ValueError, match=flag):
        Config(**{field: value})
