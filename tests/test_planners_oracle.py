"""GBP through the spaceship's true dynamics, and DISTGBP's imitation loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.common.evaluate import evaluate_jax
from envs.jax_env import make_jax_env
from envs.spaceship import core
from planners import distill, gbp, oracle, relax
from world_models import data as data_lib
from world_models import trainer


@pytest.mark.parametrize("mode", ["continuous", "discrete", "hybrid"])
def test_relaxed_vertices_give_the_env_thrust(mode):
    env = make_jax_env("worldplan/Spaceship-v0", action_mode=mode)
    rl = relax.for_action_mode(mode)
    for seed in range(5):
        action = rl.random(jax.random.key(seed))
        expected = core.action_to_thrust(action, env.params)
        np.testing.assert_allclose(
            oracle.vector_to_thrust(rl.encode(action), env.params), expected, atol=1e-6
        )


def test_gbp_with_true_dynamics_beats_random_by_wide_margin():
    env = make_jax_env("worldplan/Spaceship-v0", action_mode="continuous")
    rl = relax.Continuous(2)
    config = gbp.GBPConfig(horizon=8, n_iterations=6, n_restarts=2, learning_rate=0.2)
    policy = gbp.make_policy(
        config, rl, oracle.model_step, env.params, use_env_state=True, done_fn=oracle.done_fn
    )
    key = jax.random.key(0)
    planned = evaluate_jax(env, policy, 8, key, max_steps=80, init_carry=gbp.init_plan(config, rl))
    random = evaluate_jax(env, data_lib.random_policy(rl), 8, key, max_steps=80)
    assert planned.mean > random.mean + 30.0, (planned.mean, random.mean)


def test_distilled_policy_learns_discrete_labels():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(4, 5))
    obs = rng.normal(size=(1024, 4)).astype(np.float32)
    targets = np.eye(5, dtype=np.float32)[np.argmax(obs @ weights, axis=1)]
    student = distill.DistilledPolicy(relax.Discrete(5), 4, (32,))
    params = student.init(jax.random.key(0), obs)
    data = distill.Labelled(jnp.asarray(obs), jnp.asarray(targets))
    config = trainer.TrainerConfig(learning_rate=3e-3, batch_size=64, max_epochs=20, patience=5)
    fit = trainer.fit(student.loss, params, data, config, log=None)
    actions = np.asarray(jax.vmap(student.act, in_axes=(None, 0))(fit.params, obs[:500]))
    assert np.mean(actions == np.argmax(targets[:500], axis=1)) > 0.9
