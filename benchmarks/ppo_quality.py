"""Policy quality: PPO against the random and heuristic baselines on held-out patients.

For every environment and severity: train PPO (default config, several seeds in one vmapped
call), then compare each seed's deterministic policy and both baselines on the same held-out
patients (``sepsisim_jax.training.compare_policies``). Targets: PPO >= heuristic in mean return
on every configuration, and >= the PPO results the reference paper reports for
FluidResuscitation and VasopressorTitration (medium).

Usage: ``python benchmarks/ppo_quality.py [--timesteps N] [--seeds 3] [--quick]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from common import RESULTS_DIR, Target, report
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.policies import POLICIES
from sepsisim_jax.text_table import Column
from sepsisim_jax.training import compare_policies, default_config, held_out_key, train_ppo

# PPO returns reported with the reference (stable-baselines3, 200k-500k steps, medium).
PAPER_PPO = {"FluidResuscitation-v0": -71.5, "VasopressorTitration-v0": -36.9}


def measure(env_id: str, severity: str, timesteps: int, seeds: int, patients: int) -> dict:
    """Train, then compare the PPO seeds and the baselines on the same held-out patients."""
    config = default_config(env_id, severity, total_timesteps=timesteps)
    result = train_ppo(config, n_seeds=seeds, seed=0, progress=False)
    env, params = sepsisim_jax.make(env_id, severity=severity)
    ppo = {f"PPO seed {i}": policy for i, policy in enumerate(result.policies)}
    baselines = {name: factory(env) for name, factory in POLICIES.items()}
    rows = compare_policies(env, params, ppo | baselines, held_out_key(0), patients)
    per_seed, outcomes = rows[:seeds], {row.pop("policy"): row for row in rows[seeds:]}
    means = np.array([row["mean_return"] for row in per_seed])
    return {
        "env_id": env_id,
        "severity": severity,
        "timesteps_per_seed": config.num_updates * config.batch_size,
        "seeds": seeds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "ppo": {
            "mean_return": float(means.mean()),
            "sd_return": float(np.mean([row["sd_return"] for row in per_seed])),
            "sd_across_seeds": float(means.std()),
            "survival": float(np.mean([row["survival"] for row in per_seed])),
            "per_seed": per_seed,
        },
        **outcomes,
    }


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """PPO's margin in mean return over the heuristic (every configuration) and the paper."""
    heuristic = {_case(r): r["ppo"]["mean_return"] - r["heuristic"]["mean_return"] for r in rows}
    paper = {
        _case(r): r["ppo"]["mean_return"] - PAPER_PPO[r["env_id"]]
        for r in rows
        if r["env_id"] in PAPER_PPO and r["severity"] == "medium"
    }
    return [
        Target("vs_heuristic", "PPO - heuristic, mean return", heuristic, 0.0, "+.2f"),
        Target("vs_paper", "PPO - paper's PPO, mean return", paper, 0.0, "+.2f"),
    ]


def _case(row: dict[str, Any]) -> str:
    return f"{row['env_id']} {row['severity']}"


def columns() -> list[Column]:
    """Environment, severity, then return (mean ± sd over patients) and survival per policy."""
    out: list[Column] = [
        ("environment", "<24", lambda row: row["env_id"]),
        ("severity", "<8", lambda row: row["severity"]),
    ]
    for policy, title in (("ppo", "PPO return"), ("heuristic", "heuristic"), ("random", "random")):
        out += [
            (
                title,
                ">16",
                lambda r, p=policy: f"{r[p]['mean_return']:.1f} ± {r[p]['sd_return']:.1f}",
            ),
            ("surv", ">5", lambda r, p=policy: f"{r[p]['survival']:.2f}"),
        ]
    return out


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
    settings = {
        "timesteps_per_seed": args.timesteps,
        "seeds": args.seeds,
        "patients": args.patients,
    }
    report(out, settings, rows, columns(), targets(rows))


if __name__ == "__main__":
    main()
