import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from world_models import een, frames
from world_models.trainer import TrainerConfig, fit

SIZE = 8


def two_mode_data(n: int, seed: int) -> dict:
    """A dot in row 2 or 5 that moves two pixels left or right, with equal probability."""
    rng = np.random.default_rng(seed)
    rows = rng.choice([2, 5], n)
    sides = rng.choice([-2, 2], n)
    frame = np.zeros((n, SIZE, SIZE, 1), np.float32)
    next_frame = np.zeros_like(frame)
    frame[np.arange(n), rows, 4, 0] = 1.0
    next_frame[np.arange(n), rows, 4 + sides, 0] = 1.0
    return {"frame": frame, "next_frame": next_frame}


@jax.jit
def predictions(g, f, bank, frames, key):
    """Deterministic predictions (N, 8, 8, 1) and 10 EEN samples each (N, 10, 8, 8, 1)."""
    det = jax.vmap(een.predict_deterministic, (None, None, 0))(CONFIG, g, frames)
    zs = een.draw_latents("een", key, (frames.shape[0], 10), bank, CONFIG.latent_dim)
    sample = jax.vmap(jax.vmap(een.predict_latent, (None, None, None, 0)), (None, None, 0, 0))
    return det, sample(CONFIG, f, frames, zs)


CONFIG = een.EENConfig(features=8, latent_dim=2, loss="l2")
# The toy's two trainings take ~15 s on the 2-core CPU (measured 2026-11-27): in the default run,
# as the only checks that the EEN's latent does its job.


@pytest.fixture(scope="module")
def toy():
    data = two_mode_data(512, 0)
    trainer = TrainerConfig(5e-3, 32, max_epochs=15, patience=15, validation_fraction=0.0)
    key = jax.random.PRNGKey(0)
    g0 = een.init_deterministic(key, CONFIG, (SIZE, SIZE, 1))
    g = fit(functools.partial(een.deterministic_loss, CONFIG), g0, data, trainer, log=None)
    g_before = jax.tree_util.tree_map(np.array, g.params)
    e0 = een.init_een(jax.random.PRNGKey(1), CONFIG, g.params, (SIZE, SIZE, 1))
    e = fit(functools.partial(een.een_loss, CONFIG, g.params), e0, data, trainer, log=None)
    bank = een.latent_bank(CONFIG, g.params, e.params["phi"], data)
    test = two_mode_data(64, 1)
    det, samples = predictions(g.params, e.params["f"], bank, test["frame"], jax.random.PRNGKey(3))
    return test, np.asarray(det), np.asarray(samples), g.params, g_before, e.params


def test_deterministic_model_predicts_the_mean_of_the_two_futures(toy):
    test, det, *_ = toy
    rows = np.argmax(test["frame"][:, :, 4, 0], axis=1)
    np.testing.assert_allclose(det[np.arange(64), rows, 2, 0], 0.5, atol=0.15)
    np.testing.assert_allclose(det[np.arange(64), rows, 6, 0], 0.5, atol=0.15)


def test_een_best_of_k_error_falls_well_below_the_deterministic_error(toy):
    test, det, samples, *_ = toy
    det_mse = np.mean((det - test["next_frame"]) ** 2)
    mse = np.mean((samples - test["next_frame"][:, None]) ** 2, axis=(2, 3, 4))
    best, one = mse.min(axis=1).mean(), mse[:, 0].mean()
    assert best < 0.25 * det_mse, (best, det_mse)
    assert best < one  # more samples, better best guess


def test_phase_two_leaves_g_unchanged(toy):
    *_, g, g_before, params = toy
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_before), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert "latent_proj" in params["f"] and "latent_proj" not in g


def test_f_starts_as_g_and_latent_is_bounded():
    config = een.EENConfig(features=4, latent_dim=3)
    shape = (8, 8, 3)

    @jax.jit
    def check(key):
        keys = jax.random.split(key, 5)
        g = een.init_deterministic(keys[0], config, shape)
        params = een.init_een(keys[1], config, g, shape)
        cvae = een.init_cvae(keys[2], config, g, shape)
        x = jax.random.uniform(keys[3], shape)
        y = jax.random.uniform(keys[4], shape)
        f_out = een.predict_latent(config, params["f"], x, jnp.ones(3))
        g_out = een.predict_deterministic(config, g, x)
        z = een.encode_error(config, g, params["phi"], x, 10.0 * y)
        return f_out, g_out, z, een.cvae_posterior(config, cvae["q"], x, y)

    f_out, g_out, z, (mean, log_var) = check(jax.random.PRNGKey(0))
    np.testing.assert_allclose(f_out, g_out, atol=1e-6)  # latent_proj starts at zero
    assert z.shape == (3,) and bool(jnp.all(jnp.abs(z) < 1.0))
    assert mean.shape == log_var.shape == (3,)


def test_the_latent_sees_only_what_g_missed():
    # Two examples that g predicts perfectly have the same residual (zero), so the same z: phi
    # reads y - g(x), not y (which differs between them).
    shape = (8, 8, 1)
    g = een.init_deterministic(jax.random.PRNGKey(0), CONFIG, shape)
    phi = een.init_een(jax.random.PRNGKey(1), CONFIG, g, shape)["phi"]
    frames = jax.random.uniform(jax.random.PRNGKey(2), (2, *shape))
    perfect = jax.vmap(een.predict_deterministic, (None, None, 0))(CONFIG, g, frames)
    assert float(jnp.abs(perfect[0] - perfect[1]).max()) > 1e-3
    z = jax.vmap(een.encode_error, (None, None, None, 0, 0))(CONFIG, g, phi, frames, perfect)
    np.testing.assert_allclose(z[0], z[1], atol=1e-6)
    z_off = een.encode_error(CONFIG, g, phi, frames[0], perfect[0] + 0.5)
    assert float(jnp.abs(z_off - z[0]).max()) > 1e-4


def test_cvae_kl_is_the_closed_form_and_vanishes_at_the_prior(monkeypatch):
    mean = jnp.asarray([0.5, -1.0])
    log_var = jnp.asarray([0.3, -0.2])
    monkeypatch.setattr(een, "predict_latent", lambda config, f, x, z: x)  # recon 0 when y = x
    batch = {"frame": jnp.zeros((2, 8, 8, 1)), "next_frame": jnp.zeros((2, 8, 8, 1))}
    expected = 0.5 * float(jnp.sum(jnp.exp(log_var) + mean**2 - 1.0 - log_var))
    for (m, v), kl in (((mean, log_var), expected), ((0 * mean, 0 * log_var), 0.0)):
        monkeypatch.setattr(een, "cvae_posterior", lambda config, q, x, y, m=m, v=v: (m, v))
        loss, logs = een.cvae_loss(CONFIG, {"q": None, "f": None}, batch, jax.random.PRNGKey(0))
        assert float(logs["kl"]) == pytest.approx(kl, abs=1e-6) and float(logs["recon"]) == 0
        assert float(loss) == pytest.approx(CONFIG.kl_weight * kl, abs=1e-6)
    assert expected > 0


def test_bad_inputs_are_rejected_with_clear_errors():
    config = een.EENConfig(features=4)
    with pytest.raises(ValueError, match="multiples of 8"):
        een.init_deterministic(jax.random.PRNGKey(0), config, (12, 12, 3))
    with pytest.raises(ValueError, match="bank"):
        een.draw_latents("een", jax.random.PRNGKey(0), (2, 3), None, 8)
    with pytest.raises(ValueError, match="loss"):
        een.EENConfig(loss="huber")


def _random_nets(config: een.EENConfig, shape: tuple[int, int, int]):
    """g, {f, phi} and the CVAE's q, every weight perturbed so no layer is the identity or 0."""
    g = een.init_deterministic(jax.random.PRNGKey(7), config, shape)
    nets = {"g": g, **een.init_een(jax.random.PRNGKey(8), config, g, shape)}
    nets["q"] = een.init_cvae(jax.random.PRNGKey(9), config, g, shape)["q"]
    rng = np.random.default_rng(7)
    return jax.tree.map(lambda x: x + 0.1 * rng.standard_normal(x.shape, np.float32), nets)


def _entries(config: een.EENConfig, nets: dict, frame, next_frame, zs) -> dict:
    """The outputs of every public function that takes frames, for one example."""
    return {
        "predict_deterministic": een.predict_deterministic(config, nets["g"], frame),
        "predict_latent": een.predict_latent(config, nets["f"], frame, zs[0]),
        "encode_error": een.encode_error(config, nets["g"], nets["phi"], frame, next_frame),
        "cvae_posterior": een.cvae_posterior(config, nets["q"], frame, next_frame),
        "sample_errors": een.sample_errors(config, nets["f"], frame, next_frame, zs),
        "frame_errors": frames.frame_errors(frame, next_frame),
        "pixel_loss": een.pixel_loss(config, frame, next_frame),
    }


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_every_entry_taking_frames_scales_integer_pixels_as_the_losses_do(dtype):
    # A model trained on uint8 data sees [0, 1] in the losses, so it must see [0, 1] at inference
    # too: integer frames of any dtype give what the same frames divided by 255 give.
    config = een.EENConfig(features=4, latent_dim=3)
    nets = _random_nets(config, (8, 8, 3))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    zs = jnp.asarray(rng.uniform(-1, 1, (4, 3)), jnp.float32)
    scaled = _entries(config, nets, pixels[0] / 255.0, pixels[1] / 255.0, zs)
    raw = _entries(config, nets, pixels[0].astype(dtype), pixels[1].astype(dtype), zs)
    for name in scaled:
        for want, got in zip(
            jax.tree.leaves(scaled[name]), jax.tree.leaves(raw[name]), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)
    assert float(jnp.max(raw["predict_deterministic"])) < 3.0  # not 0..255
    np.testing.assert_allclose(frames.to_float(pixels.astype(dtype)), pixels / 255.0, rtol=1e-6)


def test_frame_shapes_are_checked_in_every_entry_while_tracing():
    config = een.EENConfig(features=4, latent_dim=3)
    nets = _random_nets(config, (8, 8, 3))
    tall, frame, zs = jnp.zeros((20, 8, 3)), jnp.zeros((8, 8, 3)), jnp.zeros((4, 3))
    predict = jax.jit(een.predict_deterministic, static_argnums=0)
    with pytest.raises(ValueError, match=r"frame: expected \(H, W, C\).*\(20, 8, 3\)"):
        predict(config, nets["g"], tall)
    with pytest.raises(ValueError, match=r"frame: expected \(H, W, C\)"):
        een.predict_latent(config, nets["f"], tall, zs[0])
    with pytest.raises(ValueError, match=r"z: expected shape \(3,\)"):
        een.predict_latent(config, nets["f"], frame, jnp.zeros(5))
    with pytest.raises(ValueError, match="frame, next_frame: expected equal shapes"):
        een.encode_error(config, nets["g"], nets["phi"], frame, jnp.zeros((8, 16, 3)))
    with pytest.raises(ValueError, match=r"frame: expected \(H, W, C\)"):
        een.encode_error(config, nets["g"], nets["phi"], tall, tall)
    with pytest.raises(ValueError, match=r"frame: expected \(H, W, C\)"):
        een.cvae_posterior(config, nets["q"], tall, tall)
    with pytest.raises(ValueError, match=r"zs: expected shape \(k, 3\)"):
        een.sample_errors(config, nets["f"], frame, frame, jnp.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"frame: expected \(H, W, C\)"):
        een.sample_errors(config, nets["f"], tall, tall, zs)
    with pytest.raises(ValueError, match="frames: expected integer"):
        frames.to_float(jnp.zeros((8, 8, 3), jnp.complex64))


def test_draw_latents_needs_a_bank_of_latent_dim_columns():
    key = jax.random.PRNGKey(0)
    bank = jnp.arange(40.0).reshape(10, 4)
    zs = een.draw_latents("een", key, (2, 3), bank, 4)
    assert zs.shape == (2, 3, 4)
    assert {tuple(row) for row in np.asarray(zs).reshape(-1, 4)} <= {
        tuple(r) for r in bank.tolist()
    }
    with pytest.raises(
        ValueError, match=r"bank: expected shape \(N >= 1, latent_dim=4\).*\(10, 8\)"
    ):
        een.draw_latents("een", key, (2, 3), jnp.zeros((10, 8)), 4)
    with pytest.raises(ValueError, match="bank"):
        een.draw_latents("een", key, (2, 3), jnp.zeros((0, 4)), 4)
