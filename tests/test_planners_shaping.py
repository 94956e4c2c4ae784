"""The planning barrier (planners/shaping.py): shape, gradient, wrapping, both state kinds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.spaceship import core
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
