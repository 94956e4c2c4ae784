"""PhysNet: shapes of the one-sample module under vmap, loss terms, IoU, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from world_models import physnet

SIZE = 32


@pytest.fixture(scope="module")
def nets():
    kwargs = {"features": (4, 8, 8, 8), "decoder_features": (8, 4, 4)}
    model = physnet.PhysNet(**kwargs)
    params = physnet.init_params(model, jax.random.PRNGKey(0), SIZE)
    # The classifier is PhysNet without its decoder: its parameters are a subset (one init).
    classifier = physnet.PhysNet(with_masks=False, **kwargs)
    shapes = jax.eval_shape(lambda: physnet.init_params(classifier, jax.random.PRNGKey(0), SIZE))
    assert set(shapes) < set(params)
    return {True: (model, params), False: (classifier, {k: params[k] for k in shapes})}


def fake_batch(n=3):
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8),
        "fell": np.array([0.0, 1.0, 1.0][:n], np.float32),
        "masks": rng.integers(0, 2, (n, 4, SIZE, SIZE), dtype=np.uint8),
        "present": np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]][:n], np.float32),
    }


def test_shapes_under_vmap(nets):
    model, params = nets[True]
    images = jnp.asarray(fake_batch()["image"])
    fall, masks = jax.vmap(lambda im: model.apply({"params": params}, im))(images)
    assert fall.shape == (3,) and masks.shape == (3, 4, SIZE, SIZE)
    # One sample alone gives the same numbers as its row of the batch.
    single_fall, single_masks = model.apply({"params": params}, images[1])
    np.testing.assert_allclose(single_fall, fall[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single_masks, masks[1], rtol=1e-5, atol=1e-5)
    classifier, c_params = nets[False]
    logit, none = classifier.apply({"params": c_params}, images[0])
    assert logit.shape == () and none is None


def test_loss_is_fall_bce_plus_mask_bce_of_present_blocks(nets):
    model, params = nets[True]
    batch = fake_batch()
    loss_fn = jax.jit(lambda p, b: physnet.batch_loss(model, p, b, mask_weight=2.0))
    loss, metrics = loss_fn(params, batch)
    loss, metrics = float(loss), {k: float(v) for k, v in metrics.items()}
    assert loss == pytest.approx(metrics["fall_bce"] + 2.0 * metrics["mask_bce"], rel=1e-5)
    # Absent blocks do not count: changing their target masks leaves the loss unchanged.
    changed = {**batch, "masks": batch["masks"].copy()}
    changed["masks"][0, 2:] = 1 - changed["masks"][0, 2:]
    assert float(loss_fn(params, changed)[0]) == pytest.approx(loss, rel=1e-6)
    assert 0.0 <= metrics["accuracy"] <= 1.0 and 0.0 <= metrics["mask_iou"] <= 1.0
    grads = jax.jit(jax.grad(lambda p: loss_fn(p, batch)[0]))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


class _FixedLogits:
    """Stands in for PhysNet: returns the given logits whatever the image."""

    def __init__(self, fall_logit, mask_logits):
        self.outputs = (jnp.asarray(fall_logit), jnp.asarray(mask_logits))

    def apply(self, variables, image):
        return self.outputs


def test_losses_and_metrics_reward_the_right_answer_and_punish_the_wrong_one():
    target = np.zeros((4, 8, 8), np.float32)
    target[0, 2:5, 2:5] = 1.0  # one present block, settled here
    example = {"image": jnp.zeros((8, 8, 3), jnp.uint8), "fell": jnp.asarray(1.0),
               "masks": jnp.asarray(target), "present": jnp.asarray([1.0, 0, 0, 0])}  # fmt: skip
    confident = 10.0 * (2.0 * target - 1.0)
    right, right_logs = physnet.sample_loss(_FixedLogits(10.0, confident), None, example)
    wrong, wrong_logs = physnet.sample_loss(_FixedLogits(-10.0, -confident), None, example)
    assert float(right) < 1e-3 < 5.0 < float(wrong)
    assert float(right_logs["accuracy"]) == 1.0 and float(wrong_logs["accuracy"]) == 0.0
    assert float(right_logs["mask_iou"]) == 1.0 and float(wrong_logs["mask_iou"]) == 0.0
    standing = {**example, "fell": jnp.asarray(0.0)}
    _, logs = physnet.sample_loss(_FixedLogits(-3.0, confident), None, standing)
    assert float(logs["accuracy"]) == 1.0 and float(logs["fall_bce"]) < 0.05


def test_masks_iou_by_hand():
    predicted = np.zeros((3, 4, 4), bool)
    target = np.zeros((3, 4, 4), bool)
    predicted[0, :2, :2] = True  # 4 pixels
    target[0, :2, :] = True  # 8 pixels, 4 shared -> IoU 0.5
    predicted[1, 0, 0] = True  # disjoint -> IoU 0
    target[1, 3, 3] = True
    # Level 2: both empty -> 1, but it is absent and must not count.
    iou = physnet.masks_iou(jnp.asarray(predicted), jnp.asarray(target), jnp.array([1.0, 1.0, 0.0]))
    assert float(iou) == pytest.approx(0.25)


def test_bad_image_shape_is_an_error(nets):
    model, params = nets[True]
    with pytest.raises(ValueError, match="divisible by 16"):
        model.apply({"params": params}, jnp.zeros((30, 30, 3)))
    with pytest.raises(ValueError, match=r"\(S, S, 3\)"):
        model.apply({"params": params}, jnp.zeros((2, SIZE, SIZE, 3)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_integer_images_of_any_dtype_are_scaled_like_uint8(nets, dtype):
    model, params = nets[True]
    image = fake_batch(1)["image"][0]
    want = physnet.fall_probability(model, params, jnp.asarray(image / 255.0, jnp.float32))
    for pixels in (image, image.astype(dtype)):
        got = physnet.fall_probability(model, params, pixels)
        assert float(got) == pytest.approx(float(want), abs=1e-5)


@pytest.mark.parametrize("shape", [(SIZE, SIZE + 8, 3), (SIZE + 16, SIZE, 3), (0, 0, 3)])
def test_non_square_images_are_an_error_naming_the_shape(nets, shape):
    model, params = nets[True]
    with pytest.raises(ValueError, match=rf"image: expected a square.*{shape[0]}, {shape[1]}, 3"):
        model.apply({"params": params}, jnp.zeros(shape))
    with pytest.raises(ValueError, match="image_size"):
        physnet.init_params(model, jax.random.PRNGKey(0), 40)
