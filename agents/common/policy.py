"""Trained actor-critics as ``evaluate_jax`` policies, and loading them from a run folder."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

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
