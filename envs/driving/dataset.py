"""Frame-prediction data from the driving task: top-down frames now and ``horizon`` steps later.

Episodes are simulated on device in one ``jit(vmap(lax.scan))``: the ego car is driven by
``driver.idm_driver`` (it keeps its lane, so the ego's own future is nearly predictable) and
the uncertainty left in a future frame is the traffic's: how fast the other cars go (one frame
shows no speeds) and which of them change lanes. Pairs are taken every ``stride`` steps; a
train/test split by episode keeps correlated pairs on one side.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs.driving import core, driver, pixels
from envs.driving.params import DrivingParams


@dataclasses.dataclass(frozen=True)
class FrameDataConfig:
    """What :func:`collect_pairs` simulates."""

    episodes: int = 160
    """Episodes simulated."""
    steps: int = 160
    """Steps per episode (16 s at the default dt)."""
    horizon: int = 10
    """Steps between a frame and its target (1 s at the default dt)."""
    stride: int = 5
    """Steps between the start frames of consecutive pairs of one episode."""
    desired_speed: float = 25.0
    """The ego driver's IDM desired speed [m/s]."""
    seed: int = 0
    """Seed of the episodes."""

    def __post_init__(self) -> None:
        for name in ("episodes", "steps", "horizon", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"FrameDataConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon >= self.steps:
            raise ValueError(
                f"FrameDataConfig.horizon ({self.horizon}) must be < steps ({self.steps})"
            )

    @property
    def pairs_per_episode(self) -> int:
        """Pairs taken from each episode."""
        return len(range(0, self.steps - self.horizon + 1, self.stride))


def _episode_frames(key: jax.Array, params: DrivingParams, desired_speed: float) -> jax.Array:
    """(steps + 1, H, W, 3) uint8 frames of one driven episode (``params.max_steps`` = steps)."""
    _, state = core.reset(key, params)

    def body(state: core.DrivingState, _: None) -> tuple[core.DrivingState, jax.Array]:
        action = driver.idm_driver(state, params, desired_speed)
        _, state, *_ = core.step(None, state, action, params)
        return state, pixels.rasterize(state, params)

    _, frames = jax.lax.scan(body, state, None, length=params.max_steps)
    return jnp.concatenate([pixels.rasterize(state, params)[None], frames])


def collect_pairs(
    config: FrameDataConfig, params: DrivingParams, episodes_per_call: int = 64
) -> dict[str, Any]:
    """Simulates ``config.episodes`` episodes and cuts them into (frame, later frame) pairs.

    Episodes run ``episodes_per_call`` at a time (one compile: the last call is padded), so only
    the pairs, not every frame of every episode, are kept: at the env's 40x128 frames, 1,600
    episodes of 161 frames would take 4 GB.

    Returns:
        ``frame``, ``next_frame``: (episodes * pairs_per_episode, H, W, 3) uint8 NumPy arrays,
        episode-major; ``episode``: (same,) int32 episode index of each pair.
    """
    params = params.replace(max_steps=config.steps)
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.episodes)
    simulate = jax.jit(jax.vmap(_episode_frames, (0, None, None)), static_argnums=(1, 2))
    starts = np.arange(0, config.steps - config.horizon + 1, config.stride)
    batch = min(episodes_per_call, config.episodes)
    frames, next_frames = [], []
    for first in range(0, config.episodes, batch):
        chunk = keys[first : first + batch]
        padded = jnp.concatenate([chunk, keys[: batch - len(chunk)]])
        video = np.asarray(simulate(padded, params, config.desired_speed))[: len(chunk)]
        frames.append(video[:, starts])
        next_frames.append(video[:, starts + config.horizon])
    frame, next_frame = np.concatenate(frames), np.concatenate(next_frames)
    return {
        "frame": frame.reshape(-1, *frame.shape[2:]),
        "next_frame": next_frame.reshape(-1, *next_frame.shape[2:]),
        "episode": np.repeat(np.arange(config.episodes, dtype=np.int32), len(starts)),
    }
