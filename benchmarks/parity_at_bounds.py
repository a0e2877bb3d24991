"""How often float32 steps disagree with the reference on actions exactly at the bounds.

The reference (sepsisim 0.1.0) computes in float64; with ``jax_enable_x64`` the tests assert
zero mismatches on these sequences. This script measures the default float32 mode on the same
sequences (bang-bang: 3 steps at the upper bounds then 3 at the lower; held at the upper
bounds; alternating each step), noise off on both sides, every environment and severity, and
counts the steps whose SOFA, reward (relative error > 1e-3) or termination differs.

    python benchmarks/parity_at_bounds.py [--envs ...] [--severities ...] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from common import machine_info, output_path, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
import sepsisim_jax
from sepsisim_jax.text_table import text_table
from tests.midpoint import MidpointGenerator

SEQUENCES = ("bang-bang", "held-max", "alternating")
NOISELESS = {"map_noise_sd": 0.0, "urine_noise_sd": 0.0, "admission_jitter": 0.0}


def _action(sequence: str, t: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    upper = {"bang-bang": (t // 3) % 2 == 0, "held-max": True, "alternating": t % 2 == 0}
    return np.asarray(high if upper[sequence] else low, np.float32)


@functools.cache
def noiseless_env(env_id: str, severity: str) -> tuple[Any, Any, Callable[..., Any]]:
    """``(env, params, jit(env.step))`` without noise: one compiled step serves every
    sequence of an environment and severity."""
    env, params = sepsisim_jax.make(env_id, severity=severity, **NOISELESS)
    return env, params, jax.jit(env.step)


def mismatches(env_id: str, severity: str, sequence: str) -> dict:
    import sepsisim  # noqa: F401  (registers the reference ids)

    ref = gym.make(f"sepsisim/{env_id}", severity=severity).unwrapped
    env, params, step = noiseless_env(env_id, severity)
    ref.reset(seed=0)
    _, state = env.reset(jax.random.key(0), params)
    sofa_at = env.observation_index("sofa")
    counts = {"steps": 0, "sofa": 0, "reward": 0, "terminated": 0, "any": 0}
    for t in range(72):
        action = _action(sequence, t, ref.action_space.low, ref.action_space.high)
        ref_obs, ref_reward, ref_terminated, _, _ = ref.step(action)
        _, state, reward, terminated, _, info = step(jax.random.key(t), state, action, params)
        obs = np.asarray(info["final_observation"])
        bad = {
            "sofa": obs[sofa_at] != ref_obs[sofa_at],
            "reward": abs(float(reward) - ref_reward) > 1e-3 * max(abs(ref_reward), 1.0),
            "terminated": bool(terminated) != ref_terminated,
        }
        counts["steps"] += 1
        counts["any"] += any(bad.values())
        for key, value in bad.items():
            counts[key] += int(value)
        if ref_terminated:
            break
    return {"env_id": env_id, "severity": severity, "sequence": sequence, **counts}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ids = sepsisim_jax.REFERENCE_IDS  # the ids the reference has
    parser.add_argument("--envs", nargs="+", choices=ids, help="default: every reference id")
    parser.add_argument("--severities", nargs="+", choices=sepsisim_jax.SEVERITIES)
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument(
        "--quick", action="store_true", help="FluidResuscitation-v0, medium: a smoke test"
    )
    args = parser.parse_args(argv)
    args.envs = args.envs or ([ids[0]] if args.quick else list(ids))
    args.severities = args.severities or (["medium"] if args.quick else sepsisim_jax.SEVERITIES)
    args.out = output_path(args.out, "parity_at_bounds", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    default_rng = np.random.default_rng
    np.random.default_rng = MidpointGenerator  # the reference draws all its noise from default_rng
    try:
        rows = [
            mismatches(env_id, severity, sequence)
            for env_id in args.envs
            for severity in args.severities
            for sequence in SEQUENCES
        ]
    finally:
        np.random.default_rng = default_rng
    print(
        text_table(
            rows,
            [
                ("env", "<24", lambda r: r["env_id"]),
                ("severity", "<8", lambda r: r["severity"]),
                ("sequence", "<12", lambda r: r["sequence"]),
                ("steps", ">5", lambda r: str(r["steps"])),
                ("SOFA", ">5", lambda r: str(r["sofa"])),
                ("reward", ">6", lambda r: str(r["reward"])),
                ("term.", ">5", lambda r: str(r["terminated"])),
                ("any", ">4", lambda r: str(r["any"])),
            ],
        )
    )
    steps = sum(r["steps"] for r in rows)
    rate = {k: sum(r[k] for r in rows) / steps for k in ("sofa", "reward", "terminated", "any")}
    print(
        f"float32 mismatch rate over {steps} steps: "
        + ", ".join(f"{k} {v:.1%}" for k, v in rate.items())
    )
    settings = {"envs": list(args.envs), "severities": list(args.severities)}
    results = {"environment": machine_info() | settings, "rows": rows, "steps": steps}
    results["rates"] = rate
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
