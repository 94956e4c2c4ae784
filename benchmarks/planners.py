"""Time per action of GBP, DISTGBP and CEM on this machine (``python -m benchmarks.planners``).

Each planner acts for ONE spaceship state per call (the latency an agent acting alone sees),
compiled first and timed over repeated calls; DISTGBP and GBP are also timed batched (per action
in a batch of 1024 observations, one ``jit(vmap)`` call). On an accelerator GBP is also timed on
the host CPU: one state's plan is a chain of ~10^3 small dependent steps (10 iterations of a
horizon-10 rollout and its gradient), so kernel launch latency, not arithmetic, sets its time.
Model parameters are random: the cost does not depend on training.

Targets (issue 4): GBP < 20 ms/action, DISTGBP < 0.1 ms/action batched, on a 2-core CPU.
Reference: mbrl-lib's PETS (7 models x 20 particles x 400 samples x horizon 30 x 5 CEM
iterations) is quoted at ~1.2 s/action; the "PETS scale" row runs that configuration here.
Ratios are against GBP (learned model, the experiment's config) measured in the same run.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from benchmarks.common import gpu_target
from envs.jax_env import make_jax_env
from experiments import spaceship
from experiments.configs import cpu_dispatch_mode, inline_cpu_dispatch
from planners import cem, distill, gbp, oracle, relax
from world_models import dynamics
from world_models.data import Transitions

GBP_BATCHED = "GBP learned model (experiment config, per action in a batch of"
"""Name of the batched GBP row, before ``<n>)``."""
GBP_HOST_CPU = "GBP learned model (experiment config, on the host CPU)"
"""Name of the row run on the CPU when JAX's default backend is an accelerator."""
DISTGBP_BATCHED = "DISTGBP batched (per action, 1024)"
PETS = "CEM PETS scale (7x20x400, H30, 5 it)"


@dataclasses.dataclass(frozen=True)
class Config:
    """Benchmark settings."""

    repeats: int = 50
    """Timed calls per row, median reported (PETS scale: max(1, repeats // 10))."""
    pets: bool = True
    """Include the PETS-scale CEM row (seconds per call)."""
    hidden_sizes: tuple[int, ...] = (128, 128)
    """Forward-model widths for GBP/CEM (the experiment's default)."""
    gbp_batch: int = 1024
    """States planned at once by one ``jit(vmap(plan))`` call in the batched GBP row, timed per
    action (0: no batched row; median of max(1, repeats // 10) calls)."""
    gbp_only: bool = False
    """Only the GBP rows through the learned model (to compare XLA flag settings, each in its
    own process: ``gpu_session.sh`` runs it once more with CUDA-graph capture of loops)."""

    host_cpu_row: bool | None = None
    """Also time GBP on the host CPU (None: only where JAX's default backend is not the CPU)."""

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats={self.repeats} must be at least 1")
        if self.gbp_batch < 0:
            raise ValueError(f"gbp_batch={self.gbp_batch} must be 0 (no row) or positive")


def _time(fn, *args, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of compiled ``fn``, each timed alone.

    As the experiment's ``seconds_per_action``: a stalled call moves a mean, not the median.
    """
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _model(
    hidden: tuple[int, ...],
    ensemble: int,
    obs_dim: int,
    action_dim: int,
    probabilistic: bool = False,
):
    rng = np.random.default_rng(0)
    n = 256
    data = Transitions(
        rng.normal(size=(n, obs_dim)).astype(np.float32),
        rng.normal(size=(n, action_dim)).astype(np.float32),
        rng.normal(size=n).astype(np.float32),
        rng.normal(size=(n, obs_dim)).astype(np.float32),
        np.zeros(n, bool),
    )
    config = dynamics.DynamicsConfig(
        hidden_sizes=hidden, ensemble_size=ensemble, probabilistic=probabilistic
    )
    model = dynamics.DynamicsModel(config, obs_dim, action_dim)
    return model, model.init(jax.random.key(0), data)


def _gbp_rows(config: Config, model, params, obs, rl, key) -> list[tuple[str, float]]:
    """GBP through the learned model: one state per call, batched, and on the host CPU."""
    experiment = spaceship.Config()
    rows = []
    for label, gbp_config in (
        ("experiment config", experiment.gbp),
        ("experiment config, not unrolled", replace(experiment.gbp, unroll=1)),
        ("H15 N15 K4", gbp.GBPConfig(horizon=15, n_iterations=15)),
    ):
        planner = gbp.make_planner(gbp_config, rl, model.step)
        plan0 = gbp.init_plan(gbp_config, rl)
        seconds = _time(planner, params, obs, plan0, key, repeats=config.repeats)
        rows.append((f"GBP learned model ({label})", seconds))
    plan0 = gbp.init_plan(experiment.gbp, rl)
    if config.gbp_batch:
        # Many envs planned at once (the experiment's evaluation vmaps its episodes the same way):
        # the sequential chain of small kernels is shared by the whole batch.
        n = config.gbp_batch
        batched = jax.jit(
            jax.vmap(
                functools.partial(gbp.plan, experiment.gbp, rl, model.step, params),
                in_axes=(0, None, 0),
            )
        )
        states, keys = jnp.tile(obs, (n, 1)), jax.random.split(key, n)
        seconds = _time(batched, states, plan0, keys, repeats=max(1, config.repeats // 10))
        rows.append((f"{GBP_BATCHED} {n})", seconds / n))
    cpu_row = config.host_cpu_row
    if cpu_row if cpu_row is not None else jax.default_backend() != "cpu":
        # One state's plan is a chain of ~10^3 tiny dependent kernels: the host CPU may be faster.
        cpu = jax.devices("cpu")[0]
        planner = gbp.make_planner(experiment.gbp, rl, model.step)
        on_cpu = jax.device_put((params, obs, plan0, key), cpu)
        rows.append((GBP_HOST_CPU, _time(planner, *on_cpu, repeats=config.repeats)))
    return rows


def _cem_rows(config: Config, model, params, obs, rl, key) -> list[tuple[str, float]]:
    """CEM at the experiment's config and (``config.pets``) at mbrl-lib's PETS scale."""
    cem_config = spaceship.Config().cem
    planner = cem.make_planner(cem_config, rl, cem.model_step_for(cem_config, model))
    plan0 = jnp.zeros((cem_config.horizon, 2))
    rows = [
        (
            "CEM learned model (experiment config)",
            _time(planner, params, obs, plan0, key, repeats=config.repeats),
        )
    ]
    if config.pets:
        pets_model, pets_params = _model(
            (200, 200, 200, 200), 7, obs.shape[0], rl.action_dim, probabilistic=True
        )
        pets = cem.CEMConfig(
            horizon=30,
            n_samples=400,
            n_iterations=5,
            n_elites=40,
            n_particles=20,
            ensemble_size=7,
            stochastic_model=True,
        )  # a probabilistic ensemble, particles sampling it (PETS' TS-inf)
        planner = cem.make_planner(pets, rl, cem.model_step_for(pets, pets_model))
        repeats = max(1, config.repeats // 10)
        seconds = _time(planner, pets_params, obs, jnp.zeros((30, 2)), key, repeats=repeats)
        rows.append((PETS, seconds))
    return rows


def measure(config: Config) -> list[tuple[str, float]]:
    """``(row name, seconds per action)`` for every row."""
    env = make_jax_env("worldplan/Spaceship-v0", action_mode="continuous")
    rl = relax.Continuous(2)
    obs, state = env.reset(jax.random.key(0), env.params)
    key = jax.random.key(1)
    model, params = _model(config.hidden_sizes, 1, obs.shape[0], rl.action_dim)
    rows = _gbp_rows(config, model, params, obs, rl, key)
    if config.gbp_only:
        return rows
    true_config = spaceship.Config().gbp_true
    planner = gbp.make_planner(true_config, rl, oracle.model_step, oracle.done_fn)
    true_plan0 = gbp.init_plan(true_config, rl)
    seconds = _time(planner, env.params, state, true_plan0, key, repeats=config.repeats)
    rows.append(("GBP true dynamics (experiment config)", seconds))
    student = distill.DistilledPolicy(rl, obs.shape[0], (128, 128))
    student_params = student.init(key, np.zeros((2, obs.shape[0]), np.float32))
    act = jax.jit(student.act)
    rows.append(("DISTGBP 1 env", _time(act, student_params, obs, repeats=config.repeats)))
    batch = jnp.tile(obs, (1024, 1))
    act_batch = jax.jit(jax.vmap(student.act, in_axes=(None, 0)))
    seconds = _time(act_batch, student_params, batch, repeats=config.repeats)
    rows.append((DISTGBP_BATCHED, seconds / 1024))
    return rows + _cem_rows(config, model, params, obs, rl, key)


def main(config: Config) -> list[tuple[str, float]]:
    """Prints the table with ratios to the GBP row and the target checks."""
    rows = measure(config)
    baseline = rows[0][1]
    print(
        f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s); "
        f"JAX CPU dispatch {cpu_dispatch_mode()}; median of {config.repeats} single calls"
    )
    print("| planner | ms/action | ratio to GBP |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.4f} | {seconds / baseline:.4f} |")
    by = dict(rows)
    gbp_ms = by["GBP learned model (experiment config)"] * 1e3
    print(f"target GBP < 20 ms/action: {'held' if gbp_ms < 20 else 'NOT held'} ({gbp_ms:.2f} ms)")
    gpu_target("GBP (experiment config) time per action", gbp_ms, 2.0, "ms", lower_is_better=True)
    for name, seconds in rows:  # not the target (one state per call), beside it
        if name.startswith(GBP_BATCHED) or name == GBP_HOST_CPU:
            print(f"{name}: {seconds * 1e3:.4f} ms/action ({seconds * 1e3 / gbp_ms:.3g}x)")
    if DISTGBP_BATCHED in by:
        dist_ms = by[DISTGBP_BATCHED] * 1e3
        print(
            f"target DISTGBP < 0.1 ms/action batched: {'held' if dist_ms < 0.1 else 'NOT held'} "
            f"({dist_ms:.5f} ms)"
        )
    if PETS in by:
        pets = by[PETS]
        print(
            f"PETS scale: {pets:.2f} s/action here vs ~1.2 s/action quoted for mbrl-lib "
            f"({pets / 1.2:.2f}x)"
        )
        gpu_target("CEM at PETS scale, time per action", pets * 1e3, 20.0, "ms", True)
    return rows


if __name__ == "__main__":
    inline_cpu_dispatch()  # before any JAX computation, as experiments.spaceship does
    main(tyro.cli(Config))
