"""Checkpoint dtypes and exclusive run folders: experiments.io refuses what does not fit."""

import datetime
import json
import threading
import types

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import io

# --- checkpoint dtypes ---------------------------------------------------------------------


def test_load_checkpoint_refuses_a_float64_checkpoint_for_a_float32_target(tmp_path):
    path = tmp_path / "a.ckpt"
    io.save_checkpoint(path, {"layer": {"w": np.ones((2, 3), np.float64)}}, {"kind": "k"})
    target = {"layer": {"w": jnp.zeros((2, 3), jnp.float32)}}
    with pytest.raises(io.CheckpointError) as error:
        io.load_checkpoint(path, target)
    message = str(error.value)
    assert "'/layer/w'" in message and "float64" in message and "float32" in message
    assert str(path) in message


def test_load_checkpoint_refuses_other_integer_widths(tmp_path):
    path = tmp_path / "a.ckpt"
    io.save_checkpoint(path, {"step": np.zeros((), np.int64)}, {})
    with pytest.raises(io.CheckpointError, match=r"'/step'.*int64.*int32"):
        io.load_checkpoint(path, {"step": np.zeros((), np.int32)})


def test_a_damaged_checkpoint_is_refused_and_an_old_format_one_still_loads(tmp_path):
    path = tmp_path / "w.ckpt"
    tree = {"w": np.arange(1000, dtype=np.float32)}
    io.save_checkpoint(path, tree, {"kind": "test"})
    data = bytearray(path.read_bytes())
    data[-400] ^= 0x10  # one bit flipped inside the array payload
    path.write_bytes(bytes(data))
    with pytest.raises(io.CheckpointError, match="checksum does not match"):
        io.load_checkpoint(path, tree)
    # Format 1 (no checksum), as earlier versions wrote it, still loads.
    header = json.dumps({"kind": "test"}).encode()
    legacy = b"WPCKPT1\n" + len(header).to_bytes(8, "little") + header
    path.write_bytes(legacy + flax.serialization.to_bytes(tree))
    loaded, meta = io.load_checkpoint(path, tree, {"kind": "test"})
    np.testing.assert_array_equal(loaded["w"], tree["w"])


def test_a_training_state_round_trips_with_its_dtypes(tmp_path):
    params = {"w": jnp.ones((3, 2), jnp.float32), "b": jnp.zeros(2, jnp.bfloat16)}
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    opt_state = optimizer.init(params)
    _, opt_state = optimizer.update(params, opt_state, params)
    key = jax.random.key_data(jax.random.key(3))
    tree = {"params": params, "opt": opt_state, "key": key, "steps": jnp.asarray(7, jnp.int32)}
    path = io.save_checkpoint(tmp_path / "s.ckpt", tree, {"kind": "train"})
    target = jax.tree.map(jnp.zeros_like, tree)
    loaded, meta = io.load_checkpoint(path, target, {"kind": "train"})
    assert meta["kind"] == "train"
    for want, got in zip(jax.tree.leaves(tree), jax.tree.leaves(loaded), strict=True):
        assert np.asarray(got).dtype == np.asarray(want).dtype
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_python_scalars_match_any_dtype_of_their_kind(tmp_path):
    path = tmp_path / "a.ckpt"
    # A Python counter in the target against the int32 array a jitted step made of it ...
    io.save_checkpoint(path, {"count": jnp.asarray(5, jnp.int32), "loss": 0.5, "done": True}, {})
    tree, _ = io.load_checkpoint(path, {"count": 0, "loss": jnp.zeros((), jnp.float32),
                                        "done": False})  # fmt: skip
    assert int(tree["count"]) == 5 and float(tree["loss"]) == 0.5 and tree["done"] is True
    # ... and a Python scalar in the checkpoint against an array target.
    io.save_checkpoint(path, {"count": 5}, {})
    assert int(io.load_checkpoint(path, {"count": jnp.zeros((), jnp.int32)})[0]["count"]) == 5
    # Only the kind is free: an integer is not a float.
    with pytest.raises(io.CheckpointError, match=r"'/count'.*Python int.*float32"):
        io.load_checkpoint(path, {"count": jnp.zeros((), jnp.float32)})


# --- run folders -----------------------------------------------------------------------------


class _FixedClock(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.datetime(2026, 11, 26, 14, 25, 1)


@pytest.fixture
def fixed_clock(monkeypatch):
    monkeypatch.setattr(io, "_dt", types.SimpleNamespace(datetime=_FixedClock))


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, fixed_clock):
    first = io.make_run_dir(tmp_path / "results")
    (first / "config.json").write_text("{}")
    second = io.make_run_dir(tmp_path / "results")
    third = io.make_run_dir(tmp_path / "results")
    assert [p.name for p in (first, second, third)] == [
        "20261126-142501",
        "20261126-142501-1",
        "20261126-142501-2",
    ]
    assert list(second.iterdir()) == [] and (first / "config.json").exists()


def test_concurrent_runs_never_share_a_folder(tmp_path, fixed_clock):
    folders, barrier = [], threading.Barrier(8)

    def start_run():
        barrier.wait()
        folders.append(io.make_run_dir(tmp_path))

    threads = [threading.Thread(target=start_run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(folders)) == 8 and all(p.is_dir() for p in folders)


def test_a_named_run_folder_is_reused(tmp_path):
    first = io.make_run_dir(tmp_path, "mine")
    (first / "checkpoint.ckpt").write_bytes(b"x")
    assert io.make_run_dir(tmp_path, "mine") == first
    assert (first / "checkpoint.ckpt").exists()
