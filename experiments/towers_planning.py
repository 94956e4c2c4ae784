"""The overhang part of ``experiments.towers``: the planning PhysNet and the planners' episodes.

The fall-accuracy PhysNet is trained on 2-3 block towers drawn as in Lerer et al.; the overhang
planner instead asks about 4-block towers next to the stability boundary, where that model is
blind (it calls a top block hanging past its support "stands"). So the planner uses a separate
*planning PhysNet*: the trained PhysNet's encoder and fall head, fine-tuned (fall loss) on towers
of the distribution the planner queries (``DatasetConfig(sampler="overhang")``: 2, 3, 4, 4
blocks near the harmonic stack), drawn with soft edges whose grey levels carry the sub-pixel
positions that decide a tower near the boundary. Its fall threshold is calibrated on held-out
planning towers. Two planners use it: cross-entropy search (``planning.cem_plan``) and gradient
ascent through soft images (``grad_planning``).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agents.common.stats import mean_ci, wilson_ci
from envs.towers import grad_planning, planning
from envs.towers.dataset import DatasetConfig, generate, load_dataset
from envs.towers.env import BlockTowerEnv
from experiments import io
from world_models import physnet
from world_models.trainer import fit

PLANNING_COUNTS = (2, 3, 4, 4)
"""Block counts of the planning data: the planner's partial towers, 4 blocks twice as often."""


def planning_dataset(config: Any) -> DatasetConfig:
    """The planning towers of experiment ``config`` (an ``experiments.towers.Config``)."""
    return DatasetConfig(
        n_towers=config.planning_size,
        block_counts=PLANNING_COUNTS,
        seed=config.seed + 1,
        sampler="overhang",
        softness=config.planning_softness,
        workers=config.workers,
        params=config.params,
    )


def _fall_loss(model: physnet.PhysNet, params: Any, batch: dict, key: Any) -> Any:
    return physnet.batch_loss(model, params, batch)


def train_planning_model(base: tuple[Any, Any], config: Any, run_dir: Path) -> dict[str, Any]:
    """Fine-tunes PhysNet's encoder and fall head on planning towers; calibrates a threshold.

    Args:
        base: ``(model, params)`` of the PhysNet trained for the fall-accuracy table.
        config: the experiment config.
        run_dir: where the checkpoint and history go.

    Returns:
        ``model``, ``params``, ``threshold`` and held-out ``metrics``.
    """
    dataset = planning_dataset(config)
    data_dir = config.data_dir / io.config_fingerprint(dataset, ignore=("workers",))
    generate(dataset, data_dir)
    data = load_dataset(data_dir)
    order = np.random.default_rng(config.seed).permutation(len(data["fell"]))
    n_test = int(round(len(order) * config.test_fraction))
    test = {k: v[order[:n_test]] for k, v in data.items()}
    train = {k: v[order[n_test:]] for k, v in data.items()}
    model = base[0].clone(with_masks=False)
    shapes = jax.eval_shape(
        lambda: physnet.init_params(model, jax.random.PRNGKey(0), config.params.image_size)
    )
    params = {name: base[1][name] for name in shapes}  # encoder and fall head of PhysNet
    trainer = dataclasses.replace(
        config.trainer, max_epochs=config.planning_max_epochs, seed=config.seed
    )
    print(f"fine-tuning the planning PhysNet on {len(train['fell'])} planning towers")
    path = run_dir / "planning_physnet.ckpt"
    result = fit(
        functools.partial(_fall_loss, model),
        params,
        physnet.training_arrays(train),
        trainer,
        checkpoint_path=path,
        resume=config.resume and path.exists(),
    )
    io.write_csv(run_dir / "history_planning_physnet.csv", result.history)
    probs = fall_prob_fn(model, result.params)(test["image"])
    threshold = calibrate_threshold(probs, test["fell"], config.max_false_stand)
    metrics = {"threshold": threshold, "test_towers": int(n_test)}
    for n in sorted(set(PLANNING_COUNTS)):
        keep = test["n_blocks"] == n
        metrics[f"accuracy_{n}_blocks"] = float(np.mean((probs[keep] > 0.5) == test["fell"][keep]))
    return {"model": model, "params": result.params, "threshold": threshold, "metrics": metrics}


def calibrate_threshold(probs: np.ndarray, fell: np.ndarray, max_false_stand: float) -> float:
    """Largest fall-probability threshold whose "stands" verdicts are wrong at most that often.

    Args:
        probs: (N,) predicted fall probabilities of held-out towers.
        fell: (N,) their simulated labels.
        max_false_stand: allowed share of falling towers among those with ``probs < threshold``.

    Returns:
        A threshold in [0.05, 0.95] (0.05 if even that is too lenient).
    """
    best = 0.05
    for threshold in np.round(np.arange(0.05, 0.951, 0.05), 2):
        stands = probs < threshold
        if stands.any() and np.mean(fell[stands]) <= max_false_stand:
            best = float(threshold)
    return round(best, 2)


def fall_prob_fn(model: physnet.PhysNet, params: Any) -> planning.FallProbs:
    """Batched, jitted fall probabilities on uint8 images (the mask decoder is skipped)."""
    fall_only = model.clone(with_masks=False)
    batched = jax.jit(jax.vmap(lambda image: physnet.fall_probability(fall_only, params, image)))
    return lambda images: np.asarray(batched(images))


def planner_bounds(params: Any, max_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """The search box (low, high), each (n_blocks,) [block widths].

    Offsets up to ``max_offset`` (the harmonic stack needs at most 1/2), a trust region: past
    it the planning towers are sparse and the model has holes a search finds (a top block
    beside its support, offset ~1, judged to stand). The bottom block's centre must lie over
    the table (offset at most 1/2): the model never judges a lone block
    (``min_checked_blocks``), so the first block's own statics is a box constraint.
    """
    n, bound = params.n_blocks, min(params.max_offset, max_offset)
    high = np.full(n, bound)
    high[0] = min(bound, 0.5)
    return np.full(n, -bound), high


def summarise(results: list[dict[str, float]], planner: str) -> dict[str, Any]:
    """Mean fraction and collapse rate of episodes, with 95% intervals.

    The fraction's interval is Student t's (``agents.common.stats.mean_ci``); the collapse
    rate's is Wilson's score interval, which stays inside [0, 1] for 0 or n collapses.
    """
    n = len(results)
    fraction, low, high = mean_ci(np.array([r["fraction"] for r in results]))
    rate, rate_low, rate_high = wilson_ci(int(sum(bool(r["collapsed"]) for r in results)), n)
    return {
        "planner": planner,
        "fraction": fraction,
        "fraction_ci": [low, high],
        "collapse_rate": rate,
        "collapse_ci": [rate_low, rate_high],
        "episodes": n,
    }


def overhang_task(
    planner_model: dict[str, Any], config: Any, run_dir: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Overhang fraction and collapse rate of random, planned (CEM, gradient), analytic plans.

    With ``run_dir``, every planned episode (plan, fraction, collapse) goes to episodes.csv.
    """
    params = config.params
    env = BlockTowerEnv(**dataclasses.asdict(params))
    rng = np.random.default_rng(config.seed)
    model, weights = planner_model["model"], planner_model["params"]
    fall_probs = fall_prob_fn(model, weights)
    threshold = planner_model["threshold"]
    cem = dataclasses.replace(
        config.cem, fall_threshold=threshold, softness=config.planning_softness
    )
    grad = dataclasses.replace(
        config.grad_planner, fall_threshold=threshold, softness=config.planning_softness
    )
    bounds = planner_bounds(params, config.planner_max_offset)
    grad_planner = grad_planning.make_grad_planner(
        lambda p, im: model.apply({"params": p}, im)[0], params, grad
    )
    grad_bounds = tuple(jnp.asarray(b, jnp.float32) for b in bounds)
    runs: dict[str, list] = {"random": [], "physnet_cem": [], "physnet_grad": []}
    for _ in range(config.random_episodes):
        runs["random"].append(planning.run_episode(env, planning.random_plan(params, rng)))
    for episode in range(config.cem_episodes):
        plan_rng = np.random.default_rng([config.seed, episode])
        plan = planning.cem_plan(fall_probs, params, cem, plan_rng, bounds)
        runs["physnet_cem"].append({**planning.run_episode(env, plan), "plan": plan.round(4)})
    for episode in range(config.grad_episodes):
        key = jax.random.PRNGKey(config.seed * 7919 + episode)
        candidates = np.asarray(grad_planner(weights, key, grad_bounds), np.float64)
        scores = planning.score_plans(candidates, fall_probs, params, cem)
        plan = candidates[np.argmax(scores)]
        runs["physnet_grad"].append({**planning.run_episode(env, plan), "plan": plan.round(4)})
    analytic = planning.analytic_plan(params, config.analytic_safety)
    runs["analytic"] = [planning.run_episode(env, analytic)]
    labels = {
        "random": "uniform offsets",
        "physnet_cem": "planning PhysNet, cross-entropy search (sampled)",
        "physnet_grad": "planning PhysNet, gradient ascent through soft images",
        "analytic": f"harmonic stack x {config.analytic_safety} (no model)",
    }
    if run_dir is not None:
        rows = [
            {"placement": name, "episode": i, **r}
            for name in ("physnet_cem", "physnet_grad")
            for i, r in enumerate(runs[name])
        ]
        io.write_csv(run_dir / "episodes.csv", rows)
    return {name: summarise(results, labels[name]) for name, results in runs.items() if results}
