"""Shared pieces of the actor-critic agents: returns, distributions, networks, rollouts, the loop.

Evaluation for every policy in the project (planners included)::

    from agents.common.evaluate import EvalResult, evaluate_jax, evaluate_host, random_policy
"""
