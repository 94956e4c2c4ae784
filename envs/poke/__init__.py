"""Poking objects on a table (``worldplan/Poke-v0``), after Agrawal et al. (2016).

A finger moves along a straight line across a top-down table and pushes one to three objects,
which slide to rest under Coulomb friction with the table. See :class:`envs.poke.env.PokeEnv`.
"""
