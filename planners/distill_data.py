"""DISTGBP's training data: the teacher (GBP through the learned model) and the data stages.

:func:`first_set` labels GBP's env rollouts (optional) and the forward model's dataset;
:func:`dagger_round` labels the states the student visits, in the env (optional, counted) and
in the learned model (no env steps). :func:`planners.distill.distill` runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from planners import gbp
from planners import relax as relax_lib
from planners.labels import Labelled, gbp_labelled, imagine, join, label_trajectories, segments
from world_models import data as data_lib

if TYPE_CHECKING:
    from planners.distill import DistillConfig, DistilledPolicy


class Teacher(NamedTuple):
    """GBP through the learned model, the labeller of every stage."""

    config: gbp.GBPConfig
    relax: relax_lib.Relaxation
    model_step: gbp.ModelStep
    model_params: Any
    labeller: Any
    chunk: int
    trajectory_labeller: Any

    def labelled(self, obs: np.ndarray, key: jax.Array) -> Labelled:
        """``obs`` (N, D) with GBP's cold-start first actions."""
        args = (self.labeller, self.model_params, self.config, self.relax, self.chunk)
        return gbp_labelled(*args, obs, key)


def first_set(
    config: DistillConfig, env: Any, teacher: Teacher, buffer_obs: Any, keys: tuple
) -> tuple[Labelled, int]:
    """GBP's env rollouts (executed actions) and the labelled buffer: (examples, env steps).

    ``keys``: the rollouts' key and the labels' key.
    """
    expert_key, buffer_key = keys
    parts, env_steps = [], 0
    if config.expert_steps > 0:
        collected = data_lib.collect(
            env,
            gbp.make_policy(
                teacher.config, teacher.relax, teacher.model_step, teacher.model_params
            ),
            gbp.init_plan(teacher.config, teacher.relax),
            teacher.relax,
            config.expert_steps,
            expert_key,
            config.n_envs,
        )
        parts.append(Labelled(collected.data.obs, collected.data.action))
        env_steps += collected.env_steps
    if buffer_obs is not None:
        buffer_obs = np.asarray(buffer_obs, np.float32)
        if buffer_obs.ndim not in (2, 3) or not np.all(np.isfinite(buffer_obs)):
            raise ValueError(
                f"buffer_obs: expected finite (N, obs_dim) or (T, B, obs_dim) observations, got "
                f"shape {buffer_obs.shape} with "
                f"{np.size(buffer_obs) - np.isfinite(buffer_obs).sum()} non-finite entries"
            )
        if buffer_obs.ndim == 3 and not config.warm_labels:
            buffer_obs = buffer_obs.reshape(-1, buffer_obs.shape[-1])
    if buffer_obs is not None and config.buffer_states > 0 and len(buffer_obs) > 0:
        parts.append(_labelled_buffer(config, teacher, buffer_obs, buffer_key))
    if not parts:
        raise ValueError(
            "distill has nothing to learn from: expert_steps=0 and no buffer_obs "
            f"(buffer_states={config.buffer_states})"
        )
    return join(parts), env_steps


def _labelled_buffer(
    config: DistillConfig, teacher: Teacher, buffer_obs: np.ndarray, key: jax.Array
) -> Labelled:
    """Up to ``config.buffer_states`` states of the buffer, labelled (see :func:`distill`)."""
    if buffer_obs.ndim == 2:
        n = min(config.buffer_states, len(buffer_obs))
        rows = np.linspace(0, len(buffer_obs) - 1, n).round().astype(int)
        return teacher.labelled(buffer_obs[rows], key)
    batch = buffer_obs.shape[1]
    wanted = max(1, config.buffer_states // batch)
    index, starts = segments(len(buffer_obs), wanted, config.warm_segment)
    return label_trajectories(
        teacher.trajectory_labeller, teacher.model_params, buffer_obs[index], starts, key
    )


def dagger_round(
    config: DistillConfig,
    env: Any,
    teacher: Teacher,
    student: DistilledPolicy,
    params: Any,
    labelled: Labelled,
    rng: np.random.Generator,
    key: jax.Array,
) -> tuple[list[Labelled], int]:
    """States the student visits in the env and in the model, labelled: (parts, env steps)."""
    collect_key, label_key, imagine_key = jax.random.split(key, 3)
    new, env_steps = [], 0
    if config.dagger_steps > 0:
        visited = data_lib.collect(
            env,
            student.policy(params),
            jnp.zeros(()),
            teacher.relax,
            config.dagger_steps,
            collect_key,
            config.n_envs,
        )
        env_steps += visited.env_steps
        new.append(teacher.labelled(visited.data.obs, label_key))
    if config.imagined_starts > 0:
        n = min(config.imagined_starts, len(labelled.obs))
        starts = labelled.obs[rng.choice(len(labelled.obs), n, replace=False)]
        states = imagine(
            student,
            params,
            teacher.model_step,
            teacher.model_params,
            starts,
            config.imagined_horizon,
            labelled.obs,
        )
        if len(states):
            new.append(teacher.labelled(states, imagine_key))
    return new, env_steps
