"""``python -m agents.a2c --env worldplan/Spaceship-v0 --total-steps 3800000`` (``--help``)."""

from agents.a2c.a2c import A2C, A2CConfig
from agents.common.cli import main

if __name__ == "__main__":
    main(A2C, A2CConfig)
