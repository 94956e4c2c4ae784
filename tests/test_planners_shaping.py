"""The planning barrier (planners/shaping.py): shape, gradient, wrapping, both state kinds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.spaceship import core, task
from envs.spaceship.params import SpaceshipParams
from planners import oracle, shaping


def test_soft_barrier_vanishes_far_and_grows_inside():
    config = shaping.BarrierConfig(weight=5.0, margin=0.5, scale=0.25)
    radius = 1.5
    far = shaping.soft_barrier(jnp.asarray(radius + 0.5 + 3.0), radius, config)
    edge = shaping.soft_barrier(jnp.asarray(radius + 0.5), radius, config)
    inside = shaping.soft_barrier(jnp.asarray(radius - 0.5), radius, config)
    assert float(far) < 1e-4
    np.testing.assert_allclose(float(edge), 5.0 * 0.25 * np.log(2.0), rtol=1e-5)
    # About `weight` per metre once well inside the margin.
    np.testing.assert_allclose(float(inside), 5.0 * 1.0, rtol=0.01)
    slope = jax.grad(lambda d: shaping.soft_barrier(d, radius, config))(jnp.asarray(radius - 0.5))
    assert float(slope) < -4.5  # moving away from the planet lowers the cost


def test_barrier_config_rejects_bad_values():
    with pytest.raises(ValueError, match="weight"):
        shaping.BarrierConfig(weight=-1.0)
    with pytest.raises(ValueError, match="scale"):
        shaping.BarrierConfig(scale=0.0)
    with pytest.raises(ValueError, match="margin"):
        shaping.BarrierConfig(margin=float("nan"))


def test_penalised_subtracts_the_penalty_of_the_next_state():
    def model_step(params, state, action):
        return state + action, jnp.sum(action)

    step = shaping.penalised(model_step, lambda s: 10.0 * jnp.sum(s))
    next_state, reward = step(None, jnp.ones(2), jnp.full(2, 0.5))
    np.testing.assert_allclose(np.asarray(next_state), [1.5, 1.5])
    np.testing.assert_allclose(float(reward), 1.0 - 30.0)


def test_state_and_obs_barriers_agree_and_off_is_identity():
    params = SpaceshipParams()
    config = shaping.BarrierConfig(weight=5.0, margin=1.0, scale=0.5)
    _, state = core.reset(jax.random.key(3), params)
    # Put the ship just above the surface so the barrier is active.
    direction = jnp.asarray([0.6, 0.8])
    state = state.replace(position=state.planet_position + (state.planet_radius + 0.2) * direction)
    from_state = shaping.spaceship_penalty(config, "env_state")(state)
    from_obs = shaping.spaceship_penalty(config, "obs")(core.observe(state, params))
    assert float(from_state) > 1.0
    np.testing.assert_allclose(float(from_state), float(from_obs), rtol=1e-4)
    assert shaping.shaped(oracle.model_step, shaping.BarrierConfig(weight=0.0), "obs") is (
        oracle.model_step
    )
    with pytest.raises(ValueError, match="state_kind"):
        shaping.spaceship_penalty(config, "pixels")
    with pytest.raises(ValueError, match="13 entries"):
        shaping.spaceship_penalty(config, "obs")(jnp.zeros(5))


def test_shaped_true_dynamics_reward_is_lower_only_near_the_planet():
    params = SpaceshipParams()
    config = shaping.BarrierConfig()
    step = shaping.shaped(oracle.model_step, config, "env_state")
    _, state = core.reset(jax.random.key(0), params)
    action = jnp.zeros(2)
    near = state.replace(
        position=state.planet_position + jnp.asarray([state.planet_radius + 0.1, 0.0]),
        velocity=jnp.zeros(2),
    )
    _, plain_near = oracle.model_step(params, near, action)
    _, shaped_near = step(params, near, action)
    far = state.replace(position=state.planet_position + jnp.asarray([8.0, 0.0]))
    _, plain_far = oracle.model_step(params, far, action)
    _, shaped_far = step(params, far, action)
    assert float(plain_near - shaped_near) > 0.5
    np.testing.assert_allclose(float(shaped_far), float(plain_far), atol=1e-4)


def _crashes(model_step, states, params, steps):
    """Fraction of ``states`` (batched) that crash within ``steps`` receding-horizon GBP steps."""
    from planners import gbp
    from planners import relax as relax_lib

    relax = relax_lib.for_action_mode("continuous")
    config = gbp.GBPConfig(horizon=10, n_iterations=10, n_restarts=2, learning_rate=0.2)
    policy = gbp.make_policy(
        config, relax, model_step, params, use_env_state=True, done_fn=oracle.done_fn
    )

    def episode(state, key):
        def body(carry, key):
            state, plan_z, crashed = carry
            action, plan_z = policy(plan_z, None, state, key)
            next_state, _, _ = core.transition(
                state, oracle.vector_to_thrust(action, params), params
            )
            crashed = crashed | task.crashed(next_state)
            return (next_state, plan_z, crashed), None

        init = (state, gbp.init_plan(config, relax), jnp.zeros((), bool))
        return jax.lax.scan(body, init, jax.random.split(key, steps))[0][2]

    keys = jax.random.split(jax.random.key(0), len(states.position))
    return float(jnp.mean(jax.jit(jax.vmap(episode))(states, keys)))


def test_barrier_keeps_gbp_off_a_planet_it_is_falling_into():
    params = SpaceshipParams()
    _, states = jax.vmap(lambda k: core.reset(k, params))(jax.random.split(jax.random.key(1), 8))
    # Each ship 0.8 m above the surface, falling straight down at 1.5 m/s.
    up = jnp.asarray([0.0, 1.0])
    states = states.replace(
        position=states.planet_position + (states.planet_radius[:, None] + 0.8) * up,
        velocity=jnp.broadcast_to(-1.5 * up, states.velocity.shape),
    )
    barrier = shaping.shaped(oracle.model_step, shaping.BarrierConfig(), "env_state")
    assert _crashes(barrier, states, params, steps=15) == 0.0
    # The same planner without the barrier crashes most of these ships (5 of 8 when written).
    assert _crashes(oracle.model_step, states, params, steps=15) >= 0.25
