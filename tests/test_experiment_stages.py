"""experiments.stages: finished phases saved and loaded; run folders opened, resumed, refused."""

import numpy as np
import pytest

from experiments import io, stages, towers
from experiments.configs import run_main


def test_a_phase_round_trips_its_values_arrays_and_params(tmp_path):
    book = stages.Stages(tmp_path)
    assert book.load("fit") is None and not book.has("fit")
    params = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.float32)}
    book.save("fit", {"loss": 0.25, "rows": [1, 2]}, arrays={"x": np.eye(2)}, params=params)
    template = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    stage = book.load("fit", template)
    assert book.has("fit") and book.finished() == ["fit"]
    assert stage.values == {"loss": 0.25, "rows": [1, 2]}  # the wall time is kept apart
    assert stage.seconds >= 0 and book.seconds() == {"fit": stage.seconds}
    with pytest.raises(ValueError, match="wall_seconds"):
        book.save("other", {"wall_seconds": 1.0})
    np.testing.assert_array_equal(stage.arrays["x"], np.eye(2))
    np.testing.assert_array_equal(stage.params["w"], params["w"])
    with pytest.raises(ValueError, match="template"):
        book.load("fit")  # params saved: a template is needed to restore them
    with pytest.raises(io.CheckpointError, match="shape"):
        book.load("fit", {"w": np.zeros((3, 3), np.float32), "b": np.zeros(3, np.float32)})


def test_corrupt_or_incomplete_phases_are_named(tmp_path):
    book = stages.Stages(tmp_path)
    book.save("a", {"x": 1})
    (book.folder / "a.json").write_text('{"x": ')
    with pytest.raises(io.CheckpointError, match="a.json"):
        book.load("a")
    book.save("b", {"x": 1}, arrays={"y": np.ones(2)})
    (book.folder / "b.npz").write_bytes(b"not a zip")
    with pytest.raises(io.CheckpointError, match="b.npz"):
        book.load("b")
    book.save("c", {"x": 1})
    with pytest.raises(io.CheckpointError, match="c.ckpt"):
        book.load("c", template={"w": np.zeros(2)})  # its params file is missing
    with pytest.raises(ValueError, match="plain file name"):
        book.save("../escape", {})


def test_open_run_resumes_refuses_and_never_overwrites(tmp_path):
    config = {"seed": 0, "resume": False, "steps": 10}
    run_dir, _ = stages.open_run(tmp_path, "r", config, False, "towers")
    assert io.read_json(run_dir / "config.json") == {**config, "experiment": "towers"}
    with pytest.raises(io.RunFolderError, match="--resume"):
        stages.open_run(tmp_path, "r", config, False, "towers")
    stale = io.temporary_path(run_dir / "stages" / "model.json")  # a write killed mid-way
    stale.parent.mkdir()
    stale.write_text("{")
    (run_dir / "stages" / ".keep.tmp").write_text("not ours")
    notes = []
    again, _ = stages.open_run(tmp_path, "r", {**config, "resume": True}, True, "towers",
                               log=notes.append)  # fmt: skip
    assert again == run_dir and not stale.exists() and (run_dir / "stages" / ".keep.tmp").exists()
    assert notes == [f"--resume: removed {stale}, left by an interrupted write"]
    with pytest.raises(io.CheckpointError, match="steps differ"):
        stages.open_run(tmp_path, "r", {**config, "steps": 11}, True, "towers")
    with pytest.raises(io.RunFolderError, match="--run-name"):
        stages.open_run(tmp_path, None, config, True, "towers")
    with pytest.raises(io.RunFolderError, match="holds an experiments.towers run, not an exp"):
        stages.open_run(tmp_path, "r", config, True, "poke")
    # A run started without a name (a timestamp) resumes under that name.
    unnamed = {**config, "run_name": None}
    stamped, _ = stages.open_run(tmp_path, None, unnamed, False, "towers")
    stages.open_run(tmp_path, stamped.name, {**unnamed, "run_name": stamped.name}, True, "towers")
    # A folder written before config.json named its experiment still resumes.
    io.write_json(run_dir / "config.json", config)
    stages.open_run(tmp_path, "r", config, True, "towers")
    # Resuming a run that was never started starts it, and says so.
    notes = []
    fresh, _ = stages.open_run(tmp_path, "new", config, True, "towers", log=notes.append)
    assert (fresh / "config.json").exists() and notes == [
        f"--resume: {fresh} holds no run yet; starting one there"
    ]


def test_the_command_line_reports_a_used_run_folder_in_one_line(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text("{}")
    args = ["--results-dir", str(tmp_path), "--run-name", "r"]
    with pytest.raises(SystemExit, match="error: .* already holds a run"):
        run_main(towers.main, towers.Config, args)
