"""Bad input to the spaceship, driving and poke envs is rejected with errors that name it.

Spaceship: one action validator shared by the single and vector envs, range-checked params, and
the ``max_steps`` time limit honoured alike by both envs. Driving: params that contradict each
other, impossible ``reset(options={"state": ...})`` values, and lane offsets inside their bounds.
Poke: ``reset(options={"goal": ...})``.
"""

import dataclasses
import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.poke.env import PokeEnv
from envs.poke.params import PokeParams
from envs.spaceship.env import SpaceshipEnv
from envs.spaceship.functional import make_jax
from envs.spaceship.params import SpaceshipParams, check_params
from envs.spaceship.spaces import check_action

ID = "worldplan/Spaceship-v0"
MODES = ["continuous", "discrete", "hybrid"]
ANGLE = np.zeros(1, np.float32)


def make_vec(num_envs=2, **kwargs):
    return gym.make_vec(ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


@pytest.fixture(scope="module")
def hybrid_envs():
    single = gym.make(ID, action_mode="hybrid")
    single.reset(seed=0)
    vector = make_vec(action_mode="hybrid")
    vector.reset(seed=0)
    return single, vector


@pytest.mark.parametrize("fire", [0.7, 1.9, -1.0, 2, float("nan"), float("inf")])
def test_hybrid_fire_other_than_0_or_1_is_rejected_by_both_envs(hybrid_envs, fire):
    single, vector = hybrid_envs
    with pytest.raises(ValueError, match=rf"action\['fire'\] must be exactly 0 or 1, got {fire!r}"):
        single.step({"fire": fire, "angle": ANGLE})
    batch = {"fire": np.array([1, fire]), "angle": np.zeros((2, 1), np.float32)}
    with pytest.raises(ValueError, match=rf"actions\['fire'\] .* got {fire!r} at index 1"):
        vector.step(batch)


@settings(max_examples=60, deadline=None)
@given(fire=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)))
def test_single_and_vector_validators_agree_on_fire(fire):
    params = SpaceshipParams(action_mode="hybrid")
    outcomes = []
    for action, num_envs in (
        ({"fire": fire, "angle": ANGLE}, None),
        ({"fire": np.array([fire, 0]), "angle": np.zeros((2, 1))}, 2),
    ):
        try:
            check_action(action, params, num_envs)
            outcomes.append(True)
        except ValueError:
            outcomes.append(False)
    assert outcomes == [fire in (0, 1)] * 2


@pytest.mark.parametrize("mode", ["continuous", "hybrid"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_thrust_or_angle_is_rejected_by_both_envs(mode, bad):
    single = gym.make(ID, action_mode=mode)
    single.reset(seed=0)
    vector = make_vec(action_mode=mode)
    vector.reset(seed=0)
    if mode == "continuous":
        one, batch = np.array([0.0, bad], np.float32), np.array([[0, 0], [bad, 0]], np.float32)
    else:
        one = {"fire": 1, "angle": np.array([bad], np.float32)}
        batch = {"fire": np.ones(2, int), "angle": np.array([[0.0], [bad]], np.float32)}
    with pytest.raises(ValueError, match=rf"NaN or inf: {bad!r}"):
        single.step(one)
    with pytest.raises(ValueError, match=rf"NaN or inf: {bad!r} at index \(?1"):
        vector.step(batch)


@pytest.mark.parametrize("mode", MODES)
def test_valid_actions_pass_through_unchanged(mode):
    """The validator returns the same dtypes and values, one action or a batch, as before."""
    params = SpaceshipParams(action_mode=mode)
    space = gym.make(ID, action_mode=mode).action_space
    space.seed(3)
    actions = [space.sample() for _ in range(4)]
    if mode == "hybrid":
        actions[0]["fire"] = True
        actions[1]["fire"] = 1.0
        batch = {k: np.stack([a[k] for a in actions]) for k in ("fire", "angle")}
    else:
        batch = np.stack(actions)
    checked = check_action(batch, params, num_envs=4)
    for i, action in enumerate(actions):
        one = check_action(action, params)
        if mode == "hybrid":
            assert one["fire"].dtype == np.int32 and one["angle"].dtype == np.float32
            assert int(one["fire"]) == int(action["fire"])
            np.testing.assert_array_equal(one["angle"], action["angle"])
            for key in one:
                assert one[key].dtype == checked[key].dtype
                np.testing.assert_array_equal(one[key], checked[key][i])
        else:
            assert one.dtype == {"continuous": np.float32, "discrete": np.int32}[mode]
            np.testing.assert_array_equal(one, np.asarray(action))
            assert one.dtype == checked.dtype
            np.testing.assert_array_equal(one, checked[i])


def test_fire_true_and_one_point_zero_step_like_fire_one():
    results = []
    for fire in (1, True, 1.0, np.int64(1)):
        env = gym.make(ID, action_mode="hybrid")
        env.reset(seed=2)
        results.append(env.step({"fire": fire, "angle": np.array([0.3], np.float32)}))
    for other in results[1:]:
        np.testing.assert_array_equal(other[0], results[0][0])
        assert other[1:4] == results[0][1:4]


BAD_PARAMS = [
    ("substeps", 0),
    ("substeps", 2.5),
    ("num_targets", 0),
    ("max_steps", -1),
    ("pixel_size", 0),
    ("dt", -0.1),
    ("dt", float("nan")),
    ("arena_half_width", float("inf")),
    ("planet_radius_range", (2.0, 1.0)),
    ("planet_radius_range", (0.0, 1.0)),
    ("planet_radius_range", (1.0,)),
    ("surface_gravity_range", (-1.0, 2.0)),
    ("start_altitude_range", (5.0, 2.0)),
    ("target_altitude_range", (1.0, float("nan"))),
    ("start_speed_noise", 1.5),
    ("target_tolerance", 0.0),
    ("fuel_cost", -0.05),
    ("max_thrust", "strong"),
]


@pytest.mark.parametrize("name, value", BAD_PARAMS)
def test_params_out_of_range_raise_naming_field_value_and_range(name, value):
    pattern = rf"SpaceshipParams\.{name}=.* is out of range: expected"
    with pytest.raises(ValueError, match=pattern):
        gym.make(ID, **{name: value})
    with pytest.raises(ValueError, match=pattern):
        make_vec(**{name: value})
    with pytest.raises(ValueError, match=pattern):
        make_jax(params=SpaceshipParams().replace(**{name: value}))


def test_every_params_field_is_range_checked():
    defaults = SpaceshipParams()
    assert check_params(defaults) is defaults
    for field in dataclasses.fields(SpaceshipParams):
        value = getattr(defaults, field.name)
        if isinstance(value, str):
            bad = "bogus"
        elif isinstance(value, int):
            bad = 0
        elif isinstance(value, tuple):
            bad = value[::-1]  # (high, low)
        else:
            bad = -math.inf
        with pytest.raises(ValueError, match=rf"SpaceshipParams\.{field.name}="):
            check_params(defaults.replace(**{field.name: bad}))


def test_params_check_leaves_pytree_use_alone():
    params = SpaceshipParams()
    # JAX rebuilds params with None or axis numbers as leaves; dt=0 there must not raise.
    axes = jax.tree_util.tree_map(lambda _: None, params).replace(dt=0)
    batched = params.replace(dt=jnp.array([0.1, 0.05]))
    out = jax.vmap(lambda p: check_params(p).dt * 2, in_axes=(axes,))(batched)
    np.testing.assert_allclose(out, [0.2, 0.1])
    assert jax.jit(lambda p: check_params(p).dt)(params) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"SpaceshipParams\.dt="):
        check_params(params.replace(dt=np.array([0.1, -0.1])))


def episode_length(env, action):
    """Steps from reset until the episode ends; returns (steps, terminated, truncated)."""
    env.reset(seed=1)
    for step in range(1, 1000):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            return step, terminated, truncated
    raise AssertionError("no episode end in 1000 steps")


def vector_episode_length(venv, action):
    venv.reset(seed=1)
    for step in range(1, 1000):
        _, _, terminated, truncated, _ = venv.step(np.stack([action] * venv.num_envs))
        if np.any(terminated | truncated):
            return step, bool(terminated.any()), bool(truncated.all())
    raise AssertionError("no episode end in 1000 steps")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"max_steps": 5}, 5),
        ({"max_steps": 5, "max_episode_steps": 3}, 3),
        ({"max_steps": 7, "max_episode_steps": 9}, 7),
        ({"max_steps": 6, "max_episode_steps": -1}, 6),
    ],
)
def test_max_steps_truncates_single_and_vector_env_at_the_same_step(kwargs, expected):
    coast = np.zeros(2, np.float32)
    single = gym.make(ID, **kwargs)
    assert episode_length(single, coast) == (expected, False, True)
    # After the truncation the next episode runs its full length again, flagged once.
    assert episode_length(single, coast) == (expected, False, True)
    assert vector_episode_length(make_vec(**kwargs), coast) == (expected, False, True)


def test_unwrapped_single_env_honours_max_steps():
    assert episode_length(SpaceshipEnv(max_steps=4), np.zeros(2, np.float32)) == (4, False, True)


def test_vector_env_rejects_bad_max_episode_steps():
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_vec(max_episode_steps=0)


@pytest.fixture(scope="module")
def goal_env():
    return PokeEnv(params=PokeParams(image_size=16), obs_mode="state", task="goal")


@pytest.mark.parametrize(
    "goal, match",
    [
        ([np.nan, 0.0], "finite"),
        ([0.0, np.inf], "finite"),
        ([0.1, 0.1, 0.1], r"shape \(2,\), got \(3,\)"),
        ([[0.1, 0.1]], r"shape \(2,\), got \(1, 2\)"),
        (0.1, r"shape \(2,\), got \(\)"),
        ([0.5, 0.0], r"on the table \[-0\.4, 0\.4\]\^2"),
        ([0.0, -0.41], "on the table"),
        (["a", "b"], "2 numbers"),
    ],
)
def test_poke_goal_option_is_validated(goal_env, goal, match):
    with pytest.raises(ValueError, match=r"options\['goal'\] .*" + match):
        goal_env.reset(seed=0, options={"goal": goal})


def test_poke_goal_option_on_the_table_edge_is_accepted(goal_env):
    obs, info = goal_env.reset(seed=0, options={"goal": [0.4, -0.4]})
    np.testing.assert_array_equal(obs["goal"], np.array([0.4, -0.4], np.float32))
    assert goal_env.observation_space.contains(obs) and np.isfinite(info["distance"])


def test_max_episode_steps_alone_sets_the_limit_past_the_default_max_steps():
    single = gym.make(ID, max_episode_steps=300)
    single.reset(seed=0)
    state = single.unwrapped._state.replace(time=np.int32(199))  # one step before 200
    single.reset(options={"state": state})
    _, _, terminated, truncated, _ = single.step(np.zeros(2, np.float32))
    assert not terminated and not truncated  # the default max_steps (200) does not cut it
    assert make_vec(max_episode_steps=300).params.max_steps == 300
    assert make_vec(max_episode_steps=300, max_steps=250).params.max_steps == 250
