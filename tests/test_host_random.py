"""The single env's host PRNG (``envs.host_random``) against JAX, and fork safety it buys."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from envs import host_random
from envs.ops import uniforms
from envs.spaceship import core
from envs.spaceship.params import SpaceshipParams

SEEDS = [0, 1, 7, 12_345, 2**31 - 1, 2**31, 2**32 - 1, 2**32 + 5, 2**40 + 3, -1]


@pytest.mark.parametrize("seed", SEEDS)
def test_keys_split_and_uniforms_are_jaxs_bit_for_bit(seed):
    key = np.asarray(jax.random.PRNGKey(seed))
    np.testing.assert_array_equal(host_random.prng_key(seed), key)
    for num in (1, 2, 3, 8):
        np.testing.assert_array_equal(
            host_random.split(key, num), np.asarray(jax.random.split(key, num))
        )
    for count in (1, 12, 13):
        np.testing.assert_array_equal(
            host_random.uniforms(key, count), np.asarray(uniforms(key, count))
        )


def test_host_start_state_equals_the_jax_core_reset():
    params = SpaceshipParams()
    for seed in range(20):
        key = jax.random.PRNGKey(seed)
        obs, state = core.reset(key, params)
        draws = host_random.uniforms(np.asarray(key), core.reset_draws(params))
        host_obs, host_state = core.initial_state(draws, params)
        assert isinstance(host_obs, np.ndarray) and host_obs.dtype == np.float32
        np.testing.assert_allclose(host_obs, obs, rtol=1e-6, atol=1e-6)
        for name in core.STATE_SHAPES:
            host, jax_leaf = np.asarray(getattr(host_state, name)), getattr(state, name)
            assert host.dtype == jax_leaf.dtype, name
            np.testing.assert_allclose(host, jax_leaf, rtol=1e-6, atol=1e-6, err_msg=name)


FORK_AFTER_JAX = """
import gymnasium as gym, jax.numpy as jnp, numpy as np
import envs
float(jnp.ones(3).sum())  # JAX's runtime starts in the parent before the workers fork
env = gym.make("worldplan/Spaceship-v0")
env.reset(seed=0)
venv = gym.make_vec("worldplan/Spaceship-v0", num_envs=2, vectorization_mode="async",
                    vector_kwargs={"context": "fork"})
obs, _ = venv.reset(seed=0)
for _ in range(5):
    obs, *_ = venv.step(venv.action_space.sample())
venv.close()
print("ok", obs.shape)
"""


def test_async_vector_env_forked_after_jax_started_does_not_hang():
    """Workers forked from a process that used JAX run the single env (JAX would deadlock)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_AFTER_JAX)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok (2, 13)" in done.stdout
