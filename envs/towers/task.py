"""The overhang task: reward and termination, shared by the env and the planners.

Overhang is how far the tower reaches past the table edge (``x = 0``): the rightmost block corner,
floored at 0 [block widths]. With ``n`` equal blocks one per level its supremum is ``H_n / 2``
(the harmonic stack), so results are reported as a fraction of :func:`Params.overhang_limit`.
A collapsed tower scores 0 (:func:`tower_overhang`): its blocks lie wherever they fell, often
far past the edge on the floor, and that reach is no overhang.
"""

from __future__ import annotations

import numpy as np

from envs.towers import physics
from envs.towers.params import Params


def overhang(state: np.ndarray, params: Params) -> float:
    """Rightmost reach past the table edge of blocks ``state`` (k, >=3), floored at 0 [widths]."""
    state = np.asarray(state, dtype=np.float64).reshape(-1, physics.STATE_DIM)
    if state.shape[0] == 0:
        return 0.0
    angle = state[:, 2]
    reach = state[:, 0] + 0.5 * params.block_size * (np.abs(np.cos(angle)) + np.abs(np.sin(angle)))
    return float(max(0.0, reach.max()))


def tower_overhang(state: np.ndarray, fell: bool, params: Params) -> float:
    """The overhang a tower scores [block widths]: :func:`overhang` if it stands, 0 if it fell.

    A collapsed tower's blocks may have slid or dropped past the edge (a 6-block harmonic stack
    at safety 0.9 that topples reaches 2.58 widths, above ``H_6 / 2 = 1.23``), so measuring them
    would reward collapse and break the ``H_n / 2`` supremum. Scoring 0 keeps the reported mean
    overhang and the collapse rate separate measures, as :func:`envs.towers.planning.run_episode`
    reports them.

    Args:
        state: (k, 6) block states after the tower settled.
        fell: whether the tower collapsed (:func:`collapsed`).
        params: world constants.
    """
    return 0.0 if fell else overhang(state, params)


def offsets_overhang(offsets: np.ndarray, params: Params) -> float:
    """Overhang of the resting stack built from placement ``offsets`` (k,) [block widths]."""
    return overhang(physics.stacked_state(offsets, params), params)


def collapsed(intended: np.ndarray, settled: np.ndarray, params: Params) -> bool:
    """Whether any block moved more than ``fall_threshold`` from where it was put.

    Args:
        intended: (k, 6) states before the physics ran (the new block where it was placed).
        settled: (k, 6) states after the tower settled.
        params: world constants.
    """
    return bool(np.any(physics.displacement(intended, settled, params) > params.fall_threshold))


def reward(overhang_before: float, overhang_after: float, fell: bool, params: Params) -> float:
    """Gain in overhang [block widths] while the tower stands; ``-collapse_penalty`` if it fell."""
    return -params.collapse_penalty if fell else overhang_after - overhang_before


def terminated(n_placed: int, fell: bool, params: Params) -> bool:
    """The episode ends when the tower collapses or all ``n_blocks`` are placed."""
    return fell or n_placed >= params.n_blocks


def harmonic_offsets(n: int, safety: float = 1.0) -> np.ndarray:
    """Placement offsets of the harmonic stack of ``n`` blocks, shrunk by ``safety`` in (0, 1].

    Block ``i`` (bottom ``i = 0``) sits ``1 / (2 (n - i))`` widths right of the one below; the
    bottom block reaches ``1 / (2 n)`` past the edge. ``safety < 1`` keeps every centre of mass
    ``(1 - safety)`` of the way inside its support. Overhang: ``safety * H_n / 2``.
    """
    return safety / (2.0 * (n - np.arange(n)))
