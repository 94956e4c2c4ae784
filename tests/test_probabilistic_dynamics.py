"""Probabilistic forward models (PETS' Gaussian heads) and CEM's trajectory sampling."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import io
from planners import cem, relax, shaping
from world_models import dynamics, gaussian, optimizer, trainer
from world_models.data import Transitions


def test_gaussian_helpers_against_closed_forms():
    mean, logvar, target = jnp.array([0.5, -1.0]), jnp.array([-2.0, 0.3]), jnp.array([0.1, 0.4])
    var = np.exp(np.array([-2.0, 0.3]))
    log_density = -0.5 * (np.array([0.4, -1.4]) ** 2 / var + np.log(2 * np.pi * var))
    np.testing.assert_allclose(
        gaussian.nll(mean, logvar, target), -2 * log_density - math.log(2 * math.pi), rtol=1e-5
    )
    # beta-NLL: the same value weighted by var^beta, and the mean's gradient scaled by var^beta
    beta = 0.5
    np.testing.assert_allclose(
        gaussian.nll(mean, logvar, target, beta),
        gaussian.nll(mean, logvar, target) * var**beta,
        rtol=1e-5,
    )
    grad = jax.grad(lambda m: gaussian.nll(m, logvar, target, beta).sum())(mean)
    np.testing.assert_allclose(grad, 2 * (mean - target) / var * var**beta, rtol=1e-5)
    grad_logvar = jax.grad(lambda v: gaussian.nll(mean, v, target, beta).sum())(logvar)
    plain = jax.grad(lambda v: gaussian.nll(mean, v, target).sum())(logvar)
    np.testing.assert_allclose(grad_logvar, plain * var**beta, rtol=1e-5)  # weight held fixed
    bounds = {"max_logvar": jnp.full(3, 0.5), "min_logvar": jnp.full(3, -10.0)}
    clipped = gaussian.bounded_logvar(jnp.array([-5.0, 40.0, -60.0]), bounds)
    # well inside the bounds a log-variance is nearly itself; outside, it saturates at a bound
    np.testing.assert_allclose(clipped, [-5.0 - math.log1p(math.exp(-5.5)), 0.5, -10.0], atol=1e-2)
    assert float(gaussian.bound_penalty(bounds)) == pytest.approx(0.01 * (1.5 + 30.0))
    draws = jax.vmap(gaussian.sample, in_axes=(None, None, 0))(
        mean, logvar, jax.random.split(jax.random.key(0), 20_000)
    )
    np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.05)


def noise_std(action):
    """The true std of next_obs [obs units]: 0.05 at action -1 to 0.45 at action +1."""
    return 0.05 + 0.2 * (np.asarray(action) + 1)


def heteroscedastic(n, seed):
    """next_obs = obs + 0.5 action + noise of std 0.05 + 0.2 (action + 1); reward ~ obs."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    action = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    noise = noise_std(action) * rng.normal(size=(n, 1))
    reward = obs[:, 0] + 0.01 * rng.normal(size=n)
    next_obs = obs + 0.5 * action + noise
    return Transitions(obs, action, reward.astype(np.float32), next_obs.astype(np.float32),
                       np.zeros(n, bool))  # fmt: skip


@pytest.fixture(scope="module")
def fitted():
    config = dynamics.DynamicsConfig(hidden_sizes=(32, 32), ensemble_size=2, probabilistic=True)
    model = dynamics.DynamicsModel(config, obs_dim=1, action_dim=1)
    train = trainer.TrainerConfig(learning_rate=3e-3, batch_size=256, max_epochs=40, patience=40)
    return model, model.fit(heteroscedastic(8192, 0), train, jax.random.key(0), log=None).params


def predicted_std(model, params, member, obs, action):
    """A member's predicted next-obs std [obs units] at one (obs, action)."""
    one = jax.tree.map(lambda leaf: leaf[member], params)
    _, logvar = model._outputs(one, jnp.array([obs]), jnp.array([action]))
    return float(jnp.exp(0.5 * logvar[0]) * one["stats"]["delta_std"][0])


def test_a_probabilistic_model_learns_where_the_future_is_uncertain(fitted):
    model, params = fitted
    for member in (0, 1):
        for action in (-0.9, -0.5, 0.0, 0.5, 0.9):
            truth = noise_std(action)
            got = predicted_std(model, params, member, 0.2, action)
            assert truth / 1.3 < got < truth * 1.3, (member, action, got, truth)
        # the spread grows with the action as the truth's does (6.1x); a mean has no spread
        ratio = predicted_std(model, params, member, 0.2, 0.9) / predicted_std(
            model, params, member, 0.2, -0.9
        )
        assert ratio > 4, ratio
    # weight decay shrinks the network's weights only, as in PETS
    mask = optimizer.decay_mask(params)
    assert all(jax.tree.leaves(mask["net"])) and not any(jax.tree.leaves(mask["logvar_bounds"]))
    # the means are what a deterministic model would predict: obs + 0.5 action
    next_obs, reward = model.step(params, jnp.array([0.2]), jnp.array([0.6]))
    assert float(next_obs[0]) == pytest.approx(0.5, abs=0.06)
    assert float(reward) == pytest.approx(0.2, abs=0.05)


def test_beta_nll_reweights_the_gradient_but_reports_the_likelihood():
    data = heteroscedastic(128, 1)
    plain = dynamics.DynamicsModel(dynamics.DynamicsConfig(probabilistic=True), 1, 1)
    beta = dynamics.DynamicsModel(dataclasses.replace(plain.config, nll_beta=0.5), 1, 1)
    params = plain.init(jax.random.key(0), data)
    params["net"] = jax.tree.map(  # away from the zero-initialised output layer
        lambda x: x + 0.3 * jax.random.normal(jax.random.key(1), x.shape), params["net"]
    )
    batch = Transitions(*(jnp.asarray(x) for x in data))
    (value, _), grad = jax.jit(jax.value_and_grad(plain.loss, has_aux=True))(params, batch, None)
    (value_beta, _), grad_beta = jax.jit(jax.value_and_grad(beta.loss, has_aux=True))(
        params, batch, None
    )
    assert float(value_beta) == pytest.approx(float(value), rel=1e-6)
    difference = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), grad, grad_beta)
    assert max(jax.tree.leaves(difference["net"])) > 1e-3


def test_sample_steps_draw_the_predicted_gaussian(fitted):
    model, params = fitted
    obs, action = jnp.array([0.2]), jnp.array([0.9])
    member = jax.tree.map(lambda leaf: leaf[1], params)
    keys = jax.random.split(jax.random.key(3), 20_000)
    draw = jax.vmap(model.member_sample_step, in_axes=(None, None, None, 0))
    next_obs, reward = draw(member, obs, action, keys)
    mean, mean_reward = model.member_step(member, obs, action)
    assert float(next_obs.mean()) == pytest.approx(float(mean[0]), abs=0.01)
    assert float(next_obs.std()) == pytest.approx(predicted_std(model, params, 1, 0.2, 0.9), 0.03)
    # the reward is a point prediction for (obs, action); the next state carries the noise
    np.testing.assert_allclose(reward, float(mean_reward), rtol=1e-6)
    # the whole-ensemble step picks a member at random each call: move member 1's predictions
    # 2 units up, and half the draws come from each member
    delta_mean = params["stats"]["delta_mean"].at[1].add(2.0)
    shifted = {**params, "stats": {**params["stats"], "delta_mean": delta_mean}}
    ensemble_obs, _ = jax.vmap(model.sample_step, in_axes=(None, None, None, 0))(
        shifted, obs, action, keys
    )
    low = float(model.member_step(jax.tree.map(lambda x: x[0], shifted), obs, action)[0][0])
    assert 0.47 < float(np.mean(ensemble_obs > low + 1.0)) < 0.53
    deterministic = dynamics.DynamicsModel(dynamics.DynamicsConfig(), 1, 1)
    with pytest.raises(ValueError, match="probabilistic=True"):
        deterministic.member_sample_step(member, obs, action, keys[0])


def noisy_walk(sigma, obs, action, key):
    """next = obs + action + sigma N(0, 1), reward |next|^2: E[r_t] = (t a)^2 + t sigma^2."""
    next_obs = obs + action + sigma * jax.random.normal(key, obs.shape)
    return next_obs, jnp.square(next_obs).sum()


def test_cem_samples_a_stochastic_model_once_per_particle_and_step():
    config = cem.CEMConfig(horizon=3, n_samples=1, n_iterations=1, n_elites=1, n_particles=4000,
                           stochastic_model=True)  # fmt: skip
    rl = relax.Continuous(1)
    z = jnp.full((3, 1), jnp.arctanh(0.5))  # hard action 0.5 every step
    sigma = 0.3
    value = cem.sample_returns(config, rl, noisy_walk, sigma, jnp.zeros(1), z, jax.random.key(0))
    expected = sum((t * 0.5) ** 2 + t * sigma**2 for t in (1, 2, 3))
    assert float(value) == pytest.approx(expected, rel=0.03)
    # one particle is one sampled trajectory, not the mean
    single = dataclasses.replace(config, n_particles=1)
    one = cem.sample_returns(single, rl, noisy_walk, sigma, jnp.zeros(1), z, jax.random.key(0))
    assert abs(float(one) - expected) > 1e-3
    # the planet barrier's wrapper passes the key through (shaping.penalised)
    shaped = shaping.penalised(noisy_walk, lambda next_obs: 1.0)
    with_cost = cem.sample_returns(config, rl, shaped, sigma, jnp.zeros(1), z, jax.random.key(0))
    assert float(with_cost) == pytest.approx(float(value) - 3.0, rel=1e-5)
    with pytest.raises(ValueError, match="particle_noise_std"):
        dataclasses.replace(config, particle_noise_std=0.1)


def test_pets_style_cem_plans_through_a_probabilistic_ensemble(fitted):
    """Reward = next obs; the model moves obs by 0.5 action: the best first action is +1."""
    model, params = fitted
    config = cem.CEMConfig(horizon=2, n_samples=64, n_iterations=3, n_elites=8, n_particles=4,
                           ensemble_size=2, stochastic_model=True)  # fmt: skip
    rl = relax.Continuous(1)
    step = cem.model_step_for(config, model)
    assert step == model.member_sample_step
    assert cem.model_step_for(dataclasses.replace(config, ensemble_size=1), model) == (
        model.sample_step
    )

    def reward_is_position(member, obs, action, key):
        next_obs, _ = step(member, obs, action, key)
        return next_obs, next_obs[0]

    planner = cem.make_planner(config, rl, reward_is_position)
    result = planner(params, jnp.array([0.0]), jnp.zeros((2, 1)), jax.random.key(0))
    assert float(result.action[0]) > 0.8
    with pytest.raises(ValueError, match="ensemble"):
        planner(jax.tree.map(lambda x: x[:1], params), jnp.array([0.0]), jnp.zeros((2, 1)),
                jax.random.key(0))  # fmt: skip


def test_checkpoints_name_the_kind_of_model_and_old_ones_still_load(fitted, tmp_path):
    model, params = fitted
    path = model.save(tmp_path / "pe.ckpt", params)
    loaded = model.load(path)
    jax.tree.map(np.testing.assert_array_equal, loaded, params)
    deterministic = dynamics.DynamicsModel(dataclasses.replace(model.config, probabilistic=False),
                                           1, 1)  # fmt: skip
    with pytest.raises(io.CheckpointError, match="config.probabilistic=True"):
        deterministic.load(path)
    # a checkpoint written before the field existed was a deterministic model's
    det_params = deterministic.template()
    description = {k: v for k, v in deterministic.description().items() if "probabilistic" not in k}
    old = io.save_checkpoint(tmp_path / "old.ckpt", det_params,
                             {"kind": dynamics.CHECKPOINT_KIND, "model": description})  # fmt: skip
    jax.tree.map(np.testing.assert_array_equal, deterministic.load(old), det_params)
    with pytest.raises(io.CheckpointError, match="config.probabilistic=False"):
        model.load(old)


def test_experiments_refuse_a_cem_config_their_model_cannot_serve():
    from experiments import driving_model, spaceship

    pets = dynamics.DynamicsConfig(ensemble_size=5, probabilistic=True)
    sampling = cem.CEMConfig(stochastic_model=True, ensemble_size=5, n_particles=5)
    spaceship.Config(dynamics=pets, cem=sampling)  # PETS: accepted
    with pytest.raises(ValueError, match="probabilistic=True"):
        spaceship.Config(cem=dataclasses.replace(sampling, ensemble_size=1))
    with pytest.raises(ValueError, match="ensemble_size=5"):
        spaceship.Config(dynamics=dataclasses.replace(pets, ensemble_size=3), cem=sampling)
    with pytest.raises(ValueError, match="probabilistic=True"):
        driving_model.ModelConfig(cem=dataclasses.replace(sampling, ensemble_size=1))
    with pytest.raises(ValueError, match="nll_beta"):
        dynamics.DynamicsConfig(probabilistic=True, nll_beta=1.5)
    with pytest.raises(ValueError, match="needs probabilistic=True"):
        dynamics.DynamicsConfig(nll_beta=0.5)
