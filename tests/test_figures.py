"""docs/make_figures.py draws the README's figures from the simulated patients it names."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import jax
import matplotlib.image
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.cohort.rollout import clinical_course
from sepsisim_jax.physiology.reynolds2006 import SCENARIOS
from sepsisim_jax.policies import POLICIES, heuristic_policy

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "make_figures.py"
ENV_ID = "SepsisManagement-v0"
PATIENTS = 16


def _load_script():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def drawn(script):
    return script.figures(PATIENTS, seed=0)


def _lines(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), float) for line in ax.get_lines()}


def test_trajectory_draws_the_heuristic_patient_with_its_outcome(drawn):
    env, params = sepsisim_jax.make(ENV_ID, severity="medium")
    course = clinical_course(env, params, heuristic_policy(env), jax.random.key(0), n_patients=1)
    figure = drawn["trajectory.png"]
    length, died = int(course.length[0]), bool(course.died[0])
    outcome = f"died at hour {length}" if died else f"alive at hour {length}"
    assert figure.get_suptitle() == f"{ENV_ID}, medium, heuristic ({outcome})"
    for ax, (field, label) in zip(figure.axes[:5], plotting.SIGNALS, strict=True):
        assert ax.get_ylabel() == label
        np.testing.assert_array_equal(_lines(ax)[label], np.asarray(getattr(course, field))[:, 0])
        deaths = [line for line in ax.get_lines() if line.get_marker() == "x"]
        assert [line.get_xdata()[0] for line in deaths] == ([length] if died else [])
    treatment = figure.axes[5]
    heights = [bar.get_height() for bar in treatment.patches]
    np.testing.assert_array_equal(heights[:length], np.asarray(course.fluid_ml)[:length, 0])
    assert treatment.get_xlabel() == "hours since admission"


def test_cohort_draws_each_baseline_on_the_same_hard_patients(drawn):
    env, params = sepsisim_jax.make(ENV_ID, severity="hard")
    figure = drawn["cohort.png"]
    assert figure.get_suptitle().startswith(f"{ENV_ID}, hard, {PATIENTS} patients each")
    map_lines, survival = _lines(figure.axes[0]), _lines(figure.axes[8])
    for name, make in POLICIES.items():
        course = clinical_course(env, params, make(env), jax.random.key(0), PATIENTS)
        median = np.nanmedian(np.asarray(course.map_mmhg, float), axis=1)
        np.testing.assert_allclose(map_lines[name], median, rtol=1e-6)
        alive = 1.0 - float(np.mean(course.died))
        np.testing.assert_allclose(survival[f"{name} ({alive:.0%})"][-1], alive)
    assert figure.axes[8].get_ylabel() == "fraction alive"


@pytest.mark.slow
def test_main_writes_every_readme_image_at_the_committed_size(script, tmp_path):
    assert script.main(["--out", str(tmp_path), "--patients", str(PATIENTS)]) == 0
    readme = (ROOT / "README.md").read_text()
    for name in ("trajectory.png", "cohort.png"):
        assert f"docs/figures/{name}" in readme
        fresh = matplotlib.image.imread(tmp_path / name)
        committed = matplotlib.image.imread(ROOT / "docs" / "figures" / name)
        assert fresh.shape == committed.shape


def test_reynolds_fates_draws_each_curated_scenario_to_its_fate(script, tmp_path):
    times, courses = script.reynolds_courses()
    figure = script.reynolds_fates()
    assert figure.get_suptitle().startswith("Reduced acute inflammatory response model, Reynolds")
    assert [ax.get_ylabel() for ax in figure.axes] == [lab for _, lab in script.REYNOLDS_PANELS]
    for ax, (field, _) in zip(figure.axes, script.REYNOLDS_PANELS, strict=True):
        lines = {line.get_label().split(" (")[0]: line for line in ax.get_lines()}
        for name in SCENARIOS:
            np.testing.assert_array_equal(lines[name].get_xdata(), times[1:])
            np.testing.assert_array_equal(
                lines[name].get_ydata(), getattr(courses[name], field)[1:]
            )
    # Health clears P and D; aseptic death clears P but keeps D; septic death keeps both.
    final = {name: (courses[name].pathogen[-1], courses[name].damage[-1]) for name in SCENARIOS}
    assert final["health"][0] < 1e-3 and final["health"][1] < 0.1
    assert final["aseptic death"][0] < 1e-3 and abs(final["aseptic death"][1] - 17.4) < 0.5
    assert abs(final["septic death"][0] - 4.94) < 0.1 and abs(final["septic death"][1] - 17.5) < 0.5
    figure.savefig(tmp_path / "reynolds_fates.png", dpi=script.DPI)
    fresh = matplotlib.image.imread(tmp_path / "reynolds_fates.png")
    committed = matplotlib.image.imread(ROOT / "docs" / "figures" / "reynolds_fates.png")
    assert fresh.shape == committed.shape


def test_the_figure_script_rejects_an_empty_cohort(tmp_path):
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--patients", "0"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "--patients must be >= 1, got 0" in run.stderr
