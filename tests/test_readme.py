"""The README, the project's front page: its example runs as written, its test command is the one
CI runs, and it stays a front page that links to the documentation (``tests/test_docs.py`` runs
the documentation's examples)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import sepsisim_jax

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)


def test_quick_start_runs_and_prints_what_it_says():
    """Every example runs; a line commented ``# prints: X`` must print X."""
    blocks = _python_blocks()
    assert blocks, "the README has no example"
    namespace: dict = {}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    expected = re.findall(r"# prints: (.+)$", "\n".join(blocks), re.M)
    assert expected, "no example states its output"
    printed = output.getvalue().splitlines()
    for line in expected:
        assert line.strip() in printed, (line, printed)


def test_the_test_command_is_what_ci_runs():
    (command,) = [b.strip() for b in _bash_blocks() if "pytest" in b]
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r'pip install -e "\.\[[\w,]+\]"', command).group(0)
    assert install in ci.splitlines(), install
    assert command.endswith("python -m pytest") and "python -m pytest" in ci
    assert "mkdocs build --strict" in ci


def test_it_is_a_front_page_that_links_to_existing_pages():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_LINES
    for env_id in sepsisim_jax.ENV_IDS:
        assert f"`{env_id}`" in text, env_id
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        assert (ROOT / link).exists(), link
