"""``python -m agents.ppo --env worldplan/Spaceship-v0 --total-steps 3800000`` (``--help``)."""

from agents.common.cli import main
from agents.ppo.ppo import PPO, PPOConfig

if __name__ == "__main__":
    main(PPO, PPOConfig)
