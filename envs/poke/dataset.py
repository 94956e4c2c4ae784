"""(frame, poke, next frame) triples from random pokes, written as npz shards with a manifest.

Every example is a fresh random table and one poke. Shard ``i`` draws from its own generator,
``SeedSequence(seed, spawn_key=(i,))``, so the data depend on the seed alone, not on the number
of worker processes or the order in which shards finish.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from envs import shards
from envs.poke import physics
from envs.poke.env import object_features
from envs.poke.params import PokeParams

KIND = "poke-triples"


@dataclasses.dataclass(frozen=True)
class PokeDataConfig:
    """What to generate."""

    num_examples: int = 4000
    """Triples in total."""
    shard_size: int = 500
    """Triples per shard file."""
    seed: int = 0
    """Root seed of every shard's generator."""
    aimed_fraction: float = 0.9
    """Share of pokes aimed at an object; the rest are uniform over the action box."""
    num_objects: int | None = None
    """Objects per table; None draws 1..max_objects."""
    images: bool = True
    """Render frames (False: object states only, much faster)."""
    params: PokeParams = PokeParams()
    """Physical constants."""

    def __post_init__(self) -> None:
        if self.num_examples < 1 or self.shard_size < 1:
            raise ValueError("PokeDataConfig: num_examples and shard_size must be >= 1")
        if not 0.0 <= self.aimed_fraction <= 1.0:
            raise ValueError(f"aimed_fraction: expected in [0, 1], got {self.aimed_fraction}")

    @property
    def num_shards(self) -> int:
        """Shard files needed for ``num_examples``."""
        return -(-self.num_examples // self.shard_size)


def sample_poke(
    rng: np.random.Generator, state: physics.PokeState, params: PokeParams, aimed_fraction: float
) -> tuple[np.ndarray, bool]:
    """A random poke, (4,) float64 [m, m, rad, m], and whether it was aimed at an object.

    An aimed poke picks an object and a direction uniformly, starts the fingertip 1-5 cm short
    of the object's bounding circle on the line through its centre, and pushes 2-15 cm past
    first contact (the finger's path is clipped to the action box).
    """
    h = params.table_half_size
    if rng.uniform() >= aimed_fraction:
        low = np.array([-h, -h, -np.pi, 0.0])
        high = np.array([h, h, np.pi, params.max_poke_length])
        return rng.uniform(low, high), False
    target = int(rng.integers(len(state.kind)))
    angle = rng.uniform(-np.pi, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    reach = float(np.hypot(*state.half_size[target])) + params.finger_radius
    gap, push = rng.uniform(0.01, 0.05), rng.uniform(0.02, 0.15)
    start = np.clip(state.pose[target, :2] - (reach + gap) * direction, -h, h)
    length = min(gap + push + reach - float(state.half_size[target].min()), params.max_poke_length)
    return np.array([start[0], start[1], angle, length]), True


def make_shard(config: PokeDataConfig, index: int) -> dict[str, np.ndarray]:
    """Generates shard ``index`` (see the module docstring for its seeding).

    Returns:
        ``poke`` (n, 4) float32 [m, m, rad, m]; ``aimed`` (n,) bool; ``objects`` and
        ``next_objects`` (n, max_objects, 8) float32 (see ``env.object_features``); with images,
        ``frame`` and ``next_frame`` (n, S, S, 3) uint8.
    """
    params = config.params
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(index,)))
    count = min(config.shard_size, config.num_examples - index * config.shard_size)
    if config.images:
        from envs.poke.render import draw_image
    out: dict[str, list] = {k: [] for k in ("poke", "aimed", "objects", "next_objects")}
    if config.images:
        out.update(frame=[], next_frame=[])
    for _ in range(count):
        state = physics.sample_state(rng, params, config.num_objects)
        action, aimed = sample_poke(rng, state, params, config.aimed_fraction)
        next_state = physics.transition(params, state, action)
        out["poke"].append(action.astype(np.float32))
        out["aimed"].append(aimed)
        out["objects"].append(object_features(state, params.max_objects))
        out["next_objects"].append(object_features(next_state, params.max_objects))
        if config.images:
            out["frame"].append(draw_image(state, params))
            out["next_frame"].append(draw_image(next_state, params))
    return {k: np.stack(v) for k, v in out.items()}


def generate(config: PokeDataConfig, out_dir: str | Path, num_workers: int = 1, log=print) -> Path:
    """Writes the shards and manifest into ``out_dir`` (complete shards are kept); returns it."""
    return shards.write_shards(
        out_dir,
        make_shard,
        config,
        config.num_shards,
        kind=KIND,
        num_workers=num_workers,
        log=log,
    )


def load(out_dir: str | Path, config: PokeDataConfig | None = None) -> dict[str, np.ndarray]:
    """All triples of ``out_dir``, concatenated; with ``config``, refuses data made otherwise."""
    return shards.read_shards(out_dir, kind=KIND, config=config)
