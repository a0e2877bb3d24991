"""docs/make_figures.py regenerates the README's figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "make_figures.py"
FIGURES = ("trajectory.png", "cohort.png")


def make_figures(out: Path, patients: int) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--patients", str(patients)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_figure_script_regenerates_every_readme_image(tmp_path):
    run = make_figures(tmp_path, 32)
    assert run.returncode == 0, run.stderr
    readme = (ROOT / "README.md").read_text()
    for name in FIGURES:
        assert f"docs/figures/{name}" in readme
        fresh = matplotlib.image.imread(tmp_path / name)
        committed = matplotlib.image.imread(ROOT / "docs" / "figures" / name)
        assert fresh.shape == committed.shape  # same figure size and resolution
        assert fresh.std() > 0.05  # not a blank canvas


def test_the_figure_script_rejects_an_empty_cohort(tmp_path):
    run = make_figures(tmp_path, 0)
    assert run.returncode == 2 and "--patients must be >= 1, got 0" in run.stderr
