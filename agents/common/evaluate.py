"""Policy evaluation: mean return with a 95% confidence interval, and time per action.

:func:`evaluate_jax` evaluates any jittable policy on a JAX env (``envs.jax_env.JaxEnv``): the
planners, the trained actor-critics and the random baseline all go through it, so their numbers
are comparable. A policy is ``policy(carry, obs, state, key) -> (action, carry)`` for ONE env:
``obs`` is the observation, ``state`` the env's true state pytree (oracle planners use it; others
ignore it), ``carry`` the policy's own memory (a planner's warm start; None if stateless), ``key``
a PRNG key. :func:`evaluate_host` does the same for a Gymnasium env and a host policy: a
callable ``policy(obs) -> action`` with an optional ``reset()``, called at the start of every
episode (``planners.checkpoints.HostPolicy`` and ``agents.common.policy.load_policy`` give such
policies; ``reset`` forgets a planner's warm start).

:func:`evaluate_jax` compiles its rollout once per env, policy, episode count and step count
(:mod:`agents.common.compiled`): evaluating the same policy again, or a policy made by the same
``functools.partial`` with new parameters of the same shapes (``agents.ppo.make_policy``), reuses
the compiled rollout.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents.common import compiled as compiled_lib
from agents.common.stats import mean_ci


class EvalResult(NamedTuple):
    """Evaluation of a policy over N episodes."""

    mean: float
    """Mean undiscounted episode return."""
    ci95_low: float
    """Lower end of the 95% confidence interval of the mean (Student t; NaN for N = 1)."""
    ci95_high: float
    """Upper end of the 95% confidence interval of the mean."""
    returns: np.ndarray
    """(N,) episode returns."""
    episode_lengths: np.ndarray
    """(N,) episode lengths [steps]."""
    seconds_per_action: float
    """Wall time per action [s]; :func:`evaluate_jax` / :func:`evaluate_host` say what it covers."""


def summarise_returns(
    returns: np.ndarray, lengths: np.ndarray, seconds_per_action: float
) -> EvalResult:
    """Mean and Student-t 95% CI of the (N,) returns (:func:`mean_ci`)."""
    returns = np.asarray(returns, np.float64)
    mean, low, high = mean_ci(returns)
    return EvalResult(mean, low, high, returns, np.asarray(lengths), float(seconds_per_action))


class _EpisodeCarry(NamedTuple):
    env_state: Any
    obs: jax.Array
    policy_carry: Any
    done: jax.Array
    episode_return: jax.Array
    length: jax.Array
    key: jax.Array


def _keep(active: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old)


def _episode_step(env: Any, policy: Callable, record: bool, carry: _EpisodeCarry, _: Any) -> tuple:
    key, policy_key, env_key = jax.random.split(carry.key, 3)
    action, policy_carry = policy(carry.policy_carry, carry.obs, carry.env_state, policy_key)
    obs, state, reward, terminated, truncated, _info = env.step(
        env_key, carry.env_state, action, env.params
    )
    active = ~carry.done
    new_carry = _EpisodeCarry(
        env_state=_keep(active, state, carry.env_state),
        obs=_keep(active, obs, carry.obs),
        policy_carry=_keep(active, policy_carry, carry.policy_carry),
        done=carry.done | terminated | truncated,
        episode_return=carry.episode_return + jnp.where(active, reward, 0.0),
        length=carry.length + active.astype(jnp.int32),
        key=key,
    )
    return new_carry, (carry.env_state, carry.obs, carry.done) if record else None


def _play(env: Any, policy: Callable, steps: int, init_carry: Any, key: jax.Array, record: bool):
    reset_key, key = jax.random.split(key)
    obs, state = env.reset(reset_key, env.params)
    carry = _EpisodeCarry(state, obs, init_carry, jnp.zeros((), bool),
                          jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32), key)  # fmt: skip
    body = functools.partial(_episode_step, env, policy, record)
    return jax.lax.scan(body, carry, None, length=steps)


def run_episode(
    env: Any, policy: Callable, max_steps: int, init_carry: Any, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """One episode of at most ``max_steps`` steps; returns ``(return (), length ())``.

    The scan always runs ``max_steps`` steps; after the episode ends the state is frozen and
    rewards are no longer added (one episode per call, no autoreset).
    """
    carry, _ = _play(env, policy, max_steps, init_carry, key, False)
    return carry.episode_return, carry.length


def visited_states(
    env: Any, policy: Callable, steps: int, init_carry: Any, key: jax.Array
) -> tuple[Any, jax.Array, jax.Array]:
    """The first ``steps`` states of an episode of ``policy``: ``(env_states, obs, done)``.

    The same episode as :func:`run_episode` with the same key. Leaves have a leading axis
    ``steps``: entry ``t`` is the state before step ``t`` (``t = 0``: the reset state), ``obs``
    (steps, ...) its observation and ``done`` (steps,) whether the episode had already ended
    by then (the state is then the one it ended in). ``vmap`` over keys gives a batch of
    episodes: the policy's state distribution at each step.
    """
    _, (states, obs, done) = _play(env, policy, steps, init_carry, key, True)
    return states, obs, done


# Compiled rollouts of evaluate_jax; see agents.common.compiled for what the keys hold.
_ROLLOUTS = compiled_lib.CompileCache(maxsize=8)


def env_cache_key(env: Any) -> tuple:
    """Cache key of a JAX env: its ``reset``, ``step`` and ``params`` (its spaces are unused)."""
    parts = (env.reset, env.step, env.params)
    return tuple(compiled_lib.static_key(part) for part in parts)


def _rollout(
    env: Any, rebuild: Callable, max_steps: int, arrays: tuple, init_carry: Any, keys: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(N,) returns and (N,) lengths of N episodes, one per key (jit this)."""
    episode = functools.partial(run_episode, env, rebuild(arrays), max_steps)
    return jax.vmap(episode, (None, 0))(init_carry, keys)


def _compiled_rollout(
    env: Any, split: compiled_lib.SplitPolicy, max_steps: int, init_carry: Any, keys: jax.Array
) -> Any:
    """The compiled ``_rollout`` for these static parts and argument shapes (cached)."""
    arguments = (split.arrays, init_carry, keys)
    key = (env_cache_key(env), split.key, max_steps, compiled_lib.signature(arguments))

    def make() -> Any:
        rollout = functools.partial(_rollout, env, split.rebuild, max_steps)
        return jax.jit(rollout).lower(*arguments).compile()

    return _ROLLOUTS.get(key, make)


def evaluate_jax(
    env: Any,
    policy: Callable,
    n_episodes: int,
    key: jax.Array,
    max_steps: int | None = None,
    init_carry: Any = None,
) -> EvalResult:
    """Evaluates a jittable policy on ``n_episodes`` episodes of a JAX env, all batched with vmap.

    Args:
        env: an ``envs.jax_env.JaxEnv`` (``reset``, ``step``, ``params``).
        policy: ``policy(carry, obs, state, key) -> (action, carry)`` for one env (pure, jittable).
        n_episodes: number of episodes N (each from its own reset key).
        key: PRNG key.
        max_steps: scan length per episode; default ``env.params.max_steps`` (the time limit).
        init_carry: the policy's initial carry for every episode (None for stateless policies).

    Returns:
        An :class:`EvalResult`. ``seconds_per_action`` is the wall time of one call of the
        compiled rollout (compiled first, outside the timing, or taken from the cache of an
        earlier call) divided by ``max_steps``: the time an agent acting in one env waits per
        step when N envs run in parallel on this device, env step included.

    Raises:
        ValueError: ``n_episodes < 1``, or no ``max_steps`` given and the env has none.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    max_steps = max_steps or getattr(env.params, "max_steps", None)
    if not max_steps or max_steps < 1:
        raise ValueError("max_steps must be given (>= 1) for an env whose params have no max_steps")
    keys = jax.random.split(key, n_episodes)
    split = compiled_lib.split_arrays(policy)
    compiled = _compiled_rollout(env, split, int(max_steps), init_carry, keys)
    start = time.perf_counter()
    returns, lengths = jax.block_until_ready(compiled(split.arrays, init_carry, keys))
    seconds = (time.perf_counter() - start) / max_steps
    return summarise_returns(np.asarray(returns), np.asarray(lengths), seconds)


def seconds_per_action(
    policy, init_carry, env, repeats: int, key: jax.Array, uses_state: bool = False
) -> float:
    """Median wall time of ``repeats`` compiled single-env policy calls, each timed alone [s].

    The call takes what the policy acts on: its carry, the observation and a key, plus the env
    state only when the policy reads it (``uses_state``; planning through the true dynamics).
    Otherwise the state is fixed when the call is traced: passing its 9 arrays to every call
    added ~65 us of dispatch on the 2-core CPU, against ~30 us for DISTGBP's whole network.
    The compile and one warm-up call are excluded. The median, not the mean: a sub-millisecond
    call on a shared CPU is now and then stalled by the OS, and one stall moved a mean of 20
    calls by 2x.
    """
    obs, state = env.reset(key, env.params)
    if uses_state:
        act, args = jax.jit(policy), (init_carry, obs, state)
    else:
        act = jax.jit(lambda carry, obs, key: policy(carry, obs, state, key))
        args = (init_carry, obs)
    jax.block_until_ready(act(*args, key))
    times = []
    for k in jax.random.split(key, repeats):
        start = time.perf_counter()
        jax.block_until_ready(act(*args, k))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def evaluate_host(
    env: Any,
    policy: Callable[[Any], Any],
    n_episodes: int,
    seed: int = 0,
    max_steps: int | None = None,
) -> EvalResult:
    """Evaluates a host policy on a Gymnasium env, episode by episode.

    Args:
        env: a Gymnasium env (one, not a VectorEnv).
        policy: ``policy(obs) -> action``. If it has a ``reset()`` method (a stateful policy:
            ``planners.checkpoints.HostPolicy``, ``agents.common.policy.load_policy``), it is
            called at the start of every episode, after ``env.reset``, so no memory (a
            planner's warm-start plan) carries over from one episode to the next.
        n_episodes: number of episodes N.
        seed: episode ``i`` starts from ``env.reset(seed=seed + i)``.
        max_steps: stop an episode after this many steps (None: run until terminated or
            truncated).

    Returns:
        An :class:`EvalResult`; ``seconds_per_action`` is the median wall time of one
        ``policy`` call (neither the env step nor ``reset`` is included; the median, so the
        first call's compile and the odd OS stall do not count).

    Raises:
        ValueError: ``n_episodes < 1``.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    reset = getattr(policy, "reset", None)
    returns, lengths, call_times = [], [], []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        if reset is not None:
            reset()
        total, steps, done = 0.0, 0, False
        while not done and (max_steps is None or steps < max_steps):
            start = time.perf_counter()
            action = policy(obs)
            call_times.append(time.perf_counter() - start)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, steps, done = total + float(reward), steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    seconds = float(np.median(call_times)) if call_times else 0.0
    return summarise_returns(np.array(returns), np.array(lengths), seconds)


def random_policy(action_space: Any) -> Callable:
    """A uniformly random jittable policy over a Discrete/Box/Dict/Tuple action space."""
    return functools.partial(_random_policy, action_space)


def _random_policy(space: Any, carry: Any, obs: jax.Array, state: Any, key: jax.Array) -> tuple:
    del obs, state
    return _sample_space(space, key), carry


def _sample_space(space: Any, key: jax.Array) -> Any:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Discrete):
        return jax.random.randint(key, (), space.start, space.start + space.n).astype(jnp.int32)
    if isinstance(space, gym.spaces.Box):
        return jax.random.uniform(key, space.shape, jnp.float32, space.low, space.high)
    if isinstance(space, gym.spaces.Dict | gym.spaces.Tuple):
        names = list(space.spaces.keys()) if isinstance(space, gym.spaces.Dict) else None
        subs = list(space.spaces.values()) if names else list(space.spaces)
        keys = jax.random.split(key, len(subs))
        values = [_sample_space(s, k) for s, k in zip(subs, keys, strict=True)]
        return dict(zip(names, values, strict=True)) if names else tuple(values)
    raise ValueError(f"random_policy: unsupported action space {space}")
