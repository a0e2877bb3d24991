"""PPO training speed: sepsisim_jax's jitted PPO against stable-baselines3 PPO on the reference.

Four parts, measured in one run:

- **the headline, identical hyperparameters** on SepsisManagement-v0: sepsisim_jax's default
  PPO configuration (64 envs x 72 steps per update, 4 epochs of 8 minibatches, 64x64 tanh
  actor and critic) in every run, the same env-steps per training run, torch on one thread per
  process. stable-baselines3 PPO on a ``DummyVecEnv`` of 64 reference envs, in one process and
  in two processes at once (one per core); SB3 PPO on ``sepsisim_jax.sb3.SepsisVecEnv``; the
  jitted PPO with one seed, with four seeds vmapped in one process, and in two processes at
  once of two vmapped seeds each. Verdict: the jitted PPO's total env-steps/s over SB3's,
  both on both cores, >= 100x;
- **a profile** of one update of the jitted PPO: each stage (rollout: env steps, policy
  pass, value of ``final_observation``; GAE; minibatch epochs: shuffles, gradient steps)
  jitted and timed alone, at one seed and at four seeds vmapped;
- **SB3 at the reference's hyperparameters** (a different configuration: 11-22x more gradient
  steps per sample), per environment, against the jitted PPO at its defaults;
- the jitted PPO for 5,000,000 timesteps on SepsisManagement, compilation included
  (target: under 180 s).

See ``README.md`` in this directory for the method and the JSON schema.

Usage: ``python benchmarks/ppo_speed.py [--quick] [--same-updates N] [--skip-same]
[--skip-profile] [--envs ...] [--timesteps N] [--skip-5m]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
import torch
from common import RESULTS_DIR, Timed, machine_info, optional, verdict, write_results
from gymnasium.wrappers import RescaleAction
from sepsisim.training.configs import ENV_CONFIGS, SEED
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.sb3 import make_sb3_vec_env
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import PPOConfig, default_config, init_seeds, make_train, train_ppo
from sepsisim_jax.training.networks import gaussian_log_prob, to_env_action
from sepsisim_jax.training.ppo import (
    UpdateParts,
    generalized_advantages,
    make_update_parts,
    permutation,
)

SEVERITY = "medium"  # the reference's default, which its training uses
DEFAULT_TIMESTEPS = 20_000
QUICK_TIMESTEPS = 2_048  # one stable-baselines3 rollout (n_steps = 2048)
LONG_ENV = "SepsisManagement-v0"
LONG_TIMESTEPS = 5_000_000
QUICK_LONG_TIMESTEPS = 200_000
TARGET_BOTH_CORES = 100.0  # headline: our total env-steps/s over SB3's, both on both cores
TARGET_VS_SB3 = 100.0  # reference hyperparameters: the same ratio, one core each
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
SAME_UPDATES = 20  # 20 x 4,608 = 92,160 env-steps per training run
QUICK_SAME_UPDATES = 2
SAME_TORCH_THREADS = 1
PROCESSES = 2  # one per core of the 2-core machine
SEEDS = 4  # the jitted PPO's seeds vmapped in one process, or split over PROCESSES
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
REFERENCE_LABEL = "SB3 at the reference's hyperparameters"
# The ids the reference has (the -v0 ids), the envs of the reference-hyperparameter part.
REFERENCE_IDS = tuple(i for i in sepsisim_jax.ENV_IDS if f"sepsisim/{i}" in ENV_CONFIGS)
PROFILE_UPDATES = 10  # updates per timed call of a stage
PROFILE_REPEATS = 10  # interleaved rounds; the fastest call of each stage counts
PROFILE_SEEDS = (1, 4)


class _Progress(BaseCallback):
    """Shows stable-baselines3's timesteps on a tqdm bar once per rollout."""

    def __init__(self, bar: tqdm | None, label: str) -> None:
        super().__init__()
        self.bar, self.label = bar, label

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.label} {self.num_timesteps:,} steps")


def same_config(updates: int) -> PPOConfig:
    """sepsisim_jax's default configuration on ``SAME_ENV`` for ``updates`` updates."""
    one_update = default_config(SAME_ENV, SEVERITY).batch_size
    return default_config(SAME_ENV, SEVERITY, total_timesteps=updates * one_update)


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


# ---------------------------------------------------------------------------------------------
# The headline: one training run per process, timed apart from its preparation
# ---------------------------------------------------------------------------------------------


def _run_times(train: Callable[[], None]) -> dict[str, float]:
    """Run ``train``; its wall time and its start and end on the shared clock."""
    start_wall, start = time.time(), time.perf_counter()
    train()
    train_s = time.perf_counter() - start
    return {"train_s": train_s, "start_unix": start_wall, "end_unix": start_wall + train_s}


def prepare_sb3(
    impl: str, config: PPOConfig, bar: tqdm | None = None
) -> tuple[Callable[[], dict[str, Any]], float | None]:
    """stable-baselines3 PPO with ``config``'s hyperparameters on ``impl``'s vec env, ready
    to learn; returns the training call (which times ``model.learn`` only) and the vec env's
    compilation seconds (SepsisVecEnv) or None."""
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
        times = _run_times(
            lambda: model.learn(total_timesteps=timesteps, callback=_Progress(bar, impl))
        )
        assert model.num_timesteps == timesteps
        normalized.close()
        return times | {
            "timesteps": timesteps,
            "compile_s": compile_s,
            "hyperparameters": _describe(hyper),
        }

    return train, compile_s


def prepare_ours(config: PPOConfig, n_seeds: int) -> Callable[[], dict[str, Any]]:
    """The jitted PPO, ``n_seeds`` seeds vmapped: initialised and compiled (timed), ready to
    train all ``config.num_updates`` updates in one call of ``jit(vmap(trainer.run))``."""
    start = time.perf_counter()
    trainer = make_train(config)
    runner = init_seeds(trainer, jax.random.split(jax.random.key(0), n_seeds))
    run = jax.jit(jax.vmap(trainer.run, in_axes=(0, None)), static_argnums=1)
    compiled = run.lower(runner, config.num_updates).compile()
    compile_s = time.perf_counter() - start

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


def _process_main(kind: str, updates: int, n_seeds: int, barrier: Any, results: Any) -> None:
    """One process of a parallel measurement: prepare, wait for the others, train, report."""
    torch.set_num_threads(SAME_TORCH_THREADS)
    warnings.filterwarnings("ignore", module="gymnasium")
    config = same_config(updates)
    if kind == "sb3":
        train, _ = prepare_sb3(SB3_REFERENCE, config)
    else:
        train = prepare_ours(config, n_seeds)
    barrier.wait()
    results.put(train())


def run_processes(kind: str, updates: int, processes: int, seeds_each: int) -> list[dict]:
    """``processes`` fresh processes (spawned) of ``kind`` ("sb3" or "ours"), whose training
    runs start together after every process is prepared; their results."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_process_main, args=(kind, updates, seeds_each, barrier, results))
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


def same_hyperparameters(updates: int, processes: int, seeds: int) -> dict[str, Any]:
    """The headline: SB3 and the jitted PPO at identical hyperparameters, on one core and on
    ``processes`` cores, each pair run back to back."""
    config = same_config(updates)
    torch.set_num_threads(SAME_TORCH_THREADS)
    seeds_each = seeds // processes
    rows = []
    with tqdm(total=6, desc="identical hyperparameters", unit="run") as bar:
        train, _ = prepare_sb3(SB3_REFERENCE, config, bar)
        rows.append(headline_row(SB3_REFERENCE, [train()], 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} 1 seed")
        rows.append(headline_row(JITTED, [prepare_ours(config, 1)()], 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} {seeds} seeds")
        rows.append(headline_row(JITTED, [prepare_ours(config, seeds)()], seeds))
        bar.update()
        bar.set_postfix_str(f"{SB3_REFERENCE} x {processes} processes")
        per_process = run_processes("sb3", updates, processes, 1)
        rows.append(headline_row(SB3_REFERENCE, per_process, 1))
        bar.update()
        bar.set_postfix_str(f"{JITTED} x {processes} processes")
        per_process = run_processes("ours", updates, processes, seeds_each)
        rows.append(headline_row(JITTED, per_process, seeds_each))
        bar.update()
        train, _ = prepare_sb3(SB3_OURS, config, bar)
        rows.append(headline_row(SB3_OURS, [train()], 1))
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


def _setup(r: dict[str, Any]) -> str:
    return f"{r['processes']} x {r['seeds_per_process']}"


def format_same_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("impl", "<27", lambda r: r["impl"]),
            ("procs x seeds", ">13", _setup),
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


# ---------------------------------------------------------------------------------------------
# Profile: the stages of one update, each jitted and timed alone
# ---------------------------------------------------------------------------------------------


def _repeat(body: Callable[[Any, Any], Any], n: int) -> Callable[[Any], Any]:
    """``n`` iterations of ``body(carry, i)`` in one ``lax.scan``; returns the last carry."""
    return lambda carry: jax.lax.scan(lambda c, i: (body(c, i), None), carry, jnp.arange(n))[0]


def profile_stages(
    parts: UpdateParts, config: PPOConfig, runner: Any, batch: Any, data: Any
) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """Stage -> (function of one seed's carry, that carry): the stage as often as
    ``PROFILE_UPDATES`` updates run it. Each stage's input depends on its loop carry, so that
    XLA cannot hoist the work out of the loop."""
    env, network, params = parts.env, parts.network, runner.train_state.params
    n_envs, n_epochs = config.num_envs, config.update_epochs
    steps = PROFILE_UPDATES * config.num_steps
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    zero = jnp.zeros((n_envs, len(env.action_low)))
    action = to_env_action(zero, env.action_low, env.action_high)
    obs = runner.obs_stats.normalize(runner.obs)

    def env_steps(carry: Any, _: Any) -> Any:
        key, env_state = carry
        key, _, key_env = jax.random.split(key, 3)
        keys = jax.random.split(key_env, n_envs)
        _, env_state, *_ = step_envs(keys, env_state, action, parts.env_params)
        return key, env_state

    def policy_pass(carry: Any, _: Any) -> Any:
        key, obs = carry
        key, key_action = jax.random.split(key)
        mean, log_std, value = network.apply(params, obs)
        sample = mean + jnp.exp(log_std) * jax.random.normal(key_action, mean.shape)
        log_prob = gaussian_log_prob(sample, mean, log_std)
        return key, obs + 1e-6 * (value + log_prob)[:, None]

    def final_value(obs: jax.Array, _: Any) -> jax.Array:
        return obs + 1e-6 * network.apply(params, obs)[2][:, None]

    def gae(batch: Any, _: Any) -> Any:
        advantage, target = generalized_advantages(batch, config.gamma, config.gae_lambda)
        return batch.replace(reward=batch.reward + 1e-6 * (advantage + target))

    def learn(carry: Any, _: Any) -> Any:
        train_state, key = carry
        key, key_learn = jax.random.split(key)
        return parts.learn(train_state, key_learn, data)[0], key

    def shuffles(carry: Any, shuffle: Callable[[jax.Array, int], jax.Array]) -> Any:
        total, key = carry
        for _ in range(n_epochs):
            key, key_perm = jax.random.split(key)
            order = shuffle(key_perm, config.batch_size)
            total = total + sum(jnp.sum(x[order][0]) for x in jax.tree.leaves(data))
        return total, key

    minibatches = jax.tree.map(
        lambda x: x.reshape((config.num_minibatches, config.minibatch_size, *x.shape[1:])), data
    )

    def gradient_steps(train_state: Any, _: Any) -> Any:
        def epoch(state: Any, _: Any) -> Any:
            return jax.lax.scan(parts.gradient_step, state, minibatches)[0], None

        return jax.lax.scan(epoch, train_state, None, n_epochs)[0]

    key, total = runner.key, jnp.zeros(())
    return {
        "update": (_repeat(lambda r, _: parts.update(r, None)[0], PROFILE_UPDATES), runner),
        "rollout": (_repeat(lambda r, _: parts.collect(r)[0], PROFILE_UPDATES), runner),
        "env steps": (_repeat(env_steps, steps), (key, runner.env_state)),
        "policy pass": (_repeat(policy_pass, steps), (key, obs)),
        "final_observation value": (_repeat(final_value, steps), obs),
        "GAE": (_repeat(gae, PROFILE_UPDATES), batch),
        "minibatch epochs": (_repeat(learn, PROFILE_UPDATES), (runner.train_state, key)),
        "shuffles": (_repeat(lambda c, _: shuffles(c, permutation), PROFILE_UPDATES), (total, key)),
        "gradient steps": (_repeat(gradient_steps, PROFILE_UPDATES), runner.train_state),
        "shuffles, jax.random.permutation": (
            _repeat(lambda c, _: shuffles(c, jax.random.permutation), PROFILE_UPDATES),
            (total, key),
        ),
    }


# (stage, depth, what it times), in table order. "rest of X" rows are derived: X less the rows
# below it; the last row is for information (what the shuffles cost before this benchmark's
# version of the trainer).
PROFILE_ROWS = (
    ("update", 0, "one whole update: trainer.run's loop body"),
    ("rollout", 1, "72 steps of 64 patients (parts.collect)"),
    ("env steps", 2, "vmapped env.step and its key splits, a fixed action"),
    ("policy pass", 2, "actor-critic on 64 obs, Gaussian action, log-prob"),
    ("final_observation value", 2, "critic on the 64 pre-reset obs"),
    ("rest of rollout", 2, "obs statistics, normalisation, bookkeeping"),
    ("GAE", 1, "generalized_advantages over 72 x 64 transitions"),
    ("minibatch epochs", 1, "parts.learn: 4 x (shuffle, 8 gradient steps)"),
    ("shuffles", 2, "4 permutations of 4,608 samples, the gathers"),
    ("gradient steps", 2, "32 x (loss, gradient, clipping, Adam)"),
    ("rest of minibatch epochs", 2, "minibatch reshapes, loop"),
    ("rest of update", 1, "flattening the batch, metrics"),
    ("shuffles, jax.random.permutation", 0, "information: the shuffles with JAX's permutation"),
)
REST = {
    "rest of rollout": ("rollout", ("env steps", "policy pass", "final_observation value")),
    "rest of minibatch epochs": ("minibatch epochs", ("shuffles", "gradient steps")),
    "rest of update": ("update", ("rollout", "GAE", "minibatch epochs")),
}


def profile(seed_counts: Sequence[int], repeats: int) -> dict[str, Any]:
    """Time each stage of one update of the jitted PPO (the headline's configuration), vmapped
    over each count of seeds: compile everything, then ``repeats`` interleaved rounds; the
    fastest call of each stage counts. Milliseconds per update (of all the seeds)."""
    config = same_config(PROFILE_UPDATES)
    parts, trainer = make_update_parts(config), make_train(config)

    def inputs(runner: Any) -> tuple[Any, Any]:
        _, (batch, _) = parts.collect(runner)
        advantage, target = generalized_advantages(batch, config.gamma, config.gae_lambda)
        flat = jax.tree.map(
            lambda x: x.reshape((config.batch_size, *x.shape[2:])), (batch, advantage, target)
        )
        return batch, flat

    jobs: list[tuple[tuple[int, str], Timed]] = []
    measured = [name for name, _, _ in PROFILE_ROWS if name not in REST]
    with tqdm(total=len(seed_counts) * len(measured), desc="profile: compile", unit="stage") as bar:
        for n_seeds in seed_counts:
            runner = init_seeds(trainer, jax.random.split(jax.random.key(0), n_seeds))
            batch, data = jax.jit(jax.vmap(inputs))(runner)
            for name in measured:

                def one(r: Any, b: Any, d: Any, name: str = name) -> Any:
                    fn, carry = profile_stages(parts, config, r, b, d)[name]
                    return fn(carry)

                start = time.perf_counter()
                compiled = jax.jit(jax.vmap(one)).lower(runner, batch, data).compile()
                args = (runner, batch, data)
                jax.block_until_ready(compiled(*args))
                call = lambda c=compiled, a=args: jax.block_until_ready(c(*a))  # noqa: E731
                jobs.append(((n_seeds, name), Timed({}, 0, call, time.perf_counter() - start)))
                bar.update()
    for _ in tqdm(range(repeats), desc="profile: rounds", unit="round"):
        for _, t in jobs:
            start = time.perf_counter()
            t.run()
            t.run_s.append(time.perf_counter() - start)
    ms = {job: 1e3 * min(t.run_s) / PROFILE_UPDATES for job, t in jobs}
    for n_seeds in seed_counts:
        for name, (whole, parts_of) in REST.items():
            ms[n_seeds, name] = ms[n_seeds, whole] - sum(ms[n_seeds, p] for p in parts_of)
    rows = []
    for name, depth, what in PROFILE_ROWS:
        per = {str(n): ms[n, name] for n in seed_counts}
        share = {str(n): ms[n, name] / ms[n, "update"] for n in seed_counts}
        rows.append(
            {
                "stage": name,
                "depth": depth,
                "what": what,
                "derived": name in REST,
                "ms_per_update": per,
                "share_of_update": share,
            }
        )
    return {
        "config": config.to_dict(),
        "seeds": list(seed_counts),
        "updates_per_call": PROFILE_UPDATES,
        "repeats": repeats,
        "rows": rows,
    }


def format_profile(prof: dict[str, Any]) -> str:
    columns: list[Column] = [
        ("stage", "<34", lambda r: "  " * r["depth"] + r["stage"]),
    ]
    for n in prof["seeds"]:
        key = str(n)
        title = f"ms, {n} seed{'s' if n > 1 else ''}"
        columns.append((title, ">11", lambda r, k=key: f"{r['ms_per_update'][k]:.2f}"))
        columns.append(("%", ">4", lambda r, k=key: f"{100 * r['share_of_update'][k]:.0f}"))
    columns.append(("what", "<50", lambda r: r["what"]))
    return text_table(prof["rows"], columns)


def print_profile(prof: dict[str, Any]) -> None:
    print(
        f"Profile of one update of the jitted PPO (the headline's configuration): each stage "
        f"jitted and vmapped over the seeds, {prof['updates_per_call']} updates' worth per "
        f"call, fastest of {prof['repeats']} interleaved calls; ms per update of all the seeds, "
        "% of the whole update; 'rest of' rows are the difference"
    )
    print(format_profile(prof))


# ---------------------------------------------------------------------------------------------
# SB3 at the reference's hyperparameters (a different configuration), per environment
# ---------------------------------------------------------------------------------------------


def gradient_steps_per_sample(env_id: str) -> float:
    """SB3's gradient steps per sample at the reference's hyperparameters over ours."""
    ref = ENV_CONFIGS[f"sepsisim/{env_id}"]
    config = default_config(env_id, SEVERITY)
    ours = config.update_epochs * config.num_minibatches / config.batch_size
    return ref["n_epochs"] / ref["batch_size"] / ours


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
    row = _row(env_id, "stable-baselines3", model.num_timesteps, None, train_s, hyper)
    row["gradient_steps_per_sample_vs_ours"] = gradient_steps_per_sample(env_id)
    return row


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


def verdicts(
    same: dict[str, Any] | None, rows: list[dict[str, Any]], long_run: dict[str, Any] | None
) -> dict[str, Any]:
    """The headline's verdict, the reference-hyperparameter ratio per environment
    (compilation excluded), and the long run's wall time."""
    ratio = {
        r["env_id"]: {"value": r["vs_sb3"], "met": r["vs_sb3"] >= TARGET_VS_SB3}
        for r in rows
        if r["impl"] == "sepsisim_jax"
    }
    head = None if same is None else same["headline"]
    out: dict[str, Any] = {
        "same_hyperparameters_both_cores": {
            "target": TARGET_BOTH_CORES,
            "evaluated": head is not None,
            "value": None if head is None else head["ratio"],
            "met": None if head is None else head["met"],
        },
        "reference_hyperparameters_vs_sb3": {
            "target": TARGET_VS_SB3,
            "per_env": ratio,
            "met": all(v["met"] for v in ratio.values()),
        },
        "long_run": {"target_s": TARGET_LONG_S, "evaluated": False, "met": None},
    }
    if long_run is not None and long_run["requested_timesteps"] >= LONG_TIMESTEPS:
        out["long_run"].update(evaluated=True, met=long_run["total_s"] < TARGET_LONG_S)
    return out


TIMING_COLUMNS: tuple[Column, ...] = (
    ("timesteps", ">9", lambda r: f"{r['timesteps']:,}"),
    ("compile s", ">9", lambda r: optional(r["compile_s"], ".1f")),
    ("train s", ">8", lambda r: f"{r['train_s']:.1f}"),
    ("env-steps/s", ">11", lambda r: f"{r['steps_per_s']:,.0f}"),
    ("with compile", ">12", lambda r: f"{r['steps_per_s_with_compile']:,.0f}"),
)


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
        f"{REFERENCE_LABEL} (different configuration: {'-'.join(map(str, more))}x more "
        f"gradient steps per sample than the jitted PPO, grad/sample column), severity "
        f"{SEVERITY}; env-steps/s = timesteps / train s ('with compile': / (compile s + "
        "train s)); x SB3 against SB3's env-steps/s; one process each, torch threads as below"
    )
    print(format_table(rows))
    ratio = target["reference_hyperparameters_vs_sb3"]
    print(
        f"Target ({REFERENCE_LABEL}): sepsisim_jax training env-steps/s >= "
        f"{ratio['target']:,.0f}x stable-baselines3's (compilation excluded):"
    )
    for env_id, v in ratio["per_env"].items():
        print(f"  {env_id:24s} {v['value']:>7,.1f}x -> {verdict(v['met'])}")


def print_long_run(target: dict[str, Any], long_run: dict[str, Any] | None) -> None:
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
        "torch_threads": args.torch_threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "stable_baselines3": metadata.version("stable-baselines3"),
        "gymnasium": gymnasium.__version__,
        "severity": SEVERITY,
        "timesteps": args.timesteps,
        "same_updates": None if args.skip_same else args.same_updates,
        "processes": args.processes,
        "seeds": args.seeds,
        "profile_seeds": None if args.skip_profile else list(args.profile_seeds),
        "long_timesteps": None if args.skip_5m else args.long_timesteps,
        "envs": list(args.envs),
        "sb3_seed": SEED,
        "jax_seed": 0,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", choices=REFERENCE_IDS, default=None)
    parser.add_argument(
        "--timesteps", type=int, default=None, help="timesteps of each reference-hyperparameter run"
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
        "--processes", type=int, default=PROCESSES, help="processes of the both-cores runs"
    )
    parser.add_argument(
        "--seeds", type=int, default=SEEDS, help="seeds of the jitted PPO's vmapped runs"
    )
    parser.add_argument(
        "--skip-same", action="store_true", help="skip the identical-hyperparameter comparison"
    )
    parser.add_argument("--skip-profile", action="store_true", help="skip the profile")
    parser.add_argument(
        "--profile-seeds",
        type=int,
        nargs="+",
        default=list(PROFILE_SEEDS),
        help="profile at these seed counts",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch.set_num_threads of the reference-hyperparameter runs (default: torch's "
        "own default for this machine)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument(
        "--quick", action="store_true", help="2 updates, 2,048 timesteps, a 200k-step long run"
    )
    args = parser.parse_args(argv)
    args.envs = args.envs or list(REFERENCE_IDS)
    if args.timesteps is None:
        args.timesteps = QUICK_TIMESTEPS if args.quick else DEFAULT_TIMESTEPS
    if args.same_updates is None:
        args.same_updates = QUICK_SAME_UPDATES if args.quick else SAME_UPDATES
    args.long_timesteps = QUICK_LONG_TIMESTEPS if args.quick else LONG_TIMESTEPS
    if args.out is None:
        args.out = RESULTS_DIR / ("ppo_speed_quick.json" if args.quick else "ppo_speed.json")
    if min(args.timesteps, args.torch_threads, args.same_updates, args.processes) < 1:
        parser.error(
            "--timesteps, --torch-threads, --same-updates and --processes must be positive"
        )
    if args.seeds < 1 or args.seeds % args.processes:
        parser.error("--seeds must be a positive multiple of --processes")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    info = environment_info(args)
    same = None
    if not args.skip_same:
        same = same_hyperparameters(args.same_updates, args.processes, args.seeds)
    prof = None if args.skip_profile else profile(args.profile_seeds, PROFILE_REPEATS)
    torch.set_num_threads(args.torch_threads)
    rows = []
    with tqdm(total=2 * len(args.envs), desc=REFERENCE_LABEL, unit="run") as bar:
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
    target = verdicts(same, rows, long_run)
    if same is not None:
        print_same(same)
        print()
    if prof is not None:
        print_profile(prof)
        print()
    print_reference(rows, target)
    print()
    print_long_run(target, long_run)
    results = {
        "headline": None if same is None else same["headline"],
        "environment": info,
        "same_hyperparameters": same,
        "profile": prof,
        "reference_hyperparameters": {
            "label": REFERENCE_LABEL,
            "torch_threads": args.torch_threads,
            "rows": rows,
        },
        "long_run": long_run,
        "targets": target,
    }
    write_results(args.out, results)


if __name__ == "__main__":
    main()
