"""Transition datasets for state dynamics models, collected with a counted budget of env steps.

:func:`collect` runs any policy ``(carry, obs, state, key) -> (action, carry)`` (written for one
env, as in :mod:`agents.common.evaluate`) in ``n_envs`` JAX envs at once, with autoreset, as one
jitted ``lax.scan``, and returns every transition with the model action vector of
:mod:`planners.relax`. The number of env steps it took is returned with the data, so budgets
(e.g. the paper's 800K steps for the spaceship model) are counted, never estimated.

Policies here: uniformly random, and "sticky" random (an action is kept with probability
``repeat_prob``; this explores farther than white noise because thrust is integrated). Planner
rollouts (Henaff et al. 2017 refresh the dataset with them) use the same function with a planner
policy (:func:`planners.gbp.make_policy`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents.common import compiled as compiled_lib
from agents.common.evaluate import env_cache_key
from envs.jax_env import autoreset_step
from planners import relax as relax_lib

Policy = Callable[[Any, jax.Array, Any, jax.Array], tuple[Any, Any]]
_MIN_STD = 1e-6
"""Floor on the standardising stds (a constant input or target would divide by zero)."""


class Transitions(NamedTuple):
    """A dataset of single steps (leading axis N = examples)."""

    obs: Any
    """(N, obs_dim) float32 observation before the step."""
    action: Any
    """(N, action_dim) float32 model action vector (:meth:`planners.relax.Continuous.encode`)."""
    reward: Any
    """(N,) float32 reward of the step."""
    next_obs: Any
    """(N, obs_dim) float32 observation after the step (the final one if the episode ended)."""
    terminated: Any
    """(N,) bool: the step ended the episode (crash, escape, last target)."""


class Collected(NamedTuple):
    """What :func:`collect` returns."""

    data: Transitions
    """Every transition, time-major then env, flattened: row ``t * n_envs + b`` is step ``t`` of
    env ``b``. ``data.obs.reshape(-1, n_envs, obs_dim)`` is therefore the (T, B, obs_dim)
    trajectories that :func:`planners.distill.distill` takes as ``buffer_obs`` (each column one
    env's consecutive steps; autoreset starts a new episode in the same column)."""
    env_steps: int
    """Environment steps taken (= len(data))."""
    episode_returns: np.ndarray
    """(n_finished,) returns of the episodes that finished during collection."""


class _Carry(NamedTuple):
    obs: jax.Array
    state: Any
    policy_carry: Any
    episode_return: jax.Array
    key: jax.Array


def random_policy(relax: relax_lib.Relaxation) -> Policy:
    """Uniformly random actions; the carry is unused (pass ``None``)."""

    def policy(carry: Any, obs: jax.Array, state: Any, key: jax.Array) -> tuple[Any, Any]:
        return relax.random(key), carry

    return policy


def sticky_policy(relax: relax_lib.Relaxation, repeat_prob: float = 0.8) -> Policy:
    """Random actions repeated with probability ``repeat_prob``; carry = last action.

    Start the carry with ``relax.random(key)``.
    """
    if not 0.0 <= repeat_prob < 1.0:
        raise ValueError(f"repeat_prob={repeat_prob!r}: expected a probability in [0, 1)")

    def policy(carry: Any, obs: jax.Array, state: Any, key: jax.Array) -> tuple[Any, Any]:
        keep_key, action_key = jax.random.split(key)
        keep = jax.random.bernoulli(keep_key, repeat_prob)
        action = jax.tree.map(
            lambda old, new: jnp.where(keep, old, new), carry, relax.random(action_key)
        )
        return action, action

    return policy


def _collect_scan(
    env: Any,
    rebuild: Callable[[tuple], Policy],
    relax: relax_lib.Relaxation,
    policy_arrays: tuple,
    params: Any,
    carry: _Carry,
    steps: int,
) -> tuple[_Carry, tuple[Transitions, jax.Array, jax.Array]]:
    """``steps`` batched env steps as one scan (jit this); leaves (steps, n_envs, ...).

    ``rebuild(policy_arrays)`` is the policy (:func:`agents.common.compiled.split_arrays`).
    """
    n_envs = carry.obs.shape[0]
    policy = rebuild(policy_arrays)

    def body(c: _Carry, _: None):
        key, policy_key, env_key = jax.random.split(c.key, 3)
        action, policy_carry = jax.vmap(policy)(
            c.policy_carry, c.obs, c.state, jax.random.split(policy_key, n_envs)
        )
        step = jax.vmap(autoreset_step, in_axes=(None, 0, 0, 0, None))
        obs, state, reward, terminated, truncated, info = step(
            env, jax.random.split(env_key, n_envs), c.state, action, params
        )
        done = terminated | truncated
        episode_return = c.episode_return + reward
        transition = Transitions(
            c.obs, jax.vmap(relax.encode)(action), reward, info["final_obs"], terminated
        )
        out = (transition, jnp.where(done, episode_return, 0.0), done)
        new = _Carry(obs, state, policy_carry, jnp.where(done, 0.0, episode_return), key)
        return new, out

    return jax.lax.scan(body, carry, None, length=steps)


# Jitted collection scans, one per env, policy and relaxation (agents.common.compiled).
_SCANS = compiled_lib.CompileCache(maxsize=8)


def _scan(env: Any, split: compiled_lib.SplitPolicy, relax: relax_lib.Relaxation) -> Callable:
    """The jitted :func:`_collect_scan` of these static parts (``steps`` static), cached.

    ``env.params`` is an argument, so only the env's ``reset`` and ``step`` enter the key.
    """
    key = (env_cache_key(env)[:2], split.key, compiled_lib.static_key(relax))

    def make() -> Callable:
        scan = functools.partial(_collect_scan, env, split.rebuild, relax)
        return jax.jit(scan, static_argnums=3)

    return _SCANS.get(key, make)


def collect(
    env: Any,
    policy: Policy,
    init_carry: Any,
    relax: relax_lib.Relaxation,
    n_steps: int,
    key: jax.Array,
    n_envs: int = 64,
) -> Collected:
    """Collects ``n_steps`` env steps (rounded down to a multiple of ``n_envs``).

    Args:
        env: a :class:`envs.jax_env.JaxEnv` (``reset``, ``params``; stepped by ``autoreset_step``).
        policy: ``(carry, obs, state, key) -> (action, carry)`` for one env.
        init_carry: the policy carry of one env (copied to every env).
        relax: the relaxation whose ``encode`` turns env actions into model action vectors.
        n_steps: budget of environment steps.
        key: PRNG key.
        n_envs: envs stepped in parallel.

    Returns:
        A :class:`Collected` with ``env_steps <= n_steps`` transitions.

    The scan is compiled once per env, policy, relaxation, ``n_envs`` and step count, and
    reused by later calls (:mod:`agents.common.compiled`): the same policy object, or a
    ``functools.partial`` of the same function with new parameters of the same shapes
    (``DistilledPolicy.policy(params)``), does not compile again. A closure over its parameters
    (a new one per call) compiles again each time.
    """
    if n_steps < n_envs or n_envs < 1:
        raise ValueError(f"n_steps={n_steps} must be >= n_envs={n_envs} >= 1")
    steps = n_steps // n_envs
    reset_key, run_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(reset_key, n_envs), env.params
    )
    carries = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_envs, *jnp.shape(x))), init_carry)
    carry = _Carry(obs, state, carries, jnp.zeros(n_envs, jnp.float32), run_key)
    split = compiled_lib.split_arrays(policy)
    run = _scan(env, split, relax)
    _, (trans, finished_returns, done) = run(split.arrays, env.params, carry, steps)
    flat = jax.tree.map(lambda x: np.asarray(x).reshape(steps * n_envs, *x.shape[2:]), trans)
    returns = np.asarray(finished_returns)[np.asarray(done)]
    return Collected(Transitions(*flat), steps * n_envs, returns)


def concatenate(parts: list[Transitions]) -> Transitions:
    """Joins datasets along the example axis."""
    if not parts:
        raise ValueError("parts: expected at least one dataset")
    return Transitions(*(np.concatenate(field) for field in zip(*parts, strict=True)))


def split(data: Transitions, fraction: float, seed: int = 0) -> tuple[Transitions, Transitions]:
    """Random ``(train, held_out)`` split with ``fraction`` of the examples held out."""
    n = len(data.obs)
    order = np.random.default_rng(seed).permutation(n)
    n_out = int(round(n * fraction))
    if not 0 < n_out < n:
        raise ValueError(f"fraction={fraction} leaves an empty part of {n} examples")
    return take(data, order[n_out:]), take(data, order[:n_out])


def take(data: Transitions, index: Any) -> Transitions:
    """The examples of ``data`` at ``index`` (an index array, mask or slice)."""
    return Transitions(*(np.asarray(x)[index] for x in data))


def normalizer(data: Transitions) -> dict[str, jax.Array]:
    """Means and stds of inputs and targets: obs (D,), delta (D,), reward () (non-final steps)."""
    obs = np.asarray(data.obs, np.float64)
    delta = np.asarray(data.next_obs, np.float64) - obs
    reward = np.asarray(data.reward, np.float64)
    steady = reward[~np.asarray(data.terminated, bool)]
    reward = steady if len(steady) > 1 else reward
    stats = {
        "obs_mean": obs.mean(0),
        "obs_std": np.maximum(obs.std(0), _MIN_STD),
        "delta_mean": delta.mean(0),
        "delta_std": np.maximum(delta.std(0), _MIN_STD),
        "reward_mean": reward.mean(),
        "reward_std": np.maximum(reward.std(), _MIN_STD),
    }
    return {k: jnp.asarray(v, jnp.float32) for k, v in stats.items()}
