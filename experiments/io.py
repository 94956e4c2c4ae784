"""Results folders, atomic writes and checkpoints shared by every experiment, agent and model.

Nothing here uses pickle: configs and metrics are JSON/CSV, arrays are ``.npz``, and parameter
pytrees are Flax msgpack (``flax.serialization``) with a JSON header that records the config
they were made with, so that loading a checkpoint into a run with another config is refused,
and a SHA-256 checksum, so that a damaged file is refused rather than loaded with wrong values.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flax import serialization

from experiments import tree_match

CHECKPOINT_MAGIC = b"WPCKPT2\n"
"""Format 2: magic, header length (8 bytes, little endian), SHA-256 of header + body (32
bytes), JSON header, msgpack body."""
_LEGACY_MAGIC = b"WPCKPT1\n"
"""Format 1 (read only): magic, header length, header, body; no checksum."""


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or was written for another config or model."""


class RunFolderError(ValueError):
    """A run folder cannot be used as asked (it holds a run, or ``--resume`` lacks a name)."""


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


def differing_fields(
    first: Mapping[str, Any], second: Mapping[str, Any], ignore: Sequence[str] = ()
) -> list[str]:
    """Sorted names of the entries whose values differ (a missing entry reads as None).

    Names in ``ignore`` are left out. How a refused checkpoint, resume or pooling of runs says
    what differs.
    """
    names = (set(first) | set(second)) - set(ignore)
    return sorted(name for name in names if first.get(name) != second.get(name))


def temporary_path(path: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """A fresh name beside ``path`` for a file that will replace it (nothing is created).

    Writers create it with the usual permissions (``open()``'s 0666 less the umask; not
    ``tempfile.mkstemp``'s owner-only 0600) and move it onto ``path`` with ``os.replace``.
    """
    path = Path(path)
    return path.parent / f".{path.name}.{secrets.token_hex(8)}{suffix}"


_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{16}\.[A-Za-z0-9]+$")
"""Names :func:`temporary_path` makes: ``.<name>.<16 hex digits><suffix>``."""


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temporary files an interrupted run left in ``folder`` (and below it).

    A write killed between creating its temporary file and ``os.replace`` (SIGKILL, a SIGTERM
    with no handler) leaves one behind; the file it was replacing is intact. Call this only
    when no other process writes into ``folder`` (e.g. when a run resumes).

    Returns:
        The files removed.
    """
    stale = [p for p in Path(folder).rglob(".*") if p.is_file() and _TEMPORARY.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` through a temporary file and ``os.replace``.

    A reader never sees a half-written file, and an interrupted write leaves the old one intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically writes UTF-8 text (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _null_if_not_finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _null_if_not_finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_null_if_not_finite(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, keep_non_finite: bool = False) -> Path:
    """Atomically writes ``obj`` (dataclasses and arrays allowed) as indented JSON.

    Args:
        path: the file.
        obj: what to write.
        keep_non_finite: write NaN and infinities as Python's ``NaN`` / ``Infinity``, which
            ``json`` reads back exactly but strict JSON readers (jq, JavaScript, pandas'
            ``read_json`` in some modes) refuse: for records only this package reads back
            (phase records on resume). By default they are written as ``null``, e.g. the
            undefined interval of a one-episode evaluation.
    """
    tree = to_jsonable(obj)
    if not keep_non_finite:
        tree = _null_if_not_finite(tree)
    text = json.dumps(tree, indent=2, sort_keys=True, allow_nan=keep_non_finite)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file."""
    return json.loads(Path(path).read_text())


def read_settings(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a run's JSON settings file (``config.json``, ``planners.json``) as a dict.

    Raises:
        CheckpointError: the file is missing or unreadable, is not valid JSON (e.g. cut short
            by an interrupted write of an older version) or is not a JSON object; the message
            names the file.
    """
    try:
        settings = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read run settings {path}: {e}") from e
    if not isinstance(settings, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(settings).__name__}")
    return settings


def settings_entry(settings: Mapping[str, Any], key: str, path: str | os.PathLike) -> Any:
    """``settings[key]``, or :class:`CheckpointError` naming the file ``path`` and the key."""
    try:
        return settings[key]
    except KeyError:
        raise CheckpointError(
            f"{path}: missing key {key!r} (found {sorted(map(str, settings))})"
        ) from None


def config_from_settings(cls: type, fields: Any, path: str | os.PathLike, key: str) -> Any:
    """``cls(**fields)`` for the dataclass ``cls`` saved under ``key`` in settings file ``path``.

    Raises:
        CheckpointError: ``fields`` is not a JSON object, names a field that ``cls`` lacks, lacks
            a field that has no default, or is refused by ``cls`` itself; the message names the
            file, the key and the fields.
    """
    where = f"{path}: {key!r}"
    if not isinstance(fields, Mapping):
        raise CheckpointError(f"{where} should be a JSON object, found {type(fields).__name__}")
    init = [f for f in dataclasses.fields(cls) if f.init]
    no_default = dataclasses.MISSING
    required = {f.name for f in init if f.default is no_default and f.default_factory is no_default}
    unknown = sorted(set(fields) - {f.name for f in init})
    missing = sorted(required - set(fields))
    if unknown or missing:
        problems = [f"unknown fields {unknown}"] if unknown else []
        problems += [f"missing fields {missing}"] if missing else []
        raise CheckpointError(f"{where} does not fit {cls.__name__}: {'; '.join(problems)}")
    try:
        return cls(**fields)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{where} is not a valid {cls.__name__}: {e}") from e


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

    A folder given by ``name`` is reused if it exists (``experiments.stages.open_run`` then
    resumes the run in it, or refuses to overwrite it). A timestamp folder is always new: it is
    created exclusively, and a run started in the same second as another gets
    ``20261126-142501-1``, ``-2``, ... instead of writing into the other run's folder.
    """
    root = Path(root)
    if name is not None:
        path = root / name
        path.mkdir(parents=True, exist_ok=True)
        return path
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, suffix = root / stamp, 0
    while True:
        try:
            path.mkdir()  # exclusive: FileExistsError if another run took this name first
            return path
        except FileExistsError:
            suffix += 1
            path = root / f"{stamp}-{suffix}"


def save_checkpoint(path: str | os.PathLike, tree: Any, meta: Mapping[str, Any]) -> Path:
    """Atomically saves a pytree of arrays with a JSON header ``meta``.

    Args:
        path: file to write (conventionally ``*.ckpt``).
        tree: any Flax-serializable pytree (params, optimiser state, counters).
        meta: JSON-able description, at least ``{"kind": ..., "fingerprint": ...}``; checked by
            :func:`load_checkpoint`. Its key order is kept (a resumed trainer's history rows
            keep their column order).
    """
    header = json.dumps(to_jsonable(dict(meta))).encode()
    body = serialization.to_bytes(tree)
    digest = hashlib.sha256(header + body).digest()
    data = CHECKPOINT_MAGIC + len(header).to_bytes(8, "little") + digest + header + body
    return atomic_write_bytes(path, data)


def read_checkpoint_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Reads only the JSON header of a checkpoint."""
    return _split_checkpoint(path)[0]


def _split_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], bytes]:
    """``(meta, body)`` of a checkpoint file, its checksum verified (format 2)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    magic = data[: len(CHECKPOINT_MAGIC)]
    digest_size = 32 if magic == CHECKPOINT_MAGIC else 0
    if magic not in (CHECKPOINT_MAGIC, _LEGACY_MAGIC) or len(data) < len(magic) + 8 + digest_size:
        raise CheckpointError(f"{path} is not a worldplan checkpoint (bad magic bytes)")
    n = int.from_bytes(data[len(magic) : len(magic) + 8], "little")
    start = len(magic) + 8 + digest_size
    if digest_size and hashlib.sha256(data[start:]).digest() != data[start - digest_size : start]:
        raise CheckpointError(
            f"{path}: corrupt checkpoint (its SHA-256 checksum does not match: the file was "
            "truncated or damaged after it was written)"
        )
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
            arrays whose structure, shapes or dtypes differ from ``target`` (a Python scalar
            in either matches any dtype of its kind: bool, integer, floating or complex).
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
    difference = tree_match.first_difference(serialization.to_state_dict(target), state)
    if difference is not None:
        raise CheckpointError(f"{path}: {difference}")
    try:
        tree = serialization.from_state_dict(target, state)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint does not match the model ({e})") from e
    return tree, meta
