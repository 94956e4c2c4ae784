"""The benchmarks run, and ``benchmarks/gpu_session.sh`` passes them flags they accept.

The GPU session is one short call on a lent H100: a renamed flag or a benchmark broken by a
refactor would waste it. Here every command line of the script is parsed by its module's own
parser (read from the script, so the test follows it), and each benchmark's ``main`` runs end
to end on a tiny config, its printed ratios checked against the numbers it returns. Timing is
what the benchmarks measure, never what these tests assert; the best-of-N repeats and minimum
measuring times are cut to one call so that the runs stay short.
"""

import functools
import math
import shlex
from pathlib import Path

import pytest
import tyro

from benchmarks import agents, common, envs, planners, poke, towers
from experiments import spaceship

SESSION = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh"
PARSED = {
    "benchmarks.agents": agents.Config,
    "benchmarks.planners": planners.Config,
    "benchmarks.poke": poke.Config,
    "benchmarks.towers": towers.Config,
    "experiments.spaceship": spaceship.Config,
}
"""The tyro-parsed modules the session runs, by module name (plus ``benchmarks.envs``)."""
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", ">", ">>", "2>&1"}


def session_commands(script: str) -> list[tuple[str, list[str]]]:
    """``(module, arguments)`` of every ``python3 -m benchmarks.* / experiments.spaceship``.

    Args:
        script: the shell script's text; backslash-newline continuations are joined first.
    """
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i in range(len(words) - 2):
            module = words[i + 2]
            if words[i : i + 2] != ["python3", "-m"]:
                continue
            if module.startswith("benchmarks.") or module == "experiments.spaceship":
                args = []
                for word in words[i + 3 :]:
                    if word in SHELL_OPERATORS:
                        break
                    args.append(word)
                commands.append((module, args))
    return commands


COMMANDS = session_commands(SESSION.read_text())


def test_session_commands_are_found():
    expected = [*PARSED, "benchmarks.envs", "benchmarks.planners"]  # planners: twice
    assert sorted(module for module, _ in COMMANDS) == sorted(expected)


def test_session_commands_join_continuations():
    script = "step 5 python3 -m benchmarks.agents --steps 3 \\\n    --host-env-counts 1 | tee log\n"
    assert session_commands(script) == [
        ("benchmarks.agents", ["--steps", "3", "--host-env-counts", "1"])
    ]


@pytest.mark.parametrize(("module", "args"), COMMANDS, ids=[m for m, _ in COMMANDS])
def test_session_arguments_parse(module: str, args: list[str]):
    if module == "benchmarks.envs":
        parser = envs.build_parser()
        parsed, default = parser.parse_args(args), parser.parse_args([])
    else:
        parsed, default = tyro.cli(PARSED[module], args=args), PARSED[module]()
    assert (parsed != default) == bool(args), f"{module} {args} parsed to its defaults"


def test_session_flags_reach_the_config():
    by_module = dict(COMMANDS)
    parsed = tyro.cli(agents.Config, args=by_module["benchmarks.agents"])
    assert parsed.device_env_counts[-1] == 262_144 and parsed.host_env_counts == (1,)
    assert not tyro.cli(poke.Config, args=by_module["benchmarks.poke"]).simulate
    assert not tyro.cli(towers.Config, args=by_module["benchmarks.towers"]).generation
    assert tyro.cli(spaceship.Config, args=by_module["experiments.spaceship"]).full
    runs = [tyro.cli(planners.Config, args=a) for m, a in COMMANDS if m == "benchmarks.planners"]
    assert [run.gbp_only for run in runs] == [False, True]


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row printed in ``text`` (separator rows left out)."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not line.startswith("|-")
    ]


def printed_row(text: str, first_cells: list[str]) -> list[str]:
    """The one printed table row that starts with ``first_cells`` (compared stripped)."""
    first_cells = [cell.strip() for cell in first_cells]
    found = [row for row in table_rows(text) if row[: len(first_cells)] == first_cells]
    assert len(found) == 1, f"{first_cells} printed {len(found)} times in\n{text}"
    return found[0]


def assert_rates(rates: list[float]) -> None:
    assert rates and all(math.isfinite(rate) and rate > 0 for rate in rates), rates


def one_call_rate(run, repeats: int = 3, min_seconds: float = 0.5) -> float:
    """``common.best_rate`` cut to a single call of ``run``."""
    return common.best_rate(run, repeats=1, min_seconds=0.0)


def test_envs_main_tiny(monkeypatch, capsys):
    monkeypatch.setattr(envs, "best_rate", one_call_rate)
    rows = envs.main(["--vector-sizes", "1", "--rollout-sizes", "16"])
    text = capsys.readouterr().out
    assert [n for _, n, _ in rows] == [1, 8, 1, 16, 16, 16]
    assert_rates([rate for _, _, rate in rows])
    base = rows[0][2]
    for name, n, rate in rows:
        ratio = float(printed_row(text, [name, str(n)])[3])
        assert ratio == pytest.approx(rate / base, abs=0.051)
    assert "GPU target" in text


def test_agents_main_tiny(monkeypatch, capsys):
    monkeypatch.setattr(agents, "time_device", functools.partial(agents.time_device, min_seconds=0))
    config = agents.Config(
        device_env_counts=(1,), host_env_counts=(1,), steps=50, host_steps=20, seed_counts=(2,),
        cnn_batch=0,
    )  # fmt: skip
    rows = agents.main(config)
    text = capsys.readouterr().out
    assert [(r["path"], r["num_envs"]) for r in rows] == [
        ("host, SyncVectorEnv", 1),
        ("host, jitted", 1),
        ("device", 1),
        ("device, 2 seeds at once (steps of all)", 16),
    ]
    assert_rates([r["steps_per_s"] for r in rows])
    host = rows[0]["steps_per_s"]
    for row in rows[:3]:
        cells = printed_row(text, [row["path"], "1"])
        assert float(cells[3].rstrip("x")) == pytest.approx(row["steps_per_s"] / host, abs=0.051)
        sb3 = row["steps_per_s"] / agents.SB3_REFERENCE[1]
        assert float(cells[4].rstrip("x")) == pytest.approx(sb3, abs=0.051)
    cells = printed_row(text, [rows[3]["path"], "16"])  # no host row at 16 envs in this run
    assert cells[3] == "-"
    sb3 = rows[3]["steps_per_s"] / agents.SB3_REFERENCE[16]
    assert float(cells[4].rstrip("x")) == pytest.approx(sb3, abs=0.051)
    assert f"best device throughput: {rows[2]['steps_per_s']:,.0f} steps/s at 1 envs" in text


@pytest.mark.slow  # about 14 s: it compiles four CNN training programs
def test_agents_pixel_network_rows(capsys):
    rows = agents.cnn_rows(agents.Config(cnn_batch=2, cnn_steps=2))
    text = capsys.readouterr().out
    assert [(r["network"], r["where"]) for r in rows] == [
        ("nn.Conv (lax.conv)", "a jitted step per call"),
        ("nn.Conv (lax.conv)", "2 steps in one lax.scan"),
        ("PatchConv", "a jitted step per call"),
        ("PatchConv", "2 steps in one lax.scan"),
    ]
    assert_rates([r["images_per_s"] for r in rows])
    for row in rows:
        cells = printed_row(text, [row["network"], row["where"]])
        ratio = row["images_per_s"] / rows[1]["images_per_s"]
        assert float(cells[3].rstrip("x")) == pytest.approx(ratio, abs=0.051)


@pytest.mark.slow  # about 20 s: it compiles four GBP planners and CEM, which no flag skips
def test_planners_main_tiny(capsys):
    config = planners.Config(repeats=1, pets=False, hidden_sizes=(8,), gbp_batch=3)
    rows = planners.main(config)
    text = capsys.readouterr().out
    assert [name for name, _ in rows] == [
        "GBP learned model (experiment config)",
        "GBP learned model (experiment config, not unrolled)",
        "GBP learned model (H15 N15 K4)",
        "GBP learned model (experiment config, per action in a batch of 3)",
        "GBP true dynamics (experiment config)",
        "DISTGBP 1 env",
        "DISTGBP batched (per action, 1024)",
        "CEM learned model (experiment config)",
    ]
    assert_rates([seconds for _, seconds in rows])
    baseline = rows[0][1]
    for name, seconds in rows:
        cells = printed_row(text, [name])
        assert float(cells[1]) == pytest.approx(seconds * 1e3, abs=6e-5)
        assert float(cells[2]) == pytest.approx(seconds / baseline, abs=6e-5)


@pytest.mark.slow  # about 10 s: three GBP planners
def test_planners_gbp_only_with_host_cpu_row(capsys):
    config = planners.Config(
        repeats=1, pets=False, hidden_sizes=(8,), gbp_batch=0, gbp_only=True, host_cpu_row=True
    )
    rows = planners.main(config)
    text = capsys.readouterr().out
    names = [name for name, _ in rows]
    assert names[:3] == [
        "GBP learned model (experiment config)",
        "GBP learned model (experiment config, not unrolled)",
        "GBP learned model (H15 N15 K4)",
    ]
    assert names[3:] == [planners.GBP_HOST_CPU]  # no batched row, no DISTGBP or CEM
    assert_rates([seconds for _, seconds in rows])
    assert f"{planners.GBP_HOST_CPU}: {rows[3][1] * 1e3:.4f} ms/action" in text
    assert "DISTGBP" not in text


@pytest.mark.parametrize("field", [{"repeats": 0}, {"gbp_batch": -1}])
def test_planners_config_refuses_bad_values(field):
    with pytest.raises(ValueError, match=next(iter(field))):
        planners.Config(**field)


def test_poke_main_tiny(capsys):
    config = poke.Config(pokes=2, image_size=16, features=2, batch_size=2, steps=2, samples=4)
    rows = poke.main(config)
    text = capsys.readouterr().out
    groups = ["simulate", "simulate", "train EEN", "train EEN", "predict", "predict"]
    assert [group for group, _, _ in rows] == groups
    assert_rates([rate for _, _, rate in rows])
    for group, name, rate in rows:
        base = next(r for g, _, r in rows if g == group)
        cells = printed_row(text, [group, name])
        assert float(cells[2]) == pytest.approx(rate, abs=0.051)
        assert float(cells[3]) == pytest.approx(rate / base, abs=0.0051)


def check_towers_tables(tables: dict[str, list[tuple[str, float]]], text: str) -> None:
    for title, rows in tables.items():
        assert f"### {title}" in text
        assert_rates([rate for _, rate in rows])
        for name, rate in rows:
            ratio = printed_row(text, [name])[2]
            assert float(ratio.rstrip("x")) == pytest.approx(rate / rows[0][1], abs=0.0051)


@pytest.mark.slow  # about 25 s: it compiles three 64x64 PhysNet trainers, whatever the sizes
def test_towers_main_tiny_training(capsys):
    config = towers.Config(generation=False, train_examples=4, batch_size=2, repeats=1)
    tables = towers.main(config)
    text = capsys.readouterr().out
    assert list(tables) == ["Training, 64x64 images, batch 2"]
    assert [name for name, _ in tables["Training, 64x64 images, batch 2"]] == [
        "classifier, loop of jitted steps",
        "PhysNet, loop of jitted steps",
        "PhysNet, one jitted lax.scan epoch",
    ]
    check_towers_tables(tables, text)


def test_towers_main_tiny_generation(capsys):
    config = towers.Config(towers=4, parallel_towers=8, workers=1, training=False)
    tables = towers.main(config)
    text = capsys.readouterr().out
    assert list(tables) == ["Tower generation", "Soft initial images, per CPU second"]
    assert len(tables["Tower generation"]) == 7
    check_towers_tables(tables, text)
    assert "labelled towers/s" in text
