"""Small helpers shared by the benchmarks: timing and table printing."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence

import jax


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    device = jax.devices()[0]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    import os

    return f"{device.platform.upper()} {device.device_kind}; host {cpu}, {os.cpu_count()} cores"


def best_rate(run: Callable[[], int], repeats: int = 3, min_seconds: float = 0.5) -> float:
    """Best of ``repeats`` measurements of ``run()``'s items per second.

    ``run`` returns how many items (steps, samples) it processed; it is called until at least
    ``min_seconds`` have passed in each repeat.
    """
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            count += run()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, count / elapsed)
    return best


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Prints (and returns) a Markdown table."""
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def human(rate: float) -> str:
    """Formats a rate like 12.3K or 4.56M."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.3g}{unit}"
    return f"{rate:.3g}"


def gpu_target(what: str, measured: float, target: float, unit: str, lower_is_better=False) -> str:
    """A 'held' / 'NOT held' line for a GPU target, checked only when JAX runs on a GPU.

    Args:
        what: the target's name, e.g. "A2C throughput on one H100".
        measured: the measured figure, in ``unit``.
        target: the target figure, in ``unit``.
        unit: unit of both figures, e.g. "steps/s".
        lower_is_better: True for times (the target is an upper bound).

    Returns:
        The line (also printed).
    """
    device = jax.devices()[0]
    if device.platform != "gpu":
        line = (
            f"GPU target ({what}: {target:,.4g} {unit}) not checked: JAX runs on {device.platform}"
        )
    else:
        ok = measured <= target if lower_is_better else measured >= target
        bound = "<=" if lower_is_better else ">="
        line = (
            f"GPU target {what} {bound} {target:,.4g} {unit}: {'held' if ok else 'NOT held'} "
            f"({measured:,.4g} {unit} on {device.device_kind})"
        )
    print(line, flush=True)
    return line
