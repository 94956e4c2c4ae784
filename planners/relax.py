"""Action relaxations shared by the planners: free parameters -> differentiable model actions.

A planner optimises (GBP) or samples (CEM/MPPI) unconstrained parameters ``z`` of shape
``(param_dim,)`` per time step. A relaxation maps them to

* a *model action* vector of shape ``(action_dim,)``, the input of a forward model, differentiably;
* an *environment action* (the hard action actually executed).

Continuous actions go through a squashing map (``tanh``). Discrete actions are planned on the
probability simplex: the model action is ``softmax(z)``, a point of the simplex whose vertices are
the one-hot codes of the discrete actions (Henaff, Whitney & LeCun 2017, arXiv:1705.07177, Sec. 3).
Gaussian noise on the logits while planning (``noise_std`` here) pushes the optimiser towards
vertices; the other remedy, noise on the one-hot action inputs while training the forward model,
lives in :mod:`world_models.dynamics` and uses :attr:`Relaxation.simplex_mask`.
Hybrid actions (``{"fire": int, "angle": float}``) combine a 2-way simplex for ``fire`` with an
unconstrained angle encoded as ``(cos, sin)``.

The relaxations are frozen dataclasses, hashable, so they can be static arguments of ``jit``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Continuous:
    """Box actions ``a = tanh(z)`` in ``[-1, 1]^dim`` (the model action is the env action)."""

    dim: int = 2
    """Action dimension."""

    @property
    def param_dim(self) -> int:
        """Free parameters per step."""
        return self.dim

    @property
    def action_dim(self) -> int:
        """Length of the model action vector."""
        return self.dim

    @property
    def simplex_mask(self) -> np.ndarray:
        """(action_dim,) bool: entries of the model action that lie on a simplex (none here)."""
        return np.zeros(self.dim, bool)

    def relaxed(self, z: jax.Array, noise: jax.Array | None = None) -> jax.Array:
        """Differentiable model action ``tanh(z)``; ``noise`` (same shape as z) is ignored."""
        del noise
        return jnp.tanh(z)

    def hard(self, z: jax.Array) -> jax.Array:
        """The environment action: (dim,) float32 in [-1, 1]."""
        return jnp.tanh(z).astype(jnp.float32)

    def encode(self, action: Any) -> jax.Array:
        """Model action vector of an environment action, (dim,) float32."""
        return jnp.asarray(action, jnp.float32).reshape(self.dim)

    def hard_vector(self, z: jax.Array) -> jax.Array:
        """``encode(hard(z))``: what the executed action looks like to the model."""
        return self.encode(self.hard(z))

    def random(self, key: jax.Array) -> jax.Array:
        """A uniformly random environment action, (dim,) float32 in [-1, 1]."""
        return jax.random.uniform(key, (self.dim,), jnp.float32, -1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Discrete:
    """``n`` discrete actions relaxed to the simplex: model action ``softmax(z + noise)``."""

    n: int = 9
    """Number of discrete actions."""

    @property
    def param_dim(self) -> int:
        """Free parameters (logits) per step."""
        return self.n

    @property
    def action_dim(self) -> int:
        """Length of the model action vector (a point of the n-simplex)."""
        return self.n

    @property
    def simplex_mask(self) -> np.ndarray:
        """(action_dim,) bool: every entry lies on the simplex."""
        return np.ones(self.n, bool)

    def relaxed(self, z: jax.Array, noise: jax.Array | None = None) -> jax.Array:
        """``softmax(z + noise)``, (n,) on the simplex; noise on the logits while planning."""
        return jax.nn.softmax(z if noise is None else z + noise)

    def hard(self, z: jax.Array) -> jax.Array:
        """The environment action: int32 scalar ``argmax(z)``."""
        return jnp.argmax(z).astype(jnp.int32)

    def encode(self, action: Any) -> jax.Array:
        """One-hot code of an int action, (n,) float32."""
        return jax.nn.one_hot(jnp.asarray(action, jnp.int32), self.n, dtype=jnp.float32)

    def hard_vector(self, z: jax.Array) -> jax.Array:
        """``encode(hard(z))``: the vertex of the simplex that is executed."""
        return self.encode(self.hard(z))

    def random(self, key: jax.Array) -> jax.Array:
        """A uniformly random environment action, int32 scalar in [0, n)."""
        return jax.random.randint(key, (), 0, self.n, jnp.int32)


@dataclasses.dataclass(frozen=True)
class Hybrid:
    """``{"fire": {0,1}, "angle": (1,) rad}``: a 2-way simplex and an angle as (cos, sin).

    Free parameters per step: ``(fire logit off, fire logit on, angle)``; the model action is
    ``(p_off, p_on, cos(angle), sin(angle))``.
    """

    @property
    def param_dim(self) -> int:
        """Free parameters per step."""
        return 3

    @property
    def action_dim(self) -> int:
        """Length of the model action vector."""
        return 4

    @property
    def simplex_mask(self) -> np.ndarray:
        """(4,) bool: the two fire probabilities lie on a simplex."""
        return np.array([True, True, False, False])

    def relaxed(self, z: jax.Array, noise: jax.Array | None = None) -> jax.Array:
        """Differentiable (4,) model action; noise perturbs the fire logits only."""
        logits = z[:2] if noise is None else z[:2] + noise[:2]
        angle = z[2]
        return jnp.concatenate(
            [jax.nn.softmax(logits), jnp.stack([jnp.cos(angle), jnp.sin(angle)])]
        )

    def hard(self, z: jax.Array) -> dict[str, jax.Array]:
        """The environment action ``{"fire": int32 scalar, "angle": (1,) float32 in [-pi, pi)}``."""
        angle = jnp.mod(z[2] + jnp.pi, 2 * jnp.pi) - jnp.pi
        return {
            "fire": jnp.argmax(z[:2]).astype(jnp.int32),
            "angle": angle[None].astype(jnp.float32),
        }

    def encode(self, action: dict[str, Any]) -> jax.Array:
        """Model action vector of a hybrid env action, (4,) float32."""
        fire = jax.nn.one_hot(jnp.asarray(action["fire"], jnp.int32), 2, dtype=jnp.float32)
        angle = jnp.asarray(action["angle"], jnp.float32).reshape(())
        return jnp.concatenate([fire, jnp.stack([jnp.cos(angle), jnp.sin(angle)])])

    def hard_vector(self, z: jax.Array) -> jax.Array:
        """``encode(hard(z))``."""
        return self.encode(self.hard(z))

    def random(self, key: jax.Array) -> dict[str, jax.Array]:
        """A uniformly random environment action (fire in {0, 1}, angle in [-pi, pi))."""
        fire_key, angle_key = jax.random.split(key)
        angle = jax.random.uniform(angle_key, (1,), jnp.float32, -jnp.pi, jnp.pi)
        return {"fire": jax.random.randint(fire_key, (), 0, 2, jnp.int32), "angle": angle}


Relaxation = Continuous | Discrete | Hybrid


def for_action_mode(action_mode: str, num_discrete: int = 9, dim: int = 2) -> Relaxation:
    """The relaxation for a spaceship ``action_mode`` ("continuous", "discrete" or "hybrid")."""
    if action_mode == "continuous":
        return Continuous(dim)
    if action_mode == "discrete":
        return Discrete(num_discrete)
    if action_mode == "hybrid":
        return Hybrid()
    raise ValueError(f"action_mode={action_mode!r}: expected 'continuous', 'discrete' or 'hybrid'")


def discrete_noise_mask(relax: Relaxation) -> np.ndarray:
    """(param_dim,) float mask of the free parameters that are logits (planning noise)."""
    if isinstance(relax, Discrete):
        return np.ones(relax.n, np.float32)
    if isinstance(relax, Hybrid):
        return np.array([1.0, 1.0, 0.0], np.float32)
    return np.zeros(relax.param_dim, np.float32)
