"""experiments.across_seeds on hand-made results folders, figures worked out by hand."""

import math

import numpy as np
import pytest

from agents.common.stats import t_quantile_975
from experiments import across_seeds, io
from experiments.configs import run_main

SPACESHIP_CONFIG = {"experiment": "spaceship", "gbp": {"horizon": 10}, "eval_episodes": 100}
# means per seed: A2C 0/3/6, GBP 20/24/25, DISTGBP 19/20/27 (each within-run CI +-2)
MEANS = {"A2C": (0.0, 3.0, 6.0), "GBP": (20.0, 24.0, 25.0), "DISTGBP": (19.0, 20.0, 27.0)}
SECONDS = {"A2C": (1e-5,) * 3, "GBP": (2e-3, 2e-3, 1e-3), "DISTGBP": (1e-4, 1e-4, 2e-4)}


def _spaceship_run(root, seed, index, config=None, means=MEANS):
    run = root / f"seed{seed}"
    run.mkdir(parents=True)
    settings = {**SPACESHIP_CONFIG, **(config or {}), "seed": seed, "run_name": run.name}
    io.write_json(run / "config.json", {**settings, "results_root": str(root), "resume": False})
    rows = {
        name: {
            "mean": means[name][index],
            "ci95_low": means[name][index] - 2.0,
            "ci95_high": means[name][index] + 2.0,
            "seconds_per_action": SECONDS[name][index],
            "batched_seconds_per_step": 1e-4,
            "env_steps": 60_000 if name != "A2C" else 400_000,
            "episodes": 100,
        }
        for name in means
    }
    metrics = {"rows": rows, "curve": {"A2C": [[100, float(index)], [200, 10.0 * index]]}}
    io.write_json(run / "metrics.json", metrics)
    return str(run)


@pytest.fixture
def runs(tmp_path):
    return [_spaceship_run(tmp_path, seed, i) for i, seed in enumerate((0, 1, 2))]


def _half(std, n=3):
    return t_quantile_975(n - 1) * std / math.sqrt(n)


def test_rows_differences_and_claims_by_hand(runs):
    summary = across_seeds.summarise(across_seeds.load_runs(runs))
    a2c = summary["rows"]["A2C"]
    assert a2c["mean"] == pytest.approx(3.0) and a2c["std"] == pytest.approx(3.0)
    assert a2c["ci95_high"] == pytest.approx(3.0 + _half(3.0))
    assert (a2c["min"], a2c["max"], a2c["per_seed"]) == (0.0, 6.0, [0.0, 3.0, 6.0])
    assert a2c["within_run_half_width"] == pytest.approx(2.0)
    assert summary["rows"]["GBP"]["seconds_per_action"] == pytest.approx(2e-3)  # median
    diffs = summary["differences"]
    assert diffs["GBP - A2C"]["per_seed"] == [20.0, 21.0, 19.0]
    assert diffs["GBP - A2C"]["ci95_low"] == pytest.approx(20.0 - _half(1.0))
    assert diffs["DISTGBP - A2C"]["ci95_low"] == pytest.approx(19.0 - _half(2.0))
    assert diffs["DISTGBP - GBP"]["ci95_low"] == pytest.approx(-1.0 - _half(3.0))
    assert summary["speedups"] == pytest.approx([20.0, 20.0, 5.0])
    beats, matches, faster = summary["claims"]
    assert beats["held"] and "across 3 seeds" in beats["claim"]
    assert matches["held"]  # [-8.5, 6.5] contains 0
    assert not faster["held"] and faster["detail"] == "5.0x to 20.0x"
    # each run's own verdicts, rebuilt from its rows (no "claims" in these metrics.json)
    held = [(c["held"], c["of"]) for c in summary["run_claims"]]
    assert held == [(3, 3), (2, 3), (2, 3)]
    (early, late) = summary["curve"]["A2C"]
    assert early[:2] == [100.0, 1.0] and late[:2] == [200.0, 10.0]
    assert late[3] == pytest.approx(10.0 + _half(10.0))


def test_a_seed_where_distgbp_falls_behind_gbp_breaks_the_match(tmp_path):
    means = {**MEANS, "DISTGBP": (10.0, 14.0, 15.0)}  # 10 below GBP in every seed
    runs = [_spaceship_run(tmp_path, s, i, means=means) for i, s in enumerate((0, 1, 2))]
    summary = across_seeds.summarise(across_seeds.load_runs(runs))
    assert summary["differences"]["DISTGBP - GBP"]["ci95_high"] == pytest.approx(-10.0)
    assert [c["held"] for c in summary["claims"]] == [True, False, False]


def test_main_writes_the_folder(runs, tmp_path):
    config = across_seeds.Config(runs=tuple(runs), results_root=str(tmp_path / "out"))
    run_dir = across_seeds.main(config)
    table = (run_dir / "table.md").read_text()
    assert "# experiments.spaceship across 3 seeds (0, 1, 2)" in table
    assert "| A2C | 3.0 [-4.5, 10.5] | 3.0 | 0.0 .. 6.0 | 2.0 | 0.00001 |" in table
    assert "- model-based beats A2C across 3 seeds: held (GBP - A2C 20.0 [17.5, 22.5]" in table
    assert "held in 2 of 3 runs" in table
    rows = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ")]
    assert rows[1:4] == ["| A2C", "| GBP", "| DISTGBP"]  # the table's order, not metrics.json's
    metrics = io.read_json(run_dir / "metrics.json")
    assert metrics["seeds"] == [0, 1, 2] and metrics["experiment"] == "spaceship"
    assert (run_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert io.read_json(run_dir / "config.json")["experiment"] == "across_seeds"


@pytest.mark.parametrize(
    "change, message",
    [
        ("one", "at least two runs"),
        ("setting", "differs from .* in gbp.horizon \\(12 against 10\\)"),
        ("seed", "holds seed 0 more than once"),
        ("unfinished", "has not finished \\(no metrics.json\\)"),
        ("experiment", "holds an experiments.towers run"),
        ("mixed", "seed1 is an experiments.driving run and .* an experiments.spaceship run"),
    ],
)
def test_runs_that_cannot_be_pooled_are_refused(tmp_path, change, message):
    runs = [_spaceship_run(tmp_path / "a", 0, 0)]
    if change == "setting":
        runs.append(_spaceship_run(tmp_path, 1, 1, config={"gbp": {"horizon": 12}}))
    elif change == "seed":
        runs.append(_spaceship_run(tmp_path / "b", 0, 1))
    elif change == "unfinished":
        runs.append(_spaceship_run(tmp_path, 1, 1))
        (tmp_path / "seed1" / "metrics.json").unlink()
    elif change == "experiment":
        runs.append(_spaceship_run(tmp_path, 1, 1, config={"experiment": "towers"}))
    elif change == "mixed":
        runs.append(_spaceship_run(tmp_path, 1, 1, config={"experiment": "driving"}))
    with pytest.raises(io.RunFolderError, match=message):
        across_seeds.load_runs(runs)
    args = ["--runs", *runs, "--results-root", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match="error: "):  # one line on the command line
        run_main(across_seeds.main, across_seeds.Config, args)


def test_driving_runs_use_their_own_rows_timings_and_stored_verdicts(tmp_path):
    runs = []
    for seed, (ppo, gbp, dist) in enumerate(((20.0, 28.0, 22.0), (22.0, 30.0, 26.0))):
        # a budget in a row's name may differ by seed: rows are matched with numbers masked
        names = ("PPO, 1,000,000 env steps", "GBP, learned model", f"DISTGBP, 20{seed},032 steps")
        run = tmp_path / f"drive{seed}"
        run.mkdir()
        config = {
            "experiment": "driving",
            "seed": seed,
            "run_name": run.name,
            "data": {"seed": seed},
        }
        io.write_json(run / "config.json", config)
        means = dict(zip(names, (ppo, gbp, dist), strict=True))
        drivers = {n: {"mean": m, "ci95_low": m - 1, "ci95_high": m + 1} for n, m in means.items()}
        seconds = dict(zip(names[1:], (1.3e-3, 1.3e-5 * (seed + 1)), strict=True))  # as timed
        claims = [{"claim": "model-based beats PPO", "held": seed == 0, "detail": ""}]
        io.write_json(
            run / "metrics.json",
            {"drivers": drivers, "single_env_seconds_per_action": seconds, "claims": claims},
        )
        runs.append(str(run))
    summary = across_seeds.summarise(across_seeds.load_runs(runs))
    assert list(summary["rows"]) == [  # the driving table's order, names of the first run
        "PPO, 1,000,000 env steps",
        "GBP, learned model",
        "DISTGBP, 200,032 steps",
    ]
    assert np.isnan(summary["rows"]["PPO, 1,000,000 env steps"]["seconds_per_action"])
    assert summary["differences"]["GBP - PPO"]["per_seed"] == [8.0, 8.0]
    assert summary["differences"]["DISTGBP - PPO"]["per_seed"] == [2.0, 4.0]
    assert summary["speedups"] == pytest.approx([100.0, 50.0])
    assert [c["held"] for c in summary["claims"]][2]
    assert summary["run_claims"] == [{"claim": "model-based beats PPO", "held": 1, "of": 2}]
    assert summary["curve"] == {}


def test_a_run_with_a_one_episode_row_still_pools(runs, tmp_path):
    metrics = io.read_json(f"{runs[0]}/metrics.json")
    metrics["rows"]["A2C"].update(ci95_low=None, ci95_high=None)  # as write_json stores NaN
    io.write_json(f"{runs[0]}/metrics.json", metrics)
    summary = across_seeds.summarise(across_seeds.load_runs(runs))
    assert math.isnan(summary["rows"]["A2C"]["within_run_half_width"])
    assert summary["rows"]["A2C"]["mean"] == pytest.approx(3.0)
    # that run's own "beats A2C" verdict cannot be held without A2C's interval
    assert [(c["held"], c["of"]) for c in summary["run_claims"]][0] == (2, 3)
    config = across_seeds.Config(runs=tuple(runs), results_root=str(tmp_path / "out"))
    assert (
        "| A2C | 3.0 [-4.5, 10.5] | 3.0 | 0.0 .. 6.0 | nan |"
        in (across_seeds.main(config) / "table.md").read_text()
    )
