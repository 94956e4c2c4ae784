"""Model-free baselines: A2C and PPO."""
