"""Tower dataset: determinism, balance, consistency, resume, and corrupt-shard detection."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.towers import image, physics
from envs.towers.dataset import (
    ARRAY_NAMES,
    DatasetConfig,
    DatasetError,
    decode,
    generate,
    load_dataset,
    make_shard,
    sample_offsets,
    shard_path,
)
from envs.towers.params import BLOCK_COLOURS, Params
from experiments import io

TINY = DatasetConfig(n_towers=18, shard_size=12, workers=1, params=Params(image_size=32))


def test_shards_are_deterministic_for_a_seed_and_balanced(tmp_path):
    generate(TINY, tmp_path / "a", log=None)
    # Two worker processes (spawn) write the same bytes' worth of arrays.
    parallel = dataclasses.replace(TINY, workers=2)
    generate(parallel, tmp_path / "b", log=None)
    a, b = load_dataset(tmp_path / "a"), load_dataset(tmp_path / "b")
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert len(a["fell"]) == 18
    first = decode(make_shard(TINY, 0))  # load_dataset decodes what make_shard stores
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(a[name][:12], first[name], err_msg=name)
    other = make_shard(dataclasses.replace(TINY, seed=1), 0)
    assert not np.array_equal(other["offsets"], a["offsets"][:12])
    shard = io.read_npz(shard_path(tmp_path / "a", 0))
    for n in TINY.block_counts:
        fell = shard["fell"][shard["n_blocks"] == n]
        assert len(fell) == 4 and fell.sum() == 2


def test_examples_are_consistent():
    stored = make_shard(TINY, 0)
    shard = decode(stored)
    assert shard["masks"].dtype == bool and shard["masks"].shape == (12, 4, 32, 32)
    assert shard["image"].shape == shard["final_image"].shape == (12, 32, 32, 3)
    assert stored["image"].shape == (12, 32, 32) and stored["masks"].shape == (12, 4, 32, 4)
    params = TINY.params
    for i in range(len(shard["fell"])):
        n = shard["n_blocks"][i]
        colours = shard["colours"][i, :n]
        assert sorted(colours) == sorted(set(colours)) and np.all(shard["colours"][i, n:] == -1)
        unused = np.setdiff1d(np.arange(TINY.max_blocks), colours)
        assert not shard["masks"][i, unused].any()
        moved = shard["displacement"][i, :n].max()
        assert shard["fell"][i] == (moved > params.fall_threshold)
        # Mask channel c is painted in colour c in the final frame (a touching block drawn
        # later may cover a boundary pixel).
        for c in colours:
            pixels = shard["final_image"][i][shard["masks"][i, c]]
            if len(pixels):
                assert np.mean(np.all(pixels == BLOCK_COLOURS[c], axis=-1)) > 0.9
        np.testing.assert_array_equal(
            shard["image"][i],
            image.render_state(shard["initial"][i, :n], params, colours=colours),
        )
    # Every colour appears at several levels across the shard.
    assert len(set(shard["colours"][:, 0].tolist())) > 1


def test_truncated_shard_is_detected_and_regenerated(tmp_path):
    generate(TINY, tmp_path, log=None)
    before = load_dataset(tmp_path)
    path = shard_path(tmp_path, 1)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        load_dataset(tmp_path)
    untouched = shard_path(tmp_path, 0).stat().st_mtime_ns
    messages = []
    generate(TINY, tmp_path, log=messages.append)
    assert len(messages) == 1 and "1 of 2 shards present, generating 1" in messages[0]
    assert shard_path(tmp_path, 0).stat().st_mtime_ns == untouched
    after = load_dataset(tmp_path)
    for name in ARRAY_NAMES:
        np.testing.assert_array_equal(before[name], after[name])
    subset = load_dataset(tmp_path, block_counts=(2,))
    assert set(subset["n_blocks"].tolist()) == {2}


def test_mismatched_config_and_missing_data_are_errors(tmp_path):
    generate(TINY, tmp_path, log=None)
    with pytest.raises(DatasetError, match="another config"):
        generate(dataclasses.replace(TINY, seed=5), tmp_path, log=None)
    shard_path(tmp_path, 0).unlink()
    with pytest.raises(DatasetError, match="missing"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="generate"):
        load_dataset(tmp_path / "nothing")
    with pytest.raises(ValueError, match="block_counts"):
        DatasetConfig(block_counts=(5,))
    with pytest.raises(ValueError, match="sampler"):
        DatasetConfig(sampler="harmonic")


def test_workers_do_not_import_jax():
    # Spawned workers import the generator's module; JAX there would cost seconds per worker.
    code = "import sys, envs.towers.dataset; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_overhang_sampler_stays_near_the_stability_boundary():
    def near_boundary(config):
        offsets = sample_offsets(np.random.default_rng(0), (2000, 4), config)
        x = physics.stacked_state(offsets, config.params)[..., 0]
        margins = physics.stability_margins(x, config.params).min(axis=-1)
        return np.mean(np.abs(margins) < 0.15), offsets

    overhang = dataclasses.replace(TINY, sampler="overhang", overhang_share=1.0)
    share, offsets = near_boundary(overhang)
    assert 0.35 < offsets[:, 3].mean() < 0.58  # top offset ~ 0.5 * U(0.7, 1.15)
    assert share > 0.6 and share > 2 * near_boundary(TINY)[0]
