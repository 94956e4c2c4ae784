"""Overhang planners: partial-tower images, plan scores, CEM search, episode runner."""

import numpy as np
import pytest

from envs.towers import image, physics, planning, task
from envs.towers.env import BlockTowerEnv
from envs.towers.params import BLOCK_COLOURS, Params

PARAMS = Params(image_size=32)
CEM = planning.CEMConfig(samples=16, elites=4, iterations=3)


def test_prefix_images_show_only_the_lower_blocks():
    offsets = np.array([[0.1, 0.2, 0.1, 0.0], [0.0, -0.2, 0.3, 0.1]])
    images = planning.prefix_images(offsets, PARAMS)
    assert images.shape == (2, 4, 32, 32, 3) and images.dtype == np.uint8
    for k in range(4):
        for level in range(4):
            shown = np.all(images[0, k] == BLOCK_COLOURS[level], axis=-1).any()
            assert shown == (level <= k)


def test_scores_penalise_predicted_falls():
    offsets = np.array([[0.1, 0.1, 0.1, 0.1]])
    overhang = planning.plan_overhangs(offsets, PARAMS)
    assert overhang[0] == pytest.approx(0.4)  # -0.5 + 0.4 + 0.5
    stands = planning.score_plans(offsets, lambda im: np.zeros(len(im)), PARAMS, CEM)
    falls = planning.score_plans(offsets, lambda im: np.ones(len(im)), PARAMS, CEM)
    assert stands[0] == pytest.approx(0.4)
    assert falls[0] == pytest.approx(0.4 - CEM.infeasible_penalty * (1 - CEM.fall_threshold))


def test_cem_pushes_out_when_nothing_is_predicted_to_fall():
    rng = np.random.default_rng(0)
    plan = planning.cem_plan(lambda im: np.zeros(len(im)), PARAMS, CEM, rng)
    assert plan.shape == (4,) and np.all(np.abs(plan) <= PARAMS.max_offset)
    assert task.offsets_overhang(plan, PARAMS) > 1.5 * PARAMS.overhang_limit


def test_run_episode_analytic_and_collapsing_plans():
    env = BlockTowerEnv()
    good = planning.run_episode(env, planning.analytic_plan(env.params, safety=0.9))
    assert good["collapsed"] == 0.0 and good["fraction"] == pytest.approx(0.9, abs=0.03)
    bad = planning.run_episode(env, np.full(4, 0.9))
    assert bad == {"overhang": 0.0, "fraction": 0.0, "collapsed": 1.0, "return": -1.0}


def test_single_block_prefix_is_not_judged_by_default():
    def lone_blocks_fall(images):
        coloured = [np.all(images == c, axis=-1).any(axis=(1, 2)) for c in BLOCK_COLOURS[:4]]
        return (np.sum(coloured, axis=0) == 1).astype(float)

    offsets = np.array([[0.1, 0.1, 0.1, 0.1]])
    default = planning.score_plans(offsets, lone_blocks_fall, PARAMS, CEM)
    strict = planning.CEMConfig(min_checked_blocks=1)
    judged = planning.score_plans(offsets, lone_blocks_fall, PARAMS, strict)
    assert default[0] == pytest.approx(0.4)
    assert judged[0] < default[0] - 1.0


def test_judged_images_push_each_level_out_by_the_margin():
    offsets = np.array([[0.1, 0.2, 0.1, 0.3]])
    config = planning.CEMConfig(margin=0.25)
    images = planning.judged_images(offsets, PARAMS, config)
    assert images.shape == (1, 2 + 3 + 4, 32, 32, 3)
    j = 0
    for k in range(1, 4):
        for i in range(k + 1):
            shifted = offsets[:, : k + 1].copy()
            shifted[0, i] += 0.25
            expected = planning.prefix_images(shifted, PARAMS)[:, k]
            np.testing.assert_array_equal(images[:, j], expected)
            j += 1
    no_margin = planning.judged_images(offsets, PARAMS, planning.CEMConfig(margin=0.0))
    np.testing.assert_array_equal(no_margin[0], planning.prefix_images(offsets, PARAMS)[0, 1:])


def test_soft_images_approach_the_hard_ones():
    state = np.array([[-0.3, 0.5, 0.0], [0.05, 1.5, 0.0]])
    hard = image.render_state(state, PARAMS).astype(int)
    soft = image.render_state(state, PARAMS, softness=1e-4).astype(int)
    assert np.abs(hard - soft).max() <= 1  # same picture up to rounding
    blurred = image.render_state(state, PARAMS, softness=0.05).astype(int)
    differs = np.any(blurred != hard, axis=-1)
    assert 0 < differs.mean() < 0.2  # only pixels along edges change


def test_upright_masks_equal_block_masks_at_zero_angle():
    state = np.array([[[-0.3, 0.5, 0.0], [0.05, 1.5, 0.0]], [[0.2, 0.5, 0.0], [0.61, 1.5, 0.0]]])
    for softness in (0.0, 0.03):
        general = image.block_masks(state, PARAMS, softness=softness)
        fast = image.upright_masks(state[..., :2], PARAMS, softness=softness)
        np.testing.assert_allclose(fast, general, atol=1e-5)


@pytest.mark.parametrize("softness", [0.0, 0.04])
def test_judged_images_match_masked_compose_bit_for_bit(softness):
    rng = np.random.default_rng(3)
    offsets = rng.uniform(-0.6, 0.6, (5, 4))
    config = planning.CEMConfig(softness=softness)
    pushes, visible = planning.judged_layout(4, config.min_checked_blocks, config.margin)
    centres = physics.stacked_state(offsets[:, None] + config.margin * pushes, PARAMS)[..., :2]
    masks = image.upright_masks(centres, PARAMS, softness=softness) * visible[..., None, None]
    if softness > 0:
        reference = np.round(255.0 * image.compose(masks, PARAMS)).astype(np.uint8)
    else:
        reference = image.paint(masks > 0, PARAMS)
    np.testing.assert_array_equal(planning.judged_images(offsets, PARAMS, config), reference)
