"""The printed tables and the figure of the v1 calibration (``common`` is the benchmarks'
harness, on the path that ``calibration_v1.py`` sets)."""

from __future__ import annotations

from typing import Any

import numpy as np
from calibration_cohorts import (
    ANTIBIOTIC_HOURS,
    EPISODE_HOURS,
    HEURISTIC,
    MAX_FLUID,
    NONE,
    OTHER_EPISODES,
    POLICY_NAMES,
    RANDOM,
    SPREAD,
)
from calibration_sections import (
    HYPOTENSION_BINS,
    KINDS,
    KUMAR_LOSS_PER_HOUR,
    KUMAR_SURVIVAL_HOUR0,
)
from common import verdict
from matplotlib.figure import Figure

from sepsisim_jax.physiology.models import tier_point
from sepsisim_jax.text_table import Column, text_table


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _or_cell(fit: dict) -> str:
    if fit["odds_ratio"] is None:
        return "-"
    return f"{fit['odds_ratio']:.3f} ({fit['ci_low']:.3f}-{fit['ci_high']:.3f})"


def _quartiles(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _delay_table(rows: list[dict], kill_column: bool = False) -> str:
    cols: list[Column] = [("tier", "<7", lambda r: r["tier"])]
    if kill_column:
        cols.append(("kill/h", ">6", lambda r: f"{r['antibiotic_kill_per_h']:.1f}"))
    cols += [
        (f"h{h}", ">5", lambda r, h=h: f"{100 * r['survival_by_hour'][h]:.1f}")
        for h in ANTIBIOTIC_HOURS
    ]
    cols += [
        ("lost/h 0-6", ">10", lambda r: f"{100 * r['survival_lost_per_hour_0_6']:.2f}"),
        ("OR/h 0-12 (95% CI)", ">22", lambda r: _or_cell(r["odds_ratio_per_hour_0_12"])),
        ("OR/h 0-6", ">8", lambda r: _fmt(r["odds_ratio_per_hour_0_6"]["odds_ratio"], ".3f")),
    ]
    return text_table(rows, cols)


def print_delay(results: dict[str, Any], n: int) -> None:
    print(f"\n1. Antibiotic delay: SepsisManagement-v1, heuristic haemodynamics, {n:,} patients")
    print(
        f"survival at {EPISODE_HOURS} h (%) by antibiotic hour h; lost/h (Kumar 7.6); OR per hour"
    )
    print(_delay_table(results["antibiotic_delay"]))
    print("sensitivity (not the model's default): the same with a stronger antibiotic")
    print(_delay_table(results["antibiotic_delay_sensitivity"], kill_column=True))


def print_bolus(b: dict[str, Any]) -> None:
    print("\n2. 500 mL crystalloid over 30 min (1 L/h for 0.5 h), quasi-steady plasma volume")
    print(
        "typical D = median D at hour 12 of untreated medium patients = "
        f"{b['median_damage_hour_12']:.2f} (quartiles {_quartiles(b['damage_hour_12_quartiles'])})"
    )
    lines = [
        ("leak rate k(D) (1/h)", "leak_rate_at_d0_per_h", "leak_rate_at_typical_d_per_h", ".2f"),
        (
            "intravascular at end of infusion",
            "intravascular_fraction_end_of_infusion_d0",
            "intravascular_fraction_end_of_infusion_typical_d",
            ".0%",
        ),
        (
            "intravascular 30 min after its end",
            "intravascular_fraction_30min_after_d0",
            "intravascular_fraction_30min_after_typical_d",
            ".0%",
        ),
        (
            "MAP rise during infusion (mmHg), default params",
            "map_rise_1000ml_per_h_healthy",
            "map_rise_1000ml_per_h_typical",
            ".1f",
        ),
    ]
    cols: list[Column] = [
        ("quantity", "<48", lambda r: r[0]),
        ("D = 0", ">7", lambda r: format(b[r[1]], r[3])),
        ("typical D", ">9", lambda r: format(b[r[2]], r[3])),
    ]
    print(text_table(lines, cols))
    print(
        "cohort at hour 12, each patient's own parameters (quartiles): MAP rise "
        f"{_quartiles(b['map_rise_1000ml_per_h_cohort_quartiles'])} mmHg on a MAP of "
        f"{_quartiles(b['map_without_bolus_cohort_quartiles'])} mmHg"
    )
    print(
        "the env's 500 mL action (0.5 L/h over the hour): MAP rise "
        f"{_quartiles(b['map_rise_env_500ml_action_cohort_quartiles'])} mmHg; "
        f"one hour after the bolus: {b['map_rise_one_hour_after']:.1f} mmHg"
    )


def print_hypotension(rows: list[dict]) -> None:
    print(f"\n3. Hours with observed MAP < 65 over hours 1-24 and death by {EPISODE_HOURS} h")
    print("survival of the patients alive at 24 h, by hours below 65 (n in brackets); odds ratio")
    print("per mmHg of time-weighted MAP below 65 (Maheshwari: 1.114), adjusted for the tier")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("policy", "<10", lambda r: r["policy"]),
        ("alive@24", ">8", lambda r: f"{r['alive_at_24h']:,}"),
    ]
    for i, (low, high) in enumerate(HYPOTENSION_BINS):
        title = f"{low} h" if low == high else f"{low}-{high} h"

        def cell(r: dict, i: int = i) -> str:
            b = r["bins_alive_at_24h"][i]
            return f"{_fmt(b['survival'], '.2f')} ({b['n']})"

        cols.append((title, ">12", cell))
    cols += [
        (
            "OR/h alive@24 (95% CI)",
            ">22",
            lambda r: _or_cell(r["odds_ratio_per_hour_alive_at_24h"]),
        ),
        ("OR/h all", ">8", lambda r: _fmt(r["odds_ratio_per_hour_all"]["odds_ratio"], ".3f")),
        (
            "OR/mmHg TWA<65, tier-adj. (95% CI)",
            ">34",
            lambda r: _or_cell(r["odds_ratio_per_mmhg_twa_alive_at_24h_tier_adjusted"]),
        ),
    ]
    print(text_table(rows, cols))


def print_refractory(rows: list[dict]) -> None:
    print(f"\n4. Refractory shock: mortality at {EPISODE_HOURS} h when the dose ever exceeded 1")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("policy", "<20", lambda r: r["policy"]),
        ("tier", "<6", lambda r: r["tier"]),
        ("mortality", ">9", lambda r: f"{r['mortality_all']:.3f}"),
        ("n dose>1", ">8", lambda r: f"{r['n_dose_above_1']:,}"),
        ("mort. dose>1", ">12", lambda r: _fmt(r["mortality_dose_above_1"], ".3f")),
        ("mort. dose<=1", ">13", lambda r: _fmt(r["mortality_dose_at_most_1"], ".3f")),
    ]
    print(text_table(rows, cols))


def print_fates(rows: list[dict], fate_hours: int) -> None:
    print(
        f"\n5. Fate separation, untreated: death within {EPISODE_HOURS} h, within {fate_hours:,} h"
    )
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
        (f"died {EPISODE_HOURS}h", ">8", lambda r: f"{r['died_in_episode']:.3f}"),
        (f"died {fate_hours}h", ">10", lambda r: f"{r['died_2000h']:.3f}"),
        ("agreement", ">9", lambda r: f"{r['agreement']:.3f}"),
        ("late death, median h", ">20", lambda r: _fmt(r["median_late_death_hour"], ".0f")),
        ("alive, not recovered", ">20", lambda r: f"{r['alive_not_recovered_2000h']:.3f}"),
        (
            f"agreement at {'/'.join(map(str, OTHER_EPISODES))} h",
            ">21",
            lambda r: "/".join(f"{v:.3f}" for v in r["agreement_if_episode_hours"].values()),
        ),
        (
            "agreement, protocol stopped",
            ">27",
            lambda r: _fmt(r["agreement_protocol_stopped_after_episode"], ".3f"),
        ),
    ]
    print(text_table(rows, cols))
    print(f"alive, not recovered: alive at {fate_hours:,} h with P >= 0.01 or D >= 1")
    print("agreement at other lengths: had the episode been that long (the same patients)")
    print(f"protocol stopped: VasopressorTitration's fluid protocol ends at {EPISODE_HOURS} h")


def print_survival(rows: list[dict], fractions: list[dict], n: int) -> None:
    print(f"\n6a. Survival at {EPISODE_HOURS} h by policy ({n:,} patients each, spread {SPREAD:g})")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
    ]
    for p in (NONE, HEURISTIC, RANDOM, MAX_FLUID):
        name = POLICY_NAMES[p]
        cols.append((name, ">12", lambda r, name=name: f"{r[name]:.3f}"))
    cols.append(
        (
            "max fluids: median death h",
            ">26",
            lambda r: _fmt(r["max_fluids_median_death_hour"], ".0f"),
        )
    )
    print(text_table(rows, cols))

    print("\n6b. Tier fractions: (a) survive untreated, (b) die untreated but survive under at")
    print("    least one policy tried, (c) die under every policy tried (only those listed)")
    cols = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
        ("(a)", ">6", lambda r: f"{r['survive_untreated']:.3f}"),
        ("(b)", ">6", lambda r: f"{r['need_treatment']:.3f}"),
        ("(c)", ">6", lambda r: f"{r['die_under_every_policy_tried']:.3f}"),
        ("harmed by heur.", ">15", lambda r: f"{r['survive_untreated_die_under_heuristic']:.3f}"),
        (
            "survival under each policy tried",
            "<60",
            lambda r: ", ".join(f"{k} {v:.2f}" for k, v in r["survival_by_policy"].items()),
        ),
    ]
    print(text_table(fractions, cols))
    print("harmed by heur.: survive untreated but die under the heuristic")


def print_targets(targets: list[dict], facts: list[dict]) -> None:
    print("\nTargets (met when the model's value lies in the band):")
    cols: list[Column] = [
        ("section", "<19", lambda r: r["section"]),
        ("target", "<56", lambda r: r["name"]),
        ("case", "<42", lambda r: r["case"]),
        ("goal", "<38", lambda r: r["goal"]),
        ("model", ">7", lambda r: _fmt(r["value"], r["spec"])),
        ("verdict", "<7", lambda r: verdict(r["met"])),
    ]
    print(text_table(targets, cols))
    print("\nFacts (replicates counted once; a fact is met when every replicate is):")
    fact_cols: list[Column] = [
        ("fact", "<78", lambda r: r["fact"]),
        ("kind", "<24", lambda r: r["kind"]),
        ("met", ">7", lambda r: f"{r['replicates_met']}/{r['replicates']}"),
        ("verdict", "<7", lambda r: verdict(r["met"])),
    ]
    print(text_table(facts, fact_cols))
    for kind in KINDS:
        of_kind = [f for f in facts if f["kind"] == kind]
        print(f"{kind}: {sum(f['met'] for f in of_kind)} of {len(of_kind)} facts met")
    print("Caveats (where a comparison is not like-for-like, or not a test):")
    for f in facts:
        if f["caveat"]:
            print(f"  {f['fact']}: {f['caveat']}")


def print_tables(results: dict[str, Any]) -> None:
    n = results["environment"]["patients"]
    if results["antibiotic_delay"]:
        print_delay(results, n)
    if results["bolus"]:
        print_bolus(results["bolus"])
    if results["hypotension"]:
        print_hypotension(results["hypotension"])
    if results["refractory"]:
        print_refractory(results["refractory"])
    print_fates(results["fates"], results["environment"]["fate_hours"])
    print_survival(results["survival"], results["tier_fractions"], n)
    print_targets(results["targets"], results["facts"])


def antibiotic_figure(rows: list[dict], n_patients: int) -> Figure:
    """Survival against the antibiotic hour, one line per tier, and Kumar's slope."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    colours = {"easy": "tab:green", "medium": "tab:orange", "hard": "tab:red"}
    hours = np.asarray(ANTIBIOTIC_HOURS)
    for row in rows:
        p0, k_pg = tier_point(row["tier"])
        survival = 100 * np.asarray(row["survival_by_hour"])
        ax.plot(
            hours,
            survival,
            "o-",
            color=colours[row["tier"]],
            lw=2,
            label=f"{row['tier']} ($P_0$ = {p0:g}, $k_{{pg}}$ = {k_pg:g}/h): "
            f"{100 * row['survival_lost_per_hour_0_6']:.1f} points lost per hour over 0-6 h",
        )
        ax.plot(
            hours[:7],
            survival[0] - 100 * KUMAR_LOSS_PER_HOUR * hours[:7],
            ":",
            color=colours[row["tier"]],
            lw=1.5,
        )
    kumar = 100 * (KUMAR_SURVIVAL_HOUR0 - KUMAR_LOSS_PER_HOUR * hours[:7])
    ax.plot(
        hours[:7],
        kumar,
        "k--",
        lw=2,
        label="Kumar et al. 2006: 79.9%, then 7.6 points lost per hour",
    )
    ax.plot([], [], "k:", lw=1.5, label="Kumar's slope from each tier's hour-0 survival")
    ax.set_xlabel("hour after admission at which the antibiotic is started")
    ax.set_ylabel(f"survival at {EPISODE_HOURS} h (%)")
    ax.set_xticks(hours)
    ax.set_xlim(-0.3, hours[-1] + 0.3)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(
        "SepsisManagement-v1: survival against antibiotic delay\n"
        f"heuristic fluids and vasopressor; {n_patients:,} virtual patients per tier "
        f"(spread {SPREAD:g}), the same at every hour",
        fontsize=11,
    )
    return fig
