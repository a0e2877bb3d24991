"""PPO training speed at identical hyperparameters: sepsisim_jax's jitted PPO against
stable-baselines3 PPO on the reference (the headline of the PPO speed benchmarks).

Every run trains PPO on SepsisManagement-v0 with sepsisim_jax's default PPO configuration (64
envs x 72 steps per update, 4 epochs of 8 minibatches, 64x64 tanh actor and critic), the same
env-steps per training run, torch on one thread per process: stable-baselines3 PPO on a
``DummyVecEnv`` of 64 reference envs, in one process and in two processes at once (one per
core); SB3 PPO on ``sepsisim_jax.adapters.sb3.SepsisVecEnv``; the jitted PPO with one seed,
with four seeds vmapped in one process, and in two processes at once of two vmapped seeds
each. Verdict: the jitted PPO's total env-steps/s over SB3's, both on both cores, >= 100x.

See ``README.md`` in this directory for the method and the JSON schema. Usage: ``python
benchmarks/ppo_speed_same.py [--same-updates N] [--processes 2] [--seeds 4] [--quick]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import jax
import numpy as np
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
import torch
from common import optional, output_path, verdict, write_results
from gymnasium.wrappers import RescaleAction
from ppo_common import SAME_ENV, SEVERITY, environment, finish, positive, same_config, sb3_progress
from sepsisim.training.configs import SEED
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from tqdm import tqdm

from sepsisim_jax.adapters.sb3 import make_sb3_vec_env
from sepsisim_jax.text_table import text_table
from sepsisim_jax.training import PPOConfig, init_seeds, make_train

TARGET_BOTH_CORES = 100.0  # our total env-steps/s over SB3's, both on both cores
SAME_UPDATES = 20  # 20 x 4,608 = 92,160 env-steps per training run
QUICK_SAME_UPDATES = 1
SAME_TORCH_THREADS = 1
PROCESSES = 2  # one per core of the 2-core machine
SEEDS = 4  # the jitted PPO's seeds vmapped in one process, or split over PROCESSES
QUICK_SEEDS = 1  # every jitted run of a smoke test then shares one compiled program
SB3_REFERENCE = "SB3 + DummyVecEnv(sepsisim)"
SB3_OURS = "SB3 + SepsisVecEnv"
JITTED = "sepsisim_jax PPO"
# What the runs do not share (none changes the work of a step or an update).
SAME_NOT_MATCHED = (
    "reward_scale 0.1 scales the jitted PPO's rewards only (a constant factor)",
    "the learning rate decays linearly to 0 per rollout in SB3, per minibatch in the jitted PPO",
    "observations are normalised by VecNormalize (clip 10) in SB3, by the jitted PPO's own "
    "running statistics (clip 10) in the jitted PPO",
)


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


def _run_times(train: Callable[[], None]) -> dict[str, float]:
    """Run ``train``; its wall time and its start and end on the shared clock."""
    start_wall, start = time.time(), time.perf_counter()
    train()
    train_s = time.perf_counter() - start
    return {"train_s": train_s, "start_unix": start_wall, "end_unix": start_wall + train_s}


def prepare_sb3(
    impl: str, config: PPOConfig, bar: tqdm | None = None
) -> Callable[[], dict[str, Any]]:
    """stable-baselines3 PPO with ``config``'s hyperparameters on ``impl``'s vec env, ready
    to learn; returns the training call (which times ``model.learn`` only)."""
    if impl == SB3_REFERENCE:
        vec_env, compile_s = reference_vec_env(config.num_envs), None
    else:
        vec_env, compile_s = our_vec_env(config.num_envs)
    hyper = sb3_hyperparameters(config)
    normalized = VecNormalize(vec_env, norm_obs=True, norm_reward=False, clip_obs=10.0)
    model = PPO("MlpPolicy", normalized, verbose=0, seed=SEED, device="cpu", **hyper)
    assert model.n_envs * model.n_steps == config.batch_size
    timesteps = config.num_updates * config.batch_size

    def train() -> dict[str, Any]:
        callback = sb3_progress(bar, impl)
        times = _run_times(lambda: model.learn(total_timesteps=timesteps, callback=callback))
        assert model.num_timesteps == timesteps
        normalized.close()
        return times | {
            "timesteps": timesteps,
            "compile_s": compile_s,
            "hyperparameters": _describe(hyper),
        }

    return train


@functools.cache
def compiled_ours(config: PPOConfig, n_seeds: int) -> tuple[Any, Any, float]:
    """``(runner, compiled, seconds)``: the jitted PPO's ``n_seeds`` seeds initialised and
    ``jit(vmap(trainer.run))`` compiled, in that many seconds. Once per configuration and seed
    count in a process: the runs of a smoke test share it (a full run never repeats one)."""
    start = time.perf_counter()
    trainer = make_train(config)
    runner = init_seeds(trainer, jax.random.split(jax.random.key(0), n_seeds))
    run = jax.jit(jax.vmap(trainer.run, in_axes=(0, None)), static_argnums=1)
    compiled = run.lower(runner, config.num_updates).compile()
    return runner, compiled, time.perf_counter() - start


def prepare_ours(config: PPOConfig, n_seeds: int) -> Callable[[], dict[str, Any]]:
    """The jitted PPO, ``n_seeds`` seeds vmapped: initialised and compiled (timed), ready to
    train all ``config.num_updates`` updates in one call of ``jit(vmap(trainer.run))``."""
    runner, compiled, compile_s = compiled_ours(config, n_seeds)

    def train() -> dict[str, Any]:
        out: list[Any] = []
        times = _run_times(lambda: out.append(jax.block_until_ready(compiled(runner))))
        returns = np.asarray(out[0][1].episode_return)
        return times | {
            "timesteps": config.num_updates * config.batch_size * n_seeds,
            "compile_s": compile_s,
            "hyperparameters": config.to_dict(),
            "first_update_return": float(np.nanmean(returns[:, 0])),
            "last_update_return": float(np.nanmean(returns[:, -1])),
        }

    return train


def _process_main(kind: str, config: PPOConfig, n_seeds: int, barrier: Any, results: Any) -> None:
    """One process of a parallel measurement: prepare, wait for the others, train, report."""
    torch.set_num_threads(SAME_TORCH_THREADS)
    warnings.filterwarnings("ignore", module="gymnasium")
    train = prepare_sb3(SB3_REFERENCE, config) if kind == "sb3" else prepare_ours(config, n_seeds)
    barrier.wait()
    results.put(train())


def run_processes(kind: str, config: PPOConfig, processes: int, seeds_each: int) -> list[dict]:
    """``processes`` fresh processes (spawned) of ``kind`` ("sb3" or "ours"), whose training
    runs start together after every process is prepared; their results."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_process_main, args=(kind, config, seeds_each, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    out = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a {kind} process failed with exit code {worker.exitcode}")
    return out


def headline_row(
    impl: str, per_process: list[dict[str, Any]], seeds_per_process: int
) -> dict[str, Any]:
    """A row of the headline table from one result per process: totals over the processes."""
    timesteps = sum(p["timesteps"] for p in per_process)
    compile_s = [p["compile_s"] for p in per_process if p["compile_s"] is not None]
    span = max(p["end_unix"] for p in per_process) - min(p["start_unix"] for p in per_process)
    longest = max(p["train_s"] for p in per_process)
    row = {
        "env_id": SAME_ENV,
        "impl": impl,
        "processes": len(per_process),
        "seeds_per_process": seeds_per_process,
        "timesteps": timesteps,
        "timesteps_per_run": per_process[0]["timesteps"] // seeds_per_process,
        "compile_s": max(compile_s) if compile_s else None,
        "train_s": longest,
        "steps_per_s": sum(p["timesteps"] / p["train_s"] for p in per_process),
        "steps_per_s_span": timesteps / span,
        "steps_per_s_with_compile": timesteps / (longest + (max(compile_s) if compile_s else 0)),
        "per_process": [
            {k: v for k, v in p.items() if k != "hyperparameters"} for p in per_process
        ],
        "hyperparameters": per_process[0]["hyperparameters"],
    }
    for key in ("first_update_return", "last_update_return"):
        if key in per_process[0]:
            row[key] = float(np.mean([p[key] for p in per_process]))
    return row


def same_hyperparameters(
    updates: int, processes: int, seeds: int, quick: bool = False
) -> dict[str, Any]:
    """SB3 and the jitted PPO at identical hyperparameters, on one core and on ``processes``
    cores, each pair run back to back (``quick``: at the sizes of ``ppo_common.QUICK_SIZES``;
    with one process, SB3's run of the both-cores pair is in this process, the jitted PPO's
    in a spawned one, which keeps the path of a full run)."""
    config = same_config(updates, quick)
    torch.set_num_threads(SAME_TORCH_THREADS)
    seeds_each = seeds // processes
    rows = []
    with tqdm(total=6, desc="identical hyperparameters", unit="run") as bar:
        rows.append(headline_row(SB3_REFERENCE, [prepare_sb3(SB3_REFERENCE, config, bar)()], 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} 1 seed")
        rows.append(headline_row(JITTED, [prepare_ours(config, 1)()], 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} {seeds} seeds")
        rows.append(headline_row(JITTED, [prepare_ours(config, seeds)()], seeds))
        bar.update()
        bar.set_postfix_str(f"{SB3_REFERENCE} x {processes} processes")
        if quick and processes == 1:  # nothing runs at once: this process stands in for it
            per_process = [prepare_sb3(SB3_REFERENCE, config)()]
        else:
            per_process = run_processes("sb3", config, processes, 1)
        rows.append(headline_row(SB3_REFERENCE, per_process, 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} x {processes} processes")
        per_process = run_processes("ours", config, processes, seeds_each)
        rows.append(headline_row(JITTED, per_process, seeds_each))
        bar.update()
        rows.append(headline_row(SB3_OURS, [prepare_sb3(SB3_OURS, config, bar)()], 1))
        bar.update()
    assert len({r["timesteps_per_run"] for r in rows}) == 1, [r["timesteps_per_run"] for r in rows]
    sb3_one, sb3_both = rows[0], rows[3]
    for r in rows:
        r["vs_sb3_1_process"] = r["steps_per_s"] / sb3_one["steps_per_s"]
        r["vs_sb3_both_cores"] = r["steps_per_s"] / sb3_both["steps_per_s"]
    ours_both = rows[4]
    ratio = ours_both["vs_sb3_both_cores"]
    return {
        "env_id": SAME_ENV,
        "updates": updates,
        "timesteps_per_run": config.num_updates * config.batch_size,
        "processes": processes,
        "seeds": seeds,
        "torch_threads": SAME_TORCH_THREADS,
        "config": config.to_dict(),
        "not_matched": list(SAME_NOT_MATCHED),
        "headline": {
            "ours": f"{JITTED}, {processes} processes x {seeds_each} seeds vmapped",
            "sb3": f"{SB3_REFERENCE}, {processes} processes",
            "ours_steps_per_s": ours_both["steps_per_s"],
            "sb3_steps_per_s": sb3_both["steps_per_s"],
            "ratio": ratio,
            "target": TARGET_BOTH_CORES,
            "met": ratio >= TARGET_BOTH_CORES,
        },
        "rows": rows,
    }


def format_same_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("impl", "<27", lambda r: r["impl"]),
            ("procs x seeds", ">13", lambda r: f"{r['processes']} x {r['seeds_per_process']}"),
            ("env-steps", ">9", lambda r: f"{r['timesteps']:,}"),
            ("compile s", ">9", lambda r: optional(r["compile_s"], ".1f")),
            ("train s", ">7", lambda r: f"{r['train_s']:.1f}"),
            ("env-steps/s", ">11", lambda r: f"{r['steps_per_s']:,.0f}"),
            ("x SB3 1 proc", ">12", lambda r: f"{r['vs_sb3_1_process']:,.1f}"),
            ("x SB3 both cores", ">16", lambda r: f"{r['vs_sb3_both_cores']:,.1f}"),
        ],
    )


def print_same(same: dict[str, Any]) -> None:
    c, head = same["config"], same["headline"]
    print(
        f"Identical hyperparameters (the headline): PPO on {same['env_id']}, "
        f"{same['timesteps_per_run']:,} env-steps per training run ({same['updates']} updates "
        f"x {c['num_envs']} envs x {c['num_steps']} steps), {c['update_epochs']} epochs x "
        f"{c['num_minibatches']} minibatches, {'x'.join(map(str, c['hidden_sizes']))} tanh "
        f"networks, torch threads {same['torch_threads']} per process; procs x seeds: "
        "processes running at once x training runs (seeds) per process; env-steps/s = the sum "
        "over processes of env-steps / train s"
    )
    print(format_same_table(same["rows"]))
    print(
        f"Target: {head['ours']} >= {head['target']:,.0f}x {head['sb3']} (total env-steps/s, "
        f"both on both cores): {head['ours_steps_per_s']:,.0f} / {head['sb3_steps_per_s']:,.0f}"
        f" = {head['ratio']:,.1f}x -> {verdict(head['met'])}"
    )
    print("  not matched: " + "; ".join(same["not_matched"]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--same-updates",
        type=int,
        help=f"updates of each training run (default {SAME_UPDATES}, {QUICK_SAME_UPDATES} "
        "with --quick)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        help=f"processes of the both-cores runs (default {PROCESSES}, 1 with --quick)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help=f"seeds of the jitted PPO's vmapped runs (default {SEEDS}, {QUICK_SEEDS} with "
        "--quick)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: one update of 4 patients x 72 steps, one epoch of 2 minibatches, "
        "one seed, one process (spawned for the jitted PPO only)",
    )
    args = parser.parse_args(argv)
    if args.same_updates is None:
        args.same_updates = QUICK_SAME_UPDATES if args.quick else SAME_UPDATES
    if args.seeds is None:
        args.seeds = QUICK_SEEDS if args.quick else SEEDS
    if args.processes is None:
        args.processes = 1 if args.quick else PROCESSES
    positive(parser, same_updates=args.same_updates, processes=args.processes, seeds=args.seeds)
    if args.seeds % args.processes:
        parser.error("--seeds must be a multiple of --processes")
    args.out = output_path(args.out, "ppo_speed_same", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    settings = {"same_updates": args.same_updates, "processes": args.processes}
    info = environment(settings | {"seeds": args.seeds, "torch_threads": SAME_TORCH_THREADS}, True)
    threads = torch.get_num_threads()
    try:
        same = same_hyperparameters(args.same_updates, args.processes, args.seeds, args.quick)
    finally:
        torch.set_num_threads(threads)
    finish(info)
    print_same(same)
    head = same["headline"]
    results = {
        "headline": head,
        "environment": info,
        "same_hyperparameters": same,
        "targets": {
            "same_hyperparameters_both_cores": {
                "target": TARGET_BOTH_CORES,
                "evaluated": True,
                "value": head["ratio"],
                "met": head["met"],
            }
        },
    }
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
