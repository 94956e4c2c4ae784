"""The Gymnasium shells of the spaceship task: checker, determinism, vector equivalence, errors."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.jax_vector import _jit_step
from envs.spaceship import core

ID = "worldplan/Spaceship-v0"
MODES = ["continuous", "discrete", "hybrid"]


@pytest.mark.parametrize("action_mode", MODES)
@pytest.mark.parametrize("obs_mode", ["state", "pixels"])
def test_check_env_and_pickle(action_mode, obs_mode):
    env = gym.make(ID, action_mode=action_mode, obs_mode=obs_mode, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite Box bounds are deliberate
        check_env(env.unwrapped)
    env.reset(seed=5)
    copy = pickle.loads(pickle.dumps(env))
    env.action_space.seed(1)
    action = env.action_space.sample()
    a, b = env.step(action), copy.step(action)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:4] == b[1:4]


def rollout(env, seed, steps=150):
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        frames.append(obs)
        frames.append(np.float32(reward))
        if terminated or truncated:
            obs, _ = env.reset()
            frames.append(obs)
    return frames


@pytest.mark.parametrize("action_mode", MODES)
def test_same_seed_same_episode_bit_for_bit(action_mode):
    a = rollout(gym.make(ID, action_mode=action_mode), seed=7)
    b = rollout(gym.make(ID, action_mode=action_mode), seed=7)
    c = rollout(gym.make(ID, action_mode=action_mode), seed=8)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=False))


@pytest.mark.parametrize("action_mode", MODES)
def test_vector_env_equals_single_envs(action_mode):
    n = 4
    venv = gym.make_vec(
        ID, num_envs=n, vectorization_mode="vector_entry_point", action_mode=action_mode
    )
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    singles = [gym.make(ID, action_mode=action_mode) for _ in range(n)]
    obs, _ = venv.reset(seed=10)
    for i, env in enumerate(singles):
        # The single env draws the same threefry numbers in NumPy (envs.host_random); its float32
        # start state agrees with XLA's to rounding.
        np.testing.assert_allclose(env.reset(seed=10 + i)[0], obs[i], rtol=1e-6, atol=1e-6)
    venv.action_space.seed(0)
    needs_reset, episodes = [False] * n, 0
    for _ in range(300):
        actions = venv.action_space.sample()
        obs, rewards, terminated, truncated, _ = venv.step(actions)
        for i, env in enumerate(singles):
            if needs_reset[i]:
                o, r, te, tr = env.reset()[0], 0.0, False, False
            else:
                a = (
                    {k: v[i] for k, v in actions.items()}
                    if isinstance(actions, dict)
                    else actions[i]
                )
                o, r, te, tr, _ = env.step(a)
            # Host (NumPy float32) and XLA arithmetic agree to rounding, not always bit for bit.
            np.testing.assert_allclose(o, obs[i], atol=1e-3)
            np.testing.assert_allclose(r, rewards[i], atol=1e-3)
            assert (te, tr) == (terminated[i], truncated[i])
            needs_reset[i] = te or tr
            episodes += needs_reset[i]
    assert episodes >= 5  # the comparison crossed several autoresets


def test_vector_env_pixels_match_single_envs():
    """obs_mode="pixels" in the jitted vector env (params traced) draws the single env's frames."""
    n = 3
    venv = gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", obs_mode="pixels")
    singles = [gym.make(ID, obs_mode="pixels") for _ in range(n)]
    obs, _ = venv.reset(seed=4)
    assert obs.shape == (n, 64, 64, 3) and obs.dtype == np.uint8
    for i, env in enumerate(singles):
        assert (env.reset(seed=4 + i)[0] != obs[i]).any(axis=-1).sum() <= 4
    venv.action_space.seed(1)
    for _ in range(20):
        actions = venv.action_space.sample()
        obs, _, terminated, truncated, _ = venv.step(actions)
        assert not (terminated | truncated).any()
        for i, env in enumerate(singles):
            frame = env.step(actions[i])[0]
            assert venv.single_observation_space.contains(obs[i])
            # States agree to float rounding, so a pixel on a disc's edge may flip.
            assert (frame != obs[i]).any(axis=-1).sum() <= 4


def test_vector_step_compiles_once():
    venv = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    before = _jit_step._cache_size()
    for _ in range(20):
        venv.step(venv.action_space.sample())
    venv.reset(seed=1)
    venv.step(venv.action_space.sample())
    assert _jit_step._cache_size() == before


def test_bad_actions_raise_clear_errors():
    env = gym.make(ID)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0], np.float32))
    discrete = gym.make(ID, action_mode="discrete")
    discrete.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        discrete.step(9)
    hybrid = gym.make(ID, action_mode="hybrid")
    hybrid.reset(seed=0)
    with pytest.raises(ValueError, match="fire"):
        hybrid.step({"fire": 2, "angle": np.zeros(1, np.float32)})
    venv = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        venv.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="obs_mode"):
        gym.make(ID, obs_mode="rgb")
    with pytest.raises(TypeError, match="unexpected keyword argument .*unknown SpaceshipParams"):
        gym.make(ID, gravity=3.0)


def test_out_of_range_continuous_action_is_clipped():
    a, b = gym.make(ID), gym.make(ID)
    a.reset(seed=3)
    b.reset(seed=3)
    np.testing.assert_array_equal(a.step(np.array([7.0, 0.0]))[0], b.step(np.array([1.0, 0.0]))[0])


def test_state_option_round_trip_and_validation():
    env = gym.make(ID)
    env.reset(seed=4)
    for _ in range(5):
        env.step(np.array([0.2, 0.1], np.float32))
    saved = env.unwrapped.get_state()
    after = [env.step(np.array([0.5, -0.5], np.float32))[0] for _ in range(3)]
    obs, _ = env.reset(options={"state": saved})
    np.testing.assert_array_equal(obs, core.observe(saved, env.unwrapped.params))
    replay = [env.step(np.array([0.5, -0.5], np.float32))[0] for _ in range(3)]
    np.testing.assert_array_equal(np.stack(after), np.stack(replay))
    bad = dict(vars(saved))
    bad["targets"] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"targets must have shape \(3, 2\)"):
        env.reset(options={"state": bad})
    with pytest.raises(ValueError, match="missing"):
        env.reset(options={"state": {"position": np.zeros(2)}})


@pytest.fixture(scope="module")
def state_env():
    env = gym.make(ID).unwrapped
    env.reset(seed=4)
    return env, env.get_state()


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("planet_radius", -1.0, r"planet_radius must be > 0 \[m\]"),
        ("planet_radius", 0.0, r"planet_radius must be > 0"),
        ("surface_gravity", -3.0, r"surface_gravity must be >= 0 \[m/s\^2\]"),
        ("target_index", 1.7, r"target_index must be integer-valued, in \[0, 3\]"),
        ("target_index", 4, r"target_index must be in \[0, 3\]"),
        ("target_index", -1, r"target_index must be in \[0, 3\]"),
        ("time", -5, r"time must be >= 0"),
        ("time", 2.5, r"time must be integer-valued"),
        ("time", 2**40, r"time must be integer-valued"),  # would wrap in int32
        ("thrust", [0.9, 0.9], r"thrust must be a command of norm <= 1"),
        ("position", [1e39, 0.0], r"position must be within the range of float32"),
        ("velocity", [True, False], r"velocity must be numbers"),
    ],
)
def test_state_option_rejects_impossible_values(state_env, field, value, match):
    env, state = state_env
    with pytest.raises(ValueError, match=r"options\['state'\]\." + match):
        env.reset(options={"state": state.replace(**{field: np.asarray(value)})})


def test_state_option_accepts_the_edges_of_the_valid_ranges(state_env):
    env, state = state_env
    edge = state.replace(
        surface_gravity=np.float32(0.0),
        target_index=np.float64(3.0),  # an integer value in a float: all targets visited
        time=np.int64(7),
        thrust=np.array([np.cos(0.3), np.sin(0.3)], np.float32),
    )
    obs, _ = env.reset(options={"state": edge})
    assert env.observation_space.contains(obs) and obs[12] == 0.0
    restored = env.get_state()
    assert restored.target_index.dtype == np.int32 and restored.target_index == 3
    assert restored.time.dtype == np.int32 and restored.time == 7


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), min_size=1, max_size=30),
)
def test_observations_stay_in_their_space(seed, actions):
    env = gym.make(ID)
    obs, _ = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(np.array(action, np.float32))
        assert env.observation_space.contains(obs) and np.isfinite(reward)
        if terminated:
            break


def test_random_policy_scores_clearly_negative():
    env = gym.make(ID)
    env.action_space.seed(0)
    returns = []
    for episode in range(30):
        env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += reward
            done = terminated or truncated
        returns.append(total)
    assert np.mean(returns) < -20


def test_render_rgb_array_and_pixels():
    env = gym.make(ID, render_mode="rgb_array", obs_mode="pixels")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (512, 512, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 4  # planet, targets, ship, text
    state = env.unwrapped.get_state()
    # The planet's centre pixel has the planet's colour (row 0 is the top: y is flipped).
    size, half = 64, 10.0
    col = int((state.planet_position[0] + half) / (2 * half) * size)
    row = int((half - state.planet_position[1]) / (2 * half) * size)
    np.testing.assert_array_equal(obs[row, col], [160, 115, 70])
    env.close()
