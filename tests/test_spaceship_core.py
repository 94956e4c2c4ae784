"""Physics of the spaceship core against an independent NumPy reference, and its properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.spaceship import core, task
from envs.spaceship.params import SpaceshipParams

PARAMS = SpaceshipParams()


def reference_step(position, velocity, planet, radius, surface_gravity, thrust, p):
    """Plain float64 semi-implicit Euler, written from the docstring's equations."""
    position, velocity = np.array(position, float), np.array(velocity, float)
    mu = surface_gravity * radius**2
    h = p.dt / p.substeps
    for _ in range(p.substeps):
        d = position - planet
        r = max(np.linalg.norm(d), radius)
        accel = -mu * d / r**3 + p.max_thrust * np.asarray(thrust, float)
        velocity = velocity + h * accel
        position = position + h * velocity
    return position, velocity


def make_state(position, velocity, radius=1.5, gravity=3.0, targets=((9.0, 9.0),) * 3, index=0):
    return core.SpaceshipState(
        position=np.asarray(position, np.float32),
        velocity=np.asarray(velocity, np.float32),
        planet_position=np.zeros(2, np.float32),
        planet_radius=np.asarray(radius, np.float32),
        surface_gravity=np.asarray(gravity, np.float32),
        targets=np.asarray(targets, np.float32),
        target_index=np.asarray(index, np.int32),
        time=np.asarray(0, np.int32),
        thrust=np.zeros(2, np.float32),
    )


@pytest.mark.parametrize("backend", ["host", "jax"])
def test_dynamics_match_numpy_reference(backend):
    rng = np.random.default_rng(0)
    state = make_state([3.0, 1.0], [0.3, 1.1])
    dynamics = jax.jit(core.dynamics) if backend == "jax" else core.dynamics
    position, velocity = np.array([3.0, 1.0]), np.array([0.3, 1.1])
    for _ in range(50):
        thrust = rng.uniform(-0.7, 0.7, 2).astype(np.float32)
        state = dynamics(core.as_jax(state) if backend == "jax" else state, thrust, PARAMS)
        state = core.as_numpy(state)
        position, velocity = reference_step(
            position, velocity, np.zeros(2), 1.5, 3.0, thrust, PARAMS
        )
        np.testing.assert_allclose(state.position, position, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(state.velocity, velocity, rtol=1e-4, atol=1e-4)
    assert int(state.time) == 50


def test_unpowered_circular_orbit_keeps_radius_and_energy():
    radius_orbit, mu = 4.0, 3.0 * 1.5**2
    speed = np.sqrt(mu / radius_orbit)
    state = core.as_jax(make_state([radius_orbit, 0.0], [0.0, speed]))

    def body(carry, _):
        carry = core.dynamics(carry, jnp.zeros(2), PARAMS)
        r = jnp.linalg.norm(carry.position)
        energy = 0.5 * jnp.sum(carry.velocity**2) - mu / r
        return carry, (r, energy)

    _, (radii, energies) = jax.jit(lambda s: jax.lax.scan(body, s, None, length=5000))(state)
    energy0 = 0.5 * speed**2 - mu / radius_orbit
    # 5000 steps = 500 s, about 26 orbits.
    assert np.max(np.abs(np.asarray(radii) / radius_orbit - 1)) < 0.01
    assert np.max(np.abs(np.asarray(energies) / energy0 - 1)) < 0.01


def test_thrust_changes_velocity_as_documented():
    params = PARAMS.replace(surface_gravity_range=(0.0, 0.0))
    state = make_state([5.0, 5.0], [0.0, 0.0], gravity=0.0)
    thrust = np.array([0.6, -0.8], np.float32)
    moved = core.dynamics(state, thrust, params)
    accel = params.max_thrust * thrust
    np.testing.assert_allclose(moved.velocity, accel * params.dt, rtol=1e-5)
    n, h = params.substeps, params.dt / params.substeps
    np.testing.assert_allclose(
        moved.position - state.position, accel * h * h * n * (n + 1) / 2, rtol=1e-4
    )
    np.testing.assert_array_equal(moved.thrust, thrust)


def test_continuous_action_is_clipped_to_unit_norm():
    params = PARAMS
    big = core.action_to_thrust(np.array([5.0, 0.0], np.float32), params)
    np.testing.assert_allclose(big, [1.0, 0.0], atol=1e-6)
    diag = core.action_to_thrust(np.array([1.0, 1.0], np.float32), params)
    np.testing.assert_allclose(np.linalg.norm(diag), 1.0, atol=1e-5)
    small = core.action_to_thrust(np.array([0.3, -0.4], np.float32), params)
    np.testing.assert_allclose(small, [0.3, -0.4], atol=1e-5)


def test_discrete_and_hybrid_thrust_directions():
    discrete = PARAMS.replace(action_mode="discrete")
    np.testing.assert_allclose(core.action_to_thrust(np.int32(0), discrete), [0, 0])
    np.testing.assert_allclose(core.action_to_thrust(np.int32(3), discrete), [0, 1], atol=1e-6)
    hybrid = PARAMS.replace(action_mode="hybrid")
    off = {"fire": np.int32(0), "angle": np.array([1.0], np.float32)}
    on = {"fire": np.int32(1), "angle": np.array([np.pi], np.float32)}
    np.testing.assert_allclose(core.action_to_thrust(off, hybrid), [0, 0])
    np.testing.assert_allclose(core.action_to_thrust(on, hybrid), [-1, 0], atol=1e-6)


def test_reward_terms_and_termination():
    state = make_state([3.0, 0.0], [0.0, 0.0], targets=((3.0, 0.5), (0.0, 5.0), (-5, 0)))
    thrust = np.zeros(2, np.float32)
    result = task.outcome(state, thrust, state, PARAMS)  # standing still within tolerance
    assert bool(result.reached) and int(result.next_state.target_index) == 1
    np.testing.assert_allclose(result.reward, PARAMS.target_bonus, atol=1e-5)
    crashed = make_state([0.5, 0.0], [0.0, 0.0])
    out = task.outcome(state, thrust, crashed, PARAMS)
    assert bool(out.crashed) and bool(out.terminated)
    escaped = make_state([10.5, 0.0], [0.0, 0.0])
    out = task.outcome(state, thrust, escaped, PARAMS)
    assert bool(out.escaped) and bool(out.terminated) and not bool(out.crashed)


def test_rollout_return_gradient_matches_finite_differences():
    state = core.as_jax(make_state([4.0, 0.0], [0.0, 1.3], targets=((0.0, 5.0),) * 3))
    actions = 0.3 * jnp.ones((15, 2))

    def rollout_return(acts):
        def body(s, a):
            s, r, _ = core.transition(s, a, PARAMS)
            return s, r

        return jnp.sum(jax.lax.scan(body, state, acts)[1])

    grad = jax.jit(jax.grad(rollout_return))(actions)
    assert np.all(np.isfinite(np.asarray(grad)))
    value = jax.jit(rollout_return)
    rng = np.random.default_rng(1)
    for _ in range(3):
        direction = jnp.asarray(rng.normal(size=actions.shape), jnp.float32)
        eps = 1e-2
        fd = (value(actions + eps * direction) - value(actions - eps * direction)) / (2 * eps)
        np.testing.assert_allclose(
            float(fd), float(jnp.sum(grad * direction)), rtol=2e-2, atol=2e-3
        )


def test_host_and_jax_paths_agree():
    key = jax.random.PRNGKey(3)
    _, state = jax.jit(core.reset)(key, PARAMS)
    host, device = core.as_numpy(state), state
    step = jax.jit(core.step)
    for t in range(100):
        action = np.array([np.sin(0.3 * t), np.cos(0.2 * t)], np.float32)
        obs_h, host, r_h, term_h, _, _ = core.step(None, host, action, PARAMS)
        obs_d, device, r_d, term_d, _, _ = step(None, device, action, PARAMS)
        np.testing.assert_allclose(obs_h, np.asarray(obs_d), atol=1e-4)
        np.testing.assert_allclose(r_h, float(r_d), atol=1e-4)
        assert bool(term_h) == bool(term_d)
        if term_h:
            break
