"""The state dynamics model and its data collection, on spaceship transitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.jax_env import make_jax_env
from experiments import io
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
    # one member as a model of its own: its step is that member's
    alone, alone_params = model.member(params, 2)
    assert alone.config.ensemble_size == 1 and alone.obs_dim == 3
    for got, want in zip(
        alone.step(alone_params, obs, action),
        model.member_step(members[2], obs, action),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="members 0..2"):
        model.member(params, 3)
    with pytest.raises(ValueError, match="stats/obs_mean"):
        model.member(members[0], 0)


def test_normalisation_statistics_come_from_the_training_part_only(monkeypatch):
    rng = np.random.default_rng(0)
    n = 40
    obs = np.linspace(0.0, 39.0, n, dtype=np.float32)[:, None].repeat(3, 1)
    fake = data_lib.Transitions(
        obs, rng.normal(size=(n, 2)).astype(np.float32), np.zeros(n, np.float32), obs + 1.0,
        np.zeros(n, bool),
    )  # fmt: skip
    seen = {}

    def recording_fit(loss, params, data, config, val_data=None, log=None, **kwargs):
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


def _fake_data(n=64, obs_dim=3, action_dim=2, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    return data_lib.Transitions(
        obs, rng.normal(size=(n, action_dim)).astype(np.float32),
        rng.normal(size=n).astype(np.float32), obs + 0.1, np.zeros(n, bool),
    )  # fmt: skip


def test_wrong_shapes_name_the_argument_the_expected_and_the_actual_shape():
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,), ensemble_size=2), 13, 2)
    params = model.template()
    obs, action = jnp.zeros(13), jnp.zeros(2)
    step = jax.jit(model.step)
    with pytest.raises(ValueError, match=r"obs: expected shape \(13,\).*got \(12,\)"):
        step(params, jnp.zeros(12), action)
    with pytest.raises(ValueError, match=r"action: expected shape \(2,\).*got \(3,\)"):
        model.step(params, obs, jnp.zeros(3))
    member = jax.tree.map(lambda x: x[0], params)
    with pytest.raises(ValueError, match=r"params: expected .* \(2, 13\), got \(13,\)"):
        model.step(member, obs, action)  # CEM with ensemble_size > 1 hands out one member
    with pytest.raises(ValueError, match=r"member: expected .* \(13,\), got \(2, 13\)"):
        model.member_step(params, obs, action)
    assert model.member_step(member, obs, action)[0].shape == (13,)


def test_fit_names_a_terminated_of_the_wrong_shape():
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,)), 13, 2)
    data = _fake_data(obs_dim=13)
    bad = data._replace(terminated=np.zeros((64, 1), bool))
    config = trainer.TrainerConfig(max_epochs=1)
    with pytest.raises(ValueError, match=r"data.terminated: expected shape \(64,\), got \(64, 1\)"):
        model.fit(bad, config, jax.random.key(0), log=None)


def test_fit_checkpoints_and_resumes_through_the_trainer(tmp_path):
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,)), 3, 2)
    data, path = _fake_data(), tmp_path / "fit.ckpt"
    config = trainer.TrainerConfig(batch_size=16, max_epochs=2, patience=5)
    first = model.fit(data, config, jax.random.key(0), checkpoint_path=path, log=None)
    assert path.exists() and len(first.history) == 2
    longer = trainer.TrainerConfig(batch_size=16, max_epochs=3, patience=5)
    resumed = model.fit(
        data, longer, jax.random.key(0), checkpoint_path=path, resume=True, log=None
    )
    assert len(resumed.history) == 3  # two epochs restored, one trained
    for old, new in zip(first.history, resumed.history[:2], strict=True):
        assert old["val_loss"] == new["val_loss"]


def test_save_and_load_round_trip_and_refuse_another_model(tmp_path):
    model = dynamics.DynamicsModel(dynamics.DynamicsConfig((8,), ensemble_size=2), 3, 2)
    params = model.init(jax.random.key(1), _fake_data())
    path = model.save(tmp_path / "model.ckpt", params)
    loaded = model.load(path)
    for want, got in zip(jax.tree.leaves(params), jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    others = {
        "config.hidden_sizes": dynamics.DynamicsModel(dynamics.DynamicsConfig((16,), 2), 3, 2),
        "config.ensemble_size": dynamics.DynamicsModel(dynamics.DynamicsConfig((8,), 3), 3, 2),
        "obs_dim": dynamics.DynamicsModel(model.config, 4, 2),
        "simplex_mask": dynamics.DynamicsModel(model.config, 3, 2, (True, True)),
    }
    for field, other in others.items():
        with pytest.raises(io.CheckpointError, match=rf"{field}=.*refusing"):
            other.load(path)
    io.save_checkpoint(tmp_path / "other.ckpt", params, {"kind": "trainer"})
    with pytest.raises(io.CheckpointError, match="kind"):
        model.load(tmp_path / "other.ckpt")


def test_collected_data_reshapes_into_time_major_trajectories(collected):
    # Collected.data is flattened time-major then env: obs.reshape(-1, n_envs, D) is distill's
    # (T, B, D) buffer_obs, whose column b is env b's consecutive steps.
    n_envs, dim = 64, collected.data.obs.shape[1]  # collect's default n_envs
    obs = collected.data.obs.reshape(-1, n_envs, dim)
    next_obs = collected.data.next_obs.reshape(-1, n_envs, dim)
    ended = collected.data.terminated.reshape(-1, n_envs)
    follows = np.all(np.isclose(next_obs[:-1], obs[1:], atol=1e-6), axis=-1)
    continuing = ~ended[:-1]
    # Only truncations (not stored) may break a continuing column; they are rare.
    assert follows[continuing].mean() > 0.95
    env_major = collected.data.obs.reshape(n_envs, -1, dim).transpose(1, 0, 2)
    assert np.mean(np.all(np.isclose(next_obs[:-1], env_major[1:]), axis=-1)) < 0.5
