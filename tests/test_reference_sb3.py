"""worldplan's A2C and PPO against Stable-Baselines3's, the implementation the names refer to.

Each comparison starts from the same weights and the same rollout. SB3 collects the rollout
itself (``model.learn`` for exactly one rollout and one ``train()``) in four scripted envs whose
observations and rewards are fixed functions of time and whose episodes end by termination, by
truncation (bootstrapped with ``gamma * V(final_obs)``), by both at once, and on the rollout's
last step. A callback copies SB3's ``RolloutBuffer`` before ``train()``; worldplan gets the same
observations, raw actions, rewards and ends as a ``Transition`` and SB3's initial ``MlpPolicy``
weights copied into its parameter pytree (the layouts are the same: separate (64, 64) tanh
policy and value MLPs, an action head, a value head and a free ``log_std``). Then values,
log-probabilities, advantages and value targets, the losses, the gradients of the loss (before
clipping, taken with torch hooks) and the parameter steps of the update must agree.

The spaces are those of ``worldplan/Spaceship-v0`` (13 floats; ``Box(2)`` in [-1, 1]) and a
``Discrete(3)``. PPO runs one epoch of one full-batch minibatch: SB3 and worldplan shuffle
minibatches with different generators, so only then do both see the same samples per step.

This test found that worldplan standardised advantages with the population standard deviation
where SB3 uses torch's unbiased one (a policy gradient sqrt(32/31) = 1.016 times SB3's at N = 32);
``agents.common.losses.normalize`` now divides by N - 1 as SB3 does.

Skipped where torch or stable-baselines3 is not installed (the CI environment has neither).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

from agents.a2c.a2c import A2CConfig
from agents.common.returns import gae, nstep_returns
from agents.ppo.ppo import PPOConfig

torch = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")
sb3_buffers = pytest.importorskip("stable_baselines3.common.buffers")
sb3_vec_env = pytest.importorskip("stable_baselines3.common.vec_env")

from tests.sb3_reference import (  # noqa: E402  (only once torch and SB3 are there)
    A2C_DEFAULTS,
    A2C_LOSSES,
    ACTION_SPACES,
    OBS_SIZE,
    OBS_SPACE,
    PPO_DEFAULTS,
    PPO_LOSSES,
    Run,
    ScriptedEnv,
    run,
)


def check_rollout(result: Run) -> None:
    """Same values and log-probs from the copied weights; same advantages and value targets."""
    buffer, out, rollout = result.sb3_buffer, result.worldplan, result.rollout
    assert (rollout.truncated & ~rollout.terminated).any()  # a bootstrapped truncation
    assert rollout.terminated[-1].any()  # an episode that ends on the rollout's last step
    np.testing.assert_allclose(out["value"], buffer["values"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["log_prob"], buffer["log_probs"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["advantage"], buffer["advantages"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["target"], buffer["returns"], rtol=1e-5, atol=1e-6)


def check_losses(result: Run, names: dict[str, str]) -> None:
    """worldplan metric -> SB3 log entry; SB3 logs ``entropy_loss`` = -entropy."""
    for ours, theirs in names.items():
        sign = -1.0 if theirs == "train/entropy_loss" else 1.0
        expected = sign * result.sb3_losses[theirs]
        actual = result.worldplan["metrics"][ours]
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-7, err_msg=ours)


def check_update(result: Run) -> None:
    """Loss gradients and parameter steps of every parameter match SB3's.

    Both are compared relative to the largest entry of each array: 1e-4 for gradients, 1e-3 for
    steps (an RMSprop or Adam first step is about ``lr * sign(g)``, so it hides gradient errors
    and shows optimiser ones).
    """
    names = list(result.sb3_grads)
    assert names
    for name in names:
        grad, sb3_grad = result.worldplan["grads"][name], result.sb3_grads[name]
        scale = np.abs(sb3_grad).max()
        np.testing.assert_allclose(grad, sb3_grad, rtol=0, atol=1e-4 * scale, err_msg=name)
        step = result.worldplan["final"][name] - result.sb3_initial[name]
        sb3_step = result.sb3_final[name] - result.sb3_initial[name]
        scale = np.abs(sb3_step).max()
        assert scale > 0, name
        np.testing.assert_allclose(step, sb3_step, rtol=0, atol=1e-3 * scale, err_msg=name)


@pytest.mark.parametrize("gae_lambda", [1.0, 0.95])
def test_gae_matches_sb3_rollout_buffer(gae_lambda):
    steps, envs = 6, 3
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(steps, envs)).astype(np.float32)
    values = rng.normal(size=(steps, envs)).astype(np.float32)
    last_value = rng.normal(size=envs).astype(np.float32)
    dones = np.zeros((steps, envs), bool)
    dones[1, 0] = dones[3, 0] = dones[2, 1] = dones[-1, 1] = True  # env 2 never ends
    space = ACTION_SPACES["discrete"]
    buffer = sb3_buffers.RolloutBuffer(
        steps, OBS_SPACE, space, device="cpu", gae_lambda=gae_lambda, gamma=0.99, n_envs=envs
    )
    # SB3 records episode *starts*: step t starts an episode when step t - 1 ended one.
    episode_starts = np.concatenate([np.ones((1, envs)), dones[:-1]]).astype(np.float32)
    obs, action, log_prob = np.zeros((envs, OBS_SIZE)), np.zeros((envs, 1)), torch.zeros(envs)
    for t in range(steps):
        value = torch.as_tensor(values[t])
        buffer.add(obs, action, rewards[t], episode_starts[t], value, log_prob)
    buffer.compute_returns_and_advantage(torch.as_tensor(last_value), dones[-1])

    advantages, returns = gae(rewards, values, dones, last_value, 0.99, gae_lambda)

    np.testing.assert_allclose(advantages, buffer.advantages, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(returns, buffer.returns, rtol=1e-5, atol=1e-6)
    if gae_lambda == 1.0:
        returns = nstep_returns(rewards, dones, last_value, 0.99)
        np.testing.assert_allclose(returns, buffer.returns, rtol=1e-5, atol=1e-6)


def sb3_defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of an SB3 algorithm's constructor."""
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}


def test_a2c_config_defaults_are_sb3s():
    config, defaults = A2CConfig(), sb3_defaults(sb3.A2C)
    for name in A2C_DEFAULTS:
        assert getattr(config, name) == defaults[name], name
    vec_env = sb3_vec_env.DummyVecEnv([lambda: ScriptedEnv(ACTION_SPACES["box"], 0, (None, None))])
    optimizer = sb3.A2C("MlpPolicy", vec_env, device="cpu").policy.optimizer
    assert isinstance(optimizer, torch.optim.RMSprop)
    assert optimizer.defaults["alpha"] == config.rms_prop_alpha
    assert optimizer.defaults["eps"] == config.rms_prop_eps


def test_ppo_config_defaults_are_sb3s_except_n_steps():
    config, defaults = PPOConfig(), sb3_defaults(sb3.PPO)
    for name in PPO_DEFAULTS:
        assert getattr(config, name) == defaults[name], name
    assert defaults["clip_range_vf"] is None and defaults["target_kl"] is None
    assert (config.n_steps, defaults["n_steps"]) == (128, 2048)  # on purpose: see agents.ppo
    vec_env = sb3_vec_env.DummyVecEnv([lambda: ScriptedEnv(ACTION_SPACES["box"], 0, (None, None))])
    optimizer = sb3.PPO("MlpPolicy", vec_env, device="cpu").policy.optimizer
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.defaults["eps"] == config.adam_eps


@pytest.mark.parametrize("space", ["box", "discrete"])
def test_a2c_update_matches_sb3(space):
    result = run("a2c", space)
    check_rollout(result)
    check_losses(result, A2C_LOSSES)
    check_update(result)


def test_ppo_update_matches_sb3_without_advantage_normalisation():
    result = run("ppo", "box", normalize_advantage=False)
    check_rollout(result)
    assert 0.2 < result.sb3_losses["train/clip_fraction"] < 0.8  # the clip is exercised
    check_losses(result, PPO_LOSSES)
    check_update(result)


def test_ppo_normalised_update_matches_sb3():
    result = run("ppo", "discrete", normalize_advantage=True)
    check_rollout(result)
    check_losses(result, PPO_LOSSES)
    check_update(result)
