"""Fields shared by every actor-critic config (``A2CConfig``, ``PPOConfig``)."""

from __future__ import annotations

import dataclasses
import math

# Fields that change how long or how verbosely a run goes, not what it learns: a checkpoint
# stays valid when only these change (that is how ``--resume --total-steps N`` extends a run).
RUN_LENGTH_FIELDS = ("total_steps", "log_every_steps")


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
    """Shared actor-critic settings; algorithms subclass it and set their own defaults."""

    total_steps: int = 1_000_000
    """Environment steps to train for, summed over all envs (rounded up to whole updates)."""
    num_envs: int = 16
    """Parallel environments."""
    n_steps: int = 5
    """Steps per env per rollout; a rollout has ``n_steps * num_envs`` transitions."""
    learning_rate: float = 7e-4
    """Optimiser learning rate (constant)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 1.0
    """GAE lambda; 1.0 gives the n-step returns of A2C."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus in the loss."""
    vf_coef: float = 0.5
    """Weight of the value loss in the loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantage: bool = False
    """Standardise advantages per (mini)batch."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the policy and value MLPs (SB3 ``MlpPolicy``)."""
    squash: bool = False
    """Gaussian actions: tanh-squash into the Box bounds instead of clipping (SB3 clips)."""
    log_every_steps: int = 20_000
    """Environment steps between metric rows, progress updates and checkpoints."""

    def __post_init__(self) -> None:
        """Validates the fields."""
        for name in ("total_steps", "num_envs", "n_steps", "log_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")

    @property
    def steps_per_update(self) -> int:
        """Environment steps per update: ``n_steps * num_envs``."""
        return self.n_steps * self.num_envs

    @property
    def num_updates(self) -> int:
        """Updates needed to reach ``total_steps``."""
        return math.ceil(self.total_steps / self.steps_per_update)

    @property
    def updates_per_log(self) -> int:
        """Updates between metric rows (at least 1)."""
        return max(1, self.log_every_steps // self.steps_per_update)
