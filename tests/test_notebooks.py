"""The notebooks run top to bottom (small sizes) and are committed executed, without errors."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_cohorts", "03_train_ppo", "04_physiology", "05_v1", "06_offline"]
# Absolute paths of a developer's machine must not leak into committed outputs.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:tmp|home|root|Users|work)/")


def test_the_notebooks_are_the_six_documented_ones():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED
    readme = (ROOT / "README.md").read_text()
    for name in EXPECTED:
        assert f"notebooks/{name}.ipynb" in readme


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_committed_notebook_was_executed_in_order_without_errors(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    for cell in code:
        assert not any(out.output_type == "error" for out in cell.outputs), cell.source[:80]
    assert any("image/png" in out.get("data", {}) for cell in code for out in cell.outputs), (
        "no figure in the outputs"
    )
    assert not MACHINE_PATH.search(path.read_text()), "an absolute machine path in the outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_in_fast_mode(path, monkeypatch, tmp_path):
    """SEPSISIM_FAST=1 shrinks every size; the whole set runs in a few minutes on a CPU."""
    monkeypatch.setenv("SEPSISIM_FAST", "1")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, with the failing cell, on any error
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert any("image/png" in out.get("data", {}) for out in outputs)
