"""The optimiser of the shared trainer: Adam(W) with gradient clipping and step-size decay.

:func:`make_optimizer` builds what :func:`world_models.trainer.fit` trains with from a
:class:`~world_models.trainer.TrainerConfig`; :func:`decay_schedule` is also used by the planners'
gradient ascent (:mod:`planners.ascent`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import optax

if TYPE_CHECKING:
    from world_models.trainer import TrainerConfig

SCHEDULES = ("constant", "linear", "cosine")
"""Step-size schedules of :func:`decay_schedule`."""


def decay_schedule(
    kind: str, learning_rate: float, final_fraction: float, steps: int
) -> float | optax.Schedule:
    """A step size decaying over ``steps`` optimiser updates (the constant is returned as is).

    Args:
        kind: "constant", "linear" or "cosine" (half a cosine period, no restarts).
        learning_rate: step size at update 0.
        final_fraction: step size after ``steps`` updates, over ``learning_rate``.
        steps: updates the decay lasts (at least 1 is used); later updates keep the final size.

    Returns:
        ``learning_rate`` for "constant", else an ``optax`` schedule ``count -> step size``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"kind: expected one of {SCHEDULES}, got {kind!r}")
    steps = max(int(steps), 1)
    if kind == "linear":
        return optax.linear_schedule(learning_rate, final_fraction * learning_rate, steps)
    if kind == "cosine":
        return optax.cosine_decay_schedule(learning_rate, steps, alpha=final_fraction)
    return learning_rate


def make_optimizer(
    config: TrainerConfig, steps_per_epoch: int | None = None
) -> optax.GradientTransformation:
    """Adam (or AdamW when ``weight_decay > 0``) after an optional global-norm clip.

    Args:
        config: optimisation settings.
        steps_per_epoch: optimiser updates per epoch; needed when ``config.lr_schedule`` decays
            (over ``config.max_epochs * steps_per_epoch`` updates).
    """
    if config.lr_schedule == "constant":
        rate = config.learning_rate
    elif steps_per_epoch is None or steps_per_epoch < 1:
        raise ValueError(
            f"steps_per_epoch: expected an int >= 1 for lr_schedule={config.lr_schedule!r}, "
            f"got {steps_per_epoch!r}"
        )
    else:
        rate = decay_schedule(
            config.lr_schedule,
            config.learning_rate,
            config.final_lr_fraction,
            config.max_epochs * steps_per_epoch,
        )
    if config.weight_decay > 0:
        opt = optax.adamw(rate, weight_decay=config.weight_decay, mask=decay_mask)
    else:
        opt = optax.adam(rate)
    if config.max_grad_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), opt)
    return opt


NO_DECAY_KEYS = frozenset({"stats", "logvar_bounds"})
"""Param subtrees that weight decay leaves alone (see :func:`decay_mask`)."""


def decay_mask(params: Any) -> Any:
    """True for the leaves weight decay may shrink: all but those under :data:`NO_DECAY_KEYS`.

    Models keep fixed normalisation statistics in their params (``params["stats"]``, read
    through ``stop_gradient``); Adam leaves them alone (zero gradients), decoupled decay would not.
    Probabilistic models' learned log-variance bounds (``params["logvar_bounds"]``) have a
    penalty of their own; PETS decays only the network's weights.
    """

    def trained(path: tuple, leaf: Any) -> bool:
        del leaf
        return not any(getattr(entry, "key", None) in NO_DECAY_KEYS for entry in path)

    return jax.tree_util.tree_map_with_path(trained, params)
