"""Treatment planning and parameter fitting by gradients through the simulator.

Three parts, one JSON (``benchmarks/results/planning.json``) and one figure (``planning.png``):

- **planning**: for SepsisManagement-v0 and -v1 (hard), the open-loop schedule of
  ``sepsisim_jax.planning.optimize_schedule`` over the whole episode, started from mid-range
  actions, from the heuristic's and from PPO's actions on each patient, against the heuristic
  and a PPO policy on the same held-out patients (same admissions, same noise). PPO is trained
  here with a small budget (``--timesteps``) unless a checkpoint is given. Targets: the
  planned return from mid-range (mean over patients) at least the heuristic's and at least
  PPO's; a plan started from a policy's actions keeps its best iterate, so it is never below
  that policy (up to the start's 0.1% margin inside the action bounds).
- **gradient check**: the gradient of one -v1 patient's smoothed return in each hour's fluid and
  dose change (through the coupled ODE) against central differences, in float64.
- **fit**: ``fit_patient`` on a synthetic patient per version: six parameters drawn as a
  virtual patient's (log-normal spread 0.2; the other parameters are the population's), a
  randomised 24-hour treatment, noise-free simulation plus Gaussian measurement noise on MAP,
  lactate, urine output and volume; the fit starts from the population's values and weighs
  each feature by its noise sd. The same fit on the noise-free trajectory is reported beside.

Usage: ``python benchmarks/planning.py [--patients 8] [--steps 200] [--timesteps 1000000]
[--checkpoint-v0 DIR] [--checkpoint-v1 DIR] [--quick] [--out FILE]``; ``--timesteps 0`` stands
an untrained PPO network in for the trained one. ``--quick`` is a smoke test:
SepsisManagement-v0 only for planning and fitting, 2 patients, 2 Adam and 2 fit steps, the
untrained PPO network, no gradient check.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import Target, initial_ppo_policy, output_path, report
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.cohort.rollout import rollout_episodes
from sepsisim_jax.physiology.virtual_patients import per_patient_fields, sample_patient
from sepsisim_jax.planning import (
    Plan,
    fit_patient,
    optimize_schedule,
    schedule_returns,
    simulate_observations,
)
from sepsisim_jax.policies import heuristic_policy
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import default_config, held_out_key, load_checkpoint, train_ppo

ENV_IDS = ("SepsisManagement-v0", "SepsisManagement-v1")
SEVERITY = "hard"
ANTIBIOTIC_HOURS = (0, 6)  # enumerated start hours: at admission or after six hours
FIT_SPREAD = 0.2  # sd of log parameters of the synthetic patients
FIT_HOURS = 24
LR = 0.05
FIT_NAMES = {
    "SepsisManagement-v0": (
        "map_baseline",
        "fluid_map_gain",
        "vaso_map_gain",
        "fluid_redistribution_rate",
        "clearance_rate",
        "k_growth",
    ),
    "SepsisManagement-v1": (
        "map_baseline",
        "volume_map_gain",
        "vaso_emax",
        "leak_rate",
        "clearance_rate",
        "k_pg",
    ),
}
# Measurement noise sd of the observed features; the others are left out of the fit.
MEASUREMENT_SD = {
    "map_mmhg": 2.0,
    "lactate": 0.2,
    "urine_output": 0.05,
    "intravascular_volume": 0.1,
}
NOISELESS = {"map_noise_sd": 0.0, "urine_noise_sd": 0.0, "admission_jitter": 0.0}


# --- planning ---------------------------------------------------------------------------------


def ppo_policy(env_id: str, timesteps: int, checkpoint: str | None) -> tuple[Any, dict]:
    """A PPO policy for ``env_id`` (hard): loaded, or trained with ``timesteps`` on one seed
    (0: untrained, its initial network)."""
    if checkpoint:
        return load_checkpoint(checkpoint), {"checkpoint": checkpoint}
    if timesteps == 0:
        return initial_ppo_policy(default_config(env_id, SEVERITY)), {"timesteps": 0}
    config = default_config(env_id, SEVERITY, total_timesteps=timesteps)
    result = train_ppo(config, n_seeds=1, seed=0, progress=True)
    facts = {
        "timesteps": config.num_updates * config.batch_size,
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
    }
    return result.policy, facts


def plan_env(
    env_id: str, args: argparse.Namespace, checkpoint: str | None
) -> tuple[dict[str, Any], tuple[Any, Plan]]:
    """Both planner starts and the two policies on the same held-out patients: the table row,
    and the env with its plan from the heuristic's actions (for the figure)."""
    env, params = sepsisim_jax.make(env_id, severity=SEVERITY)
    ppo, ppo_facts = ppo_policy(env_id, args.timesteps, checkpoint)
    key = held_out_key(0)
    policies = {"heuristic": heuristic_policy(env), "ppo": ppo}
    horizon = int(params.max_steps_in_episode)  # the whole episode, as the planner's
    rollouts = {
        name: rollout_episodes(env, params, policy, key, args.patients, horizon)
        for name, policy in policies.items()
    }
    plans, seconds = {}, {}
    starts = {"mid-range": None, "heuristic": policies["heuristic"], "ppo": ppo}
    for start, init in starts.items():
        begin = time.perf_counter()
        plans[start] = optimize_schedule(
            env,
            params,
            key,
            steps=args.steps,
            n_patients=args.patients,
            init=init,
            switch_hours=ANTIBIOTIC_HOURS,
            compare=policies,
        )
        jax.block_until_ready(plans[start])
        seconds[start] = time.perf_counter() - begin
    for name, policy_returns in plans["mid-range"].comparison.items():  # the same patients
        np.testing.assert_array_equal(
            np.asarray(policy_returns), np.asarray(rollouts[name].returns)
        )
    row = {
        "env_id": env_id,
        "severity": SEVERITY,
        "patients": args.patients,
        "horizon": horizon,
        "steps": args.steps,
        "antibiotic_hours": list(ANTIBIOTIC_HOURS),
        "ppo_training": ppo_facts,
    }
    for name, stats in rollouts.items():
        row[name] = _summary(stats.returns) | {"survival": float(np.mean(stats.survived))}
    for start, plan in plans.items():
        row[f"planned ({start})"] = _summary(plan.final_return) | {
            "initial_mean_return": float(np.mean(plan.initial_return)),
            "antibiotic_hour": np.asarray(plan.switch_hour).tolist(),
            "seconds": seconds[start],
            "returns_per_step_mean": np.asarray(plan.returns).mean(axis=1).tolist(),
        }
    return row, (env, plans["heuristic"])


def _summary(returns: jax.Array) -> dict[str, Any]:
    values = np.asarray(returns, np.float64)
    return {
        "mean_return": float(values.mean()),
        "sd_return": float(values.std()),
        "returns": values.tolist(),
    }


def plan_columns() -> list[Column]:
    def cell(name: str):
        return lambda r: f"{r[name]['mean_return']:.1f} ± {r[name]['sd_return']:.1f}"

    return [
        ("environment", "<20", lambda r: r["env_id"]),
        ("patients", ">8", lambda r: str(r["patients"])),
        ("heuristic", ">15", cell("heuristic")),
        ("PPO", ">15", cell("ppo")),
        ("planned (mid)", ">15", cell("planned (mid-range)")),
        ("planned (heur.)", ">15", cell("planned (heuristic)")),
        ("planned (PPO)", ">15", cell("planned (ppo)")),
        ("s (mid)", ">7", lambda r: f"{r['planned (mid-range)']['seconds']:.0f}"),
    ]


# --- gradient check ---------------------------------------------------------------------------


def gradient_check(hours: int = 4) -> dict[str, Any]:
    """Reverse-mode gradient of one -v1 patient's smoothed return against central differences
    in every hour's fluid bolus and dose change, in float64."""
    with jax.enable_x64(True):
        env, params = sepsisim_jax.make("SepsisManagement-v1", severity=SEVERITY)
        env = env.with_transition_gradients().with_smoothed_rewards()
        key = held_out_key(0)
        value_and_grad = jax.jit(
            jax.value_and_grad(lambda s: schedule_returns(env, params, key, s[None])[0])
        )
        schedule = jnp.tile(jnp.asarray([400.0, 0.04, 1.0]), (hours, 1))
        _, grad = value_and_grad(schedule)
        errors = []
        for hour in range(hours):
            for component, eps in ((0, 1e-2), (1, 1e-6)):
                step = jnp.zeros_like(schedule).at[hour, component].set(eps)
                central = (
                    value_and_grad(schedule + step)[0] - value_and_grad(schedule - step)[0]
                ) / (2 * eps)
                errors.append(float(abs(grad[hour, component] - central) / abs(central)))
    return {
        "env_id": "SepsisManagement-v1",
        "hours": hours,
        "entries": len(errors),
        "max_relative_error": max(errors),
    }


# --- fit --------------------------------------------------------------------------------------


def fit_env(env_id: str, seed: int, steps: int) -> dict[str, Any]:
    """Draw the fitted parameters of a patient (the others are the population's), simulate a
    randomised day, add measurement noise, fit from the population's values."""
    env, population = sepsisim_jax.make(env_id, severity=SEVERITY, **NOISELESS)
    names = FIT_NAMES[env_id]
    rng = np.random.default_rng(seed)
    fields = per_patient_fields(population.patient)
    drawn = sample_patient(
        population.patient, FIT_SPREAD, jnp.asarray(rng.uniform(size=len(fields)))
    )
    truth = {f.name: float(f.read(drawn)) for f in fields if f.name in names}
    patient = sepsisim_jax.replace_params(population, **truth)  # the rest: the population's
    actions = rng.uniform(env.action_low, env.action_high, (FIT_HOURS, env.num_actions))
    actions[:, 0] *= 0.5  # boluses up to 500 mL/h
    actions[:, 2] = 1.0  # the antibiotic from admission: the patient lives through the day
    key = jax.random.key(seed)
    clean = np.asarray(simulate_observations(env, patient, key, jnp.asarray(actions, jnp.float32)))
    scale = np.full(len(env.observation_names), np.inf)
    observed = clean.copy()
    for name, sd in MEASUREMENT_SD.items():
        i = env.observation_index(name)
        scale[i] = sd
        observed[:, i] += sd * rng.standard_normal(observed.shape[0])
    fit = fit_patient(
        env,
        population,
        key,
        actions,
        observed,
        names,
        truth=truth,
        steps=steps,
        scale=scale,
        learning_rate=LR,
    )
    noise_free = fit_patient(
        env,
        population,
        key,
        actions,
        clean,
        names,
        truth=truth,
        steps=steps,
        scale=scale,
        learning_rate=LR,
    )
    return {
        "env_id": env_id,
        "hours": FIT_HOURS,
        "measurement_sd": MEASUREMENT_SD,
        "steps": steps,
        "final_loss": float(fit.loss[-1]),
        "rows": [
            row
            | {
                "noise_free_recovered": clean_row["recovered"],
                "noise_free_relative_error": clean_row["relative_error"],
            }
            for row, clean_row in zip(fit.rows(), noise_free.rows(), strict=True)
        ],
    }


FIT_COLUMNS: list[Column] = [
    ("parameter", "<26", lambda r: r["parameter"]),
    ("true", ">9", lambda r: f"{r['true']:.4g}"),
    ("start", ">9", lambda r: f"{r['start']:.4g}"),
    ("recovered", ">9", lambda r: f"{r['recovered']:.4g}"),
    ("rel. error", ">10", lambda r: f"{r['relative_error']:.2%}"),
    ("noise-free", ">10", lambda r: f"{r['noise_free_relative_error']:.2%}"),
]


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200, help="gradient steps of the planner")
    parser.add_argument("--fit-steps", type=int, default=2000)
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="PPO budget per env")
    parser.add_argument("--checkpoint-v0", default=None)
    parser.add_argument("--checkpoint-v1", default=None)
    parser.add_argument(
        "--quick", action="store_true", help="v0 only, 2 patients and steps, untrained PPO"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    env_ids = ENV_IDS[:1] if args.quick else ENV_IDS
    if args.quick:
        args.patients, args.steps, args.fit_steps, args.timesteps = 2, 2, 2, 0
    out = output_path(args.out, "planning", args.quick)
    checkpoints = {
        "SepsisManagement-v0": args.checkpoint_v0,
        "SepsisManagement-v1": args.checkpoint_v1,
    }

    rows, fits, figure_case = [], [], None
    for env_id in tqdm(env_ids, desc="planning"):
        row, case = plan_env(env_id, args, checkpoints[env_id])
        rows.append(row)
        figure_case = case
    check = None if args.quick else gradient_check()
    for seed, env_id in enumerate(tqdm(env_ids, desc="fits")):
        fits.append(fit_env(env_id, seed, args.fit_steps))

    for fit in fits:
        sd = fit["measurement_sd"]
        print(f"\nfit_patient, {fit['env_id']} ({fit['hours']} h, measurement sd {sd})")
        print(text_table(fit["rows"], FIT_COLUMNS))
    if check is None:
        print("\ngradient check: skipped (--quick)")
    else:
        print(
            f"\ngradient check ({check['env_id']}, {check['hours']} h, {check['entries']} "
            f"entries, float64): max relative error {check['max_relative_error']:.2e}"
        )
    print(
        f"\nOpen-loop plans ({args.steps} Adam steps, antibiotic hours {ANTIBIOTIC_HOURS}) from "
        "mid-range, the heuristic's and PPO's actions vs the policies, on "
        f"{args.patients} held-out patients, whole episodes; return mean ± sd; s (mid): "
        "seconds of the plan from mid-range, compilation included"
    )

    def margin(r: dict[str, Any], other: str) -> float:
        return r["planned (mid-range)"]["mean_return"] - r[other]["mean_return"]

    targets = [
        Target(
            "vs_heuristic",
            "planned (mid-range) - heuristic",
            {r["env_id"]: margin(r, "heuristic") for r in rows},
            0.0,
            "+.2f",
        ),
        Target(
            "vs_ppo",
            "planned (mid-range) - PPO",
            {r["env_id"]: margin(r, "ppo") for r in rows},
            0.0,
            "+.2f",
        ),
    ]
    settings = {
        "patients": args.patients,
        "steps": args.steps,
        "fit_steps": args.fit_steps,
        "ppo_timesteps": args.timesteps,
        "quick": args.quick,
    }
    results = report(out, settings, rows, plan_columns(), targets, gradient_check=check, fits=fits)
    env, plan = figure_case
    figure = plotting.planned_schedule(plan, env, patient=0, title=f"{env.env_id} hard, patient 0")
    figure.savefig(out.with_suffix(".png"), dpi=120)
    print(f"Figure written to {out.with_suffix('.png')}")
    return results


if __name__ == "__main__":
    main()
