"""Gradient-based overhang planning through a learned fall predictor (PhysNet) on soft images.

The plan (placement offsets) is rendered differentiably (``image.block_masks`` with sigmoid
edges, ``image.compose`` under ``jax.numpy``), so ``jax.grad`` reaches the offsets through the
network. Each restart ascends

    overhang(offsets) - penalty * sum_j relu(p_fall(tower_j) - threshold)

with Adam, where ``tower_j`` are the towers :func:`planning.judged_images` judges (each partial
tower, each level pushed out by ``margin``), rendered and judged as one batch. The ascent is
:func:`planners.ascent.maximise` (restarts batched with ``vmap``, steps in a ``lax.scan``);
:func:`make_grad_planner` jits the whole search once. The caller picks among the restarts'
results with the hard-image score (``planning.score_plans``), so the plan executed is judged
exactly like a CEM plan.

The fall predictor is a callback ``fall_logit(net_params, image) -> ()`` on one float image
(S, S, 3) in [0, 1], so this module needs no model code.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from envs.towers import image
from envs.towers.params import Params
from envs.towers.planning import judged_layout
from planners import ascent

FallLogit = Callable[[Any, jax.Array], jax.Array]
"""Maps (network params, image (S, S, 3) float in [0, 1]) to a () fall logit."""


@dataclasses.dataclass(frozen=True)
class GradConfig:
    """Gradient ascent on the plan through soft images and the fall predictor."""

    restarts: int = 8
    """Independent ascents (batched with vmap); the caller keeps the best."""
    steps: int = 40
    """Adam steps per restart."""
    learning_rate: float = 0.02
    """Adam step size [block widths]."""
    softness: float = 0.04
    """Sigmoid edge width of the soft rendering [block widths] (a pixel is 0.094)."""
    fall_threshold: float = 0.3
    """Fall probabilities above this are penalised."""
    penalty: float = 4.0
    """Weight of the fall-probability excess against the overhang [block widths]."""
    margin: float = 0.05
    """Each level is judged pushed out by this much, as in ``planning.CEMConfig.margin``."""
    min_checked_blocks: int = 2
    """Partial towers with fewer blocks are not judged (as in ``planning.CEMConfig``)."""
    initial_high: float = 0.25
    """Restarts start from offsets uniform in ``[0, initial_high]`` [block widths]."""


def soft_image(
    offsets: jax.Array, params: Params, softness: float, visible: jax.Array | None = None
) -> jax.Array:
    """(S, S, 3) float image of the resting stack built from ``offsets`` (k,), soft edges.

    ``visible`` (k,) hides the blocks where it is 0 (a partial tower).
    """
    k = offsets.shape[0]
    x = -0.5 * params.block_size + params.block_size * jnp.cumsum(offsets)
    y = (jnp.arange(k) + 0.5) * params.block_size
    masks = image.upright_masks(jnp.stack([x, y], axis=-1), params, softness=softness, xp=jnp)
    if visible is not None:
        masks = masks * visible[:, None, None]
    return image.compose(masks, params, xp=jnp)


def objective(
    offsets: jax.Array, net_params: Any, fall_logit: FallLogit, params: Params, config: GradConfig
) -> jax.Array:
    """() planned overhang [block widths] minus the penalised fall-probability excess.

    The judged towers (``planning.judged_layout``) are rendered and judged in one batch.
    """
    overhang = jnp.maximum(jnp.max(jnp.cumsum(offsets)) * params.block_size, 0.0)
    pushes, visible = judged_layout(offsets.shape[0], config.min_checked_blocks, config.margin)
    shifted = offsets + config.margin * jnp.asarray(pushes, offsets.dtype)
    render = functools.partial(soft_image, params=params, softness=config.softness)
    images = jax.vmap(render)(shifted, visible=jnp.asarray(visible, offsets.dtype))
    logits = jax.vmap(fall_logit, in_axes=(None, 0))(net_params, images)
    excess = jax.nn.relu(jax.nn.sigmoid(logits) - config.fall_threshold)
    return overhang - config.penalty * jnp.sum(excess)


def ascent_config(config: GradConfig) -> ascent.AscentConfig:
    """Adam whose step size decays linearly to a tenth, keeping the best iterate.

    The decay lets the plan settle at the boundary the model draws instead of oscillating
    across it; the best iterate (not the last) is kept.
    """
    return ascent.AscentConfig(
        steps=config.steps,
        learning_rate=config.learning_rate,
        schedule="linear",
        final_lr_fraction=0.1,
        keep_best=True,
    )


def grad_plans(
    net_params: Any,
    key: jax.Array,
    bounds: tuple[jax.Array, jax.Array],
    fall_logit: FallLogit,
    params: Params,
    config: GradConfig,
) -> jax.Array:
    """(restarts, n_blocks) plans, one per restart, from random conservative starts.

    Each restart ascends :func:`objective` (:func:`ascent_config`), clipped to ``bounds``
    ((n_blocks,) lower and upper offsets [block widths]) after every step.
    """
    shape = (config.restarts, params.n_blocks)
    starts = jnp.clip(jax.random.uniform(key, shape, maxval=config.initial_high), *bounds)

    def value(offsets: jax.Array, _: jax.Array) -> jax.Array:
        return objective(offsets, net_params, fall_logit, params, config)

    result = ascent.maximise(
        value,
        starts,
        key,  # the objective draws no noise: reusing the key for it changes nothing
        ascent_config(config),
        project=lambda offsets: jnp.clip(offsets, *bounds),
    )
    return result.candidates


def make_grad_planner(
    fall_logit: FallLogit, params: Params, config: GradConfig
) -> Callable[[Any, jax.Array, tuple[jax.Array, jax.Array]], jax.Array]:
    """``jit(grad_plans)`` with the predictor and settings fixed: ``(net_params, key, bounds)``."""
    return jax.jit(
        functools.partial(grad_plans, fall_logit=fall_logit, params=params, config=config)
    )
