"""Policy quality: PPO against the random and heuristic baselines on held-out patients.

For every environment and severity: train PPO (default config, several seeds in one vmapped
call), then compare each seed's deterministic policy and both baselines on the same held-out
patients (``sepsisim_jax.training.compare_policies``). Targets: PPO >= heuristic in mean return
on every configuration, and >= the PPO results the reference paper reports for
FluidResuscitation and VasopressorTitration (medium).

With ``--v1``, the -v1 environments on virtual patients instead: PPO trained on the cohort
(``patient_spread`` 0.2) and scored, with the heuristic, random and no-treatment baselines, on
held-out patients of the same cohort; the fraction of the training budget at which PPO reaches
95% of its final training return; and, for SepsisManagement-v1, PPO trained on the default
patient (spread 0) scored on the same cohort. Target: PPO >= heuristic in mean return on every
configuration.

Usage: ``python benchmarks/ppo_quality.py [--timesteps N] [--seeds 3] [--quick]``;
``python benchmarks/ppo_quality.py --v1 [--timesteps N] [--seeds 2] [--quick]``. ``--quick``
is a smoke test: one update of one seed, 100 patients, on FluidResuscitation-v0 or -v1 medium
(also trained on the default patient in the -v1 part) unless ``--envs`` is given.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import Target, optional, output_path, report
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.envs import V0_IDS, V1_IDS
from sepsisim_jax.policies import POLICIES, Policy
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import (
    PPOConfig,
    TrainingResult,
    compare_policies,
    default_config,
    held_out_key,
    train_ppo,
)

# PPO returns reported with the reference (stable-baselines3, 200k-500k steps, medium).
PAPER_PPO = {"FluidResuscitation-v0": -71.5, "VasopressorTitration-v0": -36.9}
V1_SPREAD = 0.2  # the v1 cohort: patient_spread of training and held-out patients
SMOOTH_UPDATES = 5  # centred window of the training-curve smoothing
PROGRESS = 0.95  # budget fraction: where the smoothed curve first covers this much progress


def measure(env_id: str, severity: str, timesteps: int, seeds: int, patients: int) -> dict:
    """Train, then compare the PPO seeds and the baselines on the same held-out patients."""
    config = default_config(env_id, severity, total_timesteps=timesteps)
    result = train_ppo(config, n_seeds=seeds, seed=0, progress=False)
    env, params = sepsisim_jax.make(env_id, severity=severity)
    ppo = {f"PPO seed {i}": policy for i, policy in enumerate(result.policies)}
    baselines = {name: factory(env) for name, factory in POLICIES.items()}
    rows = compare_policies(env, params, ppo | baselines, held_out_key(0), patients)
    per_seed, outcomes = rows[:seeds], {row.pop("policy"): row for row in rows[seeds:]}
    return {
        "env_id": env_id,
        "severity": severity,
        "timesteps_per_seed": config.num_updates * config.batch_size,
        "seeds": seeds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "ppo": _ppo_outcome(per_seed),
        **outcomes,
    }


def _ppo_outcome(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The seeds' outcomes: mean over seeds, the spread across seeds, and each seed's."""
    means = np.array([row["mean_return"] for row in per_seed])
    return {
        "mean_return": float(means.mean()),
        "sd_return": float(np.mean([row["sd_return"] for row in per_seed])),
        "sd_across_seeds": float(means.std()),
        "survival": float(np.mean([row["survival"] for row in per_seed])),
        "per_seed": per_seed,
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


def _outcome_columns(policies: tuple[tuple[str, str], ...]) -> list[Column]:
    """Return (mean ± sd over patients) and survival of each ``(key, title)`` policy."""
    out: list[Column] = []
    for policy, title in policies:
        out += [
            (
                title,
                ">16",
                lambda r, p=policy: f"{r[p]['mean_return']:.1f} ± {r[p]['sd_return']:.1f}",
            ),
            ("surv", ">5", lambda r, p=policy: f"{r[p]['survival']:.2f}"),
        ]
    return out


def columns() -> list[Column]:
    """Environment, severity, then return (mean ± sd over patients) and survival per policy."""
    out: list[Column] = [
        ("environment", "<24", lambda row: row["env_id"]),
        ("severity", "<8", lambda row: row["severity"]),
    ]
    return out + _outcome_columns(
        (("ppo", "PPO return"), ("heuristic", "heuristic"), ("random", "random"))
    )


# --- v1: the coupled patient, virtual patients -------------------------------------------------


def no_treatment(n_actions: int) -> Policy:
    """The all-zero action: no fluid, no change of vasopressor dose, no antibiotic."""

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, obs, params
        return jnp.zeros(n_actions, jnp.float32)

    return policy


def budget_to_progress(returns: np.ndarray) -> dict[str, Any]:
    """Where one seed's training curve first reaches 95% of the way from its start to its end.

    ``returns`` holds the mean training return of each update. The curve is smoothed with a
    centred mean over :data:`SMOOTH_UPDATES` updates (fewer at the ends); its start
    ``r_first`` is the mean of the first :data:`SMOOTH_UPDATES` updates, its end ``r_final``
    the mean of the last 10%. Progress is ``(r - r_first) / (r_final - r_first)``, so negative
    returns count the same; the fraction is the updates done (that one included) over all
    updates. It is ``None`` when the curve does not end above where it starts, or never
    reaches 95%.
    """
    n = returns.shape[0]
    window, half = min(SMOOTH_UPDATES, n), SMOOTH_UPDATES // 2
    tail = max(1, n // 10)
    with warnings.catch_warnings():  # an update without an ended episode is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        smoothed = np.array(
            [np.nanmean(returns[max(0, t - half) : t + half + 1]) for t in range(n)]
        )
        r_first = float(np.nanmean(returns[:window]))
        r_final = float(np.nanmean(returns[-tail:]))
    fraction = None
    if r_final > r_first:
        reached = np.flatnonzero((smoothed - r_first) / (r_final - r_first) >= PROGRESS)
        fraction = float((reached[0] + 1) / n) if reached.size else None
    return {"r_first": r_first, "r_final": r_final, "fraction": fraction}


def _budget(result: TrainingResult) -> dict[str, Any]:
    """:func:`budget_to_progress` of each seed, and the mean of the seeds' fractions."""
    per_seed = [budget_to_progress(r) for r in np.asarray(result.metrics["episode_return"])]
    fractions = [s["fraction"] for s in per_seed]
    return {
        "fraction": None if None in fractions else float(np.mean(fractions)),
        "progress": PROGRESS,
        "smooth_updates": SMOOTH_UPDATES,
        "final_updates": max(1, len(result.env_steps) // 10),
        "per_seed": per_seed,
    }


def _train(
    env_id: str, severity: str, spread: float, timesteps: int, seeds: int
) -> tuple[PPOConfig, TrainingResult]:
    config = default_config(env_id, severity, total_timesteps=timesteps, patient_spread=spread)
    return config, train_ppo(config, n_seeds=seeds, seed=0, progress=False)


def _training_facts(config: PPOConfig, result: TrainingResult, seeds: int) -> dict[str, Any]:
    return {
        "timesteps_per_seed": config.num_updates * config.batch_size,
        "updates": config.num_updates,
        "seeds": seeds,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
    }


def _score(
    result: TrainingResult, env: Any, params: Any, patients: int, others: dict[str, Policy]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PPO seeds and ``others`` on the held-out patients: PPO's outcome, the others'."""
    seeds = len(result.policies)
    ppo = {f"PPO seed {i}": policy for i, policy in enumerate(result.policies)}
    rows = compare_policies(env, params, ppo | others, held_out_key(0), patients)
    per_seed, outcomes = rows[:seeds], {row.pop("policy"): row for row in rows[seeds:]}
    return _ppo_outcome(per_seed), outcomes


def measure_v1(
    env_id: str, severity: str, timesteps: int, seeds: int, patients: int, eval_env: tuple
) -> dict[str, Any]:
    """PPO trained on the cohort against the baselines on the cohort's held-out patients."""
    config, result = _train(env_id, severity, V1_SPREAD, timesteps, seeds)
    env, params = eval_env
    baselines = {name: factory(env) for name, factory in POLICIES.items()}
    baselines["no_treatment"] = no_treatment(env.action_space(params).shape[0])
    ppo, outcomes = _score(result, env, params, patients, baselines)
    return {
        "env_id": env_id,
        "severity": severity,
        "patient_spread": V1_SPREAD,
        **_training_facts(config, result, seeds),
        "budget_95": _budget(result),
        "ppo": ppo,
        **outcomes,
    }


def measure_default_patient(
    row: dict[str, Any], timesteps: int, seeds: int, patients: int, eval_env: tuple
) -> dict[str, Any]:
    """PPO trained on the default patient (spread 0), scored where ``row``'s PPO was."""
    config, result = _train(row["env_id"], row["severity"], 0.0, timesteps, seeds)
    env, params = eval_env
    ppo, _ = _score(result, env, params, patients, {})
    return {
        "env_id": row["env_id"],
        "severity": row["severity"],
        "eval_patient_spread": V1_SPREAD,
        "default_patient": {
            "train_patient_spread": 0.0,
            **_training_facts(config, result, seeds),
            "budget_95": _budget(result),
            "ppo": ppo,
        },
        "cohort": {"train_patient_spread": V1_SPREAD, "ppo": row["ppo"]},
        "heuristic": row["heuristic"],
        "cohort_minus_default_return": row["ppo"]["mean_return"] - ppo["mean_return"],
    }


def targets_v1(rows: list[dict[str, Any]]) -> list[Target]:
    """PPO's margin in mean return over the heuristic, on every configuration."""
    heuristic = {_case(r): r["ppo"]["mean_return"] - r["heuristic"]["mean_return"] for r in rows}
    return [Target("vs_heuristic", "PPO - heuristic, mean return", heuristic, 0.0, "+.2f")]


def columns_v1() -> list[Column]:
    """Outcomes of the four policies, then the budget fraction to 95% of the final return."""
    out: list[Column] = [
        ("environment", "<24", lambda row: row["env_id"]),
        ("severity", "<8", lambda row: row["severity"]),
    ]
    out += _outcome_columns(
        (
            ("ppo", "PPO return"),
            ("heuristic", "heuristic"),
            ("random", "random"),
            ("no_treatment", "no treatment"),
        )
    )
    return [*out, ("95% at (seeds)", ">14", _fractions)]


def _fractions(row: dict[str, Any]) -> str:
    """Each seed's budget fraction to 95% of its final return (``-``: not reached)."""
    return " ".join(optional(seed["fraction"], ".0%") for seed in row["budget_95"]["per_seed"])


def columns_default_patient() -> list[Column]:
    """Return and survival on the cohort of PPO trained on one patient, on the cohort."""
    return [
        ("environment", "<24", lambda row: row["env_id"]),
        ("severity", "<8", lambda row: row["severity"]),
        ("trained on", "<22", lambda row: row["trained_on"]),
        ("return", ">16", lambda r: f"{r['ppo']['mean_return']:.1f} ± {r['ppo']['sd_return']:.1f}"),
        ("seed sd", ">7", lambda r: f"{r['ppo']['sd_across_seeds']:.1f}"),
        ("surv", ">5", lambda r: f"{r['ppo']['survival']:.2f}"),
        ("- heuristic", ">11", lambda r: f"{r['ppo']['mean_return'] - r['heuristic']:+.1f}"),
    ]


def run_v1(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Every v1 configuration, then the default-patient comparisons; the tables and the JSON."""
    start = time.perf_counter()
    jobs = [(e, s) for e in args.envs for s in args.severities]
    default_jobs = [job for job in jobs if job[0] in args.default_patient_envs]
    rows: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    with tqdm(total=len(jobs) + len(default_jobs), desc="trainings") as bar:
        for env_id, severity in jobs:
            bar.set_postfix_str(f"{env_id} {severity}")
            eval_env = sepsisim_jax.make(env_id, severity=severity, patient_spread=V1_SPREAD)
            row = measure_v1(env_id, severity, args.timesteps, args.seeds, args.patients, eval_env)
            rows.append(row)
            bar.update()
            if (env_id, severity) in default_jobs:
                bar.set_postfix_str(f"{env_id} {severity}, default patient")
                comparisons.append(
                    measure_default_patient(
                        row, args.timesteps, args.seeds, args.patients, eval_env
                    )
                )
                bar.update()
    wall_seconds = time.perf_counter() - start
    print(
        f"PPO (default config, trained on the cohort, patient_spread {V1_SPREAD}, "
        f"{args.timesteps:,} timesteps x {args.seeds} seeds) vs baselines, {args.patients:,} "
        "held-out patients of the cohort; return mean ± sd over patients (PPO: mean of seeds); "
        "95% at: fraction of the budget where each seed's smoothed training return first "
        "reaches 95% of the way from its first to its final (last 10% of updates) return "
        "(-: the final return is not above the first, or never reached)"
    )
    settings = {
        "part": "v1",
        "timesteps_per_seed": args.timesteps,
        "seeds": args.seeds,
        "patients": args.patients,
        "patient_spread": V1_SPREAD,
        "envs": args.envs,
        "severities": args.severities,
        "default_patient_envs": [e for e, _ in default_jobs],
        "wall_seconds": wall_seconds,
    }
    results = report(
        out, settings, rows, columns_v1(), targets_v1(rows), default_vs_cohort=comparisons
    )
    if comparisons:
        print(
            "\nPPO trained on the default patient (spread 0) or on the cohort (spread "
            f"{V1_SPREAD}), both scored on the cohort's {args.patients:,} held-out patients; "
            "return mean ± sd over patients, mean of seeds; '- heuristic': minus the "
            "heuristic's mean return"
        )
        print(text_table(_default_patient_rows(comparisons), columns_default_patient()))
    print(f"Wall time of the v1 trainings and scoring: {wall_seconds:.0f} s")
    return results


def _default_patient_rows(comparisons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two table rows per comparison: PPO trained on the default patient, then on the cohort."""
    return [
        {
            "env_id": c["env_id"],
            "severity": c["severity"],
            "trained_on": name,
            "ppo": c[part]["ppo"],
            "heuristic": c["heuristic"]["mean_return"],
        }
        for c in comparisons
        for part, name in (
            ("default_patient", "default patient (0)"),
            ("cohort", f"cohort ({V1_SPREAD})"),
        )
    ]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--v1",
        action="store_true",
        help="the -v1 environments on virtual patients (default: the -v0 part)",
    )
    parser.add_argument(
        "--envs",
        nargs="+",
        choices=sepsisim_jax.ENV_IDS,
        help="default: every -v0 id, or every -v1 id with --v1",
    )
    parser.add_argument(
        "--severities",
        nargs="+",
        choices=sepsisim_jax.SEVERITIES,
        help="default: all three, or medium with --v1",
    )
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="per seed (<= 5M)")
    parser.add_argument("--seeds", type=int, help="default: 3, or 2 with --v1")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument(
        "--default-patient-envs",
        nargs="*",
        choices=V1_IDS,
        help="--v1: also train these on the default patient (spread 0), scored on the cohort "
        "(default SepsisManagement-v1; the quick env with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one update, one seed, 100 patients, one env (medium) unless given: a smoke test",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    ids = V1_IDS if args.v1 else V0_IDS
    quick_env = "FluidResuscitation-v1" if args.v1 else "FluidResuscitation-v0"
    args.envs = args.envs or ([quick_env] if args.quick else list(ids))
    if args.default_patient_envs is None:
        args.default_patient_envs = [quick_env] if args.quick else ["SepsisManagement-v1"]
    if not set(args.envs) <= set(ids):
        parser.error(f"--envs: {'with' if args.v1 else 'without'} --v1, choose from {list(ids)}")
    medium_only = args.v1 or args.quick
    args.severities = args.severities or (["medium"] if medium_only else sepsisim_jax.SEVERITIES)
    args.seeds = args.seeds or (2 if args.v1 else 3)
    if args.quick:
        args.timesteps, args.seeds, args.patients = 4_608, 1, 100
    if not 0 < args.timesteps <= 5_000_000:
        parser.error("--timesteps must be in (0, 5,000,000]")
    out = output_path(args.out, "ppo_quality_v1" if args.v1 else "ppo_quality", args.quick)
    if args.v1:
        return run_v1(args, out)

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
    return report(out, settings, rows, columns(), targets(rows))


if __name__ == "__main__":
    main()
