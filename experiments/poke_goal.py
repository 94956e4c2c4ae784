"""Goal reaching for the poke experiment: GBP on the poke through an action-conditioned model.

:func:`goal_reaching` trains :class:`world_models.poke_forward.PokeForwardModel` on
single-object pokes and scores three policies on ``worldplan/Poke-v0``'s goal task: pokes planned
by gradient descent through the model (:func:`plan_poke`), uniform random pokes, and random pokes
aimed at the object.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from agents.common.stats import wilson_ci
from envs.poke import dataset, task
from envs.poke.env import PokeEnv
from envs.poke.params import PokeParams
from planners import ascent
from world_models import poke_forward
from world_models.trainer import TrainerConfig, fit


@dataclasses.dataclass(frozen=True)
class GoalConfig:
    """Settings of the goal-reaching measurement."""

    forward_trainer: TrainerConfig
    """Optimiser settings of the forward model."""
    episodes: int = 40
    """Goal-reaching episodes per policy."""
    pokes: int = 3
    """Pokes allowed per episode."""
    restarts: int = 64
    """Random initial pokes refined by gradient descent."""
    steps: int = 60
    """Gradient steps on the poke parameters."""
    learning_rate: float = 0.02
    """Adam step size of the planner [m or rad per step]."""
    seed: int = 0
    """Seed of the model initialisation, the episodes and the random policies."""


def forward_data_config(num_examples: int, seed: int, params: PokeParams):
    """Single-object pokes, all aimed, states only: the forward model's training data."""
    return dataset.PokeDataConfig(
        num_examples=num_examples,
        shard_size=max(50, num_examples // 4),
        seed=seed,
        num_objects=1,
        images=False,
        aimed_fraction=1.0,
        params=params,
    )


def aimed_poke(objects: jax.Array, angle: jax.Array, length: jax.Array, params: PokeParams):
    """(4,) poke along ``angle`` [rad] through object 0's centre, as the dataset aims them.

    The finger starts 3 cm short of the object's bounding circle (mid-range of
    ``dataset.sample_poke``) and travels ``length`` [m], so plans stay where the model was trained.
    """
    direction = jnp.stack([jnp.cos(angle), jnp.sin(angle)])
    reach = jnp.hypot(objects[0, 6], objects[0, 7]) + params.finger_radius + 0.03
    h = params.table_half_size
    start = jnp.clip(objects[0, 1:3] - reach * direction, -h, h)
    return jnp.concatenate(
        [start, angle[None], jnp.clip(length, 0.0, params.max_poke_length)[None]]
    )


def plan_poke(
    forward_params,
    objects,
    goal,
    key,
    params: PokeParams,
    restarts: int,
    steps: int,
    learning_rate: float,
) -> jax.Array:
    """GBP on the poke: gradient ascent of ``task.reward`` through the forward model.

    The decision variables are the angle and length of a poke aimed at object 0
    (:func:`aimed_poke`); ``restarts`` random ones are refined in parallel by Adam
    (:func:`planners.ascent.maximise`), and the one with the best predicted reward is kept.

    Args:
        forward_params: :class:`world_models.poke_forward.PokeForwardModel` parameters.
        objects: (max_objects, 8) object observation.
        goal: (2,) goal of object 0 [m].
        key: PRNG key for the random restarts.
        params: table constants (action bounds).
        restarts: pokes optimised in parallel; the best predicted one is returned.
        steps: Adam steps.
        learning_rate: Adam step size [rad or m per step].

    Returns:
        (4,) poke [m, m, rad, m] with the best predicted reward, inside the action box.
    """
    angle_key, length_key = jax.random.split(key)
    angles = jax.random.uniform(angle_key, (restarts,), minval=-jnp.pi, maxval=jnp.pi)
    lengths = jax.random.uniform(length_key, (restarts,), maxval=params.max_poke_length)
    variables = jnp.stack([angles, lengths], axis=-1)

    def predicted_reward(variable: jax.Array, _: jax.Array) -> jax.Array:
        poke = aimed_poke(objects, variable[0], variable[1], params)
        return task.reward(poke_forward.predict_position(forward_params, objects, poke), goal)

    config = ascent.AscentConfig(steps=steps, learning_rate=learning_rate)
    best = ascent.maximise(predicted_reward, variables, key, config).x
    poke = aimed_poke(objects, best[0], best[1], params)
    return poke.at[2].set(jnp.arctan2(jnp.sin(poke[2]), jnp.cos(poke[2])))


def success_rate(successes: list[bool]) -> dict:
    """Rate and Wilson 95% interval."""
    rate, low, high = wilson_ci(sum(bool(s) for s in successes), len(successes))
    return {"rate": rate, "lo": low, "hi": high, "n": len(successes)}


def run_policy(
    env: PokeEnv, policy: str, config: GoalConfig, plan: Callable, forward_params
) -> list[bool]:
    """Success of each episode of ``policy`` ("planned", "random" or "random_aimed")."""
    rng, successes = np.random.default_rng(config.seed), []
    env.action_space.seed(config.seed)
    for episode in range(config.episodes):
        obs, info = env.reset(seed=config.seed + 10_000 + episode)
        done = False
        for poke_index in range(config.pokes):
            if policy == "planned":
                key = jax.random.PRNGKey(config.seed * 1000 + episode * 10 + poke_index)
                action = np.asarray(plan(forward_params, obs["objects"], obs["goal"], key))
            elif policy == "random":
                action = env.action_space.sample()
            else:
                action = dataset.sample_poke(rng, info["state"], env.params, 1.0)[0]
            action = np.clip(action, env.action_space.low, env.action_space.high)
            obs, _, done, _, info = env.step(action)
            if done:
                break
        successes.append(bool(done))
    return successes


def goal_reaching(
    config: GoalConfig,
    data: dict,
    params: PokeParams,
    log=print,
    checkpoint_path: Path | None = None,
    resume: bool = False,
) -> dict:
    """Trains the forward model on ``data`` and scores the three poke policies.

    Args:
        config: measurement settings.
        data: single-object pokes (:func:`forward_data_config`): ``objects``, ``next_objects``
            (n, max_objects, 8) and ``poke`` (n, 4).
        params: table constants of the episodes (the ones the data were made with).
        log: progress printer.
        checkpoint_path: where the forward model is checkpointed every epoch (None: nowhere).
        resume: continue its training from ``checkpoint_path``.

    Returns:
        ``{policy: success_rate(...)}`` for each policy, and ``forward_val_mse_dm2``.
    """
    data = {k: data[k] for k in ("objects", "next_objects", "poke")}
    log("action-conditioned forward model")
    init = poke_forward.init_forward(jax.random.PRNGKey(config.seed + 3), params.max_objects)
    fitted = fit(
        poke_forward.forward_loss,
        init,
        data,
        config.forward_trainer,
        checkpoint_path=checkpoint_path,
        resume=resume,
        log=None,
    )
    log(f"forward model: best val MSE {fitted.best_val_loss:.4f} dm^2 at epoch {fitted.best_epoch}")
    plan = jax.jit(
        functools.partial(
            plan_poke,
            params=params,
            restarts=config.restarts,
            steps=config.steps,
            learning_rate=config.learning_rate,
        )
    )
    env = PokeEnv(obs_mode="state", task="goal", num_objects=1, params=params)
    results: dict = {
        policy: success_rate(run_policy(env, policy, config, plan, fitted.params))
        for policy in ("planned", "random", "random_aimed")
    }
    results["forward_val_mse_dm2"] = fitted.best_val_loss
    return results
