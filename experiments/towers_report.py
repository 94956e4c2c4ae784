"""Tables, target checks and the mask figure of ``experiments.towers``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import matplotlib
import numpy as np

from envs.towers import image
from envs.towers.params import Params
from experiments import io

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

FALL_MODELS = ("chance", "classifier", "physnet", "analytic")
PLANNERS = ("random", "physnet_cem", "analytic")


def targets(accuracy: dict, overhang: dict) -> list[dict[str, Any]]:
    """The issue's full-scale targets, each with its measured figure and whether it held."""
    seen = min(accuracy["2_blocks"]["physnet"], accuracy["3_blocks"]["physnet"])
    unseen = accuracy["4_blocks"]["physnet"]
    planner = overhang["physnet_cem"]
    return [
        {
            "claim": "PhysNet fall accuracy >= 90% on 2 and 3 blocks",
            "measured": f"min {seen:.1%}",
            "held": seen >= 0.9,
        },
        {
            "claim": "PhysNet fall accuracy >= 80% on unseen 4 blocks",
            "measured": f"{unseen:.1%}",
            "held": unseen >= 0.8,
        },
        {
            "claim": "PhysNet planner reaches >= 80% of the H_n/2 overhang limit",
            "measured": f"{planner['fraction']:.1%}",
            "held": planner["fraction"] >= 0.8,
        },
        {
            "claim": "PhysNet planner collapses < 10% of episodes",
            "measured": f"{planner['collapse_rate']:.1%}",
            "held": planner["collapse_rate"] < 0.1,
        },
    ]


def write_table(
    path: Path, accuracy: dict, overhang: dict, checks: list[dict], params: Params
) -> Path:
    """Writes the markdown results table."""
    counts = sorted(accuracy, key=lambda k: int(k.split("_")[0]))
    lines = [
        "## Fall prediction accuracy (trained on 2-3 blocks; 4 unseen)",
        "",
        "| model | " + " | ".join(c.replace("_", " ") for c in counts) + " |",
        "|---|" + "---|" * len(counts),
    ]
    for name in FALL_MODELS:
        lines.append(f"| {name} | " + " | ".join(f"{accuracy[c][name]:.1%}" for c in counts) + " |")
    iou = " | ".join(f"{accuracy[c]['physnet_mask_iou']:.3f}" for c in counts)
    lines += [f"| PhysNet mask IoU | {iou} |", ""]
    lines.append("Test towers per count: " + ", ".join(str(accuracy[c]["count"]) for c in counts))
    limit = params.overhang_limit
    lines += [
        "",
        f"## Overhang task ({params.n_blocks} blocks, limit H_n/2 = {limit:.4f} block widths)",
        "",
        "| placement | mean overhang / limit | collapse rate | episodes |",
        "|---|---|---|---|",
    ]
    for name in PLANNERS:
        row = overhang[name]
        lines.append(
            f"| {name} | {row['fraction']:.1%} | {row['collapse_rate']:.1%} | {row['episodes']} |"
        )
    lines += ["", "A collapsed episode counts as overhang 0.", "", "## Targets (full scale)", ""]
    for check in checks:
        status = "held" if check["held"] else "NOT held"
        lines.append(f"- [{status}] {check['claim']}: {check['measured']}")
    return io.atomic_write_text(path, "\n".join(lines) + "\n")


def pick_examples(tests: dict[int, dict], per_count: int = 2) -> list[tuple[int, int]]:
    """(block count, index) of a standing and a falling test tower per count, alternating."""
    picks = []
    for n, test in sorted(tests.items()):
        for want in (False, True):
            hits = np.flatnonzero(test["fell"] == want)[: per_count // 2]
            picks += [(n, int(i)) for i in hits]
    return picks


def save_mask_grid(path: Path, model_params: tuple, tests: dict[int, dict], params: Params) -> Path:
    """PNG: per test tower, the initial image, the true final frame and PhysNet's masks."""
    model, weights = model_params
    picks = pick_examples(tests)
    apply = jax.jit(lambda im: model.apply({"params": weights}, im))
    fig, axes = plt.subplots(3, len(picks), figsize=(1.6 * len(picks), 5.2), squeeze=False)
    for col, (n, i) in enumerate(picks):
        test = tests[n]
        fall_logit, mask_logits = apply(test["image"][i])
        colours = test["colours"][i, :n]
        predicted = image.paint(np.asarray(mask_logits)[colours] > 0, params, colours=colours)
        probability = float(jax.nn.sigmoid(fall_logit))
        panels = (test["image"][i], test["final_image"][i], predicted)
        titles = (f"{n} blocks", f"fell={bool(test['fell'][i])}", f"p(fall)={probability:.2f}")
        for row, (panel, title) in enumerate(zip(panels, titles, strict=True)):
            axes[row, col].imshow(panel)
            axes[row, col].set_title(title, fontsize=8)
            axes[row, col].axis("off")
    for row, label in enumerate(("initial", "true final", "PhysNet masks")):
        axes[row, 0].text(
            -0.15,
            0.5,
            label,
            transform=axes[row, 0].transAxes,
            rotation=90,
            va="center",
            ha="right",
            fontsize=8,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
