"""Tower statics: hand-worked stands/falls cases, margins, and analytic vs simulated labels."""

import numpy as np
import pytest

from envs.towers import physics, task
from envs.towers.dataset import DatasetConfig, sample_offsets, simulate_tower
from envs.towers.params import Params

PARAMS = Params()


def settle_offsets(offsets):
    state = physics.stacked_state(offsets, PARAMS)
    space = physics.build_space(PARAMS)
    physics.set_state(space, state, PARAMS)
    physics.simulate(space, PARAMS, 2.0)
    return physics.displacement(state, physics.get_state(space), PARAMS)


@pytest.mark.parametrize(
    ("offsets", "stands"),
    [
        ([0.3], True),  # centre at x = -0.2: 0.2 inside the table edge
        ([0.7], False),  # centre at x = +0.2: 0.2 past the edge
        ([0.0, 0.3], True),  # top centre 0.3 right of the lower block's, inside its face
        ([0.0, 0.7], False),  # top centre 0.2 past the lower block's right side
        # The lower block alone would fall (centre 0.1 past the edge); the top one brings the
        # common CoM back to -0.1, over the table.
        ([0.6, -0.4], True),
    ],
)
def test_hand_worked_stability(offsets, stands):
    moved = settle_offsets(offsets)
    if stands:
        assert moved.max() < 0.02
    else:
        assert moved.max() > 0.5
    assert (
        physics.stability_margins(physics.stacked_state(offsets, PARAMS)[:, 0], PARAMS).min() > 0
    ) == stands


def test_stability_margins_by_hand():
    # One block at x = -0.3 spans [-0.8, 0.2]; contact with the table is [-0.8, 0]; CoM -0.3.
    np.testing.assert_allclose(physics.stability_margins(np.array([-0.3]), PARAMS), [0.3])
    # Blocks at -0.5 and -0.2: level 1 contact [-0.7, 0.0], CoM -0.2 -> 0.2 to the right end.
    # Level 0: contact with table [-1.0, 0.0], CoM of both -0.35 -> 0.35.
    np.testing.assert_allclose(
        physics.stability_margins(np.array([-0.5, -0.2]), PARAMS), [0.35, 0.2]
    )
    batched = physics.stability_margins(np.array([[-0.5, -0.2], [0.0, 0.0]]), PARAMS)
    np.testing.assert_allclose(batched, [[0.35, 0.2], [0.0, 0.5]])


def test_harmonic_stack_margins_are_zero_and_limit_reached():
    for n in (1, 2, 3, 4):
        offsets = task.harmonic_offsets(n)
        x = physics.stacked_state(offsets, PARAMS)[:, 0]
        np.testing.assert_allclose(physics.stability_margins(x, PARAMS), 0.0, atol=1e-12)
        assert task.offsets_overhang(offsets, PARAMS) == pytest.approx(
            Params(n_blocks=n).overhang_limit
        )


def test_analytic_check_agrees_with_simulation_far_from_the_boundary():
    config = DatasetConfig()
    rng = np.random.default_rng(0)
    checked = 0
    for n in (2, 3, 4):
        offsets = sample_offsets(rng, (60, n), config)
        x = np.cumsum(offsets, axis=1) - 0.5
        margins = physics.stability_margins(x, PARAMS).min(axis=1)
        for plan, margin in zip(offsets, margins, strict=True):
            if abs(margin) < 0.1:
                continue
            assert simulate_tower(plan, config)["fell"] == (margin < 0), (plan, margin)
            checked += 1
    assert checked > 100


def test_overhang_of_rotated_block_uses_its_corner():
    state = np.zeros((1, 6))
    state[0, 2] = np.pi / 4
    assert task.overhang(state, PARAMS) == pytest.approx(np.sqrt(2) / 2)
    assert task.overhang(np.zeros((0, 6)), PARAMS) == 0.0
