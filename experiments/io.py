"""Results folders, atomic writes and checkpoints shared by every experiment, agent and model.

Nothing here uses pickle: configs and metrics are JSON/CSV, arrays are ``.npz``, and parameter
pytrees are Flax msgpack (``flax.serialization``) with a JSON header that records the config
they were made with, so that loading a checkpoint into a run with another config is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization

CHECKPOINT_MAGIC = b"WPCKPT1\n"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or was written for another config or model."""


def to_jsonable(obj: Any) -> Any:
    """Converts dataclasses, numpy scalars/arrays, paths and tuples into JSON-friendly values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not isinstance(obj, str):
        arr = np.asarray(obj)
        return arr.item() if arr.ndim == 0 else arr.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_fingerprint(config: Any, ignore: Sequence[str] = ()) -> str:
    """A short hash of a config's JSON form, leaving out fields (e.g. run length) in ``ignore``."""
    data = to_jsonable(config)
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ignore}
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` through a temporary file and ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves the old one intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically writes UTF-8 text (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically writes ``obj`` (dataclasses and arrays allowed) as indented JSON."""
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file."""
    return json.loads(Path(path).read_text())


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Atomically writes a list of flat dicts as CSV (columns from the first row, in order)."""
    import io

    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: to_jsonable(v) for k, v in row.items()})
    return atomic_write_text(path, buf.getvalue())


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Reads a CSV written by :func:`write_csv` (values as strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_npz(path: str | os.PathLike, *, compress: bool = True, **arrays: np.ndarray) -> Path:
    """Atomically writes arrays as an ``.npz`` (no pickled objects).

    Args:
        path: destination file.
        compress: deflate the arrays (``np.savez_compressed``); False stores them as they are
            (``np.savez``): larger files, but much faster to write and read for data that does
            not compress (e.g. float images with noise). ``compress`` cannot name an array.
        **arrays: the arrays, by name.
    """
    import io

    buf = io.BytesIO()
    save = np.savez_compressed if compress else np.savez
    save(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return atomic_write_bytes(path, buf.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an ``.npz`` with ``allow_pickle=False``; a corrupt file raises :class:`OSError`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError for a truncated file
        raise OSError(f"cannot read arrays from {path}: {e}") from e


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Writes a matplotlib figure as a PNG atomically (a partial file never appears at ``path``)."""
    import io as _stdlib_io

    buffer = _stdlib_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())


def make_run_dir(root: str | os.PathLike, name: str | None = None) -> Path:
    """Creates and returns ``root/<name>``, by default a timestamp like ``20261126-142501``.

    An existing folder is reused (that is how ``--resume`` finds its checkpoint).
    """
    if name is None:
        name = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_checkpoint(path: str | os.PathLike, tree: Any, meta: Mapping[str, Any]) -> Path:
    """Atomically saves a pytree of arrays with a JSON header ``meta``.

    Args:
        path: file to write (conventionally ``*.ckpt``).
        tree: any Flax-serializable pytree (params, optimiser state, counters).
        meta: JSON-able description, at least ``{"kind": ..., "fingerprint": ...}``; checked by
            :func:`load_checkpoint`.
    """
    header = json.dumps(to_jsonable(dict(meta)), sort_keys=True).encode()
    body = serialization.to_bytes(tree)
    data = CHECKPOINT_MAGIC + len(header).to_bytes(8, "little") + header + body
    return atomic_write_bytes(path, data)


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Reads only the JSON header of a checkpoint."""
    return _split_checkpoint(path)[0]


def _split_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    if not data.startswith(CHECKPOINT_MAGIC) or len(data) < len(CHECKPOINT_MAGIC) + 8:
        raise CheckpointError(f"{path} is not a worldplan checkpoint (bad magic bytes)")
    n = int.from_bytes(data[len(CHECKPOINT_MAGIC) : len(CHECKPOINT_MAGIC) + 8], "little")
    start = len(CHECKPOINT_MAGIC) + 8
    try:
        meta = json.loads(data[start : start + n].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt checkpoint header ({e})") from e
    return meta, data[start + n :]


def load_checkpoint(
    path: str | os.PathLike, target: Any, expect: Mapping[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Loads a checkpoint written by :func:`save_checkpoint` into the structure of ``target``.

    Args:
        path: checkpoint file.
        target: a pytree with the expected structure, shapes and dtypes (e.g. freshly
            initialised params).
        expect: header entries that must match (e.g. ``{"kind": "a2c", "fingerprint": fp}``).

    Returns:
        ``(tree, meta)``.

    Raises:
        CheckpointError: missing or corrupt file, a header that does not match ``expect``, or
            arrays whose structure or shapes differ from ``target``.
    """
    meta, body = _split_checkpoint(path)
    for key, value in (expect or {}).items():
        if meta.get(key) != to_jsonable(value):
            raise CheckpointError(
                f"checkpoint {path} was written with {key}={meta.get(key)!r}, "
                f"but this run has {key}={to_jsonable(value)!r}; refusing to load it"
            )
    try:
        state = serialization.msgpack_restore(body)
    except Exception as e:
        raise CheckpointError(f"{path}: corrupt checkpoint body ({e})") from e
    _check_shapes(serialization.to_state_dict(target), state, str(path), "")
    try:
        tree = serialization.from_state_dict(target, state)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint does not match the model ({e})") from e
    return tree, meta


def _check_shapes(expected: Any, got: Any, path: str, where: str) -> None:
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping) or set(expected) != set(got):
            exp_keys = sorted(map(str, expected)) if isinstance(expected, Mapping) else None
            got_keys = sorted(map(str, got)) if isinstance(got, Mapping) else type(got).__name__
            raise CheckpointError(
                f"{path}: structure differs at '{where or '/'}': expected keys {exp_keys}, "
                f"found {got_keys}"
            )
        for k in expected:
            _check_shapes(expected[k], got[k], path, f"{where}/{k}")
        return
    exp_shape = np.shape(expected)
    got_shape = np.shape(got)
    if exp_shape != got_shape:
        raise CheckpointError(
            f"{path}: array '{where}' has shape {got_shape} in the checkpoint, "
            f"but the model expects {exp_shape}"
        )
