"""The README's Python examples run as written (the SB3 one only with ``-m slow`` and SB3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
OPTIONAL = ("stable_baselines3",)
"""Packages that examples import but worldplan does not depend on (their examples train long)."""
RANDOM_RETURN = -54.1
"""The random policy's mean spaceship return (the README's table, 100 episodes)."""


def _param(index: int, code: str):
    slow = any(name in code for name in OPTIONAL)
    return pytest.param(index, code, marks=[pytest.mark.slow] if slow else [], id=f"block{index}")


def test_readme_has_the_examples():
    """The blocks below are the README's: the env, JAX-core, planner and SB3 examples."""
    assert len(BLOCKS) >= 4, f"expected >= 4 python blocks in {README}, found {len(BLOCKS)}"
    assert any("gbp.make_policy" in code for code in BLOCKS)


@pytest.mark.parametrize(("index", "code"), [_param(i, c) for i, c in enumerate(BLOCKS)])
def test_readme_example_runs(index: int, code: str):
    """Each block runs in a fresh namespace, as a user would paste it into a script.

    The planner examples must also plan: the spaceship GBP's 95% CI lies above the random
    policy's mean, and the Pendulum GBP's return far above random torques'.
    """
    for name in OPTIONAL:
        if name in code:
            pytest.importorskip(name)
    namespace = {"__name__": "__readme__"}
    exec(compile(code, f"README.md python block {index}", "exec"), namespace)
    if "gbp.make_policy" in code:
        assert namespace["result"].ci95_low > RANDOM_RETURN, namespace["result"]
    if "Pendulum-v1" in code:  # random torques score -860 to -1740 from the README's starts
        assert namespace["episode_return"] > -600, namespace["episode_return"]
