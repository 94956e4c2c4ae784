"""What a results folder holds: the experiment or agent that wrote it, its env and its policies.

``experiments.render`` reads this so that ``--run <folder>`` alone picks the env (and the
action mode) the policy was trained on, and so that a folder of the wrong kind, or a run that
has not finished, is refused with a message that says so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from agents.common.results import check_not_group
from experiments import io
from experiments.stages import EXPERIMENT

SPACESHIP = "worldplan/Spaceship-v0"
DRIVING = "worldplan/Driving-v0"


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """A results folder, described."""

    source: str
    """What wrote it: "experiments.spaceship", "experiments.driving", "agents.a2c", ..."""
    env_id: str
    """The registered env its policies act in."""
    env_kwargs: dict[str, Any]
    """``gymnasium.make`` keyword arguments the policies need (e.g. the action mode)."""
    policies: tuple[str, ...]
    """The policies ``experiments.render --policy`` can load from it."""
    unfinished: str | None = None
    """Why its policies cannot be loaded yet (None: they can)."""
    flatten_observation: bool = False
    """Its policies see the env's observations flattened (``FlattenObservation``)."""


def describe(run: str | Path) -> RunInfo:
    """Reads ``run/config.json`` (and what the run wrote beside it) into a :class:`RunInfo`.

    Folders written before ``config.json`` named its experiment are recognised by their fields.

    Raises:
        experiments.io.CheckpointError: no readable ``config.json``, a folder of an
            experiment whose results hold no policy (towers, poke), or the folder of several
            agents' seeds trained together (its message names the seeds' folders).
    """
    run = Path(run)
    file = run / "config.json"
    if not file.exists():
        raise io.CheckpointError(
            f"{run} holds no run (no config.json): pass the folder of an experiments.spaceship, "
            "experiments.driving, agents.a2c or agents.ppo run"
        )
    settings = io.read_settings(file)
    if "algorithm" in settings:  # agents.a2c / agents.ppo
        check_not_group(run, settings)  # several seeds trained together: one folder per seed
        name = str(settings["algorithm"])
        done = (run / "params.ckpt").exists()
        # agents.common.results.env_entries records the env id and its gymnasium.make kwargs.
        kwargs = settings.get("env_kwargs") or {}
        if not isinstance(kwargs, dict):
            raise io.CheckpointError(f"{file}: env_kwargs must be a JSON object, got {kwargs!r}")
        return RunInfo(f"agents.{name}", str(settings.get("env", SPACESHIP)), kwargs, (name,),
                       None if done else "it has not logged its first checkpoint yet",
                       bool(settings.get("flatten_observation", False)))  # fmt: skip
    experiment = settings.get(EXPERIMENT) or _experiment_from_fields(settings)
    if experiment == "spaceship":
        from planners.checkpoints import POLICY_NAMES, SETTINGS

        unfinished = None
        if not (run / SETTINGS).exists():
            unfinished = (
                f"its policies are saved when it ends ({SETTINGS}); finish it with python -m "
                f"experiments.spaceship --run-name {run.name} --resume and its other flags"
            )
        kwargs = {"action_mode": io.settings_entry(settings, "action_mode", file)}
        return RunInfo("experiments.spaceship", SPACESHIP, kwargs, POLICY_NAMES, unfinished)
    if experiment == "driving":
        return RunInfo("experiments.driving", DRIVING, {}, ("gbp", "distgbp", "ppo"))
    raise io.CheckpointError(
        f"{run} is a run of experiments.{experiment or '?'}, which saves no policy to play"
    )


def _experiment_from_fields(settings: dict[str, Any]) -> str | None:
    """The experiment of a ``config.json`` written before it named it."""
    if "state_model" in settings:
        return "driving"
    if "action_mode" in settings and "a2c" in settings:
        return "spaceship"
    return None
