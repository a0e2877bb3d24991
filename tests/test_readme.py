"""The README's Python examples run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_quick_start_runs_and_prints_what_it_says():
    """Every example runs; a line commented ``# prints: X`` must print X."""
    # The stable-baselines3 examples need the sb3 extra; tests/test_sb3.py runs them.
    blocks = [b for b in _python_blocks() if "ValueError" not in b and "stable_baselines3" not in b]
    namespace: dict = {}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert namespace["returns"].shape == (10_000,)
    expected = re.findall(r"# prints: (.+)$", "\n".join(blocks), re.M)
    assert expected, "no example states its output"
    printed = output.getvalue().splitlines()
    for line in expected:
        assert line.strip() in printed, (line, printed)


def test_parameter_example_raises_as_shown():
    (block,) = [b for b in _python_blocks() if "ValueError" in b]
    first, second = [line for line in block.splitlines() if line and not line.startswith("#")]
    namespace: dict = {}
    exec("import sepsisim_jax\n" + first, namespace)
    message = block.split("# ValueError: ")[1].strip()
    with pytest.raises(ValueError, match=re.escape(message)):
        exec(second, namespace)
