"""Watch episodes of any registered worldplan env, or record them to a GIF/MP4.

    python -m experiments.render --env worldplan/Spaceship-v0 --policy random --episodes 2
    python -m experiments.render --env worldplan/Spaceship-v0 --out episode.gif

Without ``--out`` a pygame window opens (on a machine without a display nothing is shown and the
episodes still run). Learned policies load from a results folder with ``--run``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the ids)

Policy = Callable[[np.ndarray, gym.Env], Any]
"""``policy(obs, env) -> action`` for one env; ``env.unwrapped`` gives access to the true state."""

POLICY_LOADERS = {
    "gbp": "planners.policies:load_gbp_policy",
    "distgbp": "planners.policies:load_distgbp_policy",
    "a2c": "agents.a2c.policy:load_host_policy",
    "ppo": "agents.ppo.policy:load_host_policy",
}
"""Policies other than "random": ``module:function(run_dir, env) -> Policy``, imported lazily."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Render episodes of a registered env."""

    env: str = "worldplan/Spaceship-v0"
    """Registered environment id."""
    policy: str = "random"
    """"random", or a learned policy: gbp, distgbp, a2c, ppo (needs --run)."""
    run: Path | None = None
    """Results folder of the experiment that trained the policy (for learned policies)."""
    episodes: int = 2
    """Episodes to play."""
    seed: int = 0
    """Seed of the first episode (episode k uses seed + k)."""
    out: Path | None = None
    """Write frames to this .gif or .mp4 instead of opening a window."""
    fps: int = 20
    """Frames per second of the window or the video."""
    env_kwargs: str = "{}"
    """JSON dict of keyword arguments for gymnasium.make, e.g. '{"action_mode": "discrete"}'."""


def make_policy(config: Config, env: gym.Env) -> Policy:
    """Builds the policy named in the config."""
    if config.policy == "random":
        env.action_space.seed(config.seed)
        return lambda obs, env: env.action_space.sample()
    if config.policy not in POLICY_LOADERS:
        raise ValueError(
            f"unknown policy {config.policy!r}; choose random or {sorted(POLICY_LOADERS)}"
        )
    if config.run is None:
        raise ValueError(
            f"--policy {config.policy} needs --run <results folder with its checkpoint>"
        )
    module, function = POLICY_LOADERS[config.policy].split(":")
    try:
        loader = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"policy {config.policy!r} is not available in this install ({e})") from e
    return loader(config.run, env)


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    """Writes RGB frames (H, W, 3) uint8 to a .gif (Pillow) or .mp4 (imageio + ffmpeg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
    elif path.suffix.lower() == ".mp4":
        try:
            import imageio.v2 as imageio
        except ImportError as e:
            raise ImportError(
                "writing .mp4 needs the video extra: pip install 'worldplan[video]'"
            ) from e
        imageio.mimwrite(path, frames, fps=fps)
    else:
        raise ValueError(f"--out must end in .gif or .mp4, got {path}")
    return path


def main(config: Config) -> list[float]:
    """Plays the episodes; returns their returns (and writes the video if ``--out``)."""
    kwargs = json.loads(config.env_kwargs)
    render_mode = "rgb_array" if config.out else "human"
    env = gym.make(config.env, render_mode=render_mode, **kwargs)
    env.metadata["render_fps"] = config.fps
    policy = make_policy(config, env)
    frames, returns = [], []
    for episode in range(config.episodes):
        obs, _ = env.reset(seed=config.seed + episode)
        total, done = 0.0, False
        while not done:
            if config.out:
                frames.append(env.render())
            obs, reward, terminated, truncated, _ = env.step(policy(obs, env))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
        print(f"episode {episode}: return {total:.2f}")
    if config.out:
        frames.append(env.render())
        print(f"wrote {len(frames)} frames to {write_video(frames, Path(config.out), config.fps)}")
    env.close()
    return returns


if __name__ == "__main__":
    import tyro

    main(tyro.cli(Config))
