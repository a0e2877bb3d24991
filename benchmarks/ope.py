"""Off-policy evaluation against the truth: every estimator of ``sepsisim_jax.ope`` on logged
datasets of several sizes, scored against the evaluation policy's value from the simulator.

Pairs of (behaviour, evaluation) policies, on SepsisManagement-v0 (hard) and
SepsisManagement-v1 with virtual patients (``patient_spread`` 0.2):

- **nearby**: the heuristic with Gaussian exploration (sd 0.2 of each action's range) logs;
  the heuristic with sd 0.18 is evaluated;
- **PPO**: the same data; a PPO policy with Gaussian exploration (sd 0.2) is evaluated, PPO
  trained here on a small budget (``--ppo-timesteps``) or loaded (``--checkpoint``);
- **epsilon**: the heuristic with epsilon-uniform exploration (epsilon 0.05) logs; the
  deterministic heuristic is evaluated (importance weights nonzero only for episodes without
  exploration).

For each size, ``--datasets`` independent datasets (disjoint patients of one recording) give
each estimator's mean error and its spread; the true values come from ``policy_value`` on
``--truth-episodes`` patients of an independent key. Writes ``results/ope.json`` and
``results/ope.png`` (``ope_quick.*`` under ``--quick``, a smoke test of every stage on
SepsisManagement-v0 alone); runs unchanged on a GPU.

Usage: ``python benchmarks/ope.py [--sizes 100 1000 10000] [--datasets 3]
[--truth-episodes 100000] [--checkpoint DIR ...] [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from common import initial_ppo_policy, machine_info, output_path, write_results
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.offline.episodes import Episodes, policy_value, record_episodes
from sepsisim_jax.ope import ESTIMATORS, FQEConfig, evaluate_all
from sepsisim_jax.policies import heuristic_policy
from sepsisim_jax.stochastic import StochasticPolicy, deterministic, epsilon_greedy, gaussian
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import PPOPolicy, default_config, load_checkpoint, train_ppo

SETTINGS = (  # (env id, severity, patient_spread)
    ("SepsisManagement-v0", "hard", 0.0),
    ("SepsisManagement-v1", "medium", 0.2),
)
BEHAVIOUR_SCALE = 0.2  # Gaussian exploration, sd as a fraction of each action's range
NEARBY_SCALE = 0.18
EPSILON = 0.05
GAMMA = 0.99
DPI = 100


def setting_label(env_id: str, severity: str, spread: float) -> str:
    return f"{env_id} {severity}" + (f" spread {spread:g}" if spread else "")


def ppo_policy(
    env_id: str, severity: str, spread: float, timesteps: int, checkpoints: list[PPOPolicy]
) -> tuple[PPOPolicy, dict[str, Any]]:
    """A loaded checkpoint of this env, or PPO trained on ``timesteps`` steps (one seed; 0:
    untrained, its initial network)."""
    for policy in checkpoints:
        if policy.config.env_id == env_id:
            return policy, {"source": "checkpoint", **policy.config.to_dict()}
    if timesteps == 0:
        config = default_config(env_id, severity, patient_spread=spread)
        return initial_ppo_policy(config), {"source": "untrained", "timesteps": 0}
    config = default_config(env_id, severity, patient_spread=spread, total_timesteps=timesteps)
    result = train_ppo(config, n_seeds=1, seed=0)
    return result.policy, {
        "source": "trained",
        "timesteps": config.num_updates * config.batch_size,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
    }


PAIRS = ("nearby", "PPO", "epsilon")


def pairs(
    env: Any, ppo: PPOPolicy | None, names: Sequence[str] = PAIRS
) -> dict[str, tuple[StochasticPolicy, StochasticPolicy]]:
    """Name -> (behaviour, evaluation policy), for the pairs ``names`` (``ppo`` is needed
    only for the PPO pair)."""
    heuristic = heuristic_policy(env)
    logging = gaussian(env, heuristic, BEHAVIOUR_SCALE, "heuristic")
    makers = {
        "nearby": lambda: (logging, gaussian(env, heuristic, NEARBY_SCALE, "heuristic")),
        "PPO": lambda: (logging, gaussian(env, ppo, BEHAVIOUR_SCALE, "PPO")),
        "epsilon": lambda: (
            epsilon_greedy(env, heuristic, EPSILON, "heuristic"),
            deterministic(env, heuristic, "heuristic"),
        ),
    }
    return {name: makers[name]() for name in PAIRS if name in names}


def blocks(episodes: Episodes, sizes: list[int], datasets: int) -> dict[int, list[Episodes]]:
    """Disjoint slices of ``episodes``: ``datasets`` of each size."""
    out: dict[int, list[Episodes]] = {}
    start = 0
    for size in sizes:
        out[size] = []
        for _ in range(datasets):
            out[size].append(jax.tree.map(lambda x, s=start, n=size: x[s : s + n], episodes))
            start += size
    return out


def summarise(estimates: list[dict[str, Any]], truth: float) -> dict[str, Any]:
    """Mean estimate, mean error (bias), sd across datasets, RMSE and failures of one estimator
    over the independent datasets of one size."""
    values = np.array([e["estimate"] for e in estimates], dtype=float)
    errors = values - truth
    finite = errors[np.isfinite(errors)]
    mean = lambda key: float(np.nanmean([e[key] for e in estimates]))  # noqa: E731
    return {
        "estimates": values.tolist(),
        "errors": errors.tolist(),
        "failed": int(values.size - finite.size),
        "mean_error": float(finite.mean()) if finite.size else None,
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "rmse": float(np.sqrt(np.mean(finite**2))) if finite.size else None,
        "mean_se": mean("se") if np.any(np.isfinite([e["se"] for e in estimates])) else None,
        "ess": mean("ess") if np.any(np.isfinite([e["ess"] for e in estimates])) else None,
        "max_weight": (
            float(np.nanmax([e["max_weight"] for e in estimates]))
            if np.any(np.isfinite([e["max_weight"] for e in estimates]))
            else None
        ),
        "mean_weight": (
            mean("mean_weight")
            if np.any(np.isfinite([e["mean_weight"] for e in estimates]))
            else None
        ),
        "nonzero_fraction": (
            mean("nonzero_fraction")
            if np.any(np.isfinite([e["nonzero_fraction"] for e in estimates]))
            else None
        ),
    }


def cell(summary: dict[str, Any]) -> str:
    """``mean error ± sd`` over the datasets, with the failures."""
    if summary["mean_error"] is None:
        return "failed"
    text = f"{summary['mean_error']:+.4g}"
    if summary["sd"] is not None:
        text += f" ± {summary['sd']:.3g}"
    return text + (f" ({summary['failed']} failed)" if summary["failed"] else "")


def columns() -> list[Column]:
    out: list[Column] = [
        ("setting", "<37", lambda r: r["setting"]),
        ("pair", "<7", lambda r: r["pair"]),
        ("n", ">6", lambda r: f"{r['n_episodes']:,}"),
        ("truth", ">7", lambda r: f"{r['truth']:.4g}"),
        ("behaviour", ">9", lambda r: f"{r['behaviour_value']:.4g}"),
        ("ESS", ">7", lambda r: f"{r['estimators']['IS']['ess']:.1f}"),
        ("w > 0", ">5", lambda r: f"{r['estimators']['IS']['nonzero_fraction']:.2f}"),
    ]
    for name in ESTIMATORS:
        out.append((name, ">17", lambda r, n=name: cell(r["estimators"][n])))
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--datasets", type=int, default=3, help="independent datasets per size")
    parser.add_argument("--truth-episodes", type=int, default=100_000)
    parser.add_argument("--pairs", nargs="+", choices=PAIRS, help="default: all three")
    parser.add_argument(
        "--ppo-timesteps", type=int, default=300_000, help="0: the untrained PPO network"
    )
    parser.add_argument(
        "--checkpoint", type=Path, nargs="*", default=[], help="PPO checkpoints (by env id)"
    )
    parser.add_argument("--fqe-steps", type=int, default=100, help="gradient steps/iteration")
    parser.add_argument("--fqe-iterations", type=int, help="default: twice the horizon")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples for WIS/WDR se")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test of every stage: SepsisManagement-v0, the nearby pair unless --pairs "
        "is given, 2 datasets of 50 episodes, truth from 500",
    )
    parser.add_argument("--out", type=Path, help="JSON path; the figure goes beside it (.png)")
    args = parser.parse_args(argv)
    settings = SETTINGS[:1] if args.quick else SETTINGS
    args.pairs = args.pairs or (["nearby"] if args.quick else list(PAIRS))
    if args.quick:
        args.sizes, args.datasets, args.truth_episodes = [50], 2, 500
        args.ppo_timesteps, args.fqe_iterations, args.fqe_steps = 0, 2, 5
        args.bootstrap = 20
    if min(args.sizes) < 2 or args.datasets < 1 or args.truth_episodes < 2:
        parser.error("--sizes must be >= 2, --datasets >= 1 and --truth-episodes >= 2")
    out = output_path(args.out, "ope", args.quick)
    fqe = FQEConfig(iterations=args.fqe_iterations, steps_per_iteration=args.fqe_steps)
    checkpoints = [load_checkpoint(path) for path in args.checkpoint]
    base = jax.random.key(args.seed)
    rows: list[dict[str, Any]] = []
    truths: dict[str, Any] = {}
    ppo_runs: dict[str, Any] = {}
    timings: dict[str, float] = {}
    start = time.perf_counter()
    for s, (env_id, severity, spread) in enumerate(settings):
        label = setting_label(env_id, severity, spread)
        env, params = sepsisim_jax.make(env_id, severity=severity, patient_spread=spread)
        tic = time.perf_counter()
        ppo, ppo_runs[label] = None, None
        if "PPO" in args.pairs:
            ppo, ppo_runs[label] = ppo_policy(
                env_id, severity, spread, args.ppo_timesteps, checkpoints
            )
            timings[f"{label}: PPO"] = time.perf_counter() - tic
        policy_pairs = pairs(env, ppo, args.pairs)
        truth_key = jax.random.fold_in(jax.random.fold_in(base, 1), s)
        tic = time.perf_counter()
        truths[label] = {
            policy.name: policy_value(
                env, params, policy, truth_key, args.truth_episodes, gamma=GAMMA
            ).to_dict()
            for policy in {id(p): p for pair in policy_pairs.values() for p in pair}.values()
        }
        timings[f"{label}: truth"] = time.perf_counter() - tic
        recorded: dict[int, dict[int, list[Episodes]]] = {}
        total = args.datasets * sum(args.sizes)
        for behaviour, _ in policy_pairs.values():
            if id(behaviour) in recorded:
                continue
            tic = time.perf_counter()
            data_key = jax.random.fold_in(jax.random.fold_in(base, 2), 10 * s + len(recorded))
            logged = record_episodes(env, params, behaviour, data_key, total)
            recorded[id(behaviour)] = blocks(logged, args.sizes, args.datasets)
            timings[f"{label}: record {behaviour.name}"] = time.perf_counter() - tic
        n_fits = len(policy_pairs) * len(args.sizes) * args.datasets
        fqe_keys = iter(jax.random.split(jax.random.fold_in(base, 3 + s), n_fits))
        with tqdm(total=n_fits, desc=f"OPE {label}", unit="dataset") as bar:
            for pair, (behaviour, target) in policy_pairs.items():
                tic = time.perf_counter()
                truth = truths[label][target.name]["discounted"]
                for size in args.sizes:
                    per_dataset = []
                    for episodes in recorded[id(behaviour)][size]:
                        results = evaluate_all(
                            episodes,
                            target,
                            params,
                            GAMMA,
                            next(fqe_keys),
                            behaviour=behaviour,
                            fqe_config=fqe,
                            n_bootstrap=args.bootstrap,
                        )
                        per_dataset.append({k: r.to_dict() for k, r in results.items()})
                        bar.update()
                    rows.append(
                        {
                            "setting": label,
                            "pair": pair,
                            "behaviour": behaviour.name,
                            "target": target.name,
                            "n_episodes": size,
                            "truth": truth,
                            "truth_se": truths[label][target.name]["discounted_se"],
                            "behaviour_value": truths[label][behaviour.name]["discounted"],
                            "estimators": {
                                name: summarise([r[name] for r in per_dataset], truth)
                                for name in ESTIMATORS
                            },
                        }
                    )
                timings[f"{label}: OPE {pair}"] = time.perf_counter() - tic
    wall = time.perf_counter() - start
    print(
        "Mean error ± sd over the datasets (estimate minus the true discounted value); truth "
        "and behaviour: true values of the evaluation and behaviour policies; ESS, w > 0: "
        "effective sample size and fraction of nonzero trajectory weights (mean over datasets)"
    )
    print(text_table(rows, columns()))
    results = {
        "environment": machine_info()
        | {
            "sizes": args.sizes,
            "pairs": args.pairs,
            "datasets": args.datasets,
            "truth_episodes": args.truth_episodes,
            "gamma": GAMMA,
            "behaviour_scale": BEHAVIOUR_SCALE,
            "nearby_scale": NEARBY_SCALE,
            "epsilon": EPSILON,
            "fqe": {**fqe.__dict__, "hidden_sizes": list(fqe.hidden_sizes)},
            "bootstrap": args.bootstrap,
            "seed": args.seed,
            "quick": args.quick,
        },
        "truths": truths,
        "ppo": ppo_runs,
        "rows": rows,
        "seconds": timings | {"total": wall},
    }
    write_results(out, results)
    errors: dict[str, dict[str, dict[int, list[float]]]] = {}
    truth_se: dict[str, float] = {}
    for row in rows:
        case = f"{row['setting']}\n{row['pair']}: {row['target']} from {row['behaviour']}"
        truth_se[case] = row["truth_se"]
        for name, summary in row["estimators"].items():
            errors.setdefault(case, {}).setdefault(name, {})[row["n_episodes"]] = summary["errors"]
    figure = plotting.ope_errors(errors, truth_se, title="Off-policy estimates against the truth")
    figure.savefig(out.with_suffix(".png"), dpi=DPI)
    print(f"Figure written to {out.with_suffix('.png')}; {wall:.0f} s in all")
    return results


if __name__ == "__main__":
    main()
