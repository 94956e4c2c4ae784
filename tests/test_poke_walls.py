"""Objects stay on the poke table: the finger cannot squeeze them through the walls."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.poke import dataset, physics
from envs.poke.env import PokeEnv
from envs.poke.params import PokeParams

PARAMS = PokeParams(image_size=16)
EDGE = PARAMS.table_half_size
MAX_DEPTH = 0.005
"""How far an object may reach past the table edge into a wall [m]: 5 collision slops of 1 mm
(measured at most 2.3 mm in 20,000 pokes; the kinematic finger reached 194 mm)."""


def depth_past_edge(state: physics.PokeState) -> float:
    """Farthest any point of any object reaches past the table edge [m] (< 0: on the table)."""
    reach = []
    for kind, half_size, pose in zip(state.kind, state.half_size, state.pose, strict=True):
        vertices = physics.shape_vertices(int(kind), half_size)
        if vertices is None:
            reach.append(np.abs(pose[:2]) + half_size[0])
            continue
        c, s = np.cos(pose[2]), np.sin(pose[2])
        reach.append(np.abs(vertices @ np.array([[c, s], [-s, c]]) + pose[:2]).max(0))
    return float(np.max(reach)) - EDGE


def assert_on_the_table(state: physics.PokeState) -> None:
    assert np.all(np.abs(state.pose[:, :2]) <= EDGE), state.pose
    assert depth_past_edge(state) <= MAX_DEPTH, depth_past_edge(state)


def one_object(kind, half_size, x, y, angle=0.0, velocity=(0.0, 0.0, 0.0)):
    return physics.PokeState(
        np.array([kind]),
        np.array([[half_size, half_size]]),
        np.array([[x, y, angle]]),
        np.array([velocity], dtype=np.float64),
    )


@pytest.mark.parametrize(
    "state, action",
    [
        # old kinematic finger: centre at 0.613 m, outside the observation space (then 0.5 m)
        (one_object(physics.BOX, 0.05, 0.32, 0.34), [0.3, 0.25, 1.2, 0.3]),
        # old: 0.562 m, a straight push along +x
        (one_object(physics.BOX, 0.07, 0.34, 0.3), [0.25, 0.25, 0.0, 0.3]),
        # old: 0.586 m, a small triangle into the corner
        (one_object(physics.TRIANGLE, 0.04, 0.3, 0.32, 0.5), [0.25, 0.3, 0.4, 0.3]),
    ],
)
def test_contrived_pushes_into_walls_keep_the_object_on_the_table(state, action):
    after = physics.transition(PARAMS, state, np.array(action))
    assert_on_the_table(after)


def test_a_box_pushed_into_a_wall_stops_against_it():
    state = one_object(physics.BOX, 0.05, 0.25, 0.0)
    after = physics.transition(PARAMS, state, np.array([0.15, 0.0, 0.0, 0.3]))
    # the finger reaches the box after 0.035 m and would push it 0.265 m, to 0.515 m; the wall
    # stops it with its face on the table edge, x = 0.4 - 0.05 = 0.35 m, not turned (pymunk
    # leaves up to collision_slop of overlap, and the finger presses a little more in)
    np.testing.assert_allclose(after.pose[0], [0.35, 0.0, 0.0], atol=0.002)


def test_the_finger_still_pushes_a_row_of_the_heaviest_objects_at_full_speed():
    pose = [[-0.25, 0.0, 0.0], [-0.1, 0.0, 0.0], [0.05, 0.0, 0.0]]  # 1 cm gaps
    state = physics.PokeState(
        np.full(3, physics.BOX), np.full((3, 2), 0.07), np.array(pose), np.zeros((3, 3))
    )
    after = physics.transition(PARAMS, state, np.array([-0.35, 0.0, 0.0, 0.2]))
    # contact after 0.35 - 0.25 - 0.07 - 0.015 = 0.015 m, so the first box is pushed 0.185 m at
    # the finger's 0.5 m/s (each next box 1 cm less) if the 20 N finger beats the row's 4.6 N of
    # friction; then all slide v^2 / (2 mu g) = 0.25 / (2 * 0.4 * 9.81) = 0.032 m
    expected = 0.185 - np.array([0.0, 0.01, 0.02]) + 0.5**2 / (2 * 0.4 * 9.81)
    np.testing.assert_allclose(after.pose[:, 0] - state.pose[:, 0], expected, atol=0.002)


@st.composite
def wall_pokes(draw):
    """A random table, object 0 moved against a wall (or into a corner), poked outward."""
    seed = draw(st.integers(0, 2**32 - 1))
    state = physics.sample_state(np.random.default_rng(seed), PARAMS)
    kind, half_size = int(state.kind[0]), state.half_size[0]
    radius = float(np.hypot(*half_size)) if kind == physics.BOX else float(half_size[0])
    wall = draw(st.sampled_from([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1)]))
    outward = np.array(wall, dtype=np.float64)
    pose = state.pose.copy()
    gap = draw(st.floats(0.0, 0.04))
    pose[0, :2] = np.where(outward != 0, outward * (EDGE - radius - gap), pose[0, :2])
    angle = np.arctan2(outward[1], outward[0]) + draw(st.floats(-0.7, 0.7))
    direction = np.array([np.cos(angle), np.sin(angle)])
    aim = pose[0, :2] + np.array([draw(st.floats(-0.04, 0.04)) for _ in range(2)])
    start = np.clip(aim - direction * draw(st.floats(0.0, 0.15)), -EDGE, EDGE)
    length = draw(st.floats(0.05, PARAMS.max_poke_length))
    return state._replace(pose=pose), np.array([*start, angle, length])


@settings(max_examples=150, deadline=None)
@given(case=wall_pokes())
def test_pokes_into_walls_keep_every_object_on_the_table(case):
    state, action = case
    assert_on_the_table(physics.transition(PARAMS, state, action))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), aimed=st.booleans())
def test_random_transitions_keep_every_object_on_the_table(seed, aimed):
    rng = np.random.default_rng(seed)
    state = physics.sample_state(rng, PARAMS)
    action, _ = dataset.sample_poke(rng, state, PARAMS, aimed_fraction=float(aimed))
    assert_on_the_table(physics.transition(PARAMS, state, action))


def test_an_episode_of_wall_pokes_stays_in_the_observation_space():
    # a box, a disk and a triangle 5 mm from three walls, each poked straight into its wall
    state = physics.PokeState(
        np.array([physics.BOX, physics.DISK, physics.TRIANGLE]),
        np.full((3, 2), 0.05),
        np.array([[0.345, 0.0, 0.0], [-0.345, 0.1, 0.0], [0.0, -0.37, 0.0]]),
        np.zeros((3, 3)),
    )
    pokes = [[0.25, 0.0, 0.0], [-0.25, 0.1, np.pi], [0.0, -0.25, -np.pi / 2]]
    env = PokeEnv(params=PARAMS, obs_mode="state")
    env.reset(seed=0, options={"state": state})
    for start_x, start_y, angle in pokes * 2:
        action = np.array([start_x, start_y, angle, PARAMS.max_poke_length], np.float32)
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)
        assert_on_the_table(env.get_state())
