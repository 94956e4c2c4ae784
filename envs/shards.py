"""Datasets as compressed ``.npz`` shards plus a JSON manifest, generated in parallel processes.

A generator is a module-level function ``make_shard(config, index) -> {name: array}`` whose
randomness is seeded from ``(config, index)`` alone, so the dataset is a function of the config,
whatever the number of workers. Shards are written atomically (``experiments.io``): a shard file
that exists is complete, and a rerun with the same config skips it (resume). The manifest records
the config, its fingerprint and each shard's example count and SHA-256, so that a truncated or
altered shard, or data made with another config, is refused with a clear error when read.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from experiments import io

MANIFEST = "manifest.json"
FORMAT = "worldplan-shards-v1"

ShardFn = Callable[[Any, int], dict[str, np.ndarray]]


class ShardError(ValueError):
    """A dataset folder is incomplete, corrupt, or was made with another config."""


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:05d}.npz"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_one(args: tuple[ShardFn, Any, int, str]) -> int:
    make_shard, config, index, out_dir = args
    arrays = make_shard(config, index)
    io.write_npz(Path(out_dir) / shard_name(index), **arrays)
    return index


def _count(arrays: dict[str, np.ndarray], where: str) -> int:
    sizes = {len(v) for v in arrays.values()}
    if len(sizes) != 1:
        raise ShardError(f"{where}: arrays have different example counts {sorted(sizes)}")
    return sizes.pop()


def write_shards(
    out_dir: str | Path,
    make_shard: ShardFn,
    config: Any,
    num_shards: int,
    *,
    kind: str,
    num_workers: int = 1,
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
        log: progress messages, or None.

    Returns:
        Path of the manifest.

    Raises:
        ShardError: ``out_dir`` already holds data made with another config or kind.
    """
    out_dir = Path(out_dir)
    fingerprint = io.config_fingerprint(config)
    manifest_path = out_dir / MANIFEST
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
    todo = [i for i in range(num_shards) if not (out_dir / shard_name(i)).exists()]
    if log:
        log(
            f"{out_dir}: {num_shards - len(todo)} of {num_shards} shards present, "
            f"generating {len(todo)} with {num_workers} worker(s)"
        )
    jobs = [(make_shard, config, i, str(out_dir)) for i in todo]
    if num_workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(min(num_workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_write_one, jobs):
                pass
    else:
        for job in jobs:
            _write_one(job)
    entries = []
    for i in range(num_shards):
        path = out_dir / shard_name(i)
        arrays = io.read_npz(path)
        entries.append(
            {"file": path.name, "count": _count(arrays, str(path)), "sha256": _sha256(path)}
        )
    header.update(complete=True, shards=entries, num_examples=sum(e["count"] for e in entries))
    return io.write_json(manifest_path, header)


def read_shards(
    out_dir: str | Path, *, kind: str, config: Any | None = None
) -> dict[str, np.ndarray]:
    """Every shard of ``out_dir`` concatenated along the example axis, after checking them.

    Raises:
        ShardError: no or incomplete manifest, wrong kind, config mismatch, or a missing,
            truncated or altered shard (checksum or example count differs from the manifest).
    """
    out_dir = Path(out_dir)
    manifest_path = out_dir / MANIFEST
    if not manifest_path.exists():
        raise ShardError(f"{out_dir}: no {MANIFEST}; generate the dataset first")
    manifest = io.read_json(manifest_path)
    if manifest.get("format") != FORMAT or manifest.get("kind") != kind:
        raise ShardError(f"{manifest_path}: expected a {FORMAT} manifest of kind {kind!r}")
    if not manifest.get("complete"):
        raise ShardError(f"{out_dir}: generation did not finish; rerun it to resume")
    if config is not None and manifest["fingerprint"] != io.config_fingerprint(config):
        raise ShardError(f"{out_dir} was generated with another config: {manifest['config']}")
    parts = []
    for entry in manifest["shards"]:
        path = out_dir / entry["file"]
        if not path.exists():
            raise ShardError(f"shard {path} is missing")
        if _sha256(path) != entry["sha256"]:
            raise ShardError(f"shard {path} is truncated or corrupt (checksum mismatch)")
        arrays = io.read_npz(path)
        if _count(arrays, str(path)) != entry["count"]:
            raise ShardError(f"shard {path} holds a different example count than its manifest")
        parts.append(arrays)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
