"""Policy quality: PPO against the random and heuristic baselines on held-out patients.

For every environment and severity: train PPO (default config, several seeds in one vmapped
call), then evaluate each seed's deterministic policy and both baselines on the same held-out
patients. Targets: PPO >= heuristic in mean return everywhere, and above the PPO results the
reference paper reports for FluidResuscitation and VasopressorTitration.

Usage: ``python benchmarks/ppo_quality.py [--timesteps N] [--seeds 3] [--quick]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import RESULTS_DIR, machine_info, verdict, write_results
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.policies import POLICIES
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import default_config, evaluate, evaluate_seeds, held_out_key, train_ppo

# PPO returns reported with the reference (stable-baselines3, 200k-500k steps, medium).
PAPER_PPO = {"FluidResuscitation-v0": -71.5, "VasopressorTitration-v0": -36.9}


def measure(env_id: str, severity: str, timesteps: int, seeds: int, patients: int) -> dict:
    """Train, then evaluate PPO seeds and baselines on the same held-out patients."""
    config = default_config(env_id, severity, total_timesteps=timesteps)
    result = train_ppo(config, n_seeds=seeds, seed=0, progress=False)
    key = held_out_key(0)
    ppo = evaluate_seeds(result, key, patients)
    env, params = sepsisim_jax.make(env_id, severity=severity)
    baselines = {
        name: evaluate(factory(env), env, params, key, patients)
        for name, factory in POLICIES.items()
    }
    means = np.array([row["mean_return"] for row in ppo])
    return {
        "env_id": env_id,
        "severity": severity,
        "timesteps_per_seed": config.num_updates * config.batch_size,
        "seeds": seeds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "ppo": {
            "mean_return": float(means.mean()),
            "sd_return": float(np.mean([row["sd_return"] for row in ppo])),
            "sd_across_seeds": float(means.std()),
            "survival": float(np.mean([row["survival"] for row in ppo])),
            "per_seed": ppo,
        },
        **baselines,
    }


def verdicts(rows: list[dict]) -> list[tuple[str, bool]]:
    out = []
    for row in rows:
        name = f"{row['env_id']} {row['severity']}"
        out.append(
            (
                f"{name}: PPO >= heuristic",
                row["ppo"]["mean_return"] >= row["heuristic"]["mean_return"],
            )
        )
        if row["env_id"] in PAPER_PPO and row["severity"] == "medium":
            paper = PAPER_PPO[row["env_id"]]
            out.append((f"{name}: PPO > paper's PPO ({paper})", row["ppo"]["mean_return"] > paper))
    return out


def format_table(rows: list[dict]) -> str:
    columns: list[Column] = [
        ("environment", "<24", lambda row: row["env_id"]),
        ("severity", "<8", lambda row: row["severity"]),
    ]
    for policy, title in (("ppo", "PPO return"), ("heuristic", "heuristic"), ("random", "random")):
        columns += [
            (title, ">16", lambda row, p=policy: _return_cell(row[p])),
            ("surv", ">5", lambda row, p=policy: f"{row[p]['survival']:.2f}"),
        ]
    return text_table(rows, columns)


def _return_cell(result: dict) -> str:
    return f"{result['mean_return']:.1f} ± {result['sd_return']:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--envs", nargs="+", choices=sepsisim_jax.ENV_IDS, default=list(sepsisim_jax.ENV_IDS)
    )
    parser.add_argument(
        "--severities",
        nargs="+",
        choices=sepsisim_jax.SEVERITIES,
        default=list(sepsisim_jax.SEVERITIES),
    )
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="per seed (<= 5M)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="50k timesteps, 2 seeds, 200 patients")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.timesteps, args.seeds, args.patients = 50_000, 2, 200
    if not 0 < args.timesteps <= 5_000_000:
        parser.error("--timesteps must be in (0, 5,000,000]")
    out = args.out or RESULTS_DIR / ("ppo_quality_quick.json" if args.quick else "ppo_quality.json")

    jobs = [(e, s) for e in args.envs for s in args.severities]
    rows = [
        measure(e, s, args.timesteps, args.seeds, args.patients)
        for e, s in tqdm(jobs, desc="configs")
    ]
    print(
        f"PPO (default config, {args.timesteps:,} timesteps x {args.seeds} seeds) vs baselines, "
        f"{args.patients:,} held-out patients; return mean ± sd over patients (PPO: mean of seeds)"
    )
    print(format_table(rows))
    checks = verdicts(rows)
    for text, ok in checks:
        print(f"  {text}: {verdict(ok)}")
    meta = machine_info() | {
        "timesteps_per_seed": args.timesteps,
        "seeds": args.seeds,
        "patients": args.patients,
    }
    write_results(out, {"meta": meta, "rows": rows, "verdicts": dict(checks)})


if __name__ == "__main__":
    main()
