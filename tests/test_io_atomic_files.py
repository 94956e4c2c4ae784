"""Figures and videos are written atomically, with the file mode a plain open gives."""

import os
import sys

import jax.numpy as jnp
import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from envs.towers.params import BLOCK_COLOURS, Params
from experiments import io, render, towers_report


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
