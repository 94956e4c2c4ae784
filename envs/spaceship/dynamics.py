"""Physics of the spaceship task: the planet's gravity and the integrator of one step.

Pure and written for ONE environment, with ``envs.ops`` like :mod:`envs.spaceship.core`: given
NumPy leaves they run on host float32 scalars, given JAX arrays or tracers in JAX, and both are
differentiable in JAX (gradient-based planning takes ``jax.grad`` through them).

Physics (per substep of length h = dt / substeps, semi-implicit Euler):
    a = -mu * d / max(|d|, R)^3 + max_thrust * u,   d = position - planet_position
    velocity += h * a;  position += h * velocity
with mu = surface_gravity * R^2 (inverse-square outside the planet, clamped to the surface value
inside, i.e. linear in |d| as for a uniform ball).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from envs.ops import ops_for
from envs.spaceship.params import SpaceshipParams

if TYPE_CHECKING:
    from envs.spaceship.core import SpaceshipState

EPS = 1e-6
"""Added under square roots, so that their value and gradient stay finite at zero."""


def gravity(position: Any, state: SpaceshipState) -> Any:
    """Gravitational acceleration at ``position`` (2,) [m] from the state's planet, (2,) [m/s^2]."""
    ops = ops_for(state.planet_radius)
    planet = _Planet.of(ops, state)
    gx, gy = planet.gravity(ops, *ops.xy(position))
    return ops.stack([gx, gy])


class _Planet(NamedTuple):
    """The planet's scalars, read once per step (indexing costs ~0.1 us each on the host)."""

    x: Any
    y: Any
    radius: Any
    mu: Any

    @classmethod
    def of(cls, ops: Any, state: SpaceshipState) -> _Planet:
        radius = ops.scalar(state.planet_radius)
        mu = ops.scalar(state.surface_gravity) * radius * radius  # [m^3/s^2]
        return cls(*ops.xy(state.planet_position), radius, mu)

    def gravity(self, ops: Any, px: Any, py: Any) -> tuple[Any, Any]:
        dx, dy = px - self.x, py - self.y
        clamped = ops.maximum(ops.sqrt(dx * dx + dy * dy + EPS), self.radius)
        scale = self.mu / (clamped * clamped * clamped)
        return -scale * dx, -scale * dy


def dynamics(state: SpaceshipState, thrust: Any, params: SpaceshipParams) -> SpaceshipState:
    """Integrates one environment step of the physics (no task bookkeeping).

    Args:
        state: current state.
        thrust: (2,) thrust command u with |u| <= 1 [-]; the acceleration is max_thrust * u.
        params: task parameters.

    Returns:
        The state after ``params.dt`` seconds, ``time`` incremented and ``thrust`` recorded.
    """
    ops = ops_for(state.planet_radius)
    h = params.dt / params.substeps
    planet = _Planet.of(ops, state)
    px, py = ops.xy(state.position)
    vx, vy = ops.xy(state.velocity)
    ux, uy = ops.xy(thrust)
    tx, ty = params.max_thrust * ux, params.max_thrust * uy
    for _ in range(params.substeps):  # unrolled: substeps is small and static
        gx, gy = planet.gravity(ops, px, py)
        vx = vx + h * (gx + tx)
        vy = vy + h * (gy + ty)
        px = px + h * vx
        py = py + h * vy
    # Built directly: dataclasses.replace costs ~10 us on the host path. ``type(state)`` is
    # core.SpaceshipState, which this module cannot import at run time (core imports it).
    return type(state)(
        position=ops.stack([px, py]),
        velocity=ops.stack([vx, vy]),
        planet_position=state.planet_position,
        planet_radius=state.planet_radius,
        surface_gravity=state.surface_gravity,
        targets=state.targets,
        target_index=state.target_index,
        time=state.time + 1,
        thrust=ops.stack([ux, uy]),
    )
