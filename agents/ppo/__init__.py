"""PPO (clipped surrogate), SB3 defaults, on device (JAX envs) or host (Gymnasium VectorEnvs).

Public API (stable; the planners and experiments use it)::

    result = agents.ppo.train(PPOConfig(total_steps=...), env, jax.random.key(0))
    policy = agents.ppo.make_policy(config, env, result.params)   # evaluate_jax form
    params = agents.ppo.load_params(config, env, run_dir)          # from a results folder
    policy = agents.common.policy.load_policy(run_dir)  # host policy(obs) + reset(), any process
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax

from agents.common import policy as _policy
from agents.common import train as _train
from agents.common.loop import make_train_fn as _make_train_fn
from agents.common.policy import make_policy
from agents.common.train import TrainResult
from agents.ppo.ppo import PPO, PPOConfig


def train(
    config: PPOConfig,
    env: Any,
    key: jax.Array,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    extra_config: dict | None = None,
) -> TrainResult:
    """Trains PPO; see :func:`agents.common.train.train` for the arguments.

    ``env`` is an ``envs.jax_env.JaxEnv`` (all on device) or a Gymnasium ``VectorEnv`` with
    ``config.num_envs`` envs (host path). Returns a :class:`TrainResult` whose ``params`` go to
    :func:`make_policy`.
    """
    return _train.train(PPO, config, env, key, run_dir=run_dir, resume=resume,
                        progress=progress, extra_config=extra_config)  # fmt: skip


def make_train_fn(config: PPOConfig, env: Any) -> Any:
    """Pure ``train_fn(key) -> (TrainState, metrics)`` for a JAX env; ``jit(vmap(train_fn))``."""
    learner = _train.make_run_learner(PPO, config, env)
    return _make_train_fn(learner, env, config.num_updates)


load_params = functools.partial(_policy.load_params, "ppo")
"""``load_params(config, env, run_dir) -> params`` from a PPO results folder."""

__all__ = [
    "PPO",
    "PPOConfig",
    "TrainResult",
    "load_params",
    "make_policy",
    "make_train_fn",
    "train",
]
