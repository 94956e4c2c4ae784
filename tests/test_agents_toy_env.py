"""A tiny JAX env for the agent tests (importable by the other test_agents_* files), and its tests.

Each step shows a sign s in {-1, +1} (alternating, with a random or fixed start); the agent is
rewarded for matching it. Discrete: action 1 means "+1", reward 1 when right, a wrong action
terminates. Continuous: reward 1 - |a - s| for a in [-1, 1]. Hybrid: both, summed. Episodes are
truncated after ``max_steps``. Random play scores about 1 (discrete) or 0 (continuous) per
episode; the optimum is ``max_steps``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.jax_env import JaxEnv, autoreset_step


@struct.dataclass
class ToyParams:
    action_kind: str = struct.field(pytree_node=False, default="discrete")
    max_steps: int = struct.field(pytree_node=False, default=10)
    random_start: bool = struct.field(pytree_node=False, default=True)


class ToyState(NamedTuple):
    phase: jax.Array
    time: jax.Array


def _sign(state: ToyState) -> jax.Array:
    return jnp.where((state.phase + state.time) % 2 == 0, 1.0, -1.0)


def _observe(state: ToyState, params: ToyParams) -> jax.Array:
    return jnp.stack([_sign(state), state.time / params.max_steps]).astype(jnp.float32)


def toy_reset(key: jax.Array, params: ToyParams) -> tuple[jax.Array, ToyState]:
    phase = jax.random.randint(key, (), 0, 2) if params.random_start else jnp.zeros((), jnp.int32)
    state = ToyState(phase.astype(jnp.int32), jnp.zeros((), jnp.int32))
    return _observe(state, params), state


def toy_step(key: jax.Array, state: ToyState, action: Any, params: ToyParams) -> tuple:
    del key
    sign = _sign(state)
    reward, terminated = jnp.zeros(()), jnp.zeros((), bool)
    if params.action_kind in ("discrete", "hybrid"):
        fire = action["fire"] if params.action_kind == "hybrid" else action
        right = jnp.where(fire == 1, 1.0, -1.0) == sign
        reward, terminated = reward + right, ~right
    if params.action_kind in ("continuous", "hybrid"):
        angle = action["angle"] if params.action_kind == "hybrid" else action
        reward = reward + 1.0 - jnp.abs(angle[0] - sign)
    state = ToyState(state.phase, state.time + 1)
    truncated = (state.time >= params.max_steps) & ~terminated
    return _observe(state, params), state, reward.astype(jnp.float32), terminated, truncated, {}


def make_toy_env(action_kind: str = "discrete", max_steps: int = 10, random_start: bool = True):
    params = ToyParams(action_kind, max_steps, random_start)
    spaces = {
        "discrete": gym.spaces.Discrete(2),
        "continuous": gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
        "hybrid": gym.spaces.Dict(
            {"fire": gym.spaces.Discrete(2), "angle": gym.spaces.Box(-1.0, 1.0, (1,), np.float32)}
        ),
    }
    obs_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    return JaxEnv(toy_reset, toy_step, params, obs_space, spaces[action_kind])


class ToyVectorEnv(gym.vector.VectorEnv):
    """Host VectorEnv over the toy JAX env (SAME_STEP autoreset), for host-vs-device tests."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env: JaxEnv, num_envs: int) -> None:
        self.env, self.num_envs = env, num_envs
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = gym.vector.utils.batch_space(env.observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(env.action_space, num_envs)
        self._reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
        step = jax.vmap(lambda k, s, a: autoreset_step(env, k, s, a, env.params))
        self._step = jax.jit(step)
        self._key = jax.random.key(0)

    def reset(self, *, seed: int | None = None, options: Any = None):
        self._key = jax.random.key(seed or 0)
        obs, self._state = self._reset(jax.random.split(self._key, self.num_envs), self.env.params)
        return np.asarray(obs), {}

    def step(self, actions: Any):
        self._key, key = jax.random.split(self._key)
        keys = jax.random.split(key, self.num_envs)
        obs, self._state, reward, terminated, truncated, info = self._step(
            keys, self._state, actions
        )
        done = np.asarray(terminated | truncated)
        final = np.empty(self.num_envs, object)
        for i in np.flatnonzero(done):
            final[i] = np.asarray(info["final_obs"][i])
        infos = {"final_obs": final, "_final_obs": done}
        return (np.asarray(obs), np.asarray(reward), np.asarray(terminated),
                np.asarray(truncated), infos)  # fmt: skip


def test_toy_env_rewards_matching_and_truncates():
    env = make_toy_env("discrete", max_steps=3, random_start=False)
    obs, state = env.reset(jax.random.key(0), env.params)
    total = 0.0
    for t in range(3):
        action = jnp.int32(obs[0] > 0)
        obs, state, reward, terminated, truncated, _ = env.step(None, state, action, env.params)
        total += float(reward)
        assert not bool(terminated)
        assert bool(truncated) == (t == 2)
    assert total == 3.0
    obs, state = env.reset(jax.random.key(0), env.params)
    wrong = jnp.int32(obs[0] < 0)
    _, _, reward, terminated, truncated, _ = env.step(None, state, wrong, env.params)
    assert float(reward) == 0.0 and bool(terminated) and not bool(truncated)
