"""Resumable runs: each finished phase of an experiment is kept in its results folder.

``<run>/stages/`` holds one entry per finished phase: ``<name>.json`` (JSON values), and where
the phase made them ``<name>.npz`` (arrays) and ``<name>.ckpt`` (a parameter pytree,
:func:`experiments.io.save_checkpoint`). The JSON is written last and every file atomically, so
a phase interrupted while it saves counts as unfinished. ``--resume`` with the same ``--run-name``
loads the finished phases instead of recomputing them; the run's ``config.json`` must match
(the ``resume`` flag aside), or the run is refused.

An experiment that draws its keys from a counter stores the counter with each phase
(``key_count``), so a resumed run draws the same keys as one that was never interrupted.

Each phase's record also keeps its wall time: the seconds from the end of the previous phase
saved or loaded in this process (or from the start) to its own save. :meth:`Stages.seconds`
reads them back, so a resumed run still reports what each phase cost when it ran.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from experiments import io

IGNORED = ("resume", "run_name")
"""Config fields that may differ between a run and its resumption (a run started without a name
gets a timestamp, and is resumed by that name)."""
EXPERIMENT = "experiment"
"""The ``config.json`` key naming the experiment that wrote the run folder."""
WALL = "wall_seconds"
"""The key of a phase's wall time in its JSON record (not part of :attr:`Stage.values`)."""


class Stage(NamedTuple):
    """A finished phase as it was saved."""

    values: dict[str, Any]
    """Its JSON values."""
    arrays: dict[str, np.ndarray]
    """Its arrays (empty when it saved none)."""
    params: Any
    """Its parameter pytree, restored into the given template (None when it saved none)."""
    seconds: float | None = None
    """Its wall time when it ran [s] (None: recorded before phases kept it)."""


class Stages:
    """The finished phases of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.folder = Path(run_dir) / "stages"
        self._since = time.perf_counter()  # the start of the phase now running

    def _path(self, name: str, suffix: str) -> Path:
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise ValueError(f"stage name {name!r}: expected a plain file name")
        return self.folder / f"{name}{suffix}"

    def finished(self) -> list[str]:
        """Names of the finished phases, sorted."""
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def has(self, name: str) -> bool:
        """Whether phase ``name`` finished."""
        return self._path(name, ".json").exists()

    def save(
        self,
        name: str,
        values: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray] | None = None,
        params: Any = None,
    ) -> None:
        """Records phase ``name`` as finished with its outputs (JSON last) and its wall time."""
        seconds = time.perf_counter() - self._since
        if WALL in values:
            raise ValueError(f"stage {name!r}: {WALL!r} is kept by the stage itself")
        self.folder.mkdir(parents=True, exist_ok=True)
        if arrays is not None:
            io.write_npz(self._path(name, ".npz"), **arrays)
        if params is not None:
            io.save_checkpoint(self._path(name, ".ckpt"), params, {"kind": "stage", "name": name})
        record = {**values, WALL: round(seconds, 3)}
        io.write_json(self._path(name, ".json"), record, keep_non_finite=True)
        self._since = time.perf_counter()

    def seconds(self) -> dict[str, float]:
        """Wall time of each finished phase that recorded one [s], in the order they finished.

        Raises:
            experiments.io.CheckpointError: a corrupt phase record.
        """
        times = {}
        for path in self.folder.glob("*.json"):
            value = self._record(path).get(WALL)
            if value is not None:
                times[path.stem] = (path.stat().st_mtime, float(value))
        return {name: value for name, (_, value) in sorted(times.items(), key=lambda x: x[1])}

    @staticmethod
    def _record(path: Path) -> dict[str, Any]:
        try:
            return io.read_json(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise io.CheckpointError(f"{path}: corrupt stage record ({e})") from e

    def load(self, name: str, template: Any = None) -> Stage | None:
        """Phase ``name`` as saved, or None if it has not finished.

        Args:
            name: the phase.
            template: a pytree with the structure, shapes and dtypes of its params; needed
                when the phase saved params.

        Raises:
            experiments.io.CheckpointError: a file of the phase is missing or corrupt, or its
                params do not fit ``template``.
        """
        path = self._path(name, ".json")
        if not path.exists():
            return None
        values = self._record(path)
        seconds = values.pop(WALL, None)
        arrays_path, params_path = self._path(name, ".npz"), self._path(name, ".ckpt")
        arrays = {}
        if arrays_path.exists():
            try:
                arrays = io.read_npz(arrays_path)
            except Exception as e:  # zipfile and numpy raise several kinds on a bad file
                raise io.CheckpointError(f"{arrays_path}: corrupt stage arrays ({e})") from e
        params = None
        if params_path.exists():
            if template is None:
                raise ValueError(f"stage {name!r} saved params: pass a template to load them")
            params, _ = io.load_checkpoint(params_path, template, {"kind": "stage", "name": name})
        elif template is not None:
            raise io.CheckpointError(f"{params_path} is missing (stage {name!r} needs params)")
        self._since = time.perf_counter()  # loading is not the next phase's work
        return Stage(values, arrays, params, seconds)


def open_run(
    root: str | Path,
    run_name: str | None,
    config: Mapping[str, Any],
    resume: bool,
    experiment: str,
    log: Callable[[str], Any] = print,
) -> tuple[Path, Stages]:
    """Creates (or, resuming, reopens) a run folder and writes its ``config.json``.

    ``config.json`` holds the config and ``"experiment": experiment``, which tells tools such as
    ``experiments.render`` what the folder holds. Resuming a folder that holds no run yet starts
    one there (and says so), so a job can always be launched with ``--resume``.

    Args:
        root: parent folder of the runs.
        run_name: the run folder's name (None: a timestamp; resuming needs a name).
        config: the resolved config, JSON-able.
        resume: continue the run in ``root/run_name``.
        experiment: the experiment's name ("spaceship", "driving", ...).
        log: where the note about a fresh start goes.

    Returns:
        ``(run_dir, stages)``.

    Raises:
        experiments.io.RunFolderError: ``resume`` without ``run_name``, or a run folder that
            already holds a run (its ``config.json``) while ``resume`` is off: nothing is
            overwritten.
        experiments.io.CheckpointError: resuming with a config other than the run's.
    """
    if resume and run_name is None:
        raise io.RunFolderError("--resume needs --run-name: the name of the run folder to continue")
    run_dir = io.make_run_dir(root, run_name)
    stages = Stages(run_dir)
    config = {**io.to_jsonable(dict(config)), EXPERIMENT: experiment}
    path = run_dir / "config.json"
    if resume and path.exists():
        saved = io.read_json(path)
        other = saved.get(EXPERIMENT, experiment)  # folders from before the key: not checked
        if other != experiment:
            raise io.RunFolderError(
                f"{run_dir} holds an experiments.{other} run, not an experiments.{experiment} "
                "one; pass the --run-name of a run of this experiment"
            )
        differ = io.differing_fields(saved, config, (*IGNORED, EXPERIMENT))
        if differ:
            raise io.CheckpointError(
                f"{path}: the run was made with other settings ({', '.join(differ)} differ); "
                "resume it with the same flags, or start a new --run-name"
            )
        for stale in io.remove_stale_temporaries(run_dir):
            log(f"--resume: removed {stale}, left by an interrupted write")
    elif resume:
        log(f"--resume: {run_dir} holds no run yet; starting one there")
    elif path.exists():
        raise io.RunFolderError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose another "
            "--run-name"
        )
    io.write_json(path, config)
    return run_dir, stages
