"""Gymnasium-adapter throughput: the reference env, our single env and our vector env, one run.

Every figure counts env-steps per second with random actions from the action space and a reset
whenever an episode ends (the vector env auto-resets). Rounds are interleaved and the best of
``--repeats`` counts, so the ratios compare configurations under the same machine load.

Targets on the 2-core CPU: single adapter env >= 10x the reference; vector env at 1,024 envs
>= 1,000,000 env-steps/s.

Usage: ``python benchmarks/adapter_throughput.py [--env SepsisManagement-v0] [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import sepsisim  # noqa: F401  (registers the reference's ids)

import sepsisim_jax

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def single_env_loop(env_id: str, steps: int) -> Callable[[], int]:
    """A warmed-up single env; each call steps it ``steps`` times and returns ``steps``."""
    env = gym.make(env_id, severity="medium")
    env.action_space.seed(0)
    env.reset(seed=0)

    def run() -> int:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return steps

    run()
    return run


def vector_env_loop(env_id: str, num_envs: int, calls: int) -> Callable[[], int]:
    """A warmed-up vector env; each call makes ``calls`` steps of ``num_envs`` patients."""
    envs = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", severity="medium"
    )
    envs.action_space.seed(0)
    envs.reset(seed=0)

    def run() -> int:
        for _ in range(calls):
            envs.step(envs.action_space.sample())
        return calls * num_envs

    run()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=sepsisim_jax.ENV_IDS, default="SepsisManagement-v0")
    parser.add_argument("--steps", type=int, default=3000, help="single-env steps per run")
    parser.add_argument("--vector-sizes", type=int, nargs="+", default=[16, 256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 steps, 2 repeats")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "adapter_throughput.json")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 300, 2
    configs: dict[str, Callable[[], int]] = {
        "reference single env": single_env_loop(f"sepsisim/{args.env}", args.steps),
        "sepsisim_jax single env": single_env_loop(f"sepsisim_jax/{args.env}", args.steps),
    }
    for n in args.vector_sizes:
        calls = max(5, 200_000 // n // (10 if args.quick else 1))
        configs[f"sepsisim_jax vector env x{n}"] = vector_env_loop(
            f"sepsisim_jax/{args.env}", n, calls
        )
    best = dict.fromkeys(configs, 0.0)
    for _ in range(args.repeats):
        for name, run in configs.items():
            start = time.perf_counter()
            steps = run()
            best[name] = max(best[name], steps / (time.perf_counter() - start))
    reference = best["reference single env"]
    print(f"{args.env}, severity medium, best of {args.repeats} interleaved rounds")
    print(f"{'configuration':<32} {'env-steps/s':>12} {'x reference':>12}")
    for name, rate in best.items():
        print(f"{name:<32} {rate:>12,.0f} {rate / reference:>12.1f}")
    single = best["sepsisim_jax single env"] / reference
    verdict = "MET" if single >= 10 else "NOT MET"
    print(f"  single adapter env >= 10x reference: {single:.1f}x -> {verdict}")
    key = "sepsisim_jax vector env x1024"
    if key in best:
        verdict = "MET" if best[key] >= 1_000_000 else "NOT MET"
        print(f"  vector env x1024 >= 1,000,000 env-steps/s: {best[key]:,.0f} -> {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "env_id": args.env,
                "repeats": args.repeats,
                "env_steps_per_s": best,
                "x_reference": {k: v / reference for k, v in best.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
