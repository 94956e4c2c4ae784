"""The entry points' compilation cache (``experiments.configs.use_compilation_cache``).

Each case runs a fresh Python process: JAX reads its cache setting at the first compile, and
this test session's own cache (``tests/conftest.py``) must not leak into the program under test.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

from experiments.configs import CACHE_SWITCH, COMPILATION_CACHE

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
import dataclasses, jax, jax.numpy as jnp
from experiments.configs import run_main

@dataclasses.dataclass(frozen=True)
class Config:
    x: int = 3

hits = []
jax.monitoring.register_event_listener(
    lambda event, **kwargs: hits.append(event) if event.endswith("cache_hits") else None
)

def main(config):
    # cache even this tiny program (the entry points skip those that compile in < 0.3 s)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    value = float(jax.jit(lambda v: jnp.sin(v) * 2)(jnp.float32(config.x)))
    print("cache hits", len(hits))
    print("value", value)

run_main(main, Config, args=[])
"""


def _run(cwd: Path, **env: str) -> str:
    unset = ("JAX_COMPILATION_CACHE_DIR", CACHE_SWITCH)
    environ = {k: v for k, v in os.environ.items() if k not in unset}
    environ.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=cwd, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_an_entry_point_caches_its_programs_in_data_and_says_so(tmp_path) -> None:
    out = _run(tmp_path)
    cache = tmp_path / COMPILATION_CACHE
    assert f"compiled programs are cached in {COMPILATION_CACHE}/" in out
    first = _entries(cache)
    assert any("lambda" in name for name in first), first
    assert "cache hits 0" in out
    # a second run loads the program (no new entry) and computes the same value
    again = _run(tmp_path)
    assert _entries(cache) == first
    assert "cache hits 0" not in again and "cache hits" in again
    assert again.splitlines()[-1] == out.splitlines()[-1]
    assert abs(float(out.split()[-1]) - 2 * math.sin(3.0)) < 1e-6


def test_the_users_cache_and_the_switch_are_respected(tmp_path) -> None:
    mine = tmp_path / "mine"
    out = _run(tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine))
    assert "cached in" not in out
    assert _entries(mine) and not (tmp_path / COMPILATION_CACHE).exists()
    off = tmp_path / "off"
    off.mkdir()
    out = _run(off, **{CACHE_SWITCH: "off"})
    assert "cached in" not in out and not (off / "data").exists()


def test_a_folder_that_cannot_be_made_means_no_cache_and_one_line(tmp_path) -> None:
    (tmp_path / "data").write_text("a file where the cache folder would go")
    out = _run(tmp_path)
    assert "no compilation cache: cannot make data/jax_cache/" in out
    assert "cache hits 0" in out and "value" in out


ENTRY_POINTS = """
import importlib, jax, tyro
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: compiles.append(event)
    if event.endswith("backend_compile_duration") else None
)
for name in ("spaceship", "driving", "towers", "poke", "across_seeds", "model_fidelity"):
    module = importlib.import_module(f"experiments.{name}")
    args = ["--runs", "results/spaceship/x"] if name in ("across_seeds", "model_fidelity") else []
    tyro.cli(module.Config, args=args)
for name in ("experiments.render", "agents.a2c", "agents.ppo", "agents.common.cli"):
    importlib.import_module(name)
evaluate = importlib.import_module("agents.evaluate")
tyro.cli(evaluate.Config, args=["results/a2c/x"])
print("compiles", len(compiles))
"""


def test_entry_points_compile_nothing_before_they_set_the_cache(tmp_path) -> None:
    # JAX decides at its first compile whether a cache is used: a compile at import time or
    # while parsing the flags would leave every entry point silently without one
    environ = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    done = subprocess.run(
        [sys.executable, "-c", ENTRY_POINTS],
        cwd=tmp_path,
        env={**environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["compiles", "0"], done.stdout
