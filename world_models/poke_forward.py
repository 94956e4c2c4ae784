"""Object-state forward model of a poke, for planning pokes (``experiments.poke_goal``).

Maps one object observation and one poke to object 0's position after the poke. Features are
expressed in object 0's frame and in decimetres so that their scale is near 1 for the optimiser.
One example per call; batch with ``jax.vmap`` (as :func:`forward_loss` does).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Params = Any


class PokeForwardModel(nn.Module):
    """Action-conditioned forward model for planning: (features,) -> (2,) displacement [dm].

    The features are :func:`poke_features` of the object observation and a poke; the output is
    object 0's displacement in decimetres (a scale near 1 for the optimiser).
    """

    hidden: tuple[int, ...] = (128, 128)

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:  # noqa: D102
        for width in self.hidden:
            features = nn.tanh(nn.Dense(width)(features))
        return nn.Dense(2)(features)


def poke_features(objects: jax.Array, poke: jax.Array) -> jax.Array:
    """Model input for one example, in object 0's frame of reference.

    Args:
        objects: (max_objects, 8) object observation (see ``envs.poke.env.object_features``).
        poke: (4,) start x [m], start y [m], angle [rad], length [m].

    Returns:
        (14 + 3 * (max_objects - 1),) features: object 0's position, cos, sin, one-hot kind and
        half extents, the poke start relative to it [dm], cos/sin of the poke angle, length [dm],
        and the other objects' presence and positions relative to object 0 [dm].
    """
    position = objects[0, 1:3]
    kind = jax.nn.one_hot(objects[0, 5].astype(jnp.int32), 3)
    others = objects[1:, :3] - jnp.concatenate([jnp.zeros(1), position])
    others = others * jnp.array([1.0, 10.0, 10.0]) * objects[1:, :1]
    return jnp.concatenate(
        [
            position * 10.0,
            objects[0, 3:5],
            kind,
            objects[0, 6:8] * 10.0,
            (poke[:2] - position) * 10.0,
            jnp.cos(poke[2:3]),
            jnp.sin(poke[2:3]),
            poke[3:4] * 10.0,
            others.reshape(-1),
        ]
    )


def predict_position(params: Params, objects: jax.Array, poke: jax.Array, hidden=(128, 128)):
    """Object 0's predicted position after ``poke``, (2,) [m]."""
    displacement = PokeForwardModel(hidden).apply({"params": params}, poke_features(objects, poke))
    return objects[0, 1:3] + displacement / 10.0


def init_forward(key: jax.Array, max_objects: int, hidden=(128, 128)) -> Params:
    """Parameters of :class:`PokeForwardModel` for observations with ``max_objects`` rows."""
    features = poke_features(jnp.zeros((max_objects, 8)), jnp.zeros(4))
    return PokeForwardModel(hidden).init(key, features)["params"]


def forward_loss(params: Params, batch: dict, key: jax.Array, hidden=(128, 128)):
    """Mean squared displacement error [dm^2]; ``batch``: objects, next_objects, poke."""
    del key
    predicted = jax.vmap(predict_position, (None, 0, 0, None))(
        params, batch["objects"], batch["poke"], hidden
    )
    error = (predicted - batch["next_objects"][:, 0, 1:3]) * 10.0
    return jnp.mean(jnp.sum(error**2, axis=-1)), {}
