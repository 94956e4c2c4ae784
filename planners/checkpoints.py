"""Saving the planners' learned parts to a results folder, and host policies loaded from one.

A spaceship run (:mod:`experiments.spaceship`) writes ``planners.json`` (the static settings),
``dynamics.ckpt`` (the forward model) and ``distgbp.ckpt`` (the distilled policy) with
:func:`save_artifacts`. :func:`load_policy` turns them back into a host callable
``policy(obs, state) -> action`` for one env (used by ``experiments/render.py --policy``):

* ``"gbp"``: GBP through the learned model, re-planning every call with warm start;
* ``"distgbp"``: the distilled network;
* ``"gbp-true"``: GBP through the env's own dynamics (needs the env ``state``);
* ``"a2c"``: the A2C baseline saved under ``<run>/a2c``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import io
from planners import distill, gbp, oracle, shaping
from planners import relax as relax_lib
from world_models import dynamics
from world_models.data import Transitions

SETTINGS = "planners.json"
MODEL = "dynamics.ckpt"
DISTILLED = "distgbp.ckpt"
POLICY_NAMES = ("gbp", "distgbp", "gbp-true", "a2c")


def save_artifacts(
    run_dir: Path,
    *,
    action_mode: str,
    obs_dim: int,
    dynamics_config: dynamics.DynamicsConfig,
    gbp_config: gbp.GBPConfig,
    oracle_config: gbp.GBPConfig,
    distill_hidden: tuple[int, ...],
    model_params: Any,
    student_params: Any,
    a2c_config: Any = None,
    barrier: shaping.BarrierConfig | None = None,
) -> None:
    """Writes the settings and the two checkpoints into ``run_dir``.

    ``barrier`` is the planet barrier the planners used (:mod:`planners.shaping`); None = off.
    """
    settings = {
        "action_mode": action_mode,
        "obs_dim": obs_dim,
        "dynamics": dataclasses.asdict(dynamics_config),
        "gbp": dataclasses.asdict(gbp_config),
        "gbp_true": dataclasses.asdict(oracle_config),
        "barrier": dataclasses.asdict(barrier or shaping.BarrierConfig(weight=0.0)),
        "distill_hidden": list(distill_hidden),
        "a2c": None if a2c_config is None else dataclasses.asdict(a2c_config),
    }
    io.write_json(Path(run_dir) / SETTINGS, settings)
    fingerprint = io.config_fingerprint(settings)
    io.save_checkpoint(
        Path(run_dir) / MODEL, model_params, {"kind": "dynamics", "fingerprint": fingerprint}
    )
    io.save_checkpoint(
        Path(run_dir) / DISTILLED, student_params, {"kind": "distgbp", "fingerprint": fingerprint}
    )


def _model(settings: dict[str, Any], relax: relax_lib.Relaxation) -> dynamics.DynamicsModel:
    fields = dict(settings["dynamics"], hidden_sizes=tuple(settings["dynamics"]["hidden_sizes"]))
    config = dynamics.DynamicsConfig(**fields)
    return dynamics.DynamicsModel(
        config, settings["obs_dim"], relax.action_dim, tuple(bool(x) for x in relax.simplex_mask)
    )


def _dummy_data(obs_dim: int, action_dim: int) -> Transitions:
    n = 2
    return Transitions(
        np.zeros((n, obs_dim), np.float32),
        np.zeros((n, action_dim), np.float32),
        np.zeros(n, np.float32),
        np.zeros((n, obs_dim), np.float32),
        np.zeros(n, bool),
    )


class HostPolicy:
    """A stateful host callable around a jitted one-env policy ``(carry, obs, state, key)``."""

    def __init__(self, policy: Any, init_carry: Any, seed: int = 0) -> None:
        self._policy = jax.jit(policy)
        self._init_carry = init_carry
        self._carry = init_carry
        self._key = jax.random.key(seed)

    def reset(self) -> None:
        """Forgets the carry (call at the start of an episode)."""
        self._carry = self._init_carry

    def __call__(self, obs: Any, state: Any = None) -> Any:
        """The action for one observation (and the env state, for true-dynamics planning)."""
        self._key, key = jax.random.split(self._key)
        action, self._carry = self._policy(self._carry, jnp.asarray(obs), state, key)
        return jax.tree.map(np.asarray, action)


def load_policy(run_dir: str | Path, name: str, seed: int = 0) -> HostPolicy:
    """A host policy ``policy(obs, state) -> action`` from a spaceship results folder.

    Args:
        run_dir: ``results/spaceship/<run>``.
        name: one of :data:`POLICY_NAMES`.
        seed: seed of the policy's own randomness (GBP restarts).

    Raises:
        ValueError: unknown ``name``.
        experiments.io.CheckpointError: missing or mismatched checkpoint.
    """
    if name not in POLICY_NAMES:
        raise ValueError(f"name={name!r}: expected one of {POLICY_NAMES}")
    run_dir = Path(run_dir)
    if not (run_dir / SETTINGS).exists():
        raise io.CheckpointError(f"{run_dir / SETTINGS} does not exist; not a spaceship run?")
    settings = io.read_json(run_dir / SETTINGS)
    relax = relax_lib.for_action_mode(settings["action_mode"])
    expect = {"fingerprint": io.config_fingerprint(settings)}
    # Folders written before the barrier existed planned without one.
    barrier = shaping.BarrierConfig(**settings.get("barrier", {"weight": 0.0}))
    if name == "a2c":
        return _load_a2c(run_dir, settings)
    if name == "gbp-true":
        from envs.spaceship.params import SpaceshipParams

        config = gbp.GBPConfig(**settings["gbp_true"])
        env_params = SpaceshipParams(action_mode=settings["action_mode"])
        step = shaping.shaped(oracle.model_step, barrier, "env_state")
        policy = gbp.make_policy(
            config, relax, step, env_params, use_env_state=True, done_fn=oracle.done_fn
        )
        return HostPolicy(policy, gbp.init_plan(config, relax), seed)
    if name == "gbp":
        model = _model(settings, relax)
        target = model.init(jax.random.key(0), _dummy_data(settings["obs_dim"], relax.action_dim))
        params, _ = io.load_checkpoint(run_dir / MODEL, target, {"kind": "dynamics", **expect})
        config = gbp.GBPConfig(**settings["gbp"])
        policy = gbp.make_policy(config, relax, shaping.shaped(model.step, barrier, "obs"), params)
        return HostPolicy(policy, gbp.init_plan(config, relax), seed)
    student = distill.DistilledPolicy(relax, settings["obs_dim"], tuple(settings["distill_hidden"]))
    target = student.init(jax.random.key(0), np.zeros((2, settings["obs_dim"]), np.float32))
    params, _ = io.load_checkpoint(run_dir / DISTILLED, target, {"kind": "distgbp", **expect})
    return HostPolicy(student.policy(params), jnp.zeros(()), seed)


def _load_a2c(run_dir: Path, settings: dict[str, Any]) -> HostPolicy:
    import agents.a2c as a2c
    from envs.jax_env import make_jax_env

    if settings.get("a2c") is None:
        raise io.CheckpointError(f"{run_dir} has no A2C settings")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["a2c"].items()}
    config = a2c.A2CConfig(**fields)
    env = make_jax_env("worldplan/Spaceship-v0", action_mode=settings["action_mode"])
    params = a2c.load_params(config, env, run_dir / "a2c")
    return HostPolicy(a2c.make_policy(config, env, params), None)
