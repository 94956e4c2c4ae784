"""worldplan environments; importing this package registers them with Gymnasium.

Ids:
    ``worldplan/Spaceship-v0``: planet gravity control (continuous, discrete, hybrid actions).
    ``worldplan/BlockTower-v0``: stack blocks past a table edge (overhang), pymunk physics.
    ``worldplan/Poke-v0``: poke objects on a table with a finger (one poke per step).
    ``worldplan/Driving-v0``: highway driving among random traffic (continuous, discrete actions).
"""

from gymnasium.envs.registration import register, registry


def _register(env_id: str, **kwargs) -> None:
    if env_id not in registry:
        register(id=env_id, **kwargs)


_register(
    "worldplan/Spaceship-v0",
    entry_point="envs.spaceship.env:SpaceshipEnv",
    vector_entry_point="envs.spaceship.vector:SpaceshipVectorEnv",
    max_episode_steps=200,
)

_register(
    "worldplan/Poke-v0",
    entry_point="envs.poke.env:PokeEnv",
    max_episode_steps=10,
)

_register(
    "worldplan/BlockTower-v0",
    entry_point="envs.towers.env:BlockTowerEnv",
    max_episode_steps=16,
)

_register(
    "worldplan/Driving-v0",
    entry_point="envs.driving.env:DrivingEnv",
    vector_entry_point="envs.driving.vector:DrivingVectorEnv",
    max_episode_steps=200,
)
