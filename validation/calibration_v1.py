"""Calibration of the v1 patient (Reynolds 2006 coupled to the circulation) against the clinic.

Each clinical target is set beside what the model gives, with a verdict (met or not met, by
a band stated with the target) and the gap. Sections:

1. antibiotic delay (Kumar et al. 2006, Seymour et al. 2017): SepsisManagement-v1, same
   patients under the clinical heuristic's fluids and vasopressors with the antibiotic given
   at hour h = 0..12; survival lost per hour over h = 0..6 and the odds ratio of death per
   hour of delay from a logistic fit; figure ``docs/figures/antibiotic_delay.png``;
2. a 500 mL crystalloid bolus over 30 min (Ernest et al. 1999, Hahn 2020, Glassford et al.
   2014): the fraction still intravascular and the MAP rise of the quasi-steady plasma volume;
3. hours with MAP < 65 in the first 24 h against death (Maheshwari et al. 2018);
4. refractory shock: mortality when the dose ever exceeded 1 mcg/kg/min (Martin et al. 2015);
5. fate separation: untreated patients, death within the 96 h episode against death within
   2,000 h, the same patient integrated on;
6. tier fractions: who survives untreated, who only with treatment, who dies under every
   policy tried; and survival per environment, tier and baseline policy.

Every cohort is drawn with ``patient_spread`` 0.2 and the same key on the package's cohort
engine, so every policy and every antibiotic hour meets the same patients and the same hourly
noise (those of ``rollout_episodes`` with that key). See ``README.md`` in this directory.

Usage: ``python validation/calibration_v1.py [--patients 2000] [--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the benchmarks' harness (``common``)
from calibration_cohorts import (  # noqa: E402
    ENVS,
    EPISODE_HOURS,
    FATE_HOURS,
    POLICY_TEXT,
    SPREAD,
    TIERS,
    Runner,
    planned_runs,
)
from calibration_outcomes import fates, hypotension, refractory, tier_fractions  # noqa: E402
from calibration_report import antibiotic_figure, print_tables  # noqa: E402
from calibration_sections import antibiotic_delay, bolus, facts  # noqa: E402
from common import machine_info, output_path, write_results  # noqa: E402
from tqdm import tqdm  # noqa: E402

from sepsisim_jax.physiology.models import tier_point  # noqa: E402

RESULTS_DIR = ROOT / "validation" / "results"
FIGURE = ROOT / "docs" / "figures" / "antibiotic_delay.png"
QUICK_PATIENTS = 16
QUICK_FATE_HOURS = 120


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, help="per cohort (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", nargs="+", choices=ENVS, help="default: all three")
    parser.add_argument(
        "--fate-hours", type=int, help=f"hours an untreated patient runs (default {FATE_HOURS:,})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: SepsisManagement-v1, {QUICK_PATIENTS} patients, fates at "
        f"{QUICK_FATE_HOURS} h (unless given), every cohort run to the fate horizon (one "
        "compiled function), no figure",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a model parameter for every cohort, e.g. hypoperfusion_damage=0 (a sensitivity: "
        "the default output path is then not the committed results file)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument(
        "--figure", type=Path, help="default: the docs figure; not written with --quick or --set"
    )
    args = parser.parse_args(argv)
    args.patients = args.patients or (QUICK_PATIENTS if args.quick else 2000)
    args.envs = args.envs or (["SepsisManagement-v1"] if args.quick else list(ENVS))
    args.fate_hours = args.fate_hours or (QUICK_FATE_HOURS if args.quick else FATE_HOURS)
    if args.patients < 10:
        parser.error("--patients must be >= 10")
    if args.fate_hours < max(EPISODE_HOURS, 120):
        parser.error(f"--fate-hours must be >= {max(EPISODE_HOURS, 120)}")
    args.overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        try:
            args.overrides[name.strip()] = float(value)
        except ValueError:
            parser.error(f"--set takes NAME=VALUE with a number, got {item!r}")
        if not sep or not name.strip():
            parser.error(f"--set takes NAME=VALUE with a number, got {item!r}")
    if args.overrides and args.out is None:
        parser.error("--set changes the model: give --out, not the committed results file")
    if args.figure is None and not args.overrides:
        args.figure = FIGURE
    args.out = output_path(args.out, "calibration_v1", args.quick, RESULTS_DIR)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    envs = tuple(e for e in ENVS if e in args.envs)
    start = time.perf_counter()
    with tqdm(total=planned_runs(envs), desc="cohorts", unit="cohort") as bar:
        run = Runner(
            args.patients,
            args.seed,
            bar,
            args.fate_hours,
            one_horizon=args.quick,
            overrides=args.overrides,
        )
        sm = "SepsisManagement-v1" in envs
        delay_rows, delay_targets, delay_sensitivity = antibiotic_delay(run) if sm else ([], [], [])
        bolus_result, bolus_targets = bolus(run) if sm else ({}, [])
        hypo_rows, hypo_targets = hypotension(run, envs)
        refr_rows, refr_targets = refractory(run, envs)
        fate_rows, fate_targets = fates(run, envs)
        survival_rows, fraction_rows = tier_fractions(run, envs)
    elapsed = time.perf_counter() - start
    settings = {
        "patients": args.patients,
        "seed": args.seed,
        "patient_spread": SPREAD,
        "parameter_overrides": args.overrides,
        "episode_hours": EPISODE_HOURS,
        "fate_hours": args.fate_hours,
        "envs": list(envs),
        "tiers": {t: dict(zip(("P0", "k_pg"), tier_point(t), strict=True)) for t in TIERS},
        "policies": POLICY_TEXT,
        "key_scheme": "sepsisim_jax.cohort.scan: patient p with fold_in(key, p), hour t of its "
        "episode with fold_in(episode key, t)",
        "command": "python validation/calibration_v1.py" + (" --quick" if args.quick else ""),
        "wall_s": elapsed,
    }
    results = {
        "environment": machine_info() | settings,
        "antibiotic_delay": delay_rows,
        "antibiotic_delay_sensitivity": delay_sensitivity,
        "bolus": bolus_result,
        "hypotension": hypo_rows,
        "refractory": refr_rows,
        "fates": fate_rows,
        "survival": survival_rows,
        "tier_fractions": fraction_rows,
        "targets": delay_targets + bolus_targets + hypo_targets + refr_targets + fate_targets,
    }
    results["facts"] = facts(results["targets"])  # replicates counted once, by kind
    for t in results["targets"]:  # JSON has no infinity
        t["band"] = [None if np.isinf(v) else v for v in t["band"]]
    print_tables(results)
    print(f"\nwall time {elapsed:.0f} s")
    if delay_rows and not args.quick and args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        antibiotic_figure(delay_rows, args.patients).savefig(args.figure, dpi=100)
        print(f"Figure written to {args.figure}")
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
