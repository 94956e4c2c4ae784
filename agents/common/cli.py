"""Command line of ``python -m agents.a2c`` / ``python -m agents.ppo`` (tyro)."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import gymnasium as gym
import jax
import tyro

from agents.common.policy import spaces_of
from agents.common.results import read_run_config
from agents.common.seeds import train_seeds
from agents.common.train import Algorithm, is_jax_env, train
from envs.jax_env import has_jax_core
from experiments import io
from experiments.configs import env_kwargs_from_json, use_compilation_cache

ConfigT = TypeVar("ConfigT")


@dataclasses.dataclass(frozen=True)
class RunArgs(Generic[ConfigT]):
    """Train an actor-critic and write ``results/<algorithm>/<run>/``."""

    config: Annotated[ConfigT, tyro.conf.arg(name="")]
    """Algorithm settings."""
    env: str = "worldplan/Spaceship-v0"
    """Gymnasium env id. Envs with a JAX core train on device unless ``--host``."""
    env_kwargs: str = "{}"
    """JSON dict of the env's keyword arguments (as ``gymnasium.make`` takes them), e.g.
    '{"action_mode": "discrete"}'; recorded in config.json, so ``--resume``, ``load_policy``
    and ``experiments.render`` rebuild the same env."""
    seed: int = 0
    """Seed of the PRNG key (network init, actions, envs)."""
    host: bool = False
    """Train on the host path (Gymnasium VectorEnv) even if the env has a JAX core."""
    flatten_observation: bool = False
    """Flatten the observations into one vector (``gymnasium.wrappers.vector.FlattenObservation``
    on the host path), e.g. Poke-v0's Dict of image and objects, for the MLP; recorded in
    config.json, so reloading and ``agents.evaluate`` flatten them too."""
    num_seeds: int = 1
    """Seeds trained at once on the device path, one ``jit(vmap)`` for all: ``--seed``,
    ``--seed`` + 1, ...; each gets its own folder ``<run>/seed<s>`` (``agents.common.seeds``)."""
    resume: Path | None = None
    """Run folder to continue from (its config.json gives the defaults of every flag)."""
    run_name: str | None = None
    """Name of the run folder (default: a timestamp)."""
    results_dir: Path = Path("results")
    """Root of the results folders."""


def make_env(
    env_id: str,
    num_envs: int,
    host: bool,
    env_kwargs: Mapping[str, Any] | None = None,
    flatten: bool = False,
) -> Any:
    """The JAX env for ``env_id`` if it has a JAX core (and not ``host``), else a VectorEnv.

    Args:
        env_id: a registered Gymnasium id.
        num_envs: envs of the VectorEnv (the device path's count is the config's).
        host: make the VectorEnv even if the env has a JAX core.
        env_kwargs: the env's keyword arguments, for either.
        flatten: the VectorEnv under ``FlattenObservation`` (implies the host path).

    Raises:
        gymnasium.error.Error: an unknown id (or a third-party env's missing dependency).
        TypeError, ValueError: keyword arguments the env does not take, or values it refuses.
    """
    import envs  # noqa: F401  (registers the worldplan ids)
    from envs.jax_env import has_jax_core, make_jax_env

    kwargs = dict(env_kwargs or {})
    if not (host or flatten) and has_jax_core(env_id):
        return make_jax_env(env_id, **kwargs)
    env = gym.make_vec(env_id, num_envs=num_envs, **kwargs)
    return gym.wrappers.vector.FlattenObservation(env) if flatten else env


def _defaults(config_cls: type, argv: Sequence[str]) -> RunArgs | None:
    """For ``--resume DIR``: defaults from the saved config.json, so flags only override.

    Fields missing from the file keep their defaults.

    Raises:
        experiments.io.CheckpointError: config.json is missing, not valid JSON, has no
            ``config`` entry, or names fields that ``config_cls`` does not have.
    """
    argv = list(argv)
    if "--resume" not in argv or argv.index("--resume") + 1 >= len(argv):
        return None
    run_dir = Path(argv[argv.index("--resume") + 1])
    if run_dir.is_dir() and not (run_dir / "config.json").exists():
        raise io.CheckpointError(
            f"{run_dir} holds nothing to resume yet (the run stopped before its first log "
            f"interval wrote config.json and a checkpoint): start it again without --resume "
            f"(--run-name {run_dir.name})"
        )
    config, saved = read_run_config(run_dir, config_cls)
    return RunArgs(config=config, env=saved.get("env", RunArgs.env), seed=saved.get("seed", 0),
                   env_kwargs=json.dumps(saved.get("env_kwargs") or {}),
                   host=saved.get("path") == "host",
                   flatten_observation=bool(saved.get("flatten_observation", False)),
                   num_seeds=len(saved.get("seeds", (0,))))  # fmt: skip


def _refuse_resume_changes(args: RunArgs, default: RunArgs, env_kwargs: dict[str, Any]) -> None:
    """Refuses flags that would change what a resumed run trains on (its env, its seeds)."""
    if args.resume is None:
        return
    keep = "a resumed run keeps its env"
    if args.env != default.env:
        raise SystemExit(
            f"error: --resume {args.resume}: the run trains on {default.env}, not {args.env}; "
            f"drop --env ({keep})"
        )
    if env_kwargs != json.loads(default.env_kwargs):
        raise SystemExit(
            f"error: --resume {args.resume}: the run's env takes --env-kwargs "
            f"{default.env_kwargs}, not {args.env_kwargs}; drop --env-kwargs ({keep})"
        )
    if args.flatten_observation != default.flatten_observation:
        raise SystemExit(
            f"error: --resume {args.resume}: the run trains on "
            f"{'flattened' if default.flatten_observation else 'unflattened'} observations; "
            f"drop --flatten-observation / --no-flatten-observation ({keep})"
        )
    if args.num_seeds != default.num_seeds:
        raise SystemExit(
            f"error: --resume {args.resume}: the run trains {default.num_seeds} seed(s), not "
            f"{args.num_seeds}; drop --num-seeds (a resumed run keeps its seeds)"
        )


def _checked_env(args: RunArgs, env_kwargs: dict[str, Any]) -> Any:
    """The env to train on, or a ``SystemExit`` naming what the flags ask that cannot be done."""
    if args.num_seeds < 1:
        raise SystemExit(f"error: --num-seeds must be >= 1, got {args.num_seeds}")
    try:
        env = make_env(args.env, args.config.num_envs, args.host, env_kwargs,
                       args.flatten_observation)  # fmt: skip
    except gym.error.Error as e:  # an unknown id, a missing dependency of a third-party env
        raise SystemExit(f"error: --env {args.env}: {e}") from e
    except (TypeError, ValueError) as e:  # keyword arguments the env does not take
        raise SystemExit(f"error: --env {args.env} --env-kwargs {args.env_kwargs}: {e}") from e
    observations = spaces_of(env)[0]
    if not isinstance(observations, gym.spaces.Box):
        raise SystemExit(
            f"error: --env {args.env} has {type(observations).__name__} observations "
            f"({observations}); the networks take a Box: add --flatten-observation to train on "
            "them as one vector"
        )
    if args.num_seeds > 1 and not is_jax_env(env):
        flag = "--host" if args.host else "--flatten-observation"
        why = f"{flag} turns off" if has_jax_core(args.env) else "lacks (no JAX core)"
        raise SystemExit(
            f"error: --num-seeds {args.num_seeds} trains on the device path, which "
            f"{args.env} {why}; train one --seed at a time"
        )
    return env


def main(algorithm: Algorithm, config_cls: type, argv: Sequence[str] | None = None) -> Path:
    """Parses the command line, trains, and returns the run folder.

    Every refusal (bad flags, an env that cannot be made or trained on, a resume that would
    change the run) comes before a run folder is made.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        default = _defaults(config_cls, argv) or RunArgs(config=config_cls())
    except io.CheckpointError as e:
        raise SystemExit(f"error: --resume: {e}") from e
    try:
        args = tyro.cli(RunArgs[config_cls], args=argv, default=default)
        env_kwargs = env_kwargs_from_json(args.env_kwargs)
    except ValueError as e:  # a config's own range check (e.g. --num-envs 0), bad JSON
        raise SystemExit(f"error: {e}") from e
    use_compilation_cache()  # before the first computation (make_env's included)
    _refuse_resume_changes(args, default, env_kwargs)
    env = _checked_env(args, env_kwargs)
    resume = args.resume is not None
    run_dir = args.resume if resume else io.make_run_dir(args.results_dir / algorithm.name,
                                                          args.run_name)  # fmt: skip
    extra = {"env": args.env, "env_kwargs": env_kwargs}
    try:
        if args.num_seeds > 1:
            seeds = range(args.seed, args.seed + args.num_seeds)
            train_seeds(algorithm, args.config, env, seeds, run_dir=run_dir, resume=resume,
                        extra_config=extra)  # fmt: skip
            print(f"evaluate each seed: python -m agents.evaluate {run_dir}")
            return run_dir
        result = train(algorithm, args.config, env, jax.random.key(args.seed), run_dir=run_dir,
                       resume=resume, extra_config={**extra, "seed": args.seed})  # fmt: skip
    except io.CheckpointError as e:
        raise SystemExit(f"error: --resume {args.resume}: {e}") from e
    except io.RunFolderError as e:
        raise SystemExit(f"error: {e}") from e
    print(f"evaluate it: python -m agents.evaluate {result.run_dir}")
    return result.run_dir
