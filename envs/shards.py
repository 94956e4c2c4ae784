"""Datasets as compressed ``.npz`` shards plus a JSON manifest, generated in parallel processes.

A generator is a module-level function ``make_shard(config, index) -> {name: array}`` whose
randomness is seeded from ``(config, index)`` alone, so the dataset is a function of the config,
whatever the number of workers. Workers build and compress shards; the parent writes each one
atomically (``experiments.io``), so a shard file that exists was written whole. A rerun with the
same config keeps the shards that read back complete and regenerates the others (resume). The
manifest records the config, its fingerprint and each shard's example count and SHA-256, so that
a truncated or altered shard, or data made with another config, is refused with a clear error.

Workers are spawned (safe beside JAX). This module and the generators' modules do not import
``experiments.io`` (hence flax and JAX) at import time, so a worker starts in a fraction of a
second and starts no JAX threads; ``experiments.io`` is imported in the parent only.
"""

from __future__ import annotations

import hashlib
import io as io_module
import multiprocessing
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
FORMAT = "worldplan-shards-v1"
COMPRESSION_LEVEL = 1
"""zlib level of the shard files. Level 1 compresses rendered images ~4x faster than numpy's
default (6) for files ~15% larger; any level reads back with ``np.load``."""

ShardFn = Callable[[Any, int], dict[str, np.ndarray]]


class ShardError(ValueError):
    """A dataset folder is incomplete, corrupt, or was made with another config."""


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:05d}.npz"


def npz_bytes(arrays: dict[str, np.ndarray], level: int = COMPRESSION_LEVEL) -> bytes:
    """Bytes of a compressed ``.npz`` of ``arrays``: ``np.savez_compressed`` at zlib ``level``."""
    buffer = io_module.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _count(arrays: dict[str, np.ndarray], where: str) -> int:
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ShardError(f"{where}: arrays have different example counts {sorted(sizes)}")
    return sizes.pop()


def _make_one(args: tuple[ShardFn, Any, int]) -> tuple[int, int, bytes]:
    """Worker: builds and compresses shard ``index``; returns (index, count, npz bytes)."""
    make_shard, config, index = args
    arrays = make_shard(config, index)
    return index, _count(arrays, f"shard {index}"), npz_bytes(arrays)


def _existing_entry(path: Path, listed: dict[str, Any] | None) -> dict[str, Any] | None:
    """Manifest entry of a shard file already there, or None if missing or incomplete.

    A file the old manifest ``listed`` is checked by its checksum, any other by reading it.
    """
    from experiments import io

    if not path.exists():
        return None
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    if listed is not None:
        return listed if listed.get("sha256") == sha256 else None
    try:
        count = _count(io.read_npz(path), str(path))
    except (OSError, ShardError):
        return None
    return {"file": path.name, "count": count, "sha256": sha256}


def _run(
    jobs: list[tuple[ShardFn, Any, int]], num_workers: int
) -> Iterator[tuple[int, int, bytes]]:
    if num_workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(num_workers, len(jobs))) as pool:
            yield from pool.imap_unordered(_make_one, jobs)
    else:
        yield from map(_make_one, jobs)


def write_shards(
    out_dir: str | Path,
    make_shard: ShardFn,
    config: Any,
    num_shards: int,
    *,
    kind: str,
    num_workers: int = 1,
    fingerprint_ignore: tuple[str, ...] = (),
    log: Callable[[str], Any] | None = print,
) -> Path:
    """Generates the missing shards of ``out_dir`` and writes its manifest.

    Args:
        out_dir: dataset folder (created).
        make_shard: module-level (picklable) ``(config, index) -> {name: (n, ...) array}``.
        config: frozen dataclass describing the data; its fingerprint guards the folder.
        num_shards: shards ``0 .. num_shards - 1``.
        kind: dataset family recorded in the manifest (e.g. ``"poke-triples"``).
        num_workers: processes (spawned, so safe beside JAX); 1 generates in this process.
        fingerprint_ignore: config fields that do not change the data (e.g. a worker count).
        log: progress messages, or None.

    Returns:
        Path of the manifest.

    Raises:
        ShardError: ``out_dir`` already holds data made with another config or kind.
    """
    from experiments import io

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = io.config_fingerprint(config, ignore=fingerprint_ignore)
    manifest_path = out_dir / MANIFEST
    old: dict[str, Any] = {}
    if manifest_path.exists():
        old = io.read_json(manifest_path)
        if old.get("fingerprint") != fingerprint or old.get("kind") != kind:
            raise ShardError(
                f"{out_dir} holds {old.get('kind')} data of another config "
                f"({old.get('fingerprint')} != {fingerprint}); use a new folder"
            )
    header = {
        "format": FORMAT,
        "kind": kind,
        "fingerprint": fingerprint,
        "config": io.to_jsonable(config),
        "complete": False,
    }
    io.write_json(manifest_path, header)
    listed = {entry["file"]: entry for entry in old.get("shards", [])}
    entries = {
        i: _existing_entry(out_dir / shard_name(i), listed.get(shard_name(i)))
        for i in range(num_shards)
    }
    todo = [i for i, entry in entries.items() if entry is None]
    if log:
        log(
            f"{out_dir}: {num_shards - len(todo)} of {num_shards} shards present, "
            f"generating {len(todo)} with {num_workers} worker(s)"
        )
    for index, count, data in _run([(make_shard, config, i) for i in todo], num_workers):
        path = io.atomic_write_bytes(out_dir / shard_name(index), data)
        entries[index] = {
            "file": path.name,
            "count": count,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    shards = [entries[i] for i in range(num_shards)]
    header.update(complete=True, shards=shards, num_examples=sum(e["count"] for e in shards))
    return io.write_json(manifest_path, header)


def read_manifest(out_dir: str | Path, *, kind: str) -> dict[str, Any]:
    """The manifest of a finished dataset of ``kind``; raises :class:`ShardError` otherwise."""
    from experiments import io

    manifest_path = Path(out_dir) / MANIFEST
    if not manifest_path.exists():
        raise ShardError(f"{out_dir}: no {MANIFEST}; generate the dataset first")
    manifest = io.read_json(manifest_path)
    if manifest.get("format") != FORMAT or manifest.get("kind") != kind:
        raise ShardError(f"{manifest_path}: expected a {FORMAT} manifest of kind {kind!r}")
    if not manifest.get("complete"):
        raise ShardError(f"{out_dir}: generation did not finish; rerun it to resume")
    return manifest


def read_shards(
    out_dir: str | Path,
    *,
    kind: str,
    config: Any | None = None,
    fingerprint_ignore: tuple[str, ...] = (),
) -> dict[str, np.ndarray]:
    """Every shard of ``out_dir`` concatenated along the example axis, after checking them.

    Raises:
        ShardError: no or incomplete manifest, wrong kind, config mismatch, or a missing,
            truncated or altered shard (checksum or example count differs from the manifest).
    """
    from experiments import io

    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir, kind=kind)
    if config is not None:
        if manifest["fingerprint"] != io.config_fingerprint(config, ignore=fingerprint_ignore):
            raise ShardError(f"{out_dir} was generated with another config: {manifest['config']}")
    parts = []
    for entry in manifest["shards"]:
        path = out_dir / entry["file"]
        if not path.exists():
            raise ShardError(f"shard {path} is missing; rerun generation to resume")
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            raise ShardError(
                f"shard {path} is truncated or corrupt (checksum mismatch); rerun generation"
            )
        arrays = io.read_npz(path)
        if _count(arrays, str(path)) != entry["count"]:
            raise ShardError(f"shard {path} holds a different example count than its manifest")
        parts.append(arrays)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
