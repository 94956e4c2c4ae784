"""The spaceship table's report: rows, the markdown table, the talk's claims and the curve plot.

Used by :mod:`experiments.spaceship`; the paper's figures (Henaff, Whitney & LeCun 2017,
arXiv:1705.07177) live here beside the code that compares against them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from agents.common.evaluate import EvalResult
from experiments import io
from experiments.claims import claim, claim_line

PAPER_A2C_STEPS = 3_800_000
PAPER_MODEL_STEPS = 800_000


PAPER = {  # (mean return, s/action, env steps), Henaff et al. 2017, spaceship task
    "RANDOM": (-62.7, None, 0),
    "A2C": (-19.2, 0.01, PAPER_A2C_STEPS),
    "GBP": (11.1, 0.19, PAPER_MODEL_STEPS),
    "DISTGBP": (12.2, 0.01, PAPER_MODEL_STEPS),
}


class Row(NamedTuple):
    """One line of the table."""

    name: str
    result: EvalResult
    seconds_per_action: float
    """Single-env time per action [s], compiled."""
    env_steps: int
    """Env steps the method used (0 for RANDOM and the true-dynamics planner)."""


def row_to_json(row: Row) -> dict[str, Any]:
    """A row as JSON values (:func:`row_from_json` restores it exactly)."""
    result = row.result._asdict()
    result["returns"] = [float(x) for x in row.result.returns]
    result["episode_lengths"] = [int(x) for x in row.result.episode_lengths]
    return {
        "name": row.name,
        "result": result,
        "seconds_per_action": row.seconds_per_action,
        "env_steps": int(row.env_steps),
    }


def row_from_json(values: dict[str, Any]) -> Row:
    """The row that :func:`row_to_json` wrote."""
    result = dict(values["result"])
    result["returns"] = np.asarray(result["returns"], np.float64)
    result["episode_lengths"] = np.asarray(result["episode_lengths"], np.int64)
    result = EvalResult(**result)
    return Row(values["name"], result, values["seconds_per_action"], values["env_steps"])


def table_markdown(rows: list[Row], full: bool, a2c_budget: int, model_budget: int) -> str:
    """The markdown table, with the paper's numbers beside ours."""
    scale = (
        "paper budgets"
        if full
        else (
            f"SMALLER budgets than the paper: A2C {a2c_budget:,} steps (paper 3.8M), "
            f"forward model {model_budget:,} steps (paper 800K)"
        )
    )
    lines = [
        f"# Spaceship ({scale})",
        "",
        "Budgets are what was asked; the env steps column counts the steps each method took, "
        "in whole rollouts or episodes.",
        "",
        "| method | mean return [95% CI] | episodes | s/action (1 env) | env steps | paper |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.result
        paper = PAPER.get(row.name)
        paper_text = (
            "-"
            if paper is None
            else (f"{paper[0]}, {paper[1] if paper[1] is not None else '-'} s, {paper[2]:,} steps")
        )
        lines.append(
            f"| {row.name} | {r.mean:.1f} [{r.ci95_low:.1f}, {r.ci95_high:.1f}] | "
            f"{len(r.returns)} | {row.seconds_per_action:.5f} | {row.env_steps:,} | "
            f"{paper_text} |"
        )
    return "\n".join(lines)


def _ci(result: Any) -> str:
    """``mean [low, high]`` with one decimal."""
    return f"{result.mean:.1f} [{result.ci95_low:.1f}, {result.ci95_high:.1f}]"


def claims(rows: list[Row]) -> list[dict[str, Any]]:
    """The talk's claims on one run's rows: ``{"claim", "held", "detail"}`` each.

    Reads only the rows' means, 95% CIs, single-env times and env steps, so summary rows
    rebuilt from a ``metrics.json`` (:func:`rows_from_metrics`) give the run's own verdicts.
    """
    by = {row.name: row for row in rows}
    a2c_row, gbp_row, dist_row = by["A2C"], by["GBP"], by["DISTGBP"]
    # "Beats" needs both 95% CIs above A2C's: higher means alone can be noise.
    beats = min(gbp_row.result.ci95_low, dist_row.result.ci95_low) > a2c_row.result.ci95_high
    gbp_ci, dist_ci, a2c_ci = (_ci(r.result) for r in (gbp_row, dist_row, a2c_row))
    inside = dist_row.result.ci95_low <= gbp_row.result.mean <= dist_row.result.ci95_high
    side = ""
    if not inside:
        side = "; DISTGBP above GBP" if dist_row.result.ci95_low > gbp_row.result.mean else ""
        side = side or "; DISTGBP below GBP"
    speedup = gbp_row.seconds_per_action / max(dist_row.seconds_per_action, 1e-12)
    quiet = lambda _: None  # noqa: E731  (write_results prints them under the table)
    return [
        claim(
            f"model-based ({gbp_row.env_steps:,} model steps) beats A2C "
            f"({a2c_row.env_steps:,} steps)",
            beats,
            f"GBP {gbp_ci}, DISTGBP {dist_ci} vs A2C {a2c_ci}; held needs both 95% CIs above A2C's",
            quiet,
        ),
        claim(
            "DISTGBP matches GBP within its CI",
            inside,
            f"GBP {gbp_row.result.mean:.1f}, DISTGBP {dist_row.result.mean:.1f} "
            f"[{dist_row.result.ci95_low:.1f}, {dist_row.result.ci95_high:.1f}]{side}",
            quiet,
        ),
        claim(
            "DISTGBP acts >= 10x faster than GBP",
            speedup >= 10,
            f"{speedup:.1f}x: {gbp_row.seconds_per_action * 1e3:.2f} ms vs "
            f"{dist_row.seconds_per_action * 1e3:.3f} ms",
            quiet,
        ),
    ]


def rows_from_metrics(metrics: dict[str, Any]) -> list[Row]:
    """Summary rows (means, CIs, times, env steps; no episodes) from a run's ``metrics.json``."""
    number = lambda x: math.nan if x is None else float(x)  # noqa: E731  (JSON null: NaN)
    rows = []
    for name, values in metrics["rows"].items():
        mean, low, high, batched, single = (
            number(values[k])
            for k in ("mean", "ci95_low", "ci95_high", "batched_seconds_per_step",
                      "seconds_per_action")
        )  # fmt: skip
        result = EvalResult(mean, low, high, np.zeros(0), np.zeros(0, np.int64), batched)
        rows.append(Row(name, result, single, values["env_steps"]))
    return rows


def plot_curve(curve: dict[str, list[tuple[float, float]]], path: Path) -> None:
    """Return vs env steps for A2C (training episodes) and GBP/DISTGBP (model budgets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curve.items():
        if points:
            steps, returns = zip(*points, strict=True)
            ax.plot(steps, returns, marker="o" if name != "A2C" else None, label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean episode return")
    ax.set_xscale("log")
    ax.set_title("Spaceship: return vs env steps")
    ax.legend()
    fig.tight_layout()
    io.save_figure(fig, path)
    plt.close(fig)


def write_results(
    run_dir: Path,
    full: bool,
    budgets: tuple[int, int],
    rows: list[Row],
    curve,
    history: Any,
    notes: tuple[str, ...] = (),
    phase_seconds: dict[str, float] | None = None,
) -> None:
    """Writes table.md, metrics.json and curve.png, and prints the table and the claims.

    ``notes`` are printed under the table (how the rows were made, e.g. the planners' barrier);
    ``phase_seconds`` (each phase's wall time [s], ``experiments.stages.Stages.seconds``) joins
    them as one line and goes to metrics.json.
    """
    table = table_markdown(rows, full, *budgets)
    if phase_seconds:
        spent = ", ".join(f"{name} {seconds:.0f}" for name, seconds in phase_seconds.items())
        total = sum(phase_seconds.values())
        notes = (*notes, f"Wall time by phase [s]: {spent} (total {total:.0f}).")
    if notes:
        table += "\n\n" + "\n".join(f"- {note}" for note in notes)
    checked = claims(rows)
    text = (
        table
        + "\n\n## Claims (checked on the measured numbers)\n\n"
        + "\n".join(f"- {claim_line(verdict)}" for verdict in checked)
    )
    io.atomic_write_text(run_dir / "table.md", text + "\n")
    metrics = {
        row.name: {
            "mean": row.result.mean,
            "ci95_low": row.result.ci95_low,
            "ci95_high": row.result.ci95_high,
            "episodes": len(row.result.returns),
            "seconds_per_action": row.seconds_per_action,
            "batched_seconds_per_step": row.result.seconds_per_action,
            "env_steps": row.env_steps,
        }
        for row in rows
    }
    io.write_json(
        run_dir / "metrics.json",
        {
            "rows": metrics,
            "claims": checked,
            "curve": curve,
            "distill_history": history,
            "phase_seconds": phase_seconds or {},
        },
    )
    plot_curve(curve, run_dir / "curve.png")
    print(text)
    print(f"wrote {run_dir}")
