"""Batched tower physics and the fast image paths: agreement with the one-tower references."""

import gc
import json

import numpy as np
import pytest

from envs.towers import batch_physics, image, physics
from envs.towers.dataset import (
    DatasetConfig,
    DatasetError,
    generate,
    load_dataset,
    sample_offsets,
    simulate_tower,
)
from envs.towers.params import Params

CONFIG = DatasetConfig()
PARAMS = CONFIG.params


def random_towers(count, seed=0):
    """(count, 4, 6) resting towers of 2-4 blocks, their heights and analytic margins."""
    rng = np.random.default_rng(seed)
    heights = np.array([2 + i % 3 for i in range(count)])
    initial = np.zeros((count, 4, physics.STATE_DIM))
    margins = np.zeros(count)
    for row, n in enumerate(heights):
        state = physics.stacked_state(sample_offsets(rng, (1, n), CONFIG)[0], PARAMS)
        initial[row, :n] = state
        margins[row] = physics.stability_margins(state[:, 0], PARAMS).min()
    return initial, heights, margins


def test_batch_agrees_with_one_tower_simulation_on_clear_cut_towers():
    initial, heights, margins = random_towers(60)
    final, seconds = batch_physics.simulate_batch(initial, heights, PARAMS, CONFIG.horizon)
    clear = np.abs(margins) > 0.1
    assert clear.sum() > 30 and (margins[clear] < 0).sum() > 5 and (margins[clear] > 0).sum() > 5
    for row in np.flatnonzero(clear):
        n = heights[row]
        offsets = np.diff(initial[row, :n, 0], prepend=-0.5)
        alone = simulate_tower(offsets, CONFIG)
        moved = physics.displacement(initial[row, :n], final[row, :n], PARAMS)
        assert (moved.max() > PARAMS.fall_threshold) == alone["fell"] == (margins[row] < 0)
        assert not final[row, n:].any()
        if not alone["fell"]:
            # It ends where it ends alone, up to the creep of blocks resting flush on flat faces,
            # whose contacts the rounding of the offset frame can change (~0.01 at worst).
            np.testing.assert_allclose(final[row, :n, :3], alone["final"][:, :3], atol=0.05)
            assert seconds[row] < CONFIG.horizon
    assert np.all((seconds > 0) & (seconds <= CONFIG.horizon + 1e-12))


def test_batch_is_deterministic_and_independent_of_its_neighbours():
    initial, heights, _ = random_towers(12, seed=1)
    first, seconds = batch_physics.simulate_batch(initial, heights, PARAMS, CONFIG.horizon)
    again, seconds_again = batch_physics.simulate_batch(initial, heights, PARAMS, CONFIG.horizon)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(seconds, seconds_again)
    assert gc.isenabled()  # the collector, paused during the batch, runs again
    gc.disable()
    try:  # ... and stays off if it was off
        # The first tower's frame is the world frame, so alone it gives the same bits.
        lone, _ = batch_physics.simulate_batch(initial[:1], heights[:1], PARAMS, CONFIG.horizon)
        assert not gc.isenabled()
    finally:
        gc.enable()
    np.testing.assert_array_equal(lone[0], first[0])
    offsets = np.diff(initial[0, : heights[0], 0], prepend=-0.5)
    np.testing.assert_array_equal(lone[0, : heights[0]], simulate_tower(offsets, CONFIG)["final"])


def test_batch_rejects_bad_input():
    initial, heights, _ = random_towers(3)
    horizon = CONFIG.horizon
    with pytest.raises(ValueError, match="initial must have shape"):
        batch_physics.simulate_batch(initial[:, :, :3], heights, PARAMS, horizon)
    with pytest.raises(ValueError, match="n_blocks must be"):
        batch_physics.simulate_batch(initial, heights[:2], PARAMS, horizon)
    with pytest.raises(ValueError, match="n_blocks must be"):
        batch_physics.simulate_batch(initial, heights.astype(float), PARAMS, horizon)
    with pytest.raises(ValueError, match="n_blocks must lie"):
        batch_physics.simulate_batch(initial, np.array([2, 5, 1]), PARAMS, horizon)
    broken = initial.copy()
    broken[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        batch_physics.simulate_batch(broken, heights, PARAMS, horizon)
    padded = initial.copy()
    padded[0, 3] = np.nan  # padding past a 2-block tower is ignored
    batch_physics.simulate_batch(padded[:1], heights[:1], PARAMS, 0.1)
    final, seconds = batch_physics.simulate_batch(initial[:0], heights[:0], PARAMS, horizon)
    assert final.shape == (0, 4, physics.STATE_DIM) and seconds.shape == (0,)


@pytest.mark.parametrize("size", [8, 33, 64])
def test_occupancy_and_paint_match_the_reference_bit_for_bit(size):
    params = Params(image_size=size)
    rng = np.random.default_rng(size)
    poses = np.stack(
        [rng.uniform(-6, 5, (40, 4)), rng.uniform(-3, 7, (40, 4)), rng.uniform(-3, 3, (40, 4))],
        axis=-1,
    )
    poses[:5, :, 2] = rng.normal(0.0, 1e-6, (5, 4))  # almost upright
    poses[5:8, :, :2] *= 40.0  # far outside the view
    upright = poses.copy()
    upright[..., 2] = 0.0
    for case in (poses, upright):
        reference = image.block_masks(case, params) > 0
        np.testing.assert_array_equal(image.occupancy(case, params), reference)
    masks = image.occupancy(poses, params)
    colours = np.stack([rng.permutation(6)[:4] for _ in range(40)])
    painted = image.paint(masks, params, colours=colours)
    out = np.zeros_like(painted)
    assert image.paint(masks, params, colours=colours, out=out) is out
    np.testing.assert_array_equal(out, painted)
    # Colours rising with the level: compose's later-over-earlier is paint's larger-wins.
    ordered = np.sort(colours, axis=1)
    reference = np.round(255.0 * image.compose(masks.astype(np.float32), params, colours=ordered))
    np.testing.assert_array_equal(image.paint(masks, params, colours=ordered), reference)
    labels = image.palette_labels(masks, params, colours=colours)
    np.testing.assert_array_equal(image.colourise(labels), painted)
    with pytest.raises(ValueError, match="palette indices"):
        image.colourise(labels + 20)
    palette = np.asarray([(255, 255, 255), (110, 110, 110)])
    plain = image.paint(np.zeros((1, size, size), bool), params)
    assert set(map(tuple, plain.reshape(-1, 3))) <= set(map(tuple, palette))
    with pytest.raises(ValueError, match="out must be"):
        image.paint(masks, params, colours=colours, out=out[:, ::2])


def test_data_of_an_older_generator_version_is_refused(tmp_path):
    tiny = DatasetConfig(n_towers=6, shard_size=6, workers=1, params=Params(image_size=16))
    generate(tiny, tmp_path, log=None)
    manifest = tmp_path / "manifest.json"
    data = json.loads(manifest.read_text())
    data["config"].pop("version")  # as written before versions existed
    manifest.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="version 1"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="version"):
        DatasetConfig(version=1)


@pytest.mark.parametrize("softness", [0.001, 0.03, 0.3])
def test_soft_upright_images_match_compose_bit_for_bit(softness):
    rng = np.random.default_rng(7)
    for size, shape in ((64, (30, 4)), (20, (3,))):
        params = Params(image_size=size)
        centres = np.stack([rng.uniform(-5, 4, shape), rng.uniform(-2, 6, shape)], axis=-1)
        centres[: len(shape) - 1] *= 10.0  # a batch's first tower lies far outside the view
        colours = rng.permutation(6)[: shape[-1]]
        state = np.concatenate([centres, np.zeros((*shape, 1))], axis=-1)
        masks = image.upright_masks(centres, params, softness=softness)
        reference = np.round(255.0 * image.compose(masks, params, colours=colours))
        fast = image.render_state(state, params, colours=colours, softness=softness)
        np.testing.assert_array_equal(fast, reference.astype(np.uint8))
