"""The gymnax adapter against ``autoreset_step``, its spaces, and a PureJaxRL-style loop.

These run without gymnax (the look-alike spaces are asked for explicitly, so the results do not
depend on whether gymnax is installed); ``test_gymnax_*`` run gymnax's own wrappers over the
adapter where gymnax is importable (its own space classes then) and are skipped otherwise.
"""

import copy
from functools import partial
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.gymnax_adapter import BUILTIN_SPACES, GymnaxEnv, make_gymnax_env, to_gymnax_space
from envs.jax_env import autoreset_step

SPACESHIP, DRIVING = "worldplan/Spaceship-v0", "worldplan/Driving-v0"
MODES = [(SPACESHIP, m) for m in ("continuous", "discrete", "hybrid")] + [
    (DRIVING, m) for m in ("continuous", "discrete")
]
B = 4


def _make(env_id: str, **kwargs: Any) -> GymnaxEnv:
    return make_gymnax_env(env_id, space_classes=BUILTIN_SPACES, **kwargs)


def _batched_step(env, keys, state, action, params):
    return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)


def _batched_autoreset_step(env, keys, state, action, params):
    step = partial(autoreset_step, env)
    return jax.vmap(step, in_axes=(0, 0, 0, None))(keys, state, action, params)


def test_step_is_autoreset_step_bit_for_bit_with_gymnax_info_keys():
    env = _make(SPACESHIP, max_steps=3)
    params = env.default_params
    _, state = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), B))
    # Envs 0 and 2 reach the time limit on this step; 1 and 3 run on.
    state = state.replace(time=jnp.array([2, 0, 2, 1], state.time.dtype))
    action = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.5, 0.5]])
    keys = jax.random.split(jax.random.key(2), B)
    # Both jitted around a vmap, params an argument (closed-over params would be constant-folded
    # into other float rounding); the adapter is static, as gymnax's wrappers pass it.
    got = jax.jit(_batched_step, static_argnames="env")(env, keys, state, action, params)
    ref = jax.jit(partial(_batched_autoreset_step, env.jax_env))(keys, state, action, params)
    *got_head, got_info = got
    *ref_head, ref_info = ref
    for a, b in zip(jax.tree.leaves(got_head), jax.tree.leaves(ref_head), strict=True):
        np.testing.assert_array_equal(a, b)
    assert set(got_info) == set(ref_info) - {"final_obs"} | {
        "terminated",
        "truncated",
        "final_observation",
    }
    np.testing.assert_array_equal(got_info["final_observation"], ref_info["final_obs"])
    np.testing.assert_array_equal(got_info["truncated"], [True, False, True, False])
    np.testing.assert_array_equal(got_info["terminated"], got[3])
    obs, new_state = got[0], got[1]
    np.testing.assert_array_equal(new_state.time, [0, 1, 0, 2])
    assert not np.array_equal(obs[0], got_info["final_observation"][0])  # reset, not stepped
    np.testing.assert_array_equal(obs[1], got_info["final_observation"][1])


@pytest.mark.parametrize(("env_id", "action_mode"), MODES)
def test_action_spaces_match_gymnasium_and_hold_their_samples(env_id, action_mode):
    env = _make(env_id, action_mode=action_mode)
    space, gym_space = env.action_space(env.default_params), env.jax_env.action_space
    actions = jax.jit(jax.vmap(space.sample))(jax.random.split(jax.random.key(4), 16))
    assert bool(jnp.all(jax.jit(jax.vmap(space.contains))(actions)))
    for i in range(16):
        assert gym_space.contains(jax.tree.map(lambda x, i=i: np.asarray(x[i]), actions))
    if action_mode == "discrete":
        assert space.n == gym_space.n == env.num_actions and space.shape == ()
        assert not bool(space.contains(space.n)) and not bool(space.contains(-1))
        assert not bool(space.contains(1.5)) and not bool(space.contains(jnp.array([1])))
    elif action_mode == "continuous":
        assert space.shape == (2,) and env.num_actions == 2
        np.testing.assert_array_equal(space.low, gym_space.low)
        np.testing.assert_array_equal(space.high, gym_space.high)
        assert not bool(space.contains(jnp.array([0.0, 1.5])))
        assert not bool(space.contains(jnp.array([0.0, jnp.nan])))
        assert not bool(space.contains(jnp.zeros(3)))
    else:
        assert set(space.spaces) == {"fire", "angle"}
        assert not bool(space.contains({"fire": 2, "angle": jnp.zeros(1)}))
        assert not bool(space.contains({"fire": 1}))
        with pytest.raises(NotImplementedError, match="num_actions"):
            _ = env.num_actions


@pytest.mark.parametrize("env_id", [SPACESHIP, DRIVING])
def test_reset_is_the_core_reset_and_its_observation_lies_in_the_space(env_id):
    env = _make(env_id)
    params, key = env.default_params, jax.random.key(5)
    got = env.reset(key)  # params default to env.default_params
    ref = jax.jit(lambda k: env.jax_env.reset(k, params))(key)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)
    space, obs = env.observation_space(params), got[0]
    assert space.shape == obs.shape and np.dtype(space.dtype) == obs.dtype
    assert bool(space.contains(obs))
    assert not bool(space.contains(obs[:-1])) and not bool(space.contains(obs.at[0].set(jnp.nan)))
    assert env.name == env_id


@pytest.mark.parametrize("env_id", [SPACESHIP, DRIVING])
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_observation_spaces_match_gymnasium_and_hold_their_samples(env_id, obs_mode):
    env = _make(env_id, obs_mode=obs_mode)
    space, gym_space = env.observation_space(env.default_params), env.jax_env.observation_space
    assert space.shape == gym_space.shape and np.dtype(space.dtype) == gym_space.dtype
    np.testing.assert_array_equal(space.low, gym_space.low)
    np.testing.assert_array_equal(space.high, gym_space.high)
    drawn = jax.jit(space.sample)(jax.random.key(6))  # finite draws also where bounds are not
    assert bool(space.contains(drawn)) and gym_space.contains(np.asarray(drawn))


def test_spaces_follow_the_params_passed():
    env = _make(SPACESHIP, obs_mode="pixels", pixel_size=16)
    params = env.default_params.replace(pixel_size=24, action_mode="discrete")
    assert env.observation_space(env.default_params).shape == (16, 16, 3)
    assert env.observation_space(params).shape == (24, 24, 3)
    assert env.action_space(params).n == params.num_discrete_actions


class LoopCarry(NamedTuple):
    key: jax.Array
    state: Any
    length: jax.Array


@pytest.mark.parametrize(("env_id", "action_mode"), [MODES[1], MODES[3]])
def test_purejaxrl_style_loop_ends_and_restarts_episodes(env_id, action_mode):
    env = make_gymnax_env(env_id, action_mode=action_mode, max_steps=4)
    params = env.default_params
    num_envs, num_steps = 6, 11

    def scan_step(params, carry, _):
        key, key_action, key_step = jax.random.split(carry.key, 3)
        sample = env.action_space(params).sample
        action = jax.vmap(sample)(jax.random.split(key_action, num_envs))
        step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        obs, state, reward, terminated, truncated, info = step(
            jax.random.split(key_step, num_envs), carry.state, action, params
        )
        assert obs.shape[1:] == env.observation_space(params).shape  # at trace time
        done = terminated | truncated
        length = jnp.where(done, 0, carry.length + 1)
        out = (done, state.time, length, obs, info["final_observation"])
        return LoopCarry(key, state, length), out

    @jax.jit
    def rollout(key, params):  # params traced, so action_space(params) sees tracers
        key_reset, key_loop = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, num_envs), params
        )
        carry = LoopCarry(key_loop, state, jnp.zeros(num_envs, jnp.int32))
        return jax.lax.scan(partial(scan_step, params), carry, None, num_steps)[1]

    done, time, length, obs, final = rollout(jax.random.PRNGKey(7), params)  # a raw key
    assert obs.shape == final.shape == (num_steps, num_envs, *env.observation_space(params).shape)
    # Every env ends an episode at the latest at the 4-step limit, and starts over at time 0.
    assert done.shape == (num_steps, num_envs) and np.all(done.sum(axis=0) >= num_steps // 4)
    np.testing.assert_array_equal(time, length)
    assert np.all(length < 4)
    assert not np.array_equal(obs[done], final[done])


def test_deepcopy_keeps_params_and_spaces():
    env = _make(SPACESHIP, action_mode="discrete", max_steps=7)
    twin = copy.deepcopy(env)  # as gymnax's GymnaxToGymWrapper does
    assert twin.default_params == env.default_params and twin.default_params.max_steps == 7
    assert twin.action_space().n == env.num_actions == 9 and twin.name == SPACESHIP
    assert hash(twin) != hash(env) and hash(env) == hash(env)


def test_bad_input_errors_clearly():
    with pytest.raises(ValueError, match="no JAX core"):
        make_gymnax_env("worldplan/Nope-v0")
    with pytest.raises(ValueError, match="no JAX core"):
        make_gymnax_env("worldplan/Poke-v0")
    with pytest.raises(ValueError, match="action_mode"):
        make_gymnax_env(SPACESHIP, action_mode="hover")
    env = _make(SPACESHIP)
    _, state = env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="action"):
        env.step(jax.random.key(1), state, jnp.zeros(3))
    with pytest.raises(ValueError, match="no gymnax counterpart"):
        to_gymnax_space(gym.spaces.MultiBinary(3), BUILTIN_SPACES)


def _log_flatten_rollout(wrapped, params, key, num_envs, num_steps):
    def scan_step(carry, key):
        key_action, key_step = jax.random.split(key)
        action = jax.vmap(wrapped.action_space(params).sample)(
            jax.random.split(key_action, num_envs)
        )
        step = jax.vmap(wrapped.step, in_axes=(0, 0, 0, None))
        obs, state, reward, terminated, truncated, info = step(
            jax.random.split(key_step, num_envs), carry, action, params
        )
        return state, (obs, reward, terminated | truncated, info)

    key_reset, key_loop = jax.random.split(key)
    reset = jax.vmap(wrapped.reset, in_axes=(0, None))
    _, state = reset(jax.random.split(key_reset, num_envs), params)
    return jax.lax.scan(scan_step, state, jax.random.split(key_loop, num_steps))[1]


def test_gymnax_log_flatten_and_sticky_wrappers_run_jitted_over_the_adapter():
    pytest.importorskip("gymnax")
    from gymnax.environments import spaces
    from gymnax.wrappers import FlattenObservationWrapper, LogWrapper, StickyActionWrapper

    env = make_gymnax_env(
        SPACESHIP, action_mode="discrete", obs_mode="pixels", pixel_size=16, max_steps=3
    )
    assert isinstance(env.action_space(), spaces.Discrete)  # gymnax's own classes, when installed
    wrapped = LogWrapper(FlattenObservationWrapper(StickyActionWrapper(env, 0.25)))
    params = env.default_params
    assert wrapped.observation_space(params).shape == (16 * 16 * 3,)
    rollout = jax.jit(partial(_log_flatten_rollout, wrapped, num_envs=3, num_steps=7))
    obs, reward, done, info = rollout(params=params, key=jax.random.PRNGKey(0))
    assert obs.shape == info["final_observation"].shape == (7, 3, 16 * 16 * 3)
    np.testing.assert_array_equal(info["returned_episode"], done)
    assert done[2].all()  # the 3-step limit (with these keys no episode ends sooner)
    returns, lengths = np.zeros(3), np.zeros(3, int)
    for t in range(7):
        returns, lengths = returns + reward[t], lengths + 1
        finished = np.asarray(done[t])
        np.testing.assert_allclose(
            info["returned_episode_returns"][t][finished], returns[finished], rtol=1e-5
        )
        lengths_logged = info["returned_episode_lengths"][t]
        np.testing.assert_array_equal(lengths_logged[finished], lengths[finished])
        returns, lengths = np.where(finished, 0.0, returns), np.where(finished, 0, lengths)


@pytest.mark.parametrize("action_mode", ["continuous", "discrete", "hybrid"])
def test_gymnax_gym_wrappers_step_the_adapter(action_mode):
    pytest.importorskip("gymnax")
    from gymnax.wrappers import GymnaxToGymWrapper, GymnaxToVectorGymWrapper

    env = make_gymnax_env(SPACESHIP, action_mode=action_mode, max_steps=2)
    single = GymnaxToGymWrapper(env, seed=1)
    assert single.action_space == env.jax_env.action_space
    assert single.observation_space == env.jax_env.observation_space
    single.action_space.seed(0)
    obs, _ = single.reset(seed=2)
    ended = []
    for _ in range(3):
        obs, reward, terminated, truncated, info = single.step(single.action_space.sample())
        assert single.observation_space.contains(np.asarray(obs))
        ended.append(bool(terminated | truncated))
    assert any(ended[:2])  # at the 2-step limit at the latest; the env reset itself and went on
    vector = GymnaxToVectorGymWrapper(env, num_envs=3, seed=0)
    obs, _ = vector.reset()
    vector.action_space.seed(0)
    obs, reward, terminated, truncated, info = vector.step(vector.action_space.sample())
    assert obs.shape == (3, *env.jax_env.observation_space.shape) and reward.shape == (3,)
