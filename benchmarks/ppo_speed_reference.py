"""PPO training speed at the reference's hyperparameters: stable-baselines3 PPO as sepsisim
0.1.0 trains it, against sepsisim_jax's jitted PPO at its defaults, per environment.

A different configuration on each side (SB3 does 11-22x more gradient steps per sample here),
so the ratio mixes configuration with implementation; the identical-hyperparameter
comparison is ``ppo_speed_same.py``. Target: sepsisim_jax's training env-steps/s >= 100x
stable-baselines3's on every environment, compilation excluded.

See ``README.md`` in this directory for the method and the JSON schema. Usage: ``python
benchmarks/ppo_speed_reference.py [--envs ...] [--timesteps 20000] [--torch-threads N]
[--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
import torch
from common import output_path, verdict, write_results
from ppo_common import (
    SEVERITY,
    TIMING_COLUMNS,
    environment,
    finish,
    positive,
    sb3_progress,
    timing_row,
    train_ours,
)
from sepsisim.training.configs import ENV_CONFIGS, SEED
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.text_table import text_table
from sepsisim_jax.training import default_config

DEFAULT_TIMESTEPS = 20_000
QUICK_TIMESTEPS = 64  # one stable-baselines3 rollout of the smoke test's n_steps
# A smoke test's SB3 rollout and minibatch (the reference's: 2,048 steps, minibatches of 64 or
# 128); its other hyperparameters are the reference's. The jitted PPO runs one update of the
# default configuration, the program ppo_quality.py's smoke test trains too.
QUICK_SB3 = {"n_steps": 64, "batch_size": 64}
TARGET_VS_SB3 = 100.0  # our training env-steps/s over SB3's, one core each
LABEL = "SB3 at the reference's hyperparameters"
# The keys of ENV_CONFIGS that the reference passes to PPO (it ignores the others).
SB3_KEYS = (
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "ent_coef",
)
assert all(f"sepsisim/{i}" in ENV_CONFIGS for i in sepsisim_jax.REFERENCE_IDS)


def gradient_steps_per_sample(env_id: str) -> float:
    """SB3's gradient steps per sample at the reference's hyperparameters over ours."""
    ref = ENV_CONFIGS[f"sepsisim/{env_id}"]
    config = default_config(env_id, SEVERITY)
    ours = config.update_epochs * config.num_minibatches / config.batch_size
    return ref["n_epochs"] / ref["batch_size"] / ours


def train_sb3(env_id: str, timesteps: int, bar: tqdm, quick: bool = False) -> dict[str, Any]:
    """Train stable-baselines3 PPO as the reference does (``quick``: with the rollout and
    minibatch of :data:`QUICK_SB3`); time ``model.learn`` only."""
    hyper = {k: ENV_CONFIGS[f"sepsisim/{env_id}"][k] for k in SB3_KEYS}
    hyper |= QUICK_SB3 if quick else {}
    vec_env = DummyVecEnv([lambda: gymnasium.make(f"sepsisim/{env_id}")])
    assert vec_env.envs[0].unwrapped.severity == SEVERITY
    # seed= seeds random, numpy and torch, as the reference's own seeding calls do.
    model = PPO("MlpPolicy", vec_env, verbose=0, seed=SEED, device="cpu", **hyper)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=sb3_progress(bar, f"SB3 {env_id}"))
    train_s = time.perf_counter() - start
    # learn() collects whole rollouts of n_steps, so it may run past total_timesteps.
    row = timing_row(env_id, "stable-baselines3", model.num_timesteps, None, train_s, hyper)
    row["gradient_steps_per_sample_vs_ours"] = gradient_steps_per_sample(env_id)
    return row


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's env-steps/s over stable-baselines3's on the same environment."""
    sb3 = {r["env_id"]: r for r in rows if r["impl"] == "stable-baselines3"}
    for r in rows:
        base = sb3[r["env_id"]]
        r["vs_sb3"] = r["steps_per_s"] / base["steps_per_s"]
        r["vs_sb3_with_compile"] = r["steps_per_s_with_compile"] / base["steps_per_s"]


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ratio per environment (compilation excluded) against the target."""
    ratio = {
        r["env_id"]: {"value": r["vs_sb3"], "met": r["vs_sb3"] >= TARGET_VS_SB3}
        for r in rows
        if r["impl"] == "sepsisim_jax"
    }
    met = all(v["met"] for v in ratio.values())
    return {
        "reference_hyperparameters_vs_sb3": {"target": TARGET_VS_SB3, "per_env": ratio, "met": met}
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("env", "<24", lambda r: r["env_id"]),
            ("impl", "<17", lambda r: r["impl"]),
            (
                "grad/sample",
                ">11",
                lambda r: f"{r.get('gradient_steps_per_sample_vs_ours', 1.0):.1f}x",
            ),
            *TIMING_COLUMNS,
            ("x SB3", ">7", lambda r: f"{r['vs_sb3']:,.1f}"),
            ("x SB3 w/ comp", ">13", lambda r: f"{r['vs_sb3_with_compile']:,.1f}"),
        ],
    )


def print_reference(rows: list[dict[str, Any]], target: dict[str, Any]) -> None:
    more = sorted(
        {
            round(r["gradient_steps_per_sample_vs_ours"])
            for r in rows
            if "gradient_steps_per_sample_vs_ours" in r
        }
    )
    print(
        f"{LABEL} (different configuration: {'-'.join(map(str, more))}x more "
        f"gradient steps per sample than the jitted PPO, grad/sample column), severity "
        f"{SEVERITY}; env-steps/s = timesteps / train s ('with compile': / (compile s + "
        "train s)); x SB3 against SB3's env-steps/s; one process each, torch threads as below"
    )
    print(format_table(rows))
    ratio = target["reference_hyperparameters_vs_sb3"]
    print(
        f"Target ({LABEL}): sepsisim_jax training env-steps/s >= "
        f"{ratio['target']:,.0f}x stable-baselines3's (compilation excluded):"
    )
    for env_id, v in ratio["per_env"].items():
        print(f"  {env_id:24s} {v['value']:>7,.1f}x -> {verdict(v['met'])}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ids = sepsisim_jax.REFERENCE_IDS
    parser.add_argument("--envs", nargs="+", choices=ids, help="default: every reference id")
    parser.add_argument(
        "--timesteps",
        type=int,
        help=f"timesteps asked of each run (default {DEFAULT_TIMESTEPS:,}, {QUICK_TIMESTEPS:,} "
        "with --quick)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch.set_num_threads of the runs (default: torch's default for this machine)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{ids[0]} and {QUICK_TIMESTEPS:,} timesteps unless given, small rollouts and "
        "minibatches: a smoke test",
    )
    args = parser.parse_args(argv)
    args.envs = args.envs or ([ids[0]] if args.quick else list(ids))
    if args.timesteps is None:
        args.timesteps = QUICK_TIMESTEPS if args.quick else DEFAULT_TIMESTEPS
    positive(parser, timesteps=args.timesteps, torch_threads=args.torch_threads)
    args.out = output_path(args.out, "ppo_speed_reference", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    settings = {"timesteps": args.timesteps, "envs": list(args.envs)}
    info = environment(settings | {"torch_threads": args.torch_threads}, sb3=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.torch_threads)
    rows = []
    try:
        with tqdm(total=2 * len(args.envs), desc=LABEL, unit="run") as bar:
            for env_id in args.envs:
                rows.append(train_sb3(env_id, args.timesteps, bar, args.quick))
                bar.update()
                bar.set_postfix_str(f"sepsisim_jax {env_id}")
                rows.append(train_ours(env_id, args.timesteps))
                bar.update()
    finally:
        torch.set_num_threads(threads)
    add_ratios(rows)
    finish(info)
    target = verdicts(rows)
    print_reference(rows, target)
    results = {
        "environment": info,
        "reference_hyperparameters": {
            "label": LABEL,
            "torch_threads": args.torch_threads,
            "rows": rows,
        },
        "targets": target,
    }
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
