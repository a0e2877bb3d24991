"""Counterfactual antibiotic timing: the same patients with the antibiotic at hour 1 and later.

For SepsisManagement-v0, SepsisManagement-v1 and SepsisManagement-v1 with virtual patients
(``patient_spread`` 0.2), the cohort of one key is run with the antibiotic started at hour 1
(policy A) and at each later hour (policy B), fluids and vasopressors by the clinical
heuristic (:func:`sepsisim_jax.counterfactual.antibiotic_at`). Every patient's outcome under
both is known, so the table gives the mean paired effect of the delay on return and survival
with its standard error, and the survival 2x2: patients who survive under both schedules, only
with the earlier one, only with the later one, or under neither.

Usage: ``python benchmarks/counterfactual.py [--patients 100000] [--hours 1 6 12] [--quick]``;
runs unchanged on a GPU. Writes ``results/counterfactual.json`` and ``counterfactual.png``
(``counterfactual_quick.*`` under ``--quick``, a smoke test: SepsisManagement-v0 only, hour 1
against hour 6, 256 patients).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from common import machine_info, output_path, write_results
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.counterfactual import antibiotic_at, effect_table, paired_outcomes

SETTINGS = (  # (env id, patient_spread)
    ("SepsisManagement-v0", 0.0),
    ("SepsisManagement-v1", 0.0),
    ("SepsisManagement-v1", 0.2),
)
DPI = 100


def setting_label(env_id: str, spread: float) -> str:
    return f"{env_id}, virtual patients {spread:g}" if spread else env_id


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="cohort per setting")
    parser.add_argument("--chunk", type=int, default=16_384, help="patients per compiled chunk")
    parser.add_argument(
        "--hours", type=float, nargs="+", help="A's hour, then B's (default 1 6 12)"
    )
    parser.add_argument("--severity", default="medium", choices=sepsisim_jax.SEVERITIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: SepsisManagement-v0, 256 patients, hours 1 6 unless given",
    )
    parser.add_argument("--out", type=Path, help="JSON path; the figure goes beside it (.png)")
    args = parser.parse_args(argv)
    settings = SETTINGS[:1] if args.quick else SETTINGS
    args.hours = args.hours or ([1.0, 6.0] if args.quick else [1.0, 6.0, 12.0])
    if args.quick:
        args.patients = 256
    if args.patients < 1 or args.chunk < 1:
        parser.error(f"--patients and --chunk must be >= 1, got {args.patients}, {args.chunk}")
    if len(args.hours) < 2:
        parser.error(f"--hours needs A's hour and at least one later hour, got {args.hours}")
    out = output_path(args.out, "counterfactual", args.quick)
    key = jax.random.key(args.seed)
    first, later = args.hours[0], args.hours[1:]
    rows, pairs = [], {}
    start = time.perf_counter()
    with tqdm(total=len(settings) * len(later), desc="comparisons", unit="pair") as bar:
        for env_id, spread in settings:
            env, params = sepsisim_jax.make(env_id, severity=args.severity, patient_spread=spread)
            for hour in later:
                label = setting_label(env_id, spread)
                bar.set_postfix_str(f"{label}: hour {first:g} vs {hour:g}")
                tic = time.perf_counter()
                pair = paired_outcomes(
                    env,
                    params,
                    antibiotic_at(env, first),
                    antibiotic_at(env, hour),
                    key,
                    args.patients,
                    chunk_size=min(args.chunk, args.patients),
                    names=(f"antibiotic h{first:g}", f"antibiotic h{hour:g}"),
                )
                summary = pair.summary()  # reads the outcomes back: the timing includes the run
                rows.append(
                    {"env_id": env_id, "patient_spread": spread}
                    | summary
                    | {"seconds": time.perf_counter() - tic}
                )
                if hour == later[0]:
                    pairs[label] = pair
                bar.update()
    leading = (
        ("env", "<20", lambda r: r["env_id"]),
        ("spread", ">6", lambda r: f"{r['patient_spread']:g}"),
    )
    print(effect_table(rows, leading))
    recorded = vars(args) | {"out": str(out.name), "devices": jax.device_count()}
    results = {
        "environment": machine_info() | {"settings": recorded},
        "rows": rows,
        "wall_s": time.perf_counter() - start,
    }
    write_results(out, results)
    figure = plotting.counterfactual_effects(
        pairs,
        title=f"Antibiotic at hour {first:g} (A) or {later[0]:g} (B), the same "
        f"{args.patients:,} {args.severity} patients (heuristic fluids and vasopressors)",
    )
    figure.savefig(out.with_suffix(".png"), dpi=DPI)
    print(f"Figure written to {out.with_suffix('.png')}")
    return results


if __name__ == "__main__":
    main()
