"""The MLP of the state dynamics model and of the distilled policy."""

from __future__ import annotations

import flax.linen as nn
import jax


class MLP(nn.Module):
    """SiLU MLP ``(D,) -> (out_size,)`` of the forward model and the distilled policy."""

    hidden_sizes: tuple[int, ...]
    """Widths of the hidden layers."""
    out_size: int
    """Width of the linear output layer."""
    zero_output: bool = False
    """Start the output layer's kernel at zero (a forward model that first predicts no change)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps (D,) inputs to (out_size,) outputs."""
        for width in self.hidden_sizes:
            x = nn.silu(nn.Dense(width)(x))
        init = nn.initializers.zeros if self.zero_output else nn.linear.default_kernel_init
        return nn.Dense(self.out_size, kernel_init=init)(x)
