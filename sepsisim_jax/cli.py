"""Command line: ``rollout`` (cohorts under the baselines), ``train`` and ``evaluate`` (PPO)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from tqdm import tqdm

from sepsisim_jax.envs.registration import ENV_IDS, SEVERITIES, make
from sepsisim_jax.plotting import learning_curve
from sepsisim_jax.policies import POLICIES
from sepsisim_jax.rollout import SUMMARY_COLUMNS, rollout_episodes, summarize
from sepsisim_jax.text_table import text_table
from sepsisim_jax.training import (
    CheckpointError,
    PPOPolicy,
    compare_policies,
    comparison_table,
    default_config,
    held_out_key,
    load_checkpoint,
    save_checkpoint,
    train_ppo,
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sepsisim-jax", description="JAX-native sepsis simulator for reinforcement learning."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rollout = commands.add_parser(
        "rollout",
        help="simulate a cohort under the random and heuristic policies",
        description="Simulate one episode per patient for each environment and policy, "
        "in one jitted vmapped scan each, and print outcome and throughput.",
    )
    rollout.add_argument("--patients", type=_positive_int, default=10_000)
    rollout.add_argument("--env", nargs="+", choices=ENV_IDS, default=list(ENV_IDS))
    rollout.add_argument("--severity", choices=SEVERITIES, default="medium")
    rollout.add_argument("--policy", nargs="+", choices=list(POLICIES), default=list(POLICIES))
    rollout.add_argument("--solver", choices=["rk4", "dopri5"], default="rk4")
    rollout.add_argument("--seed", type=int, default=0)
    rollout.add_argument("--json", type=Path, help="also write the results to this JSON file")

    train = commands.add_parser(
        "train",
        help="train PPO on one environment, several seeds at once",
        description="Train PPO (fully jitted, seeds vmapped), save the best seed's policy, "
        "a metrics JSON and a learning-curve PNG, and compare with the baselines on held-out "
        "patients.",
    )
    train.add_argument("--env", choices=ENV_IDS, default="SepsisManagement-v0")
    train.add_argument("--severity", choices=SEVERITIES, default="medium")
    train.add_argument("--timesteps", type=_positive_int, default=2_000_000, help="per seed")
    train.add_argument("--seeds", type=_positive_int, default=4)
    train.add_argument("--seed", type=int, default=0, help="first random seed")
    train.add_argument("--num-envs", type=_positive_int, help="patients per rollout")
    train.add_argument("--eval-patients", type=_positive_int, default=1000)
    train.add_argument("--out", type=Path, default=Path("runs/ppo"), help="output directory")

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a saved PPO policy against the baselines",
        description="Reload a checkpoint written by `train` and evaluate it on held-out patients.",
    )
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="directory or file")
    evaluate.add_argument("--eval-patients", type=_positive_int, default=1000)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    return parser


def run_rollouts(args: argparse.Namespace) -> list[dict]:
    """One row per (environment, policy): outcome summary plus measured env-steps/s."""
    rows = []
    jobs = [(env_id, policy) for env_id in args.env for policy in args.policy]
    for env_id, policy_name in tqdm(jobs, desc="rollouts", unit="cohort", file=sys.stderr):
        env, params = make(env_id, severity=args.severity, solver=args.solver)
        policy = POLICIES[policy_name](env)
        n_steps = int(params.max_steps_in_episode)
        run = rollout_episodes.lower(
            env, params, policy, jax.random.key(args.seed), args.patients, n_steps
        ).compile()
        start = time.perf_counter()
        stats = jax.block_until_ready(run(params, jax.random.key(args.seed)))
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "env": env_id,
                "severity": args.severity,
                "policy": policy_name,
                "patients": args.patients,
                **summarize(stats),
                "env_steps_per_s": args.patients * n_steps / elapsed,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """Rollout results: outcome and throughput per environment and policy."""
    return text_table(
        rows,
        [
            ("environment", "<24", lambda r: r["env"]),
            ("policy", "<10", lambda r: r["policy"]),
            *SUMMARY_COLUMNS,
            ("env-steps/s", ">12", lambda r: f"{r['env_steps_per_s']:,.0f}"),
        ],
    )


def held_out_comparison(
    ppo: dict[str, PPOPolicy], seed: int, n_patients: int
) -> list[dict[str, Any]]:
    """The PPO policies, then the baselines, on the held-out patients of ``seed``."""
    config = next(iter(ppo.values())).config
    env, params = make(
        config.env_id, severity=config.severity, patient_spread=config.patient_spread
    )
    baselines = {name: factory(env) for name, factory in POLICIES.items()}
    return compare_policies(env, params, ppo | baselines, held_out_key(seed), n_patients)


def run_train(args: argparse.Namespace) -> int:
    overrides = {"total_timesteps": args.timesteps}
    if args.num_envs:
        overrides["num_envs"] = args.num_envs
    try:
        config = default_config(args.env, args.severity, **overrides)
    except ValueError as error:
        raise SystemExit(f"sepsisim-jax train: error: {error}") from error
    result = train_ppo(config, n_seeds=args.seeds, seed=args.seed)
    best = result.best_seed()
    checkpoint = save_checkpoint(args.out, result.policy)
    ppo = {
        f"PPO seed {i}" + (" (saved)" if i == best else ""): policy
        for i, policy in enumerate(result.policies)
    }
    rows = held_out_comparison(ppo, args.seed, args.eval_patients)

    baselines = {row["policy"]: row["mean_return"] for row in rows[len(ppo) :]}
    figure = learning_curve(
        result.env_steps,
        result.metrics["episode_return"],
        baselines,
        title=f"PPO on {args.env}, {args.severity}",
    )
    figure.savefig(args.out / "learning_curve.png", dpi=120)
    steps = config.num_updates * config.batch_size * args.seeds
    summary = {
        "config": config.to_dict(),
        "seeds": args.seeds,
        "first_seed": args.seed,
        "saved_seed": best,
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "train_env_steps_per_s": steps / result.train_seconds,
        "env_steps": result.env_steps.tolist(),
        "training": {k: v.tolist() for k, v in result.metrics.items()},
        "evaluation": {"patients": args.eval_patients, "rows": rows},
    }
    (args.out / "metrics.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    print(
        f"trained {args.seeds} seed(s) x {config.num_updates * config.batch_size:,} steps in "
        f"{result.train_seconds:.1f} s (+ {result.compile_seconds:.1f} s compile)"
    )
    print(f"held-out evaluation, {args.eval_patients:,} patients ({args.env}, {args.severity}):")
    print(comparison_table(rows))
    print(f"wrote {checkpoint}, {args.out / 'metrics.json'}, {args.out / 'learning_curve.png'}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    try:
        policy = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        raise SystemExit(f"sepsisim-jax evaluate: error: {error}") from error
    rows = held_out_comparison({"PPO": policy}, args.seed, args.eval_patients)
    config = policy.config
    print(f"{config.env_id}, {config.severity}, {args.eval_patients:,} held-out patients:")
    print(comparison_table(rows))
    if args.json:
        _write_json(args.json, rows)
    return 0


def _write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        return run_train(args)
    if args.command == "evaluate":
        return run_evaluate(args)
    rows = run_rollouts(args)
    print(f"{args.patients:,} patients per cohort, severity {args.severity}, solver {args.solver}")
    print(format_table(rows))
    print("env-steps/s: patients x episode steps / wall time of the compiled rollout (one run).")
    if args.json:
        _write_json(args.json, rows)
    return 0
