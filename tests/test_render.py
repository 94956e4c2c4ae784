"""experiments.render and experiments.runs: the run's own env, refusals that say why, all frames."""

import dataclasses

import pytest

from agents.common import cli
from agents.ppo import PPO, PPOConfig
from experiments import io, render, runs


def _run(folder, config):
    folder.mkdir(parents=True)
    io.write_json(folder / "config.json", config)
    return folder


def test_a_learned_policy_plays_in_the_env_and_mode_of_its_run(tmp_path):
    agent = _run(tmp_path / "ppo", {"algorithm": "ppo", "env": "worldplan/Driving-v0"})
    watch = render.Config(policy="ppo", run=agent, env_kwargs='{"max_steps": 5}')
    assert render.resolve_env(watch) == ("worldplan/Driving-v0", {"max_steps": 5})
    with pytest.raises(ValueError, match="agents.ppo run on worldplan/Driving-v0, not .*Space"):
        render.resolve_env(dataclasses.replace(watch, env="worldplan/Spaceship-v0"))
    ship = _run(tmp_path / "ship", {"experiment": "spaceship", "action_mode": "discrete"})
    assert render.resolve_env(render.Config(policy="gbp", run=ship)) == (
        "worldplan/Spaceship-v0",
        {"action_mode": "discrete"},
    )
    # without a learned policy the flags alone decide
    assert render.resolve_env(render.Config())[0] == "worldplan/Spaceship-v0"
    with pytest.raises(ValueError, match="--env-kwargs must be a JSON dict"):
        render.resolve_env(render.Config(env_kwargs="[1]"))


def test_runs_that_cannot_play_say_why(tmp_path):
    ship = _run(tmp_path / "ship", {"experiment": "spaceship", "action_mode": "continuous"})
    (ship / "stages").mkdir()
    (ship / "stages" / "model.json").write_text("{}")  # an interrupted spaceship run
    with pytest.raises(ValueError, match="unfinished experiments.spaceship run: .*planners.json"):
        render.main(render.Config(policy="gbp", run=ship, out=tmp_path / "x.gif"))
    with pytest.raises(ValueError, match=r"experiments.spaceship run; it holds \('gbp'"):
        render.main(render.Config(policy="ppo", run=ship, out=tmp_path / "x.gif"))
    towers = _run(tmp_path / "towers", {"experiment": "towers"})
    with pytest.raises(io.CheckpointError, match="experiments.towers, which saves no policy"):
        runs.describe(towers)
    with pytest.raises(io.CheckpointError, match="holds no run"):
        runs.describe(tmp_path / "nothing")
    # a driving run from before config.json named its experiment is still recognised
    old = _run(tmp_path / "old", {"state_model": {}, "seed": 0})
    assert runs.describe(old).policies == ("gbp", "distgbp", "ppo")


def test_the_policy_defaults_to_the_runs_own_and_a_run_is_never_ignored(tmp_path):
    assert render.resolve_policy(render.Config()) == "random"
    agent = _run(tmp_path / "a2c", {"algorithm": "a2c", "env": "worldplan/Spaceship-v0"})
    assert render.resolve_policy(render.Config(run=agent)) == "a2c"
    ship = _run(tmp_path / "ship", {"experiment": "spaceship", "action_mode": "continuous"})
    with pytest.raises(ValueError, match="several policies: pick one with --policy .*distgbp"):
        render.resolve_policy(render.Config(run=ship))
    with pytest.raises(ValueError, match="--policy random reads no run: drop --run"):
        render.main(render.Config(policy="random", run=agent))
    with pytest.raises(io.CheckpointError, match="holds no run"):
        render.main(render.Config(run=tmp_path / "nothing"))


@pytest.mark.parametrize("field", ["episodes", "fps"])
def test_zero_episodes_or_frames_per_second_are_refused(field):
    with pytest.raises(ValueError, match=f"--{field} must be >= 1"):
        render.Config(**{field: 0})


def test_the_video_holds_each_episodes_first_and_last_frame(tmp_path, monkeypatch):
    written = []
    monkeypatch.setattr(render, "write_video", lambda frames, path, fps: written.append(frames))
    config = render.Config(episodes=2, out=tmp_path / "e.gif", env_kwargs='{"max_steps": 4}')
    returns = render.main(config)
    assert len(returns) == 2 and len(written[0]) == 2 * (4 + 1)


def test_agent_resume_refuses_another_env_and_an_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="nothing to resume yet.*without --resume"):
        cli.main(PPO, PPOConfig, ["--resume", str(empty)])
    run = _run(tmp_path / "run", {"algorithm": "ppo", "config": {}, "env": "CartPole-v1"})
    with pytest.raises(SystemExit, match="trains on CartPole-v1, not worldplan/Driving-v0"):
        cli.main(PPO, PPOConfig, ["--resume", str(run), "--env", "worldplan/Driving-v0"])


def test_agents_cli_refuses_bad_flags_in_one_line(tmp_path):
    results = ["--results-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="error: num_envs must be >= 1, got 0"):
        cli.main(PPO, PPOConfig, ["--num-envs", "0", *results])
    with pytest.raises(SystemExit, match="error: --env worldplan/Nope-v0: .*Nope"):
        cli.main(PPO, PPOConfig, ["--env", "worldplan/Nope-v0", *results])
    assert not any(tmp_path.iterdir())  # no run folder was made


def test_an_agents_run_trained_from_python_plays_in_its_recorded_env(tmp_path, monkeypatch):
    import gymnasium as gym
    import jax

    from agents import ppo

    config = PPOConfig(total_steps=32, num_envs=2, n_steps=16, batch_size=16, n_epochs=1,
                       log_every_steps=32)  # fmt: skip
    vec = gym.make_vec("CartPole-v1", num_envs=2)
    ppo.train(config, vec, jax.random.key(0), run_dir=tmp_path / "cp", progress=False)
    written = []
    monkeypatch.setattr(render, "write_video", lambda frames, path, fps: written.append(frames))
    watch = render.Config(policy="ppo", run=tmp_path / "cp", out=tmp_path / "cp.gif",
                          env_kwargs='{"max_episode_steps": 3}')  # fmt: skip
    assert render.resolve_env(watch)[0] == "CartPole-v1"
    assert len(render.main(watch)) == 2 and written[0][0].ndim == 3
