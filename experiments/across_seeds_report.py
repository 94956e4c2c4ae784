"""The across-seeds table and curve plot (:mod:`experiments.across_seeds`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from experiments import io


def ci_text(summary: dict[str, Any]) -> str:
    """``mean [low, high]`` of a summary, one decimal."""
    return f"{summary['mean']:.1f} [{summary['ci95_low']:.1f}, {summary['ci95_high']:.1f}]"


def table_markdown(experiment: str, seeds: list[int], summary: dict[str, Any]) -> str:
    """The across-seeds table, the per-seed means, the differences and the claims."""
    n = len(seeds)
    lines = [
        f"# experiments.{experiment} across {n} seeds ({', '.join(str(s) for s in seeds)})",
        "",
        "| row | mean over seeds [95% CI over seeds] | std over seeds | min .. max | within-run "
        "95% CI half-width (mean) | s/action (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["rows"].items():
        lines.append(
            f"| {name} | {ci_text(row)} | {row['std']:.1f} | {row['min']:.1f} .. "
            f"{row['max']:.1f} | {row['within_run_half_width']:.1f} | "
            f"{_seconds(row['seconds_per_action'])} |"
        )
    lines += ["", "Per seed:", "", "| row | " + " | ".join(f"seed {s}" for s in seeds)]
    lines[-1] += " |"
    lines.append("|---|" + "---|" * n)
    for name, row in summary["rows"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in row["per_seed"]) + " |")
    lines += ["", "Paired differences (same seed):", ""]
    for name, d in summary["differences"].items():
        per_seed = ", ".join(f"{v:.1f}" for v in d["per_seed"])
        lines.append(f"- {name}: {ci_text(d)} (per seed: {per_seed})")
    lines += ["", "## Claims across seeds", ""]
    for verdict in summary["claims"]:
        lines.append(
            f"- {verdict['claim']}: {'held' if verdict['held'] else 'NOT held'} "
            f"({verdict['detail']})"
        )
    lines += ["", "Each run's own verdict (CIs over its evaluation episodes):", ""]
    counts = summary["run_claims"]
    lines += [f"- {c['claim']}: held in {c['held']} of {c['of']} runs" for c in counts]
    return "\n".join(lines) + "\n"


def plot_curve(curve: dict[str, list[list[float]]], path: Path, n: int) -> None:
    """Mean return vs env steps over seeds, with the 95% CI band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curve.items():
        steps, mean, low, high = (np.array(v) for v in zip(*points, strict=True))
        (line,) = ax.plot(steps, mean, marker="o" if len(steps) < 5 else None, label=name)
        if not np.isnan(low).any():
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean episode return")
    ax.set_xscale("log")
    ax.set_title(f"Return vs env steps: mean and 95% CI over {n} seeds")
    ax.legend()
    fig.tight_layout()
    io.save_figure(fig, path)
    plt.close(fig)


def _seconds(value: float) -> str:
    """Seconds per action, or "-" for a row the runs did not time."""
    return "-" if np.isnan(value) else f"{value:.5f}"
