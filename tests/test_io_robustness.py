"""Checkpoint dtypes, exclusive run folders, atomic figures/videos, clear errors on bad settings."""

import dataclasses
import datetime
import json
import os
import sys
import threading
import types

import flax.serialization
import jax
import jax.numpy as jnp
import matplotlib.figure
import numpy as np
import optax
import pytest
from PIL import Image

from agents import a2c
from agents.common import cli
from envs.towers.params import BLOCK_COLOURS, Params
from experiments import io, render, towers_report
from planners import checkpoints, gbp, shaping
from world_models import dynamics

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


# --- atomic figures and videos ---------------------------------------------------------------


def _failing_savefig(self, fname, *args, **kwargs):
    """Writes half a file where it was told to, then fails (a crash mid-write)."""
    if isinstance(fname, str | os.PathLike):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG partial")
    raise OSError("disk full")


class _FakePhysNet:
    def apply(self, variables, image):
        size = image.shape[0]
        return jnp.zeros(()), jnp.ones((len(BLOCK_COLOURS), size, size))


def _mask_grid_inputs():
    params = Params()
    size = params.image_size
    blank = np.zeros((2, size, size, 3), np.uint8)
    tests = {2: {"image": blank, "final_image": blank, "colours": np.array([[0, 1], [2, 3]]),
                 "fell": np.array([False, True])}}  # fmt: skip
    return (_FakePhysNet(), {}), tests, params


def test_mask_grid_is_a_png_written_atomically(tmp_path, monkeypatch):
    model, tests, params = _mask_grid_inputs()
    path = towers_report.save_mask_grid(tmp_path / "masks.png", model, tests, params)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["masks.png"]
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _failing_savefig)
    with pytest.raises(OSError, match="disk full"):
        towers_report.save_mask_grid(tmp_path / "failed.png", model, tests, params)
    assert [p.name for p in tmp_path.iterdir()] == ["masks.png"]


def _frames(n=3):
    return [np.full((8, 8, 3), 40 * i, np.uint8) for i in range(n)]


def test_write_video_writes_a_gif_and_leaves_no_temporary_file(tmp_path):
    path = render.write_video(_frames(), tmp_path / "out" / "episode.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 3
    assert [p.name for p in path.parent.iterdir()] == ["episode.gif"]


def test_atomic_files_get_the_mode_a_plain_open_gives(tmp_path):
    old = os.umask(0o022)
    try:
        written = [
            io.write_json(tmp_path / "a.json", {"a": 1}),
            io.save_checkpoint(tmp_path / "b.ckpt", {"w": np.ones(2, np.float32)}, {"kind": "k"}),
            render.write_video(_frames(), tmp_path / "c.gif", fps=10),
        ]
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    plain = (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert plain == 0o644
    for path in written:  # mkstemp alone would leave 0600
        assert path.stat().st_mode & 0o777 == plain, path


def test_render_refuses_an_unwritable_video_before_playing(monkeypatch):
    played = []
    monkeypatch.setattr(render.gym, "make", lambda *a, **k: played.append(1))
    with pytest.raises(ValueError, match="--out must end in .gif or .mp4"):
        render.main(render.Config(out="episode.avi"))
    monkeypatch.setitem(sys.modules, "imageio.v2", None)  # its import fails
    with pytest.raises(ImportError, match=r"pip install -e '\.\[video\]'"):
        render.main(render.Config(out="episode.mp4"))
    assert played == []


def test_an_interrupted_gif_leaves_the_old_video_intact(tmp_path, monkeypatch):
    path = tmp_path / "episode.gif"
    path.write_bytes(b"old video")

    def crash(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"GIF89a partial")
        raise OSError("killed")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OSError, match="killed"):
        render.write_video(_frames(), path, fps=10)
    assert path.read_bytes() == b"old video"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.gif"]


def test_mp4_goes_through_a_temporary_mp4_in_the_same_folder(tmp_path, monkeypatch):
    imageio = pytest.importorskip("imageio.v2")
    written = []

    def mimwrite(uri, frames, fps):
        written.append(uri)
        with open(uri, "wb") as f:
            f.write(b"video of %d frames" % len(frames))

    monkeypatch.setattr(imageio, "mimwrite", mimwrite)
    path = render.write_video(_frames(), tmp_path / "episode.mp4", fps=10)
    (temporary,) = map(os.fspath, written)
    assert temporary != os.fspath(path) and temporary.endswith(".mp4")
    assert os.path.dirname(temporary) == os.fspath(tmp_path)
    assert path.read_bytes() == b"video of 3 frames"
    assert [p.name for p in tmp_path.iterdir()] == ["episode.mp4"]


# --- corrupt or incomplete run settings ------------------------------------------------------


def _planner_settings():
    return {
        "action_mode": "continuous",
        "obs_dim": 4,
        "dynamics": dataclasses.asdict(dynamics.DynamicsConfig()),
        "gbp": dataclasses.asdict(gbp.GBPConfig()),
        "gbp_true": dataclasses.asdict(gbp.GBPConfig()),
        "barrier": dataclasses.asdict(shaping.BarrierConfig(weight=0.0)),
        "distill_hidden": [8],
        "a2c": None,
    }


def _write_planners(run_dir, settings):
    io.write_json(run_dir / checkpoints.SETTINGS, settings)
    return run_dir


def test_valid_planner_settings_still_load(tmp_path):
    run_dir = _write_planners(tmp_path, _planner_settings())
    assert isinstance(checkpoints.load_policy(run_dir, "gbp-true"), checkpoints.HostPolicy)


def test_truncated_planner_settings_name_the_file(tmp_path):
    text = json.dumps(_planner_settings())
    (tmp_path / checkpoints.SETTINGS).write_text(text[: len(text) // 2])
    with pytest.raises(io.CheckpointError, match=r"planners\.json"):
        checkpoints.load_policy(tmp_path, "gbp-true")


def test_planner_settings_missing_a_key_name_the_file_and_key(tmp_path):
    settings = _planner_settings()
    del settings["gbp_true"]
    run_dir = _write_planners(tmp_path, settings)
    with pytest.raises(io.CheckpointError, match=r"planners\.json: missing key 'gbp_true'"):
        checkpoints.load_policy(run_dir, "gbp-true")


@pytest.mark.parametrize(("policy", "entry"), [("gbp-true", "gbp_true"), ("gbp", "dynamics"),
                                               ("gbp", "barrier")])  # fmt: skip
def test_planner_settings_with_an_unknown_field_name_the_file_and_field(tmp_path, policy, entry):
    settings = _planner_settings()
    settings[entry]["learning_rat"] = 0.1
    run_dir = _write_planners(tmp_path, settings)
    with pytest.raises(io.CheckpointError, match=rf"planners\.json: '{entry}'.*'learning_rat'"):
        checkpoints.load_policy(run_dir, policy)


def _write_run_config(run_dir, saved):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(saved if isinstance(saved, str) else json.dumps(saved))
    return ["--resume", str(run_dir)]


def _saved_run(**config):
    saved = {"algorithm": "a2c", "env": "CartPole-v1", "path": "host", "seed": 3}
    return {**saved, "config": io.to_jsonable(a2c.A2CConfig(**config))}


def test_resume_defaults_come_from_config_json(tmp_path):
    argv = _write_run_config(tmp_path, _saved_run(total_steps=123))
    defaults = cli._defaults(a2c.A2CConfig, argv)
    assert defaults.config == a2c.A2CConfig(total_steps=123)
    assert (defaults.env, defaults.seed, defaults.host) == ("CartPole-v1", 3, True)


def _bad_run_configs():
    text = json.dumps(_saved_run())
    unknown = _saved_run()
    unknown["config"]["clip_epsilon"] = 0.2
    missing = {k: v for k, v in _saved_run().items() if k != "config"}
    return {
        "truncated": (text[: len(text) // 2], "config.json"),
        "missing": (missing, r"config\.json: missing key 'config'"),
        "unknown": (unknown, r"config\.json: 'config'.*unknown fields \['clip_epsilon'\]"),
    }


@pytest.mark.parametrize("case", ["truncated", "missing", "unknown"])
def test_bad_config_json_on_resume_names_the_file(tmp_path, case):
    saved, pattern = _bad_run_configs()[case]
    argv = _write_run_config(tmp_path / "run", saved)
    with pytest.raises(io.CheckpointError, match=pattern):
        cli._defaults(a2c.A2CConfig, argv)
    with pytest.raises(SystemExit, match=r"--resume.*config\.json"):
        cli.main(a2c.A2C, a2c.A2CConfig, argv)
