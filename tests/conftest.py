"""Test setup: headless pygame and JAX on the CPU, set before anything imports them.

The tests' programs are small and mostly run once, so compiling them is most of the suite's
time. So XLA's backend optimisations are off (``JAX_DISABLE_MOST_OPTIMIZATIONS=1``, about a
third less time on a 2-core CPU; export it as 0 to test the optimised programs); XLA:CPU's
newer fusion emitters are off (``--xla_cpu_use_fusion_emitters=false`` appended to
``XLA_FLAGS`` unless the flag is set there already: they lower each fusion through MLIR on
more threads than CI's two cores, and the run took ~40% less time without them); and the
programs compiled in a test run are shared through one JAX compilation cache in the run's
temporary folder (the xdist workers', so both use it; pytest deletes old ones), never reused
by a later run.
"""

import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_use_fusion_emitters=false"
    ).strip()


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """One compilation cache per test run, shared by its xdist workers."""
    import jax

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "jax-cache"
    folder.mkdir(exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield


LONGEST_FIRST = (
    "test_driving_experiment.py",
    "test_driving_model.py",
    "test_experiment_spaceship.py",
    "test_agents_train.py",
    "test_readme.py",
    "test_een.py",
)
"""The files whose tests take longest (each 40-110 s on a 2-core CPU, 2026-11-29), longest first.

``--dist loadfile`` hands each xdist worker a whole file at a time, in collection order. Run
alphabetically, one of these could start last and leave the other worker idle (~25 s of the
~460 s default run); started first, the many short files even out the end.
"""


def pytest_collection_modifyitems(config, items):
    """Moves the tests of :data:`LONGEST_FIRST` to the front, in its order (others keep theirs)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
