"""DISTGBP: a policy network distilled from GBP's plans (Henaff, Whitney & LeCun 2017).

GBP is accurate but slow (N optimiser steps through an H-step rollout per action); a network
trained to imitate its first actions acts in one forward pass. The recipe:

1. Label states with GBP's first actions: the states of the forward model's dataset (these were
   paid for by the model's budget, so they cost no new env steps) and, optionally, the states of
   new GBP rollouts in the env (its executed actions). The dataset's trajectories are labelled
   as the receding-horizon GBP policy would act along them, each plan warm-started from the
   previous step's (``warm_labels``), so the student imitates the planner of the experiment's
   GBP row. GBP started cold from every state is another planner, weaker on the default
   experiment's 60K model (17.2 against 22.6) and stronger on the 800K one (38.5 against 32.9),
   and the student tracks whichever labels it.
2. Train the policy net on (obs, GBP action) with the shared trainer: cross-entropy on the simplex
   (discrete, hybrid fire) entries of the model action vector, squared error on the others.
3. Iterate (DAgger, Ross et al. 2011): run the distilled policy, label the states it visits with
   GBP (cold-start plans), aggregate, retrain. The policy runs in the env (``dagger_steps``, env
   steps counted) and in the learned model (``imagined_starts``: short rollouts from labelled
   states, no env steps).

Why the model's dataset and imagined rollouts: GBP's rollouts cover few layouts densely, and a
student trained on them alone generalised poorly (test error of its actions ~0.3 against a label
variance of ~0.7) and crashed into the planet in about a quarter of its episodes, where GBP
crashed in 2%. The random-policy states of the model's dataset show many more situations near
the planet, and imagined DAgger shows the student its own mistakes at no env cost.

Every env step taken here is counted and reported, on top of the model's data budget.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from planners import gbp
from planners import relax as relax_lib
from planners.distill_data import Teacher, dagger_round, first_set
from planners.labels import Labelled, join, make_labeller, make_trajectory_labeller
from world_models import trainer
from world_models.mlp import MLP


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Settings of the GBP -> policy network distillation."""

    hidden_sizes: tuple[int, ...] = (128, 128)
    """Hidden widths of the policy MLP."""
    expert_steps: int = 0
    """Env steps of GBP rollouts in the env whose states and actions join the first training set
    (0 = none: the model's dataset, labelled, takes their place at no env cost)."""
    buffer_states: int = 60_000
    """States of the forward model's dataset (``buffer_obs``) labelled by GBP for the first
    training set, at most; no new env steps (0 = none)."""
    warm_labels: bool = True
    """Label trajectories (a (T, B, D) ``buffer_obs``) as the receding-horizon GBP policy acts
    along them, each plan warm-started from the previous step's, so the student imitates the
    planner of the GBP row; False (or a flat buffer) plans every state from a zero plan."""
    warm_segment: int = 25
    """When only part of the trajectories is labelled: consecutive steps per labelled run."""
    dagger_rounds: int = 3
    """Rounds of: run the distilled policy, label its states with GBP, retrain (0 = off)."""
    dagger_steps: int = 0
    """Env steps of the distilled policy per DAgger round (0 = DAgger in the model only)."""
    imagined_starts: int = 2_000
    """Per DAgger round: labelled states from which the policy is rolled out in the learned
    model (0 = none). Costs no env steps."""
    imagined_horizon: int = 10
    """Steps of each imagined rollout; every visited state is labelled."""
    n_envs: int = 50
    """Envs run in parallel while collecting."""
    label_chunk: int = 500
    """States labelled by GBP per batched call (bounds memory)."""

    def __post_init__(self) -> None:
        for name in ("n_envs", "label_chunk", "imagined_horizon", "warm_segment"):
            if getattr(self, name) < 1:
                raise ValueError(f"DistillConfig.{name}={getattr(self, name)!r}: need >= 1")
        for name in ("expert_steps", "buffer_states", "dagger_rounds", "imagined_starts"):
            if getattr(self, name) < 0:
                raise ValueError(f"DistillConfig.{name}={getattr(self, name)!r}: need >= 0")
        for name in ("expert_steps", "dagger_steps"):
            if 0 < getattr(self, name) < self.n_envs or getattr(self, name) < 0:
                raise ValueError(
                    f"DistillConfig.{name}={getattr(self, name)!r}: need 0 or >= n_envs "
                    f"({self.n_envs})"
                )


@dataclasses.dataclass(frozen=True)
class DistilledPolicy:
    """A policy network whose outputs are the relaxation's free parameters for one step."""

    relax: relax_lib.Relaxation
    obs_dim: int
    hidden_sizes: tuple[int, ...] = (128, 128)

    @property
    def net(self) -> MLP:
        """The Flax module."""
        return MLP(self.hidden_sizes, self.relax.param_dim)

    def init(self, key: jax.Array, obs: np.ndarray) -> dict[str, Any]:
        """Params with observation statistics of ``obs`` (N, obs_dim)."""
        stats = {
            "mean": jnp.asarray(np.mean(obs, 0), jnp.float32),
            "std": jnp.asarray(np.maximum(np.std(obs, 0), 1e-6), jnp.float32),
        }
        return {"net": self.net.init(key, jnp.zeros(self.obs_dim)), "stats": stats}

    def template(self) -> dict[str, Any]:
        """Params of this network's structure (values meaningless), to load saved ones into."""
        return self.init(jax.random.key(0), np.zeros((2, self.obs_dim), np.float32))

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


def _split(
    examples: Labelled, trainer_config: trainer.TrainerConfig, round_index: int
) -> tuple[Labelled, Labelled | None]:
    """A round's new examples as ``(train, validation)``, split once and kept apart for good.

    Every DAgger round trains on what the rounds before it added, so the validation examples
    that drive early stopping must stay out of every round's training set: each round splits
    only the examples it adds (seed ``trainer_config.seed + round_index``).
    """
    try:
        return trainer.split_validation(
            examples, trainer_config.validation_fraction, trainer_config.seed + round_index
        )
    except ValueError:  # too few new examples to hold any out
        return examples, None


def _join_present(*parts: Labelled | None) -> Labelled | None:
    present = [part for part in parts if part is not None]
    return join(present) if present else None


def _device(examples: Labelled | None) -> Labelled | None:
    return None if examples is None else Labelled(*(jnp.asarray(x) for x in examples))


def _check_env(config: DistillConfig, env: Any) -> None:
    """Raises ValueError, before any labelling, if env steps are asked of a missing ``env``."""
    for name in ("expert_steps", "dagger_steps"):
        if env is None and getattr(config, name) > 0:
            raise ValueError(
                f"env: None, but DistillConfig.{name}={getattr(config, name)} asks for env "
                f"steps; pass a JaxEnv, or set {name}=0"
            )


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
    buffer_obs: np.ndarray | None = None,
) -> DistillResult:
    """Distils GBP through ``model_step`` (a learned model on observations) into a policy net.

    Args:
        config: distillation settings.
        trainer_config: settings of the shared trainer for the policy network.
        env: the :class:`envs.jax_env.JaxEnv` to collect states in (unused, and may be None,
            when ``config.expert_steps`` and ``config.dagger_steps`` are 0).
        relax: action relaxation matching the env's action mode.
        gbp_config: the teacher planner's settings.
        model_step: ``(model_params, obs, action) -> (next_obs, reward)``.
        model_params: the learned model's params.
        key: PRNG key.
        log: per-epoch logger of the trainer (None for silence).
        buffer_obs: observations of the model's dataset, (N, obs_dim), or (T, B, obs_dim)
            for B trajectories recorded side by side (time-major), which ``config.warm_labels``
            labels warm-started along time. Up to ``config.buffer_states`` of them (evenly
            spaced; runs of ``config.warm_segment`` steps for trajectories) are labelled. None:
            not used.

    Returns:
        A :class:`DistillResult`.

    Raises:
        ValueError: ``env`` is None while ``config.expert_steps`` or ``config.dagger_steps``
            asks for env steps, or there is nothing to learn from (see :func:`first_set`).
    """
    _check_env(config, env)
    expert_key, init_key, dagger_key, buffer_key = jax.random.split(key, 4)
    teacher = Teacher(
        gbp_config,
        relax,
        model_step,
        model_params,
        make_labeller(gbp_config, relax, model_step),
        config.label_chunk,
        make_trajectory_labeller(gbp_config, relax, model_step),
    )
    labelled, env_steps = first_set(config, env, teacher, buffer_obs, (expert_key, buffer_key))
    train, val = _split(labelled, trainer_config, 0)
    student = DistilledPolicy(relax, labelled.obs.shape[1], config.hidden_sizes)
    params = student.init(init_key, train.obs)
    rng = np.random.default_rng(int(jax.random.randint(dagger_key, (), 0, 2**31 - 1)))
    history = []
    for round_index in range(config.dagger_rounds + 1):
        if round_index > 0:
            round_key = jax.random.fold_in(dagger_key, round_index)
            new, steps = dagger_round(
                config, env, teacher, student, params, labelled, rng, round_key
            )
            labelled, env_steps = join([labelled, *new]), env_steps + steps
            if new:
                new_train, new_val = _split(join(new), trainer_config, round_index)
                train = join([train, new_train])
                val = _join_present(val, new_val)
        fit = trainer.fit(student.loss, params, _device(train), trainer_config,
                          val_data=_device(val), log=log)  # fmt: skip
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
