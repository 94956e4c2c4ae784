import dataclasses
import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ids)
from envs.poke import checks, physics
from envs.poke.env import PokeEnv
from envs.poke.params import PokeParams

PARAMS = PokeParams(image_size=16)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"obs_mode": "state", "task": "goal"}, {"obs_mode": "image", "num_objects": 3}],
)
def test_check_env_passes(kwargs):
    env = gym.make("worldplan/Poke-v0", params=PARAMS, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)


def test_same_seed_same_episode_bit_for_bit():
    runs = []
    for _ in range(2):
        env = gym.make("worldplan/Poke-v0", params=PARAMS, task="goal")
        env.action_space.seed(3)
        obs, _ = env.reset(seed=7)
        trace = [obs]
        for _ in range(3):
            trace.append(env.step(env.action_space.sample())[0])
        runs.append(trace)
    for a, b in zip(*runs, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), speed=st.floats(-2.0, 2.0))
def test_state_round_trip_is_exact_and_steps_nothing(seed, speed):
    state = physics.sample_state(np.random.default_rng(seed), PARAMS)
    state = state._replace(velocity=np.full_like(state.velocity, speed))
    world = physics.build_space(PARAMS, state)
    got = physics.get_state(world)
    for a, b in zip(got, state, strict=True):
        np.testing.assert_array_equal(a, b)
    physics.set_state(world, got)
    for a, b in zip(physics.get_state(world), state, strict=True):
        np.testing.assert_array_equal(a, b)


def test_set_state_rejects_other_objects_and_nan():
    rng = np.random.default_rng(0)
    state = physics.sample_state(rng, PARAMS, num_objects=2)
    world = physics.build_space(PARAMS, state)
    with pytest.raises(ValueError, match="kind/half_size"):
        physics.set_state(world, physics.sample_state(rng, PARAMS, num_objects=3))
    bad = state._replace(pose=np.full_like(state.pose, np.nan))
    with pytest.raises(ValueError, match="state.pose"):
        physics.set_state(world, bad)


def test_env_pickles_and_continues_identically():
    env = PokeEnv(params=PARAMS, task="goal")
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    action = np.array([0.0, 0.0, 0.5, 0.2], np.float32)
    a, b = env.step(action), clone.step(action)
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    assert a[1] == b[1]


def single_box(x=0.0, y=0.0):
    return physics.PokeState(
        np.array([physics.BOX]), np.array([[0.05, 0.05]]), np.array([[x, y, 0.0]]), np.zeros((1, 3))
    )


def test_finger_moves_the_object_it_hits_along_the_poke():
    state = single_box()
    after = physics.transition(PARAMS, state, np.array([-0.15, 0.0, 0.0, 0.25]))
    dx, dy = after.pose[0, :2] - state.pose[0, :2]
    # contact after 0.15 - 0.05 - 0.015 = 0.085 m, then 0.165 m of pushing plus a short slide
    assert 0.15 < dx < 0.25 and abs(dy) < 0.01
    np.testing.assert_allclose(after.velocity, 0.0, atol=1e-6)  # at rest after settling


def test_finger_misses_an_object_it_does_not_reach():
    state = single_box()
    short = physics.transition(PARAMS, state, np.array([-0.2, 0.0, 0.0, 0.1]))
    away = physics.transition(PARAMS, state, np.array([-0.1, 0.0, np.pi, 0.3]))
    for after in (short, away):
        np.testing.assert_array_equal(after.pose, state.pose)


def test_reset_to_a_state_reproduces_a_transition():
    state = physics.sample_state(np.random.default_rng(5), PARAMS)
    start = np.clip(state.pose[0, :2] - [0.12, 0.0], -0.4, 0.4)
    action = np.array([*start, 0.0, 0.2], np.float32)
    env = PokeEnv(params=PARAMS, obs_mode="state")
    env.reset(seed=0, options={"state": state})
    _, _, _, _, info = env.step(action)
    expected = physics.transition(PARAMS, state, action.astype(np.float64))
    np.testing.assert_array_equal(info["state"].pose, expected.pose)


def test_goal_reward_is_negative_distance_and_success_terminates():
    action = np.array([-0.15, 0.0, 0.0, 0.3], np.float32)
    final = physics.transition(PARAMS, single_box(), action.astype(np.float64)).pose[0, :2]
    env = PokeEnv(params=PARAMS, obs_mode="state", task="goal")
    for offset, success in ((0.03, True), (0.05, False)):
        goal = final + [0.0, offset]
        env.reset(seed=0, options={"state": single_box(), "goal": goal})
        _, reward, terminated, _, info = env.step(action)
        np.testing.assert_array_equal(info["state"].pose[0, :2], final)
        assert reward == pytest.approx(-offset, abs=1e-9)
        assert terminated == success


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([0.0, 0.0, 0.0]), "shape"),
        (np.array([0.0, np.nan, 0.0, 0.1]), "finite"),
        (np.array([0.0, 0.0, 0.0, 0.5]), "outside"),
    ],
)
def test_bad_actions_raise(action, match):
    env = PokeEnv(params=PARAMS)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="obs_mode"):
        PokeEnv(obs_mode="pixels")
    with pytest.raises(ValueError, match="num_objects"):
        PokeEnv(num_objects=4)


def test_render_modes_headless():
    env = PokeEnv(params=PARAMS, render_mode="rgb_array", task="goal")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8 and frame.std() > 0
    human = PokeEnv(params=PARAMS, render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    human.close()


def test_image_shows_the_objects_where_they_are():
    env = PokeEnv(params=PokeParams(image_size=32), obs_mode="image")
    obs, _ = env.reset(seed=0, options={"state": single_box(0.2, 0.2)})
    image = obs["image"].astype(float)
    changed = np.abs(image - image[-1, 0]).sum(-1) > 30
    rows, cols = np.nonzero(changed)
    # x = 0.2 m -> column (0.2 + 0.4) * 40 = 24; y = 0.2 m -> row (0.4 - 0.2) * 40 = 8
    assert abs(cols.mean() - 24) < 1 and abs(rows.mean() - 8) < 1


def bad_state(**fields):
    """One box at the origin (valid), with ``fields`` replaced."""
    return single_box()._replace(**{k: np.asarray(v) for k, v in fields.items()})


FOUR = {"kind": [0, 1, 2, 0], "half_size": np.full((4, 2), 0.05)}
FOUR.update(
    pose=[[0, 0, 0], [0.2, 0.2, 0], [-0.2, -0.2, 0], [0.2, -0.2, 0]], velocity=np.zeros((4, 3))
)


@pytest.mark.parametrize(
    "fields, field",
    [
        (FOUR, "kind"),  # more objects than max_objects: was half-applied
        (
            {
                "kind": np.zeros(0, int),
                "half_size": np.zeros((0, 2)),
                "pose": np.zeros((0, 3)),
                "velocity": np.zeros((0, 3)),
            },
            "kind",
        ),  # no object: was IndexError, empty state
        ({"kind": [7]}, "kind"),  # was accepted
        ({"kind": [0.5]}, "kind"),
        ({"half_size": [[0.0, 0.0]]}, "half_size"),  # was a Chipmunk abort (exit 134)
        ({"half_size": [[-0.05, -0.05]]}, "half_size"),  # was a Chipmunk abort
        ({"half_size": [[np.nan, np.nan]]}, "half_size"),  # was a Chipmunk abort
        ({"half_size": [[0.5, 0.5]]}, "half_size"),  # was accepted, larger than the table allows
        ({"kind": [physics.DISK], "half_size": [[0.05, 0.06]]}, "half_size"),
        ({"half_size": np.full((2, 2), 0.05)}, "half_size"),
        ({"pose": [[5.0, 0.0, 0.0]]}, "pose"),  # was accepted, 5 m off the table
        ({"pose": [[0.0, np.inf, 0.0]]}, "pose"),
        ({"pose": [[0.45, 0.0, 0.0]]}, "pose"),  # was accepted: in the wall, off the table
        ({"velocity": [[3.0, 0.0, 0.0]]}, "velocity"),  # was accepted: fast enough to tunnel
        ({"velocity": [[0.0, 0.0, np.nan]]}, "velocity"),
        ({"velocity": np.zeros(3)}, "velocity"),
    ],
)
def test_rejected_state_names_the_field_and_leaves_the_env_unchanged(fields, field):
    env = PokeEnv(params=PARAMS, obs_mode="state", task="goal")
    env.reset(seed=4)
    before = pickle.loads(pickle.dumps(env))
    with pytest.raises(ValueError, match=rf"options\['state'\]\.{field}: expected"):
        env.reset(seed=9, options={"state": bad_state(**fields)})
    assert env.np_random.bit_generator.state == before.np_random.bit_generator.state
    np.testing.assert_array_equal(env.goal, before.goal)
    for a, b in zip(env.get_state(), before.get_state(), strict=True):
        np.testing.assert_array_equal(a, b)
    action = np.array([-0.3, 0.0, 0.0, 0.3], np.float32)
    x, y = env.step(action), before.step(action)
    np.testing.assert_array_equal(x[0]["objects"], y[0]["objects"])
    assert x[1] == y[1]


def test_state_and_options_of_the_wrong_type_raise_clearly():
    env = PokeEnv(params=PARAMS)
    as_tuple = tuple(single_box())
    with pytest.raises(TypeError, match=r"options\['state'\]: expected a PokeState"):
        env.reset(options={"state": as_tuple})
    with pytest.raises(ValueError, match=r"options\['state'\]\.kind: expected numbers"):
        env.reset(options={"state": bad_state(kind=["box"])})
    with pytest.raises(TypeError, match="options: expected a dict"):
        env.reset(options=[("state", single_box())])
    with pytest.raises(TypeError, match="params: expected a PokeParams"):
        PokeEnv(params={"gravity": 9.81})
    assert env.state is None
    with pytest.raises(RuntimeError, match="reset"):
        env.get_state()


def test_info_state_get_state_and_goal_are_copies():
    env = PokeEnv(params=PARAMS, obs_mode="state", task="goal")
    goal = np.array([0.1, 0.1])
    _, info = env.reset(seed=0, options={"state": single_box(), "goal": goal})
    for _ in range(2):
        expected = physics.copy_state(env.state)
        for state in (info["state"], env.get_state()):
            state.pose[:] = 0.3
            state.kind[:] = 2
        goal[:] = 0.0
        np.testing.assert_array_equal(env.goal, [0.1, 0.1])
        for a, b in zip(env.get_state(), expected, strict=True):
            np.testing.assert_array_equal(a, b)
        info = env.step(np.array([-0.2, 0.0, 0.0, 0.2], np.float32))[4]


def test_reset_to_get_state_and_goal_reproduces_the_future():
    env = PokeEnv(params=PARAMS, task="goal")
    env.reset(seed=11)
    env.step(np.array([0.0, 0.0, 0.3, 0.2], np.float32))
    copy = PokeEnv(params=PARAMS, task="goal")
    copy.reset(seed=99, options={"state": env.get_state(), "goal": env.goal})
    for action in ([0.1, -0.1, 1.0, 0.3], [-0.2, 0.1, -2.0, 0.25]):
        a = env.step(np.array(action, np.float32))
        b = copy.step(np.array(action, np.float32))
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key])
        assert a[1:4] == b[1:4] and a[4]["distance"] == b[4]["distance"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("table_friction", -0.1),  # was a Chipmunk abort (negative joint force)
        ("gravity", -9.81),  # was a Chipmunk abort
        ("contact_friction", -0.5),  # was a Chipmunk abort
        ("object_density", 0.0),  # was a bare pymunk AssertionError
        ("finger_radius", -0.01),  # was accepted
        ("finger_max_force", 0.0),
        ("finger_mass", np.inf),
        ("collision_slop", -0.001),
        ("elasticity", 1.5),
        ("time_step", 0.0),
        ("settle_time", -1.0),
        ("finger_speed", np.nan),
        ("goal_distance_range", (0.2, 0.1)),
        ("object_half_size_range", (0.0, 0.05)),
        ("object_half_size_range", (0.04, 0.3)),
        ("min_objects", 4),
        ("max_objects", 0),
        ("image_size", 4),
        ("placement_attempts", 0),
    ],
)
def test_params_out_of_range_name_the_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"PokeParams\.{field}=.* out of range: expected"):
        PokeParams(**{field: value})


def test_params_at_their_limits_are_accepted():
    params = PokeParams(gravity=0.0, table_friction=0.0, elasticity=1.0, settle_time=0.0)
    env = PokeEnv(params=dataclasses.replace(params, image_size=16), obs_mode="state")
    env.reset(seed=0)
    env.step(np.array([0.0, 0.0, 0.0, 0.1], np.float32))


def moving_object(kind, half_size, velocity):
    """One object at (0.3, 0) m moving with ``velocity`` (vx [m/s], vy [m/s], spin [rad/s])."""
    return physics.PokeState(
        np.array([kind]),
        np.array([[half_size, half_size]]),
        np.array([[0.3, 0.0, 0.0]]),
        np.array([velocity], dtype=np.float64),
    )


def test_states_faster_than_the_speed_bound_are_refused_and_slower_ones_stay_on():
    bound = checks.speed_bound(PARAMS)
    for kind in (physics.BOX, physics.DISK, physics.TRIANGLE):
        state = moving_object(kind, 0.04, (bound, 0.0, 0.0))
        checks.check_state(state, PARAMS)
        after = physics.transition(PARAMS, state, np.array([-0.35, -0.35, 0.0, 0.0]))
        assert np.all(np.abs(after.pose[:, :2]) <= PARAMS.table_half_size), after.pose
    too_fast = moving_object(physics.BOX, 0.04, (1.01 * bound, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"state\.velocity: expected \|v\|"):
        checks.check_state(too_fast, PARAMS)
    spinning = moving_object(physics.DISK, 0.05, (0.0, 0.0, 1.01 * bound / 0.05))
    with pytest.raises(ValueError, match=r"state\.velocity"):
        checks.check_state(spinning, PARAMS)
