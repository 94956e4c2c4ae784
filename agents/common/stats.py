"""The 95% intervals the suite reports: Student t's for means, Wilson's for rates.

One implementation for every experiment: returns of evaluated policies
(:mod:`agents.common.evaluate`), poke prediction errors, towers overhang fractions, goal and
collapse rates.
"""

from __future__ import annotations

import math

import numpy as np

# Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30; larger df use the
# Cornish-Fisher expansion around the normal quantile (error < 1e-3 for df > 30).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
_Z975 = 1.959964


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean of ``values`` and the two ends of its Student-t 95% confidence interval.

    The one interval the suite reports (returns, errors, fractions of episodes).

    Args:
        values: (N,) independent samples, N >= 1.

    Returns:
        ``(mean, low, high)``; ``low`` and ``high`` are NaN for N = 1, where the spread of the
        samples, hence the interval, is undefined.

    Raises:
        ValueError: no values, or values that are not one-dimensional.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"mean_ci needs a non-empty (N,) array, got shape {values.shape}")
    n, mean = values.size, float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = t_quantile_975(n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def wilson_ci(successes: int, n: int) -> tuple[float, float, float]:
    """Rate of ``successes`` in ``n`` trials and the ends of its Wilson score 95% interval.

    Wilson's interval (Wilson 1927) stays inside [0, 1] and is not empty at 0 or n successes,
    where the normal interval collapses to a point.

    Raises:
        ValueError: ``n`` < 1, or ``successes`` outside [0, n].
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"wilson_ci needs n >= 1 and 0 <= successes <= n, got {successes}/{n}")
    z, rate = _Z975, successes / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return rate, max(0.0, centre - spread), min(1.0, centre + spread)
