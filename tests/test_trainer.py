"""The shared supervised trainer: fitting, early stopping, best params, resume, one compile."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import io
from experiments.io import CheckpointError
from world_models.optimizer import make_optimizer
from world_models.trainer import (
    TrainerConfig,
    config_fingerprint,
    evaluate,
    fit,
)

TRUE_W = np.array([[1.5], [-2.0], [0.5]], np.float32)


def make_data(n=256, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = x @ TRUE_W + 0.3 + noise * rng.normal(size=(n, 1)).astype(np.float32)
    return {"x": x, "y": y.astype(np.float32)}


def init_params():
    return {"w": jnp.zeros((3, 1)), "b": jnp.zeros((1,))}


def mse_loss(params, batch, key):
    pred = batch["x"] @ params["w"] + params["b"]
    err = pred - batch["y"]
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}


def test_fits_linear_regression_to_near_zero_loss():
    config = TrainerConfig(learning_rate=0.05, batch_size=32, max_epochs=60, patience=60)
    result = fit(mse_loss, init_params(), make_data(), config, log=None)
    assert result.best_val_loss < 1e-4
    np.testing.assert_allclose(result.params["w"], TRUE_W, atol=1e-2)
    np.testing.assert_allclose(result.params["b"], [0.3], atol=1e-2)
    assert {"epoch", "train_loss", "val_loss", "train_mae", "val_mae", "seconds"} <= set(
        result.history[-1]
    )
    # Validation loss on a held-out set agrees with evaluate() (batch remainder included).
    val = make_data(n=77, seed=5)
    out = evaluate(mse_loss, result.params, val, batch_size=32)
    pred = val["x"] @ np.asarray(result.params["w"]) + np.asarray(result.params["b"])
    np.testing.assert_allclose(out["loss"], np.mean((pred - val["y"]) ** 2), rtol=1e-4, atol=1e-7)


def test_early_stopping_stops_and_keeps_best_params():
    # Pure-noise targets with a big learning rate: validation loss stops improving quickly.
    rng = np.random.default_rng(1)
    data = {"x": rng.normal(size=(64, 3)).astype(np.float32)}
    data["y"] = rng.normal(size=(64, 1)).astype(np.float32)
    config = TrainerConfig(learning_rate=0.5, batch_size=8, max_epochs=200, patience=3)
    result = fit(mse_loss, init_params(), data, config, log=None)
    epochs = len(result.history)
    assert epochs < 200
    val_losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(val_losses))
    assert epochs == result.best_epoch + 1 + config.patience
    assert result.best_val_loss == pytest.approx(min(val_losses))
    # The returned params are the best epoch's, not the last epoch's.
    val_data = {"x": data["x"], "y": data["y"]}
    assert val_losses[-1] > result.best_val_loss
    explicit = fit(mse_loss, init_params(), data, config, val_data=val_data, log=None)
    recomputed = evaluate(mse_loss, explicit.params, val_data)["loss"]
    assert recomputed == pytest.approx(explicit.best_val_loss, rel=1e-5)


def test_checkpoint_resume_continues(tmp_path):
    data = make_data(n=128, noise=0.1)
    path = tmp_path / "fit.ckpt"
    full = TrainerConfig(learning_rate=0.02, batch_size=16, max_epochs=6, patience=100)
    reference = fit(mse_loss, init_params(), data, full, log=None)
    first = fit(
        mse_loss,
        init_params(),
        data,
        TrainerConfig(learning_rate=0.02, batch_size=16, max_epochs=3, patience=100),
        checkpoint_path=path,
        log=None,
    )
    assert len(first.history) == 3 and path.exists()
    resumed = fit(mse_loss, init_params(), data, full, checkpoint_path=path, resume=True, log=None)
    assert [h["epoch"] for h in resumed.history] == list(range(6))
    np.testing.assert_allclose(
        [h["train_loss"] for h in resumed.history],
        [h["train_loss"] for h in reference.history],
        rtol=1e-5,
    )
    for a, b in zip(
        jax.tree.leaves(resumed.params), jax.tree.leaves(reference.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    other = TrainerConfig(learning_rate=0.1, batch_size=16, max_epochs=6)
    with pytest.raises(CheckpointError, match="fingerprint"):
        fit(mse_loss, init_params(), data, other, checkpoint_path=path, resume=True, log=None)


@pytest.mark.parametrize("scan", [True, False])
def test_epoch_compiles_once(scan):
    traces = []

    def counted_loss(params, batch, key):
        traces.append(batch["x"].shape)
        return mse_loss(params, batch, key)

    data = make_data(n=100)
    config = TrainerConfig(batch_size=16, max_epochs=2, patience=100, scan=scan)
    fit(counted_loss, init_params(), data, config, log=None)
    after_two = len(traces)
    traces.clear()
    longer = TrainerConfig(batch_size=16, max_epochs=8, patience=100, scan=scan)
    fit(counted_loss, init_params(), data, longer, log=None)
    # Tracing count does not grow with the number of epochs: train step + eval batch shapes.
    assert len(traces) == after_two
    assert len(traces) <= 3


def test_scan_and_loop_epochs_agree():
    data = make_data(n=96, noise=0.1)
    results = [
        fit(
            mse_loss,
            init_params(),
            data,
            TrainerConfig(batch_size=16, max_epochs=3, scan=s),
            log=None,
        )
        for s in (True, False)
    ]
    np.testing.assert_allclose(
        [h["train_loss"] for h in results[0].history],
        [h["train_loss"] for h in results[1].history],
        rtol=1e-5,
    )
    np.testing.assert_allclose(results[0].params["w"], results[1].params["w"], rtol=1e-5, atol=1e-7)
    val = make_data(n=77, seed=5)
    scanned = evaluate(mse_loss, results[0].params, val, batch_size=16)
    looped = evaluate(mse_loss, results[0].params, val, batch_size=16, scan=False)
    assert scanned["loss"] == pytest.approx(looped["loss"], rel=1e-5)


def test_bad_input_errors():
    data = make_data(n=32)
    bad = {"x": data["x"], "y": data["y"][:10]}
    with pytest.raises(ValueError, match="leading example axis"):
        fit(mse_loss, init_params(), bad, TrainerConfig(max_epochs=1), log=None)
    with pytest.raises(ValueError, match="batch_size"):
        TrainerConfig(batch_size=0)
    nan_data = {"x": data["x"], "y": np.full_like(data["y"], np.nan)}
    with pytest.raises(FloatingPointError, match="epoch 0"):
        fit(mse_loss, init_params(), nan_data, TrainerConfig(max_epochs=2), log=None)
    nan_val = make_data(n=16, seed=3)
    nan_val["y"][3] = np.nan  # NaN never compares lower, so it used to stop early silently
    with pytest.raises(FloatingPointError, match="validation loss is nan at epoch 0.*val_data"):
        fit(mse_loss, init_params(), data, TrainerConfig(max_epochs=5), val_data=nan_val,
            log=None)  # fmt: skip


def test_weight_decay_leaves_normalisation_statistics_alone():
    def scaled_loss(params, batch, key):
        stats = jax.lax.stop_gradient(params["stats"])
        return mse_loss(params["net"], {**batch, "x": batch["x"] / stats["scale"]}, key)

    params = {"net": init_params(), "stats": {"scale": jnp.full((3,), 2.0)}}
    config = TrainerConfig(learning_rate=0.05, max_epochs=3, weight_decay=0.5, patience=3)
    result = fit(scaled_loss, params, make_data(), config, log=None)
    np.testing.assert_array_equal(result.params["stats"]["scale"], 2.0)
    assert float(jnp.abs(result.params["net"]["w"]).sum()) > 0.1  # the weights did train


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_lr_schedule_decays_the_update_size(kind):
    # Adam's update under a constant gradient has the size of the step size itself, so the
    # update sizes trace the schedule: lr at the start, final_lr_fraction * lr after the decay.
    config = TrainerConfig(
        learning_rate=0.1, max_epochs=4, lr_schedule=kind, final_lr_fraction=0.2, max_grad_norm=None
    )
    optimizer = make_optimizer(config, steps_per_epoch=5)
    params = {"w": jnp.zeros(3)}
    state = optimizer.init(params)
    sizes = []
    for _ in range(24):
        updates, state = optimizer.update({"w": jnp.ones(3)}, state, params)
        sizes.append(float(jnp.abs(updates["w"][0])))
    sizes = np.array(sizes)
    assert sizes[0] == pytest.approx(0.1, rel=1e-3)
    assert np.all(np.diff(sizes[:20]) < 0)  # decays over max_epochs * steps_per_epoch updates
    np.testing.assert_allclose(sizes[20:], 0.02, rtol=1e-3)  # then stays at the final size
    quarter = 0.2 + 0.8 * (0.75 if kind == "linear" else 0.5 * (1 + np.cos(np.pi / 4)))
    assert sizes[5] == pytest.approx(0.1 * quarter, rel=1e-3)


def test_default_schedule_is_constant_and_keeps_old_fingerprints():
    config = TrainerConfig()
    assert config.lr_schedule == "constant"
    old_fields = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("lr_schedule", "final_lr_fraction")
    }
    old = io.config_fingerprint(old_fields, ignore=("max_epochs", "patience", "scan"))
    assert config_fingerprint(config) == old  # checkpoints of earlier runs still resume
    # a decaying step size depends on the run length, so max_epochs must match on resume
    cosine = TrainerConfig(lr_schedule="cosine")
    assert config_fingerprint(cosine) != config_fingerprint(
        dataclasses.replace(cosine, max_epochs=7)
    )
    with pytest.raises(ValueError, match="steps_per_epoch"):
        make_optimizer(cosine)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainerConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="final_lr_fraction"):
        TrainerConfig(final_lr_fraction=1.5)


def test_fit_with_a_decaying_schedule_converges():
    data = make_data(n=128)
    config = TrainerConfig(
        learning_rate=0.05, batch_size=16, max_epochs=6, patience=100, lr_schedule="cosine"
    )
    result = fit(mse_loss, init_params(), data, config, log=None)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0]
