"""A claim's verdict, as every experiment records and prints it.

A verdict is ``{"claim": name, "held": bool, "detail": the measured numbers}``; experiments keep
them in ``metrics.json`` under ``"claims"`` and print them under their tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def claim(name: str, held: bool, detail: str, log: Callable[[str], Any] = print) -> dict:
    """Prints and returns one claim's verdict."""
    log(f"[{'HELD' if held else 'NOT HELD'}] {name}: {detail}")
    return {"claim": name, "held": bool(held), "detail": detail}


def verdict_lines(claims: list[dict]) -> list[str]:
    """Markdown list items ``- held: name (detail)`` / ``- NOT held: ...``, one per claim."""
    return [
        f"- {'held' if c['held'] else 'NOT held'}: {c['claim']} ({c['detail']})" for c in claims
    ]


def claim_line(verdict: dict) -> str:
    """``"<claim>: held (<detail>)"`` (or ``NOT held``): the spaceship table's form."""
    return f"{verdict['claim']}: {'held' if verdict['held'] else 'NOT held'} ({verdict['detail']})"
