"""Checks shared by the experiments' ``Config`` dataclasses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


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
