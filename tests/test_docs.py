"""The documentation site (``docs/``, ``mkdocs.yml``): its examples run as written, its
generated tables render, and every page and module is in it.

Each page's ```python blocks run in order in one namespace, as a reader would paste them. A
line ``# prints: X`` after a statement means the page prints the line X. A block may end with
``# SomeError: message`` under its last statement, which must raise that. A block is skipped
only with a first line ``# not run: REASON`` for a reason of :data:`NOT_RUN`: other tests cover
them (``tests/adapters/test_sb3.py`` runs the stable-baselines3 blocks as written,
``tests/cohort/test_multidevice.py`` runs a two-process ``jax.distributed`` cohort).
``mkdocs build --strict`` itself runs in ``.ci/run``.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import io
import pkgutil
import re
from pathlib import Path

import pytest

import sepsisim_jax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))
FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)
NOT_RUN = {
    "needs stable-baselines3": "tests/adapters/test_sb3.py",
    "needs several processes (jax.distributed)": "tests/cohort/test_multidevice.py",
}
PRINTS = re.compile(r"# prints: (.+)$", re.M)
RAISES = re.compile(r"^# (\w+Error): (.+)$")
# Modules that are not documented on their own: private ones, and the old path kept for
# compatibility (sepsisim_jax.gymnasium_adapter is sepsisim_jax.adapters.gymnasium).
UNDOCUMENTED = re.compile(r"(^|\.)_|^sepsisim_jax\.gymnasium_adapter$")


def python_blocks(page: str) -> list[str]:
    """The ```python blocks of ``docs/<page>``, in order, skipped ones included."""
    text = (DOCS / page).read_text()
    blocks = []
    for indent, body in FENCE.findall(text):
        assert not indent, f"{page}: an indented ```python block (put examples at top level)"
        blocks.append(body)
    return blocks


def _not_run_reason(block: str) -> str | None:
    first = block.splitlines()[0] if block.strip() else ""
    match = re.fullmatch(r"# not run: (.+)", first.strip())
    return match.group(1) if match else None


def _run_page(page: str) -> tuple[dict, list[str]]:
    """Run the page's blocks in one namespace; return it and the printed lines."""
    namespace: dict = {"__name__": f"docs_{Path(page).stem}"}
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        for block in python_blocks(page):
            if _not_run_reason(block) is not None:
                continue
            lines = block.rstrip("\n").splitlines()
            raises = RAISES.fullmatch(lines[-1])
            if raises is None:
                exec(compile(block, f"docs/{page}", "exec"), namespace)
                continue
            *before, statement, _ = lines
            exec(compile("\n".join(before), f"docs/{page}", "exec"), namespace)
            error = getattr(builtins, raises.group(1))
            with pytest.raises(error, match=re.escape(raises.group(2))):
                exec(compile(statement, f"docs/{page}", "exec"), namespace)
    return namespace, output.getvalue().splitlines()


def _pages_with_code() -> list[str]:
    return [page for page in PAGES if python_blocks(page)]


@pytest.mark.parametrize("page", _pages_with_code())
def test_page_examples_run_and_print_what_they_say(page):
    _, printed = _run_page(page)
    for block in python_blocks(page):
        if _not_run_reason(block) is None:
            for line in PRINTS.findall(block):
                assert line.strip() in printed, (line, printed)


@pytest.mark.parametrize("page", PAGES)
def test_skipped_examples_are_only_those_other_tests_run(page):
    for block in python_blocks(page):
        reason = _not_run_reason(block)
        assert reason is None or reason in NOT_RUN, (page, reason, list(NOT_RUN))


def test_raising_examples_state_the_statement_and_the_error():
    """A ``# SomeError: ...`` line stands only last in its block, under one statement."""
    for page in PAGES:
        for block in python_blocks(page):
            lines = block.rstrip("\n").splitlines()
            for i, line in enumerate(lines):
                if RAISES.fullmatch(line):
                    assert i == len(lines) - 1 and i > 0, (page, line)
                    assert not lines[i - 1].startswith((" ", "#")), (page, lines[i - 1])


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_tables_render_and_name_every_declaration():
    """Every marker of every page names a table; the tables list every task's observed
    features, info keys and action components and every model's own info features."""
    hooks = _hooks()
    rendered = ""
    for page in PAGES:
        text = (DOCS / page).read_text()
        out = hooks.render(text)
        assert not hooks.MARKER.search(out), page
        rendered += out
    for task in sepsisim_jax.envs.TASKS:
        names = (*task.observation_names, *task.info_names, *(a.name for a in task.actions))
        for name in names:
            assert f"| `{name}` |" in rendered, (task.task_name, name)
    for model in sepsisim_jax.physiology.MODELS.values():
        for feature in model.info_features:
            assert f"| `{feature.name}` |" in rendered, (model.version, feature.name)
    for env_id in sepsisim_jax.env_ids():
        assert f"| `{env_id}` |" in rendered, env_id
    with pytest.raises(ValueError, match="unknown table"):
        hooks.render("<!-- table: nonsense -->")


def test_every_page_is_in_the_navigation_and_every_module_in_the_reference():
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s*- (?:[^:\n]+: )?(\S+\.md)$", config, re.M))
    assert nav == set(PAGES), (sorted(set(PAGES) - nav), sorted(nav - set(PAGES)))
    documented = set()
    for page in PAGES:
        documented |= set(re.findall(r"^::: (\S+)$", (DOCS / page).read_text(), re.M))
    modules = {
        info.name
        for info in pkgutil.walk_packages(sepsisim_jax.__path__, "sepsisim_jax.")
        if not UNDOCUMENTED.search(info.name)
    }
    assert modules <= documented, sorted(modules - documented)
