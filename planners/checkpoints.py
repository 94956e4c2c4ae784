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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from experiments import io
from planners import distill, gbp, oracle, shaping
from planners import relax as relax_lib
from world_models import dynamics

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


def _model(
    settings: dict[str, Any], relax: relax_lib.Relaxation, file: Path
) -> dynamics.DynamicsModel:
    fields = io.settings_entry(settings, "dynamics", file)
    if isinstance(fields, dict) and isinstance(fields.get("hidden_sizes"), list):
        fields = dict(fields, hidden_sizes=tuple(fields["hidden_sizes"]))
    config = io.config_from_settings(dynamics.DynamicsConfig, fields, file, "dynamics")
    obs_dim = io.settings_entry(settings, "obs_dim", file)
    return dynamics.DynamicsModel(
        config, obs_dim, relax.action_dim, tuple(bool(x) for x in relax.simplex_mask)
    )


class HostPolicy:
    """A stateful host callable around a jitted one-env policy ``(carry, obs, state, key)``."""

    def __init__(
        self, policy: Any, init_carry: Any, seed: int = 0, needs_state: bool = False
    ) -> None:
        self._policy = jax.jit(policy)
        self.needs_state = needs_state
        """Whether each call needs the env state (planning through the true dynamics)."""
        self._init_carry = init_carry
        self._carry = init_carry
        self._key = jax.random.key(seed)

    def reset(self) -> None:
        """Forgets the carry (call at the start of an episode)."""
        self._carry = self._init_carry

    def __call__(self, obs: Any, state: Any = None) -> Any:
        """The action for one observation (and the env state, for true-dynamics planning).

        Raises:
            ValueError: ``state`` is None for a policy that plans through the true dynamics.
        """
        if self.needs_state and state is None:
            raise ValueError(
                "state: this policy plans through the env's true dynamics, so it needs the env "
                "state too: call policy(obs, env.unwrapped.get_state())"
            )
        self._key, key = jax.random.split(self._key)
        action, self._carry = self._policy(self._carry, jnp.asarray(obs), state, key)
        return jax.tree.map(np.asarray, action)


class SavedModel(NamedTuple):
    """A spaceship run's learned forward model and how its planners used it."""

    model: dynamics.DynamicsModel
    """The model (its config and sizes from ``planners.json``)."""
    params: Any
    """Its trained parameters (``dynamics.ckpt``)."""
    relax: relax_lib.Relaxation
    """The action relaxation of the run's action mode."""
    gbp: gbp.GBPConfig
    """The settings GBP planned through it with."""
    barrier: shaping.BarrierConfig
    """The planet barrier every planner added (weight 0: none)."""
    action_mode: str
    """The spaceship action mode of the run."""


def _read_settings(run_dir: Path) -> tuple[Path, dict[str, Any], shaping.BarrierConfig]:
    file = run_dir / SETTINGS
    if not file.exists():
        raise io.CheckpointError(f"{file} does not exist; not a spaceship run?")
    settings = io.read_settings(file)
    # Folders written before the barrier existed planned without one.
    barrier_fields = settings.get("barrier", {"weight": 0.0})
    barrier = io.config_from_settings(shaping.BarrierConfig, barrier_fields, file, "barrier")
    return file, settings, barrier


def load_model(run_dir: str | Path) -> SavedModel:
    """The forward model a spaceship results folder saved, with its planner settings.

    Raises:
        experiments.io.CheckpointError: as :func:`load_policy`.
    """
    run_dir = Path(run_dir)
    file, settings, barrier = _read_settings(run_dir)
    action_mode = io.settings_entry(settings, "action_mode", file)
    relax = relax_lib.for_action_mode(action_mode)
    model = _model(settings, relax, file)
    fields = io.settings_entry(settings, "gbp", file)
    config = io.config_from_settings(gbp.GBPConfig, fields, file, "gbp")
    expect = {"kind": "dynamics", "fingerprint": io.config_fingerprint(settings)}
    params, _ = io.load_checkpoint(run_dir / MODEL, model.template(), expect)
    return SavedModel(model, params, relax, config, barrier, action_mode)


def load_policy(run_dir: str | Path, name: str, seed: int = 0) -> HostPolicy:
    """A host policy ``policy(obs, state) -> action`` from a spaceship results folder.

    Args:
        run_dir: ``results/spaceship/<run>``.
        name: one of :data:`POLICY_NAMES`.
        seed: seed of the policy's own randomness (GBP restarts).

    Raises:
        ValueError: unknown ``name``.
        experiments.io.CheckpointError: missing or mismatched checkpoint, or a ``planners.json``
            that is not valid JSON, lacks a key or has fields the configs do not know.
    """
    if name not in POLICY_NAMES:
        raise ValueError(f"name={name!r}: expected one of {POLICY_NAMES}")
    run_dir = Path(run_dir)
    if name == "gbp":
        saved = load_model(run_dir)
        step = shaping.shaped(saved.model.step, saved.barrier, "obs")
        policy = gbp.make_policy(saved.gbp, saved.relax, step, saved.params)
        return HostPolicy(policy, gbp.init_plan(saved.gbp, saved.relax), seed)
    file, settings, barrier = _read_settings(run_dir)
    action_mode = io.settings_entry(settings, "action_mode", file)
    relax = relax_lib.for_action_mode(action_mode)
    if name == "a2c":
        return _load_a2c(run_dir, settings)
    if name == "gbp-true":
        from envs.spaceship.params import SpaceshipParams

        fields = io.settings_entry(settings, "gbp_true", file)
        config = io.config_from_settings(gbp.GBPConfig, fields, file, "gbp_true")
        env_params = SpaceshipParams(action_mode=action_mode)
        step = shaping.shaped(oracle.model_step, barrier, "env_state")
        policy = gbp.make_policy(
            config, relax, step, env_params, use_env_state=True, done_fn=oracle.done_fn
        )
        return HostPolicy(policy, gbp.init_plan(config, relax), seed, needs_state=True)
    obs_dim = io.settings_entry(settings, "obs_dim", file)
    hidden = tuple(io.settings_entry(settings, "distill_hidden", file))
    student = distill.DistilledPolicy(relax, obs_dim, hidden)
    expect = {"kind": "distgbp", "fingerprint": io.config_fingerprint(settings)}
    params, _ = io.load_checkpoint(run_dir / DISTILLED, student.template(), expect)
    return HostPolicy(student.policy(params), jnp.zeros(()), seed)


def _load_a2c(run_dir: Path, settings: dict[str, Any]) -> HostPolicy:
    import agents.a2c as a2c
    from envs.jax_env import make_jax_env

    if settings.get("a2c") is None:
        raise io.CheckpointError(f"{run_dir} has no A2C settings")
    file = run_dir / SETTINGS
    fields = settings["a2c"]
    if isinstance(fields, dict):
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    config = io.config_from_settings(a2c.A2CConfig, fields, file, "a2c")
    action_mode = io.settings_entry(settings, "action_mode", file)
    env = make_jax_env("worldplan/Spaceship-v0", action_mode=action_mode)
    params = a2c.load_params(config, env, run_dir / "a2c")
    return HostPolicy(a2c.make_policy(config, env, params), None)
