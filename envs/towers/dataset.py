"""Labelled random towers for PhysNet: images, fall labels, final frames and per-block masks.

Each example is a tower of ``n`` blocks (one per level) with random placement offsets, put at
rest and simulated for ``horizon`` seconds (stopping early once it has settled, when the final
frame can no longer change). It records the initial side-view image, whether any block moved
more than ``Params.fall_threshold``, the final image, per-block final masks and states.

Each tower's blocks get distinct colours drawn at random from the first ``max_blocks`` of
``BLOCK_COLOURS`` (``colours[i]`` for level ``i``), and mask channel ``c`` is the block coloured
``c``. So a model trained on 2-3 block towers has seen every colour a 4-block tower uses, and
masks stay identifiable by colour, as in Lerer et al. Every
shard holds equal numbers of falling and standing towers for each block count: a slot wanting a
label draws towers whose analytic statics (``physics.stability_margins``) predict that label and
keeps the first whose simulated label agrees, so few simulations are wasted.

Shards are compressed ``.npz`` files written atomically by worker processes (spawn-safe); the
JSON manifest records the config, count, seed and params. Shard ``i`` depends only on
``(seed, i)``, so a dataset is deterministic for a seed whatever the number of workers, and a
rerun skips shards already complete.
"""

from __future__ import annotations

import dataclasses
import io as io_module
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np

from envs.towers import image, physics
from envs.towers.params import BLOCK_COLOURS, Params

# experiments.io (atomic writes, JSON) pulls in flax and jax; it is imported inside the functions
# that run in the parent process, so spawned workers start in a fraction of a second.

MANIFEST = "manifest.json"
ARRAY_NAMES = (
    "image",
    "final_image",
    "masks",
    "n_blocks",
    "fell",
    "offsets",
    "initial",
    "final",
    "displacement",
    "colours",
)


class DatasetError(ValueError):
    """A shard or manifest is missing, truncated, corrupt, or from another config."""


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """What towers to generate and how."""

    n_towers: int = 2000
    """Towers in total (rounded up to whole shards)."""
    block_counts: tuple[int, ...] = (2, 3, 4)
    """Tower heights, in equal shares."""
    max_blocks: int = 4
    """Padding of per-block arrays (masks, states, offsets) and number of block colours."""
    shard_size: int = 240
    """Towers per shard; a multiple of 2 * len(block_counts) keeps shards exactly balanced."""
    seed: int = 0
    """Shard ``i`` draws from ``numpy.random.default_rng([seed, i])``."""
    horizon: float = 2.0
    """Longest simulated time after release [s]."""
    first_offset_range: tuple[float, float] = (-1.0, 0.6)
    """Bottom block's offset from flush with the edge, uniform [block widths]."""
    max_offset: float = 1.0
    """Upper offsets are uniform in ``+-spread``, ``spread ~ U(0.05, max_offset)`` [widths];
    1 covers the env's whole action box, so a planner never leaves the training distribution."""
    workers: int = 2
    """Worker processes; 1 generates in this process."""
    params: Params = Params()
    """World constants (image size, fall threshold, physics)."""

    def __post_init__(self) -> None:
        if self.n_towers < 1 or self.shard_size < 1:
            raise ValueError("n_towers and shard_size must be >= 1")
        if not self.block_counts or max(self.block_counts) > self.max_blocks:
            raise ValueError(f"block_counts {self.block_counts} must be in [1, {self.max_blocks}]")
        if self.max_blocks > len(BLOCK_COLOURS):
            raise ValueError(f"max_blocks must be <= {len(BLOCK_COLOURS)} (one colour each)")

    @property
    def n_shards(self) -> int:
        """Shards needed for ``n_towers``."""
        return -(-self.n_towers // self.shard_size)


def sample_offsets(
    rng: np.random.Generator, shape: tuple[int, int], config: DatasetConfig
) -> np.ndarray:
    """Random placement offsets (m, n) [block widths] (see :func:`physics.stacked_state`)."""
    spread = rng.uniform(0.05, config.max_offset, size=(shape[0], 1))
    offsets = rng.uniform(-1.0, 1.0, size=shape) * spread
    offsets[:, 0] = rng.uniform(*config.first_offset_range, size=shape[0])
    return offsets


def simulate_tower(offsets: np.ndarray, config: DatasetConfig) -> dict[str, Any]:
    """Releases the resting stack built from ``offsets`` (n,) and simulates up to ``horizon``.

    Returns:
        Dict with ``initial``/``final`` (n, 6) states, ``displacement`` (n,) [widths], ``fell``.
    """
    params = config.params
    initial = physics.stacked_state(offsets, params)
    space = physics.build_space(params)
    physics.set_state(space, initial, params)
    timed = dataclasses.replace(params, max_settle_time=config.horizon)
    physics.settle(space, timed)
    final = physics.get_state(space)
    moved = physics.displacement(initial, final, params)
    return {
        "initial": initial,
        "final": final,
        "displacement": moved,
        "fell": bool(np.any(moved > params.fall_threshold)),
    }


def draw_tower(rng: np.random.Generator, n: int, fall: bool, config: DatasetConfig) -> dict:
    """Samples towers of ``n`` blocks until one's simulated label equals ``fall``.

    Candidates come in batches of 32; those whose analytic statics disagree with ``fall`` are
    skipped without simulating.
    """
    while True:
        offsets = sample_offsets(rng, (32, n), config)
        x = np.cumsum(offsets, axis=1) * config.params.block_size - 0.5 * config.params.block_size
        predicted = physics.stability_margins(x, config.params).min(axis=1) <= 0
        for candidate in offsets[predicted == fall]:
            tower = simulate_tower(candidate, config)
            if tower["fell"] == fall:
                return {"offsets": candidate, **tower}


def make_shard(config: DatasetConfig, index: int) -> dict[str, np.ndarray]:
    """The towers of shard ``index``: arrays named in ``ARRAY_NAMES`` with leading axis N."""
    rng = np.random.default_rng([config.seed, index])
    count = min(config.shard_size, config.n_towers - index * config.shard_size)
    p, k, size = config.params, config.max_blocks, config.params.image_size
    out = {
        "image": np.zeros((count, size, size, 3), np.uint8),
        "final_image": np.zeros((count, size, size, 3), np.uint8),
        "masks": np.zeros((count, k, size, size), bool),
        "n_blocks": np.zeros(count, np.int8),
        "fell": np.zeros(count, bool),
        "offsets": np.zeros((count, k), np.float32),
        "initial": np.zeros((count, k, physics.STATE_DIM), np.float32),
        "final": np.zeros((count, k, physics.STATE_DIM), np.float32),
        "displacement": np.zeros((count, k), np.float32),
        "colours": np.full((count, k), -1, np.int8),
    }
    heights = len(config.block_counts)
    for i in range(count):
        n = config.block_counts[i % heights]
        fall = (i // heights) % 2 == 1
        tower = draw_tower(rng, n, fall, config)
        colours = rng.permutation(k)[:n]
        masks = image.block_masks(tower["final"][:, :3], p) > 0
        out["image"][i] = image.render_state(tower["initial"], p, colours=colours)
        out["final_image"][i] = image.paint(masks, p, colours=colours)
        out["masks"][i, colours] = masks
        out["colours"][i, :n] = colours
        out["n_blocks"][i], out["fell"][i] = n, tower["fell"]
        for name in ("offsets", "initial", "final", "displacement"):
            out[name][i, :n] = tower[name]
    return out


def shard_path(directory: Path, index: int) -> Path:
    """File of shard ``index``."""
    return Path(directory) / f"shard-{index:05d}.npz"


def _shard_task(task: tuple[DatasetConfig, int]) -> tuple[int, bytes]:
    """Makes and compresses one shard in a worker (the format of ``io.write_npz``).

    Compressing is as costly as simulating, so it happens here, in parallel, and only the
    ~70 kB of compressed bytes travel back to the parent, which writes them atomically.
    """
    config, index = task
    buffer = io_module.BytesIO()
    np.savez_compressed(buffer, **make_shard(config, index))
    return index, buffer.getvalue()


def _manifest(config: DatasetConfig) -> dict[str, Any]:
    from experiments import io

    return {
        "count": config.n_towers,
        "seed": config.seed,
        "n_shards": config.n_shards,
        "params": io.to_jsonable(config.params),
        "fingerprint": io.config_fingerprint(config, ignore=("workers",)),
        "config": io.to_jsonable(config),
    }


def read_shard(path: Path, expected_count: int | None = None) -> dict[str, np.ndarray]:
    """Loads one shard; raises :class:`DatasetError` if it is truncated, corrupt or incomplete."""
    from experiments import io

    path = Path(path)
    if not path.exists():
        raise DatasetError(f"shard {path} is missing; rerun generate() to create it")
    try:
        arrays = io.read_npz(path)
    except OSError as e:
        raise DatasetError(
            f"shard {path} is truncated or corrupt ({e}); delete it and rerun generate()"
        ) from e
    missing = [name for name in ARRAY_NAMES if name not in arrays]
    counts = {len(arrays[name]) for name in ARRAY_NAMES if name in arrays}
    if missing or len(counts) != 1 or (expected_count is not None and counts != {expected_count}):
        raise DatasetError(
            f"shard {path} is incomplete: missing arrays {missing}, lengths {sorted(counts)}, "
            f"expected {expected_count} towers; delete it and rerun generate()"
        )
    return arrays


def _shard_complete(config: DatasetConfig, directory: Path, index: int) -> bool:
    expected = min(config.shard_size, config.n_towers - index * config.shard_size)
    try:
        read_shard(shard_path(directory, index), expected)
    except DatasetError:
        return False
    return True


def generate(config: DatasetConfig, directory: str | Path, log: Any = print) -> Path:
    """Writes the dataset's shards and manifest into ``directory``; returns the manifest path.

    Complete shards already there (from an interrupted run with the same config) are skipped;
    incomplete or corrupt ones are regenerated. A manifest from another config is an error.
    """
    from experiments import io

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(config)
    path = directory / MANIFEST
    if path.exists():
        old = io.read_json(path)
        if old.get("fingerprint") != manifest["fingerprint"]:
            raise DatasetError(
                f"{directory} holds a dataset made with another config (fingerprint "
                f"{old.get('fingerprint')} != {manifest['fingerprint']}); use another directory"
            )
    io.write_json(path, {**manifest, "complete": False})
    todo = [i for i in range(config.n_shards) if not _shard_complete(config, directory, i)]
    if log and len(todo) < config.n_shards:
        log(f"{config.n_shards - len(todo)} of {config.n_shards} shards already complete")
    tasks = [(config, i) for i in todo]
    if config.workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("spawn").Pool(min(config.workers, len(tasks))) as pool:
            for index, data in pool.imap_unordered(_shard_task, tasks):
                io.atomic_write_bytes(shard_path(directory, index), data)
    else:
        for task in tasks:
            index, data = _shard_task(task)
            io.atomic_write_bytes(shard_path(directory, index), data)
    io.write_json(path, {**manifest, "complete": True})
    return path


def load_dataset(
    directory: str | Path, block_counts: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Concatenates every shard of a complete dataset, keeping only ``block_counts`` if given.

    Raises:
        DatasetError: no manifest, an unfinished dataset, or a missing/truncated/corrupt shard.
    """
    from experiments import io

    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        raise DatasetError(f"{directory} has no {MANIFEST}; generate() the dataset first")
    manifest = io.read_json(directory / MANIFEST)
    if not manifest.get("complete"):
        raise DatasetError(f"dataset in {directory} is unfinished; rerun generate() to complete it")
    shard_size, count = manifest["config"]["shard_size"], manifest["count"]
    shards = [
        read_shard(shard_path(directory, i), min(shard_size, count - i * shard_size))
        for i in range(manifest["n_shards"])
    ]
    data = {name: np.concatenate([s[name] for s in shards]) for name in ARRAY_NAMES}
    if block_counts is not None:
        keep = np.isin(data["n_blocks"], block_counts)
        data = {name: array[keep] for name, array in data.items()}
    return data
