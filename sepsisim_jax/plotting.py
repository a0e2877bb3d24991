"""Figures (matplotlib). Functions take arrays or results and return the figure.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: nothing is shown or
saved implicitly and no global backend state is touched. In Jupyter, ``%matplotlib inline``
displays them; elsewhere call ``figure.savefig``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sepsisim_jax.envs.clinical import DEATH_DAMAGE
from sepsisim_jax.envs.features import FEATURES
from sepsisim_jax.rollout import Course

MAP_TARGET = (65.0, 90.0)  # mmHg: Surviving Sepsis Campaign target (65) to the reward's upper edge
LACTATE_LINES = (2.0, 4.0)  # mmol/L: normal upper limit and the reward's penalty threshold
URINE_TARGET = 0.5  # mL/kg/h: adequate urine output (the reward's bonus threshold)

# (Course field, axis label) of the state signals, in panel order.
SIGNALS: tuple[tuple[str, str], ...] = tuple(
    (name, FEATURES[name].axis_label)
    for name in ("map_mmhg", "lactate", "urine_output", "tissue_damage", "sofa")
)
POLICY_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def learning_curve(
    env_steps: np.ndarray,
    returns: np.ndarray,
    baselines: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """Mean episode return against env-steps: one line per seed, their mean, baselines flat.

    Args:
        env_steps: ``(n_updates,)`` env-steps collected after each update.
        returns: ``(n_seeds, n_updates)`` mean return of the episodes ended in each update
            (NaN where none ended).
        baselines: horizontal reference lines, e.g. ``{"heuristic": 61.2, "random": 44.1}``.
    """
    returns = np.atleast_2d(np.asarray(returns, dtype=float))
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i, seed_returns in enumerate(returns):
        ax.plot(
            env_steps,
            seed_returns,
            color="tab:blue",
            alpha=0.3,
            lw=1,
            label="PPO, each seed" if i == 0 else None,
        )
    if len(returns) > 1:
        ax.plot(
            env_steps,
            np.nanmean(returns, axis=0),
            color="tab:blue",
            lw=2,
            label="PPO, mean over seeds",
        )
    colours = iter(["tab:orange", "tab:green", "tab:red", "tab:purple"])
    for name, value in (baselines or {}).items():
        ax.axhline(value, ls="--", color=next(colours), label=name)
    ax.set_xlabel("env-steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _reference_lines(ax: Axes, field: str) -> None:
    """The clinical thresholds of a signal's panel."""
    if field == "map_mmhg":
        ax.axhspan(*MAP_TARGET, color="tab:green", alpha=0.12, label="target 65-90 mmHg")
        ax.axhline(MAP_TARGET[0], color="tab:green", lw=1)
    elif field == "lactate":
        for value, style in zip(LACTATE_LINES, (":", "--"), strict=True):
            ax.axhline(value, color="grey", ls=style, lw=1, label=f"{value:g} mmol/L")
    elif field == "urine_output":
        ax.axhline(URINE_TARGET, color="grey", ls="--", lw=1, label=f"{URINE_TARGET} mL/kg/h")
    elif field == "tissue_damage":
        ax.axhline(DEATH_DAMAGE, color="tab:red", ls="--", lw=1, label=f"death ({DEATH_DAMAGE})")


def _grid(rows: int, cols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
    for ax in axes[-1]:
        ax.set_xlabel("hours since admission")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    return fig, list(axes.flat)


def patient_trajectory(course: Course, patient: int = 0, title: str = "") -> Figure:
    """One patient's episode: MAP, lactate, urine, tissue damage, SOFA and the treatments.

    Args:
        course: from :func:`sepsisim_jax.rollout.clinical_course`.
        patient: which patient (column) of the course to draw.
        title: figure title; the outcome (death hour or survival) is appended.

    The treatment panel shows each hour's fluid bolus (bars, mL), the vasopressor dose
    (step line, mcg/kg/min, right axis) and the hour the antibiotic was given.
    """
    n_patients = np.shape(course.map_mmhg)[1]
    if not 0 <= patient < n_patients:
        raise ValueError(f"patient must be in [0, {n_patients}), got {patient}")
    column = {name: np.asarray(value)[:, patient] for name, value in _fields(course).items()}
    hours = np.arange(len(column["map_mmhg"]))
    fig, axes = _grid(3, 2, 11, 8)
    for ax, (field, label) in zip(axes, SIGNALS, strict=False):
        _reference_lines(ax, field)
        ax.plot(hours, column[field], color="black", lw=1.5, marker=".", ms=3, label=label)
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize="small")
    _treatment_panel(axes[5], hours, column)
    length = int(np.asarray(course.length)[patient])
    if bool(np.asarray(course.died)[patient]):
        outcome = f"died at hour {length}"
        for ax, (field, _) in zip(axes, SIGNALS, strict=False):
            ax.plot(length, column[field][length], "x", color="tab:red", ms=9, mew=2)
    else:
        outcome = f"alive at hour {length}"
    fig.suptitle(f"{title} ({outcome})" if title else outcome)
    return fig


def _treatment_panel(ax: Axes, hours: np.ndarray, column: dict[str, np.ndarray]) -> None:
    ax.bar(
        hours + 0.5,
        column["fluid_ml"],
        width=0.8,
        color="tab:blue",
        alpha=0.6,
        label="fluid bolus (mL)",
    )
    ax.set_ylabel("fluid bolus (mL)")
    dose_ax = ax.twinx()
    # The dose at row t was given during hour t - 1: draw it as a step over that hour.
    dose_ax.step(
        hours,
        column["vasopressor_dose"],
        where="pre",
        color="tab:purple",
        label="vasopressor (mcg/kg/min)",
    )
    dose_ax.set_ylabel("vasopressor (mcg/kg/min)")
    dose_ax.set_ylim(bottom=0.0)
    active = np.flatnonzero(column["antibiotic_active"] > 0.5)
    if active.size:
        given = max(int(active[0]) - 1, 0)
        ax.axvline(given, color="tab:green", lw=2, label=f"antibiotic (hour {given})")
    handles = ax.get_legend_handles_labels()
    more = dose_ax.get_legend_handles_labels()
    ax.legend(handles[0] + more[0], handles[1] + more[1], loc="upper right", fontsize="small")
    ax.set_title("treatment")


def _fields(course: Course) -> dict[str, np.ndarray]:
    names = [field for field, _ in SIGNALS]
    names += ["vasopressor_dose", "antibiotic_active", "fluid_ml"]
    return {name: np.asarray(getattr(course, name), dtype=float) for name in names}


def _bands(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Quantiles over patients (axis 1) of each hour, ignoring NaN; NaN for empty hours."""
    out = np.full((len(quantiles), values.shape[0]), np.nan)
    filled = ~np.all(np.isnan(values), axis=1)
    if filled.any():
        out[:, filled] = np.nanquantile(values[filled], quantiles, axis=1)
    return out


def _row_means(values: np.ndarray) -> np.ndarray:
    """Mean over patients (axis 1) of each hour, ignoring NaN; NaN for empty hours."""
    counts = np.sum(~np.isnan(values), axis=1)
    sums = np.nansum(values, axis=1)
    return np.divide(sums, counts, out=np.full(len(counts), np.nan), where=counts > 0)


def survival_curve(course: Course) -> np.ndarray:
    """Fraction of patients alive after each hour (row 0: admission, all alive)."""
    died = np.asarray(course.died)
    length = np.asarray(course.length)
    hours = np.arange(np.shape(course.map_mmhg)[0])
    death_hour = np.where(died, length, np.iinfo(np.int32).max)
    return (death_hour[None, :] > hours[:, None]).mean(axis=1)


def cohort(courses: Mapping[str, Course], title: str = "") -> Figure:
    """Median and 10-90% band of each signal per policy, with survival.

    Args:
        courses: policy name -> :func:`sepsisim_jax.rollout.clinical_course` of its cohort
            (one colour each).
        title: figure title.

    Quantiles at each hour are over the patients still in their episode then; the survival
    panel gives the fraction alive.
    """
    if not courses:
        raise ValueError("cohort needs at least one course")
    if len(courses) > len(POLICY_COLOURS):
        raise ValueError(f"at most {len(POLICY_COLOURS)} courses, got {len(courses)}")
    fig, axes = _grid(3, 3, 13, 9)
    panels = [
        *SIGNALS,
        ("fluid_ml", "fluid bolus (mL/h)"),
        ("vasopressor_dose", "vasopressor (mcg/kg/min)"),
    ]
    for ax, (field, _) in zip(axes, SIGNALS, strict=False):
        _reference_lines(ax, field)
    for colour, (name, course) in zip(POLICY_COLOURS, courses.items(), strict=False):
        fields = _fields(course)
        hours = np.arange(fields["map_mmhg"].shape[0])
        for ax, (field, _) in zip(axes, panels, strict=False):
            low, median, high = _bands(fields[field], (0.1, 0.5, 0.9))
            ax.fill_between(hours, low, high, color=colour, alpha=0.2, lw=0)
            ax.plot(hours, median, color=colour, lw=1.8, label=name)
        given = _row_means(fields["antibiotic_active"])
        axes[7].plot(hours, given, color=colour, lw=1.8, label=name)
        alive = survival_curve(course)
        axes[8].step(
            hours, alive, where="post", color=colour, lw=1.8, label=f"{name} ({alive[-1]:.0%})"
        )
    for ax, (_, label) in zip(axes, panels, strict=False):
        ax.set_ylabel(label)
    axes[7].set_ylabel("antibiotic given (fraction)")
    axes[7].set_ylim(-0.02, 1.02)
    axes[8].set_ylabel("fraction alive")
    axes[8].set_ylim(-0.02, 1.02)
    axes[8].set_title("survival")
    axes[0].legend(loc="best", fontsize="small")
    axes[8].legend(loc="lower left", fontsize="small")
    fig.suptitle(
        f"{title}: median and 10-90% of patients" if title else "median and 10-90% of patients"
    )
    return fig


def throughput(steps_per_second: Mapping[str, float], reference: str) -> Figure:
    """Horizontal bars of env-steps/s (log scale), each labelled with its ratio to ``reference``."""
    if reference not in steps_per_second:
        raise ValueError(f"reference {reference!r} is not among {list(steps_per_second)}")
    names = list(steps_per_second)
    rates = np.array([steps_per_second[n] for n in names], dtype=float)
    base = steps_per_second[reference]
    fig = Figure(figsize=(8, 0.6 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    colours = ["grey" if n == reference else "tab:blue" for n in names]
    ax.barh(names, rates, color=colours)
    for y, rate in enumerate(rates):
        ax.text(rate, y, f" {rate:,.0f}/s  ({rate / base:,.0f}x)", va="center", fontsize="small")
    ax.set_xscale("log")
    ax.set_xlim(right=rates.max() * 30)
    ax.invert_yaxis()
    ax.set_xlabel("env-steps per second (log scale)")
    ax.grid(axis="x", alpha=0.3)
    return fig
