"""Pure functional core of the spaceship task: reset, actions, step and observation.

Every function is pure and written for ONE environment; batch with ``jax.vmap`` and ``jax.jit`` at
the outermost call. ``observe``, ``transition``, ``dynamics.dynamics`` and ``task.reward`` are also
differentiable (``jax.grad`` through a ``lax.scan`` of ``transition`` is how gradient-based planning
works).

The deterministic functions (everything but :func:`reset`) are written with ``envs.ops``: given
NumPy leaves they run on host float32 scalars, given JAX arrays or tracers in JAX; the start state
(:func:`initial_state`) is written for NumPy or ``jax.numpy`` arrays of draws. The Gymnasium
single env uses the host path, because one JAX dispatch costs ~30-40 us on a CPU, which alone
would cap a one-env-at-a-time loop (Stable-Baselines3 style) near 25K steps/s. It is the same code,
not a copy; ``tests/test_spaceship_core.py`` checks both paths against an independent reference.

The physics (gravity and the semi-implicit Euler integrator of :func:`dynamics`) live in
:mod:`envs.spaceship.dynamics`; this module adds the actions, the task and the observation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs.action_checks import check_action_form
from envs.ops import ops_for, uniforms
from envs.spaceship import task
from envs.spaceship.dynamics import EPS, dynamics
from envs.spaceship.params import SpaceshipParams

OBS_DIM = 13
"""Length of the state observation vector (see :func:`observe`)."""


@struct.dataclass
class SpaceshipState:
    """State of one spaceship episode (all float32 except the two int32 counters)."""

    position: Any
    """(2,) ship position [m], world frame, y up."""
    velocity: Any
    """(2,) ship velocity [m/s]."""
    planet_position: Any
    """(2,) planet centre [m]."""
    planet_radius: Any
    """() planet radius [m]."""
    surface_gravity: Any
    """() gravity at the planet's surface [m/s^2]."""
    targets: Any
    """(num_targets, 2) target positions [m], visited in order."""
    target_index: Any
    """() int32 index of the current target; equals num_targets once all are visited."""
    time: Any
    """() int32 steps taken this episode."""
    thrust: Any
    """(2,) last thrust command u, |u| <= 1 [-] (drawn as the flame)."""


STATE_SHAPES = {
    "position": (2,),
    "velocity": (2,),
    "planet_position": (2,),
    "planet_radius": (),
    "surface_gravity": (),
    "targets": None,  # (num_targets, 2), checked against params
    "target_index": (),
    "time": (),
    "thrust": (2,),
}


def reset(key: jax.Array, params: SpaceshipParams) -> tuple[jax.Array, SpaceshipState]:
    """Draws a new episode.

    Args:
        key: PRNG key.
        params: task parameters (ranges documented there).

    Returns:
        ``(obs, state)``: obs (OBS_DIM,) float32 and the initial state.
    """
    # One draw for every random quantity: it compiles and runs much faster than one per quantity
    # (resets run once per env per step in autoreset loops).
    return initial_state(uniforms(key, reset_draws(params)), params)


def reset_draws(params: SpaceshipParams) -> int:
    """Number of U[0, 1) draws that :func:`initial_state` turns into a start state."""
    return 8 + 2 * params.num_targets


def initial_state(u: Any, params: SpaceshipParams) -> tuple[Any, SpaceshipState]:
    """The start state that the draws ``u`` select: ``(obs, state)`` as :func:`reset`.

    Args:
        u: (:func:`reset_draws`,) independent U[0, 1) float32 draws: a NumPy array (the
            Gymnasium single env draws them on the host, ``envs.host_random``, and gets NumPy
            leaves) or a JAX array.
        params: task parameters (ranges documented there).
    """
    xp = np if isinstance(u, np.ndarray) else jnp
    u = u.astype(xp.float32)

    def between(x: Any, bounds: tuple[float, float]) -> Any:
        return xp.float32(bounds[0]) + x * xp.float32(bounds[1] - bounds[0])

    offset = params.planet_offset
    planet_position = between(u[0:2], (-offset, offset))
    radius = between(u[2], params.planet_radius_range)
    gravity = between(u[3], params.surface_gravity_range)
    distance = radius + between(u[4], params.start_altitude_range)
    bearing = between(u[5], (-np.pi, np.pi))
    outward = xp.stack([xp.cos(bearing), xp.sin(bearing)])
    # Circular orbit speed sqrt(mu / r), prograde or retrograde at random, with relative noise.
    circular_speed = xp.sqrt(gravity * radius**2 / distance)
    spin = xp.where(u[6] < 0.5, xp.float32(1.0), xp.float32(-1.0))
    noise = between(u[7], (-params.start_speed_noise, params.start_speed_noise))
    tangent = spin * xp.stack([-outward[1], outward[0]])
    k = params.num_targets
    t_alt = between(u[8 : 8 + k], params.target_altitude_range)
    t_bearing = between(u[8 + k : 8 + 2 * k], (-np.pi, np.pi))
    t_dir = xp.stack([xp.cos(t_bearing), xp.sin(t_bearing)], axis=-1)
    targets = planet_position + (radius + t_alt)[:, None] * t_dir
    state = SpaceshipState(
        position=planet_position + distance * outward,
        velocity=circular_speed * (xp.float32(1.0) + noise) * tangent,
        planet_position=planet_position,
        planet_radius=radius,
        surface_gravity=gravity,
        targets=targets,
        target_index=xp.zeros((), xp.int32),
        time=xp.zeros((), xp.int32),
        thrust=xp.zeros((2,), xp.float32),
    )
    return observe(state, params), state


def action_to_thrust(action: Any, params: SpaceshipParams) -> Any:
    """Maps an action of ``params.action_mode`` to a thrust command u, (2,), |u| <= 1.

    continuous: (2,) in [-1, 1]^2, clipped to the box, then scaled down to |u| <= 1.
    discrete: int in [0, 9): 0 is no thrust, k >= 1 full thrust at angle (k - 1) * 45 degrees.
    hybrid: {"fire": int in {0, 1}, "angle": (1,) radians}: u = fire * (cos angle, sin angle).

    Raises:
        ValueError: an action of the wrong shape or dtype for the mode, at trace time
            (:func:`envs.action_checks.check_action_form`; values are not checked).
    """
    check_action_form(action, params)
    if params.action_mode == "continuous":
        ops = ops_for(action)
        ax, ay = ops.xy(action)
        ux, uy = ops.clip(ax, -1.0, 1.0), ops.clip(ay, -1.0, 1.0)
        scale = ops.maximum(ops.sqrt(ux * ux + uy * uy + EPS), 1.0)
        return ops.stack([ux / scale, uy / scale])
    if params.action_mode == "discrete":
        ops = ops_for(action)
        angle = ops.f32(action - 1) * (ops.pi / 4)
        on = ops.f32(action > 0)
        return ops.stack([on * ops.cos(angle), on * ops.sin(angle)])
    if params.action_mode == "hybrid":
        ops = ops_for(action["angle"])
        fire, angle = ops.f32(action["fire"]), ops.scalar(action["angle"][0])
        return ops.stack([fire * ops.cos(angle), fire * ops.sin(angle)])
    raise ValueError(f"unknown action_mode {params.action_mode!r}")


def transition(
    state: SpaceshipState, thrust: Any, params: SpaceshipParams
) -> tuple[SpaceshipState, Any, Any]:
    """One full step from a thrust command: physics, reward, target bookkeeping, termination.

    This is the differentiable ``model_step`` that planners use as the true dynamics.

    Returns:
        ``(next_state, reward, terminated)`` with reward () float32 and terminated () bool.
    """
    result = task.outcome(state, thrust, dynamics(state, thrust, params), params)
    return result.next_state, result.reward, result.terminated


def step(
    key: jax.Array | None, state: SpaceshipState, action: Any, params: SpaceshipParams
) -> tuple[Any, SpaceshipState, Any, Any, Any, dict[str, Any]]:
    """Steps one environment (gymnax signature). The dynamics are deterministic; ``key`` is unused.

    Returns:
        ``(obs, state, reward, terminated, truncated, info)``; truncated is ``time >= max_steps``.
        info holds ``targets_reached`` () int32 and ``crashed``/``escaped`` () bool.
    """
    del key
    thrust = action_to_thrust(action, params)
    result = task.outcome(state, thrust, dynamics(state, thrust, params), params)
    next_state = result.next_state
    info = {
        "targets_reached": next_state.target_index,
        "crashed": result.crashed,
        "escaped": result.escaped,
    }
    truncated = next_state.time >= params.max_steps
    return (
        observe(next_state, params),
        next_state,
        result.reward,
        result.terminated,
        truncated,
        info,
    )


def observe(state: SpaceshipState, params: SpaceshipParams) -> Any:
    """The state observation, (OBS_DIM,) float32.

    ====  =========================================  ======
    idx   meaning                                    unit
    ====  =========================================  ======
    0-1   ship position (world frame)                m
    2-3   ship velocity                              m/s
    4-5   planet centre relative to the ship         m
    6-7   current target relative to the ship        m
    8-9   next target relative to the ship           m
    10    planet radius                              m
    11    surface gravity                            m/s^2
    12    fraction of targets still to visit         -
    ====  =========================================  ======

    Once every target is visited, the "current" and "next" targets are the last one.
    """
    ops = ops_for(state.planet_radius)
    last = params.num_targets - 1
    current = state.targets[ops.minimum(state.target_index, last)]
    upcoming = state.targets[ops.minimum(state.target_index + 1, last)]
    px, py = ops.xy(state.position)
    vx, vy = ops.xy(state.velocity)
    cx, cy = ops.xy(state.planet_position)
    ax, ay = ops.xy(current)
    bx, by = ops.xy(upcoming)
    remaining = ops.f32(params.num_targets - state.target_index) / params.num_targets
    radius, gravity = ops.scalar(state.planet_radius), ops.scalar(state.surface_gravity)
    return ops.stack(
        [
            px,
            py,
            vx,
            vy,
            cx - px,
            cy - py,
            ax - px,
            ay - py,
            bx - px,
            by - py,
            radius,
            gravity,
            remaining,
        ]
    )


def as_numpy(state: SpaceshipState) -> SpaceshipState:
    """Copies a state's leaves to NumPy (float32 / int32), e.g. to step it on the NumPy path."""
    return jax.tree_util.tree_map(lambda x: np.array(x), state)


def as_jax(state: SpaceshipState) -> SpaceshipState:
    """Moves a state's leaves onto the default JAX device."""
    return jax.tree_util.tree_map(jnp.asarray, state)
