import dataclasses
import shutil

import numpy as np
import pytest

from envs import shards
from envs.poke import dataset, physics
from envs.poke.params import PokeParams

CONFIG = dataset.PokeDataConfig(
    num_examples=24, shard_size=10, seed=3, params=PokeParams(image_size=16)
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("poke")
    dataset.generate(CONFIG, folder, num_workers=1, log=None)
    return folder


def test_shapes_and_counts(generated):
    data = dataset.load(generated, CONFIG)
    assert data["frame"].shape == data["next_frame"].shape == (24, 16, 16, 3)
    assert data["poke"].shape == (24, 4) and data["objects"].shape == (24, 3, 8)
    assert data["frame"].dtype == np.uint8
    moved = np.abs(data["next_objects"][..., 1:3] - data["objects"][..., 1:3]).max(axis=(1, 2))
    assert (moved[data["aimed"]] > 0.01).mean() > 0.8  # aimed pokes move something


def test_deterministic_for_a_seed_whatever_the_workers(generated, tmp_path):
    dataset.generate(CONFIG, tmp_path, num_workers=2, log=None)
    a, b = dataset.load(generated), dataset.load(tmp_path)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    other = dataset.make_shard(dataclasses.replace(CONFIG, seed=4), 0)
    assert not np.array_equal(other["poke"], a["poke"][:10])


def test_triples_agree_with_the_simulator(generated):
    data = dataset.load(generated)
    rng = np.random.default_rng(np.random.SeedSequence(CONFIG.seed, spawn_key=(0,)))
    state = physics.sample_state(rng, CONFIG.params)
    action, _ = dataset.sample_poke(rng, state, CONFIG.params, CONFIG.aimed_fraction)
    np.testing.assert_array_equal(data["poke"][0], action.astype(np.float32))
    after = physics.transition(CONFIG.params, state, action)
    np.testing.assert_allclose(
        data["next_objects"][0, : len(after.kind), 1:3], after.pose[:, :2], atol=1e-6
    )


def test_truncated_shard_and_other_config_are_refused(generated, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(generated, folder)
    with pytest.raises(shards.ShardError, match="another config"):
        dataset.load(folder, dataclasses.replace(CONFIG, seed=9))
    with pytest.raises(shards.ShardError, match="another config"):
        dataset.generate(dataclasses.replace(CONFIG, seed=9), folder, log=None)
    shard = folder / shards.shard_name(1)
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(shards.ShardError, match="truncated or corrupt"):
        dataset.load(folder)


def test_resume_skips_complete_shards(generated, tmp_path):
    folder = tmp_path / "resume"
    shutil.copytree(generated, folder)
    (folder / shards.shard_name(2)).unlink()
    mtime = (folder / shards.shard_name(0)).stat().st_mtime_ns
    messages = []
    dataset.generate(CONFIG, folder, log=messages.append)
    assert "2 of 3 shards present" in messages[0]
    assert (folder / shards.shard_name(0)).stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(dataset.load(folder)["poke"], dataset.load(generated)["poke"])


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="aimed_fraction"):
        dataset.PokeDataConfig(aimed_fraction=1.5)
