"""JAX's threefry PRNG keys, ``split`` and :func:`envs.ops.uniforms`, computed on the host.

A Gymnasium single env whose ``reset`` drew its start state with JAX would start JAX's thread
pool in the process; a worker process forked after that (Gymnasium's ``AsyncVectorEnv`` forks
by default on Linux) deadlocks at its first JAX computation. So the single env draws the very
same numbers here, with no JAX computation at all: env ``i`` of a JAX vector env reset with
seed ``s + i`` and a single env reset with seed ``s + i`` start from the same state.

The functions mirror, bit for bit, ``jax.random.PRNGKey`` (raw uint32 threefry keys),
``jax.random.split`` under the default ``jax_threefry_partitionable=True`` and
:func:`envs.ops.uniforms`; ``tests/test_host_random.py`` checks them against JAX for many seeds.
Threefry-2x32 with 20 rounds: Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (2011).
"""

from __future__ import annotations

import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA
_MASK = 0xFFFFFFFF


def prng_key(seed: int) -> np.ndarray:
    """``jax.random.PRNGKey(seed)`` as raw data, (2,) uint32, with JAX's default 32-bit ints.

    JAX (``jax_enable_x64`` off) keeps the seed's low 32 bits: ``[0, seed mod 2**32]``.
    """
    return np.array([0, int(seed) & 0xFFFFFFFF], np.uint32)


def threefry_2x32(key: np.ndarray, x0: list[int], x1: list[int]) -> tuple[list[int], list[int]]:
    """Threefry-2x32 (20 rounds) of the counter pairs ``(x0[i], x1[i])``, uint32 values as ints.

    Plain Python integers: for the handful of counters a reset needs, ~10x faster than NumPy
    arrays, whose per-operation overhead dominates at this size.
    """
    k0, k1 = int(key[0]), int(key[1])
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    out0, out1 = [], []
    for a, b in zip(x0, x1, strict=True):
        a, b = (a + ks[0]) & _MASK, (b + ks[1]) & _MASK
        for block in range(5):
            for distance in _ROTATIONS[block % 2]:
                a = (a + b) & _MASK
                b = (((b << distance) | (b >> (32 - distance))) & _MASK) ^ a
            a = (a + ks[(block + 1) % 3]) & _MASK
            b = (b + ks[(block + 2) % 3] + block + 1) & _MASK
        out0.append(a)
        out1.append(b)
    return out0, out1


def split(key: np.ndarray, num: int = 2) -> np.ndarray:
    """``jax.random.split(key, num)`` on raw keys: (num, 2) uint32."""
    bits0, bits1 = threefry_2x32(key, [0] * num, list(range(num)))
    return np.array([bits0, bits1], np.uint32).T.copy()


def uniforms(key: np.ndarray, count: int) -> np.ndarray:
    """:func:`envs.ops.uniforms` on the host: ``count`` U[0, 1) float32 draws, (count,)."""
    words = split(key, (count + 1) // 2).reshape(-1)[:count]
    mantissa = (words >> np.uint32(9)) | np.uint32(0x3F800000)
    return mantissa.view(np.float32) - np.float32(1.0)
