"""Environment-step throughput of sepsisim 0.1.0, sepsisim_jax and a hand-fused JAX ceiling.

Figures per environment, all in env-steps per second, measured in one run:

- reference: one ``gymnasium.make("sepsisim/<Id>")`` env stepped with random actions;
- core section: ``jit`` of a ``lax.scan`` over 72 steps of ``vmap(env.step)`` per batch size,
  and (FluidResuscitation only) the same scan over the hand-fused step of ``fused_ceiling.py``,
  checked against sepsisim_jax before it is timed;
- adapter section: ``gymnasium.make("sepsisim_jax/<Id>")`` stepped by the reference's own loop,
  and ``gymnasium.make_vec("sepsisim_jax/<Id>", num_envs=N, vectorization_mode=
  "vector_entry_point")`` stepped with batched random actions, for each N.

Verdicts are ratios (over the reference, over the ceiling) measured in the same run, except the
vector env's, which is an absolute env-steps/s target. See ``README.md`` in this directory for
the method and the JSON schema.

Usage: ``python benchmarks/throughput.py [--sections core adapter] [--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fused_ceiling
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import sepsisim  # noqa: F401  (registers the reference's sepsisim/ ids with gymnasium)
from common import RESULTS_DIR, machine_info, optional, verdict, write_results
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.text_table import text_table

EPISODE_STEPS = 72  # the reference registers every env with TimeLimit(max_episode_steps=72)
SEVERITY = "medium"
DEFAULT_BATCHES = (1, 64, 1024, 16384, 65536)
QUICK_BATCHES = (1, 64)
DEFAULT_REFERENCE_STEPS = 5000
QUICK_REFERENCE_STEPS = 300
REFERENCE_WARMUP_STEPS = 50
MIN_RUN_STEPS = 65536  # env-steps per timed run of a batched rollout (repeated calls if smaller)
SECTIONS = ("core", "adapter")
DEFAULT_VECTOR_ENVS = (16, 256, 1024)
QUICK_VECTOR_ENVS = (16, 256)
VECTOR_WARMUP_CALLS = 3
CEILING_ENV = "FluidResuscitation-v0"
TARGET_BATCH = 65536
TARGET_VS_REFERENCE = 2000.0  # sepsisim_jax steps/s over the reference's, at TARGET_BATCH
TARGET_VS_CEILING = 0.5  # sepsisim_jax steps/s over the ceiling's, at TARGET_BATCH
TARGET_SINGLE_VS_REFERENCE = 10.0  # adapter single env steps/s over the reference's
TARGET_VECTOR_ENVS = 1024
TARGET_VECTOR_STEPS_PER_S = 1_000_000.0  # adapter vector env at TARGET_VECTOR_ENVS
CHECK_BATCH = 256
CHECK_STEPS = 2 * EPISODE_STEPS  # two episodes: covers the auto-reset at step 72
CHECK_TOLERANCE = 1e-3  # on |ours - ceiling| / max(1, |ours|)
CHECK_CASES: dict[str, dict[str, float]] = {
    "default": {},
    "no antibiotic": {"antibiotic_efficacy": 0.0},  # patients die: covers termination
}

StepFn = Callable[
    [jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array]
]
Rollout = Callable[[Any, jax.Array], Any]


@dataclasses.dataclass
class Config:
    """One measured configuration: ``run()`` performs ``steps`` env-steps and blocks."""

    env_id: str
    impl: str  # "reference", "sepsisim_jax", "ceiling-soa", "ceiling-vmap", "adapter-single"
    # or "adapter-vector"
    batch: int | None  # None for the reference's single env; num_envs for the adapter's
    steps: int
    run: Callable[[], object]
    compile_s: float | None = None  # the adapter's: wall time of construction and warm-up
    run_s: list[float] = dataclasses.field(default_factory=list)

    def time_once(self) -> None:
        start = time.perf_counter()
        self.run()
        self.run_s.append(time.perf_counter() - start)

    @property
    def steps_per_s(self) -> float:
        return self.steps / min(self.run_s)


# --- the reference ---------------------------------------------------------------------------


def prepare_reference(env_id: str, steps: int, seed: int) -> Config:
    """A seeded, warmed-up reference env; each run is ``steps`` random-action steps."""
    env = gymnasium.make(f"sepsisim/{env_id}", severity=SEVERITY)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    _reference_loop(env, REFERENCE_WARMUP_STEPS)
    return Config(env_id, "reference", None, steps, lambda: _reference_loop(env, steps))


def _reference_loop(env: gymnasium.Env, steps: int) -> None:
    """Step with ``action_space.sample()``; reset whenever an episode ends."""
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()


# --- the Gymnasium adapter -------------------------------------------------------------------


def prepare_adapter_single(env_id: str, steps: int, seed: int) -> Config:
    """``gymnasium.make("sepsisim_jax/<Id>")``, seeded and warmed up as the reference is.

    A run is the reference's loop over the same number of steps, so the two compare the same
    client code: ``action_space.sample()``, ``step`` through ``gymnasium.make``'s wrappers, and
    ``reset()`` when an episode ends. The warm-up (which compiles the jitted reset and step)
    is the ``compile s`` column.
    """
    start = time.perf_counter()
    env = gymnasium.make(f"sepsisim_jax/{env_id}", severity=SEVERITY)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    _reference_loop(env, REFERENCE_WARMUP_STEPS)
    setup_s = time.perf_counter() - start
    run = functools.partial(_reference_loop, env, steps)
    return Config(env_id, "adapter-single", 1, steps, run, setup_s)


def prepare_adapter_vector(env_id: str, num_envs: int, seed: int) -> Config:
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")`` with ``num_envs``.

    A run is a whole number of 72-step episodes' worth of ``envs.step(envs.action_space.
    sample())`` calls, at least ``MIN_RUN_STEPS`` env-steps, each call counting ``num_envs``
    env-steps (the vector env auto-resets, so no ``reset`` is needed).
    """
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
    calls = EPISODE_STEPS * math.ceil(MIN_RUN_STEPS / (EPISODE_STEPS * num_envs))
    run = functools.partial(_vector_loop, envs, calls)
    return Config(env_id, "adapter-vector", num_envs, calls * num_envs, run, setup_s)


def _vector_loop(envs: gymnasium.vector.VectorEnv, calls: int) -> None:
    """Step every sub-env ``calls`` times with ``envs.action_space.sample()``."""
    for _ in range(calls):
        envs.step(envs.action_space.sample())


# --- the jitted harness shared by sepsisim_jax and the ceiling -------------------------------


def make_rollout(
    step_fn: StepFn,
    batch: int,
    action_low: np.ndarray,
    action_high: np.ndarray,
    num_steps: int = EPISODE_STEPS,
    record: bool = False,
) -> Rollout:
    """``rollout(state, key)``: ``num_steps`` batched steps with random actions in one scan.

    Per step: one split of the carried key, one ``uniform`` call for all actions, one
    ``split`` into per-patient keys. Without ``record`` the scan keeps only a per-patient
    running sum of rewards and observations (so nothing is dead code and no per-step output is
    stored) and returns ``(final_state, checksum)``; with ``record`` it returns
    ``(obs, reward, terminated, truncated)`` stacked over steps.
    """
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    low = jnp.asarray(action_low, dtype)
    high = jnp.asarray(action_high, dtype)

    def body(carry, _):
        state, key, total = carry
        key, action_key, step_key = jax.random.split(key, 3)
        actions = jax.random.uniform(action_key, (batch, low.size), dtype, low, high)
        obs, state, reward, terminated, truncated = step_fn(
            jax.random.split(step_key, batch), state, actions
        )
        total = total + reward.astype(jnp.float32) + jnp.sum(obs, axis=-1)
        recorded = (obs, reward, terminated, truncated) if record else None
        return (state, key, total), recorded

    def rollout(state: Any, key: jax.Array) -> Any:
        carry = (state, key, jnp.zeros((batch,), jnp.float32))
        (state, _, total), recorded = jax.lax.scan(body, carry, None, length=num_steps)
        return recorded if record else (state, total)

    return rollout


def prepare_rollout(
    env_id: str,
    impl: str,
    batch_fns: tuple[StepFn, Callable[[jax.Array], Any]],
    batch: int,
    seed: int,
) -> Config:
    """Admit ``batch`` patients and compile (timed) a 72-step rollout.

    A run executes the rollout often enough to make at least ``MIN_RUN_STEPS`` env-steps, each
    call ended by ``block_until_ready``, so that small batches are not timed on a millisecond.
    """
    step_fn, reset = batch_fns
    reset_key, run_key = jax.random.split(jax.random.key(seed))
    _, state = reset(jax.random.split(reset_key, batch))
    rollout = make_rollout(step_fn, batch, *action_bounds(env_id))
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, run_key).compile()
    compile_s = time.perf_counter() - start
    calls = math.ceil(MIN_RUN_STEPS / (batch * EPISODE_STEPS))

    def run() -> None:
        for _ in range(calls):
            jax.block_until_ready(compiled(state, run_key))

    return Config(env_id, impl, batch, calls * batch * EPISODE_STEPS, run, compile_s)


# --- sepsisim_jax and the ceiling as batch steps ---------------------------------------------


def ours(env_id: str, **overrides: float) -> tuple[StepFn, Callable[[jax.Array], Any]]:
    """``vmap(env.step)`` as a batch step, and a batched reset (params closed over)."""
    env, params = sepsisim_jax.make(env_id, severity=SEVERITY, **overrides)

    def step_one(key: jax.Array, state: Any, action: jax.Array) -> tuple:
        return env.step(key, state, action, params)[:5]

    def reset(keys: jax.Array) -> Any:
        return jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    return jax.vmap(step_one), reset


def ceiling(variant: str, **overrides: float) -> tuple[StepFn, Callable[[jax.Array], Any]]:
    """A hand-fused FluidResuscitation batch step (``"soa"`` or ``"vmap"``) and its reset."""
    constants = fused_ceiling.Constants.for_severity(SEVERITY)
    constants = dataclasses.replace(constants, **overrides)
    return fused_ceiling.VARIANTS[variant](constants), lambda k: fused_ceiling.reset(k, constants)


def action_bounds(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper action bounds of a sepsisim_jax environment."""
    cls = sepsisim_jax.envs.env_class(env_id)
    return cls.action_low, cls.action_high


# --- the ceiling check -----------------------------------------------------------------------


def check_ceiling(seed: int) -> dict[str, Any]:
    """Run sepsisim_jax and both ceiling variants from the same keys and actions; compare.

    Two cases: the benchmarked defaults, and no antibiotic so that patients die and the
    termination, death penalty and reset after death are compared too.
    """
    cases = {name: _check_case(seed, overrides) for name, overrides in CHECK_CASES.items()}
    return {
        "env_id": CEILING_ENV,
        "batch": CHECK_BATCH,
        "steps": CHECK_STEPS,
        "tolerance": CHECK_TOLERANCE,
        "cases": cases,
        "passed": all(v["passed"] for case in cases.values() for v in case.values()),
    }


def _check_case(seed: int, overrides: dict[str, float]) -> dict[str, Any]:
    """Compare every ceiling variant against sepsisim_jax under parameter ``overrides``."""
    bounds = action_bounds(CEILING_ENV)
    reset_key, run_key = jax.random.split(jax.random.key(seed))
    keys = jax.random.split(reset_key, CHECK_BATCH)

    def trajectory(step_fn: StepFn, reset: Callable[[jax.Array], Any]) -> tuple:
        obs0, state = reset(keys)
        roll = make_rollout(step_fn, CHECK_BATCH, *bounds, CHECK_STEPS, record=True)
        return (obs0, *jax.jit(roll)(state, run_key))

    expected = trajectory(*ours(CEILING_ENV, **overrides))
    return {
        variant: _compare(expected, trajectory(*ceiling(variant, **overrides)))
        for variant in fused_ceiling.VARIANTS
    }


def _compare(expected: Sequence[jax.Array], got: Sequence[jax.Array]) -> dict[str, Any]:
    """Worst relative difference of observations and rewards, and mismatched done flags."""
    obs0, obs, reward, terminated, truncated = (np.asarray(x, np.float64) for x in expected)
    obs0_c, obs_c, reward_c, terminated_c, truncated_c = (np.asarray(x, np.float64) for x in got)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))

    obs_err = max(rel(obs0, obs0_c), rel(obs, obs_c))
    reward_err = rel(reward, reward_c)
    flags = int(np.sum(terminated != terminated_c) + np.sum(truncated != truncated_c))
    return {
        "max_rel_diff_obs": obs_err,
        "max_rel_diff_reward": reward_err,
        "flag_mismatches": flags,
        "episodes_ended": int(np.sum(np.logical_or(terminated, truncated))),
        "deaths": int(np.sum(terminated)),
        "passed": bool(max(obs_err, reward_err) < CHECK_TOLERANCE and flags == 0),
    }


def print_check(check: dict[str, Any]) -> None:
    print(
        f"Ceiling check ({check['env_id']}, batch {check['batch']}, {check['steps']} steps, "
        f"same keys and actions as sepsisim_jax; tolerance {check['tolerance']:g} relative):"
    )
    for case, variants in check["cases"].items():
        for variant, v in variants.items():
            print(
                f"  {case:13s} {variant:4s}  obs {v['max_rel_diff_obs']:.1e}"
                f"  reward {v['max_rel_diff_reward']:.1e}  flag mismatches {v['flag_mismatches']}"
                f"  (episodes ended {v['episodes_ended']}, deaths {v['deaths']})"
                f"  {'PASS' if v['passed'] else 'FAIL'}"
            )


# --- the run ---------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], Config]]]:
    """Every configuration as ``(label, prepare)``: the reference envs, then each selected
    section's (compiled or warmed up when prepared)."""
    jobs: list[tuple[str, Callable[[], Config]]] = [
        (
            f"reference {env_id}",
            functools.partial(prepare_reference, env_id, args.reference_steps, args.seed),
        )
        for env_id in args.envs
    ]
    if "core" in args.sections:
        variants = list(fused_ceiling.VARIANTS) if CEILING_ENV in args.envs else []
        for batch in args.batches:
            for env_id in args.envs:
                jobs.append(
                    (
                        f"compile sepsisim_jax {env_id} x{batch}",
                        functools.partial(_prepare_ours, env_id, batch, args.seed),
                    )
                )
            for variant in variants:
                jobs.append(
                    (
                        f"compile ceiling-{variant} x{batch}",
                        functools.partial(_prepare_ceiling, variant, batch, args.seed),
                    )
                )
    if "adapter" in args.sections:
        for env_id in args.envs:
            jobs.append(
                (
                    f"warm up adapter single {env_id}",
                    functools.partial(
                        prepare_adapter_single, env_id, args.reference_steps, args.seed
                    ),
                )
            )
            for num_envs in args.vector_envs:
                jobs.append(
                    (
                        f"warm up adapter vector {env_id} x{num_envs}",
                        functools.partial(prepare_adapter_vector, env_id, num_envs, args.seed),
                    )
                )
    return jobs


def _prepare_ours(env_id: str, batch: int, seed: int) -> Config:
    return prepare_rollout(env_id, "sepsisim_jax", ours(env_id), batch, seed)


def _prepare_ceiling(variant: str, batch: int, seed: int) -> Config:
    return prepare_rollout(CEILING_ENV, f"ceiling-{variant}", ceiling(variant), batch, seed)


def run_all(args: argparse.Namespace) -> list[Config]:
    """Prepare everything, then ``repeats`` rounds that each run every configuration once.

    Interleaving the repeats spreads each configuration's runs over the whole measurement,
    so a slow phase of a shared machine hits all of them alike rather than one.
    """
    jobs = plan(args)
    with tqdm(total=len(jobs) * (1 + args.repeats), desc="configurations", unit="cfg") as bar:
        configs = []
        for label, prepare in jobs:
            bar.set_postfix_str(label)
            configs.append(prepare())
            bar.update()
        for round_ in range(args.repeats):
            for config in configs:
                batch = "" if config.batch is None else f" x{config.batch}"
                bar.set_postfix_str(f"round {round_ + 1} {config.impl} {config.env_id}{batch}")
                config.time_once()
                bar.update()
    return configs


def summarise(configs: list[Config]) -> list[dict[str, Any]]:
    """One row per core configuration (and reference) with its ratios to the reference and to
    the ceiling."""
    configs = [c for c in configs if not c.impl.startswith("adapter")]
    reference = {c.env_id: c.steps_per_s for c in configs if c.impl == "reference"}
    ceilings: dict[int, float] = {}
    for c in configs:
        if c.impl.startswith("ceiling") and c.batch is not None:
            ceilings[c.batch] = max(ceilings.get(c.batch, 0.0), c.steps_per_s)
    rows = []
    for c in sorted(configs, key=_table_order):
        vs_ceiling = None
        if c.impl == "sepsisim_jax" and c.env_id == CEILING_ENV and c.batch in ceilings:
            vs_ceiling = c.steps_per_s / ceilings[c.batch]
        rows.append(
            {
                "env_id": c.env_id,
                "impl": c.impl,
                "batch": c.batch,
                "steps_per_repeat": c.steps,
                "compile_s": c.compile_s,
                "run_s": c.run_s,
                "steps_per_s": c.steps_per_s,
                "vs_reference": c.steps_per_s / reference[c.env_id],
                "vs_ceiling": vs_ceiling,
            }
        )
    return rows


def _table_order(c: Config) -> tuple[int, str, int, int]:
    """Reference rows, then sepsisim_jax by environment and batch, then the ceilings."""
    group = {"reference": 0, "sepsisim_jax": 1}.get(c.impl, 2)
    return group, c.impl, sepsisim_jax.ENV_IDS.index(c.env_id), c.batch or 0


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The two targets, evaluated on FluidResuscitation at batch 65,536 if it was measured."""
    match = [
        r
        for r in rows
        if r["env_id"] == CEILING_ENV and r["impl"] == "sepsisim_jax" and r["batch"] == TARGET_BATCH
    ]
    if not match:
        return {"batch": TARGET_BATCH, "evaluated": False}
    row = match[0]
    out: dict[str, Any] = {"batch": TARGET_BATCH, "evaluated": True}
    out["vs_reference"] = _target(row["vs_reference"], TARGET_VS_REFERENCE)
    out["vs_ceiling"] = _target(row["vs_ceiling"], TARGET_VS_CEILING)
    return out


def _target(value: float | None, target: float) -> dict[str, Any]:
    return {"value": value, "target": target, "met": value is not None and value >= target}


def format_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("env", "<24", lambda r: r["env_id"]),
            ("impl", "<13", lambda r: r["impl"]),
            ("batch", ">6", lambda r: optional(r["batch"], "d")),
            ("compile s", ">9", lambda r: optional(r["compile_s"], ".1f")),
            ("env-steps/s", ">13", lambda r: f"{r['steps_per_s']:,.0f}"),
            ("x reference", ">11", lambda r: f"{r['vs_reference']:,.1f}"),
            ("of ceiling", ">10", lambda r: optional(r["vs_ceiling"], ".0%")),
        ],
    )


def print_verdicts(v: dict[str, Any]) -> None:
    if not v["evaluated"]:
        print(f"Targets not evaluated: {CEILING_ENV} at batch {TARGET_BATCH:,} was not measured.")
        return
    ref, ceil = v["vs_reference"], v["vs_ceiling"]
    print(f"Targets ({CEILING_ENV}, batch {TARGET_BATCH:,}, ratios measured in this run):")
    print(
        f"  vs reference: {ref['value']:,.0f}x (target >= {ref['target']:,.0f}x)"
        f" -> {verdict(ref['met'])}"
    )
    if ceil["value"] is None:
        print("  vs ceiling:   not measured")
    else:
        print(
            f"  vs ceiling:   {100 * ceil['value']:.0f}% (target >= {100 * ceil['target']:.0f}%)"
            f" -> {verdict(ceil['met'])}"
        )


def summarise_adapter(configs: list[Config]) -> list[dict[str, Any]]:
    """One row per reference and adapter configuration, with its ratio to the reference."""
    reference = {c.env_id: c.steps_per_s for c in configs if c.impl == "reference"}
    order = {"reference": 0, "adapter-single": 1, "adapter-vector": 2}
    rows = []
    for c in sorted(
        (c for c in configs if c.impl in order),
        key=lambda c: (sepsisim_jax.ENV_IDS.index(c.env_id), order[c.impl], c.batch or 0),
    ):
        num_envs = c.batch or 1
        rows.append(
            {
                "env_id": c.env_id,
                "impl": c.impl,
                "num_envs": num_envs,
                "steps_per_repeat": c.steps,
                "setup_s": c.compile_s,
                "run_s": c.run_s,
                "steps_per_s": c.steps_per_s,
                "us_per_call": 1e6 * num_envs / c.steps_per_s,
                "vs_reference": c.steps_per_s / reference[c.env_id],
            }
        )
    return rows


def adapter_verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The adapter's two targets; each is met only if met by every environment measured."""
    single = {r["env_id"]: r["vs_reference"] for r in rows if r["impl"] == "adapter-single"}
    vector = {
        r["env_id"]: r["steps_per_s"]
        for r in rows
        if r["impl"] == "adapter-vector" and r["num_envs"] == TARGET_VECTOR_ENVS
    }
    return {
        "single_vs_reference": _worst(single, TARGET_SINGLE_VS_REFERENCE),
        "vector_steps_per_s": {"num_envs": TARGET_VECTOR_ENVS}
        | _worst(vector, TARGET_VECTOR_STEPS_PER_S),
    }


def _worst(by_env: dict[str, float], target: float) -> dict[str, Any]:
    """The target evaluated on the worst environment (not evaluated without any)."""
    value = min(by_env.values()) if by_env else None
    return {"evaluated": bool(by_env), "by_env": by_env} | _target(value, target)


def format_adapter_table(rows: list[dict[str, Any]]) -> str:
    return text_table(
        rows,
        [
            ("env", "<24", lambda r: r["env_id"]),
            ("impl", "<14", lambda r: r["impl"]),
            ("envs", ">5", lambda r: str(r["num_envs"])),
            ("setup s", ">7", lambda r: optional(r["setup_s"], ".1f")),
            ("env-steps/s", ">13", lambda r: f"{r['steps_per_s']:,.0f}"),
            ("us/call", ">9", lambda r: f"{r['us_per_call']:,.1f}"),
            ("x reference", ">11", lambda r: f"{r['vs_reference']:,.1f}"),
        ],
    )


def print_adapter_verdicts(v: dict[str, Any]) -> None:
    single, vector = v["single_vs_reference"], v["vector_steps_per_s"]
    print("Adapter targets (worst environment counts; ratios measured in this run):")
    if single["evaluated"]:
        detail = ", ".join(f"{k} {x:.1f}x" for k, x in single["by_env"].items())
        print(
            f"  single env vs reference: {single['value']:.1f}x ({detail})"
            f" (target >= {single['target']:.0f}x) -> {verdict(single['met'])}"
        )
    else:
        print("  single env vs reference: not measured")
    if vector["evaluated"]:
        detail = ", ".join(f"{k} {x:,.0f}" for k, x in vector["by_env"].items())
        print(
            f"  vector env at {vector['num_envs']:,} envs: {vector['value']:,.0f} env-steps/s"
            f" ({detail}) (target >= {vector['target']:,.0f})"
            f" -> {verdict(vector['met'])}"
        )
    else:
        print(f"  vector env at {vector['num_envs']:,} envs: not measured")


def environment_info(args: argparse.Namespace) -> dict[str, Any]:
    """The machine and the settings of this run."""
    return machine_info() | {
        "severity": SEVERITY,
        "episode_steps": EPISODE_STEPS,
        "sections": list(args.sections),
        "repeats": args.repeats,
        "reference_steps": args.reference_steps,
        "batches": list(args.batches),
        "vector_envs": list(args.vector_envs),
        "envs": list(args.envs),
        "seed": args.seed,
    }


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
    parser.add_argument("--envs", nargs="+", choices=sepsisim_jax.ENV_IDS, default=None)
    parser.add_argument("--batches", nargs="+", type=int, default=None)
    parser.add_argument(
        "--vector-envs", nargs="+", type=int, default=None, help="num_envs of the vector env"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed rounds over all configurations; the best run counts",
    )
    parser.add_argument(
        "--reference-steps",
        type=int,
        default=None,
        help="steps per timed run of a single env (the reference and the adapter's)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="batches 1 and 64, vector envs 16 and 256, few single-env steps",
    )
    args = parser.parse_args(argv)
    args.sections = [s for s in SECTIONS if s in args.sections]
    args.envs = args.envs or list(sepsisim_jax.ENV_IDS)
    args.batches = args.batches or list(QUICK_BATCHES if args.quick else DEFAULT_BATCHES)
    args.vector_envs = args.vector_envs or list(
        QUICK_VECTOR_ENVS if args.quick else DEFAULT_VECTOR_ENVS
    )
    if args.reference_steps is None:
        args.reference_steps = QUICK_REFERENCE_STEPS if args.quick else DEFAULT_REFERENCE_STEPS
    if args.out is None:
        args.out = RESULTS_DIR / default_out_name(args.sections, args.quick)
    if args.repeats < 1 or args.reference_steps < 1 or min(args.batches + args.vector_envs) < 1:
        parser.error("--repeats, --reference-steps, --batches and --vector-envs must be positive")
    return args


def default_out_name(sections: Sequence[str], quick: bool) -> str:
    """``throughput.json`` for every section, ``throughput_<section>.json`` for one; ``_quick``
    with ``--quick``. A run of one section thus never overwrites the full run's results."""
    name = "throughput" if list(sections) == list(SECTIONS) else "_".join(["throughput", *sections])
    return f"{name}_quick.json" if quick else f"{name}.json"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", module="gymnasium")  # the env checker's precision notes
    core = "core" in args.sections
    check = None
    if core and CEILING_ENV in args.envs:
        check = check_ceiling(args.seed)
        print_check(check)
        if not check["passed"]:
            print("  the ceiling does not compute what sepsisim_jax computes: its ratios are void")
    configs = run_all(args)
    results: dict[str, Any] = {
        "environment": environment_info(args),
        "ceiling_check": check,
        "rows": [],
        "targets": None,
        "adapter": None,
    }
    if core:
        rows = summarise(configs)
        if check is not None and not check["passed"]:
            for row in rows:
                row["vs_ceiling"] = None
        print(format_table(rows))
        target = verdicts(rows)
        print_verdicts(target)
        results["rows"], results["targets"] = rows, target
    if "adapter" in args.sections:
        rows = summarise_adapter(configs)
        print(format_adapter_table(rows))
        target = adapter_verdicts(rows)
        print_adapter_verdicts(target)
        results["adapter"] = {"rows": rows, "targets": target}
    write_results(args.out, results)


if __name__ == "__main__":
    main()
