"""PPO training speed: sepsisim_jax's jitted PPO against stable-baselines3 PPO on the reference.

Three parts, measured in one run:

- the headline, identical hyperparameters on SepsisManagement: stable-baselines3 PPO on a
  ``DummyVecEnv`` of 64 reference envs, stable-baselines3 PPO on ``sepsisim_jax.sb3.SepsisVecEnv``
  (64 patients per jitted call) and sepsisim_jax's jitted PPO, all with sepsisim_jax's default
  PPO configuration (64 envs x 72 steps per update, 4 epochs of 8 minibatches, 64x64 tanh
  networks) for the same env-steps, torch on one thread; the verdict is the ratios of their
  training env-steps per second;
- per environment, stable-baselines3 PPO trained exactly as sepsisim 0.1.0 trains it (its
  ``ENV_CONFIGS`` hyperparameters, one ``gymnasium.make("sepsisim/<Id>")`` in a ``DummyVecEnv``,
  ``MlpPolicy``, seed 42) and sepsisim_jax's PPO (default config, one seed) for the same number
  of timesteps; the verdict is the ratio of their training env-steps per second;
- sepsisim_jax's PPO for 5,000,000 timesteps on SepsisManagement, compilation included
  (target: under 180 s), with the mean training return it reached.

See ``README.md`` in this directory for the method and the JSON schema.

Usage: ``python benchmarks/ppo_speed.py [--quick] [--same-updates N] [--skip-same] [--envs ...]
[--timesteps N] [--skip-5m]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
import torch
from common import RESULTS_DIR, machine_info, optional, verdict, write_results
from gymnasium.wrappers import RescaleAction
from sepsisim.training.configs import ENV_CONFIGS, SEED
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.sb3 import make_sb3_vec_env
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import PPOConfig, default_config, train_ppo

SEVERITY = "medium"  # the reference's default, which its training uses
DEFAULT_TIMESTEPS = 20_000
QUICK_TIMESTEPS = 2_048  # one stable-baselines3 rollout (n_steps = 2048)
LONG_ENV = "SepsisManagement-v0"
LONG_TIMESTEPS = 5_000_000
QUICK_LONG_TIMESTEPS = 200_000
TARGET_VS_SB3 = 100.0  # our training env-steps/s over stable-baselines3's, every environment
TARGET_LONG_S = 180.0  # compile + train seconds of the LONG_TIMESTEPS run
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
# The headline: identical hyperparameters, sepsisim_jax's default PPO configuration.
SAME_ENV = "SepsisManagement-v0"
SAME_UPDATES = 20  # 20 x 4,608 = 92,160 env-steps per implementation
QUICK_SAME_UPDATES = 1
SAME_TORCH_THREADS = 1
SB3_REFERENCE = "SB3 + DummyVecEnv(sepsisim)"
SB3_OURS = "SB3 + SepsisVecEnv"
JITTED = "sepsisim_jax PPO"
# What the three runs do not share (none changes the work of a step or an update).
SAME_NOT_MATCHED = (
    "reward_scale 0.1 scales the jitted PPO's rewards only (a constant factor)",
    "the learning rate decays linearly to 0 per rollout in SB3, per minibatch in the jitted PPO",
    "observations are normalised by VecNormalize (clip 10) in SB3, by the jitted PPO's own "
    "running statistics (clip 10) in the jitted PPO",
)


class _Progress(BaseCallback):
    """Shows stable-baselines3's timesteps on a tqdm bar once per rollout."""

    def __init__(self, bar: tqdm, label: str) -> None:
        super().__init__()
        self.bar, self.label = bar, label

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.bar.set_postfix_str(f"{self.label} {self.num_timesteps:,} steps")


def sb3_hyperparameters(config: PPOConfig) -> dict[str, Any]:
    """stable-baselines3 PPO arguments equal to ``config``'s (``n_steps`` per env, minibatch
    size, epochs, rates, coefficients, separate ``hidden_sizes`` tanh networks)."""
    rate = config.learning_rate
    return {
        "n_steps": config.num_steps,
        "batch_size": config.minibatch_size,
        "n_epochs": config.update_epochs,
        "learning_rate": (lambda remaining: rate * remaining) if config.anneal_lr else rate,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_eps,
        "ent_coef": config.ent_coef,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
        "policy_kwargs": {
            "net_arch": {"pi": list(config.hidden_sizes), "vf": list(config.hidden_sizes)},
            "activation_fn": torch.nn.Tanh,
            "log_std_init": config.log_std_init,
        },
    }


def _describe(hyper: dict[str, Any]) -> dict[str, Any]:
    """``hyper`` for the JSON: the schedule and the activation by name."""
    out = dict(hyper, policy_kwargs=dict(hyper["policy_kwargs"], activation_fn="Tanh"))
    if callable(hyper["learning_rate"]):
        out["learning_rate"] = f"linear {hyper['learning_rate'](1.0):g} -> 0"
    return out


def reference_vec_env(num_envs: int) -> DummyVecEnv:
    """``num_envs`` reference envs with actions in [-1, 1], as SepsisVecEnv's are."""
    envs = [
        lambda: RescaleAction(gymnasium.make(f"sepsisim/{SAME_ENV}"), -1.0, 1.0)
        for _ in range(num_envs)
    ]
    vec_env = DummyVecEnv(envs)
    assert vec_env.envs[0].unwrapped.severity == SEVERITY
    return vec_env


def our_vec_env(num_envs: int) -> tuple[VecEnv, float]:
    """SepsisVecEnv with actions in [-1, 1], its jitted reset and step compiled by one call
    each (the wall time returned); ``learn`` resets it again."""
    start = time.perf_counter()
    vec_env = make_sb3_vec_env(SAME_ENV, num_envs, severity=SEVERITY, normalize_actions=True)
    vec_env.reset()
    vec_env.step(np.zeros((num_envs, *vec_env.action_space.shape), np.float32))
    return vec_env, time.perf_counter() - start


def train_sb3_same(
    impl: str, vec_env: VecEnv, compile_s: float | None, config: PPOConfig, bar: tqdm
) -> dict[str, Any]:
    """stable-baselines3 PPO with ``config``'s hyperparameters; time ``model.learn`` only."""
    hyper = sb3_hyperparameters(config)
    vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=False, clip_obs=10.0)
    model = PPO("MlpPolicy", vec_env, verbose=0, seed=SEED, device="cpu", **hyper)
    assert model.n_envs * model.n_steps == config.batch_size
    timesteps = config.num_updates * config.batch_size
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=_Progress(bar, impl))
    train_s = time.perf_counter() - start
    assert model.num_timesteps == timesteps
    vec_env.close()
    return _row(SAME_ENV, impl, timesteps, compile_s, train_s, _describe(hyper))


def same_hyperparameters(updates: int) -> dict[str, Any]:
    """The headline: the three implementations, ``updates`` updates each, one after the
    other, torch on one thread; each row's env-steps/s over both SB3 runs'."""
    one_update = default_config(SAME_ENV, SEVERITY).batch_size
    config = default_config(SAME_ENV, SEVERITY, total_timesteps=updates * one_update)
    torch.set_num_threads(SAME_TORCH_THREADS)
    with tqdm(total=3, desc="identical hyperparameters", unit="run") as bar:
        rows = [
            train_sb3_same(SB3_REFERENCE, reference_vec_env(config.num_envs), None, config, bar)
        ]
        bar.update()
        rows.append(train_sb3_same(SB3_OURS, *our_vec_env(config.num_envs), config, bar))
        bar.update()
        bar.set_postfix_str(JITTED)
        rows.append(train_ours(SAME_ENV, config.total_timesteps) | {"impl": JITTED})
        bar.update()
    assert len({r["timesteps"] for r in rows}) == 1, [r["timesteps"] for r in rows]
    for base, key in ((rows[0], "vs_sb3_reference"), (rows[1], "vs_sb3_sepsis_vec_env")):
        for r in rows:
            r[key] = r["steps_per_s"] / base["steps_per_s"]
            r[f"{key}_with_compile"] = r["steps_per_s_with_compile"] / base["steps_per_s"]
    return {
        "env_id": SAME_ENV,
        "updates": updates,
        "timesteps": rows[0]["timesteps"],
        "torch_threads": SAME_TORCH_THREADS,
        "config": config.to_dict(),
        "not_matched": list(SAME_NOT_MATCHED),
        "rows": rows,
    }


# Columns both tables share: what a run trained on and how long it took.
TIMING_COLUMNS: tuple[Column, ...] = (
    ("timesteps", ">9", lambda r: f"{r['timesteps']:,}"),
    ("compile s", ">9", lambda r: optional(r["compile_s"], ".1f")),
    ("train s", ">8", lambda r: f"{r['train_s']:.1f}"),
    ("env-steps/s", ">11", lambda r: f"{r['steps_per_s']:,.0f}"),
    ("with compile", ">12", lambda r: f"{r['steps_per_s_with_compile']:,.0f}"),
)


def format_same_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("impl", "<28", lambda r: r["impl"]),
            *TIMING_COLUMNS,
            ("x SB3+ref", ">9", lambda r: f"{r['vs_sb3_reference']:,.1f}"),
            ("x SB3+ours", ">10", lambda r: f"{r['vs_sb3_sepsis_vec_env']:,.1f}"),
        ],
    )


def print_same(same: dict[str, Any]) -> None:
    rows, c = {r["impl"]: r for r in same["rows"]}, same["config"]
    print(
        f"Identical hyperparameters: PPO on {same['env_id']}, {same['timesteps']:,} env-steps "
        f"each ({same['updates']} x {c['num_envs']} envs x {c['num_steps']} steps), "
        f"{c['update_epochs']} epochs x {c['num_minibatches']} minibatches, "
        f"{'x'.join(map(str, c['hidden_sizes']))} tanh networks, torch threads "
        f"{same['torch_threads']}; env-steps/s = timesteps / train s; ratios measured in this run"
    )
    print(format_same_table(same["rows"]))
    ours, jitted = rows[SB3_OURS], rows[JITTED]
    print(
        f"  SB3 PPO: SepsisVecEnv trains {ours['vs_sb3_reference']:,.1f}x as many env-steps/s "
        f"as on the reference DummyVecEnv; the jitted PPO {jitted['vs_sb3_reference']:,.1f}x "
        f"SB3 on the reference ({jitted['vs_sb3_sepsis_vec_env']:,.1f}x SB3 on SepsisVecEnv), "
        f"{jitted['vs_sb3_reference_with_compile']:,.1f}x counting its compilation"
    )
    print("  not matched: " + "; ".join(same["not_matched"]))


def train_sb3(env_id: str, timesteps: int, bar: tqdm) -> dict[str, Any]:
    """Train stable-baselines3 PPO as the reference does; time ``model.learn`` only."""
    hyper = {k: ENV_CONFIGS[f"sepsisim/{env_id}"][k] for k in SB3_KEYS}
    vec_env = DummyVecEnv([lambda: gymnasium.make(f"sepsisim/{env_id}")])
    assert vec_env.envs[0].unwrapped.severity == SEVERITY
    # seed= seeds random, numpy and torch, as the reference's own seeding calls do.
    model = PPO("MlpPolicy", vec_env, verbose=0, seed=SEED, device="cpu", **hyper)
    start = time.perf_counter()
    model.learn(total_timesteps=timesteps, callback=_Progress(bar, f"SB3 {env_id}"))
    train_s = time.perf_counter() - start
    # learn() collects whole rollouts of n_steps, so it may run past total_timesteps.
    return _row(env_id, "stable-baselines3", model.num_timesteps, None, train_s, hyper)


def train_ours(env_id: str, timesteps: int, progress: bool = False) -> dict[str, Any]:
    """Train sepsisim_jax's PPO (default config, one seed); compile and train timed apart.

    At least one update runs; the timesteps are whole updates (``num_envs x num_steps``).
    """
    one_update = default_config(env_id, SEVERITY).batch_size
    config = default_config(env_id, SEVERITY, total_timesteps=max(timesteps, one_update))
    result = train_ppo(config, n_seeds=1, seed=0, progress=progress)
    steps = config.num_updates * config.batch_size
    compile_s, train_s = result.compile_seconds, result.train_seconds
    row = _row(env_id, "sepsisim_jax", steps, compile_s, train_s, config.to_dict())
    returns, survival = result.metrics["episode_return"][0], result.metrics["survival"][0]
    row["updates"] = config.num_updates
    row["first_update_return"] = float(returns[0])
    row["last_update_return"] = float(returns[-1])
    row["last_update_survival"] = float(survival[-1])
    return row


def _row(
    env_id: str,
    impl: str,
    timesteps: int,
    compile_s: float | None,
    train_s: float,
    hyperparameters: dict[str, Any],
) -> dict[str, Any]:
    total_s = train_s + (compile_s or 0.0)
    return {
        "env_id": env_id,
        "impl": impl,
        "timesteps": timesteps,
        "compile_s": compile_s,
        "train_s": train_s,
        "total_s": total_s,
        "steps_per_s": timesteps / train_s,
        "steps_per_s_with_compile": timesteps / total_s,
        "hyperparameters": hyperparameters,
    }


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's env-steps/s over stable-baselines3's on the same environment."""
    sb3 = {r["env_id"]: r for r in rows if r["impl"] == "stable-baselines3"}
    for r in rows:
        base = sb3[r["env_id"]]
        r["vs_sb3"] = r["steps_per_s"] / base["steps_per_s"]
        r["vs_sb3_with_compile"] = r["steps_per_s_with_compile"] / base["steps_per_s"]


def verdicts(rows: list[dict[str, Any]], long_run: dict[str, Any] | None) -> dict[str, Any]:
    """Ratio target per environment (compilation excluded), and the long run's wall time."""
    ratio = {
        r["env_id"]: {"value": r["vs_sb3"], "met": r["vs_sb3"] >= TARGET_VS_SB3}
        for r in rows
        if r["impl"] == "sepsisim_jax"
    }
    out: dict[str, Any] = {
        "vs_sb3": {
            "target": TARGET_VS_SB3,
            "per_env": ratio,
            "met": all(v["met"] for v in ratio.values()),
        },
        "long_run": {"target_s": TARGET_LONG_S, "evaluated": False, "met": None},
    }
    if long_run is not None and long_run["requested_timesteps"] >= LONG_TIMESTEPS:
        out["long_run"].update(evaluated=True, met=long_run["total_s"] < TARGET_LONG_S)
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("env", "<24", lambda r: r["env_id"]),
            ("impl", "<17", lambda r: r["impl"]),
            *TIMING_COLUMNS,
            ("x SB3", ">7", lambda r: f"{r['vs_sb3']:,.1f}"),
            ("x SB3 w/ comp", ">13", lambda r: f"{r['vs_sb3_with_compile']:,.1f}"),
        ],
    )


def print_verdicts(target: dict[str, Any], long_run: dict[str, Any] | None) -> None:
    ratio = target["vs_sb3"]
    print(
        f"Target: sepsisim_jax training env-steps/s >= {ratio['target']:,.0f}x "
        "stable-baselines3's (compilation excluded; ratios measured in this run):"
    )
    for env_id, v in ratio["per_env"].items():
        print(f"  {env_id:24s} {v['value']:>7,.1f}x -> {verdict(v['met'])}")
    if long_run is None:
        print("Long run skipped (--skip-5m).")
        return
    print(
        f"Long run: {long_run['env_id']}, {long_run['timesteps']:,} timesteps "
        f"({long_run['updates']} updates), compile {long_run['compile_s']:.1f} s + "
        f"train {long_run['train_s']:.1f} s = {long_run['total_s']:.1f} s "
        f"({long_run['steps_per_s']:,.0f} env-steps/s training)"
    )
    print(
        f"  mean training return: first update {long_run['first_update_return']:.1f}, "
        f"last update {long_run['last_update_return']:.1f} "
        f"(survival {long_run['last_update_survival']:.2f})"
    )
    long_verdict = target["long_run"]
    if long_verdict["evaluated"]:
        print(
            f"  target: {LONG_TIMESTEPS:,} timesteps in < {TARGET_LONG_S:.0f} s including "
            f"compilation -> {verdict(long_verdict['met'])}"
        )
    else:
        print(f"  target not evaluated: it is for {LONG_TIMESTEPS:,} timesteps")


def environment_info(args: argparse.Namespace) -> dict[str, Any]:
    """The machine, torch's thread settings and the settings of this run."""
    return machine_info() | {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "stable_baselines3": metadata.version("stable-baselines3"),
        "gymnasium": gymnasium.__version__,
        "severity": SEVERITY,
        "timesteps": args.timesteps,
        "same_updates": None if args.skip_same else args.same_updates,
        "long_timesteps": None if args.skip_5m else args.long_timesteps,
        "envs": list(args.envs),
        "sb3_seed": SEED,
        "jax_seed": 0,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", choices=sepsisim_jax.ENV_IDS, default=None)
    parser.add_argument(
        "--timesteps", type=int, default=None, help="timesteps of each comparison run"
    )
    parser.add_argument("--skip-5m", action="store_true", help="skip the long run")
    parser.add_argument(
        "--same-updates",
        type=int,
        default=None,
        help=f"updates of each identical-hyperparameter run (default {SAME_UPDATES}, "
        f"{QUICK_SAME_UPDATES} with --quick)",
    )
    parser.add_argument(
        "--skip-same", action="store_true", help="skip the identical-hyperparameter comparison"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch.set_num_threads (default: torch's own default for this machine)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument(
        "--quick", action="store_true", help="2,048 timesteps and a 200k-step long run"
    )
    args = parser.parse_args(argv)
    args.envs = args.envs or list(sepsisim_jax.ENV_IDS)
    if args.timesteps is None:
        args.timesteps = QUICK_TIMESTEPS if args.quick else DEFAULT_TIMESTEPS
    if args.same_updates is None:
        args.same_updates = QUICK_SAME_UPDATES if args.quick else SAME_UPDATES
    args.long_timesteps = QUICK_LONG_TIMESTEPS if args.quick else LONG_TIMESTEPS
    if args.out is None:
        args.out = RESULTS_DIR / ("ppo_speed_quick.json" if args.quick else "ppo_speed.json")
    if min(args.timesteps, args.torch_threads, args.same_updates) < 1:
        parser.error("--timesteps, --torch-threads and --same-updates must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    same = None if args.skip_same else same_hyperparameters(args.same_updates)
    torch.set_num_threads(args.torch_threads)
    info = environment_info(args)
    rows = []
    with tqdm(total=2 * len(args.envs), desc="training runs", unit="run") as bar:
        for env_id in args.envs:
            rows.append(train_sb3(env_id, args.timesteps, bar))
            bar.update()
            bar.set_postfix_str(f"sepsisim_jax {env_id}")
            rows.append(train_ours(env_id, args.timesteps))
            bar.update()
    add_ratios(rows)
    long_run = None
    if not args.skip_5m:
        long_run = train_ours(LONG_ENV, args.long_timesteps, progress=True)
        long_run["requested_timesteps"] = args.long_timesteps
    info["load_avg_1_5_15_end"] = list(os.getloadavg())
    if same is not None:
        print_same(same)
        print()
    print(
        f"PPO training speed, severity {SEVERITY}; env-steps/s = timesteps / train s "
        "('with compile': / (compile s + train s)); x SB3 against SB3's env-steps/s"
    )
    print(format_table(rows))
    target = verdicts(rows, long_run)
    print_verdicts(target, long_run)
    results = {
        "environment": info,
        "same_hyperparameters": same,
        "rows": rows,
        "long_run": long_run,
        "targets": target,
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
