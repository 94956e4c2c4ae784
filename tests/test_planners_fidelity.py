"""planners.fidelity: a model compared with the truth as a planner sees it, on linear systems.

The truth is ``x' = A x + B a`` with reward ``w . x'``; models differ from it in known ways, so
each figure has a closed form: a constant bias ``c`` in the step shifts the h-step prediction by
``sum_{i<h} A^i c`` and the return by a constant, and leaves the gradient unchanged; a flipped
action sign flips the gradient and reverses the ranking of plans.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.common.evaluate import run_episode, visited_states
from envs.jax_env import make_jax_env
from planners import fidelity, mpc
from planners import relax as relax_lib
from world_models import data as data_lib

A = np.array([[1.0, 0.1], [0.0, 0.9]], np.float32)
B = np.array([[0.0], [0.5]], np.float32)
W = np.array([1.0, 0.2], np.float32)
BIAS = np.array([0.05, -0.02], np.float32)
RELAX = relax_lib.Continuous(1)
N, K, H = 6, 5, 4


def linear_step(params, x, a):
    """The linear system with ``params = (A, B, bias)``; reward ``W . x'``."""
    a_matrix, b_matrix, bias = params
    nxt = a_matrix @ x + b_matrix @ a + bias
    return nxt, W @ nxt


def observe(params, state):
    return state


TRUTH = (jnp.asarray(A), jnp.asarray(B), jnp.zeros(2))


def _run(model_params, done_fn=None, seed=0):
    key_x, key_z = jax.random.split(jax.random.key(seed))
    states = jax.random.normal(key_x, (N, 2))
    z = 0.5 * jax.random.normal(key_z, (N, K, H, 1))
    run = fidelity.make_compare(
        RELAX, fidelity.Dynamics(linear_step), fidelity.Dynamics(linear_step, done_fn), observe
    )
    return run(model_params, TRUTH, states, z), states, z


def test_a_perfect_model_scores_perfectly():
    result, _, _ = _run(TRUTH)
    figures = fidelity.summarise(result, steps=(1, 2, H))
    assert all(abs(e) < 1e-10 for e in figures["relative_error"]["all"].values())
    assert figures["return_mae"] < 1e-5
    assert figures["rank_correlation"] == pytest.approx(1.0)
    assert figures["grad_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert figures["grad_cosine_positive"] == 1.0
    assert (figures["states"], figures["plans_per_state"]) == (N, K)


def test_a_biased_model_is_off_by_the_accumulated_bias_but_its_gradient_is_exact():
    result, _, _ = _run((jnp.asarray(A), jnp.asarray(B), jnp.asarray(BIAS)))
    offsets, offset = [], np.zeros(2)
    for _ in range(H):
        offset = A @ offset + BIAS  # the bias carried through the dynamics
        offsets.append(offset)
    offsets = np.stack(offsets)
    np.testing.assert_allclose(
        np.asarray(result.model_obs - result.true_obs), np.broadcast_to(offsets, (N, K, H, 2)),
        atol=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(
        np.asarray(result.model_return - result.true_return), (offsets @ W).sum(), rtol=1e-4
    )
    np.testing.assert_allclose(np.asarray(result.grad_cosine), 1.0, atol=1e-5)
    figures = fidelity.summarise(result, steps=(1, H))
    assert figures["rank_correlation"] == pytest.approx(1.0)  # a constant shift keeps the order
    for h in (1, H):
        change = np.asarray(result.true_obs[:, :, h - 1] - result.start_obs).reshape(-1, 2)
        expected = offsets[h - 1] ** 2 / change.var(axis=0)
        np.testing.assert_allclose(figures["relative_error_per_entry"][h], expected, rtol=1e-4)
        assert figures["relative_error"]["all"][h] == pytest.approx(expected.mean(), rel=1e-4)


def test_a_model_with_the_action_reversed_points_the_gradient_backwards():
    result, _, _ = _run((jnp.asarray(A), -jnp.asarray(B), jnp.zeros(2)))
    figures = fidelity.summarise(result, steps=(1,))
    np.testing.assert_allclose(np.asarray(result.grad_cosine), -1.0, atol=1e-5)
    assert figures["grad_cosine_positive"] == 0.0
    # the return is affine in the actions, so reversing them reverses the ranking exactly
    assert figures["rank_correlation"] == pytest.approx(-1.0)


def test_steps_after_the_true_episode_ends_are_left_out():
    def done(params, x):
        return x[0] > 0.0  # the episode ends once the first coordinate is positive

    result, states, z = _run(TRUTH, done_fn=done)
    valid = np.asarray(result.valid)
    assert (~valid).any() and valid.any()
    for i in range(N):
        for j in range(K):
            x, running = np.asarray(states[i]), True
            for t in range(H):
                new = A @ x + B @ np.tanh(np.asarray(z[i, j, t]))
                running = running and new[0] <= 0.0
                assert valid[i, j, t] == running
                if running:
                    x = new
                # the true state is frozen where the episode ended
                np.testing.assert_allclose(np.asarray(result.true_obs[i, j, t]), x, rtol=1e-5)
    # a perfect model is still perfect on the steps that count
    figures = fidelity.summarise(result, steps=(1,))
    assert figures["relative_error"]["all"][1] < 1e-10


def test_rollout_keeps_the_states_and_the_same_return():
    x0 = jnp.asarray([0.3, -0.2])
    actions = jnp.asarray([[0.5], [-1.0], [0.2]])
    out = mpc.rollout(linear_step, TRUTH, x0, actions, discount=0.9)
    total = mpc.rollout_return(linear_step, TRUTH, x0, actions, discount=0.9)
    x, expected, ret = np.asarray(x0), [], 0.0
    for t, a in enumerate(np.asarray(actions)):
        x = A @ x + B @ a
        expected.append(x)
        ret += 0.9**t * W @ x
    np.testing.assert_allclose(np.asarray(out.states), np.stack(expected), rtol=1e-5)
    assert float(out.total) == pytest.approx(float(total)) == pytest.approx(ret, rel=1e-5)
    np.testing.assert_array_equal(np.asarray(out.alive), 1.0)


def test_rank_correlation_averages_ties():
    # ranks [0, 1.5, 1.5, 3] against [0, 1, 2, 3]: 4.5 / sqrt(4.5 * 5)
    value = fidelity.rank_correlation(np.array([1.0, 2.0, 2.0, 3.0]), np.arange(4.0))
    assert value == pytest.approx(4.5 / np.sqrt(22.5))
    assert np.isnan(fidelity.rank_correlation(np.ones(3), np.arange(3.0)))


def test_summarise_refuses_steps_and_groups_outside_the_rollout():
    result, _, _ = _run(TRUTH)
    with pytest.raises(ValueError, match="outside 1..H"):
        fidelity.summarise(result, steps=(H + 1,))
    with pytest.raises(ValueError, match="group 'far'"):
        fidelity.summarise(result, steps=(1,), groups={"far": (0, 5)})
    grouped = fidelity.summarise(result, steps=(1,), groups={"first": (0,), "second": (1,)})
    assert set(grouped["relative_error"]) == {"first", "second"}


def test_visited_states_follow_the_episode_run_episode_plays():
    env = make_jax_env("worldplan/Spaceship-v0")
    relax = relax_lib.for_action_mode("continuous")
    policy = data_lib.random_policy(relax)
    key = jax.random.key(3)
    states, obs, done = visited_states(env, policy, 200, None, key)
    _, length = run_episode(env, policy, 200, None, key)
    # entry t is the state before step t: the episode was running before exactly `length` steps
    assert int((~np.asarray(done)).sum()) == int(length)
    assert int(length) < 200  # a random ship ends its episode early (crash or escape)
    first_obs, first_state = env.reset(jax.random.split(key)[0], env.params)
    np.testing.assert_array_equal(np.asarray(obs[0]), np.asarray(first_obs))
    np.testing.assert_array_equal(np.asarray(states.position[0]), np.asarray(first_state.position))
