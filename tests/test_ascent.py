"""The shared gradient-ascent core: optimum, bounds, keep-best, restart choice, compiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from planners import ascent

CENTRE = jnp.array([0.5, -0.3, 1.2])


def concave_quadratic(x, _key):
    """-|x - centre|^2: maximum 0 at the centre."""
    return -jnp.sum((x - CENTRE) ** 2)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_concave_quadratic_reaches_its_maximum(optimizer):
    config = ascent.AscentConfig(steps=300, learning_rate=0.05, optimizer=optimizer)
    starts = jax.random.normal(jax.random.key(0), (4, 3))
    result = jax.jit(functools.partial(ascent.maximise, concave_quadratic, config=config))(
        starts, jax.random.key(1)
    )
    np.testing.assert_allclose(result.candidates, np.tile(CENTRE, (4, 1)), atol=1e-3)
    np.testing.assert_allclose(result.x, CENTRE, atol=1e-3)
    assert result.scores.shape == (4,)
    assert -1e-5 < float(result.score) <= 0.0  # default score: the objective itself


def test_projection_keeps_every_iterate_in_bounds():
    low, high = jnp.array([-1.0, -0.2]), jnp.array([0.5, 0.3])
    seen = []

    def uphill(x, _key):
        jax.debug.callback(lambda value: seen.append(np.asarray(value)), x)
        return jnp.sum(x)  # unbounded: every step pushes against the upper bound

    config = ascent.AscentConfig(steps=6, learning_rate=0.4, optimizer="sgd")
    starts = jnp.zeros((2, 2))
    result = ascent.maximise(
        uphill, starts, jax.random.key(0), config, project=lambda x: jnp.clip(x, low, high)
    )
    iterates = np.concatenate([np.reshape(v, (-1, 2)) for v in seen])
    assert len(iterates) >= 2 * config.steps
    for x in (iterates, np.asarray(result.candidates)):
        assert np.all(x >= np.asarray(low)) and np.all(x <= np.asarray(high))
    np.testing.assert_allclose(result.candidates, np.tile(high, (2, 1)))


def test_keep_best_returns_the_best_iterate_not_the_last():
    # sgd with step 0.1 on -|x - 0.32| from 0 visits 0, 0.1, 0.2, 0.3 and ends at 0.4: the
    # last iterate is worse than the best one seen (0.3).
    def peak(x, _key):
        return -jnp.abs(x[0] - 0.32)

    starts = jnp.zeros((1, 1))
    results = {}
    for keep_best in (False, True):
        config = ascent.AscentConfig(
            steps=4, learning_rate=0.1, optimizer="sgd", keep_best=keep_best
        )
        results[keep_best] = ascent.maximise(peak, starts, jax.random.key(0), config)
    assert float(results[False].x[0]) == pytest.approx(0.4, abs=1e-6)
    assert float(results[True].x[0]) == pytest.approx(0.3, abs=1e-6)
    assert float(results[True].score) == pytest.approx(-0.02, abs=1e-6)


def test_best_restart_is_picked_by_the_score():
    # Two maxima of equal height at x = -1 and x = +1; the score breaks the tie.
    def double_well(x, _key):
        return -((x[0] ** 2 - 1.0) ** 2)

    starts = jnp.array([[-2.0], [1.6], [-0.4]])
    config = ascent.AscentConfig(steps=200, learning_rate=0.05)
    run = functools.partial(ascent.maximise, double_well, starts, jax.random.key(0), config)
    right = run(score=lambda x: x[0])
    np.testing.assert_allclose(right.candidates[:, 0], [-1.0, 1.0, -1.0], atol=1e-3)
    assert float(right.x[0]) == pytest.approx(1.0, abs=1e-3)
    left = run(score=lambda x: jnp.where(x[0] < -0.5, jnp.nan, -x[0]))
    # Restarts 0 and 2 score NaN (-> -inf), so restart 1 wins although its score is negative.
    np.testing.assert_array_equal(np.isneginf(left.scores), [True, False, True])
    assert float(left.x[0]) == pytest.approx(1.0, abs=1e-3)


def test_pytree_iterates_with_keep_best():
    def objective(x, _key):
        return -jnp.sum((x["a"] - 1.0) ** 2) - (x["b"] + 2.0) ** 2

    starts = {"a": jnp.zeros((2, 3)), "b": jnp.ones((2,))}
    config = ascent.AscentConfig(steps=200, learning_rate=0.1, keep_best=True)
    result = ascent.maximise(objective, starts, jax.random.key(0), config)
    np.testing.assert_allclose(result.x["a"], np.ones(3), atol=1e-2)
    assert float(result.x["b"]) == pytest.approx(-2.0, abs=1e-2)
    assert result.candidates["a"].shape == (2, 3)


def test_maximise_compiles_once_for_repeated_calls_with_the_same_shapes():
    traces = []

    def counted(x, key):
        traces.append(1)
        return concave_quadratic(x, key) + 0.01 * jnp.sum(jax.random.normal(key, x.shape) * x)

    config = ascent.AscentConfig(steps=5, keep_best=True, schedule="linear")
    run = jax.jit(functools.partial(ascent.maximise, counted, config=config))
    run(jnp.zeros((3, 3)), jax.random.key(0))
    after_first = len(traces)
    assert after_first > 0
    for seed in range(1, 4):
        starts = jax.random.normal(jax.random.key(seed), (3, 3))
        result = run(starts, jax.random.key(seed))
        assert result.candidates.shape == (3, 3)
    assert len(traces) == after_first


def test_linear_schedule_noise_hook_and_nan_safe_gradients():
    # sgd on sum(x) (gradient 1) moves x by the step size of every step: the linear schedule's
    # steps sum to lr * sum_t (1 - 0.9 t / N); the noise hook adds 1 to every gradient.
    config = ascent.AscentConfig(
        steps=8, learning_rate=0.1, optimizer="sgd", schedule="linear", final_lr_fraction=0.1
    )
    rates = 0.1 * (1 - 0.9 * np.arange(8) / 8)
    result = ascent.maximise(lambda x, _: jnp.sum(x), jnp.zeros((1, 2)), jax.random.key(0), config)
    np.testing.assert_allclose(result.x, [rates.sum()] * 2, rtol=1e-5)
    doubled = ascent.maximise(
        lambda x, _: jnp.sum(x),
        jnp.zeros((1, 2)),
        jax.random.key(0),
        config,
        gradient_noise=lambda grad, key, step: grad + 1.0,
    )
    np.testing.assert_allclose(doubled.x, [2 * rates.sum()] * 2, rtol=1e-5)

    def kink(x, _key):
        return -jnp.sqrt(jnp.sum(x**2))  # gradient 0/0 = NaN at the origin

    safe = ascent.maximise(kink, jnp.zeros((2, 2)), jax.random.key(0), config)
    assert np.all(np.isfinite(np.asarray(safe.candidates)))
    with pytest.raises(ValueError, match="schedule"):
        ascent.AscentConfig(schedule="exponential")
