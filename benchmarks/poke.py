"""Poke throughput on this machine: simulated pokes/s and EEN training and sampling frames/s.

``python -m benchmarks.poke`` prints one table; each ratio is against the baseline row of its
group, measured in the same run: pokes with images vs state only, training inside the shared
trainer's ``lax.scan`` epoch vs the same step jitted alone, EEN sampling vs the deterministic
model.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from envs.poke import dataset
from envs.poke.params import PokeParams
from world_models import een
from world_models.optimizer import make_optimizer
from world_models.trainer import TrainerConfig, TrainState, train_epoch


@dataclasses.dataclass(frozen=True)
class Config:
    """Benchmark sizes."""

    pokes: int = 200
    """Pokes simulated per measurement."""
    image_size: int = 32
    """Frame side [px]."""
    features: int = 16
    """Conv feature maps of the EEN."""
    batch_size: int = 64
    """Training minibatch."""
    steps: int = 10
    """Training steps per measurement."""
    samples: int = 2000
    """Frames predicted per sampling measurement."""
    simulate: bool = True
    """Measure poke simulation (CPU work; skip it on a GPU run with --no-simulate)."""


def _timed(fn, repeats: int = 1) -> float:
    fn()  # warm-up / compile
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def poke_rates(config: Config) -> list[tuple[str, str, float]]:
    """Pokes per second, state only (baseline) and with two rendered frames per poke."""
    rows = []
    for images in (False, True):
        data = dataset.PokeDataConfig(
            config.pokes,
            config.pokes,
            images=images,
            params=PokeParams(image_size=config.image_size),
        )
        seconds = _timed(lambda data=data: dataset.make_shard(data, 0))
        rows.append(("simulate", f"pokes/s, images={images}", config.pokes / seconds))
    return rows


def training_rates(config: Config) -> list[tuple[str, str, float]]:
    """EEN phase-two training frames/s: one jitted step (baseline) vs the trainer's scan epoch."""
    model = een.EENConfig(config.features)
    shape = (config.image_size, config.image_size, 3)
    g = een.init_deterministic(jax.random.PRNGKey(0), model, shape)
    params = een.init_een(jax.random.PRNGKey(1), model, g, shape)
    n = config.batch_size * config.steps
    rng = np.random.default_rng(0)
    data = {
        k: jnp.asarray(rng.integers(0, 256, (n, *shape), np.uint8)) for k in ("frame", "next_frame")
    }
    loss = functools.partial(een.een_loss, model, g)
    optimizer = make_optimizer(TrainerConfig())
    state = TrainState(params, optimizer.init(params), jax.random.PRNGKey(0))
    batch = jax.tree_util.tree_map(lambda x: x[: config.batch_size], data)

    @jax.jit
    def step(state: TrainState, batch: dict) -> TrainState:
        # the batch is an argument: closed over, XLA would fold g's frozen forward pass on it
        # into a compile-time constant and time a step without it
        grads = jax.grad(lambda p: loss(p, batch, state.key)[0])(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return TrainState(
            jax.tree_util.tree_map(jnp.add, state.params, updates), opt_state, state.key
        )

    single = _timed(lambda: jax.block_until_ready(step(state, batch)), config.steps)
    epoch = jax.jit(lambda s, d: train_epoch(loss, optimizer, config.batch_size, s, d))
    scanned = _timed(lambda: jax.block_until_ready(epoch(state, data)))
    return [
        ("train EEN", "frames/s, jitted step", config.batch_size / single),
        ("train EEN", "frames/s, trainer scan epoch", n / scanned),
    ]


def sampling_rates(config: Config) -> list[tuple[str, str, float]]:
    """Predicted frames/s: deterministic g(x) (baseline) and EEN f(x, z) for z from a bank."""
    model = een.EENConfig(config.features)
    shape = (config.image_size, config.image_size, 3)
    g = een.init_deterministic(jax.random.PRNGKey(0), model, shape)
    f = een.init_een(jax.random.PRNGKey(1), model, g, shape)["f"]
    x = jnp.zeros((config.samples, *shape))
    zs = een.draw_latents(
        "een",
        jax.random.PRNGKey(2),
        (config.samples,),
        jnp.ones((100, model.latent_dim)),
        model.latent_dim,
    )
    det = jax.jit(jax.vmap(een.predict_deterministic, (None, None, 0)), static_argnums=0)
    sample = jax.jit(jax.vmap(een.predict_latent, (None, None, 0, 0)), static_argnums=0)
    return [
        (
            "predict",
            "frames/s, deterministic g",
            config.samples / _timed(lambda: jax.block_until_ready(det(model, g, x))),
        ),
        (
            "predict",
            "frames/s, EEN sample",
            config.samples / _timed(lambda: jax.block_until_ready(sample(model, f, x, zs))),
        ),
    ]


def main(config: Config) -> list[tuple[str, str, float]]:
    """Runs every measurement and prints the table."""
    rows = poke_rates(config) if config.simulate else []
    rows += training_rates(config) + sampling_rates(config)
    print(
        f"poke benchmark, {jax.devices()[0].platform}, {config.image_size}px frames, "
        f"{config.features} maps"
    )
    print(f"| {'group':<10} | {'measure':<32} | {'rate':>10} | {'ratio':>6} |")
    print(f"|{'-' * 12}|{'-' * 34}|{'-' * 12}|{'-' * 8}|")
    baseline: dict[str, float] = {}
    for group, name, rate in rows:
        base = baseline.setdefault(group, rate)
        print(f"| {group:<10} | {name:<32} | {rate:>10.1f} | {rate / base:>6.2f} |")
    return rows


if __name__ == "__main__":
    main(tyro.cli(Config))
