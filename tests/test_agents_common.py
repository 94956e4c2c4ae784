"""Returns, distributions, networks and evaluation of agents.common, against hand-worked values."""

from __future__ import annotations

import math

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.linen import initializers as nn_init

from agents.common.distributions import Categorical, Factorised, Gaussian, make_distribution
from agents.common.evaluate import evaluate_jax, random_policy, summarise_returns
from agents.common.losses import normalize
from agents.common.networks import make_network
from agents.common.returns import gae, nstep_returns
from agents.common.stats import mean_ci, t_quantile_975, wilson_ci
from tests.test_agents_toy_env import make_toy_env

# 3 steps x 2 envs, gamma = lambda = 0.5. Env 1 ends at t = 1.
REWARDS = jnp.array([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0]])
VALUES = jnp.array([[0.5, 1.0], [1.0, 0.0], [1.5, 2.0]])
DONES = jnp.array([[False, False], [False, True], [False, False]])
LAST_VALUE = jnp.array([2.0, 4.0])


def test_gae_hand_computed_3x2():
    # env 0: d2 = 3 + .5*2 - 1.5 = 2.5; d1 = 2 + .5*1.5 - 1 = 1.75; d0 = 1 + .5*1 - .5 = 1
    #        A2 = 2.5, A1 = 1.75 + .25*2.5 = 2.375, A0 = 1 + .25*2.375 = 1.59375
    # env 1: d2 = -1 + .5*4 - 2 = -1; d1 = 1 - 0 (done) = 1; d0 = 0 + .5*0 - 1 = -1
    #        A2 = -1, A1 = 1, A0 = -1 + .25*1 = -0.75
    advantages, returns = gae(REWARDS, VALUES, DONES, LAST_VALUE, gamma=0.5, gae_lambda=0.5)
    expected = np.array([[1.59375, -0.75], [2.375, 1.0], [2.5, -1.0]])
    np.testing.assert_allclose(advantages, expected, rtol=1e-6)
    np.testing.assert_allclose(returns, expected + np.asarray(VALUES), rtol=1e-6)


def test_nstep_returns_hand_computed_3x2():
    # env 0: R2 = 3 + .5*2 = 4, R1 = 2 + .5*4 = 4, R0 = 1 + .5*4 = 3
    # env 1: R2 = -1 + .5*4 = 1, R1 = 1 (done), R0 = 0 + .5*1 = 0.5
    returns = nstep_returns(REWARDS, DONES, LAST_VALUE, gamma=0.5)
    np.testing.assert_allclose(returns, [[3.0, 0.5], [4.0, 1.0], [4.0, 1.0]], rtol=1e-6)


def test_nstep_returns_equal_gae_lambda_one():
    keys = jax.random.split(jax.random.key(1), 4)
    rewards = jax.random.normal(keys[0], (7, 5))
    values = jax.random.normal(keys[1], (7, 5))
    dones = jax.random.bernoulli(keys[2], 0.3, (7, 5))
    last = jax.random.normal(keys[3], (5,))
    _, gae_returns = gae(rewards, values, dones, last, 0.9, 1.0)
    np.testing.assert_allclose(nstep_returns(rewards, dones, last, 0.9), gae_returns, atol=1e-5)


def test_advantage_normalisation_uses_the_unbiased_std_over_valid_samples_like_sb3():
    # Valid advantages 1, 2, 3: mean 2, unbiased std 1 (torch's std(), which SB3 divides by).
    advantage = jnp.array([1.0, 2.0, 3.0, 50.0])
    weight = jnp.array([1.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(normalize(advantage, weight)[:3], [-1.0, 0.0, 1.0], atol=1e-6)
    # One valid sample has no std: SB3 leaves such a batch as it is.
    np.testing.assert_allclose(normalize(advantage, jnp.array([0.0, 1.0, 0.0, 0.0])), advantage)


def test_categorical_log_prob_and_entropy():
    dist = make_distribution(gym.spaces.Discrete(3, start=2))
    logits = jnp.array([0.1, -1.0, 2.0])
    p = np.exp(logits) / np.exp(logits).sum()
    for a in range(3):
        np.testing.assert_allclose(dist.log_prob(logits, jnp.int32(a)), np.log(p[a]), rtol=1e-5)
    np.testing.assert_allclose(dist.entropy(logits), -(p * np.log(p)).sum(), rtol=1e-5)
    assert int(dist.mode(logits)) == 2 and int(dist.to_env(dist.mode(logits))) == 4


def test_gaussian_log_prob_entropy_and_clipping():
    dist = make_distribution(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    assert isinstance(dist, Gaussian) and dist.num_inputs == 4
    mean, log_std = np.array([0.3, -0.2]), np.array([-0.5, 0.4])
    inputs = jnp.asarray(np.concatenate([mean, log_std]), jnp.float32)
    x = np.array([0.9, -2.5])
    std = np.exp(log_std)
    expected = np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(dist.log_prob(inputs, jnp.asarray(x)), expected, rtol=1e-5)
    entropy = np.sum(0.5 * np.log(2 * np.pi * np.e * std**2))
    np.testing.assert_allclose(dist.entropy(inputs), entropy, rtol=1e-5)
    np.testing.assert_allclose(dist.to_env(jnp.asarray(x)), [0.9, -1.0])
    samples = jax.vmap(dist.sample, (None, 0))(inputs, jax.random.split(jax.random.key(0), 20000))
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(samples.std(0), std, rtol=0.03)


def test_squashed_gaussian_density_integrates_to_one_on_the_box():
    dist = make_distribution(gym.spaces.Box(-2.0, 3.0, (1,), np.float32), squash=True)
    inputs = jnp.array([0.4, -0.3])
    # Env actions a on a fine grid of (-2, 3); raw u = atanh(2 (a - low) / (high - low) - 1).
    a = np.linspace(-2.0, 3.0, 200001)[1:-1]
    u = np.arctanh(2.0 * (a + 2.0) / 5.0 - 1.0)
    density = np.exp(jax.vmap(dist.log_prob, (None, 0))(inputs, jnp.asarray(u[:, None])))
    assert abs(np.trapezoid(density, a) - 1.0) < 1e-3
    raw = jnp.array([50.0])
    assert -2.0 <= float(dist.to_env(raw)[0]) <= 3.0
    assert np.isfinite(float(dist.log_prob(inputs, raw)))
    with pytest.raises(ValueError, match="bounded"):
        make_distribution(gym.spaces.Box(-np.inf, np.inf, (1,)), squash=True)


def test_hybrid_dict_and_tuple_are_factorised():
    space = gym.spaces.Dict(
        {"fire": gym.spaces.Discrete(2), "angle": gym.spaces.Box(-np.pi, np.pi, (1,), np.float32)}
    )
    dist = make_distribution(space)
    assert isinstance(dist, Factorised) and dist.num_inputs == 2 + 2
    cat, gauss = Categorical(2), make_distribution(space["angle"])
    parts = dict(zip(dist.names, dist._inputs(jnp.arange(4.0) / 4), strict=True))
    action = {"fire": jnp.int32(1), "angle": jnp.array([0.5])}
    expected = cat.log_prob(parts["fire"], action["fire"]) + gauss.log_prob(
        parts["angle"], action["angle"]
    )
    np.testing.assert_allclose(dist.log_prob(jnp.arange(4.0) / 4, action), expected, rtol=1e-6)
    entropy = cat.entropy(parts["fire"]) + gauss.entropy(parts["angle"])
    np.testing.assert_allclose(dist.entropy(jnp.arange(4.0) / 4), entropy, rtol=1e-6)
    sample = dist.sample(jnp.zeros(4), jax.random.key(0))
    assert space.contains(jax.tree.map(np.asarray, dist.to_env(sample)))
    tup = make_distribution(gym.spaces.Tuple((gym.spaces.Discrete(3), space["angle"])))
    assert isinstance(tup.sample(jnp.zeros(5), jax.random.key(1)), tuple)
    with pytest.raises(ValueError, match="not supported"):
        make_distribution(gym.spaces.MultiBinary(3))


def test_networks_shapes_and_free_log_std():
    dist = make_distribution(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
    mlp = make_network(gym.spaces.Box(-1, 1, (5,)), dist.num_inputs, dist.free_mask, (16,))
    params = mlp.init(jax.random.key(0), jnp.zeros(5))
    inputs, value = mlp.apply(params, jnp.ones(5))
    assert inputs.shape == (4,) and value.shape == ()
    np.testing.assert_array_equal(inputs[2:], 0.0)  # log_std starts at 0, state-independent
    with pytest.raises(ValueError, match="observation_space"):
        make_network(gym.spaces.Discrete(3), 2, np.zeros(2, bool), (8,))


@pytest.mark.slow
def test_cnn_for_pixel_observations():
    cnn = make_network(gym.spaces.Box(0, 255, (36, 36, 3), np.uint8), 9, np.zeros(9, bool), ())
    image = jnp.zeros((36, 36, 3), jnp.uint8)
    params = jax.jit(cnn.init)(jax.random.key(0), image)
    inputs, value = jax.jit(cnn.apply)(params, image)
    assert inputs.shape == (9,) and value.shape == ()
    assert params["params"]["SmallCNN_0"]["Conv_0"]["kernel"].shape == (8, 8, 3, 32)


@pytest.mark.parametrize(
    ("shape", "size", "stride"), [((36, 36, 3), 8, 4), ((15, 11, 5), 4, 2), ((6, 7, 2), 3, 1)]
)
def test_patch_convolution_is_lax_conv_with_nn_conv_parameters(shape, size, stride):
    from agents.common.networks import PatchConv

    image = jax.random.normal(jax.random.key(1), shape)
    conv = PatchConv(6, size, stride, nn_init.normal(1.0))
    params = conv.init(jax.random.key(2), image)["params"]
    assert params["kernel"].shape == (size, size, shape[2], 6) and params["bias"].shape == (6,)
    params = {**params, "bias": jnp.arange(6.0)}
    expected = jax.lax.conv_general_dilated(
        image[None], params["kernel"], (stride, stride), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )[0] + jnp.arange(6.0)  # fmt: skip
    got = conv.apply({"params": params}, image)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_cnn_refuses_images_too_small_for_its_convolutions():
    cnn = make_network(gym.spaces.Box(0, 255, (32, 32, 3), np.uint8), 9, np.zeros(9, bool), ())
    with pytest.raises(ValueError, match="H, W >= 36 .* got shape \\(32, 32, 3\\)"):
        cnn.init(jax.random.key(0), jnp.zeros((32, 32, 3), jnp.uint8))


def test_confidence_interval_uses_student_t():
    assert abs(t_quantile_975(99) - 1.984217) < 1e-3 and t_quantile_975(4) == 2.776
    result = summarise_returns(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.ones(5), 0.1)
    half = 2.776 * np.std([1, 2, 3, 4, 5], ddof=1) / math.sqrt(5)
    assert result.mean == 3.0
    np.testing.assert_allclose([result.ci95_low, result.ci95_high], [3 - half, 3 + half])


def test_one_sample_has_no_interval_and_none_is_an_error():
    mean, low, high = mean_ci(np.array([4.0]))
    assert mean == 4.0 and math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError, match="non-empty"):
        mean_ci(np.array([]))
    with pytest.raises(ValueError, match="shape"):
        mean_ci(np.ones((2, 3)))


def test_wilson_interval_by_hand():
    # 2 of 8: centre (0.25 + z^2/16) / (1 + z^2/8), Wilson (1927), z = 1.96.
    rate, low, high = wilson_ci(2, 8)
    assert rate == 0.25
    np.testing.assert_allclose([low, high], [0.0715, 0.5907], atol=2e-4)
    assert wilson_ci(0, 10)[1] == 0.0 and wilson_ci(0, 10)[2] == pytest.approx(0.2775, 1e-3)
    assert wilson_ci(10, 10)[1] == pytest.approx(1 - 0.2775, 1e-3)
    with pytest.raises(ValueError, match="successes"):
        wilson_ci(3, 2)


def _counting_policy(carry, obs, state, key):
    # Right action while the carry (a step counter) is below 3, then wrong: the episode ends.
    del state, key
    right = jnp.int32(obs[0] > 0)
    return jnp.where(carry < 3, right, 1 - right), carry + 1


def test_evaluate_jax_exact_returns_with_carry_and_random_baseline():
    env = make_toy_env("discrete", max_steps=10)
    result = evaluate_jax(env, _counting_policy, 8, jax.random.key(0), init_carry=jnp.int32(0))
    np.testing.assert_array_equal(result.returns, 3.0)  # 3 right, then a terminating mistake
    np.testing.assert_array_equal(result.episode_lengths, 4)
    assert result.seconds_per_action > 0 and result.ci95_low == result.ci95_high == 3.0
    rand = evaluate_jax(env, random_policy(env.action_space), 400, jax.random.key(1))
    assert 0.7 < rand.mean < 1.3  # geometric: sum_k (1/2)^k = 1
    assert rand.ci95_low < rand.mean < rand.ci95_high
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_jax(env, _counting_policy, 0, jax.random.key(0), init_carry=jnp.int32(0))
