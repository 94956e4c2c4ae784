"""experiments.spaceship.main end to end on a tiny config; policies loaded from its folder."""

import dataclasses
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents.a2c as a2c
from agents.common.evaluate import EvalResult, seconds_per_action
from envs.jax_env import make_jax_env
from experiments import io
from experiments import spaceship as sp
from experiments.claims import claim_line
from experiments.configs import timing_note
from experiments.spaceship_report import Row, claims, rows_from_metrics
from planners import cem, checkpoints, distill, gbp, relax
from world_models import dynamics, trainer
from world_models.data import Transitions

ROWS = ("RANDOM", "A2C", "GBP", "DISTGBP", "CEM", "GBP (true dynamics)")


def tiny_config(root) -> sp.Config:
    return sp.Config(
        eval_episodes=3,
        eval_max_steps=20,
        curve_episodes=2,
        a2c_steps=2048,
        model_steps=512,
        n_envs=16,
        refresh_rounds=0,
        curve_fractions=(0.5,),
        timing_repeats=0,
        dynamics=dynamics.DynamicsConfig(hidden_sizes=(16,)),
        model_trainer=trainer.TrainerConfig(batch_size=64, max_epochs=2),
        gbp=gbp.GBPConfig(horizon=3, n_iterations=2, n_restarts=2),
        gbp_true=gbp.GBPConfig(horizon=3, n_iterations=2, n_restarts=2),
        cem=cem.CEMConfig(horizon=3, n_samples=8, n_iterations=1, n_elites=2),
        distill=distill.DistillConfig(
            hidden_sizes=(16,), expert_steps=32, dagger_rounds=0, n_envs=16
        ),
        policy_trainer=trainer.TrainerConfig(batch_size=16, max_epochs=2),
        a2c=a2c.A2CConfig(num_envs=4, log_every_steps=1024, hidden=(16,)),
        results_root=str(root),
        run_name="tiny",
    )


# main() compiles ~15 programs (about 70 s on an idle 2-core CPU); the module-scoped fixture runs
# it once for every test below.
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return sp.main(tiny_config(tmp_path_factory.mktemp("spaceship")))


def test_main_writes_table_with_every_row(run_dir):
    table = (run_dir / "table.md").read_text()
    for name in ROWS:
        assert f"| {name} |" in table
    assert "SMALLER budgets than the paper" in table
    assert "planet barrier (5 reward/m" in table
    assert io.read_json(run_dir / "planners.json")["barrier"]["weight"] == 5.0
    for claim in ("beats A2C", "matches GBP", "10x faster"):
        line = next(x for x in table.splitlines() if claim in x)
        assert re.search(r": (held|NOT held) \(", line), line
    metrics = io.read_json(run_dir / "metrics.json")
    assert set(metrics["rows"]) == set(ROWS)
    for row in metrics["rows"].values():
        assert row["episodes"] == 3
        assert row["ci95_low"] <= row["mean"] <= row["ci95_high"]
        assert row["seconds_per_action"] > 0
    assert metrics["rows"]["RANDOM"]["env_steps"] == 0
    assert metrics["rows"]["GBP"]["env_steps"] == 512
    assert metrics["rows"]["DISTGBP"]["env_steps"] == 512 + 32
    assert (run_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # the verdicts are kept, and the rows alone give them again (experiments.across_seeds)
    assert [c["claim"].split(" (")[0] for c in metrics["claims"]] == [
        "model-based",
        "DISTGBP matches GBP within its CI",
        "DISTGBP acts >= 10x faster than GBP",
    ]
    assert claims(rows_from_metrics(metrics)) == metrics["claims"]
    for verdict in metrics["claims"]:
        assert f"- {claim_line(verdict)}" in table.splitlines()
    config = io.read_json(run_dir / "config.json")
    assert config["model_budget"] == 512 and config["full"] is False
    # every phase's wall time (metrics.json), in the order the phases ran (the table's notes)
    phases = metrics["phase_seconds"]
    assert set(phases) == {p.stem for p in (run_dir / "stages").glob("*.json")}
    assert all(seconds >= 0 for seconds in phases.values()) and phases["a2c"] > 0
    line = next(x for x in table.splitlines() if x.startswith("- Wall time by phase [s]: "))
    order = [part.split()[0] for part in line.split(": ", 1)[1].split(" (total")[0].split(", ")]
    assert order[:2] == ["random", "a2c"] and order[-2:] == ["cem", "gbp-true"]
    assert line.endswith(f"(total {sum(phases.values()):.0f}).")


def test_resume_loads_finished_phases_and_reruns_the_rest(run_dir, monkeypatch):
    first = io.read_json(run_dir / "metrics.json")
    before, first_seconds = first["rows"], first["phase_seconds"]
    stages = run_dir / "stages"
    assert {p.stem for p in stages.glob("*.json")} >= {"random", "a2c", "model", "curve-0.5"}
    for name in ("cem", "gbp-true"):  # as if the run had stopped before its last phases
        (stages / f"{name}.json").unlink()
    (run_dir / "metrics.json").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("a finished phase was recomputed")

    monkeypatch.setattr(a2c, "train", refuse)
    monkeypatch.setattr(dynamics.DynamicsModel, "fit", refuse)
    monkeypatch.setattr(distill, "distill", refuse)
    config = tiny_config(run_dir.parent)
    assert sp.main(dataclasses.replace(config, resume=True)) == run_dir
    resumed = io.read_json(run_dir / "metrics.json")
    after = resumed["rows"]
    assert set(after) == set(ROWS)
    # loaded phases keep the wall time they took when they ran
    assert resumed["phase_seconds"]["a2c"] == first_seconds["a2c"]
    for name in ROWS:  # loaded rows and rerun rows alike equal the uninterrupted run's
        for field in ("mean", "ci95_low", "ci95_high", "env_steps"):
            assert after[name][field] == before[name][field], (name, field)


def test_resume_refuses_other_settings_and_a_rerun_refuses_to_overwrite(run_dir):
    config = tiny_config(run_dir.parent)
    with pytest.raises(io.CheckpointError, match="eval_episodes"):
        sp.main(dataclasses.replace(config, resume=True, eval_episodes=4))
    with pytest.raises(ValueError, match="--resume"):
        sp.main(config)
    with pytest.raises(ValueError, match="--run-name"):
        sp.main(dataclasses.replace(config, resume=True, run_name=None))


def test_a2c_total_steps_flag_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--a2c-steps"):
        dataclasses.replace(tiny_config(tmp_path), a2c=a2c.A2CConfig(total_steps=10))


def test_full_flag_selects_paper_budgets(tmp_path):
    config = sp.Config(full=True, results_root=str(tmp_path))
    assert (config.a2c_budget, config.model_budget) == (3_800_000, 800_000)
    with pytest.raises(ValueError, match="action_mode"):
        sp.Config(action_mode="analog")


@pytest.mark.parametrize("name", ["gbp", "distgbp", "gbp-true"])
def test_load_policy_acts_in_the_action_space(run_dir, name):
    env = make_jax_env("worldplan/Spaceship-v0", action_mode="continuous")
    obs, state = env.reset(jax.random.key(3), env.params)
    policy = checkpoints.load_policy(run_dir, name)
    for _ in range(2):
        action = policy(np.asarray(obs), state)
        assert env.action_space.contains(np.asarray(action, np.float32))


def test_load_policy_rejects_unknown_name_and_corrupt_checkpoint(run_dir, tmp_path):
    with pytest.raises(ValueError, match="name"):
        checkpoints.load_policy(run_dir, "dqn")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / checkpoints.SETTINGS).write_text((run_dir / checkpoints.SETTINGS).read_text())
    (broken / checkpoints.MODEL).write_bytes(b"garbage")
    with pytest.raises(io.CheckpointError):
        checkpoints.load_policy(broken, "gbp")


def test_saved_artifacts_load_as_host_policies(tmp_path):
    env = make_jax_env("worldplan/Spaceship-v0", action_mode="discrete")
    rl = relax.Discrete(9)
    rng = np.random.default_rng(0)
    n = 8
    fake = Transitions(
        rng.normal(size=(n, 13)).astype(np.float32),
        np.eye(9, dtype=np.float32)[rng.integers(0, 9, n)],
        rng.normal(size=n).astype(np.float32),
        rng.normal(size=(n, 13)).astype(np.float32),
        np.zeros(n, bool),
    )
    dyn_config = dynamics.DynamicsConfig(hidden_sizes=(8,))
    model = dynamics.DynamicsModel(dyn_config, 13, 9, tuple(map(bool, rl.simplex_mask)))
    student = distill.DistilledPolicy(rl, 13, (8,))
    planner_config = gbp.GBPConfig(horizon=2, n_iterations=1, n_restarts=1)
    checkpoints.save_artifacts(
        tmp_path,
        action_mode="discrete",
        obs_dim=13,
        dynamics_config=dyn_config,
        gbp_config=planner_config,
        oracle_config=planner_config,
        distill_hidden=(8,),
        model_params=model.init(jax.random.key(0), fake),
        student_params=student.init(jax.random.key(1), fake.obs),
    )
    obs, state = env.reset(jax.random.key(3), env.params)
    action = checkpoints.load_policy(tmp_path, "distgbp")(np.asarray(obs), state)
    assert env.action_space.contains(int(action))
    with pytest.raises(ValueError, match="name"):
        checkpoints.load_policy(tmp_path, "dqn")
    (tmp_path / checkpoints.MODEL).write_bytes(b"garbage")
    with pytest.raises(io.CheckpointError, match="magic"):
        checkpoints.load_policy(tmp_path, "gbp")  # (the slow tests load "gbp" from a real run)


@pytest.mark.parametrize("uses_state", [False, True])
def test_seconds_per_action_times_single_compiled_calls(uses_state):
    env = make_jax_env("worldplan/Spaceship-v0", action_mode="continuous")

    def policy(carry, obs, state, key):
        return jax.numpy.tanh(obs[:2] + state.position), carry

    seconds = seconds_per_action(policy, np.zeros(()), env, 5, jax.random.key(0), uses_state)
    assert np.isfinite(seconds) and seconds > 0


def _row(name, mean, half_width, seconds, steps):
    result = EvalResult(mean, mean - half_width, mean + half_width, np.zeros(3), np.zeros(3), 0.0)
    return Row(name, result, seconds, steps)


@pytest.mark.parametrize(
    "distgbp_mean, expected",
    [(30.0, "held (GBP 31.0"), (38.0, "NOT held (GBP 31.0"), (20.0, "NOT held (GBP 31.0")],
)
def test_claims_say_which_side_of_gbp_distgbp_falls(distgbp_mean, expected):
    rows = [
        _row("A2C", 10.0, 3.0, 1e-4, 3_800_000),
        _row("GBP", 31.0, 3.0, 2e-3, 800_000),
        _row("DISTGBP", distgbp_mean, 3.0, 1e-4, 800_000),
    ]
    beats, matches, faster = (claim_line(c) for c in claims(rows))
    assert beats.split(": ")[1].startswith("held")
    assert expected in matches
    side = {30.0: "[27.0, 33.0])", 38.0: "; DISTGBP above GBP)", 20.0: "; DISTGBP below GBP)"}
    assert matches.endswith(side[distgbp_mean])
    assert "held (20.0x" in faster
    assert [c["held"] for c in claims(rows)] == [True, distgbp_mean == 30.0, True]


def test_beating_a2c_needs_separated_cis_and_the_speedup_is_not_rounded_up():
    rows = [
        _row("A2C", 10.0, 3.0, 1e-4, 3_800_000),  # [7, 13]
        _row("GBP", 31.0, 3.0, 9.6e-4, 800_000),
        _row("DISTGBP", 15.0, 3.0, 1e-4, 800_000),  # a higher mean, its CI [12, 18] overlaps
    ]
    beats, _, faster = (claim_line(c) for c in claims(rows))
    assert beats.split(": ")[1].startswith("NOT held (GBP 31.0 [28.0, 34.0], DISTGBP 15.0")
    assert faster.split(": ")[1].startswith("NOT held (9.6x")


def test_timing_note_says_how_time_per_action_was_measured():
    assert "batched env step" in timing_note(0)
    # this process's backend started with JAX's default (asynchronous) CPU dispatch
    assert timing_note(50) == (
        "s/action: median of 50 single-env calls, each timed alone (CPU, JAX dispatch async)."
    )


def test_inline_cpu_dispatch_applies_when_called_before_jax_starts():
    # a fresh interpreter: the setting only takes effect before the CPU backend exists
    code = (
        "import jax, jax.numpy as jnp\n"
        "from experiments.configs import cpu_dispatch_mode, inline_cpu_dispatch\n"
        "assert cpu_dispatch_mode() == 'async'\n"
        "assert inline_cpu_dispatch()\n"
        "assert float(jnp.ones(3).sum()) == 3.0\n"
        "print(cpu_dispatch_mode())\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "inline"


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("a2c_steps", 0, "--a2c-steps"),
        ("n_envs", 0, "--n-envs"),
        ("model_steps", 15, "--model-steps"),  # under n_envs=16 random steps
        ("model_steps", -1, "--model-steps"),
        ("eval_max_steps", 0, "--eval-max-steps"),
        ("timing_repeats", -3, "--timing-repeats"),
    ],
)
def test_bad_budgets_are_refused_before_training(tmp_path, field, value, flag):
    with pytest.raises(ValueError, match=flag):
        dataclasses.replace(tiny_config(tmp_path), **{field: value})


def test_model_fidelity_compares_a_saved_model_with_the_true_dynamics(
    run_dir, tmp_path, monkeypatch
):
    from experiments import model_fidelity as mf
    from experiments.configs import run_main
    from experiments.fidelity_tasks import SPACESHIP, with_members

    config = mf.Config(
        runs=(str(run_dir),),
        states=("random",),
        n_episodes=3,
        warmup_steps=(0, 2),
        n_plans=2,
        closed_loop_episodes=2,
        results_root=str(tmp_path),
        run_name="fid",
    )
    out = mf.main(config)
    metrics = io.read_json(out / "metrics.json")
    assert set(metrics) == {"experiment", "random", "closed_loop_gbp_return"}
    assert metrics["experiment"] == "spaceship"
    mean, low, high = metrics["closed_loop_gbp_return"]["tiny"]
    assert low <= mean <= high and np.isfinite(mean)
    (figures,) = metrics["random"].values()
    assert figures["horizon"] == 3 and figures["plans_per_state"] == 2
    counts = figures["start_states"]
    assert set(counts) == {"0", "2"} and counts["0"] == 3  # no episode ends at its reset
    assert figures["states"] == sum(counts.values())
    assert set(figures["relative_error"]) == {"ship", "targets"}
    assert np.isfinite(figures["return_mae"])
    mean, low, high = figures["gbp_plan_regret"]
    assert low <= mean <= high
    regret = figures["true_gbp_plan_return"][0] - figures["gbp_plan_true_return"][0]
    assert mean == pytest.approx(regret, abs=1e-5)
    optimism = figures["gbp_plan_predicted_return"][0] - figures["gbp_plan_true_return"][0]
    assert figures["gbp_plan_optimism"][0] == pytest.approx(optimism, abs=1e-5)
    assert -1.0 <= figures["grad_cosine"] <= 1.0
    table = (out / "table.md").read_text()
    assert "## Start states: random" in table and "| tiny | " in table
    assert "## GBP through each model, in the env (2 episodes)" in table
    # resumed: every finished comparison is loaded, and the same table is written
    (out / "metrics.json").unlink()
    (out / "table.md").unlink()
    with monkeypatch.context() as patch:
        for name in ("start_states", "compare_model", "closed_loop_return"):
            patch.setattr(mf, name, lambda *a, **k: pytest.fail("a finished part was recomputed"))
        assert mf.main(dataclasses.replace(config, resume=True)) == out
    assert io.read_json(out / "metrics.json") == metrics and (out / "table.md").read_text() == table
    # --members: an ensemble's members follow it, each a model alone; other models stay as is
    saved = SPACESHIP.load(run_dir)
    pair = dynamics.DynamicsModel(
        dataclasses.replace(saved.model.config, ensemble_size=2), saved.model.obs_dim,
        saved.model.action_dim, saved.model.simplex_mask,
    )  # fmt: skip
    doubled = jax.tree.map(lambda x: jnp.concatenate([x, x + 0.01]), saved.params)
    names, models = with_members(
        ["one", "two"], [saved, saved._replace(model=pair, params=doubled)]
    )
    assert names == ["one", "two", "two member 0", "two member 1"]
    assert models[0] is saved and models[3].model.config.ensemble_size == 1
    obs, action = jnp.zeros(saved.model.obs_dim), jnp.zeros(saved.model.action_dim)
    np.testing.assert_array_equal(
        models[2].model.step(models[2].params, obs, action)[0],
        saved.model.step(saved.params, obs, action)[0],
    )
    with pytest.raises(ValueError, match="expected distinct ones"):
        mf.Config(runs=(str(run_dir),), states=("random", "random"))
    with pytest.raises(SystemExit, match="holds no run"):
        run_main(mf.main, mf.Config, ["--runs", str(tmp_path), "--results-root", str(tmp_path)])
