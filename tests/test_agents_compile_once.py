"""evaluate_jax and data.collect compile once per env and policy; new parameters reuse the compile.

Trace counters: each policy below counts how often JAX traces it (its Python body runs only
when traced). Before the cache, every call traced again (1, 2, 3 over three calls).
"""

from __future__ import annotations

import functools
import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.common.evaluate import evaluate_jax
from planners import relax as relax_lib
from tests.test_agents_toy_env import make_toy_env
from world_models import data as data_lib

TRACES = {"gain": 0, "closure": 0}


def _gain_policy(gain, carry, obs, state, key):
    # Continuous toy env: the action gain * sign is rewarded 1 - |action - sign| per step.
    del state, key
    TRACES["gain"] += 1
    return jnp.clip(gain * obs[:1], -1.0, 1.0), carry


def _policy(gain: float):
    return functools.partial(_gain_policy, jnp.full((1,), gain, jnp.float32))


@pytest.fixture
def env():
    return make_toy_env("continuous", max_steps=5, random_start=True)


def test_evaluate_jax_traces_once_and_new_params_of_the_same_shape_reuse_it(env):
    TRACES["gain"] = 0
    policy = _policy(1.0)
    for seed in range(3):
        result = evaluate_jax(env, policy, 4, jax.random.key(seed))
        np.testing.assert_allclose(result.returns, 5.0)  # the perfect policy
        assert result.seconds_per_action > 0
    assert TRACES["gain"] == 1
    # New parameters, a new partial and an equal new env object: the same compiled rollout,
    # which must act with the NEW parameters (1 - |0 - s| = 0 per step).
    again = make_toy_env("continuous", max_steps=5, random_start=True)
    np.testing.assert_allclose(evaluate_jax(again, _policy(0.0), 4, jax.random.key(0)).returns, 0)
    assert TRACES["gain"] == 1
    evaluate_jax(env, policy, 6, jax.random.key(0))  # another episode count: another shape
    assert TRACES["gain"] == 2


def test_the_cache_does_not_keep_a_policys_parameters_alive(env):
    gain = jnp.full((1,), 0.5, jnp.float32)
    alive = weakref.ref(gain)
    evaluate_jax(env, functools.partial(_gain_policy, gain), 2, jax.random.key(0))
    data_lib.collect(env, functools.partial(_gain_policy, gain), None, relax_lib.Continuous(1),
                     8, jax.random.key(0), n_envs=4)  # fmt: skip
    del gain
    gc.collect()
    assert alive() is None


def test_collect_traces_once_and_new_params_of_the_same_shape_reuse_it(env):
    TRACES["gain"] = 0
    relax = relax_lib.Continuous(1)
    for seed in range(3):
        got = data_lib.collect(env, _policy(1.0), None, relax, 40, jax.random.key(seed), 4)
        np.testing.assert_allclose(got.data.action[:, 0], got.data.obs[:, 0])  # gain 1 * sign
    assert TRACES["gain"] == 1
    half = data_lib.collect(env, _policy(0.5), None, relax, 40, jax.random.key(0), 4)
    np.testing.assert_allclose(half.data.action[:, 0], 0.5 * half.data.obs[:, 0])
    assert TRACES["gain"] == 1


def test_a_closure_policy_is_reused_while_it_is_the_same_object(env):
    TRACES["closure"] = 0

    def policy(carry, obs, state, key):
        TRACES["closure"] += 1
        return jnp.clip(obs[:1], -1.0, 1.0), carry

    for seed in range(3):
        evaluate_jax(env, policy, 4, jax.random.key(seed))
    assert TRACES["closure"] == 1
