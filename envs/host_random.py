"""JAX's threefry PRNG keys, ``split`` and :func:`envs.ops.uniforms`, computed in NumPy on the host.

A Gymnasium single env whose ``reset`` drew its start state with JAX would start JAX's thread
pool in the process; a worker process forked after that (Gymnasium's ``AsyncVectorEnv`` forks
by default on Linux) deadlocks at its first JAX computation. So the single env draws the very
same numbers here, with no JAX computation at all: env ``i`` of a JAX vector env reset with
seed ``s + i`` and a single env reset with seed ``s + i`` start from the same state.

The functions mirror, bit for bit, ``jax.random.PRNGKey`` (raw uint32 threefry keys),
``jax.random.split`` under the default ``jax_threefry_partitionable=True`` and
:func:`envs.ops.uniforms`; ``tests/test_spaceship_env.py`` checks them against JAX for many seeds.
Threefry-2x32 with 20 rounds: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (2011).
"""

from __future__ import annotations

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def prng_key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` as raw data, (2,) uint32, with JAX's default 32-bit ints.

    JAX (``jax_enable_x64`` off) keeps the seed's low 32 bits: ``[0, seed mod 2**32]``.
    """
    return np.array([0, int(seed) & 0xFFFFFFFF], np.uint32)


def _rotate_left(x: np.ndarray, distance: int) -> np.ndarray:
    return (x << np.uint32(distance)) | (x >> np.uint32(32 - distance))


def threefry_2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 (20 rounds) of the counter pairs ``(x0, x1)``, uint32 arrays of one shape."""
    ks = (key[0], key[1], key[0] ^ key[1] ^ _PARITY)
    with np.errstate(over="ignore"):
        x0, x1 = x0 + ks[0], x1 + ks[1]
        for block in range(5):
            for distance in _ROTATIONS[block % 2]:
                x0 = x0 + x1
                x1 = _rotate_left(x1, distance) ^ x0
            x0 = x0 + ks[(block + 1) % 3]
            x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def split(key: np.ndarray, num: int = 2) -> np.ndarray:
    """``jax.random.split(key, num)`` on raw keys: (num, 2) uint32."""
    counts = np.arange(num, dtype=np.uint32)
    bits0, bits1 = threefry_2x32(np.asarray(key, np.uint32), np.zeros_like(counts), counts)
    return np.stack([bits0, bits1], axis=-1)


def uniforms(key: np.ndarray, count: int) -> np.ndarray:
    """:func:`envs.ops.uniforms` on the host: ``count`` U[0, 1) float32 draws, (count,)."""
    words = split(key, (count + 1) // 2).reshape(-1)[:count]
    mantissa = (words >> np.uint32(9)) | np.uint32(0x3F800000)
    return mantissa.view(np.float32) - np.float32(1.0)
