"""Planners over learned or true dynamics: GBP, DISTGBP, CEM/MPPI and their action relaxations."""
