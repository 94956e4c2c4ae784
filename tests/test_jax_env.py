"""The JAX cores' vector envs and autoreset helpers against Gymnasium's references.

Batched optimistic autoreset against the plain step and fresh start states (the jitted batch is
compared with an eager vmap: float32 results agree to rounding); the vector envs' seeds against
the single envs', and their infos against ``SyncVectorEnv``'s.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
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


SPACESHIP, DRIVING = "worldplan/Spaceship-v0", "worldplan/Driving-v0"


def test_vector_and_single_envs_take_the_same_seeds():
    vector = gym.make_vec(SPACESHIP, num_envs=2, vectorization_mode="vector_entry_point")
    single = gym.make(SPACESHIP)
    # NumPy integers, and seeds past int64 (the start state depends on the low 32 bits).
    for seed in (np.int64(3), np.uint32(7), 2**63 + 3, 2**70 + 1):
        obs, _ = vector.reset(seed=seed)
        for i in range(2):
            np.testing.assert_allclose(single.reset(seed=int(seed) + i)[0], obs[i], atol=1e-5)
    np.testing.assert_array_equal(single.reset(seed=np.int64(3))[0], single.reset(seed=3)[0])
    listed, _ = vector.reset(seed=np.array([5, 2**40 + 9], np.uint64))
    np.testing.assert_allclose(single.reset(seed=2**40 + 9)[0], listed[1], atol=1e-5)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=rf"seed must be None or an integer >= 0, got {bad!r}"):
            vector.reset(seed=bad)
        with pytest.raises(ValueError, match=rf"seed must be None or an integer >= 0, got {bad!r}"):
            single.reset(seed=bad)
    with pytest.raises(ValueError, match="seed must be None or an integer >= 0, got -4"):
        vector.reset(seed=[0, -4])
    with pytest.raises(ValueError, match="seed list entries must be integers"):
        vector.reset(seed=[0, None])


def _into_trouble(env_id, obs, dive):
    """If ``dive``, env 0 dives into the planet / steers off the road; env 1 coasts."""
    actions = np.zeros((2, 2), np.float32)
    if dive and env_id == SPACESHIP:
        actions[0] = obs[0, 4:6] / np.linalg.norm(obs[0, 4:6])  # towards the planet's centre
    elif dive:
        actions[0, 1] = 1.0  # full left
    return actions


@pytest.mark.parametrize("env_id, overrides", [(SPACESHIP, {"max_thrust": 40.0}), (DRIVING, {})])
def test_vector_infos_match_sync_vector_env_across_autoresets(env_id, overrides):
    """An env that autoresets has no info this step: its masks are False, as in sync mode."""
    kwargs = {"num_envs": 2, "max_steps": 8, **overrides}
    ours = gym.make_vec(env_id, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(env_id, vectorization_mode="sync", **kwargs)
    obs, _ = ours.reset(seed=0)
    sync.reset(seed=0)
    partial = empty = 0
    # Both coast to the time limit (step 8: step 9 autoresets both), then env 0 ends early.
    for t in range(1, 21):
        actions = _into_trouble(env_id, obs, dive=t > 9)
        obs, _, terminated, truncated, info = ours.step(actions)
        _, _, sync_terminated, sync_truncated, expected = sync.step(actions)
        np.testing.assert_array_equal(terminated | truncated, sync_terminated | sync_truncated)
        assert sorted(info) == sorted(expected)
        for key, value in expected.items():
            # Masks exactly; values where present and the zero fillers where not.
            np.testing.assert_allclose(info[key], value, atol=1e-3, err_msg=key)
        partial += bool(info) and not all(info[k].all() for k in info if k.startswith("_"))
        empty += not info
    assert empty == 1  # step 9: every env autoresets, no info at all
    assert partial >= 2  # steps where one env autoresets and the other steps


@pytest.mark.parametrize(
    ("env_id", "mode", "action", "message"),
    [
        ("worldplan/Spaceship-v0", "continuous", jnp.array([0.1, 0.2, 0.3]), r"shape \(2,\)"),
        ("worldplan/Spaceship-v0", "continuous", jnp.float32(0.5), r"shape \(2,\)"),
        ("worldplan/Spaceship-v0", "discrete", jnp.float32(2.7), "integer scalar"),
        ("worldplan/Spaceship-v0", "discrete", jnp.array([1, 2]), "integer scalar"),
        ("worldplan/Spaceship-v0", "hybrid", {"fire": 1, "angle": jnp.zeros(2)}, "angle"),
        ("worldplan/Driving-v0", "continuous", jnp.zeros(3), r"shape \(2,\)"),
        ("worldplan/Driving-v0", "discrete", 2.7, "integer scalar"),
    ],
)
def test_jax_core_refuses_misshapen_actions_at_trace_time(env_id, mode, action, message):
    # Before, a (3,) thrust ran on its first two entries and a discrete 2.7 thrust between
    # two directions; shapes and dtypes are static, so the check costs nothing under jit.
    env = make_jax_env(env_id, action_mode=mode)
    _, state = env.reset(jax.random.key(0), env.params)
    with pytest.raises(ValueError, match=message):
        jax.jit(env.step)(jax.random.key(1), state, action, env.params)
