"""One table of several runs of an experiment that differ only in ``--seed``.

``python -m experiments.across_seeds --runs results/spaceship/s0 results/spaceship/s1 ...``

The experiments' 95% CIs are over evaluation episodes of one training run: they say how well that
run's policy or model was measured, not what another seed would have given. Seed-to-seed spread
is often larger (Henderson et al. 2018, "Deep Reinforcement Learning that Matters"; Agarwal et
al. 2021, "Deep RL at the Edge of the Statistical Precipice"). This tool reads finished
``experiments.spaceship`` or ``experiments.driving`` folders (``config.json``, ``metrics.json``;
nothing is re-run) and reports, per row, the mean over seeds with a Student-t 95% CI over seeds,
the seeds' spread, and the average within-run CI half-width beside it.

The talk's three claims are checked on per-seed paired differences (each seed's runs share
their evaluation episodes' start states across rows): model-based beats model-free when the CIs
of GBP - model-free and DISTGBP - model-free both lie above 0; DISTGBP matches GBP when the CI
of DISTGBP - GBP contains 0 (with few seeds that interval is wide, so this reads "no difference
found", not equivalence); DISTGBP acts >= 10x faster in every seed. How often each run's own
verdict held is counted beside them.

Writes ``results/across_seeds/<run>/`` with ``table.md``, ``metrics.json``, ``config.json`` and,
for spaceship runs, ``curve.png`` (the learning curves' mean over seeds with its 95% CI band).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from agents.common.stats import mean_ci
from experiments import io
from experiments.across_seeds_report import ci_text, plot_curve, table_markdown
from experiments.claims import claim
from experiments.configs import run_main
from experiments.spaceship_report import claims as spaceship_claims
from experiments.spaceship_report import rows_from_metrics
from experiments.stages import EXPERIMENT, IGNORED, open_run

MAY_DIFFER = (*IGNORED, "seed", "results_root")
"""Config fields that may differ between the runs compared, besides nested ``*.seed`` fields
(a sub-config's seed, which some experiments derive from ``--seed``); everything else must
match."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of the across-seeds table."""

    runs: tuple[str, ...] = ()
    """Finished results folders of one experiment ("spaceship" or "driving"), with the same
    settings but ``--seed`` (at least two, each seed once)."""
    results_root: str = "results/across_seeds"
    """Parent folder of the run folder."""
    run_name: str | None = None
    """Run folder name (default: a timestamp)."""


class Spec(NamedTuple):
    """Where an experiment's ``metrics.json`` keeps what this tool reads."""

    rows_key: str
    """The mapping ``row name -> {mean, ci95_low, ci95_high, ...}``."""
    model_free: str
    """Name (or name prefix) of the model-free row the talk's first claim compares against."""
    seconds_key: str | None
    """Mapping ``row name -> single-env seconds per action`` (None: each row's own
    ``seconds_per_action``)."""
    order: tuple[str, ...]
    """Row names (or name prefixes) in the order the experiment's table lists them."""


SPECS = {
    "spaceship": Spec(
        "rows", "A2C", None, ("RANDOM", "A2C", "GBP", "DISTGBP", "CEM", "GBP (true dynamics)")
    ),
    "driving": Spec(
        "drivers",
        "PPO",
        "single_env_seconds_per_action",
        ("random", "IDM", "PPO", "GBP, learned", "CEM, learned", "DISTGBP", "GBP", "CEM"),
    ),
}
GBP, DISTGBP = "GBP", "DISTGBP"


class Loaded(NamedTuple):
    """The runs, read and checked."""

    experiment: str
    seeds: list[int]
    paths: list[str]
    metrics: list[dict[str, Any]]
    """Each run's ``metrics.json``, in the order of ``paths``."""


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"gbp.horizon": 10, ...}``: nested config fields by their dotted names."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_runs(runs: tuple[str, ...] | list[str]) -> Loaded:
    """Reads each run's ``config.json`` and ``metrics.json``; refuses runs that cannot be pooled.

    Raises:
        experiments.io.RunFolderError: fewer than two runs, a folder that is not a finished
            spaceship or driving run, runs of different experiments, a seed given twice, or
            settings other than :data:`MAY_DIFFER` that differ (the first such field named,
            with both values).
    """
    if len(runs) < 2:
        raise io.RunFolderError(f"--runs needs at least two runs (one per seed), got {len(runs)}")
    configs, metrics = [], []
    for run in runs:
        path = Path(run)
        if not (path / "config.json").exists():
            raise io.RunFolderError(f"{path} is not a results folder (no config.json)")
        config = io.read_json(path / "config.json")
        experiment = config.get(EXPERIMENT)
        if experiment not in SPECS:
            raise io.RunFolderError(
                f"{path} holds an experiments.{experiment} run; this tool pools "
                f"{' or '.join(f'experiments.{name}' for name in SPECS)} runs"
            )
        if not (path / "metrics.json").exists():
            raise io.RunFolderError(
                f"{path} has not finished (no metrics.json): finish it with --resume"
            )
        configs.append(config)
        metrics.append(io.read_json(path / "metrics.json"))
    first = _flat(configs[0])
    for run, config in zip(runs[1:], configs[1:], strict=True):
        if config[EXPERIMENT] != configs[0][EXPERIMENT]:
            raise io.RunFolderError(
                f"{run} is an experiments.{config[EXPERIMENT]} run and {runs[0]} an "
                f"experiments.{configs[0][EXPERIMENT]} run: pool runs of one experiment"
            )
        other = _flat(config)
        seeds = [k for k in (*first, *other) if k.endswith(".seed")]  # e.g. driving's data.seed
        differ = io.differing_fields(first, other, (*MAY_DIFFER, *seeds))
        if differ:
            key = differ[0]
            raise io.RunFolderError(
                f"{run} differs from {runs[0]} in {key} ({other.get(key)!r} against "
                f"{first.get(key)!r}): pool only runs that differ in --seed"
            )
    seeds = [int(c["seed"]) for c in configs]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise io.RunFolderError(
            f"--runs holds seed {repeated[0]} more than once: each seed counts once"
        )
    return Loaded(configs[0][EXPERIMENT], seeds, [str(r) for r in runs], metrics)


def _row_name(names: list[str], name: str) -> str:
    """``name`` itself if a row has it, else the first row whose name starts with it."""
    if name in names:
        return name
    match = next((row for row in names if row.startswith(name)), None)
    if match is None:
        raise io.RunFolderError(f"no row named {name!r} (rows: {', '.join(names)})")
    return match


def _masked(name: str) -> str:
    """A row's name with its numbers masked: budgets in names may differ by seed."""
    return re.sub(r"\d[\d,.]*", "#", name)


def _rank(order: tuple[str, ...], name: str) -> int:
    """Where ``name`` goes in ``order``: its own entry, else its first prefix, else last."""
    if name in order:
        return order.index(name)
    return next((i for i, entry in enumerate(order) if name.startswith(entry)), len(order))


def _aligned(loaded: Loaded, spec: Spec) -> tuple[list[str], list[dict], list[dict]]:
    """Each run's rows and single-env times under the first run's row names, in table order.

    Rows are matched by their names with numbers masked (``"DISTGBP, 200,032 env steps"``).

    Returns:
        ``(names, rows, seconds)``: the row names; per run, ``name -> its row``; per run,
        ``name -> seconds per action`` (NaN for a row the run did not time).

    Raises:
        experiments.io.RunFolderError: a run whose rows are not the first run's.
    """
    first = loaded.metrics[0][spec.rows_key]
    names = sorted(first, key=lambda name: (_rank(spec.order, name), name))
    rows, seconds = [], []
    for path, metrics in zip(loaded.paths, loaded.metrics, strict=True):
        table = metrics[spec.rows_key]
        own = {_masked(n): n for n in table}
        if sorted(own) != sorted(_masked(n) for n in names):
            raise io.RunFolderError(
                f"{path} has rows {sorted(table)}, {loaded.paths[0]} {sorted(first)}"
            )
        matched = {n: own[_masked(n)] for n in names}
        rows.append({n: table[o] for n, o in matched.items()})
        if spec.seconds_key is None:
            timed = {n: table[o]["seconds_per_action"] for n, o in matched.items()}
        else:
            timed = {n: metrics[spec.seconds_key].get(o) for n, o in matched.items()}
        seconds.append({n: np.nan if s is None else float(s) for n, s in timed.items()})
    return names, rows, seconds


def _numbers(values: list[Any]) -> np.ndarray:
    """(S,) floats; JSON's null (a NaN the run wrote, e.g. a one-episode CI) becomes NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], np.float64)


def _summary(values: np.ndarray) -> dict[str, Any]:
    """Mean over seeds, its 95% CI, the seeds' standard deviation, min, max and values."""
    mean, low, high = mean_ci(values)
    return {
        "mean": mean,
        "ci95_low": low,
        "ci95_high": high,
        "std": float(np.std(values, ddof=1)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "per_seed": [float(v) for v in values],
    }


def summarise(loaded: Loaded) -> dict[str, Any]:
    """Across-seed figures of every row, the paired differences and the claims.

    Returns:
        ``{"rows": {name: summary + within_run_half_width + seconds_per_action}, "differences":
        {"GBP - A2C": summary, ...}, "speedups": [per seed], "claims": [...], "run_claims":
        [{"claim", "held", "of"}], "curve": {name: [[steps, mean, low, high], ...]}}``.
    """
    spec = SPECS[loaded.experiment]
    names, tables, seconds = _aligned(loaded, spec)
    rows = {}
    for name in names:
        summary = _summary(_numbers([t[name]["mean"] for t in tables]))
        halves = (_numbers([t[name][k] for t in tables]) for k in ("ci95_high", "ci95_low"))
        summary["within_run_half_width"] = float(np.mean(np.subtract(*halves)) / 2)
        summary["seconds_per_action"] = float(np.median([s[name] for s in seconds]))
        rows[name] = summary
    free, gbp, dist = (_row_name(names, n) for n in (spec.model_free, GBP, DISTGBP))
    means = lambda name: _numbers([t[name]["mean"] for t in tables])  # noqa: E731
    diff = lambda a, b: _summary(means(a) - means(b))  # noqa: E731
    differences = {
        f"{GBP} - {spec.model_free}": diff(gbp, free),
        f"{DISTGBP} - {spec.model_free}": diff(dist, free),
        f"{DISTGBP} - {GBP}": diff(dist, gbp),
    }
    speedups = [s[gbp] / max(s[dist], 1e-12) for s in seconds]
    return {
        "rows": rows,
        "differences": differences,
        "speedups": speedups,
        "claims": _claims(spec, differences, speedups, len(tables)),
        "run_claims": _run_claims(loaded),
        "curve": _curve(loaded.metrics),
    }


def _claims(spec: Spec, differences: dict, speedups: list[float], n: int) -> list[dict]:
    """The talk's claims on the per-seed paired differences (see the module docstring)."""
    free = spec.model_free
    above = [differences[f"{name} - {free}"] for name in (GBP, DISTGBP)]
    matches = differences[f"{DISTGBP} - {GBP}"]
    quiet = lambda _: None  # noqa: E731
    return [
        claim(
            f"model-based beats {free} across {n} seeds",
            min(d["ci95_low"] for d in above) > 0,
            f"GBP - {free} {ci_text(above[0])}, DISTGBP - {free} {ci_text(above[1])}; held "
            "needs both 95% CIs above 0",
            quiet,
        ),
        claim(
            f"DISTGBP matches GBP across {n} seeds",
            matches["ci95_low"] <= 0 <= matches["ci95_high"],
            f"DISTGBP - GBP {ci_text(matches)}; held: its 95% CI contains 0",
            quiet,
        ),
        claim(
            f"DISTGBP acts >= 10x faster than GBP in every one of {n} seeds",
            min(speedups) >= 10,
            f"{min(speedups):.1f}x to {max(speedups):.1f}x",
            quiet,
        ),
    ]


def _run_claims(loaded: Loaded) -> list[dict[str, Any]]:
    """How many runs' own verdicts held, per claim (in the order the runs list them)."""
    verdicts = []
    for metrics in loaded.metrics:
        stored = metrics.get("claims")
        if stored is None and loaded.experiment == "spaceship":  # written before "claims"
            stored = spaceship_claims(rows_from_metrics(metrics))
        verdicts.append(stored or [])
    counts = []
    for i, first in enumerate(verdicts[0]):
        # a claim's name carries budgets ("... (59,968 model steps) ..."); its position does not
        held = sum(bool(v[i]["held"]) for v in verdicts if len(v) > i)
        counts.append({"claim": first["claim"], "held": held, "of": len(verdicts)})
    return counts


def _curve(metrics: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """Mean learning curve over seeds, ``name -> [[env steps, mean, low, high], ...]``.

    Points are matched by position; their env steps are the runs' mean (the budgets are the
    same, so they agree). Curves that some run lacks, or that differ in length, are left out.
    """
    curves = [m.get("curve") or {} for m in metrics]
    out = {}
    for name, points in curves[0].items():
        if any(len(c.get(name, ())) != len(points) for c in curves):
            continue
        merged = []
        for i in range(len(points)):
            steps = float(np.mean([c[name][i][0] for c in curves]))
            mean, low, high = mean_ci(np.array([c[name][i][1] for c in curves]))
            merged.append([steps, mean, low, high])
        out[name] = merged
    return out


def main(config: Config) -> Path:
    """Reads the runs, writes the results folder and prints the table; returns the folder."""
    loaded = load_runs(config.runs)
    summary = summarise(loaded)
    run_dir, _ = open_run(
        config.results_root, config.run_name, io.to_jsonable(config), False, "across_seeds"
    )
    text = table_markdown(loaded.experiment, loaded.seeds, summary)
    io.atomic_write_text(run_dir / "table.md", text)
    io.write_json(
        run_dir / "metrics.json",
        {"experiment": loaded.experiment, "seeds": loaded.seeds, "runs": loaded.paths, **summary},
    )
    if summary["curve"]:
        plot_curve(summary["curve"], run_dir / "curve.png", len(loaded.seeds))
    print(text)
    print(f"wrote {run_dir}")
    return run_dir


if __name__ == "__main__":
    run_main(main, Config)
