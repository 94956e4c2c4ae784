"""DISTGBP: a policy network distilled from GBP's plans (Henaff, Whitney & LeCun 2017).

GBP is accurate but slow (N optimiser steps through an H-step rollout per action); a network
trained to imitate its first actions acts in one forward pass. The recipe:

1. Run GBP (with the learned model) in the env; its executed actions label the visited states.
2. Train the policy net on (obs, GBP action) with the shared trainer: cross-entropy on the simplex
   (discrete, hybrid fire) entries of the model action vector, squared error on the others.
3. Optionally iterate (DAgger, Ross et al. 2011): run the distilled policy, label the states it
   visits with GBP (cold-start plans), aggregate, retrain.

Every env step taken here is counted and reported, on top of the model's data budget.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from planners import gbp
from planners import relax as relax_lib
from world_models import data as data_lib
from world_models import trainer


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Settings of the GBP -> policy network distillation."""

    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden widths of the policy MLP."""
    expert_steps: int = 16_000
    """Env steps of GBP rollouts whose states and actions form the first training set."""
    dagger_rounds: int = 3
    """Rounds of: run the distilled policy, label its states with GBP, retrain (0 = off)."""
    dagger_steps: int = 4_000
    """Env steps of the distilled policy per DAgger round."""
    n_envs: int = 50
    """Envs run in parallel while collecting."""
    label_chunk: int = 500
    """States labelled by GBP per batched call (bounds memory)."""

    def __post_init__(self) -> None:
        for name in ("expert_steps", "n_envs", "label_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"DistillConfig.{name}={getattr(self, name)!r}: need >= 1")
        if self.dagger_rounds < 0 or self.dagger_steps < self.n_envs * (self.dagger_rounds > 0):
            raise ValueError("DistillConfig.dagger_rounds >= 0 and dagger_steps >= n_envs needed")


class _Net(nn.Module):
    hidden_sizes: tuple[int, ...]
    out_size: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.silu(nn.Dense(width)(x))
        return nn.Dense(self.out_size)(x)


class Labelled(NamedTuple):
    """Imitation data: observations and GBP's model action vectors."""

    obs: Any
    """(N, obs_dim) float32."""
    target: Any
    """(N, action_dim) float32 model action of GBP's first action (one-hot for discrete)."""


@dataclasses.dataclass(frozen=True)
class DistilledPolicy:
    """A policy network whose outputs are the relaxation's free parameters for one step."""

    relax: relax_lib.Relaxation
    obs_dim: int
    hidden_sizes: tuple[int, ...] = (128, 128)

    @property
    def net(self) -> _Net:
        """The Flax module."""
        return _Net(self.hidden_sizes, self.relax.param_dim)

    def init(self, key: jax.Array, obs: np.ndarray) -> dict[str, Any]:
        """Params with observation statistics of ``obs`` (N, obs_dim)."""
        stats = {
            "mean": jnp.asarray(np.mean(obs, 0), jnp.float32),
            "std": jnp.asarray(np.maximum(np.std(obs, 0), 1e-6), jnp.float32),
        }
        return {"net": self.net.init(key, jnp.zeros(self.obs_dim)), "stats": stats}

    def params_z(self, params: dict[str, Any], obs: jax.Array) -> jax.Array:
        """Free action parameters (param_dim,) for one observation (obs_dim,)."""
        stats = jax.lax.stop_gradient(params["stats"])
        return self.net.apply(params["net"], (obs - stats["mean"]) / stats["std"])

    def act(self, params: dict[str, Any], obs: jax.Array) -> Any:
        """The environment action for one observation."""
        return self.relax.hard(self.params_z(params, obs))

    def loss(self, params: dict[str, Any], batch: Labelled, key: jax.Array):
        """Cross-entropy on simplex entries plus squared error on the rest (trainer loss_fn)."""
        del key
        z = jax.vmap(self.params_z, in_axes=(None, 0))(params, batch.obs)
        pred = jax.vmap(self.relax.relaxed)(z)
        mask = jnp.asarray(self.relax.simplex_mask, jnp.float32)
        cross_entropy = -jnp.sum(mask * batch.target * jnp.log(jnp.clip(pred, 1e-8, 1.0)), axis=-1)
        squared = jnp.sum((1 - mask) * (pred - batch.target) ** 2, axis=-1)
        agree = jnp.all(
            jnp.isclose(jax.vmap(self.relax.hard_vector)(z) * mask, batch.target * mask), axis=-1
        )
        loss = jnp.mean(cross_entropy + squared)
        return loss, {
            "cross_entropy": jnp.mean(cross_entropy),
            "squared": jnp.mean(squared),
            "simplex_agreement": jnp.mean(agree),
        }

    def policy(self, params: dict[str, Any]):
        """A policy ``(carry, obs, state, key) -> (action, carry)``; the carry is unused."""
        return functools.partial(_policy_step, self, params)


def _policy_step(model: DistilledPolicy, params: Any, carry: Any, obs: Any, state: Any, key: Any):
    return model.act(params, obs), carry


def label(
    planner: Any,
    model_params: Any,
    gbp_config: gbp.GBPConfig,
    relax: relax_lib.Relaxation,
    obs: np.ndarray,
    key: jax.Array,
    chunk: int,
) -> np.ndarray:
    """GBP's first action (model action vector (N, A)) for each observation, cold-start plans.

    ``planner`` is ``jax.jit(jax.vmap(plan, in_axes=(None, 0, None, 0)))`` as built by
    :func:`make_labeller`.
    """
    out = []
    plan0 = gbp.init_plan(gbp_config, relax)
    for start in range(0, len(obs), chunk):
        batch = jnp.asarray(obs[start : start + chunk])
        keys = jax.random.split(jax.random.fold_in(key, start), len(batch))
        result = planner(model_params, batch, plan0, keys)
        out.append(np.asarray(jax.vmap(relax.hard_vector)(result.plan[:, 0])))
    return np.concatenate(out)


def make_labeller(gbp_config: gbp.GBPConfig, relax: relax_lib.Relaxation, model_step: Any):
    """The batched GBP used by :func:`label`: ``(model_params, obs (B, D), plan0, keys (B,))``."""
    plan = functools.partial(gbp.plan, gbp_config, relax, model_step)
    return jax.jit(jax.vmap(plan, in_axes=(None, 0, None, 0)))


class DistillResult(NamedTuple):
    """What :func:`distill` returns."""

    student: DistilledPolicy
    """The network's static description."""
    params: Any
    """Trained params of the policy network."""
    env_steps: int
    """Env steps taken by the GBP rollouts and the DAgger rollouts (not the model's budget)."""
    history: list[dict]
    """One dict per round: examples, validation loss and simplex agreement with GBP."""


def distill(
    config: DistillConfig,
    trainer_config: trainer.TrainerConfig,
    env: Any,
    relax: relax_lib.Relaxation,
    gbp_config: gbp.GBPConfig,
    model_step: gbp.ModelStep,
    model_params: Any,
    key: jax.Array,
    log: Any = print,
) -> DistillResult:
    """Distils GBP through ``model_step`` (a learned model on observations) into a policy net.

    Args:
        config: distillation settings.
        trainer_config: settings of the shared trainer for the policy network.
        env: the :class:`envs.jax_env.JaxEnv` to collect states in.
        relax: action relaxation matching the env's action mode.
        gbp_config: the teacher planner's settings.
        model_step: ``(model_params, obs, action) -> (next_obs, reward)``.
        model_params: the learned model's params.
        key: PRNG key.
        log: per-epoch logger of the trainer (None for silence).

    Returns:
        A :class:`DistillResult`.
    """
    expert_key, init_key, dagger_key = jax.random.split(key, 3)
    teacher = gbp.make_policy(gbp_config, relax, model_step, model_params)
    collected = data_lib.collect(
        env,
        teacher,
        gbp.init_plan(gbp_config, relax),
        relax,
        config.expert_steps,
        expert_key,
        config.n_envs,
    )
    labelled = Labelled(collected.data.obs, collected.data.action)
    env_steps = collected.env_steps
    student = DistilledPolicy(relax, labelled.obs.shape[1], config.hidden_sizes)
    params = student.init(init_key, labelled.obs)
    labeller = make_labeller(gbp_config, relax, model_step)
    history = []
    for round_index in range(config.dagger_rounds + 1):
        if round_index > 0:
            collect_key, label_key = jax.random.split(jax.random.fold_in(dagger_key, round_index))
            visited = data_lib.collect(
                env,
                student.policy(params),
                jnp.zeros(()),
                relax,
                config.dagger_steps,
                collect_key,
                config.n_envs,
            )
            env_steps += visited.env_steps
            obs = visited.data.obs
            targets = label(
                labeller, model_params, gbp_config, relax, obs, label_key, config.label_chunk
            )
            labelled = Labelled(
                np.concatenate([labelled.obs, obs]), np.concatenate([labelled.target, targets])
            )
        train = Labelled(jnp.asarray(labelled.obs), jnp.asarray(labelled.target))
        fit = trainer.fit(student.loss, params, train, trainer_config, log=log)
        params = fit.params
        best = fit.history[fit.best_epoch] if fit.history else {}
        history.append(
            {
                "round": round_index,
                "examples": len(labelled.obs),
                "val_loss": fit.best_val_loss,
                "val_simplex_agreement": best.get("val_simplex_agreement"),
            }
        )
    return DistillResult(student, params, env_steps, history)
