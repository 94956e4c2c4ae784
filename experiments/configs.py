"""The experiments' command line and the checks their ``Config`` dataclasses share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tyro

from experiments import io
from experiments.stages import RunFolderError


def refuse_replaced(config: Any, replaced: Mapping[tuple[str, str], str]) -> None:
    """Refuses nested fields that the run sets itself when the user changed them.

    A flag that the run would overwrite must not be taken silently (``--trainer.max-epochs 3``
    doing nothing); the error names the flag that does control the value.

    Args:
        config: a config dataclass whose fields have defaults.
        replaced: ``{(field, subfield): "the flag to use instead"}``.

    Raises:
        ValueError: a listed subfield differs from its value in the field's default.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for (part, field), instead in replaced.items():
        if getattr(getattr(config, part), field) != getattr(defaults[part], field):
            raise ValueError(f"--{part}.{field.replace('_', '-')} is set by the run: use {instead}")


def run_main(
    main: Callable[[Any], Any], config_cls: type, args: Sequence[str] | None = None
) -> Any:
    """``main(tyro.cli(config_cls))``, with a run-folder problem reported in one line.

    An existing run without ``--resume``, ``--resume`` without ``--run-name``, or a resumed run
    whose settings differ exit with ``error: ...`` (status 1) instead of a traceback.
    """
    config = tyro.cli(config_cls, args=args)
    try:
        return main(config)
    except (RunFolderError, io.CheckpointError) as e:
        raise SystemExit(f"error: {e}") from e
