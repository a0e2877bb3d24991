"""Environment-step throughput of sepsisim 0.1.0, sepsisim_jax and a hand-fused JAX ceiling.

Figures per environment, all in env-steps per second, measured in one run:

- reference (the ids of ``sepsisim_jax.REFERENCE_IDS``, the -v0 ids): one
  ``gymnasium.make("sepsisim/<Id>")`` env stepped with random actions drawn in the loop, and
  (core section) the environment alone: the same env stepped with actions drawn before the
  timed loop;
- core section: ``jit`` of a ``lax.scan`` over 72 steps of ``vmap(env.step)`` per batch size,
  with random actions drawn in the scan and (reference ids) the environment alone, its keys and
  actions drawn before the timed call, and (FluidResuscitation only) the same scan over the
  hand-fused step of ``fused_ceiling.py``, checked against sepsisim_jax before it is timed;
  the -v1 ids (coupled Reynolds 2006) run the same scan, with their default patient
  (``sepsisim_jax``) and with virtual patients (``virtual``, patient spread 0.2), compared
  with the v0 id of the same task at the same batch;
- adapter section (reference ids): ``gymnasium.make("sepsisim_jax/<Id>")`` stepped by the
  reference's own loop, and ``gymnasium.make_vec("sepsisim_jax/<Id>", num_envs=N,
  vectorization_mode="vector_entry_point")`` stepped with batched random actions, for each N.

Verdicts are ratios (over the reference, over the ceiling) measured in the same run, except the
vector env's, which is an absolute env-steps/s target. See ``README.md`` in this directory for
the method and the JSON schema.

Usage: ``python benchmarks/throughput.py [--sections core adapter] [--quick] [--out FILE]``;
``--quick`` is a smoke test of both sections on FluidResuscitation-v0.
"""

from __future__ import annotations

import argparse
import functools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fused_ceiling
import gymnasium
import numpy as np
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
from common import Target, Timed, optional, output_path, report, time_interleaved
from fused_ceiling import ceiling, check_ceiling
from rollouts import (
    ALONE,
    EPISODE_STEPS,
    MIN_RUN_STEPS,
    SEVERITY,
    jitted_rollout,
    ours,
    print_check,
)

import sepsisim_jax
from sepsisim_jax.envs.registration import env_factory
from sepsisim_jax.text_table import Column

SECTIONS = ("core", "adapter")
# Sizes unless given explicitly: core batch sizes, adapter num_envs, steps per single-env run.
DEFAULTS = {
    "envs": list(sepsisim_jax.ENV_IDS),
    "batches": [1, 64, 1024, 16384, 65536],
    "vector_envs": [16, 256, 1024],
    "reference_steps": 5000,
    "repeats": 3,
    "min_run_steps": MIN_RUN_STEPS,
}
# A smoke test: the ceiling's environment, one batch, one short round.
QUICK = {
    "envs": ["FluidResuscitation-v0"],
    "batches": [64],
    "vector_envs": [16],
    "reference_steps": 100,
    "repeats": 1,
    "min_run_steps": 64 * EPISODE_STEPS,
}
WARMUP_STEPS = 50  # untimed steps of a single env before its runs
VECTOR_WARMUP_CALLS = 3
CEILING_ENV = fused_ceiling.ENV_ID
TARGET_BATCH = 65536  # core targets: on CEILING_ENV, and the environment alone on every v0 id
TARGET_VECTOR_ENVS = 1024
V1_SPREAD = 0.2  # virtual patients of the "virtual" rows
# Table order of the implementations.
IMPLS = (
    "reference",
    "reference-alone",
    "sepsisim_jax",
    "sepsisim_jax-alone",
    "virtual",
    "ceiling-soa",
    "ceiling-vmap",
    "adapter-single",
    "adapter-vector",
)
COLUMNS: list[Column] = [
    ("env", "<24", lambda r: r["env_id"]),
    ("impl", "<18", lambda r: r["impl"]),
    ("batch", ">6", lambda r: str(r["batch"])),
    ("setup s", ">7", lambda r: optional(r["setup_s"], ".1f")),
    ("env-steps/s", ">13", lambda r: f"{r['steps_per_s']:,.0f}"),
    ("us/call", ">9", lambda r: f"{r['us_per_call']:,.1f}"),
    ("x reference", ">11", lambda r: optional(r["vs_reference"], ",.1f")),
    ("of ceiling", ">10", lambda r: optional(r["vs_ceiling"], ".0%")),
    ("of v0", ">6", lambda r: optional(r["vs_v0"], ".0%")),
]


# --- the configurations: each returns a Timed whose run() does its env-steps ----------------


def single_env(impl: str, env_id: str, steps: int, seed: int) -> Timed:
    """The reference (``"reference"``, ``"reference-alone"``) or the adapter
    (``"adapter-single"``) as one ``gymnasium.make`` env, seeded and warmed up.

    A run is the same loop for the reference and the adapter: ``action_space.sample()``
    every step. ``"reference-alone"`` is the environment alone: ``steps`` actions sampled
    the same way before the timed loop, which then only steps (and resets) the env.
    """
    namespace = "sepsisim" if impl.startswith("reference") else "sepsisim_jax"
    start = time.perf_counter()
    env = gymnasium.make(f"{namespace}/{env_id}", severity=SEVERITY)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    _single_loop(env, WARMUP_STEPS)
    if impl.endswith(ALONE):
        actions = [env.action_space.sample() for _ in range(steps)]
        run = functools.partial(_single_loop_fixed, env, actions)
    else:
        run = functools.partial(_single_loop, env, steps)
    setup_s = time.perf_counter() - start
    labels = {"env_id": env_id, "impl": impl, "batch": 1}
    return Timed(labels, steps, run, setup_s)


def _single_loop(env: gymnasium.Env, steps: int) -> None:
    """Step with ``action_space.sample()``; reset whenever an episode ends."""
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


def _single_loop_fixed(env: gymnasium.Env, actions: Sequence[np.ndarray]) -> None:
    """Step with the given actions, one per step; reset whenever an episode ends."""
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()


def vector_env(env_id: str, num_envs: int, seed: int, min_steps: int = MIN_RUN_STEPS) -> Timed:
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``, seeded, reset and
    warmed up; a run is a whole number of 72-call episodes, at least ``min_steps``."""
    start = time.perf_counter()
    envs = gymnasium.make_vec(
        f"sepsisim_jax/{env_id}",
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        severity=SEVERITY,
    )
    envs.action_space.seed(seed)
    envs.reset(seed=seed)
    _vector_loop(envs, VECTOR_WARMUP_CALLS)
    setup_s = time.perf_counter() - start
    calls = EPISODE_STEPS * math.ceil(min_steps / (EPISODE_STEPS * num_envs))
    labels = {"env_id": env_id, "impl": "adapter-vector", "batch": num_envs}
    return Timed(labels, calls * num_envs, functools.partial(_vector_loop, envs, calls), setup_s)


def _vector_loop(envs: gymnasium.vector.VectorEnv, calls: int) -> None:
    """Step every sub-env ``calls`` times (same-step auto-reset: no ``reset`` needed)."""
    for _ in range(calls):
        envs.step(envs.action_space.sample())


# --- the run ---------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], Timed]]]:
    """Every configuration as ``(label, prepare)``: the reference envs, then each section's."""
    jobs: list[tuple[str, Callable[[], Timed]]] = []
    seed, steps, run_steps = args.seed, args.reference_steps, args.min_run_steps

    def add(label: str, prepare: Callable[..., Timed], *arguments: Any) -> None:
        jobs.append((label, functools.partial(prepare, *arguments)))

    reference_envs = [e for e in args.envs if e in sepsisim_jax.REFERENCE_IDS]
    for e in reference_envs:
        add(f"reference {e}", single_env, "reference", e, steps, seed)
        if "core" in args.sections:
            add(f"reference alone {e}", single_env, "reference" + ALONE, e, steps, seed)
    if "core" in args.sections:
        variants = list(fused_ceiling.VARIANTS) if CEILING_ENV in args.envs else []
        for n in args.batches:
            for e in args.envs:
                fns = ours(e)
                add(
                    f"sepsisim_jax {e} x{n}",
                    jitted_rollout,
                    "sepsisim_jax",
                    e,
                    fns,
                    n,
                    seed,
                    run_steps,
                )
                if e in sepsisim_jax.REFERENCE_IDS:
                    impl = "sepsisim_jax" + ALONE
                    add(f"{impl} {e} x{n}", jitted_rollout, impl, e, fns, n, seed, run_steps)
                if e in sepsisim_jax.V1_IDS:
                    fns = ours(e, patient_spread=V1_SPREAD)
                    add(f"virtual {e} x{n}", jitted_rollout, "virtual", e, fns, n, seed, run_steps)
            for v in variants:
                impl = f"ceiling-{v}"
                add(
                    f"{impl} x{n}",
                    jitted_rollout,
                    impl,
                    CEILING_ENV,
                    ceiling(v),
                    n,
                    seed,
                    run_steps,
                )
    if "adapter" in args.sections:
        for e in reference_envs:
            add(f"adapter {e}", single_env, "adapter-single", e, steps, seed)
            for n in args.vector_envs:
                add(f"adapter {e} x{n}", vector_env, e, n, seed, run_steps)
    return jobs


def summarise(timed: list[Timed], ceiling_valid: bool) -> list[dict[str, Any]]:
    """One row per configuration, in table order, with its ratios to the reference (same
    environment, timed the same way: an ``-alone`` row to ``reference-alone``, any other to
    ``reference``) and, for sepsisim_jax on ``CEILING_ENV``, to the ceiling (same batch)."""
    rows = sorted(
        (t.row() for t in timed),
        key=lambda r: (IMPLS.index(r["impl"]), sepsisim_jax.ENV_IDS.index(r["env_id"]), r["batch"]),
    )
    reference = {
        (r["env_id"], r["impl"].endswith(ALONE)): r["steps_per_s"]
        for r in rows
        if r["impl"].startswith("reference")
    }
    v0 = {(r["env_id"], r["batch"]): r["steps_per_s"] for r in rows if r["impl"] == "sepsisim_jax"}
    ceilings: dict[int, float] = {}
    for r in rows:
        if r["impl"].startswith("ceiling"):
            ceilings[r["batch"]] = max(ceilings.get(r["batch"], 0.0), r["steps_per_s"])
    for r in rows:
        r["us_per_call"] = 1e6 * r["batch"] / r["steps_per_s"]
        same_way = (r["env_id"], r["impl"].endswith(ALONE))  # the reference timed the same way
        r["vs_reference"] = (
            r["steps_per_s"] / reference[same_way] if same_way in reference else None
        )
        same_task = (v0_twin(r["env_id"]), r["batch"])
        r["vs_v0"] = r["steps_per_s"] / v0[same_task] if same_task in v0 else None
        ours_on_ceiling = r["impl"] == "sepsisim_jax" and r["env_id"] == CEILING_ENV
        ratio = ours_on_ceiling and ceiling_valid and r["batch"] in ceilings
        r["vs_ceiling"] = r["steps_per_s"] / ceilings[r["batch"]] if ratio else None
    return rows


def v0_twin(env_id: str) -> str | None:
    """The v0 id of a v1 id's task, else ``None``."""
    if env_id not in sepsisim_jax.V1_IDS:
        return None
    task = env_factory(env_id).func
    return next((e for e in sepsisim_jax.V0_IDS if env_factory(e).func is task), None)


def targets(rows: list[dict[str, Any]], sections: Sequence[str]) -> list[Target]:
    """The targets of the sections run; the worst environment measured decides."""

    def pick(impl: str, batch: int, key: str) -> dict[str, float]:
        return {
            r["env_id"]: r[key]
            for r in rows
            if r["impl"] == impl and r["batch"] == batch and r[key] is not None
        }

    out = []
    if "core" in sections:
        on = f"{CEILING_ENV}, batch {TARGET_BATCH:,}"
        ratios = pick("sepsisim_jax", TARGET_BATCH, "vs_reference")
        ratios = {k: v for k, v in ratios.items() if k == CEILING_ENV}
        of_ceiling = pick("sepsisim_jax", TARGET_BATCH, "vs_ceiling")  # CEILING_ENV only
        out.append(Target("vs_reference", f"vs reference ({on})", ratios, 2000.0, ",.0f", "x"))
        out.append(Target("vs_ceiling", f"of ceiling ({on})", of_ceiling, 0.5, ".0%"))
        alone = pick("sepsisim_jax" + ALONE, TARGET_BATCH, "vs_reference")
        text = f"environment alone vs reference alone (v0, batch {TARGET_BATCH:,})"
        out.append(Target("alone_vs_reference", text, alone, 10_000.0, ",.0f", "x"))
        v1 = pick("sepsisim_jax", TARGET_BATCH, "vs_v0")
        text = f"v1 env-steps/s of v0's (same task, batch {TARGET_BATCH:,})"
        out.append(Target("v1_vs_v0", text, v1, 0.5, ".0%"))
    if "adapter" in sections:
        single = pick("adapter-single", 1, "vs_reference")
        vector = pick("adapter-vector", TARGET_VECTOR_ENVS, "steps_per_s")
        text = f"vector env at {TARGET_VECTOR_ENVS:,} envs, env-steps/s"
        out.append(
            Target("single_vs_reference", "single env vs reference", single, 3.0, ".1f", "x")
        )
        out.append(Target("vector_steps_per_s", text, vector, 1_000_000.0, ",.0f"))
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="what to measure besides the reference: core (jitted rollouts and the ceiling), "
        "adapter (Gymnasium single and vector envs)",
    )
    parser.add_argument("--envs", nargs="+", choices=sepsisim_jax.ENV_IDS)
    parser.add_argument("--batches", nargs="+", type=int, help="core: batch sizes")
    parser.add_argument("--vector-envs", nargs="+", type=int, help="adapter: num_envs")
    parser.add_argument("--repeats", type=int, help="timed rounds; the best run counts")
    parser.add_argument("--reference-steps", type=int, help="steps per timed single-env run")
    parser.add_argument("--min-run-steps", type=int, help="env-steps per batched or vector run")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: FluidResuscitation-v0, batch 64, 16 vector envs, 100 single-env "
        "steps, one round of short runs (unless given explicitly)",
    )
    args = parser.parse_args(argv)
    args.sections = [s for s in SECTIONS if s in args.sections]
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    numbers = [args.repeats, args.reference_steps, args.min_run_steps]
    if min(numbers + args.batches + args.vector_envs) < 1:
        parser.error(
            "--repeats, --reference-steps, --min-run-steps, --batches and --vector-envs must "
            "be positive"
        )
    # throughput_<section>.json for one section: a partial run never overwrites a full one.
    name = (
        "throughput"
        if args.sections == list(SECTIONS)
        else "_".join(["throughput", *args.sections])
    )
    args.out = output_path(args.out, name, args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    check = None
    if "core" in args.sections and CEILING_ENV in args.envs:
        check = check_ceiling(args.seed)
        print_check(check)
    timed = time_interleaved(plan(args), args.repeats)
    rows = summarise(timed, ceiling_valid=check is None or check["passed"])
    recorded = (*DEFAULTS, "sections", "seed")
    settings = {"severity": SEVERITY, "episode_steps": EPISODE_STEPS}
    settings |= {name: getattr(args, name) for name in recorded}
    return report(
        args.out, settings, rows, COLUMNS, targets(rows, args.sections), ceiling_check=check
    )


if __name__ == "__main__":
    main()
