"""Figures (matplotlib). Functions take arrays or results and return the figure.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: nothing is shown or
saved implicitly and no global backend state is touched. In Jupyter, ``%matplotlib inline``
displays them; elsewhere call ``figure.savefig``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sepsisim_jax.cohort.rollout import Course
from sepsisim_jax.envs.features import FEATURES
from sepsisim_jax.envs.rewards import DEATH_DAMAGE

if TYPE_CHECKING:  # annotations only: plotting does not import the planners
    from sepsisim_jax.counterfactual import PairedOutcomes
    from sepsisim_jax.envs.base import SepsisEnv
    from sepsisim_jax.planning import Plan
    from sepsisim_jax.trials import TrialResult

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
        course: from :func:`sepsisim_jax.cohort.rollout.clinical_course`.
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
        courses: policy name -> :func:`sepsisim_jax.cohort.rollout.clinical_course` of its cohort
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


def counterfactual_effects(pairs: Mapping[str, PairedOutcomes], title: str = "") -> Figure:
    """Per-patient effects of policy B over policy A, one row per comparison.

    Left: histogram of each patient's return under B minus under A, with the mean effect.
    Right: the survival 2x2 as bars, patients who survive under both policies, only under A,
    only under B, or under neither.

    Args:
        pairs: label -> :func:`sepsisim_jax.counterfactual.paired_outcomes` (same patients
            under A and B).
        title: figure title.
    """
    if not pairs:
        raise ValueError("counterfactual_effects needs at least one comparison")
    fig = Figure(figsize=(12, 2.8 * len(pairs) + 0.6), layout="constrained")
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    for (left, right), (label, pair) in zip(axes, pairs.items(), strict=True):
        effect = np.asarray(pair.return_effect, dtype=float)
        left.hist(effect, bins=60, color="tab:blue", alpha=0.8)
        left.axvline(0.0, color="grey", lw=1)
        left.axvline(effect.mean(), color="tab:red", lw=1.5, label=f"mean {effect.mean():+.1f}")
        left.set_xlabel(f"return under {pair.name_b} minus under {pair.name_a}")
        left.set_ylabel("patients")
        left.set_title(label, loc="left", fontsize="medium")
        left.legend(loc="upper left", fontsize="small")
        left.grid(alpha=0.3)
        counts = pair.survival_counts()
        names = {
            "both": "survive under both",
            "only_a": f"survive only under {pair.name_a}",
            "only_b": f"survive only under {pair.name_b}",
            "neither": "die under both",
        }
        values = np.array([counts[k] for k in names], dtype=float)
        colours = ["tab:green", "tab:orange", "tab:blue", "tab:red"]
        right.barh(list(names.values()), values, color=colours)
        total = values.sum()
        for y, n in enumerate(values):
            right.text(n, y, f" {n:,.0f} ({n / total:.1%})", va="center", fontsize="small")
        right.set_xlim(0, total * 1.3)
        right.invert_yaxis()
        right.set_xlabel("patients")
        right.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


ESTIMATOR_COLOURS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:grey",
)


def ope_errors(
    errors: Mapping[str, Mapping[str, Mapping[int, Sequence[float]]]],
    truth_se: Mapping[str, float] | None = None,
    title: str = "",
    columns: int = 3,
) -> Figure:
    """Off-policy estimates against the true value, by dataset size (log-log).

    One panel per case (e.g. environment and pair of policies), one line per estimator: the
    root mean square error over the independent datasets of each size; each dataset's
    absolute error is a faint point. Non-finite estimates (the estimator failed) are left
    out and counted in the legend.

    Args:
        errors: case -> estimator -> number of episodes -> errors (estimate minus the true
            value) of the independent datasets of that size.
        truth_se: case -> standard error of the true value, drawn dotted: smaller errors are
            not resolved.
        title: figure title.
        columns: panels per row.
    """
    if not errors:
        raise ValueError("ope_errors needs at least one case")
    rows = -(-len(errors) // columns)
    fig = Figure(figsize=(4.6 * columns, 3.6 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[len(errors) :]:
        ax.set_visible(False)
    for ax, (case, by_estimator) in zip(axes.flat, errors.items(), strict=False):
        for i, (estimator, by_size) in enumerate(by_estimator.items()):
            colour = ESTIMATOR_COLOURS[i % len(ESTIMATOR_COLOURS)]
            sizes = np.array(sorted(by_size), dtype=float)
            failed, rmse = 0, []
            for size in sorted(by_size):
                values = np.asarray(by_size[size], dtype=float)
                finite = values[np.isfinite(values)]
                failed += values.size - finite.size
                rmse.append(np.sqrt(np.mean(finite**2)) if finite.size else np.nan)
                shown = np.abs(finite[finite != 0])
                ax.scatter(np.full(shown.size, size), shown, s=8, color=colour, alpha=0.3)
            label = estimator if not failed else f"{estimator} ({failed} failed)"
            ax.plot(sizes, rmse, color=colour, marker="o", ms=4, lw=1.5, label=label)
        if truth_se and case in truth_se:
            ax.axhline(truth_se[case], color="black", ls=":", lw=1, label="se of the truth")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("episodes in the dataset")
        ax.set_ylabel("|estimate - true value| (RMSE line)")
        ax.set_title(case, loc="left", fontsize="medium")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="x-small", ncols=2)
    if title:
        fig.suptitle(title)
    return fig


def planned_schedule(plan: Plan, env: SepsisEnv, patient: int = 0, title: str = "") -> Figure:
    """One patient's plan from :func:`sepsisim_jax.planning.optimize_schedule`.

    Left: the return (the env's reward) of each optimisation step, the objective ascended
    (the smoothed return), and the compared policies' returns as horizontal lines. Then one
    panel per action component: the planned schedule hour by hour.

    Args:
        plan: the plan; ``env``: the environment it was planned in; ``patient``: which of its
            patients; ``title``: figure title.
    """
    n_patients = np.shape(plan.final_return)[0]
    if not 0 <= patient < n_patients:
        raise ValueError(f"patient must be in [0, {n_patients}), got {patient}")
    labels = [c.axis_label for c in env.actions]
    schedule = np.asarray(plan.schedule, dtype=float)[patient]
    fig = Figure(figsize=(4.2 * (1 + len(labels)), 3.6), layout="constrained")
    trace, *panels = fig.subplots(1, 1 + len(labels))
    returns = np.asarray(plan.returns, dtype=float)[:, patient]
    trace.plot(returns, color="black", lw=1.5, label="return")
    objective = np.asarray(plan.objective, dtype=float)[:, patient]
    trace.plot(objective, color="grey", lw=1, ls="--", label="objective (smoothed)")
    for colour, (name, values) in zip(POLICY_COLOURS, plan.comparison.items(), strict=False):
        trace.axhline(float(np.asarray(values)[patient]), color=colour, lw=1.2, label=name)
    trace.set_xlabel("gradient step")
    trace.set_ylabel("return over the horizon")
    trace.legend(loc="lower right", fontsize="small")
    trace.grid(alpha=0.3)
    hours = np.arange(schedule.shape[0])
    for i, (ax, label) in enumerate(zip(panels, labels, strict=True)):
        ax.step(hours, schedule[:, i], where="post", color="tab:blue", lw=1.5)
        ax.set_xlabel("hour")
        ax.set_ylabel(label)
        ax.set_ylim(env.action_low[i], env.action_high[i] * 1.02 + 1e-9)
        ax.grid(alpha=0.3)
    final = float(np.asarray(plan.final_return)[patient])
    heading = f"planned return {final:.1f}"
    fig.suptitle(f"{title}: {heading}" if title else heading)
    return fig


def trial_forest(result: TrialResult, title: str = "") -> Figure:
    """A virtual trial as a forest plot: each arm's mortality (left) and its risk difference
    against the reference arm (right), with their bootstrap intervals.

    Args:
        result: :func:`sepsisim_jax.trials.run_trial`'s result.
        title: figure title (default: the environment, the inclusion and the patients).
    """
    rows = result.rows
    fig = Figure(figsize=(10, 0.5 * len(rows) + 1.6), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    pct = round(100 * result.confidence)
    for ax, value, label in (
        (left, "mortality", "mortality"),
        (right, "risk_difference", f"risk difference vs {result.reference}"),
    ):
        centre = np.array([100 * r[value] for r in rows])
        low, high = (np.array([100 * r[f"{value}_ci"][i] for r in rows]) for i in (0, 1))
        ax.errorbar(centre, y, xerr=[centre - low, high - centre], fmt="o", color="tab:blue")
        ax.set_xlabel(f"{label} (%, {pct}% interval)")
        ax.grid(axis="x", alpha=0.3)
    right.axvline(0.0, color="grey", lw=1)
    left.set_yticks(y, [r["arm"] for r in rows])
    left.invert_yaxis()
    fig.suptitle(
        title
        or f"{result.env_id} ({result.severity}): {result.enrolled:,} of {result.screened:,} "
        f"patients, {result.inclusion}"
    )
    return fig
