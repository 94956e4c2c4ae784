"""Batched optimistic autoreset against the plain step and fresh start states.

The jitted batch is compared with an eager vmap: float32 results agree to rounding.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.jax_env import make_jax_env, optimistic_autoreset_step

B = 8


def _batch(env, key):
    return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, B), env.params)


def test_optimistic_autoreset_keeps_running_envs_and_resets_finished_ones():
    env = make_jax_env("worldplan/Spaceship-v0")
    _, state = _batch(env, jax.random.key(0))
    # Envs 1, 4 and 6 are one step from their time limit; the others are mid-episode.
    limit = env.params.max_steps
    time = jnp.where(jnp.isin(jnp.arange(B), jnp.array([1, 4, 6])), limit - 1, 3)
    state = state.replace(time=time.astype(state.time.dtype))
    action = jnp.zeros((B, 2))
    step = jax.jit(lambda k, s, a, p: optimistic_autoreset_step(env, k, s, a, p, 4))
    obs, new, reward, terminated, truncated, info = step(
        jax.random.key(1), state, action, env.params
    )
    done = np.asarray(terminated | truncated)
    assert done.tolist() == [i in (1, 4, 6) for i in range(B)]
    keys = jax.random.split(jax.random.split(jax.random.key(1))[0], B)
    ref_obs, ref_state, ref_reward, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        keys, state, action, env.params
    )
    np.testing.assert_allclose(reward, ref_reward, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(info["final_obs"], ref_obs, rtol=1e-5, atol=1e-6)
    running = ~done
    np.testing.assert_allclose(
        np.asarray(obs)[running], np.asarray(ref_obs)[running], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(new.position)[running], np.asarray(ref_state.position)[running], rtol=1e-5
    )
    # Finished envs start new episodes (time 0), each from its own fresh draw (3 <= 4 resets).
    assert np.all(np.asarray(new.time)[done] == 0)
    planets = np.asarray(new.planet_position)[done]
    assert len({tuple(p) for p in planets.round(6)}) == 3
    assert not np.any(np.isin(planets, np.asarray(state.planet_position)))


def test_optimistic_autoreset_rejects_bad_num_resets():
    env = make_jax_env("worldplan/Spaceship-v0")
    _, state = _batch(env, jax.random.key(0))
    with pytest.raises(ValueError, match="num_resets"):
        optimistic_autoreset_step(
            env, jax.random.key(1), state, jnp.zeros((B, 2)), env.params, B + 1
        )
