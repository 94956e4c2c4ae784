"""Gradient planner through soft images: image, gradients, one compile, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.towers import grad_planning, image, physics
from envs.towers.params import Params

PARAMS = Params(image_size=32)
CONFIG = grad_planning.GradConfig(restarts=3, steps=4, softness=0.05, margin=0.05)


def linear_logit(weights, picture):
    """A stand-in fall model: a fixed linear function of the image."""
    return jnp.sum(weights * picture) - 5.0


def test_soft_image_matches_the_numpy_rendering():
    offsets = np.array([0.2, 0.1, 0.3])
    soft = grad_planning.soft_image(jnp.asarray(offsets), PARAMS, 0.05)
    state = physics.stacked_state(offsets, PARAMS)
    reference = image.render_state(state, PARAMS, softness=0.05)
    np.testing.assert_allclose(np.asarray(soft) * 255.0, reference, atol=1.0)


def test_objective_gradient_matches_finite_differences():
    weights = jnp.asarray(np.random.default_rng(0).normal(0, 0.01, (32, 32, 3)), jnp.float32)
    offsets = jnp.array([0.15, 0.1, 0.2, 0.3])
    config = grad_planning.GradConfig(softness=0.1, fall_threshold=0.0, margin=0.05)
    f = jax.jit(lambda o: grad_planning.objective(o, weights, linear_logit, PARAMS, config))
    grad = np.asarray(jax.jit(jax.grad(f))(offsets))
    assert np.all(np.isfinite(grad))
    eps = 1e-2
    for i in range(4):
        step = jnp.zeros(4).at[i].set(eps)
        numeric = (float(f(offsets + step)) - float(f(offsets - step))) / (2 * eps)
        assert grad[i] == pytest.approx(numeric, rel=0.05, abs=2e-3)


def test_planner_compiles_once_and_stays_in_bounds():
    traces = []

    def counted(weights, picture):
        traces.append(1)
        return linear_logit(weights, picture)

    planner = grad_planning.make_grad_planner(counted, PARAMS, CONFIG)
    weights = jnp.zeros((32, 32, 3))  # p(fall) = sigmoid(-5): nothing falls
    bounds = (jnp.full(4, -1.0), jnp.array([0.5, 1.0, 1.0, 1.0]))
    first = np.asarray(planner(weights, jax.random.PRNGKey(0), bounds))
    traced = len(traces)
    second = np.asarray(planner(weights, jax.random.PRNGKey(1), bounds))
    assert len(traces) == traced  # the second call reuses the compiled search
    for plans in (first, second):
        assert plans.shape == (3, 4)
        assert np.all(plans >= -1.0) and np.all(plans <= np.array([0.5, 1.0, 1.0, 1.0]) + 1e-6)
    # Nothing is predicted to fall, so the objective is the overhang, whose gradient is 1 for
    # every offset: Adam steps each offset out by the scheduled step size, and the best
    # iterate is the last one evaluated (before the final update).
    starts = jax.random.uniform(jax.random.PRNGKey(0), (3, 4), maxval=CONFIG.initial_high)
    rate = CONFIG.learning_rate * (1 - 0.9 * np.arange(CONFIG.steps - 1) / CONFIG.steps)
    expected = np.minimum(np.asarray(starts) + rate.sum(), [0.5, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(first, expected, atol=1e-4)
