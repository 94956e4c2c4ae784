"""Labelled random towers for PhysNet: images, fall labels, final frames and per-block masks.

Each example is a tower of ``n`` blocks (one per level) with random placement offsets, put at
rest and simulated for up to ``horizon`` seconds (until it settles). It records the initial
image, whether any block moved more than ``Params.fall_threshold``, the final image, per-block
final masks and states.

Each tower's blocks get distinct colours drawn at random from the first ``max_blocks`` of
``BLOCK_COLOURS`` (``colours[i]`` for level ``i``), and mask channel ``c`` is the block coloured
``c``. So a model trained on 2-3 block towers has seen every colour a 4-block tower uses, and
masks stay identifiable by colour, as in Lerer et al. Every shard holds equal numbers of
falling and standing towers per block count (:func:`draw_towers`); labels are always simulated.

Shards are written by :mod:`envs.shards` (compressed ``.npz`` built in spawned worker processes,
written atomically, a JSON manifest with the config and each shard's count and checksum).
Shard ``i`` depends only on ``(seed, i)``, so a dataset is deterministic for a seed whatever the
number of workers, and a rerun keeps the shards already complete. This module imports neither
JAX nor ``experiments.io``, so the workers start quickly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from envs import shards
from envs.towers import batch_physics, image, physics, task
from envs.towers.params import BLOCK_COLOURS, Params

ARRAY_NAMES = tuple(
    "image final_image masks n_blocks fell offsets initial final displacement colours".split()
)
"""Arrays of a dataset, each with a leading example axis (as :func:`load_dataset` returns)."""
KIND = "towers"
DATA_VERSION = 3
"""Version of the generator, recorded in each manifest's config. 1: towers simulated one space
each; 2: a shard's towers simulated together (:mod:`envs.towers.batch_physics`), candidates
drawn in rounds; 3: hard images stored as palette indices, masks bit-packed (:func:`decode`).
Data of another version is refused rather than mixed in."""
FINGERPRINT_IGNORE = ("workers",)
"""Config fields that do not change the data."""
DatasetError = shards.ShardError
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
    sampler: str = "random"
    """``"random"``: offsets as in Lerer et al. (:func:`sample_offsets`). ``"overhang"``: the
    towers an overhang planner asks about: a share ``1 - overhang_share`` random, the others the
    lowest ``n`` levels of a ``params.n_blocks`` harmonic stack scaled by ``U(overhang_scale)``
    plus Gaussian noise of ``overhang_noise`` [block widths], so most lie near the boundary."""
    overhang_share: float = 0.75
    """Share of near-harmonic towers among ``"overhang"`` towers."""
    overhang_scale: tuple[float, float] = (0.7, 1.15)
    """Range of the harmonic-stack scale of ``"overhang"`` towers (1 = at the limit)."""
    overhang_noise: float = 0.05
    """Standard deviation of the noise on each ``"overhang"`` offset [block widths]."""
    softness: float = 0.0
    """Edge width of the initial images' blocks [block widths] (``image.render_state``); 0
    draws hard pixels, > 0 sigmoid edges whose grey levels carry sub-pixel positions."""
    workers: int = 2
    """Worker processes; 1 generates in this process."""
    params: Params = Params()
    """World constants (image size, fall threshold, physics)."""
    version: int = DATA_VERSION
    """Generator version (``DATA_VERSION``; only the current one can be generated). It is part
    of the config's fingerprint, so data folders of older versions are never reused."""

    def __post_init__(self) -> None:
        if self.n_towers < 1 or self.shard_size < 1:
            raise ValueError("n_towers and shard_size must be >= 1")
        if not self.block_counts or max(self.block_counts) > self.max_blocks:
            raise ValueError(f"block_counts {self.block_counts} must be in [1, {self.max_blocks}]")
        if self.sampler not in ("random", "overhang"):
            raise ValueError(f"sampler must be 'random' or 'overhang', got {self.sampler!r}")
        if self.version != DATA_VERSION:
            raise ValueError(f"version: this code generates version {DATA_VERSION} only")
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
    if config.sampler == "overhang":
        near = rng.random(shape[0]) < config.overhang_share
        harmonic = task.harmonic_offsets(max(config.params.n_blocks, shape[1]))[: shape[1]]
        scale = rng.uniform(*config.overhang_scale, size=(shape[0], 1))
        noisy = harmonic * scale + config.overhang_noise * rng.standard_normal(shape)
        offsets[near] = noisy[near]
    return offsets


def simulate_tower(offsets: np.ndarray, config: DatasetConfig) -> dict[str, Any]:
    """Releases the resting stack built from ``offsets`` (n,) and simulates up to ``horizon``.

    Returns:
        Dict with ``initial``/``final`` (n, 6) states, ``displacement`` (n,) [widths], ``fell``.
    """
    return physics.simulate_stack(offsets, config.params, config.horizon)


def _pending_slots(config: DatasetConfig, count: int) -> dict[tuple[int, bool], list[int]]:
    """Slot indices wanting each ``(n_blocks, fall)``: heights cycle, labels alternate per cycle."""
    heights = len(config.block_counts)
    slots: dict[tuple[int, bool], list[int]] = {}
    for i in range(count):
        key = (config.block_counts[i % heights], (i // heights) % 2 == 1)
        slots.setdefault(key, []).append(i)
    return slots


def _candidates(
    rng: np.random.Generator, pending: dict[tuple[int, bool], list[int]], config: DatasetConfig
) -> list[tuple[int, bool, np.ndarray]]:
    """A candidate ``(slot, fall, offsets)`` per open slot whose analytic statics predict ``fall``.

    For each height, ``8 x`` as many towers as it has pending slots (and 64 more) are drawn;
    slots left without a candidate (an unlucky draw) wait for the next round.
    """
    size = config.params.block_size
    chosen = []
    for n in sorted({n for n, _ in pending}):
        wanted = {fall: pending.get((n, fall), []) for fall in (False, True)}
        drawn = sample_offsets(rng, (8 * sum(map(len, wanted.values())) + 64, n), config)
        x = np.cumsum(drawn, axis=1) * size - 0.5 * size
        predicted = physics.stability_margins(x, config.params).min(axis=1) <= 0
        for fall, slots in wanted.items():
            matching = drawn[predicted == fall][: len(slots)]
            chosen += [(slot, fall, plan) for slot, plan in zip(slots, matching, strict=False)]
    return chosen


def draw_towers(
    rng: np.random.Generator, config: DatasetConfig, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets of ``count`` balanced towers and their simulated final states, in slot order.

    Slot ``i`` wants ``block_counts[i % len(block_counts)]`` blocks and falls iff
    ``(i // len(block_counts))`` is odd. Each round draws a candidate per open slot whose analytic
    statics predict the slot's label, simulates all of them together
    (:func:`batch_physics.simulate_batch`), and fills the slots whose simulated label agrees; the
    rare others are redrawn in the next round. The label is the simulated one.

    Returns:
        ``offsets`` (count, max_blocks) [block widths], ``initial`` and ``final``
        (count, max_blocks, 6) states; rows past each tower's height are zero.
    """
    params, k = config.params, config.max_blocks
    offsets = np.zeros((count, k))
    initial = np.zeros((count, k, physics.STATE_DIM))
    final = np.zeros_like(initial)
    pending = _pending_slots(config, count)
    while pending:
        chosen = _candidates(rng, pending, config)
        heights = np.array([len(plan) for _, _, plan in chosen], dtype=np.int64)
        batch = np.zeros((len(chosen), k, physics.STATE_DIM))
        for n in np.unique(heights).tolist():  # one stacked_state call per height
            rows = np.flatnonzero(heights == n)
            plans = np.stack([chosen[row][2] for row in rows.tolist()])
            batch[rows, :n] = physics.stacked_state(plans, params)
        settled, _ = batch_physics.simulate_batch(batch, heights, params, config.horizon)
        fell = np.any(physics.displacement(batch, settled, params) > params.fall_threshold, 1)
        for row, (slot, wanted, plan) in enumerate(chosen):
            if fell[row] == wanted:
                pending[(len(plan), wanted)].remove(slot)
                offsets[slot, : len(plan)] = plan
                initial[slot], final[slot] = batch[row], settled[row]
        pending = {key: slots for key, slots in pending.items() if slots}
    return offsets, initial, final


def make_shard(config: DatasetConfig, index: int) -> dict[str, np.ndarray]:
    """The towers of shard ``index`` as stored: ``ARRAY_NAMES`` with leading axis N, masks packed.

    :func:`decode` of the result holds the arrays :func:`load_dataset` returns.
    """
    rng = np.random.default_rng([config.seed, index])
    count = min(config.shard_size, config.n_towers - index * config.shard_size)
    p, k = config.params, config.max_blocks
    offsets, initial, final = draw_towers(rng, config, count)
    n_blocks = np.asarray([config.block_counts[i % len(config.block_counts)] for i in range(count)])
    present = np.arange(k) < n_blocks[:, None]
    moved = physics.displacement(initial, final, p)  # padding rows are zero in both
    colours = np.argsort(rng.random((count, k)), axis=1).astype(np.int8)
    colours[~present] = -1
    out = {
        "n_blocks": n_blocks.astype(np.int8),
        "fell": np.any(moved > p.fall_threshold, axis=1),
        "offsets": offsets.astype(np.float32),
        "initial": initial.astype(np.float32),
        "final": final.astype(np.float32),
        "displacement": moved.astype(np.float32),
        "colours": colours,
    }
    out.update(_images(out, config))
    return {name: out[name] for name in ARRAY_NAMES}


def decode(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays of a shard as stored -> as used: RGB images and (N, k, size, size) bool masks.

    Shards store hard images as (N, size, size) palette indices (:func:`image.palette_labels`,
    a third of the bytes of RGB) and masks bit-packed along rows (``np.packbits``, an eighth):
    deflating them costs that much less. Soft initial images are stored as RGB.
    """
    out = dict(arrays)
    for name in ("image", "final_image"):
        if out[name].ndim == 3:
            out[name] = image.colourise(out[name])
    size = out["image"].shape[2]
    out["masks"] = np.unpackbits(out["masks"], axis=-1, count=size).view(bool)
    return out


def _images(arrays: dict[str, np.ndarray], config: DatasetConfig) -> dict[str, np.ndarray]:
    """Initial images, final frames and per-colour final masks of a shard, as stored."""
    present = np.arange(config.max_blocks) < arrays["n_blocks"][:, None]
    colours = np.maximum(arrays["colours"], 0)
    start, end, masks = image.render_towers(
        arrays["initial"], arrays["final"], present, colours, config.params, config.softness
    )
    packed = np.packbits(masks, axis=-1)
    by_colour = np.zeros_like(packed)
    towers, levels = np.nonzero(present)
    by_colour[towers, colours[towers, levels]] = packed[towers, levels]
    return {"image": start, "final_image": end, "masks": by_colour}


def shard_path(directory: Path, index: int) -> Path:
    """File of shard ``index``."""
    return Path(directory) / shards.shard_name(index)


def generate(config: DatasetConfig, directory: str | Path, log: Any = print) -> Path:
    """Writes the dataset's shards and manifest into ``directory``; returns the manifest path.

    Complete shards already there (from an interrupted run with the same config) are kept;
    missing, truncated or corrupt ones are regenerated. A folder of another config is an error.
    """
    options = {"num_workers": config.workers, "fingerprint_ignore": FINGERPRINT_IGNORE}
    return shards.write_shards(
        directory, make_shard, config, config.n_shards, kind=KIND, **options, log=log
    )


def load_dataset(
    directory: str | Path, block_counts: tuple[int, ...] | None = None
) -> dict[str, np.ndarray]:
    """Concatenates every shard of a complete dataset, keeping only ``block_counts`` if given.

    Raises:
        DatasetError: no manifest, an unfinished dataset, data of another generator version, or
            a missing/truncated/corrupt shard.
    """
    version = shards.read_manifest(directory, kind=KIND)["config"].get("version", 1)
    if version != DATA_VERSION:
        raise DatasetError(
            f"{directory} holds towers data of generator version {version}; this code reads "
            f"version {DATA_VERSION}: generate it again into a new folder"
        )
    data = shards.read_shards(directory, kind=KIND)
    missing = [name for name in ARRAY_NAMES if name not in data]
    if missing:
        raise DatasetError(f"{directory} is not a towers dataset: arrays {missing} are missing")
    if block_counts is not None:
        keep = np.isin(data["n_blocks"], block_counts)
        data = {name: array[keep] for name, array in data.items()}
    return decode(data)
