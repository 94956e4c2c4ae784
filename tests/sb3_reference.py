"""For ``tests/test_reference_sb3.py``: scripted envs, one SB3 update, the same in worldplan.

Imported only after that test has checked that torch and stable-baselines3 are installed.
"""

from __future__ import annotations

import functools
import types
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.a2c.a2c import A2C, A2CConfig, a2c_loss
from agents.common.loop import Learner, flatten_rollout, learn
from agents.common.rollout import Transition
from agents.common.train import make_run_learner
from agents.ppo.ppo import PPO, PPOConfig, ppo_loss

torch = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")
sb3_buffers = pytest.importorskip("stable_baselines3.common.buffers")
sb3_callbacks = pytest.importorskip("stable_baselines3.common.callbacks")
sb3_logger = pytest.importorskip("stable_baselines3.common.logger")
sb3_vec_env = pytest.importorskip("stable_baselines3.common.vec_env")

T, B = 8, 4
"""Rollout length and number of envs."""
OBS_SIZE = 13
OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (OBS_SIZE,), np.float32)
ACTION_SPACES = {
    "box": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "discrete": gym.spaces.Discrete(3),
}
ENT_COEF = 0.01
"""Non-zero (SB3's default is 0) so that the entropy term is compared too."""
# (terminate_at, truncate_at) episode steps per env: env 0 never ends, env 1 terminates every 3
# steps, env 2 is truncated after 5, env 3 ends both ways at once (no bootstrap) every 4 steps,
# the second time on the rollout's last step.
SCRIPTS = ((None, None), (3, None), (None, 5), (4, 4))
# worldplan Dense layer -> SB3 module. Dense kernels are (in, out), torch weights (out, in).
LAYERS = {
    ("MLP_0", "Dense_0"): "mlp_extractor.policy_net.0",
    ("MLP_0", "Dense_1"): "mlp_extractor.policy_net.2",
    ("MLP_1", "Dense_0"): "mlp_extractor.value_net.0",
    ("MLP_1", "Dense_1"): "mlp_extractor.value_net.2",
    ("Dense_0",): "action_net",
    ("Dense_1",): "value_net",
}
A2C_LOSSES = {
    "policy_loss": "train/policy_loss",
    "value_loss": "train/value_loss",
    "entropy": "train/entropy_loss",
}
"""worldplan metric -> SB3 log entry."""
PPO_LOSSES = {
    "policy_loss": "train/policy_gradient_loss",
    "value_loss": "train/value_loss",
    "entropy": "train/entropy_loss",
    "clip_fraction": "train/clip_fraction",
}
A2C_DEFAULTS = """
    learning_rate n_steps gamma gae_lambda ent_coef vf_coef max_grad_norm use_rms_prop
    rms_prop_eps normalize_advantage
""".split()
"""``A2CConfig`` fields named and defaulted as SB3's ``A2C`` arguments."""
PPO_DEFAULTS = """
    learning_rate batch_size n_epochs gamma gae_lambda clip_range ent_coef vf_coef
    max_grad_norm normalize_advantage
""".split()
"""``PPOConfig`` fields named and defaulted as SB3's ``PPO`` arguments (not ``n_steps``)."""


class ScriptedEnv(gym.Env):
    """Observations and rewards are fixed functions of time; episodes end on a script."""

    observation_space = OBS_SPACE

    def __init__(self, action_space: gym.Space, index: int, script: tuple) -> None:
        self.action_space = action_space
        self.index = index
        self.terminate_at, self.truncate_at = script
        self.clock = 0
        self.t = 0
        self.log: list[tuple[float, bool, bool, np.ndarray]] = []
        """(reward, terminated, truncated, next obs) of every step."""

    def _obs(self) -> np.ndarray:
        phase = 0.37 * np.arange(OBS_SIZE) + 0.91 * self.clock + 1.7 * self.index
        return (np.sin(phase) * (1.0 + 0.1 * self.t)).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action: Any) -> tuple:
        self.t += 1
        self.clock += 1
        reward = float(np.cos(1.3 * self.clock + self.index))
        terminated = self.t == self.terminate_at
        truncated = self.t == self.truncate_at
        obs = self._obs()
        self.log.append((reward, terminated, truncated, obs))
        return obs, reward, terminated, truncated, {}


class Snapshot(sb3_callbacks.BaseCallback):
    """Copies SB3's rollout buffer before ``train()``; optionally shifts its behaviour log-probs."""

    def __init__(self, log_prob_shift: np.ndarray) -> None:
        super().__init__()
        self.log_prob_shift = log_prob_shift
        self.buffer: dict[str, np.ndarray] = {}

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        self.buffer = {
            name: getattr(buffer, name).copy()
            for name in ("observations", "actions", "values", "log_probs", "advantages", "returns")
        }
        # collect_rollouts hands its locals to the callback; new_obs is what it bootstrapped from.
        self.buffer["last_obs"] = self.locals["new_obs"].copy()
        # After the copy: train() sees shifted behaviour log-probs, and so will worldplan.
        buffer.log_probs += self.log_prob_shift


class Rollout(NamedTuple):
    """What SB3's envs and buffer recorded, arrays (T, B, ...), in worldplan's terms."""

    obs: np.ndarray
    """(T, B, OBS_SIZE) observations the actions were taken in."""
    action: np.ndarray
    """(T, B, 2) float Gaussian samples before clipping, or (T, B) int32 choices."""
    reward: np.ndarray
    """(T, B) env rewards (SB3's buffer holds them with the truncation bootstrap added)."""
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray
    """(T, B, OBS_SIZE) observation after each step, before any reset."""
    last_obs: np.ndarray
    """(B, OBS_SIZE) observations after the rollout."""
    log_prob_shift: np.ndarray
    """(T, B) added to the behaviour log-probabilities (PPO only)."""


def rollout_from_sb3(
    envs: list[ScriptedEnv], buffer: dict[str, np.ndarray], shift: np.ndarray
) -> Rollout:
    """The rollout SB3 collected; ends, rewards and final observations from the env logs."""
    action = buffer["actions"]
    if isinstance(envs[0].action_space, gym.spaces.Discrete):
        action = action[..., 0].astype(np.int32)  # SB3 stores them as (T, B, 1) floats
    # env.log[t] = (reward, terminated, truncated, next obs) of step t.
    steps = [[env.log[t] for env in envs] for t in range(T)]
    reward, terminated, truncated, final_obs = (
        np.array([[step[i] for step in row] for row in steps]) for i in range(4)
    )
    reward = reward.astype(np.float32)
    obs, last_obs = buffer["observations"], buffer["last_obs"]
    return Rollout(obs, action, reward, terminated, truncated, final_obs, last_obs, shift)


@functools.partial(jax.jit, static_argnums=(0, 1))
def worldplan_update(
    learner: Learner, loss_fn: Any, params: Any, rollout: Rollout
) -> dict[str, Any]:
    """worldplan's side: the rollout as ``rollout_step`` records it, GAE, gradients, one update."""
    apply = jax.vmap(learner.network.apply, in_axes=(None, 0))
    inputs, value = apply(params, rollout.obs.reshape(T * B, OBS_SIZE))
    raw = rollout.action.reshape(T * B, *rollout.action.shape[2:])
    log_prob = jax.vmap(learner.dist.log_prob)(inputs, raw).reshape(T, B)
    final_value = apply(params, rollout.final_obs.reshape(T * B, OBS_SIZE))[1].reshape(T, B)
    transitions = Transition(
        obs=rollout.obs,
        action=rollout.action,
        reward=rollout.reward,
        done=rollout.terminated | rollout.truncated,
        value=value.reshape(T, B),
        log_prob=log_prob + rollout.log_prob_shift,
        # As rollout.rollout_step: V(final_obs) where truncated and not terminated.
        bootstrap=jnp.where(rollout.truncated & ~rollout.terminated, final_value, 0.0),
        valid=jnp.ones((T, B)),
        finished_return=jnp.zeros((T, B)),
    )
    batch = flatten_rollout(learner, transitions, rollout.last_obs, params)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(params, learner, batch)
    opt_state = learner.optimizer.init(params)
    final, _, _ = learn(
        learner, params, opt_state, transitions, rollout.last_obs, jax.random.key(1)
    )
    return {
        "log_prob": log_prob,
        "value": transitions.value,
        "advantage": batch.advantage.reshape(T, B),
        "target": batch.target.reshape(T, B),
        "metrics": metrics,
        "grads": grads,
        "final": final,
    }


def to_worldplan(learner: Learner, torch_params: dict[str, np.ndarray]) -> Any:
    """SB3 ``MlpPolicy`` weights as a worldplan ``ActorCritic`` parameter pytree.

    worldplan's Gaussian head has ``2 * size`` outputs whose last ``size`` are replaced by the
    free ``log_std``; only its first ``size`` columns are SB3's ``action_net`` (the rest: zeros).
    """
    obs = jnp.zeros(OBS_SPACE.shape, OBS_SPACE.dtype)
    shapes = jax.eval_shape(learner.network.init, jax.random.key(0), obs)
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    tree = params["params"]
    for path, name in LAYERS.items():
        layer = functools.reduce(dict.__getitem__, path, tree)
        out = torch_params[f"{name}.weight"].shape[0]
        layer["kernel"][:, :out] = torch_params[f"{name}.weight"].T
        layer["bias"][:out] = torch_params[f"{name}.bias"]
    if "log_std" in torch_params:
        tree["log_std"][:] = torch_params["log_std"]
    return params


def from_worldplan(tree: Any, like: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The worldplan pytree ``tree`` (params or grads) as arrays named and shaped like ``like``."""
    tree = jax.tree.map(np.asarray, tree)["params"]
    out = {}
    for path, name in LAYERS.items():
        layer = functools.reduce(dict.__getitem__, path, tree)
        size = like[f"{name}.weight"].shape[0]
        out[f"{name}.weight"] = layer["kernel"][:, :size].T
        out[f"{name}.bias"] = layer["bias"][:size]
    if "log_std" in like:
        out["log_std"] = tree["log_std"]
    return out


def torch_params(model: Any) -> dict[str, np.ndarray]:
    """SB3's policy parameters as NumPy arrays, by name."""
    return {name: p.detach().numpy().copy() for name, p in model.policy.named_parameters()}


def _store(store: dict[str, np.ndarray], name: str, grad: Any) -> None:
    store[name] = grad.detach().numpy().copy()


class Run(NamedTuple):
    """One SB3 rollout and update, and worldplan's from the same weights and rollout."""

    sb3_buffer: dict[str, np.ndarray]
    """SB3's rollout buffer before ``train()``, arrays (T, B, ...)."""
    sb3_losses: dict[str, float]
    """What SB3's ``train()`` logged."""
    sb3_grads: dict[str, np.ndarray]
    """Gradients of SB3's loss before clipping, by SB3 parameter name."""
    sb3_initial: dict[str, np.ndarray]
    sb3_final: dict[str, np.ndarray]
    rollout: Rollout
    worldplan: dict[str, Any]
    """:func:`worldplan_update`'s outputs, grads and params renamed to SB3's names."""


@functools.cache
def run(algorithm: str, space: str, normalize_advantage: bool = False) -> Run:
    """One SB3 rollout and update (``A2C`` or ``PPO``, one full-batch epoch) and worldplan's."""
    action_space = ACTION_SPACES[space]
    envs = [ScriptedEnv(action_space, i, script) for i, script in enumerate(SCRIPTS)]
    vec_env = sb3_vec_env.DummyVecEnv([lambda env=env: env for env in envs])
    common = {"n_steps": T, "ent_coef": ENT_COEF, "normalize_advantage": normalize_advantage}
    if algorithm == "a2c":
        model = sb3.A2C("MlpPolicy", vec_env, seed=0, device="cpu", **common)
        config = A2CConfig(num_envs=B, **common)
        algo, loss_fn, shift = A2C, a2c_loss, np.zeros((T, B), np.float32)
    else:
        one_batch = {"batch_size": T * B, "n_epochs": 1}
        model = sb3.PPO("MlpPolicy", vec_env, seed=0, device="cpu", **common, **one_batch)
        config = PPOConfig(num_envs=B, **common, **one_batch)
        algo, loss_fn = PPO, ppo_loss
        # A behaviour policy other than the current one, so that the ratio clip is exercised.
        shift = np.random.default_rng(0).normal(0.0, 0.3, (T, B)).astype(np.float32)
    model.set_logger(sb3_logger.Logger(folder=None, output_formats=[]))
    initial = torch_params(model)
    sb3_grads: dict[str, np.ndarray] = {}
    for name, param in model.policy.named_parameters():
        # Called in backward() with the gradient of the loss, before clip_grad_norm_.
        param.register_hook(functools.partial(_store, sb3_grads, name))
    snapshot = Snapshot(shift)
    model.learn(T * B, callback=snapshot, log_interval=None)

    spaces = types.SimpleNamespace(observation_space=OBS_SPACE, action_space=action_space)
    learner = make_run_learner(algo, config, spaces)
    params = to_worldplan(learner, initial)
    rollout = rollout_from_sb3(envs, snapshot.buffer, shift)
    out = jax.device_get(worldplan_update(learner, loss_fn, params, rollout))
    out["grads"] = from_worldplan(out["grads"], initial)
    out["final"] = from_worldplan(out["final"], initial)
    sb3_losses = {k: float(v) for k, v in model.logger.name_to_value.items()}
    assert sb3_losses["train/n_updates"] == 1
    return Run(snapshot.buffer, sb3_losses, sb3_grads, initial, torch_params(model), rollout, out)
