"""Watch episodes of any registered worldplan env, or record them to a GIF/MP4.

    python -m experiments.render --env worldplan/Spaceship-v0 --policy random --episodes 2
    python -m experiments.render --env worldplan/Spaceship-v0 --out episode.gif

Without ``--out`` a pygame window opens (on a machine without a display nothing is shown and the
episodes still run). Learned policies load from a results folder with ``--run``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the ids)
from experiments import io, runs
from experiments.configs import env_kwargs_from_json

Policy = Callable[[np.ndarray, gym.Env], Any]
"""``policy(obs, env) -> action`` for one env; ``env.unwrapped`` gives access to the true state."""

PLANNER_POLICIES = ("gbp", "distgbp", "gbp-true")
"""Planners saved by ``python -m experiments.spaceship`` (and gbp, distgbp by ``driving``)."""
AGENT_POLICIES = ("a2c", "ppo")
"""Policies saved by ``python -m agents.a2c`` / ``agents.ppo`` (or inside a spaceship run)."""
HAND_POLICIES = {"idm-driver": "worldplan/Driving-v0"}
"""Hand-written policies (no ``--run``) and the env each one drives."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Render episodes of a registered env."""

    env: str | None = None
    """Registered environment id (default: the env of the --run folder's policy, else
    worldplan/Spaceship-v0)."""
    policy: str | None = None
    """"random", "idm-driver" (Driving-v0's lane-keeping IDM driver), or a learned policy: gbp,
    distgbp, gbp-true, a2c (from an experiments.spaceship run), gbp, distgbp, ppo (from an
    experiments.driving run), or a2c/ppo (from an agents.a2c/agents.ppo run); needs --run.
    Default: "random" without --run; with --run, the run's policy if it holds one (an agents
    run), else an error that lists the ones it holds."""
    run: Path | None = None
    """Results folder of the experiment that trained the policy (for learned policies)."""
    episodes: int = 2
    """Episodes to play (>= 1)."""
    seed: int = 0
    """Seed of the first episode (episode k uses seed + k)."""
    out: Path | None = None
    """Write frames to this .gif or .mp4 instead of opening a window."""
    fps: int = 20
    """Frames per second of the window or the video (>= 1)."""
    env_kwargs: str = "{}"
    """JSON dict of keyword arguments for gymnasium.make, e.g. '{"max_steps": 50}'; they
    override the run's own (its action mode, for instance)."""

    def __post_init__(self) -> None:
        for name in ("episodes", "fps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")


class _EnvPolicy:
    """Adapts a ``policy(obs, state)`` host callable to ``policy(obs, env)``."""

    def __init__(self, policy: Any, needs_state: bool) -> None:
        self.policy, self.needs_state = policy, needs_state

    def reset(self) -> None:
        """Starts a new episode (forgets a planner's warm start)."""
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    def __call__(self, obs: np.ndarray, env: gym.Env) -> Any:
        state = env.unwrapped.get_state() if self.needs_state else None
        return self.policy(obs, state)


def _hand_policy(name: str, env_id: str) -> Policy:
    """A hand-written policy; it reads the true state of the one env it drives."""
    if env_id != HAND_POLICIES[name]:
        raise ValueError(f"--policy {name} drives {HAND_POLICIES[name]} only, not {env_id}")
    from envs.driving.driver import idm_driver

    return lambda obs, env: idm_driver(env.unwrapped.get_state(), env.unwrapped.params)


def resolve_policy(config: Config) -> str:
    """The policy to play: ``--policy``, or the default that ``--run`` implies.

    Raises:
        ValueError: ``--run`` with a policy that reads no run (random, a hand-written one), or
            ``--run`` without ``--policy`` on a run that holds several policies.
        experiments.io.CheckpointError: ``--run`` is not a results folder with a policy.
    """
    if config.run is None:
        return config.policy or "random"
    if config.policy is not None:
        if config.policy == "random" or config.policy in HAND_POLICIES:
            raise ValueError(
                f"--policy {config.policy} reads no run: drop --run {config.run}, or pick one "
                f"of the policies it holds ({', '.join(runs.describe(config.run).policies)})"
            )
        return config.policy
    info = runs.describe(config.run)
    if len(info.policies) == 1:
        return info.policies[0]
    raise ValueError(
        f"{config.run} is an {info.source} run with several policies: pick one with --policy "
        f"({', '.join(info.policies)})"
    )


def resolve_env(config: Config) -> tuple[str, dict[str, Any]]:
    """The env id and ``gymnasium.make`` kwargs to play: the run's own, for a learned policy.

    Raises:
        ValueError: ``--env-kwargs`` is not a JSON dict, or ``--env`` differs from the env the
            run's policy was trained on.
    """
    kwargs = env_kwargs_from_json(config.env_kwargs)
    learned = resolve_policy(config) in PLANNER_POLICIES + AGENT_POLICIES
    if config.run is None or not learned:
        return config.env or runs.SPACESHIP, kwargs
    info = runs.describe(config.run)
    if config.env is not None and config.env != info.env_id:
        raise ValueError(
            f"{config.run} is an {info.source} run on {info.env_id}, not {config.env}: drop "
            "--env, and the run's env is used"
        )
    return info.env_id, {**info.env_kwargs, **kwargs}


def make_policy(config: Config, env: gym.Env) -> Policy:
    """Builds the policy named in the config (learned ones from ``config.run``)."""
    env_id = env.spec.id if env.spec is not None else str(config.env)
    config = dataclasses.replace(config, policy=resolve_policy(config))
    if config.policy == "random":
        env.action_space.seed(config.seed)
        return lambda obs, env: env.action_space.sample()
    if config.policy in HAND_POLICIES:
        return _hand_policy(config.policy, env_id)
    names = PLANNER_POLICIES + AGENT_POLICIES
    if config.policy not in names:
        raise ValueError(
            f"unknown policy {config.policy!r}; choose random, one of {tuple(HAND_POLICIES)} or "
            f"one of {names}"
        )
    if config.run is None:
        raise ValueError(
            f"--policy {config.policy} needs --run <results folder with its checkpoint>"
        )
    run, info = Path(config.run), runs.describe(config.run)
    if config.policy not in info.policies:
        raise ValueError(f"{run} is an {info.source} run; it holds {info.policies}")
    if info.unfinished:
        raise ValueError(f"{run} is an unfinished {info.source} run: {info.unfinished}")
    from agents.common.policy import load_policy as load_agent_policy

    if info.source == "experiments.spaceship":
        from planners.checkpoints import load_policy

        policy = load_policy(run, config.policy, seed=config.seed)
    elif info.source == "experiments.driving" and config.policy == "ppo":
        policy = load_agent_policy(run / "ppo", env, seed=config.seed)
    elif info.source == "experiments.driving":
        from experiments.driving_model import load_policy as load_driving_policy

        policy = load_driving_policy(run, config.policy, seed=config.seed)
    else:
        policy = load_agent_policy(run, env, seed=config.seed)
    return _EnvPolicy(policy, needs_state=config.policy == "gbp-true")


def check_out(path: Path) -> None:
    """Refuses a video path the writer cannot produce (called before any episode is played).

    Raises:
        ValueError: ``path`` does not end in .gif or .mp4.
        ImportError: .mp4 without imageio (the ``video`` extra).
    """
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"--out must end in .gif or .mp4, got {path}")
    if suffix == ".mp4":
        try:
            import imageio.v2  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "writing .mp4 needs the video extra: pip install -e '.[video]' in the worldplan "
                "checkout (imageio and imageio-ffmpeg), or write a .gif"
            ) from e


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    """Writes RGB frames (H, W, 3) uint8 to a .gif (Pillow) or .mp4 (imageio + ffmpeg).

    The video is written to a temporary file beside ``path`` (with the same extension, which
    picks the format) and moved into place with ``os.replace``, so an interrupted write never
    leaves a truncated video at ``path``.
    """
    check_out(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = io.temporary_path(path, suffix)  # the extension picks the format
    try:
        if suffix == ".gif":
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(
                tmp, save_all=True, append_images=images[1:], duration=1000 / fps, loop=0
            )
        else:
            import imageio.v2 as imageio

            imageio.mimwrite(os.fspath(tmp), frames, fps=fps)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def main(config: Config) -> list[float]:
    """Plays the episodes; returns their returns (and writes the video if ``--out``).

    The video holds every episode's first frame and the frame after each step, its last
    (the crash, the target reached) included.
    """
    if config.out:
        check_out(Path(config.out))
    env_id, kwargs = resolve_env(config)
    render_mode = "rgb_array" if config.out else "human"
    env = gym.make(env_id, render_mode=render_mode, **kwargs)
    if config.run is not None and resolve_policy(config) in AGENT_POLICIES:
        if runs.describe(config.run).flatten_observation:  # as the agent trained
            env = gym.wrappers.FlattenObservation(env)
    env.metadata["render_fps"] = config.fps
    policy = make_policy(config, env)
    frames, returns = [], []
    for episode in range(config.episodes):
        obs, _ = env.reset(seed=config.seed + episode)
        if hasattr(policy, "reset"):
            policy.reset()
        total, done = 0.0, False
        if config.out:
            frames.append(env.render())
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs, env))
            total += float(reward)
            done = terminated or truncated
            if config.out:
                frames.append(env.render())
        returns.append(total)
        print(f"episode {episode}: return {total:.2f}")
    if config.out:
        print(f"wrote {len(frames)} frames to {write_video(frames, Path(config.out), config.fps)}")
    env.close()
    return returns


if __name__ == "__main__":
    import tyro

    from experiments.configs import use_compilation_cache

    try:
        cli_config = tyro.cli(Config)
        if cli_config.out:
            check_out(Path(cli_config.out))
        use_compilation_cache()  # a planner's policy compiles before the first frame
        main(cli_config)
    except (ValueError, ImportError) as e:  # bad flags, runs and checkpoints: no traceback
        raise SystemExit(f"error: {e}") from e
