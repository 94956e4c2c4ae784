"""Several seeds of A2C or PPO trained at once: ``jit(vmap(...))`` of the device path.

``python -m agents.a2c --num-seeds 4 --seed 0`` trains seeds 0-3 on a JAX env in lockstep, each
chunk of updates one jitted call for all of them, and writes one results folder::

    results/a2c/<run>/            config.json, metrics.csv (mean return over seeds and each
                                  seed's), learning_curve.png (mean and 95% CI over seeds),
                                  checkpoint.ckpt (every seed's training state, to --resume)
    results/a2c/<run>/seed<s>/    a run folder of its own (config.json, metrics.csv,
                                  params.ckpt): ``load_policy``, ``experiments.render`` and
                                  evaluation read it as they read a single run

Seed ``s`` starts from ``jax.random.key(s)`` as ``--seed s`` alone does, so it trains the same
run (to float rounding: batched kernels may sum in another order). Resuming reads the one
checkpoint of the whole group, written after the seeds' own files, so the seeds never drift
apart.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from agents.common import results
from agents.common.loop import TrainState, init_train_state, run_updates
from agents.common.stats import mean_ci
from agents.common.train import (
    Algorithm,
    TrainResult,
    check_finite,
    is_jax_env,
    make_run_learner,
    run_chunks,
    summarise,
    to_raw_key,
)


def _run_seeds(learner: Any, env: Any, state: TrainState, num_updates: int):
    """``run_updates`` of every seed: ``state`` leaves and the metrics have a leading seed axis."""
    return jax.vmap(lambda one: run_updates(learner, env, one, num_updates))(state)


class SeedsPath:
    """The device path with a leading seed axis (see :class:`agents.common.train.DevicePath`)."""

    def __init__(self, learner: Any, env: Any) -> None:
        self.learner, self.env = learner, env
        self.run = jax.jit(functools.partial(_run_seeds, learner, env), static_argnums=1)
        """``run(state, num_updates) -> (state, metrics)``, all seeds in one call."""

    def init(self, seeds: Sequence[int]) -> TrainState:
        """Every seed's initial state, from ``jax.random.key(seed)`` as a single run's."""
        keys = np.stack([np.asarray(to_raw_key(jax.random.key(s))) for s in seeds])
        return jax.vmap(functools.partial(init_train_state, self.learner, self.env))(keys)


def train_seeds(
    algorithm: Algorithm,
    config: Any,
    env: Any,
    seeds: Sequence[int],
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    extra_config: Mapping[str, Any] | None = None,
) -> list[TrainResult]:
    """Trains one run per seed, all at once; returns their results in the order of ``seeds``.

    Args:
        algorithm: the algorithm (:data:`agents.a2c.A2C`, :data:`agents.ppo.PPO`).
        config: its config (the same for every seed).
        env: an ``envs.jax_env.JaxEnv``: several seeds at once need the device path.
        seeds: distinct seeds, at least one.
        run_dir: the group's results folder (see the module docstring), or None.
        resume: continue from ``run_dir/checkpoint.ckpt``.
        progress: show a progress bar (the mean return over seeds).
        extra_config: more entries for every ``config.json`` (e.g. the env id).

    Raises:
        TypeError: ``env`` is not a JAX env.
        ValueError: no seeds, or a seed given twice.
        FloatingPointError: a seed's parameters or losses became NaN or infinite.
        experiments.io.CheckpointError, experiments.io.RunFolderError: as
            :func:`agents.common.train.train`.
    """
    if not is_jax_env(env):
        raise TypeError(
            f"several seeds at once need an env with a JAX core (got {type(env).__name__}): "
            "on the host path, train one --seed at a time"
        )
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    learner = make_run_learner(algorithm, config, env)
    path = SeedsPath(learner, env)
    state = path.init(seeds)
    extra = {**results.env_entries(env), **(extra_config or {})}
    group_extra = {**extra, "seed": seeds[0], "seeds": seeds}
    group = results.RunLog(algorithm.name, config, run_dir, results.GROUP_PATH, group_extra, resume)
    folders = [None if run_dir is None else results.seed_dir(run_dir, s) for s in seeds]
    logs = [
        results.RunLog(algorithm.name, config, folder, "device", {**extra, "seed": s}, resume)
        for s, folder in zip(seeds, folders, strict=True)
    ]
    if resume:
        state = group.load(state)
        for log in logs:
            log.restore_rows(int(state.env_steps[0]))
    start = time.perf_counter() - group.wall_time_offset

    def record(state: TrainState, metrics: Mapping[str, Any]) -> dict[str, float]:
        wall_time = time.perf_counter() - start
        rows = []
        for k, log in enumerate(logs):
            one = jax.tree.map(lambda leaf, k=k: leaf[k], state)
            row = {"env_steps": int(one.env_steps), "wall_time": wall_time}
            row.update(summarise(jax.tree.map(lambda leaf, k=k: leaf[k], metrics)))
            check_finite(one.params, row, group.run_dir)
            log.append(row, None, one.params)
            rows.append(row)
        group_row = group_metrics(seeds, rows)
        group.append(group_row, state, None)  # last: a resume never runs ahead of a seed's files
        return group_row

    state = run_chunks(path, state, config, record, progress)
    for log in logs:
        log.finish()
    group.finish()
    return [
        TrainResult(
            jax.tree.map(lambda leaf, k=k: leaf[k], state.params),
            int(state.env_steps[k]),
            log.rows,
            log.run_dir,
        )  # fmt: skip
        for k, log in enumerate(logs)
    ]


def group_metrics(seeds: Sequence[int], rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """One row of the group's ``metrics.csv`` from the seeds' rows of the same chunk.

    ``mean_return`` is the mean over the seeds whose envs finished an episode in the chunk
    (NaN when none did), with its Student-t 95% CI over them (``ci95_low``, ``ci95_high``;
    NaN with fewer than two); ``mean_return_seed<s>`` is each seed's.
    """
    returns = np.array([row["mean_return"] for row in rows], np.float64)
    finished = returns[np.isfinite(returns)]
    mean, low, high = mean_ci(finished) if finished.size else (np.nan, np.nan, np.nan)
    out = {"env_steps": rows[0]["env_steps"], "wall_time": rows[0]["wall_time"]}
    out.update({"mean_return": mean, "ci95_low": low, "ci95_high": high})
    out.update({f"mean_return_seed{s}": float(r) for s, r in zip(seeds, returns, strict=True)})
    return out
