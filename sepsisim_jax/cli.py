"""Command line: ``rollout`` (cohorts under the baselines), ``train`` and ``evaluate`` (PPO),
``dataset`` (a Minari dataset of logged episodes under a behaviour policy), ``trial`` (a
virtual trial of treatment protocols).

On a CPU, JAX runs one device's loop on one core. ``train`` therefore splits its seeds over one
host device per core unless told otherwise (``--devices``, or the user's own ``XLA_FLAGS``):
at its defaults on two cores it finished 1.11-1.19x sooner than on one device, compilation
included (benchmarks/cli_devices.py, three runs). ``rollout`` and ``evaluate`` split their
patients only when ``--devices`` asks: the default rollout took longer split (0.84-0.88x), and
evaluation and a 262,144-patient rollout were even at best (0.82-1.04x). Outcomes are the same
on any number of devices.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax

from sepsisim_jax.cohort.rollout import SUMMARY_COLUMNS
from sepsisim_jax.cohort.summary import CHUNK_SIZE, RELATIVE_ERROR, cohort_summary
from sepsisim_jax.envs.base import OBSERVATIONS
from sepsisim_jax.envs.registration import SEVERITIES, env_ids, make
from sepsisim_jax.offline.behaviour import BEHAVIOURS
from sepsisim_jax.plotting import learning_curve
from sepsisim_jax.policies import POLICIES, baseline_policies
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
    rollout.add_argument("--patients", type=_positive_int, default=10_000, help="per cohort")
    rollout.add_argument("--env", nargs="+", choices=env_ids(), default=list(env_ids()))
    rollout.add_argument("--severity", nargs="+", choices=SEVERITIES, default=["medium"])
    rollout.add_argument(
        "--policy",
        nargs="+",
        choices=list(POLICIES),
        help="default: every baseline each environment has",
    )
    rollout.add_argument("--solver", choices=["rk4", "dopri5"], default="rk4")
    rollout.add_argument("--seed", type=int, default=0)
    rollout.add_argument(
        "--chunk-size", type=_positive_int, default=CHUNK_SIZE, help="patients per compiled call"
    )
    rollout.add_argument(
        "--spread", type=float, default=0.0, help="virtual patients: patient_spread in [0, 1]"
    )
    rollout.add_argument(
        "--by-parameter", help="with --spread > 0: also summarise per bin of this parameter"
    )
    rollout.add_argument("--bins", type=_positive_int, default=5, help="equal-probability bins")
    rollout.add_argument("--json", type=Path, help="also write the results to this JSON file")
    _add_devices(rollout, "rollout")
    _add_distributed(rollout)

    train = commands.add_parser(
        "train",
        help="train PPO on one environment, several seeds at once",
        description="Train PPO (fully jitted, seeds vmapped), save the best seed's policy, "
        "a metrics JSON and a learning-curve PNG, and compare with the baselines on held-out "
        "patients.",
    )
    train.add_argument("--env", choices=env_ids(), default="SepsisManagement-v0")
    train.add_argument("--severity", choices=SEVERITIES, default="medium")
    train.add_argument("--timesteps", type=_positive_int, default=2_000_000, help="per seed")
    train.add_argument("--seeds", type=_positive_int, default=4)
    train.add_argument("--seed", type=int, default=0, help="first random seed")
    train.add_argument("--num-envs", type=_positive_int, help="patients per rollout")
    train.add_argument("--eval-patients", type=_positive_int, default=1000)
    train.add_argument("--out", type=Path, default=Path("runs/ppo"), help="output directory")
    _add_devices(train, "train")

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a saved PPO policy against the baselines",
        description="Reload a checkpoint written by `train` and evaluate it on held-out patients.",
    )
    evaluate.add_argument("--checkpoint", type=Path, required=True, help="directory or file")
    evaluate.add_argument("--eval-patients", type=_positive_int, default=1000)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument(
        "--chunk-size", type=_positive_int, default=CHUNK_SIZE, help="patients per compiled call"
    )
    evaluate.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    _add_devices(evaluate, "evaluate")
    _add_distributed(evaluate)
    _add_dataset(commands)
    _add_trial(commands)
    return parser


INCLUSIONS = ("everyone", "hypotensive", "shock-at-admission", "sepsis3-shock")


def _add_trial(commands: Any) -> None:
    trial = commands.add_parser(
        "trial",
        help="a virtual trial: treatment protocols on the same virtual patients",
        description="Treat the same virtual patients under each arm and report mortality, the "
        "risk difference and ratio against the first arm with paired bootstrap intervals, and "
        "the secondary outcomes. An arm is [NAME=]BASE[:SETTING=VALUE,...], with BASE one of "
        "usual_care (settings: the fields of sepsisim_jax.trials.Protocol), heuristic, random "
        "or none; e.g. 'late antibiotic=usual_care:antibiotic_hour=6'.",
    )
    trial.add_argument("--env", choices=env_ids(), default="SepsisManagement-v1")
    trial.add_argument("--severity", choices=SEVERITIES, default="medium")
    trial.add_argument(
        "--spread", type=float, default=0.2, help="virtual patients: patient_spread in [0, 1]"
    )
    trial.add_argument(
        "--arm", action="append", help="an arm (repeat the flag; default: usual_care, heuristic)"
    )
    trial.add_argument("--patients", type=_positive_int, default=2000, help="screened")
    trial.add_argument("--include", choices=INCLUSIONS, default="everyone")
    trial.add_argument(
        "--run-in",
        type=_positive_int,
        help="hours of usual care every arm gives before enrolment (needed by sepsis3-shock)",
    )
    trial.add_argument("--bootstrap", type=_positive_int, default=2000, help="resamples")
    trial.add_argument("--seed", type=int, default=0, help="key of the patients")
    trial.add_argument("--json", type=Path, help="write the design and the rows to this file")
    trial.add_argument("--figure", type=Path, help="write a forest plot (PNG) to this file")


def _add_dataset(commands: Any) -> None:
    dataset = commands.add_parser(
        "dataset",
        help="write a Minari dataset of episodes under a behaviour policy",
        description="Simulate episodes under a behaviour policy with a known density and "
        "write them as a Minari dataset (needs the extra: pip install 'sepsisim-jax[offline]'), "
        "with the policy's true value, from independent patients, in its metadata. The "
        "dataset goes under MINARI_DATASETS_PATH (default ~/.minari/datasets).",
    )
    dataset.add_argument("--env", choices=env_ids(), required=True)
    dataset.add_argument("--severity", choices=SEVERITIES, default="medium")
    dataset.add_argument(
        "--spread", type=float, default=0.0, help="virtual patients: patient_spread in [0, 1]"
    )
    dataset.add_argument("--observation", choices=OBSERVATIONS, default="full")
    dataset.add_argument("--policy", choices=BEHAVIOURS, required=True, help="behaviour policy")
    dataset.add_argument(
        "--epsilon", type=float, default=0.0, help="probability of a uniform random action"
    )
    dataset.add_argument(
        "--scale",
        type=float,
        nargs="+",
        help="Gaussian exploration: sd as a fraction of each action's range (one, or one each)",
    )
    dataset.add_argument("--checkpoint", type=Path, help="with --policy ppo: directory or file")
    dataset.add_argument("--episodes", type=_positive_int, required=True)
    dataset.add_argument("--seed", type=int, default=0)
    dataset.add_argument("--dataset-id", help="Minari id (default: from the env and policy)")
    dataset.add_argument(
        "--value-episodes",
        type=_positive_int,
        default=100_000,
        help="independent patients for the policy's true value",
    )
    dataset.add_argument("--gamma", type=float, default=0.99, help="discount of the true value")
    dataset.add_argument(
        "--chunk-size", type=_positive_int, default=4096, help="patients per compiled call"
    )


def _add_devices(command: argparse.ArgumentParser, name: str) -> None:
    every_core = name in EVERY_CORE_BY_DEFAULT
    default = "one per core" if every_core else "this process's (one on a CPU)"
    command.add_argument(
        "--devices",
        type=_positive_int,
        help=f"host devices to split a CPU into when run as a command (default: {default}; "
        "XLA_FLAGS, if set, decides instead)",
    )


RELAUNCHED = "SEPSISIM_JAX_HOST_DEVICES"  # set in the relaunched process: do not relaunch again
# Commands that split a CPU into one host device per core unless --devices says otherwise (the
# others only when --devices asks): where benchmarks/cli_devices.py measured that it pays.
EVERY_CORE_BY_DEFAULT = ("train",)


def host_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def relaunch_on_host_devices(argv: Sequence[str], requested: int | None) -> None:
    """Run this command again in a process whose CPU is split into ``requested`` host devices
    (default: one per core), unless it already is one, the backend is not a CPU, or the user
    set ``XLA_FLAGS`` (their device count wins).

    JAX fixes the device count when its backend starts, and importing the package starts it
    (gymnax builds arrays at import), so the count is set for a fresh process
    (``--xla_force_host_platform_device_count``) that replaces this one (``os.execve``).
    """
    if RELAUNCHED in os.environ or "XLA_FLAGS" in os.environ or jax.default_backend() != "cpu":
        return
    count = requested or host_cores()
    if count == jax.device_count():
        return
    env = os.environ | {
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}",
        RELAUNCHED: str(count),
    }
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "sepsisim_jax", *argv], env)


def _devices_line() -> str:
    devices = jax.devices()
    kinds = sorted({d.device_kind for d in devices})
    return f"{len(devices)} {jax.default_backend()} device(s) ({', '.join(kinds)})"


def _add_distributed(command: argparse.ArgumentParser) -> None:
    group = command.add_argument_group(
        "many machines",
        "Run as one process of a jax.distributed job; the cohort is sharded over every device "
        "of every process and only process 0 prints and writes files. On SLURM, Open MPI or "
        "Kubernetes --distributed alone suffices; elsewhere give all three of --coordinator, "
        "--num-processes and --process-id (the first may also come from "
        "JAX_COORDINATOR_ADDRESS).",
    )
    group.add_argument("--distributed", action="store_true", help="join a jax.distributed job")
    group.add_argument("--coordinator", help="host:port of process 0")
    group.add_argument("--num-processes", type=_positive_int)
    group.add_argument("--process-id", type=int)


def _joins_distributed(args: argparse.Namespace) -> bool:
    given = (args.coordinator, args.num_processes, args.process_id)
    return args.distributed or any(v is not None for v in given)


def _initialize_distributed(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` from the command line's options (CPU: gloo collectives)."""
    if not _joins_distributed(args):
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )


def run_rollouts(args: argparse.Namespace) -> list[dict]:
    """One row per (environment, severity, policy): outcome summary, quantiles, parameter bins
    and env-steps/s, the cohort run in chunks (:func:`~sepsisim_jax.cohort.summary.cohort_summary`).
    """
    rows = []
    for env_id, severity in itertools.product(args.env, args.severity):
        try:
            env, params = make(
                env_id, severity=severity, solver=args.solver, patient_spread=args.spread
            )
            policies = _chosen_policies(env, args.policy)
        except ValueError as error:
            raise SystemExit(f"sepsisim-jax rollout: error: {error}") from error
        for policy_name, policy in policies.items():
            rows.append(_rollout_row(args, env, params, severity, policy_name, policy))
    return rows


def _chosen_policies(env: Any, names: list[str] | None) -> dict[str, Any]:
    """The named baselines (``ValueError`` for one ``env`` lacks), or every one it has."""
    if names is None:
        return baseline_policies(env)
    return {name: POLICIES[name](env) for name in names}


def _rollout_row(
    args: argparse.Namespace, env: Any, params: Any, severity: str, policy_name: str, policy: Any
) -> dict:
    """One cohort's summary row (:func:`run_rollouts`)."""
    n_steps = int(params.max_steps_in_episode)
    try:
        summary = cohort_summary(
            env,
            params,
            policy,
            jax.random.key(args.seed),
            args.patients,
            chunk_size=args.chunk_size,
            n_steps=n_steps,
            parameter=args.by_parameter,
            bins=args.bins,
        )
    except ValueError as error:
        raise SystemExit(f"sepsisim-jax rollout: error: {error}") from error
    return {
        "env": env.env_id,
        "severity": severity,
        "policy": policy_name,
        "patients": args.patients,
        **summary.overall.row(),
        "env_steps_per_s": args.patients * n_steps / summary.run_seconds,
        "summary": summary.to_dict(),
    }


def format_table(rows: list[dict]) -> str:
    """Rollout results: outcome, return quantiles and throughput per cohort."""
    return text_table(
        rows,
        [
            ("environment", "<24", lambda r: r["env"]),
            ("severity", "<8", lambda r: r["severity"]),
            ("policy", "<10", lambda r: r["policy"]),
            *SUMMARY_COLUMNS,
            ("return 5% / 50% / 95%", ">22", _return_quantiles),
            ("env-steps/s", ">12", lambda r: f"{r['env_steps_per_s']:,.0f}"),
        ],
    )


def format_bins(rows: list[dict]) -> str:
    """Per parameter bin: outcome of each cohort's patients in the bin."""
    groups = [
        {"cohort": f"{r['env']} {r['severity']} {r['policy']}", "group": g["group"], **g}
        for r in rows
        for g in r["summary"]["groups"][1:]
    ]
    return text_table(
        groups,
        [
            ("cohort", "<40", lambda r: r["cohort"]),
            ("bin", "<36", lambda r: r["group"]),
            ("patients", ">9", lambda r: f"{r['patients']:,}"),
            *SUMMARY_COLUMNS,
        ],
    )


def _return_quantiles(row: dict) -> str:
    q = row["quantiles"]["returns"]
    return f"{q['0.05']:.1f} / {q['0.5']:.1f} / {q['0.95']:.1f}"


def held_out_comparison(
    ppo: dict[str, PPOPolicy],
    seed: int,
    n_patients: int,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The PPO policies, then the baselines, on the held-out patients of ``seed``."""
    config = next(iter(ppo.values())).config
    env, params = make(
        config.env_id, severity=config.severity, patient_spread=config.patient_spread
    )
    baselines = baseline_policies(env)
    return compare_policies(
        env,
        params,
        ppo | baselines,
        held_out_key(seed),
        n_patients,
        chunk_size=chunk_size,
        progress=progress,
    )


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
    rows = held_out_comparison(
        {"PPO": policy}, args.seed, args.eval_patients, args.chunk_size, progress=True
    )
    config = policy.config
    print(f"{config.env_id}, {config.severity}, {args.eval_patients:,} held-out patients:")
    print(comparison_table(rows))
    if args.json:
        _write_json(args.json, rows)
    return 0


def _write_json(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))


def run_dataset(args: argparse.Namespace) -> int:
    from sepsisim_jax.offline.datasets import collect, dataset_metadata

    scale = None if args.scale is None else args.scale[0] if len(args.scale) == 1 else args.scale
    start = time.perf_counter()
    try:
        dataset = collect(
            args.env,
            args.policy,
            args.episodes,
            jax.random.key(args.seed),
            dataset_id=args.dataset_id,
            severity=args.severity,
            patient_spread=args.spread,
            observation=args.observation,
            epsilon=args.epsilon,
            scale=scale,
            checkpoint=args.checkpoint,
            gamma=args.gamma,
            value_episodes=args.value_episodes,
            chunk_size=args.chunk_size,
        )
    except (ValueError, TypeError, ImportError) as error:
        raise SystemExit(f"sepsisim-jax dataset: error: {error}") from error
    seconds = time.perf_counter() - start
    meta = dataset_metadata(dataset)
    timings, value = meta["collection"]["seconds"], meta["true_value"]
    print(
        f"wrote {dataset.id} to {dataset.storage.data_path}: {dataset.total_episodes:,} "
        f"episodes, {dataset.total_steps:,} steps, {dataset.storage.get_size():,.1f} MB"
    )
    print(
        f"{seconds:.1f} s in all: simulation {timings['simulation']:.1f} s (compiling and "
        f"waiting; it overlaps writing), writing {timings['write']:.1f} s, true value "
        f"{timings['value']:.1f} s"
    )
    print(
        f"true value of {meta['behaviour']['name']!r} on {value['n']:,} independent patients: "
        f"discounted (gamma {value['gamma']:g}) {value['discounted']:.3f} ± "
        f"{value['discounted_se']:.3f}, undiscounted {value['undiscounted']:.3f} ± "
        f"{value['undiscounted_se']:.3f} (± one standard error), survival {value['survival']:.4f}"
    )
    return 0


def parse_arm(spec: str, env: Any) -> tuple[str, Any]:
    """``[NAME=]BASE[:SETTING=VALUE,...]`` as ``(name, policy)`` for ``env``."""
    from sepsisim_jax.trials import Protocol, usual_care

    head, _, settings = spec.partition(":")
    name, _, base = head.rpartition("=")
    name = name or (spec if settings else head)
    bases = ("usual_care", "heuristic", "random", "none")
    if base not in bases:
        raise ValueError(f"arm {spec!r}: the base must be one of {bases}, got {base!r}")
    if settings and base != "usual_care":
        raise ValueError(f"arm {spec!r}: only usual_care takes settings")
    if base == "usual_care":
        changes = {}
        for item in filter(None, settings.split(",")):
            key, _, value = item.partition("=")
            if key not in Protocol.__dataclass_fields__:
                fields = list(Protocol.__dataclass_fields__)
                raise ValueError(f"arm {spec!r}: unknown setting {key!r}; settings: {fields}")
            try:
                changes[key] = float(value)
            except ValueError:
                raise ValueError(f"arm {spec!r}: {key} must be a number, got {value!r}") from None
        return name, usual_care().replace(**changes).policy(env)
    if base == "none":
        zeros = jax.numpy.zeros(env.num_actions, jax.numpy.float32)
        return name, lambda key, obs, params: zeros
    return name, POLICIES[base](env)


def run_trial_command(args: argparse.Namespace) -> int:
    from sepsisim_jax import trials
    from sepsisim_jax.plotting import trial_forest

    inclusion = {
        "everyone": trials.EVERYONE,
        "hypotensive": trials.HYPOTENSIVE,
        "shock-at-admission": trials.SHOCK_AT_ADMISSION,
        "sepsis3-shock": trials.SEPSIS3_SHOCK,
    }[args.include]
    try:
        env, params = make(args.env, severity=args.severity, patient_spread=args.spread)
        arms = dict(parse_arm(spec, env) for spec in args.arm or ["usual_care", "heuristic"])
        if len(arms) < len(args.arm or [0, 0]):
            raise ValueError("two arms have the same name; name them NAME=BASE")
        if args.include == "sepsis3-shock" and args.run_in is None:
            raise ValueError("sepsis3-shock enrols after a run-in: give --run-in HOURS")
        run_in = (
            None
            if args.run_in is None
            else trials.RunIn(trials.usual_care().policy(env), args.run_in)
        )
        result = trials.run_trial(
            env,
            params,
            arms,
            jax.random.key(args.seed),
            args.patients,
            inclusion=inclusion,
            run_in=run_in,
            n_bootstrap=args.bootstrap,
            progress=True,
        )
    except (ValueError, TypeError) as error:
        raise SystemExit(f"sepsisim-jax trial: error: {error}") from error
    print(
        f"{args.env} ({args.severity}, spread {args.spread:g}): {result.enrolled:,} of "
        f"{result.screened:,} patients enrolled ({result.inclusion}"
        + (f", after {args.run_in} h of usual care" if args.run_in else "")
        + f"); reference arm {result.reference!r}"
    )
    print(result.table())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result.save(args.json)
        print(f"wrote {args.json}")
    if args.figure:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        trial_forest(result).savefig(args.figure, dpi=110)
        print(f"wrote {args.figure}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; ``argv`` defaults to ``sys.argv[1:]``. Run as a command (``argv``
    not given), ``train``, and ``rollout`` or ``evaluate`` given ``--devices``, relaunch
    themselves on that many host devices (``train``: one per core by default; see
    :func:`relaunch_on_host_devices`); called with ``argv``, they run on the devices this
    process has."""
    args = build_parser().parse_args(argv)
    splits = args.command == "train" or (
        args.command in ("rollout", "evaluate") and not _joins_distributed(args)
    )
    if argv is None and splits and (args.command in EVERY_CORE_BY_DEFAULT or args.devices):
        relaunch_on_host_devices(sys.argv[1:], args.devices)
    if args.command == "train":
        print(f"training on {_devices_line()}")
        return run_train(args)
    if args.command == "dataset":
        return run_dataset(args)
    if args.command == "trial":
        return run_trial_command(args)
    _initialize_distributed(args)
    if jax.process_index() > 0:  # a worker of a distributed job: compute, do not report
        args.json = None
        with contextlib.redirect_stdout(io.StringIO()):
            (run_evaluate if args.command == "evaluate" else run_rollouts)(args)
        return 0
    if args.command == "evaluate":
        print(f"evaluating on {_devices_line()}")
        return run_evaluate(args)
    rows = run_rollouts(args)
    method = rows[0]["summary"]["quantile_method"]
    print(
        f"{args.patients:,} patients per cohort in chunks of {rows[0]['summary']['chunk_size']:,}"
        f" on {_devices_line()}, solver {args.solver}, quantiles {method}"
        + (f" (within {100 * RELATIVE_ERROR:g}% of the exact ones)" if method != "exact" else "")
    )
    print(format_table(rows))
    if args.by_parameter:
        print(format_bins(rows))
    print("env-steps/s: patients x episode steps / wall time after compilation (one run).")
    if args.json:
        _write_json(args.json, rows)
    return 0
