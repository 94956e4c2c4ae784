"""DISTGBP's data stages: the model's buffer labelled by GBP and DAgger in the learned model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from planners import distill, gbp, labels, relax
from world_models import trainer

GOAL = jnp.asarray([0.5, -0.3])


def _toward_goal(model_params, obs, action):
    """A 2-D point moved by 0.2 * action; reward -squared distance to GOAL."""
    next_obs = obs + model_params * action
    return next_obs, -jnp.sum((next_obs - GOAL) ** 2)


def _doubling(model_params, obs, action):
    return obs * model_params + 0.0 * jnp.sum(action), jnp.zeros(())


def test_imagine_keeps_finite_states_within_the_widened_reference_range():
    student = distill.DistilledPolicy(relax.Continuous(2), 2, (4,))
    params = student.init(jax.random.key(0), np.zeros((4, 2), np.float32))
    starts = np.array([[0.1, 0.1], [0.4, -0.4], [np.nan, 0.0]], np.float32)
    reference = np.array([[-1.0, -1.0], [1.0, 1.0]], np.float32)  # widened to [-2, 2]
    visited = labels.imagine(student, params, _doubling, 2.0, starts, 3, reference)
    # 0.2, 0.4, 0.8 from the first start; 0.8, 1.6 (3.2 leaves the range) from the second.
    np.testing.assert_allclose(
        visited, [[0.2, 0.2], [0.4, 0.4], [0.8, 0.8], [0.8, -0.8], [1.6, -1.6]], rtol=1e-6
    )


def test_segments_pick_evenly_spaced_runs_of_consecutive_steps():
    index, starts = labels.segments(10, 20, 3)
    np.testing.assert_array_equal(index, np.arange(10))
    np.testing.assert_array_equal(starts, np.arange(10) == 0)
    # Runs of 3, 3, 1 steps; the 93 unpicked steps split 46 / 47 (46.5 rounds to even).
    index, starts = labels.segments(100, 7, 3)
    np.testing.assert_array_equal(index, [0, 1, 2, 49, 50, 51, 99])
    np.testing.assert_array_equal(starts, [1, 0, 0, 1, 0, 0, 1])
    # Two runs of 25 do not fit in 40 steps side by side: 25 + 5, distinct and increasing.
    index, starts = labels.segments(40, 30, 25)
    np.testing.assert_array_equal(index, [*range(25), *range(35, 40)])
    np.testing.assert_array_equal(np.flatnonzero(starts), [0, 25])


def test_imagined_rollouts_feed_the_model_the_executed_discrete_actions():
    student = distill.DistilledPolicy(relax.Discrete(3), 2, (8,))
    params = student.init(jax.random.key(3), np.random.default_rng(0).normal(size=(16, 2)))
    table = jnp.asarray([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]])

    def moved(model_params, obs, action):  # a one-hot action moves by one row of the table
        return obs + action @ model_params, jnp.zeros(())

    start = np.array([[0.3, -0.2]], np.float32)
    reference = np.array([[-5.0, -5.0], [5.0, 5.0]], np.float32)
    visited = labels.imagine(student, params, moved, table, start, 3, reference)
    expected, obs = [], jnp.asarray(start[0])
    for _ in range(3):
        obs = obs + table[int(student.act(params, obs))]
        expected.append(obs)
    np.testing.assert_allclose(visited, np.stack(expected), rtol=1e-6)


def test_label_compiles_once_for_any_number_of_states():
    traces = []

    def counted(model_params, obs, action):
        traces.append(1)  # runs only while jax traces
        return _toward_goal(model_params, obs, action)

    config = gbp.GBPConfig(horizon=2, n_iterations=2, n_restarts=1)
    labeller = labels.make_labeller(config, relax.Continuous(2), counted)
    for n in (3, 5, 8, 11):
        obs = np.zeros((n, 2), np.float32)
        targets = labels.label(labeller, 0.2, config, relax.Continuous(2), obs,
                               jax.random.key(0), 8)  # fmt: skip
        assert targets.shape == (n, 2)
    after_first = len(traces)
    labels.label(labeller, 0.2, config, relax.Continuous(2), np.zeros((2, 2), np.float32),
                 jax.random.key(0), 8)  # fmt: skip
    assert len(traces) == after_first > 0
    assert labeller._cache_size() == 1


def test_warm_started_labels_carry_the_optimisation_along_a_trajectory():
    # One Adam step per state: a cold plan barely moves, a plan warm-started from the previous
    # step's keeps improving while the point stays put, as receding-horizon GBP does.
    config = gbp.GBPConfig(horizon=3, n_iterations=1, n_restarts=1, learning_rate=0.3)
    points = np.array([[-0.5, 0.5], [0.9, 0.6]], np.float32)
    obs = np.broadcast_to(points, (8, 2, 2)).copy()  # (T, B, D): each point held for 8 steps
    continuous = relax.Continuous(2)
    labeller = labels.make_trajectory_labeller(config, continuous, _toward_goal)
    starts = np.arange(8) == 0
    warm = labels.label_trajectories(labeller, 0.2, obs, starts, jax.random.key(0))
    assert warm.obs.shape == (16, 2) and warm.target.shape == (16, 2)
    best = labels.label(
        labels.make_labeller(gbp.GBPConfig(horizon=3, n_iterations=60, n_restarts=1,
                                           learning_rate=0.3), continuous, _toward_goal),
        0.2, gbp.GBPConfig(horizon=3), continuous, points, jax.random.key(1), 2,
    )  # fmt: skip
    first, last = warm.target[:2], warm.target[-2:]  # step 0 is a cold plan
    np.testing.assert_array_less(
        np.linalg.norm(last - best, axis=1), 0.5 * np.linalg.norm(first - best, axis=1)
    )


@pytest.mark.parametrize("layout", ["flat", "trajectories"])
def test_distill_from_buffer_and_imagined_dagger_takes_no_env_steps_and_learns(layout):
    config = distill.DistillConfig(
        hidden_sizes=(32,),
        expert_steps=0,
        buffer_states=300,
        dagger_rounds=2,
        imagined_starts=50,
        imagined_horizon=4,
        label_chunk=200,
    )
    planner = gbp.GBPConfig(horizon=3, n_iterations=15, n_restarts=1, learning_rate=0.3)
    buffer = np.random.default_rng(0).uniform(-1, 1, (400, 2)).astype(np.float32)
    if layout == "trajectories":  # 300 states wanted: 15 steps of 20 envs, labelled warm
        buffer = buffer.reshape(20, 20, 2)
    result = distill.distill(
        config,
        trainer.TrainerConfig(batch_size=32, max_epochs=30, patience=30),
        None,  # no env: neither expert rollouts nor env DAgger are asked for
        relax.Continuous(2),
        planner,
        _toward_goal,
        0.2,
        jax.random.key(0),
        log=None,
        buffer_obs=buffer,
    )
    assert result.env_steps == 0
    examples = [h["examples"] for h in result.history]
    assert examples[0] == 300 and examples[0] < examples[1] < examples[2] <= 300 + 2 * 200
    # The student steers toward the goal from held-out points, as GBP does.
    test_obs = np.random.default_rng(1).uniform(-1, 1, (64, 2)).astype(np.float32)
    far = np.linalg.norm(test_obs - np.asarray(GOAL), axis=1) > 0.4
    actions = np.asarray(jax.vmap(result.student.act, (None, 0))(result.params, test_obs))
    direction = np.asarray(GOAL) - test_obs
    cosine = np.sum(actions * direction, 1) / (
        np.linalg.norm(actions, axis=1) * np.linalg.norm(direction, axis=1) + 1e-8
    )
    assert np.mean(cosine[far]) > 0.9


def test_dagger_rounds_never_validate_on_examples_an_earlier_round_trained_on(monkeypatch):
    fits = []
    real_fit = trainer.fit

    def recording_fit(loss_fn, params, data, config, **kwargs):
        fits.append((np.asarray(data.obs), np.asarray(kwargs["val_data"].obs)))
        return real_fit(loss_fn, params, data, config, **kwargs)

    monkeypatch.setattr(distill.trainer, "fit", recording_fit)
    buffer = np.random.default_rng(0).uniform(-1, 1, (200, 2)).astype(np.float32)
    distill.distill(
        distill.DistillConfig(hidden_sizes=(8,), buffer_states=200, dagger_rounds=2,
                              imagined_starts=40, imagined_horizon=3, label_chunk=128),
        trainer.TrainerConfig(batch_size=32, max_epochs=2, validation_fraction=0.2),
        None, relax.Continuous(2), gbp.GBPConfig(horizon=2, n_iterations=3, n_restarts=1),
        _toward_goal, 0.2, jax.random.key(0), log=None, buffer_obs=buffer,
    )  # fmt: skip
    assert len(fits) == 3
    trained_so_far = set()
    for train_obs, val_obs in fits:
        trained_so_far |= {tuple(row) for row in train_obs}
        assert not {tuple(row) for row in val_obs} & trained_so_far
        assert len(val_obs) >= 40  # a fifth of the 200 buffer states, plus each round's share
    assert len(fits[2][1]) > len(fits[0][1])


@pytest.mark.parametrize(
    "buffer, message",
    [
        (None, "nothing to learn from"),
        (np.zeros(5, np.float32), "buffer_obs: expected finite"),
        (np.full((4, 2), np.nan, np.float32), "8 non-finite"),
    ],
)
def test_distill_refuses_missing_or_bad_data(buffer, message):
    with pytest.raises(ValueError, match=message):
        _distill_without_env(distill.DistillConfig(expert_steps=0), buffer)


def _distill_without_env(config, buffer):
    """``distill`` on the toy goal model with no env, from ``buffer_obs``."""
    return distill.distill(
        config,
        trainer.TrainerConfig(),
        None,
        relax.Continuous(2),
        gbp.GBPConfig(horizon=2, n_iterations=1, n_restarts=1),
        _toward_goal,
        0.2,
        jax.random.key(0),
        log=None,
        buffer_obs=buffer,
    )


@pytest.mark.parametrize(
    "field, value", [("dagger_steps", 10), ("expert_steps", -1), ("imagined_horizon", 0)]
)
def test_distill_config_rejects_bad_budgets(field, value):
    with pytest.raises(ValueError, match=field):
        distill.DistillConfig(n_envs=50, **{field: value})


@pytest.mark.parametrize("field", ["dagger_steps", "expert_steps"])
def test_distill_refuses_env_steps_without_an_env_before_any_labelling(monkeypatch, field):
    def no_labelling(*args, **kwargs):
        raise AssertionError("labelled before checking env")

    monkeypatch.setattr(distill, "first_set", no_labelling)
    with pytest.raises(ValueError, match=rf"env: None, but DistillConfig.{field}=100"):
        _distill_without_env(
            distill.DistillConfig(n_envs=50, **{field: 100}), np.zeros((8, 2), np.float32)
        )
