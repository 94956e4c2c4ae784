"""What every phase of ``experiments.spaceship`` shares: env, key stream, clock, rows, stages.

A phase's rows are saved in the run folder when it finishes (:mod:`experiments.stages`), with the
key counter, so ``--resume`` loads them and draws the same keys afterwards as an uninterrupted
run would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax

from agents.common.evaluate import evaluate_jax, seconds_per_action
from envs.jax_env import make_jax_env
from experiments.spaceship_report import Row, row_from_json, row_to_json
from experiments.stages import Stage, Stages
from planners import relax as relax_lib


class Run:
    """Settings, env, a counter-based key stream, a clock and the run's finished phases.

    Args:
        config: an ``experiments.spaceship.Config``.
        stages: the run folder's finished phases (:class:`experiments.stages.Stages`).
    """

    def __init__(self, config: Any, stages: Stages) -> None:
        self.config = config
        self.stages = stages
        self.env = make_jax_env("worldplan/Spaceship-v0", action_mode=config.action_mode)
        self.relax = relax_lib.for_action_mode(config.action_mode)
        self._root = jax.random.key(config.seed)
        self._count = 0
        self._start = time.perf_counter()

    def key(self) -> jax.Array:
        """A fresh PRNG key."""
        self._count += 1
        return jax.random.fold_in(self._root, self._count)

    def log(self, message: str) -> None:
        """Prints a phase line with the elapsed wall time."""
        print(f"[{time.perf_counter() - self._start:6.0f} s] {message}", flush=True)

    def finished(self, name: str, template: Any = None) -> Stage | None:
        """Phase ``name`` if an earlier attempt of this run finished it, else None.

        A loaded phase sets the key stream to where it was when the phase was saved.
        """
        stage = self.stages.load(name, template)
        if stage is not None:
            self._count = int(stage.values["key_count"])
            self.log(f"{name}: loaded from {self.stages.folder}")
        return stage

    def save(self, name: str, values: dict[str, Any], **outputs: Any) -> None:
        """Records phase ``name`` as finished (``outputs``: arrays, params)."""
        self.stages.save(name, {**values, "key_count": self._count}, **outputs)

    def rows(self, name: str, compute: Callable[[], list[Row]]) -> list[Row]:
        """Rows of phase ``name``: loaded if it finished before, else computed and saved."""
        stage = self.finished(name)
        if stage is not None:
            return [row_from_json(r) for r in stage.values["rows"]]
        rows = compute()
        self.save(name, {"rows": [row_to_json(r) for r in rows]})
        return rows

    def row(
        self,
        name: str,
        policy,
        init_carry,
        env_steps: int,
        n: int | None = None,
        uses_state: bool = False,
    ) -> Row:
        """Evaluates a policy and times it for one env (batched time when timing_repeats=0).

        ``uses_state``: the policy reads the env state (see :func:`seconds_per_action`).
        """
        n = n or self.config.eval_episodes
        max_steps = self.config.eval_max_steps
        result = evaluate_jax(self.env, policy, n, self.key(), max_steps, init_carry)
        seconds = result.seconds_per_action
        if self.config.timing_repeats > 0:
            seconds = seconds_per_action(
                policy, init_carry, self.env, self.config.timing_repeats, self.key(), uses_state
            )
        self.log(
            f"{name} ({env_steps:,} env steps, {n} episodes): {result.mean:.1f} "
            f"[{result.ci95_low:.1f}, {result.ci95_high:.1f}]"
        )
        return Row(name, result, seconds, env_steps)
