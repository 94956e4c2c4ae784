"""GBP and CEM/MPPI on toy models with known optima, gradients and compile counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from planners import cem, gbp, relax

GOAL = jnp.array([0.5, -0.3])


def linear_step(params, state, action):
    """s' = s + a; reward -|s' - goal|^2 (optimum: first action = goal, then stay)."""
    next_state = state + action
    return next_state, -jnp.sum((next_state - params) ** 2)


def nonlinear_step(params, state, action):
    w, b = params
    next_state = state + 0.3 * jnp.tanh(w @ state) + b @ action
    return next_state, -jnp.sum(next_state**2) + jnp.sin(next_state[0])


def bandit_step(params, state, action):
    """Reward a . r on the simplex: the best discrete action is argmax(r)."""
    return state, action @ params


def test_gbp_reaches_known_optimum_of_linear_quadratic_problem():
    config = gbp.GBPConfig(horizon=3, n_iterations=300, learning_rate=0.05, n_restarts=2)
    planner = gbp.make_planner(config, relax.Continuous(2), linear_step)
    result = planner(
        GOAL, jnp.zeros(2), gbp.init_plan(config, relax.Continuous(2)), jax.random.key(0)
    )
    np.testing.assert_allclose(result.action, GOAL, atol=0.02)
    assert result.objective > -1e-3
    np.testing.assert_allclose(jnp.tanh(result.plan[1:]), 0.0, atol=0.05)


@pytest.mark.parametrize("relaxation", [relax.Continuous(2), relax.Discrete(4), relax.Hybrid()])
def test_gradient_through_rollout_matches_finite_differences(relaxation):
    keys = jax.random.split(jax.random.key(1), 3)
    w = 0.5 * jax.random.normal(keys[0], (2, 2))
    b = 0.3 * jax.random.normal(keys[1], (2, relaxation.action_dim))
    z = jax.random.normal(keys[2], (4, relaxation.param_dim))
    state = jnp.array([0.3, -0.2])

    def objective(z):
        return gbp.plan_objective(z, None, relaxation, nonlinear_step, (w, b), state, 0.9)

    grad = np.asarray(jax.jit(jax.grad(objective))(z))
    eps = 1e-2
    steps = eps * jnp.eye(z.size).reshape(z.size, *z.shape)
    batched = jax.jit(jax.vmap(objective))
    numeric = np.asarray((batched(z + steps) - batched(z - steps)) / (2 * eps)).reshape(z.shape)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=2e-3)


def test_unrolled_rollout_plans_the_same_as_the_rolled_loop():
    keys = jax.random.split(jax.random.key(3), 2)
    w = 0.5 * jax.random.normal(keys[0], (2, 2))
    b = 0.3 * jax.random.normal(keys[1], (2, 2))
    rolled = gbp.GBPConfig(horizon=6, n_iterations=5, n_restarts=2)
    plans = []
    for config in (rolled, gbp.GBPConfig(**{**rolled.__dict__, "unroll": 4})):
        planner = gbp.make_planner(config, relax.Continuous(2), nonlinear_step)
        plan0 = gbp.init_plan(config, relax.Continuous(2))
        plans.append(planner((w, b), jnp.array([0.3, -0.2]), plan0, jax.random.key(0)).plan)
    np.testing.assert_allclose(plans[0], plans[1], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unroll"):
        gbp.GBPConfig(unroll=0)


def test_discrete_relaxation_recovers_best_action_of_bandit():
    rewards = jnp.array([0.1, 0.5, 0.3, 0.9, 0.2])
    config = gbp.GBPConfig(horizon=1, n_iterations=50, learning_rate=0.3, noise_std=0.5)
    planner = gbp.make_planner(config, relax.Discrete(5), bandit_step)
    plan0 = gbp.init_plan(config, relax.Discrete(5))
    for seed in range(3):
        result = planner(rewards, jnp.zeros(1), plan0, jax.random.key(seed))
        assert int(result.action) == 3
        assert result.objective == pytest.approx(0.9)


def test_reward_after_termination_is_masked():
    def step(params, state, action):
        return state + 1.0, jnp.ones(())

    def done(params, state):
        return state >= 2.0

    total = gbp.rollout_return(step, None, jnp.zeros(()), jnp.zeros((5, 1)), 1.0, done)
    assert float(total) == 2.0  # steps to s=1 and s=2 count, the rest are masked


def test_plan_compiles_once():
    traces = []

    def counted_step(params, state, action):
        traces.append(1)
        return linear_step(params, state, action)

    config = gbp.GBPConfig(horizon=4, n_iterations=3, n_restarts=2)
    planner = gbp.make_planner(config, relax.Continuous(2), counted_step)
    plan0 = gbp.init_plan(config, relax.Continuous(2))
    planner(GOAL, jnp.zeros(2), plan0, jax.random.key(0))
    after_first = len(traces)
    assert after_first > 0
    for seed in range(3):
        result = planner(
            GOAL + seed, jnp.ones(2) * seed, gbp.shift_plan(plan0), jax.random.key(seed)
        )
        plan0 = result.plan
    assert len(traces) == after_first


def test_plan_rejects_wrong_init_plan_shape():
    config = gbp.GBPConfig(horizon=4)
    with pytest.raises(ValueError, match="init_plan"):
        gbp.plan(
            config,
            relax.Continuous(2),
            linear_step,
            GOAL,
            jnp.zeros(2),
            jnp.zeros((3, 2)),
            jax.random.key(0),
        )
    with pytest.raises(ValueError, match="horizon"):
        gbp.GBPConfig(horizon=0)


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_sampling_planners_approach_known_optimum(method):
    config = cem.CEMConfig(
        method=method, horizon=2, n_samples=300, n_iterations=8, n_elites=30, temperature=0.05
    )
    planner = cem.make_planner(config, relax.Continuous(2), linear_step)
    result = planner(GOAL, jnp.zeros(2), jnp.zeros((2, 2)), jax.random.key(0))
    np.testing.assert_allclose(result.action, GOAL, atol=0.1)
    assert result.objective > -0.02


def test_cem_ensemble_particles_average_over_members():
    # Member 0 moves as commanded, member 1 moves twice as far: the consensus plan is a
    # compromise, so the first action is between goal/2 and goal.
    def scaled_step(params, state, action):
        next_state = state + params["gain"] * action
        return next_state, -jnp.sum((next_state - GOAL) ** 2)

    params = {"gain": jnp.array([1.0, 2.0])}
    config = cem.CEMConfig(
        horizon=1,
        n_samples=300,
        n_iterations=8,
        n_elites=30,
        n_particles=4,
        ensemble_size=2,
        particle_noise_std=0.01,
    )
    result = cem.make_planner(config, relax.Continuous(2), scaled_step)(
        params, jnp.zeros(2), jnp.zeros((1, 2)), jax.random.key(0)
    )
    # argmin of (a - g)^2 + (2a - g)^2 is a = 0.6 g.
    np.testing.assert_allclose(result.action, 0.6 * GOAL, atol=0.08)


def test_cem_refuses_params_smaller_than_its_ensemble():
    # JAX clamps leaf[member] for member >= 2: particles 2 and 3 would reuse member 1 silently.
    config = cem.CEMConfig(horizon=1, n_samples=8, n_elites=2, n_particles=4, ensemble_size=4)
    planner = cem.make_planner(config, relax.Continuous(2), linear_step)
    two_members = jnp.stack([GOAL, GOAL])
    with pytest.raises(ValueError, match=r"ensemble axis of CEMConfig.ensemble_size=4.*\(2, 2\)"):
        planner(two_members, jnp.zeros(2), jnp.zeros((1, 2)), jax.random.key(0))
    with pytest.raises(ValueError, match="ensemble axis"):  # a scalar leaf has no axis at all
        planner(
            {"goal": jnp.stack([GOAL] * 4), "scale": 1.0},
            jnp.zeros(2),
            jnp.zeros((1, 2)),
            jax.random.key(0),
        )
