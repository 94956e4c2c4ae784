"""A2C training throughput (env steps/s) on the spaceship task, device path vs host path.

``python -m benchmarks.agents`` times whole A2C updates (rollout + update, SB3 defaults:
5 steps per env, RMSprop) after a warm-up call that compiles, on the device path (env + policy +
update in one jitted ``lax.scan``) at several env counts, and on the host path (Gymnasium vector
env stepped from Python, jitted update; a SyncVectorEnv and our jitted VectorEnv) at small env
counts, and several seeds trained at once (``--num-seeds``). Ratios are against the host path
with the SyncVectorEnv measured in the same run at the same env count (seeds: against one seed
at 16 envs), and against Stable-Baselines3's A2C figures quoted from the issue (0.9K steps/s
at 1 env, 12.7K at 16 envs on a 2-core CPU; NOT measured by us).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import tyro

from agents.a2c import A2C, A2CConfig
from agents.common.loop import init_train_state, run_updates
from agents.common.networks import SmallCNN
from agents.common.seeds import SeedsPath
from agents.common.train import HostPath, make_run_learner
from benchmarks.common import best_rate, gpu_target

SB3_REFERENCE = {1: 900.0, 16: 12_700.0}
"""SB3 A2C steps/s on a 2-core CPU, quoted from the issue author (not measured here)."""
TARGET_STEPS_PER_S = {1: 9_000.0, 16: 130_000.0}
"""The issue's throughput targets on this CPU, per env count: 10x SB3 at equal env counts
(the issue rounds 10 x 12.7K up to 130K at 16 envs)."""
GPU_TARGET_STEPS_PER_S = 50e6
"""The issue's throughput target on one H100 GPU."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Benchmark settings."""

    device_env_counts: tuple[int, ...] = (1, 16, 256, 4096)
    """Env counts for the device path."""
    host_env_counts: tuple[int, ...] = (1, 16)
    """Env counts for the host path (Python-stepped vector env)."""
    steps: int = 200_000
    """Env steps per compiled device call (10 to 500 updates per call; calls repeat for 1 s)."""
    host_steps: int = 4_000
    """Env steps per host measurement."""
    env_id: str = "worldplan/Spaceship-v0"
    """Env id (must have a JAX core for the device path)."""
    seed_counts: tuple[int, ...] = (4,)
    """Seeds trained at once on the device path (``--num-seeds``, one ``jit(vmap)``), 16 envs
    each; compared with one seed at 16 envs (a ``device_env_counts`` entry)."""
    cnn_batch: int = 64
    """Images per gradient step in the pixel-network rows (PPO's minibatch); 0 skips them."""
    cnn_steps: int = 16
    """Gradient steps per compiled call in the pixel-network rows."""


def time_device(
    env, num_envs: int, steps: int, min_seconds: float = 1.0, num_seeds: int = 1
) -> float:
    """Steps/s of jitted A2C updates on the device path (compile excluded), summed over seeds.

    One compiled call runs ``steps // steps_per_update`` updates, clamped to [10, 500] so that a
    call stays short at any env count; calls repeat until ``min_seconds`` have passed. With
    ``num_seeds`` > 1 each call trains that many seeds at once (:mod:`agents.common.seeds`).
    """
    config = A2CConfig(num_envs=num_envs)
    learner = make_run_learner(A2C, config, env)
    updates = min(500, max(10, steps // config.steps_per_update))
    if num_seeds > 1:
        seeds = SeedsPath(learner, env)
        run, state = seeds.run, seeds.init(range(num_seeds))
    else:
        run = jax.jit(functools.partial(run_updates, learner, env), static_argnums=1)
        state = init_train_state(learner, env, jax.random.key(0))
    state = jax.block_until_ready(run(state, updates))[0]  # compile and warm up
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < min_seconds:
        state = jax.block_until_ready(run(state, updates))[0]
        calls += 1
    steps_done = calls * updates * config.steps_per_update * num_seeds
    return steps_done / (time.perf_counter() - start)


def time_host(env_id: str, num_envs: int, steps: int, mode: str = "sync") -> float:
    """Steps/s of A2C on the host path (Gymnasium vector env, jitted act and update).

    ``mode`` is ``gym.make_vec``'s vectorization mode: "sync" (a SyncVectorEnv of single envs
    stepped in NumPy, as SB3's DummyVecEnv) or "vector_entry_point" (our jitted VectorEnv).
    """
    import gymnasium as gym

    vec_env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    config = A2CConfig(num_envs=num_envs)
    path = HostPath(make_run_learner(A2C, config, vec_env), vec_env)
    state = path.run(path.init(jax.random.key(0)), 2)[0]  # compile and warm up
    updates = max(2, steps // config.steps_per_update)
    start = time.perf_counter()
    jax.block_until_ready(path.run(state, updates)[0].params)
    vec_env.close()
    return updates * config.steps_per_update / (time.perf_counter() - start)


class _LaxConvCNN(nn.Module):
    """SmallCNN with ``nn.Conv`` (``lax.conv``): the baseline of the pixel-network rows.

    As the agents had it before :class:`agents.common.networks.PatchConv`; same parameters.
    """

    @nn.compact
    def __call__(self, image: jax.Array) -> jax.Array:
        x = (image.astype(jnp.float32) / 255.0)[None]
        for i, (features, size, stride) in enumerate(SmallCNN.LAYERS):
            x = nn.relu(
                nn.Conv(features, (size, size), (stride, stride), "VALID", name=f"Conv_{i}")(x)
            )
        return nn.relu(nn.Dense(256, name="Dense_0")(x.reshape(-1)))


def time_cnn(network: nn.Module, batch: int, steps: int, in_scan: bool) -> float:
    """Images/s of SGD steps on SmallCNN's features (64x64 RGB uint8), compile excluded.

    ``in_scan``: ``steps`` steps in one jitted ``lax.scan`` (as the device path trains);
    otherwise one jitted step per call, from Python.
    """
    images = jax.random.randint(jax.random.key(0), (steps, batch, 64, 64, 3), 0, 256, jnp.uint8)
    params = SmallCNN().init(jax.random.key(1), images[0, 0])

    def sgd_step(params: Any, batch_images: jax.Array) -> tuple[Any, None]:
        def loss(params: Any) -> jax.Array:
            return jnp.sum(jax.vmap(lambda x: network.apply(params, x))(batch_images) ** 2)

        grads = jax.grad(loss)(params)
        return jax.tree_util.tree_map(lambda p, g: p - 1e-6 * g, params, grads), None

    if in_scan:
        scan = jax.jit(lambda p, xs: jax.lax.scan(sgd_step, p, xs)[0])
        run = lambda: jax.block_until_ready(scan(params, images)) and steps * batch  # noqa: E731
    else:
        step = jax.jit(lambda p, x: sgd_step(p, x)[0])

        def run() -> int:
            p = params
            for x in images:
                p = step(p, x)
            jax.block_until_ready(p)
            return steps * batch

    run()  # compile and warm up
    return best_rate(run, repeats=2)


def cnn_rows(config: Config) -> list[dict]:
    """The pixel-network rows: nn.Conv vs PatchConv, stepped from Python and in a scan."""
    rows = []
    for name, network in (("nn.Conv (lax.conv)", _LaxConvCNN()), ("PatchConv", SmallCNN())):
        for in_scan in (False, True):
            rate = time_cnn(network, config.cnn_batch, config.cnn_steps, in_scan)
            where = (
                f"{config.cnn_steps} steps in one lax.scan" if in_scan else "a jitted step per call"
            )
            rows.append({"network": name, "where": where, "images_per_s": rate})
            print(f"{name}, {where}: {rate:,.0f} images/s", flush=True)
    base = rows[1]["images_per_s"]  # nn.Conv in a scan: the device path before PatchConv
    print(f"\nSmallCNN gradient steps, 64x64 RGB, batch {config.cnn_batch}\n")
    print("| convolution | how | images/s | vs nn.Conv in a lax.scan (same run) |")
    print("|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['network']} | {row['where']} | {row['images_per_s']:,.0f} | "
              f"{row['images_per_s'] / base:.1f}x |")  # fmt: skip
    print()
    return rows


def main(config: Config) -> list[dict]:
    """Runs the measurements and prints the table."""
    import envs  # noqa: F401  (registers the ids)
    from envs.jax_env import make_jax_env

    env = make_jax_env(config.env_id)
    host, rows = {}, []
    for n in config.host_env_counts:
        for mode, name in (("sync", "host, SyncVectorEnv"), ("vector_entry_point", "host, jitted")):
            rate = time_host(config.env_id, n, config.host_steps, mode)
            host.setdefault(n, rate)  # the SyncVectorEnv row is the baseline
            rows.append({"path": name, "num_envs": n, "steps_per_s": rate})
            print(f"{name} vector env, {n} envs: {rate:,.0f} steps/s", flush=True)
    for n in config.device_env_counts:
        rate = time_device(env, n, config.steps)
        rows.append({"path": "device", "num_envs": n, "steps_per_s": rate})
        print(f"device path, {n} envs: {rate:,.0f} steps/s", flush=True)
    for k in config.seed_counts:
        rate = time_device(env, 16, config.steps, num_seeds=k)
        rows.append({"path": f"device, {k} seeds at once (steps of all)", "num_envs": 16,
                     "steps_per_s": rate})  # fmt: skip
        print(f"device path, {k} seeds x 16 envs: {rate:,.0f} steps/s", flush=True)
    print(f"A2C training throughput, {config.env_id}, {jax.devices()[0].platform} "
          f"({jax.device_count()} device(s))\n")  # fmt: skip
    print("| path | envs | steps/s | vs host SyncVectorEnv (same run) | vs SB3 (quoted) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        n, v = row["num_envs"], row["steps_per_s"]
        vs_host = f"{v / host[n]:.1f}x" if n in host else "-"
        vs_sb3 = f"{v / SB3_REFERENCE[n]:.1f}x" if n in SB3_REFERENCE else "-"
        print(f"| {row['path']} | {n} | {v:,.0f} | {vs_host} | {vs_sb3} |")
    device = {r["num_envs"]: r["steps_per_s"] for r in rows if r["path"] == "device"}
    print()
    for row in (r for r in rows if "seeds at once" in r["path"] and 16 in device):
        print(f"{row['path'].split(' (')[0]}: {row['steps_per_s'] / device[16]:.1f}x the steps/s "
              "of one seed at 16 envs (same run)")  # fmt: skip
    for n in sorted(set(device) & set(TARGET_STEPS_PER_S)):
        verdict = "held" if device[n] >= TARGET_STEPS_PER_S[n] else "not held"
        print(f"target >= {TARGET_STEPS_PER_S[n]:,.0f} steps/s at {n} envs (10x SB3's "
              f"{SB3_REFERENCE[n]:,.0f}): {verdict} ({device[n]:,.0f} steps/s)")  # fmt: skip
    best = max(device, key=device.get)
    print(f"best device throughput: {device[best]:,.0f} steps/s at {best} envs")
    gpu_target(f"A2C device path ({best:,} envs)", device[best], GPU_TARGET_STEPS_PER_S, "steps/s")
    print("SB3 figures are quoted from the issue (2-core CPU), not measured in this run.")
    if config.cnn_batch > 0:
        print()
        rows += cnn_rows(config)
    return rows


if __name__ == "__main__":
    main(tyro.cli(Config))
