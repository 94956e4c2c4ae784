"""The results folder of a training run: config.json, metrics.csv, learning_curve.png, checkpoint.

Everything goes through ``experiments.io`` (atomic writes, checkpoints with config fingerprints,
no pickle). A checkpoint from another config or algorithm is refused with the differing fields
named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.common.config import RUN_LENGTH_FIELDS
from experiments import io

CHECKPOINT = "checkpoint.ckpt"
PARAMS = "params.ckpt"
METRICS = "metrics.csv"
CONFIG = "config.json"
CURVE = "learning_curve.png"
GROUP_PATH = "device-seeds"
"""The ``path`` that a group of seeds trained together records (:mod:`agents.common.seeds`)."""


# make_vec's own arguments in a vector env's spec.kwargs, and the vector entry points'
# autoreset_mode: not arguments of gymnasium.make.
_VECTOR_KWARGS = ("num_envs", "vectorization_mode", "vector_kwargs", "wrappers", "autoreset_mode")


def env_entries(env: Any) -> dict[str, Any]:
    """What ``config.json`` records of the env a run trains on, so the policy can be reloaded.

    Always ``observation_space`` and ``action_space`` (``str`` of the single-env spaces, which
    :func:`agents.common.policy.load_policy` checks against the env it rebuilds). For a
    Gymnasium env or VectorEnv with a registered spec also ``env`` (the id) and ``env_kwargs``
    (the ``gymnasium.make`` keyword arguments that can be written as JSON), and
    ``flatten_observation: true`` when the env is that env under ``FlattenObservation``
    (:func:`flattened`), which reloading applies again. A JAX env carries no id: pass
    ``extra_config={"env": id}`` to ``train`` to record one.
    """
    obs_space = getattr(env, "single_observation_space", None) or env.observation_space
    action_space = getattr(env, "single_action_space", None) or env.action_space
    entries: dict[str, Any] = {
        "observation_space": str(obs_space),
        "action_space": str(action_space),
    }
    if flattened(env):  # the policy sees flat vectors of the inner env's observations
        entries["flatten_observation"] = True
        env = env.env
    spec = getattr(env, "spec", None)
    if spec is None or not getattr(spec, "id", None):
        return entries
    kwargs = {}
    for name, value in (spec.kwargs or {}).items():
        try:
            json.dumps(io.to_jsonable(value), allow_nan=False)
        except (TypeError, ValueError):
            continue  # not writable as JSON: the space check on reload catches what it changes
        if name not in _VECTOR_KWARGS:
            kwargs[name] = value
    return {"env": spec.id, "env_kwargs": kwargs, **entries}


def flattened(env: Any) -> bool:
    """Whether ``env`` is a VectorEnv under ``gymnasium.wrappers.vector.FlattenObservation`` alone.

    That is what ``--flatten-observation`` trains on, and what :func:`env_entries` records so
    the policy reloads; other wrappers are not recorded (reload such runs with ``env=``).
    """
    import gymnasium as gym

    return type(env) is gym.wrappers.vector.FlattenObservation and not isinstance(
        env.env, gym.vector.VectorWrapper
    )


def fingerprint(config: Any) -> str:
    """Config fingerprint that ignores run length (so a run can be extended on resume)."""
    return io.config_fingerprint(config, ignore=RUN_LENGTH_FIELDS)


def _config_diff(run_dir: Path, config: Any) -> str:
    """Human-readable list of fields that differ from the run's saved config.json."""
    try:
        saved = io.read_json(run_dir / CONFIG).get("config", {})
    except (OSError, ValueError):
        return ""
    now = io.to_jsonable(config)
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r} vs now {now.get(k)!r}"
        for k in io.differing_fields(saved, now, RUN_LENGTH_FIELDS)
    ]
    return ("; differing fields: " + ", ".join(diffs)) if diffs else ""


class RunLog:
    """Writes (or, with ``run_dir=None``, only keeps) a run's metrics and checkpoints."""

    def __init__(
        self,
        kind: str,
        config: Any,
        run_dir: str | Path | None,
        path: str,
        extra_config: Mapping[str, Any] | None = None,
        resume: bool = False,
    ) -> None:
        """Opens ``run_dir`` (created if missing) for the run.

        Raises:
            experiments.io.RunFolderError: ``run_dir`` already holds a run (a checkpoint) and
                ``resume`` is off: nothing is overwritten.
        """
        self.kind, self.config, self.path = kind, config, path
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.extra = dict(extra_config or {})
        self.rows: list[dict[str, float]] = []
        self.wall_time_offset = 0.0
        if self.run_dir is None:
            return
        if not resume and (self.run_dir / CHECKPOINT).exists():
            raise io.RunFolderError(
                f"{self.run_dir} already holds a run; continue it with --resume {self.run_dir} "
                "(resume=True in code), or choose another --run-name"
            )
        if resume and self.run_dir.exists():  # what a write killed mid-way left behind
            io.remove_stale_temporaries(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def expect(self) -> dict[str, str]:
        """Checkpoint header entries that must match to resume."""
        return {"kind": self.kind, "fingerprint": fingerprint(self.config), "path": self.path}

    def load(self, target: Any) -> Any:
        """Loads the checkpoint into ``target``'s structure and the metric rows before it.

        Raises:
            experiments.io.CheckpointError: no run_dir, missing/corrupt checkpoint, or a
                checkpoint of another algorithm, config or path.
        """
        if self.run_dir is None:
            raise io.CheckpointError("resume=True needs run_dir (the folder of the run to resume)")
        ckpt = self.run_dir / CHECKPOINT
        try:
            tree, meta = io.load_checkpoint(ckpt, target, self.expect)
        except io.CheckpointError as e:
            raise io.CheckpointError(f"{e}{_config_diff(self.run_dir, self.config)}") from e
        self.restore_rows(int(meta["env_steps"]))
        return tree

    def restore_rows(self, env_steps: int) -> None:
        """Reads back the metric rows of the run up to ``env_steps`` (those a resume keeps)."""
        file = self.run_dir / METRICS if self.run_dir is not None else None
        rows = io.read_csv(file) if file is not None and file.exists() else []
        self.rows = [{k: float(v) for k, v in r.items()} for r in rows]
        for r in self.rows:
            r["env_steps"] = int(r["env_steps"])
        self.rows = [r for r in self.rows if r["env_steps"] <= env_steps]
        self.wall_time_offset = self.rows[-1]["wall_time"] if self.rows else 0.0

    def append(self, row: dict[str, float], tree: Any, params: Any) -> None:
        """Adds a metric row; saves metrics, the full checkpoint and the params alone.

        ``tree`` None writes no checkpoint, ``params`` None no params file (a run of several
        seeds keeps one checkpoint for all and each seed's params in its own folder).
        """
        self.rows.append(row)
        if self.run_dir is None:
            return
        io.write_json(
            self.run_dir / CONFIG,
            {"algorithm": self.kind, "path": self.path, "config": self.config, **self.extra},
        )
        io.write_csv(self.run_dir / METRICS, self.rows)
        meta = {**self.expect, "env_steps": int(row["env_steps"])}
        if tree is not None:
            io.save_checkpoint(self.run_dir / CHECKPOINT, tree, meta)
        if params is not None:
            io.save_checkpoint(self.run_dir / PARAMS, params, meta)

    def finish(self) -> None:
        """Writes the learning curve and says where the run went."""
        if self.run_dir is None:
            return
        plot_curve(self.rows, self.run_dir / CURVE, self.kind)
        print(f"wrote {self.run_dir}")


def plot_curve(rows: list[dict[str, float]], path: Path, title: str) -> None:
    """Mean episode return against environment steps (a group of seeds: its 95% CI band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = [r for r in rows if not math.isnan(r["mean_return"])]
    fig, ax = plt.subplots(figsize=(6, 4))
    if kept:
        steps = [r["env_steps"] for r in kept]
        (line,) = ax.plot(steps, [r["mean_return"] for r in kept])
        if all(math.isfinite(r.get("ci95_low", math.nan)) for r in kept):  # several seeds
            low, high = ([r[k] for r in kept] for k in ("ci95_low", "ci95_high"))
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, label="95% CI")
            ax.legend()
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    io.save_figure(fig, path)
    plt.close(fig)


class Progress:
    """tqdm bar over env steps with steps/s and recent return (plain lines without tqdm)."""

    def __init__(self, total: int, initial: int, enabled: bool = True) -> None:
        self.total, self.steps, self.enabled = total, initial, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, initial=initial, unit="step", unit_scale=True)

    def update(self, row: Mapping[str, float]) -> None:
        """Advances to ``row["env_steps"]`` and shows its mean return."""
        if not self.enabled:
            return
        steps = int(row["env_steps"])
        if self.bar is not None:
            self.bar.update(steps - self.steps)
            self.bar.set_postfix(ret=f"{row['mean_return']:.2f}")
        else:
            rate = steps / max(row["wall_time"], 1e-9)
            print(
                f"{steps}/{self.total} steps  {rate:,.0f} steps/s (run average)  "
                f"mean_return {row['mean_return']:.2f}",
                flush=True,
            )
        self.steps = steps

    def close(self) -> None:
        """Closes the bar."""
        if self.bar is not None:
            self.bar.close()


def read_run_config(run_dir: str | Path, config_cls: type) -> tuple[Any, dict[str, Any]]:
    """The config an A2C/PPO run was made with, and the whole of its ``config.json``.

    Fields missing from the file keep their defaults; lists come back as tuples.

    Raises:
        experiments.io.CheckpointError: config.json is missing, not valid JSON, has no
            ``config`` entry, or names fields that ``config_cls`` does not have (e.g. a PPO run
            read as A2C); the message names the file.
    """
    file = Path(run_dir) / CONFIG
    saved = io.read_settings(file)
    values = io.settings_entry(saved, "config", file)
    if isinstance(values, dict):
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        config = io.config_from_settings(config_cls, values, file, "config")
    except io.CheckpointError as e:
        raise io.CheckpointError(f"{e} (the run was made by {saved.get('algorithm')!r})") from e
    return config, saved


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    """The folder of one seed of a group run (:mod:`agents.common.seeds`)."""
    return Path(run_dir) / f"seed{seed}"


def check_not_group(run_dir: str | Path, saved: Mapping[str, Any]) -> None:
    """Refuses to read a group folder of several seeds as one run, naming its seeds' folders.

    Raises:
        experiments.io.CheckpointError: ``saved`` (its ``config.json``) is a group's.
    """
    if saved.get("path") == GROUP_PATH:
        seeds = saved.get("seeds", ())
        folders = ", ".join(str(seed_dir(run_dir, s)) for s in seeds)
        raise io.CheckpointError(
            f"{run_dir} holds {len(seeds)} seeds trained together; load one seed's folder: "
            f"{folders}"
        )
