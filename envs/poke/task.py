"""Reward and termination of the goal-reaching poke task, shared by the env and the planner.

Written with array operators only, so the same functions take NumPy arrays (the env) and JAX
arrays (gradient-based planning through a learned model).
"""

from __future__ import annotations

from typing import Any

TASKS = ("free", "goal")
"""``free``: no reward, never terminates (data collection); ``goal``: move object 0 to a goal."""


def goal_distance(position: Any, goal: Any) -> Any:
    """Distance of object 0 from its goal [m].

    Args:
        position: (..., 2) object 0 centre [m].
        goal: (..., 2) goal position [m].
    """
    return (((position - goal) ** 2).sum(-1) + 1e-12) ** 0.5


def reward(position: Any, goal: Any) -> Any:
    """Negative distance of object 0 from its goal [m] (shapes as :func:`goal_distance`)."""
    return -goal_distance(position, goal)


def terminated(position: Any, goal: Any, tolerance: float) -> Any:
    """True where object 0 lies within ``tolerance`` [m] of its goal (success)."""
    return goal_distance(position, goal) < tolerance
