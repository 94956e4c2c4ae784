"""The state dynamics model and its data collection, on spaceship transitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.jax_env import make_jax_env
from planners import relax
from world_models import data as data_lib
from world_models import dynamics, trainer

DT = 0.1  # SpaceshipParams.dt [s]


@pytest.fixture(scope="module")
def env():
    return make_jax_env("worldplan/Spaceship-v0", action_mode="continuous")


@pytest.fixture(scope="module")
def collected(env):
    rl = relax.Continuous(2)
    policy = data_lib.sticky_policy(rl, 0.8)
    return data_lib.collect(
        env, policy, rl.random(jax.random.key(1)), rl, 12_800, jax.random.key(0)
    )


def constant_velocity(obs):
    """Baseline: the ship keeps its velocity; relative vectors shift by -v dt."""
    shift = DT * obs[:, 2:4]
    out = obs.copy()
    out[:, 0:2] += shift
    for start in (4, 6, 8):
        out[:, start : start + 2] -= shift
    return out


def test_collect_counts_env_steps_and_encodes_actions(collected):
    assert collected.env_steps == 12_800
    assert len(collected.data.obs) == collected.env_steps
    assert collected.data.action.shape == (collected.env_steps, 2)
    assert np.all(np.abs(collected.data.action) <= 1.0)
    # autoreset: the stored next_obs is the real successor, also at episode ends
    assert np.all(np.isfinite(collected.data.next_obs))
    assert len(collected.episode_returns) > 0


def test_model_fits_held_out_data_far_better_than_constant_velocity(collected):
    train, held_out = data_lib.split(collected.data, 0.2, seed=0)
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig(hidden_sizes=(64, 64)), 13, 2)
    config = trainer.TrainerConfig(learning_rate=3e-3, batch_size=256, max_epochs=20, patience=5)
    fit = model.fit(train, config, jax.random.key(0), log=None)
    obs_error, _ = dynamics.prediction_errors(model, fit.params, held_out)
    baseline = np.mean((constant_velocity(held_out.obs) - held_out.next_obs) ** 2, axis=0)
    velocity = slice(2, 4)  # gravity and thrust act here
    assert obs_error[velocity].sum() < 0.1 * baseline[velocity].sum()
    # ship and planet coordinates are continuous; the target entries (6-9) jump when a target is
    # reached, which neither predictor anticipates, so they are only required not to be worse.
    smooth = slice(0, 6)
    assert obs_error[smooth].sum() < 0.2 * baseline[smooth].sum()
    assert obs_error[6:10].sum() < 1.2 * baseline[6:10].sum()
    # Crash/escape penalties (-50) and target bonuses (+10) are rare jumps that dominate the reward
    # variance; the smooth part (progress, fuel) must be predicted well: compare typical errors.
    predict = jax.vmap(model.step, in_axes=(None, 0, 0))
    _, reward = predict(fit.params, jnp.asarray(held_out.obs), jnp.asarray(held_out.action))
    typical_error = np.median(np.abs(np.asarray(reward) - held_out.reward))
    typical_spread = np.median(np.abs(held_out.reward - np.median(held_out.reward)))
    assert typical_error < 0.3 * typical_spread


def test_ensemble_params_have_member_axis_and_step_averages():
    rng = np.random.default_rng(0)
    n = 64
    fake = data_lib.Transitions(
        rng.normal(size=(n, 3)).astype(np.float32),
        rng.normal(size=(n, 2)).astype(np.float32),
        rng.normal(size=n).astype(np.float32),
        rng.normal(size=(n, 3)).astype(np.float32),
        np.zeros(n, bool),
    )
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,), ensemble_size=3), 3, 2)
    params = model.init(jax.random.key(0), fake)
    assert all(x.shape[0] == 3 for x in jax.tree.leaves(params))
    params = jax.tree.map(lambda x: x + 0.1 * jnp.ones_like(x), params)  # members now predict
    members = [jax.tree.map(lambda x, m=m: x[m], params) for m in range(3)]
    obs, action = jnp.asarray(fake.obs[0]), jnp.asarray(fake.action[0])
    expected = np.mean([model.member_step(p, obs, action)[0] for p in members], axis=0)
    np.testing.assert_allclose(model.step(params, obs, action)[0], expected, rtol=1e-5)


def test_normalisation_statistics_come_from_the_training_part_only(monkeypatch):
    rng = np.random.default_rng(0)
    n = 40
    obs = np.linspace(0.0, 39.0, n, dtype=np.float32)[:, None].repeat(3, 1)
    fake = data_lib.Transitions(
        obs, rng.normal(size=(n, 2)).astype(np.float32), np.zeros(n, np.float32), obs + 1.0,
        np.zeros(n, bool),
    )  # fmt: skip
    seen = {}

    def recording_fit(loss, params, data, config, val_data=None, log=None):
        seen["train"], seen["val"] = np.asarray(data.obs), np.asarray(val_data.obs)
        return trainer.FitResult(params, [], -1, 0.0)

    monkeypatch.setattr(dynamics.trainer, "fit", recording_fit)
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,)), 3, 2)
    config = trainer.TrainerConfig(validation_fraction=0.25, max_epochs=1)
    fit = model.fit(fake, config, jax.random.key(0), log=None)
    assert len(seen["val"]) == 10 and len(seen["train"]) == 30
    np.testing.assert_allclose(fit.params["stats"]["obs_mean"][0], seen["train"].mean(0), rtol=1e-5)
    assert abs(seen["train"].mean() - obs.mean()) > 0.1  # the split moved the mean


def test_bad_data_is_rejected_with_field_name():
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,)), 3, 2)
    bad = data_lib.Transitions(
        np.zeros((4, 3)), np.zeros((4, 5)), np.zeros(4), np.zeros((4, 3)), np.zeros(4, bool)
    )
    with pytest.raises(ValueError, match="data.action"):
        model.check(bad)
    nan = bad._replace(action=np.zeros((4, 2)), reward=np.array([0, np.nan, 0, 0]))
    with pytest.raises(ValueError, match="data.reward"):
        model.check(nan)
