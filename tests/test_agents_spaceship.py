"""A2C and PPO on the spaceship task (device path) and PPO on CartPole (host path).

The learning runs take minutes on a 2-core CPU and are marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import a2c, ppo
from agents.common.evaluate import evaluate_host, evaluate_jax, random_policy
from envs.jax_env import make_jax_env


@pytest.mark.parametrize(
    "action_mode",
    [
        "hybrid",
        pytest.param("discrete", marks=pytest.mark.slow),
        pytest.param("continuous", marks=pytest.mark.slow),
    ],
)
def test_a2c_runs_on_every_spaceship_action_space(action_mode):
    env = make_jax_env("worldplan/Spaceship-v0", action_mode=action_mode)
    config = a2c.A2CConfig(total_steps=160, num_envs=8, n_steps=5)
    states, metrics = jax.jit(a2c.make_train_fn(config, env))(jax.random.key(0))
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
    assert int(states.env_steps) == 160
    policy = a2c.make_policy(config, env, states.params, deterministic=False)
    action, _ = jax.jit(policy)(None, states.env.obs[0], None, jax.random.key(1))
    assert env.action_space.contains(jax.tree.map(np.asarray, action))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a2c", "ppo"])
def test_device_path_learns_spaceship(name):
    env = make_jax_env("worldplan/Spaceship-v0")
    module = {"a2c": a2c, "ppo": ppo}[name]
    config = (a2c.A2CConfig if name == "a2c" else ppo.PPOConfig)(
        total_steps=300_000, log_every_steps=100_000
    )
    result = module.train(config, env, jax.random.key(0), progress=False)
    random = evaluate_jax(env, random_policy(env.action_space), 100, jax.random.key(1))
    trained = evaluate_jax(env, module.make_policy(config, env, result.params), 100,
                           jax.random.key(1))  # fmt: skip
    assert trained.ci95_low > random.ci95_high + 10.0, (trained, random)


@pytest.mark.slow
def test_ppo_host_path_learns_cartpole():
    vec_env = gym.make_vec("CartPole-v1", num_envs=16, vectorization_mode="sync")
    config = ppo.PPOConfig(total_steps=40_960, log_every_steps=10_240)
    result = ppo.train(config, vec_env, jax.random.key(0), progress=False)
    env = gym.make("CartPole-v1")
    act = jax.jit(ppo.make_policy(config, env, result.params))
    policy = lambda obs: int(act(None, jnp.asarray(obs), None, jax.random.key(0))[0])  # noqa: E731
    trained = evaluate_host(env, policy, 10, seed=100)
    random = evaluate_host(env, lambda obs: env.action_space.sample(), 10, seed=100)
    assert trained.mean > random.mean + 100.0, (trained.mean, random.mean)
