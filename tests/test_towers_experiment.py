"""``experiments.towers.main`` end to end on a tiny config."""

import json
from pathlib import Path

from envs.towers.params import Params
from envs.towers.planning import CEMConfig
from experiments.towers import Config, main
from world_models.trainer import TrainerConfig


def test_main_tiny_config(tmp_path: Path, capsys):
    config = Config(
        n_towers=36,
        epochs=1,
        trainer=TrainerConfig(batch_size=16, max_epochs=1, scan=False),
        cem=CEMConfig(samples=4, elites=2, iterations=1),
        planner_episodes=1,
        random_episodes=2,
        params=Params(image_size=32),
        workers=1,
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "results",
        run_name="tiny",
    )
    run_dir = main(config)
    assert run_dir == tmp_path / "results" / "tiny"
    for name in ("config.json", "metrics.json", "table.md", "masks.png", "physnet.ckpt"):
        assert (run_dir / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for n in (2, 3, 4):
        row = metrics["fall"][f"{n}_blocks"]
        for model in ("chance", "classifier", "physnet", "analytic", "physnet_mask_iou"):
            assert 0.0 <= row[model] <= 1.0
    assert metrics["overhang"]["analytic"]["collapse_rate"] == 0.0
    assert metrics["overhang"]["random"]["episodes"] == 2
    table = (run_dir / "table.md").read_text()
    assert "| physnet |" in table and "4 blocks" in table and "H_n/2" in table
    assert len(metrics["targets"]) == 4
    out = capsys.readouterr().out
    assert "held" in out and str(run_dir) in out
    assert json.loads((run_dir / "config.json").read_text())["max_epochs"] == 1
