"""Trained actor-critics as ``evaluate_jax`` policies, and loading them from a run folder.

Reloading an ``agents.a2c`` / ``agents.ppo`` run in a fresh process::

    from agents.common.policy import load_policy

    policy = load_policy("results/ppo/<run>")  # the env named in its config.json
    policy.reset()                             # at the start of each episode
    action = policy(obs)

:func:`load_policy` returns a ``planners.checkpoints.HostPolicy``, the same ``policy(obs)`` /
``reset()`` protocol as the planners' :func:`planners.checkpoints.load_policy`, so
``agents.common.evaluate.evaluate_host`` and ``experiments.render`` play either.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp

from agents.common.distributions import Distribution, make_distribution
from agents.common.networks import ActorCritic, make_network
from experiments import io


def spaces_of(env: Any) -> tuple[Any, Any]:
    """``(observation_space, action_space)`` of one env (single spaces of a VectorEnv)."""
    obs_space = getattr(env, "single_observation_space", None) or env.observation_space
    action_space = getattr(env, "single_action_space", None) or env.action_space
    return obs_space, action_space


def network_and_dist(config: Any, env: Any) -> tuple[ActorCritic, Distribution]:
    """The network and distribution a config builds for ``env``."""
    obs_space, action_space = spaces_of(env)
    dist = make_distribution(action_space, squash=config.squash)
    return make_network(obs_space, dist.num_inputs, dist.free_mask, config.hidden), dist


def _policy(
    network: ActorCritic,
    dist: Distribution,
    params: Any,
    deterministic: bool,
    carry: Any,
    obs: jax.Array,
    state: Any,
    key: jax.Array,
) -> tuple[Any, Any]:
    del state  # a model-free policy only looks at the observation
    inputs, _ = network.apply(params, obs)
    raw = dist.mode(inputs) if deterministic else dist.sample(inputs, key)
    return dist.to_env(raw), carry


def make_policy(config: Any, env: Any, params: Any, deterministic: bool = True) -> Any:
    """A policy ``policy(carry, obs, state, key) -> (action, carry)`` for ``evaluate_jax``.

    Args:
        config: the ``A2CConfig``/``PPOConfig`` the params were trained with.
        env: the env (JaxEnv or Gymnasium env/VectorEnv), for its spaces.
        params: network parameters (``TrainResult.params`` or :func:`load_params`).
        deterministic: act with the distribution's mode (SB3's evaluation default) instead of
            sampling.

    Returns:
        A pure, jittable function for ONE observation: ``obs`` (*obs_shape,), ``state`` ignored,
        ``carry`` passed through (None), ``key`` used only when sampling. Env actions come out
        clipped/squashed into the action space.
    """
    network, dist = network_and_dist(config, env)
    return functools.partial(_policy, network, dist, params, deterministic)


def load_params(kind: str, config: Any, env: Any, run_dir: str | Path) -> Any:
    """Loads the trained parameters from a run folder (``params.ckpt``, either path).

    Raises:
        experiments.io.CheckpointError: missing/corrupt checkpoint, or another algorithm/config.
    """
    from agents.common.results import PARAMS, fingerprint

    network, _ = network_and_dist(config, env)
    obs_space, _ = spaces_of(env)
    target = network.init(jax.random.key(0), jnp.zeros(obs_space.shape, obs_space.dtype))
    expect = {"kind": kind, "fingerprint": fingerprint(config)}
    params, _ = io.load_checkpoint(Path(run_dir) / PARAMS, target, expect)
    return params


ALGORITHMS = {"a2c": "A2CConfig", "ppo": "PPOConfig"}
"""The agents whose runs :func:`load_policy` reads, and the name of each one's config class."""


def load_policy(
    run_dir: str | Path, env: Any = None, *, deterministic: bool = True, seed: int = 0
) -> Any:
    """The trained policy of an ``agents.a2c`` / ``agents.ppo`` results folder, for the host.

    Args:
        run_dir: the run folder (``results/ppo/<run>``: ``config.json`` and ``params.ckpt``).
        env: an env with the spaces the run trained on (JaxEnv, Gymnasium env or VectorEnv).
            None: ``gymnasium.make`` the env id and kwargs that ``config.json`` records.
        deterministic: act with the distribution's mode (as in evaluation) instead of sampling.
        seed: seed of the sampling key (used only when not ``deterministic``).

    Returns:
        A ``planners.checkpoints.HostPolicy``: ``policy(obs) -> action`` for one observation
        (NumPy arrays in, NumPy arrays out), ``policy.reset()`` at each episode start (a
        no-op for these memoryless policies, kept for the common protocol).

    Raises:
        experiments.io.CheckpointError: no ``config.json`` or ``params.ckpt``, a folder of
            another algorithm, a config or checkpoint that does not match, or (``env`` None)
            a ``config.json`` without an env id or whose env has other spaces than the run's.
    """
    from planners.checkpoints import HostPolicy

    run_dir = Path(run_dir)
    config, saved = read_config(run_dir)
    env = env if env is not None else _recorded_env(run_dir, saved)
    params = load_params(str(saved["algorithm"]), config, env, run_dir)
    return HostPolicy(make_policy(config, env, params, deterministic), None, seed)


def read_config(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(config, config.json)`` of an agents run, with the config class its algorithm names.

    Raises:
        experiments.io.CheckpointError: unreadable ``config.json``, or one of no agents run.
    """
    import importlib

    from agents.common.results import CONFIG, check_not_group, read_run_config

    file = Path(run_dir) / CONFIG
    algorithm = io.read_settings(file).get("algorithm")
    if algorithm not in ALGORITHMS:
        raise io.CheckpointError(
            f"{file}: algorithm {algorithm!r} is not one of {tuple(ALGORITHMS)}; a planner run "
            "loads with planners.checkpoints.load_policy"
        )
    check_not_group(run_dir, io.read_settings(file))
    module = importlib.import_module(f"agents.{algorithm}")
    return read_run_config(run_dir, getattr(module, ALGORITHMS[algorithm]))


def recorded_env(saved: dict[str, Any]) -> gym.Env:
    """The single env a run's ``config.json`` (``saved``) records, as its policy sees it.

    ``gymnasium.make(env, **env_kwargs)``, under ``FlattenObservation`` when the run trained on
    flattened observations (``flatten_observation``).
    """
    env = gym.make(saved["env"], **(saved.get("env_kwargs") or {}))
    return gym.wrappers.FlattenObservation(env) if saved.get("flatten_observation") else env


def _recorded_env(run_dir: Path, saved: dict[str, Any]) -> Any:
    """The (closed) env ``config.json`` names, checked to have the spaces the run trained on."""
    import envs  # noqa: F401  (registers the worldplan ids)

    if "env" not in saved:
        raise io.CheckpointError(
            f"{run_dir}/config.json records no env id (a JaxEnv has none): pass env= to "
            "load_policy, or train with extra_config={'env': '<id>'}"
        )
    env = recorded_env(saved)
    env.close()
    check_spaces(run_dir, saved, env)
    return env


def check_spaces(run_dir: str | Path, saved: dict[str, Any], env: Any) -> None:
    """Refuses an env whose spaces differ from those the run trained on (``config.json``).

    Raises:
        experiments.io.CheckpointError: the observation or action space differs; the message
            names both.
    """
    for name in ("observation_space", "action_space"):
        trained, rebuilt = saved.get(name), str(getattr(env, name))
        if trained is not None and trained != rebuilt:
            raise io.CheckpointError(
                f"{run_dir} trained with {name} {trained}, but {saved['env']} with "
                f"{saved.get('env_kwargs', {})} has {rebuilt} (a wrapper, e.g. "
                "FlattenObservation?): pass env= with the spaces of training to load_policy"
            )
