"""Population scale: env-steps/s against devices and batch size, virtual patients on and off,
and the wall time and memory of a 10-million-patient evaluation.

Every figure is a cohort run the way users run one, :func:`sepsisim_jax.cohort.summary.
cohort_summary` (chunks through one compiled function, sharded over the devices, summaries
folded in on the host), under random actions; env-steps/s is patients x episode steps over the
wall time after compilation, best of ``--repeats``. Sections:

- **devices**: the same cohort on 1, 2, 4, ... devices, each count in a fresh process (on a
  CPU, that many forced host devices, ``--xla_force_host_platform_device_count``; on GPUs the
  first k of ``CUDA_VISIBLE_DEVICES``);
- **batch**: chunk sizes from 1,024 up to ``--max-batch`` or the first that runs out of
  memory, on every device of this process;
- **virtual patients**: each v1 env with the same patient for everyone (spread 0) and with
  virtual patients (spread 0.2), one chunk of ``--chunk`` patients, the two interleaved;
  target: virtual patients cost at most 1.5x;
- **evaluation**: ``sepsisim_jax.training.evaluate`` of the heuristic on a tenth of
  ``--eval-patients`` and on all of them (default 10 million), each in a fresh process: wall
  time and peak resident memory (which must not grow with the cohort).

Runs unchanged on a GPU machine (``JAX_PLATFORMS=cuda python benchmarks/scaling.py``), where
the target is 1 billion env-steps/s on one H100-class GPU at a million patients or more; the
JSON records the device. Usage: ``python benchmarks/scaling.py [--quick] [--sections ...]
[--out FILE]``; ``--quick`` is a smoke test of every section at small sizes: 1 and 2 devices,
chunks of 1,024 patients, FluidResuscitation-v0 (and -v1 alone for virtual patients), both
evaluations in one fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
VP_SPREAD = 0.2
VP_TARGET = 1.5  # virtual patients cost at most this factor
GPU_TARGET = 1e9  # env-steps/s on one H100-class GPU at >= 1M patients
SECTIONS = ("devices", "batch", "virtual", "evaluation")


def _limit_devices(count: int, gpu: bool) -> None:
    """Before jax is imported: expose ``count`` devices (forced host devices on a CPU, where
    one device needs no flag unless ``XLA_FLAGS`` forces another count)."""
    if gpu:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(count)]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids[:count])
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if count == 1 and "xla_force_host_platform_device_count" not in flags:
        return  # the flag would only change the compilation cache's key
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}"


def cohort_rate(
    env_id: str, spread: float, patients: int, chunk: int, repeats: int
) -> dict[str, Any]:
    """Env-steps/s of a random-action cohort (best of ``repeats`` after one compiling run)."""
    return cohort_rates([(env_id, spread)], patients, chunk, repeats)[0]


def cohort_rates(
    configs: list[tuple[str, float]], patients: int, chunk: int, repeats: int
) -> list[dict[str, Any]]:
    """:func:`cohort_rate` of each ``(env id, spread)``, their runs interleaved: one compiling
    run each, then ``repeats`` rounds that run each once (a slow phase of a shared machine
    then hits every configuration alike)."""
    import jax

    import sepsisim_jax
    from sepsisim_jax.cohort.summary import cohort_summary
    from sepsisim_jax.policies import random_policy

    cohorts = []
    for env_id, spread in configs:
        env, params = sepsisim_jax.make(env_id, patient_spread=spread)
        cohorts.append((env, params, random_policy(env)))
    runs: list[list[Any]] = [[] for _ in configs]
    for _ in range(repeats + 1):
        for (env, params, policy), done in zip(cohorts, runs, strict=True):
            key = jax.random.key(0)
            done.append(
                cohort_summary(env, params, policy, key, patients, chunk_size=chunk, progress=False)
            )
    return [
        {
            "env": env_id,
            "spread": spread,
            "patients": patients,
            "chunk": done[0].chunk_size,
            "devices": jax.device_count(),
            "compile_s": done[0].compile_seconds,
            "run_s": [r.run_seconds for r in done[1:]],
            "steps_per_s": patients
            * env.model.episode_steps
            / min(r.run_seconds for r in done[1:]),
        }
        for (env_id, spread), (env, _, _), done in zip(configs, cohorts, runs, strict=True)
    ]


def child(args: argparse.Namespace) -> None:
    """The measurements of this fresh process; prints one JSON line each."""
    if args.child == "devices":
        _limit_devices(args.child_devices, args.child_gpu)
        result = cohort_rate(args.env, 0.0, args.patients, args.chunk, args.repeats)
        print("RESULT " + json.dumps(result), flush=True)
        return
    import jax

    import sepsisim_jax
    from sepsisim_jax.policies import heuristic_policy
    from sepsisim_jax.training import evaluate

    env, params = sepsisim_jax.make(args.env)
    for patients in args.child_eval_patients:
        start = time.perf_counter()
        row = evaluate(heuristic_policy(env), env, params, jax.random.key(0), patients)
        result = {
            "env": args.env,
            "policy": "heuristic",
            "patients": patients,
            "devices": jax.device_count(),
            "wall_s": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "survival": row["survival"],
            "mean_return": row["mean_return"],
        }
        print("RESULT " + json.dumps(result), flush=True)


def _spawn(args: list[str]) -> list[dict[str, Any]]:
    """The results a child process printed, in order."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"child {args} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return [json.loads(line.removeprefix("RESULT ")) for line in lines]


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--env",
        help="devices, batch, evaluation (default SepsisManagement-v0, FluidResuscitation-v0 "
        "with --quick)",
    )
    parser.add_argument("--patients", type=int, default=262_144, help="cohort per measurement")
    parser.add_argument("--chunk", type=int, default=65_536)
    parser.add_argument("--max-batch", type=int, default=1_048_576)
    parser.add_argument("--max-devices", type=int, help="default: every GPU, or every CPU core")
    parser.add_argument("--eval-patients", type=int, default=10_000_000)
    parser.add_argument("--child-eval-patients", type=int, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["devices", "evaluation"], help=argparse.SUPPRESS)
    parser.add_argument("--child-devices", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-gpu", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return None
    if args.quick:
        args.patients, args.chunk, args.max_batch = 2_048, 1_024, 1_024
        args.eval_patients, args.repeats = 2_048, 1
        args.max_devices = args.max_devices or 2
    args.env = args.env or ("FluidResuscitation-v0" if args.quick else "SepsisManagement-v0")

    import jax
    from common import machine_info, output_path, verdict, write_results

    from sepsisim_jax.envs.registration import V1_IDS
    from sepsisim_jax.text_table import text_table

    gpu = jax.default_backend() == "gpu"
    most = args.max_devices or (jax.device_count() if gpu else os.cpu_count() or 1)
    counts = sorted({min(2**i, most) for i in range(most.bit_length() + 1)})
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, Any] = {"environment": machine_info() | {"settings": settings}}
    common = ["--env", args.env, "--patients", str(args.patients), "--chunk", str(args.chunk)]
    common += ["--repeats", str(args.repeats)] + (["--child-gpu"] if gpu else [])
    start = time.perf_counter()

    if "devices" in args.sections:
        rows = [
            _spawn(["--child", "devices", "--child-devices", str(k), *common])[0] for k in counts
        ]
        for row in rows:
            row["vs_one_device"] = row["steps_per_s"] / rows[0]["steps_per_s"]
        results["devices"] = rows
        print(f"\nEnv-steps/s against devices ({args.env}, {args.patients:,} patients):")
        print(
            text_table(
                rows,
                [
                    ("devices", ">7", lambda r: str(r["devices"])),
                    ("chunk", ">9", lambda r: f"{r['chunk']:,}"),
                    ("env-steps/s", ">14", lambda r: f"{r['steps_per_s']:,.0f}"),
                    ("vs 1 device", ">11", lambda r: f"{r['vs_one_device']:.2f}x"),
                ],
            )
        )

    if "batch" in args.sections:
        rows, batch = [], 1024
        while batch <= args.max_batch:
            try:
                rows.append(cohort_rate(args.env, 0.0, batch, batch, args.repeats))
            except Exception as error:  # the memory limit ends the sweep
                if "RESOURCE_EXHAUSTED" not in str(error) and "memory" not in str(error).lower():
                    raise
                results["batch_out_of_memory_at"] = batch
                break
            batch *= 4
        results["batch"] = rows
        print(f"\nEnv-steps/s against batch size ({args.env}, {jax.device_count()} device(s)):")
        print(
            text_table(
                rows,
                [
                    ("patients per chunk", ">18", lambda r: f"{r['chunk']:,}"),
                    ("env-steps/s", ">14", lambda r: f"{r['steps_per_s']:,.0f}"),
                    ("compile s", ">9", lambda r: f"{r['compile_s']:.1f}"),
                ],
            )
        )
        if gpu:
            large = [r["steps_per_s"] for r in rows if r["chunk"] >= 1_000_000]
            best = max(large, default=None)
            met = best is not None and best >= GPU_TARGET
            results["gpu_target"] = {"goal": GPU_TARGET, "value": best, "met": met}
            print(f"target: >= {GPU_TARGET:.0e} env-steps/s at >= 1M patients: {verdict(met)}")

    if "virtual" in args.sections:
        rows = []
        for env_id in V1_IDS[:1] if args.quick else V1_IDS:
            configs = [(env_id, 0.0), (env_id, VP_SPREAD)]
            same, drawn = cohort_rates(configs, args.chunk, args.chunk, args.repeats)
            rows.append(
                {
                    "env": env_id,
                    "same_patient": same,
                    "virtual_patients": drawn,
                    "cost": same["steps_per_s"] / drawn["steps_per_s"],
                }
            )
        worst = max(r["cost"] for r in rows)
        results["virtual_patients"] = {
            "rows": rows,
            "target": {"goal_at_most": VP_TARGET, "worst": worst, "met": worst <= VP_TARGET},
        }
        print(f"\nVirtual patients (spread {VP_SPREAD}) against one patient for all:")
        print(
            text_table(
                rows,
                [
                    ("environment", "<24", lambda r: r["env"]),
                    ("spread 0", ">12", lambda r: f"{r['same_patient']['steps_per_s']:,.0f}"),
                    ("spread 0.2", ">12", lambda r: f"{r['virtual_patients']['steps_per_s']:,.0f}"),
                    ("cost", ">6", lambda r: f"{r['cost']:.2f}x"),
                ],
            )
        )
        met = worst <= VP_TARGET
        print(f"target: virtual patients cost <= {VP_TARGET}x: {verdict(met)} (worst {worst:.2f}x)")

    if "evaluation" in args.sections:
        sizes = [args.eval_patients // 10, args.eval_patients]  # memory must not grow with it
        # Each size in a fresh process (its peak memory alone); a smoke test runs both in one.
        runs = [sizes] if args.quick else [[n] for n in sizes]
        evaluation = ["--child", "evaluation", "--env", args.env, "--child-eval-patients"]
        rows = [row for run in runs for row in _spawn([*evaluation, *map(str, run)])]
        results["evaluation"] = rows
        for row in rows:
            print(
                f"evaluate(heuristic) on {row['patients']:,} patients of {args.env}: "
                f"{row['wall_s']:.1f} s wall (compilation included), peak RSS "
                f"{row['peak_rss_mb']:,.0f} MB, survival {row['survival']:.3f}"
            )

    results["wall_s"] = time.perf_counter() - start
    out = output_path(args.out, "scaling", args.quick)
    write_results(out, results)
    figure(results).savefig(out.with_suffix(".png"), dpi=110)
    print(f"Figure written to {out.with_suffix('.png')}")
    return results


def figure(results: dict[str, Any]) -> Any:
    """One panel per section measured: env-steps/s against batch size, against devices, and
    with and without virtual patients."""
    from matplotlib.figure import Figure

    panels = [k for k in ("batch", "devices", "virtual_patients") if k in results]
    fig = Figure(figsize=(4.2 * max(len(panels), 1), 3.6), layout="constrained")
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=False):
        if panel == "batch":
            rows = results["batch"]
            ax.plot([r["chunk"] for r in rows], [r["steps_per_s"] for r in rows], "o-")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("patients per chunk")
            ax.set_title("batch size")
        elif panel == "devices":
            rows = results["devices"]
            ax.bar([str(r["devices"]) for r in rows], [r["steps_per_s"] for r in rows])
            ax.set_xlabel("devices")
            ax.set_title("devices")
        else:
            rows = results["virtual_patients"]["rows"]
            names = [r["env"].replace("-v1", "") for r in rows]
            x = range(len(rows))
            ax.bar(
                [i - 0.2 for i in x],
                [r["same_patient"]["steps_per_s"] for r in rows],
                0.4,
                label="spread 0",
            )
            ax.bar(
                [i + 0.2 for i in x],
                [r["virtual_patients"]["steps_per_s"] for r in rows],
                0.4,
                label=f"spread {VP_SPREAD}",
            )
            ax.set_xticks(list(x), names, rotation=15, fontsize="small")
            ax.legend(fontsize="small")
            ax.set_title("v1: virtual patients")
        ax.set_ylabel("env-steps per second")
        ax.grid(alpha=0.3)
    device = results["environment"]["device"]
    fig.suptitle(f"sepsisim_jax at population scale ({device})", fontsize="medium")
    return fig


if __name__ == "__main__":
    main()
