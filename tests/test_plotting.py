"""Figures: the expected panels, labelled lines and data, from small hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from sepsisim_jax import plotting
from sepsisim_jax.cohort.rollout import Course

NAN = np.nan


def make_course(n_hours: int, lengths: list[int], died: list[bool], seed: int = 0) -> Course:
    """A course of len(lengths) patients with random signals, NaN after each episode."""
    rng = np.random.default_rng(seed)
    n = len(lengths)
    shape = (n_hours + 1, n)
    rows = np.arange(n_hours + 1)[:, None]
    ended = rows > np.asarray(lengths)[None, :]  # states: rows 0..length are filled
    hour_ended = rows >= np.asarray(lengths)[None, :]  # treatments: rows 0..length-1

    def state(low: float, high: float) -> np.ndarray:
        return np.where(ended, NAN, rng.uniform(low, high, shape))

    antibiotic = np.where(ended, NAN, (rows >= 2).astype(float) * np.ones(shape))
    return Course(
        map_mmhg=state(40, 100),
        lactate=state(1, 8),
        urine_output=state(0, 1),
        tissue_damage=state(0, 0.95),
        sofa=np.where(ended, NAN, rng.integers(0, 12, shape).astype(float)),
        vasopressor_dose=state(0, 0.5),
        antibiotic_active=antibiotic,
        fluid_ml=np.where(hour_ended, NAN, rng.uniform(0, 1000, shape)),
        reward=np.where(hour_ended, NAN, rng.normal(size=shape)),
        action=np.where(hour_ended[..., None], NAN, rng.uniform(0, 1, (*shape, 3))),
        length=np.asarray(lengths, np.int32),
        died=np.asarray(died),
    )


def labels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines()]


def test_patient_trajectory_draws_each_signal_its_thresholds_and_the_treatment():
    course = make_course(6, [3, 6], [True, False])
    fig = plotting.patient_trajectory(course, patient=0, title="demo")
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 7  # five signals, treatment, and the dose's right axis
    expected = [label for _, label in plotting.SIGNALS]
    assert [ax.get_ylabel() for ax in axes[:5]] == expected
    for ax, (field, label) in zip(axes[:5], plotting.SIGNALS, strict=True):
        line = next(line for line in ax.get_lines() if line.get_label() == label)
        np.testing.assert_array_equal(line.get_ydata(), np.asarray(getattr(course, field))[:, 0])
    assert "4 mmol/L" in labels(axes[1]) and "2 mmol/L" in labels(axes[1])
    assert "death (0.9)" in labels(axes[3])
    # Died after 3 hours: a red cross on each signal at hour 3, and the outcome in the title.
    assert fig.get_suptitle() == "demo (died at hour 3)"
    crosses = [line for line in axes[0].get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and crosses[0].get_xdata()[0] == 3
    treatment, dose = axes[5], axes[6]
    assert treatment.get_ylabel() == "fluid bolus (mL)"
    assert dose.get_ylabel() == "vasopressor (mcg/kg/min)"
    heights = [bar.get_height() for bar in treatment.patches]
    np.testing.assert_array_equal(heights[:3], np.asarray(course.fluid_ml)[:3, 0])
    # The antibiotic is active from row 2, so it was given at the start of hour 1.
    assert "antibiotic (hour 1)" in labels(treatment)
    survivor = plotting.patient_trajectory(course, patient=1)
    assert survivor.get_suptitle() == "alive at hour 6"


def test_patient_trajectory_rejects_a_patient_outside_the_course():
    course = make_course(4, [4, 4], [False, False])
    with pytest.raises(ValueError, match=r"patient must be in \[0, 2\), got 2"):
        plotting.patient_trajectory(course, patient=2)


def test_survival_curve_counts_deaths_at_their_hour():
    course = make_course(5, [2, 5, 4, 5], [True, False, True, False])
    np.testing.assert_allclose(plotting.survival_curve(course), [1.0, 1.0, 0.75, 0.75, 0.5, 0.5])


def test_cohort_draws_median_band_and_survival_per_policy():
    courses = {
        "random": make_course(6, [2, 6, 6, 6, 6], [True] + [False] * 4, seed=1),
        "heuristic": make_course(6, [6] * 5, [False] * 5, seed=2),
    }
    fig = plotting.cohort(courses, title="demo")
    axes = fig.axes
    assert len(axes) == 9
    assert [ax.get_ylabel() for ax in axes[:5]] == [label for _, label in plotting.SIGNALS]
    assert axes[8].get_ylabel() == "fraction alive"
    for ax in axes[:8]:
        assert [lab for lab in labels(ax) if not lab.startswith("_")][-2:] == list(courses)
    # The median line is the median over the patients still in their episode.
    random_map = np.asarray(courses["random"].map_mmhg)
    median = next(line for line in axes[0].get_lines() if line.get_label() == "random")
    np.testing.assert_allclose(median.get_ydata(), np.nanmedian(random_map, axis=1))
    survival = {line.get_label(): line.get_ydata() for line in axes[8].get_lines()}
    np.testing.assert_allclose(survival["random (80%)"], [1, 1, 0.8, 0.8, 0.8, 0.8, 0.8])
    np.testing.assert_allclose(survival["heuristic (100%)"], np.ones(7))
    assert len(axes[0].collections) == 2  # one 10-90% band per policy
    assert fig.get_suptitle() == "demo: median and 10-90% of patients"


def test_cohort_rejects_no_courses():
    with pytest.raises(ValueError, match="at least one course"):
        plotting.cohort({})


def test_learning_curve_draws_each_seed_their_mean_and_the_baselines():
    steps = np.array([100, 200, 300])
    returns = np.array([[1.0, 2.0, 3.0], [3.0, NAN, 5.0]])
    fig = plotting.learning_curve(steps, returns, {"heuristic": 2.5, "random": 0.5})
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert {"PPO, each seed", "PPO, mean over seeds", "heuristic", "random"} <= set(lines)
    np.testing.assert_allclose(lines["PPO, mean over seeds"].get_ydata(), [2.0, 2.0, 4.0])
    np.testing.assert_allclose(lines["heuristic"].get_ydata(), [2.5, 2.5])
    assert ax.get_xlabel() == "env-steps" and ax.get_ylabel() == "mean episode return"


def test_throughput_labels_each_bar_with_its_ratio_to_the_reference():
    rates = {"reference": 2_000.0, "ours": 5_000_000.0}
    fig = plotting.throughput(rates, reference="reference")
    (ax,) = fig.axes
    np.testing.assert_allclose([bar.get_width() for bar in ax.patches], list(rates.values()))
    texts = [text.get_text() for text in ax.texts]
    assert any("(2,500x)" in text for text in texts) and any("(1x)" in text for text in texts)
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="reference 'missing'"):
        plotting.throughput(rates, reference="missing")
