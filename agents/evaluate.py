"""``python -m agents.evaluate results/<algo>/<run>``: how well a trained agent plays, and how fast.

Reads an ``agents.a2c`` / ``agents.ppo`` run folder (its ``config.json`` names the env, its
``gymnasium.make`` kwargs and the algorithm; ``params.ckpt`` holds the trained weights), plays
``--episodes`` fresh episodes and prints the mean return with its 95% confidence interval
(Student t, :func:`agents.common.stats.mean_ci`), the mean episode length and the time per action.
Envs with a JAX core play every episode at once (:func:`agents.common.evaluate.evaluate_jax`,
the function the experiments' tables use) and time the policy alone, as the median of single-env
calls; other envs play episode by episode through ``gymnasium.make``
(:func:`agents.common.evaluate.evaluate_host`), timing each policy call. The folder of several
seeds trained together (``--num-seeds``) evaluates each seed and adds the mean over seeds with a
95% CI over seeds.

The figures go to ``<run>/evaluation/<episodes>ep_seed<seed>[_stochastic][_host].json``
(written atomically; the same settings give the same file, so a rerun replaces it with the same
numbers).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import gymnasium as gym
import jax
import numpy as np
import tyro

from agents.common import results
from agents.common.evaluate import EvalResult, evaluate_host, evaluate_jax, seconds_per_action
from agents.common.policy import (
    check_spaces,
    load_params,
    load_policy,
    make_policy,
    read_config,
    recorded_env,
)
from agents.common.stats import mean_ci
from experiments import io


@dataclasses.dataclass(frozen=True)
class Config:
    """Evaluate a trained A2C / PPO run: mean return with a 95% CI, and time per action."""

    run: Annotated[Path, tyro.conf.Positional]
    """The run folder (``results/a2c/<run>``); a folder of seeds trained together evaluates
    each ``seed<s>/`` in it."""
    episodes: int = 100
    """Episodes to play (>= 2 for a confidence interval)."""
    seed: int = 0
    """Seed of the evaluation: the PRNG key of the JAX rollouts, or ``env.reset(seed=seed + k)``
    for host episode k."""
    stochastic: bool = False
    """Sample actions from the policy instead of taking its mode (the default, as SB3's
    evaluation)."""
    host: bool = False
    """Play through ``gymnasium.make``'s single env even if the env has a JAX core."""
    timing_repeats: int = 50
    """Single-env policy calls whose median is the time per action (JAX envs; >= 1)."""

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {self.episodes}")
        if self.timing_repeats < 1:
            raise ValueError(f"--timing-repeats must be >= 1, got {self.timing_repeats}")


def evaluate_run(run: Path, config: Config) -> dict[str, Any]:
    """Plays one run's policy; returns what :func:`main` prints and writes for it.

    Raises:
        experiments.io.CheckpointError: not a finished agents run, or its env has other
            spaces now.
    """
    import envs  # noqa: F401  (registers the worldplan ids)
    from envs.jax_env import has_jax_core, make_jax_env

    agent, saved = read_config(run)
    if "env" not in saved:
        raise io.CheckpointError(
            f"{run}/config.json records no env id (a run trained from Python on a JaxEnv): "
            "evaluate it with agents.common.evaluate.evaluate_jax"
        )
    env_id, kwargs = str(saved["env"]), dict(saved.get("env_kwargs") or {})
    deterministic = not config.stochastic
    key = jax.random.key(config.seed)
    if has_jax_core(env_id) and not config.host and not saved.get("flatten_observation"):
        env = make_jax_env(env_id, **kwargs)
        check_spaces(run, saved, env)
        params = load_params(str(saved["algorithm"]), agent, env, run)
        policy = make_policy(agent, env, params, deterministic)
        result = evaluate_jax(env, policy, config.episodes, key)
        seconds = seconds_per_action(policy, None, env, config.timing_repeats, key)
        how = f"JAX rollouts; time per action: median of {config.timing_repeats} single-env calls"
    else:
        policy = load_policy(run, deterministic=deterministic, seed=config.seed)
        env = recorded_env(saved)
        result = evaluate_host(env, policy, config.episodes, seed=config.seed)
        env.close()
        seconds = result.seconds_per_action
        how = "gymnasium.make, episode by episode; time per action: median policy call"
    metrics = io.read_csv(run / results.METRICS) if (run / results.METRICS).exists() else []
    return {
        "run": str(run),
        "algorithm": saved["algorithm"],
        "env": env_id,
        "env_kwargs": kwargs,
        "env_steps_trained": int(float(metrics[-1]["env_steps"])) if metrics else None,
        **_summary(result, seconds),
        "how": how,
    }


def _summary(result: EvalResult, seconds: float) -> dict[str, Any]:
    return {
        "episodes": len(result.returns),
        "mean_return": result.mean,
        "ci95_low": result.ci95_low,
        "ci95_high": result.ci95_high,
        "mean_episode_length": float(np.mean(result.episode_lengths)),
        "seconds_per_action": seconds,
        "returns": result.returns.tolist(),
    }


def _line(record: dict[str, Any]) -> str:
    trained = record["env_steps_trained"]
    steps = f"{trained:,} env steps" if trained is not None else "env steps unknown"
    return (
        f"{record['run']} ({record['algorithm']}, {steps}): mean return "
        f"{record['mean_return']:.2f} [{record['ci95_low']:.2f}, {record['ci95_high']:.2f}] over "
        f"{record['episodes']} episodes, length {record['mean_episode_length']:.1f}, "
        f"{record['seconds_per_action'] * 1e3:.4f} ms per action"
    )


def _file_name(config: Config) -> str:
    parts = [f"{config.episodes}ep", f"seed{config.seed}"]
    parts += ["stochastic"] * config.stochastic + ["host"] * config.host
    return "_".join(parts) + ".json"


def main(config: Config, log: Any = print) -> dict[str, Any]:
    """Evaluates the run (or each seed of a group), prints the figures and writes them.

    Returns:
        What was written: settings, one record per run evaluated (``runs``) and, for a group,
        ``over_seeds`` (mean of the seeds' mean returns, 95% CI over seeds).

    Raises:
        experiments.io.CheckpointError: not an agents run folder (or a group of them).
    """
    saved = io.read_settings(config.run / results.CONFIG)
    group = saved.get("path") == results.GROUP_PATH
    runs = [results.seed_dir(config.run, s) for s in saved.get("seeds", ())] if group else []
    records = [evaluate_run(Path(run), config) for run in runs or [config.run]]
    actions = "sampled" if config.stochastic else "deterministic (the mode)"
    log(f"{records[0]['env']} {records[0]['env_kwargs']}, actions {actions}, seed {config.seed}")
    log(f"({records[0]['how']})")
    for record in records:
        log(_line(record))
    out: dict[str, Any] = {"settings": io.to_jsonable(config), "runs": records}
    if group:
        mean, low, high = mean_ci(np.array([r["mean_return"] for r in records]))
        out["over_seeds"] = {"seeds": len(records), "mean_return": mean, "ci95_low": low,
                             "ci95_high": high}  # fmt: skip
        log(f"over {len(records)} seeds: mean return {mean:.2f} [{low:.2f}, {high:.2f}] "
            "(95% CI over seeds)")  # fmt: skip
    path = config.run / "evaluation" / _file_name(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(path, out)
    log(f"wrote {path}")
    return out


def cli(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m agents.evaluate``: parses the flags, then :func:`main`."""
    from experiments.configs import inline_cpu_dispatch, use_compilation_cache

    try:
        config = tyro.cli(Config, args=argv)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from e
    inline_cpu_dispatch()  # before the first computation: single calls are timed
    use_compilation_cache()
    try:
        return main(config)
    except io.CheckpointError as e:
        raise SystemExit(f"error: {e}") from e
    except gym.error.Error as e:  # the recorded id is not registered in this process
        raise SystemExit(f"error: {config.run}: cannot make its env: {e}") from e


if __name__ == "__main__":
    cli()
