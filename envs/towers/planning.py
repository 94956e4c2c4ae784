"""Placement planners for the overhang task and the episode runner they share.

A plan is the whole vector of placement offsets ``(n_blocks,)`` [block widths], chosen before the
first block is put down and then executed open loop in the env. Planners differ in how they judge
whether a tower stands:

* random: uniform offsets from the action space, no judgement;
* analytic: the harmonic stack (``task.harmonic_offsets``), shrunk by a safety factor;
* learned: cross-entropy search that maximises the planned overhang among plans whose every
  partial tower a learned model (PhysNet) predicts will stand, through a ``fall_probs`` callback,
  so this module needs no model code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from envs.towers import image, physics, task
from envs.towers.env import BlockTowerEnv
from envs.towers.params import Params

FallProbs = Callable[[np.ndarray], np.ndarray]
"""Maps images (M, S, S, 3) uint8 to fall probabilities (M,)."""


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """Cross-entropy search over placement offsets."""

    samples: int = 96
    """Candidate plans per iteration."""
    elites: int = 12
    """Best candidates refitting the sampling distribution."""
    iterations: int = 4
    """Refits of the sampling distribution."""
    initial_std: float = 0.3
    """Initial standard deviation of every offset [block widths]."""
    initial_mean: float = 0.1
    """Initial mean of every offset [block widths]."""
    fall_threshold: float = 0.3
    """A plan is feasible when every partial tower's predicted fall probability is below this."""
    min_checked_blocks: int = 2
    """Partial towers with fewer blocks are not judged: PhysNet never saw a single block (it
    calls every lone block falling), so checking it would make every plan infeasible."""
    margin: float = 0.05
    """Safety margin [block widths]: a plan is judged by the towers it gives when each level in
    turn, with every block above it, is pushed ``margin`` further out (``offsets[i] += margin``).
    If all of those stand, every centre of mass has at least ``margin`` of support to spare,
    which closes the narrow holes a search finds in a learned model and covers execution error
    (blocks settle slightly off plan). 0 judges the plan itself."""
    softness: float = 0.0
    """Edge width of the judged images [block widths]; must match the fall model's training
    images (``DatasetConfig.softness``)."""
    infeasible_penalty: float = 10.0
    """Score of an infeasible plan: overhang - penalty * (largest fall probability - threshold)."""


def prefix_images(offsets: np.ndarray, params: Params) -> np.ndarray:
    """Images of every partial tower of each plan.

    Args:
        offsets: (M, n) plans [block widths].
        params: world constants.

    Returns:
        (M, n, S, S, 3) uint8, ``[:, k]`` showing the lowest ``k + 1`` blocks at rest.
    """
    n = offsets.shape[1]
    visible = np.broadcast_to(np.tri(n, dtype=bool), (offsets.shape[0], n, n))
    return _tower_images(np.repeat(offsets[:, None], n, axis=1), params, visible=visible)


def _tower_images(
    offsets: np.ndarray, params: Params, softness: float = 0.0, visible: np.ndarray | None = None
) -> np.ndarray:
    """(..., S, S, 3) uint8 images of the resting stacks built from ``offsets`` (..., k).

    ``visible`` (..., k) bool hides the blocks where it is False (moved out of view, which
    changes no bit: the same images as masking them out of ``image.compose``).
    """
    state = physics.stacked_state(offsets, params)
    if visible is not None:
        state[~np.broadcast_to(visible, offsets.shape), :3] = image.away_pose(params)
    return image.render_state(state, params, softness=softness)


def judged_layout(n: int, min_checked_blocks: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Which towers judge a plan of ``n`` blocks (see :func:`judged_images`).

    Returns:
        ``pushes`` (J, n) float: 1 at the level pushed out by the margin (none without one);
        ``visible`` (J, n) bool: the blocks of each partial tower.
    """
    pushes, visible = [], []
    for k in range(min_checked_blocks - 1, n):
        for i in range(k + 1) if margin > 0 else [None]:
            pushes.append(np.arange(n) == i)
            visible.append(np.arange(n) <= k)
    return np.array(pushes, np.float64).reshape(-1, n), np.array(visible, bool).reshape(-1, n)


def judged_images(offsets: np.ndarray, params: Params, config: CEMConfig) -> np.ndarray:
    """The towers a plan is judged by: each partial tower, pushed out level by level.

    Args:
        offsets: (M, n) plans [block widths].
        params: world constants.
        config: ``min_checked_blocks`` (smaller partial towers are not judged), ``margin`` and
            ``softness``.

    Returns:
        (M, J, S, S, 3) uint8. With ``margin > 0``, for each partial tower of ``k + 1`` blocks
        and each level ``i <= k``, the tower with ``offsets[i] += margin``; else the partial
        towers themselves.
    """
    pushes, visible = judged_layout(offsets.shape[1], config.min_checked_blocks, config.margin)
    shifted = offsets[:, None] + config.margin * pushes
    visible = np.broadcast_to(visible, shifted.shape)
    return _tower_images(shifted, params, config.softness, visible)


def plan_overhangs(offsets: np.ndarray, params: Params) -> np.ndarray:
    """Overhang (M,) [block widths] of each plan (M, n) if nothing moves."""
    return np.array([task.offsets_overhang(o, params) for o in offsets])


def score_plans(
    offsets: np.ndarray, fall_probs: FallProbs, params: Params, config: CEMConfig
) -> np.ndarray:
    """Planned overhang (M,), penalised when a judged tower (:func:`judged_images`) may fall."""
    m = offsets.shape[0]
    images = judged_images(offsets, params, config)
    probs = np.asarray(fall_probs(images.reshape(-1, *images.shape[2:]))).reshape(m, -1)
    excess = np.maximum(probs.max(axis=1) - config.fall_threshold, 0.0)
    return plan_overhangs(offsets, params) - config.infeasible_penalty * excess


def cem_plan(
    fall_probs: FallProbs,
    params: Params,
    config: CEMConfig,
    rng: np.random.Generator,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Offsets (n_blocks,) maximising :func:`score_plans` by the cross-entropy method.

    Args:
        fall_probs: learned fall predictor on images.
        params: world constants.
        config: search settings.
        rng: source of the candidate plans.
        bounds: ``(low, high)``, each (n_blocks,) [block widths]; defaults to the action space.
            Keeping the search inside the learned model's training distribution stops it from
            exploiting the model where it has never seen a tower.
    """
    n, bound = params.n_blocks, params.max_offset
    low, high = bounds if bounds is not None else (np.full(n, -bound), np.full(n, bound))
    mean = np.clip(np.full(n, config.initial_mean), low, high)
    std = np.full(n, config.initial_std)
    best, best_score = mean.copy(), -np.inf
    for _ in range(config.iterations):
        candidates = np.clip(mean + std * rng.standard_normal((config.samples, n)), low, high)
        candidates[0] = best  # keep the incumbent, so the result never gets worse
        scores = score_plans(candidates, fall_probs, params, config)
        order = np.argsort(-scores)
        elite = candidates[order[: config.elites]]
        if scores[order[0]] > best_score:
            best, best_score = candidates[order[0]].copy(), scores[order[0]]
        mean, std = elite.mean(axis=0), elite.std(axis=0) + 1e-3
    return best


def random_plan(params: Params, rng: np.random.Generator) -> np.ndarray:
    """Offsets (n_blocks,) uniform over the action space."""
    return rng.uniform(-params.max_offset, params.max_offset, size=params.n_blocks)


def analytic_plan(params: Params, safety: float = 0.9) -> np.ndarray:
    """The harmonic stack's offsets (n_blocks,), each shrunk by ``safety``."""
    return task.harmonic_offsets(params.n_blocks, safety)


def run_episode(env: BlockTowerEnv, offsets: np.ndarray) -> dict[str, float]:
    """Executes a plan open loop in ``env`` from an empty table.

    Returns:
        ``overhang`` [block widths] at the end (0 if the tower collapsed), ``fraction`` of the
        ``H_n / 2`` limit, ``collapsed`` (0/1), ``return``.
    """
    env.reset(seed=0)
    total, info = 0.0, {"collapsed": False, "overhang": 0.0, "overhang_fraction": 0.0}
    for offset in offsets:
        _, reward, terminated, truncated, info = env.step(np.array([offset], np.float32))
        total += reward
        if terminated or truncated:
            break
    return {
        "overhang": info["overhang"],
        "fraction": info["overhang_fraction"],
        "collapsed": float(info["collapsed"]),
        "return": total,
    }
