"""The experiments' command line and the checks their ``Config`` dataclasses share."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import tyro

from experiments import io


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


ASYNC_DISPATCH_FLAG = "jax_cpu_enable_async_dispatch"


def env_kwargs_from_json(text: str, flag: str = "--env-kwargs") -> dict[str, Any]:
    """Parses a flag's JSON object of ``gymnasium.make`` keyword arguments.

    Args:
        text: the flag's value, e.g. ``'{"action_mode": "discrete"}'``.
        flag: the flag's name, for the error message.

    Raises:
        ValueError: ``text`` is not valid JSON, or not a JSON object with string keys.
    """
    try:
        kwargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} must be a JSON dict, got {text!r} ({e})") from e
    if not isinstance(kwargs, dict):
        raise ValueError(f"{flag} must be a JSON dict, got {text!r}")
    return kwargs


def inline_cpu_dispatch() -> bool:
    """Makes JAX run CPU computations inline, in the calling thread, from now on.

    With JAX's default asynchronous CPU dispatch, each call hands its computation to a worker
    thread. For a call of ~30 us (DISTGBP's network) that hand-off dominates and varies: on the
    2-core CPU the median of 50 single calls read 0.024-0.15 ms from one block to the next,
    against 0.023-0.05 ms, stable within a process, when inline. Entry points that time single
    calls (``experiments.spaceship``, ``benchmarks.planners``) call this first. It takes effect
    only before JAX's CPU backend starts (the first computation); GPU dispatch is unaffected.

    Returns:
        False when this JAX version has no such setting (nothing changed), else True.
    """
    if ASYNC_DISPATCH_FLAG not in jax.config.values:
        return False
    jax.config.update(ASYNC_DISPATCH_FLAG, False)
    return True


def cpu_dispatch_mode() -> str:
    """``"inline"`` or ``"async"``: how JAX's CPU computations are dispatched (as configured)."""
    return "async" if jax.config.values.get(ASYNC_DISPATCH_FLAG, True) else "inline"


def timing_note(repeats: int) -> str:
    """One line for a table: how s/action was measured (``evaluate.seconds_per_action``)."""
    if repeats == 0:
        return "s/action: evaluation wall time per batched env step (timing_repeats=0)."
    device = jax.devices()[0]
    if device.platform == "cpu":
        where = f"CPU, JAX dispatch {cpu_dispatch_mode()}"
    else:
        where = f"{device.platform.upper()} {device.device_kind}"
    return f"s/action: median of {repeats} single-env calls, each timed alone ({where})."


COMPILATION_CACHE = "data/jax_cache"
"""Where the command-line entry points keep XLA's compiled programs (relative to the working
directory, git-ignored)."""
CACHE_SWITCH = "WORLDPLAN_COMPILATION_CACHE"
"""Environment variable: "off" (or "0") keeps the entry points from using a compilation cache."""
MIN_CACHED_COMPILE_SECONDS = 0.3
"""Programs that compiled faster than this are not cached (a disk read would save little)."""


def use_compilation_cache(
    folder: str | os.PathLike = COMPILATION_CACHE, log: Callable[[str], Any] | None = print
) -> str | None:
    """Keeps the programs XLA compiles in ``folder``, so a later run loads them instead.

    A third of the default spaceship experiment's time on a 2-core CPU is compilation; a second
    run of the same programs (another ``--seed``, a resumed run, a rerun) reads them back. The
    entries are keyed by the program, the JAX version and the device, so a changed program is
    compiled afresh, never mixed up; an unreadable entry is recompiled with a warning. Results
    are the same with or without it: the cache holds the very executables a compile gives.

    The command-line entry points call this before their first computation (it takes effect
    only then); code that imports the library keeps JAX's own setting. A cache the user set
    (``JAX_COMPILATION_CACHE_DIR``, or ``jax.config``) is left as it is, and ``CACHE_SWITCH=off``
    turns this off. ``log`` gets one line saying where, when this sets the cache.

    Returns:
        The cache folder in use, or None when this call set none.
    """
    if os.environ.get(CACHE_SWITCH, "").strip().lower() in ("off", "0", "false", "no"):
        return None
    if jax.config.values.get("jax_compilation_cache_dir"):
        return None
    try:  # a folder that cannot be made would warn at every compile; run without the cache
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        if log is not None:
            log(f"no compilation cache: cannot make {os.fspath(folder)}/ ({e})")
        return None
    jax.config.update("jax_compilation_cache_dir", os.fspath(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_CACHED_COMPILE_SECONDS)
    if log is not None:
        log(f"compiled programs are cached in {os.fspath(folder)}/ ({CACHE_SWITCH}=off: none)")
    return os.fspath(folder)


def run_main(
    main: Callable[[Any], Any], config_cls: type, args: Sequence[str] | None = None
) -> Any:
    """``main(tyro.cli(config_cls))``, with a run-folder problem reported in one line.

    An existing run without ``--resume``, ``--resume`` without ``--run-name``, or a resumed run
    whose settings differ exit with ``error: ...`` (status 1) instead of a traceback. Compiled
    programs are kept in :data:`COMPILATION_CACHE` (:func:`use_compilation_cache`).
    """
    config = tyro.cli(config_cls, args=args)
    use_compilation_cache()
    try:
        return main(config)
    except (io.RunFolderError, io.CheckpointError) as e:
        raise SystemExit(f"error: {e}") from e
