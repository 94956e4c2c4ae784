"""The ``train(config, env, key)`` driver of A2C and PPO: device or host path, results folder.

A JAX env (``envs.jax_env.JaxEnv``) trains on the device path: chunks of ``updates_per_log``
updates run in one jitted ``lax.scan``. Any Gymnasium ``VectorEnv`` trains on the host path with
the same jitted update. With ``run_dir`` the run writes ``config.json``, ``metrics.csv``
(env_steps, wall_time, mean_return, losses), ``learning_curve.png`` and ``checkpoint.ckpt``
(``experiments.io.save_checkpoint``); ``resume=True`` continues from the checkpoint. The device
checkpoint holds the full training state (envs included), so a resumed run continues the very
same curve; the host path resets its envs on resume.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents.common import results
from agents.common.host import HostCarry, host_rollout, reset_host
from agents.common.loop import (
    Learner,
    TrainState,
    init_params,
    init_train_state,
    learn_from_rollout,
    make_learner,
    run_updates,
)
from agents.common.rollout import split_and_act, values


class Algorithm(NamedTuple):
    """What distinguishes one actor-critic algorithm from another."""

    name: str
    """Short name, used as checkpoint kind and results folder (``a2c``, ``ppo``)."""
    make_optimizer: Callable[[Any], optax.GradientTransformation]
    """``make_optimizer(config)``."""
    update: Callable
    """``update(learner, params, opt_state, batch, key) -> (params, opt_state, metrics)``."""


class TrainResult(NamedTuple):
    """What :func:`train` returns."""

    params: Any
    """Final network parameters (use with ``make_policy``)."""
    env_steps: int
    """Environment steps taken in total (resumed runs included)."""
    metrics: list[dict[str, float]]
    """One row per log interval: env_steps, wall_time [s], mean_return, losses."""
    run_dir: Path | None
    """The results folder, if one was written."""


def is_jax_env(env: Any) -> bool:
    """True for an ``envs.jax_env.JaxEnv``-like object (pure reset/step plus params)."""
    return all(hasattr(env, name) for name in ("reset", "step", "params")) and not isinstance(
        env, gym.vector.VectorEnv | gym.Env
    )


def to_raw_key(key: jax.Array) -> jax.Array:
    """Typed PRNG keys to raw uint32 keys, which checkpoints can store."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return jnp.asarray(key)


def make_run_learner(algorithm: Algorithm, config: Any, env: Any) -> Learner:
    """The learner for ``env``'s spaces (single-env spaces for a VectorEnv)."""
    obs_space = getattr(env, "single_observation_space", None) or env.observation_space
    action_space = getattr(env, "single_action_space", None) or env.action_space
    optimizer = algorithm.make_optimizer(config)
    return make_learner(config, obs_space, action_space, optimizer, algorithm.update)


# Compiled device runners, reused by later train() calls with the same algorithm, config (run
# length aside) and env object, e.g. when a run is resumed in the same process.
_RUNNERS: dict[tuple, tuple[Any, Learner, Callable]] = {}


class DevicePath:
    """Training on a JAX env: chunks of updates in one jitted ``lax.scan`` (see ``loop.py``)."""

    def __init__(self, learner: Learner, env: Any) -> None:
        key = (learner.update, results.fingerprint(learner.config), id(env))
        cached = _RUNNERS.get(key)
        if cached is None or cached[0] is not env:
            run = jax.jit(functools.partial(run_updates, learner, env), static_argnums=1)
            if len(_RUNNERS) >= 8:
                _RUNNERS.clear()
            _RUNNERS[key] = cached = (env, learner, run)
        self.env, self.learner, self._run = cached

    def init(self, key: jax.Array) -> TrainState:
        """Initial parameters, optimiser state and envs."""
        return init_train_state(self.learner, self.env, key)

    def checkpoint_tree(self, state: TrainState) -> Any:
        """Everything, envs included, so a resumed run continues exactly."""
        return state

    def from_checkpoint(self, state: TrainState, tree: Any) -> TrainState:
        """The state restored from a checkpoint tree."""
        return tree

    def run(self, state: TrainState, num_updates: int) -> tuple[TrainState, dict]:
        """``num_updates`` updates; metrics have a leading update axis."""
        return self._run(state, num_updates)


class HostState(NamedTuple):
    """Host-path training state (the envs live in the VectorEnv, outside this state)."""

    params: Any
    opt_state: Any
    env: HostCarry
    key: jax.Array
    env_steps: jax.Array


class HostPath:
    """Training on a Gymnasium VectorEnv stepped from Python, with the jitted shared update."""

    def __init__(self, learner: Learner, env: gym.vector.VectorEnv) -> None:
        if learner.config.num_envs != env.num_envs:
            raise ValueError(
                f"config.num_envs={learner.config.num_envs} but the vector env has "
                f"{env.num_envs} envs; make them equal"
            )
        self.learner, self.env = learner, env
        self._act = jax.jit(functools.partial(split_and_act, learner))
        self._values = jax.jit(functools.partial(values, learner.network))
        self._update = jax.jit(functools.partial(learn_from_rollout, learner))

    def init(self, key: jax.Array) -> HostState:
        """Initial state; splits ``key`` like the device path so the two can be compared."""
        # Same key use as loop.init_train_state, so that a deterministic env matches the device.
        # Raw keys: a typed key costs ~40 us more per jitted call on a CPU (one call per step).
        key, init_key, env_key = jax.random.split(to_raw_key(key), 3)
        params = init_params(self.learner, self.env.single_observation_space, init_key)
        env_key, _ = jax.random.split(env_key)
        seed = int(jax.random.randint(env_key, (), 0, 2**31 - 1))
        carry = reset_host(self.env, env_key, seed)
        opt_state = self.learner.optimizer.init(params)
        return HostState(params, opt_state, carry, key, jnp.zeros((), jnp.int32))

    def checkpoint_tree(self, state: HostState) -> Any:
        """Params, optimiser state, keys and step count (the envs restart on resume)."""
        return {"params": state.params, "opt_state": state.opt_state, "key": state.key,
                "env_key": state.env.key, "env_steps": state.env_steps}  # fmt: skip

    def from_checkpoint(self, state: HostState, tree: Any) -> HostState:
        """The state restored from a checkpoint tree, with freshly reset envs."""
        env_carry = state.env._replace(key=tree["env_key"])
        return HostState(tree["params"], tree["opt_state"], env_carry, tree["key"],
                          tree["env_steps"])  # fmt: skip

    def run(self, state: HostState, num_updates: int) -> tuple[HostState, dict]:
        """``num_updates`` host rollouts and jitted updates; metrics are NumPy, (num_updates,)."""
        rows = []
        for _ in range(num_updates):
            carry, transitions = host_rollout(
                self.env, self._act, self._values, state.params, state.env,
                self.learner.config.n_steps,
            )  # fmt: skip
            # The NumPy rollout goes straight into the one jitted call (no jnp.asarray per leaf).
            state, metrics = self._update(state._replace(env=None), transitions, carry.obs)
            state = state._replace(env=carry)
            rows.append(metrics)
        rows = jax.device_get(rows)  # one transfer per chunk, not one per update
        return state, jax.tree.map(lambda *xs: np.stack(xs), *rows)


def summarise(metrics: Mapping[str, jax.Array]) -> dict[str, float]:
    """One metric row from a chunk of updates: mean return of finished episodes, mean losses."""
    m = {k: np.asarray(v) for k, v in metrics.items()}
    episodes = float(m.pop("episodes").sum())
    return_sum = float(m.pop("return_sum").sum())
    row = {"mean_return": return_sum / episodes if episodes else math.nan, "episodes": episodes}
    row.update({k: float(v.mean()) for k, v in sorted(m.items())})
    return row


def check_finite(params: Any, row: Mapping[str, float], run_dir: Path | None) -> None:
    """Stops a diverged run before its NaN parameters are written over the last checkpoint.

    Args:
        params: network parameters after a chunk of updates.
        row: the chunk's metric row (``mean_return`` may be NaN: no episode ended).
        run_dir: the results folder, named in the error.

    Raises:
        FloatingPointError: a parameter or a loss is NaN or infinite.
    """
    bad_losses = [k for k, v in row.items() if k != "mean_return" and not math.isfinite(v)]
    bad_params = not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(params))
    if not (bad_losses or bad_params):
        return
    what = "the parameters" if bad_params else "the losses"
    kept = f"; {run_dir / results.CHECKPOINT} still holds the last finite state" if run_dir else ""
    raise FloatingPointError(
        f"training diverged by env step {int(row['env_steps'])}: {what} became NaN or infinite "
        f"(non-finite metrics: {bad_losses or 'none'}). Check the env's observations and rewards "
        f"for NaN or inf, or lower the learning rate{kept}"
    )


def train(
    algorithm: Algorithm,
    config: Any,
    env: Any,
    key: jax.Array,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    extra_config: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Trains an actor-critic; see the module docstring. ``a2c.train``/``ppo.train`` wrap this.

    Args:
        algorithm: the algorithm (:data:`agents.a2c.A2C`, :data:`agents.ppo.PPO`).
        config: its config.
        env: an ``envs.jax_env.JaxEnv`` (device path) or a Gymnasium ``VectorEnv`` (host path)
            with ``config.num_envs`` envs.
        key: PRNG key.
        run_dir: results folder to write, or None to write nothing.
        resume: continue from ``run_dir/checkpoint.ckpt``.
        progress: show a progress bar (tqdm if installed, else one line per log interval).
        extra_config: more entries for ``config.json`` (e.g. the seed). The env's spaces,
            and for a VectorEnv with a registered spec its id and ``gymnasium.make`` kwargs, are
            recorded without it (:func:`agents.common.results.env_entries`); a JaxEnv has no
            id, so pass ``{"env": id}`` (and ``"env_kwargs"``) to reload its policy without
            naming the env (:func:`agents.common.policy.load_policy`). Entries given here win.

    Raises:
        FloatingPointError: the parameters or losses became NaN or infinite (nothing is written
            over the last checkpoint).
        experiments.io.CheckpointError: resuming from a missing checkpoint, or one written with
            another config or algorithm.
        experiments.io.RunFolderError: ``run_dir`` holds a run's checkpoint and ``resume`` is
            off (nothing is overwritten).
    """
    if not (is_jax_env(env) or isinstance(env, gym.vector.VectorEnv)):
        raise TypeError(f"env must be a JaxEnv or a gymnasium VectorEnv, got {type(env).__name__}")
    learner = make_run_learner(algorithm, config, env)
    path = DevicePath(learner, env) if is_jax_env(env) else HostPath(learner, env)
    state = path.init(to_raw_key(key))
    extra = {**results.env_entries(env), **(extra_config or {})}
    run_log = results.RunLog(algorithm.name, config, run_dir, "device" if is_jax_env(env)
                             else "host", extra, resume)  # fmt: skip
    if resume:
        tree = run_log.load(path.checkpoint_tree(state))
        state = path.from_checkpoint(state, tree)
    start = time.perf_counter() - run_log.wall_time_offset

    def record(state: Any, metrics: Mapping[str, Any]) -> dict[str, float]:
        row = {"env_steps": int(state.env_steps), "wall_time": time.perf_counter() - start}
        row.update(summarise(metrics))
        check_finite(state.params, row, run_log.run_dir)
        run_log.append(row, path.checkpoint_tree(state), state.params)
        return row

    state = run_chunks(path, state, config, record, progress)
    run_log.finish()
    return TrainResult(state.params, int(state.env_steps), run_log.rows, run_log.run_dir)


def run_chunks(
    path: Any,
    state: Any,
    config: Any,
    record: Callable[[Any, Mapping[str, Any]], Mapping[str, float]],
    progress: bool,
) -> Any:
    """The training loop of every path: chunks of ``updates_per_log`` updates until the end.

    Args:
        path: has ``run(state, num_updates) -> (state, metrics)``.
        state: the training state (``env_steps``: () or, for several seeds, (K,) equal counts).
        config: the algorithm config (run length, log interval).
        record: called after every chunk with the new state and the chunk's metrics; writes
            what the run keeps and returns the row the progress bar shows.
        progress: show a progress bar.

    Returns:
        The final state.
    """
    steps = int(np.max(state.env_steps))
    done_updates = steps // config.steps_per_update
    bar = results.Progress(config.num_updates * config.steps_per_update, steps, enabled=progress)
    while done_updates < config.num_updates:
        chunk = min(config.updates_per_log, config.num_updates - done_updates)
        state, metrics = path.run(state, chunk)
        jax.block_until_ready(state.params)
        done_updates += chunk
        bar.update(record(state, metrics))
    bar.close()
    return state
