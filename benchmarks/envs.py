"""Environment steps per second: single env, SyncVectorEnv, our VectorEnv, and jitted rollouts.

    python -m benchmarks.envs            # about a minute on a 2-core CPU
    python -m benchmarks.envs --quick    # smaller sizes
    python -m benchmarks.envs --env worldplan/Driving-v0   # any env with a JAX core

Every row's ratio is against the Gymnasium single env measured in the same run.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp

import envs  # noqa: F401
from benchmarks.common import best_rate, gpu_target, human, machine, print_table
from envs.jax_env import autoreset_step, make_jax_env, optimistic_autoreset_step

SPACESHIP = "worldplan/Spaceship-v0"


class RolloutCarry(NamedTuple):
    """The carry of a benchmark rollout's ``lax.scan``."""

    state: Any
    """Env state (leaves batched when the step is)."""
    key: jax.Array
    """PRNG key of the random actions and steps."""
    total: jax.Array
    """() summed reward so far (kept so that XLA cannot drop the steps)."""


def _random_actions(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


def _one_env_step(env: Any, autoreset: bool, carry: RolloutCarry, _: None):
    """One random-action step of one env (``autoreset_step`` or the plain step)."""
    key, action_key, step_key = jax.random.split(carry.key, 3)
    action = _random_actions(action_key, (2,))
    step = functools.partial(autoreset_step, env) if autoreset else env.step
    _, state, reward, _, _, _ = step(step_key, carry.state, action, env.params)
    return RolloutCarry(state, key, carry.total + reward), None


def _batched_step(env: Any, num_resets: int, carry: RolloutCarry, _: None):
    """One random-action step of a batch of envs (``optimistic_autoreset_step``)."""
    key, action_key, step_key = jax.random.split(carry.key, 3)
    num_envs = jax.tree.leaves(carry.state)[0].shape[0]
    action = _random_actions(action_key, (num_envs, 2))
    _, state, reward, _, _, _ = optimistic_autoreset_step(
        env, step_key, carry.state, action, env.params, num_resets
    )
    return RolloutCarry(state, key, carry.total + reward.sum()), None


def single_env_rate(env_id: str) -> float:
    """A Python loop over ``gym.make`` (wrappers included), pre-sampled actions, with resets."""
    env = gym.make(env_id)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(1000)]

    def run() -> int:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return len(actions)

    return best_rate(run)


def vector_rate(venv: gym.vector.VectorEnv, steps: int = 50) -> float:
    """Steps of a Gymnasium vector env, counted as sub-env steps."""
    venv.reset(seed=0)
    venv.action_space.seed(0)
    actions = [venv.action_space.sample() for _ in range(steps)]
    venv.step(actions[0])

    def run() -> int:
        for action in actions:
            venv.step(action)
        return steps * venv.num_envs

    return best_rate(run)


def make_rollout(env_id: str, num_envs: int, length: int, autoreset: bool = True):
    """A jitted ``vmap`` + ``lax.scan`` rollout of the core with random (2,) actions in [-1, 1].

    With ``autoreset`` every env is reset in place when its episode ends (``autoreset_step``,
    which draws a fresh start state every step and keeps it only where needed, as gymnax does);
    without, the episode state is stepped on past termination, as a fixed-horizon planner does.
    """
    env = make_jax_env(env_id)
    body = functools.partial(_one_env_step, env, autoreset)

    def one_env(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        _, state = env.reset(reset_key, env.params)
        init = RolloutCarry(state, key, jnp.float32(0.0))
        return jax.lax.scan(body, init, None, length=length)[0].total

    rollout = jax.jit(jax.vmap(one_env))
    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    rollout(keys).block_until_ready()  # compile

    def run() -> int:
        rollout(keys).block_until_ready()
        return num_envs * length

    return run


def make_batched_rollout(env_id: str, num_envs: int, length: int, num_resets: int):
    """A jitted ``lax.scan`` over batched steps with :func:`optimistic_autoreset_step`."""
    env = make_jax_env(env_id)
    body = functools.partial(_batched_step, env, num_resets)

    def rollout(key: jax.Array) -> jax.Array:
        key, reset_key = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(reset_key, num_envs), env.params
        )
        init = RolloutCarry(state, key, jnp.float32(0.0))
        return jax.lax.scan(body, init, None, length=length)[0].total

    run_jit = jax.jit(rollout)
    key = jax.random.PRNGKey(0)
    run_jit(key).block_until_ready()  # compile

    def run() -> int:
        run_jit(key).block_until_ready()
        return num_envs * length

    return run


def build_parser() -> argparse.ArgumentParser:
    """The command line (its own function so tests parse gpu_session.sh's flags without a run)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument(
        "--env",
        default=SPACESHIP,
        choices=[SPACESHIP, "worldplan/Driving-v0"],
        help="an env with a JAX core and a continuous (2,) action",
    )
    parser.add_argument("--vector-sizes", type=int, nargs="+", help="VectorEnv env counts")
    parser.add_argument(
        "--rollout-sizes",
        type=int,
        nargs="+",
        help="jitted rollout env counts (GPU: up to 1048576)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[tuple[str, int, float]]:
    """Measures and prints the table; returns its rows as (what, envs, steps/s).

    Args:
        argv: command-line arguments; None reads ``sys.argv``.
    """
    args = build_parser().parse_args(argv)
    vector_sizes = args.vector_sizes or ([1, 64, 1024] if args.quick else [1, 64, 1024, 8192])
    rollout_sizes = args.rollout_sizes or ([1024, 16384] if args.quick else [1024, 16384, 131072])
    print(f"machine: {machine()}")
    start = time.perf_counter()
    env_id = args.env
    base = single_env_rate(env_id)
    rows = [("Gymnasium single env, Python loop", 1, base)]

    def add(name: str, n: int, rate: float) -> None:
        rows.append((name, n, rate))

    sync = gym.make_vec(env_id, num_envs=8, vectorization_mode="sync")
    add("Gymnasium SyncVectorEnv", 8, vector_rate(sync))
    for n in vector_sizes:
        venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
        add(f"worldplan {type(venv).__name__} (jitted, on device)", n, vector_rate(venv))
    rollout_rates = {}
    for n in rollout_sizes:
        rate = rollout_rates[n] = best_rate(
            make_rollout(env_id, n, 100), repeats=3, min_seconds=1.0
        )
        add("jit(vmap(lax.scan)) rollout of the core, with autoreset", n, rate)
    n = rollout_sizes[-1]
    rate = best_rate(make_rollout(env_id, n, 100, autoreset=False), repeats=3, min_seconds=1.0)
    add("jit(vmap(lax.scan)) rollout of the core, no resets", n, rate)
    best_autoreset = max(rollout_rates.items())
    rate = best_rate(make_batched_rollout(env_id, n, 100, n // 16), repeats=3, min_seconds=1.0)
    add("batched rollout, optimistic resets (n/16 start states drawn per step)", n, rate)
    print()
    print_table(
        f"{env_id} environment steps per second ({jax.devices()[0].platform})",
        ["what", "envs", "steps/s", "x single env"],
        [[name, n, human(rate), f"{rate / base:.1f}"] for name, n, rate in rows],
    )
    print()
    n, rate = best_autoreset
    if env_id == SPACESHIP:
        gpu_target(
            f"rollout with autoreset at {n:,} envs (target at 1M envs)", rate, 1e10, "steps/s"
        )
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
    return rows


if __name__ == "__main__":
    main()
