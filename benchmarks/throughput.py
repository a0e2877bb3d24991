"""Environment-step throughput of sepsisim 0.1.0, sepsisim_jax and a hand-fused JAX ceiling.

Figures per environment, all in env-steps per second, measured in one run:

- reference: one ``gymnasium.make("sepsisim/<Id>")`` env stepped with random actions drawn in
  the loop, and (core section, v0 ids) the environment alone: the same env stepped with
  actions drawn before the timed loop;
- core section: ``jit`` of a ``lax.scan`` over 72 steps of ``vmap(env.step)`` per batch size,
  with random actions drawn in the scan and (v0 ids) the environment alone, its keys and
  actions drawn before the timed call, and (FluidResuscitation only) the same scan over the
  hand-fused step of ``fused_ceiling.py``, checked against sepsisim_jax before it is timed;
  the -v1 ids (coupled Reynolds 2006) run the same scan, with their default patient
  (``sepsisim_jax``) and with virtual patients (``virtual``, patient spread 0.2), compared
  with the v0 id of the same task at the same batch;
- adapter section (v0 ids): ``gymnasium.make("sepsisim_jax/<Id>")`` stepped by the
  reference's own loop, and ``gymnasium.make_vec("sepsisim_jax/<Id>", num_envs=N,
  vectorization_mode="vector_entry_point")`` stepped with batched random actions, for each N.

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
from common import RESULTS_DIR, Target, Timed, optional, report, time_interleaved

import sepsisim_jax
from sepsisim_jax.text_table import Column

EPISODE_STEPS = 72  # the reference registers every env with TimeLimit(max_episode_steps=72)
SEVERITY = "medium"
SECTIONS = ("core", "adapter")
# Sizes unless given explicitly: core batch sizes, adapter num_envs, steps per single-env run.
DEFAULTS = {
    "batches": [1, 64, 1024, 16384, 65536],
    "vector_envs": [16, 256, 1024],
    "reference_steps": 5000,
}
QUICK = {"batches": [1, 64], "vector_envs": [16, 256], "reference_steps": 300}
WARMUP_STEPS = 50  # untimed steps of a single env before its runs
VECTOR_WARMUP_CALLS = 3
MIN_RUN_STEPS = 65536  # env-steps per timed run of a batched rollout (repeated calls if smaller)
CEILING_ENV = "FluidResuscitation-v0"
TARGET_BATCH = 65536  # core targets: on CEILING_ENV, and the environment alone on every v0 id
TARGET_VECTOR_ENVS = 1024
CHECK_BATCH = 256
CHECK_STEPS = 2 * EPISODE_STEPS  # two episodes: covers the auto-reset at step 72
CHECK_TOLERANCE = 1e-3  # on |ours - ceiling| / max(1, |ours|)
CHECK_CASES: dict[str, dict[str, float]] = {
    "default": {},
    "no antibiotic": {"antibiotic_efficacy": 0.0},  # patients die: covers termination
}
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

StepFn = Callable[
    [jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array]
]
BatchFns = tuple[StepFn, Callable[[jax.Array], Any]]  # a batch step and a batched reset
ALONE = "-alone"  # impl suffix: actions (and keys) drawn before the timed loop


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


def vector_env(env_id: str, num_envs: int, seed: int) -> Timed:
    """``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``, seeded, reset and
    warmed up; a run is a whole number of 72-call episodes, at least ``MIN_RUN_STEPS``."""
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
    labels = {"env_id": env_id, "impl": "adapter-vector", "batch": num_envs}
    return Timed(labels, calls * num_envs, functools.partial(_vector_loop, envs, calls), setup_s)


def _vector_loop(envs: gymnasium.vector.VectorEnv, calls: int) -> None:
    """Step every sub-env ``calls`` times (same-step auto-reset: no ``reset`` needed)."""
    for _ in range(calls):
        envs.step(envs.action_space.sample())


def jitted_rollout(impl: str, env_id: str, fns: BatchFns, batch: int, seed: int) -> Timed:
    """Admit ``batch`` patients, compile (timed) a 72-step rollout; a run calls it, each call
    ended by ``block_until_ready``, until at least ``MIN_RUN_STEPS`` env-steps.

    An ``impl`` ending in ``-alone`` times the environment alone: the rollout's per-step
    keys and actions (the same ones the random-action rollout draws) are drawn before,
    outside the timed call, and passed in.
    """
    step_fn, reset = fns
    reset_key, run_key = jax.random.split(jax.random.key(seed))
    _, state = reset(jax.random.split(reset_key, batch))
    bounds = action_bounds(env_id)
    if impl.endswith(ALONE):
        inputs = jax.block_until_ready(draw_inputs(run_key, batch, *bounds))
        rollout = make_rollout(step_fn, batch, *bounds, predrawn=True)
        args: tuple = (state, *inputs)
    else:
        rollout = make_rollout(step_fn, batch, *bounds)
        args = (state, run_key)
    start = time.perf_counter()
    compiled = jax.jit(rollout).lower(*args).compile()
    compile_s = time.perf_counter() - start
    calls = math.ceil(MIN_RUN_STEPS / (batch * EPISODE_STEPS))

    def run() -> None:
        for _ in range(calls):
            jax.block_until_ready(compiled(*args))

    labels = {"env_id": env_id, "impl": impl, "batch": batch}
    return Timed(labels, calls * batch * EPISODE_STEPS, run, compile_s)


# --- sepsisim_jax and the ceiling as batch steps, and their shared rollout ------------------


def step_inputs(
    key: jax.Array, batch: int, action_low: np.ndarray, action_high: np.ndarray
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step's inputs: ``(next_key, per-patient keys, actions)``.

    One split of the carried key, one ``uniform`` call for all actions within the bounds,
    one ``split`` into per-patient keys.
    """
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    low = jnp.asarray(action_low, dtype)
    high = jnp.asarray(action_high, dtype)
    key, action_key, step_key = jax.random.split(key, 3)
    actions = jax.random.uniform(action_key, (batch, low.size), dtype, low, high)
    return key, jax.random.split(step_key, batch), actions


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _draw_inputs(
    key: jax.Array, batch: int, low: tuple, high: tuple, num_steps: int
) -> tuple[jax.Array, jax.Array]:
    def body(key: jax.Array, _: None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        key, keys, actions = step_inputs(key, batch, np.asarray(low), np.asarray(high))
        return key, (keys, actions)

    return jax.lax.scan(body, key, None, length=num_steps)[1]


def draw_inputs(
    key: jax.Array,
    batch: int,
    action_low: np.ndarray,
    action_high: np.ndarray,
    num_steps: int = EPISODE_STEPS,
) -> tuple[jax.Array, jax.Array]:
    """Every step's per-patient keys ``(num_steps, batch)`` and actions ``(num_steps, batch,
    n)``, exactly those the random-action rollout from ``key`` draws as it goes."""
    bounds = tuple(map(float, action_low)), tuple(map(float, action_high))
    return _draw_inputs(key, batch, *bounds, num_steps)


def make_rollout(
    step_fn: StepFn,
    batch: int,
    action_low: np.ndarray,
    action_high: np.ndarray,
    num_steps: int = EPISODE_STEPS,
    record: bool = False,
    predrawn: bool = False,
) -> Callable[..., Any]:
    """``rollout(state, key)``: ``num_steps`` batched steps with random actions in one scan.

    Per step, :func:`step_inputs` draws the keys and actions. With ``predrawn`` the rollout
    is ``rollout(state, keys, actions)`` instead and scans over inputs drawn beforehand
    (:func:`draw_inputs`): the environment alone. Without ``record`` the scan keeps only a
    per-patient running sum of rewards and observations (so nothing is dead code and no
    per-step output is stored) and returns ``(final_state, checksum)``; with ``record`` it
    returns ``(obs, reward, terminated, truncated)`` stacked over steps.
    """

    def advance(state: Any, total: jax.Array, keys: jax.Array, actions: jax.Array) -> tuple:
        obs, state, reward, terminated, truncated = step_fn(keys, state, actions)
        total = total + reward.astype(jnp.float32) + jnp.sum(obs, axis=-1)
        recorded = (obs, reward, terminated, truncated) if record else None
        return state, total, recorded

    def body(carry, _):
        state, key, total = carry
        key, keys, actions = step_inputs(key, batch, action_low, action_high)
        state, total, recorded = advance(state, total, keys, actions)
        return (state, key, total), recorded

    def body_predrawn(carry, inputs):
        state, total, recorded = advance(*carry, *inputs)
        return (state, total), recorded

    def rollout(state: Any, key: jax.Array) -> Any:
        carry = (state, key, jnp.zeros((batch,), jnp.float32))
        (state, _, total), recorded = jax.lax.scan(body, carry, None, length=num_steps)
        return recorded if record else (state, total)

    def rollout_predrawn(state: Any, keys: jax.Array, actions: jax.Array) -> Any:
        carry = (state, jnp.zeros((batch,), jnp.float32))
        (state, total), recorded = jax.lax.scan(body_predrawn, carry, (keys, actions))
        return recorded if record else (state, total)

    return rollout_predrawn if predrawn else rollout


def ours(env_id: str, **overrides: float) -> BatchFns:
    """``vmap(env.step)`` as a batch step, and a batched reset (params closed over)."""
    env, params = sepsisim_jax.make(env_id, severity=SEVERITY, **overrides)

    def step_one(key: jax.Array, state: Any, action: jax.Array) -> tuple:
        return env.step(key, state, action, params)[:5]

    def reset(keys: jax.Array) -> Any:
        return jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    return jax.vmap(step_one), reset


def ceiling(variant: str, **overrides: float) -> BatchFns:
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
    if not check["passed"]:
        print("  the ceiling does not compute what sepsisim_jax computes: its ratios are void")


# --- the run ---------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[tuple[str, Callable[[], Timed]]]:
    """Every configuration as ``(label, prepare)``: the reference envs, then each section's."""
    jobs: list[tuple[str, Callable[[], Timed]]] = []
    seed, steps = args.seed, args.reference_steps

    def add(label: str, prepare: Callable[..., Timed], *arguments: Any) -> None:
        jobs.append((label, functools.partial(prepare, *arguments)))

    v0_envs = [e for e in args.envs if e.endswith("-v0")]
    for e in v0_envs:
        add(f"reference {e}", single_env, "reference", e, steps, seed)
        if "core" in args.sections:
            add(f"reference alone {e}", single_env, "reference" + ALONE, e, steps, seed)
    if "core" in args.sections:
        variants = list(fused_ceiling.VARIANTS) if CEILING_ENV in args.envs else []
        for n in args.batches:
            for e in args.envs:
                add(f"sepsisim_jax {e} x{n}", jitted_rollout, "sepsisim_jax", e, ours(e), n, seed)
                if e.endswith("-v0"):
                    impl = "sepsisim_jax" + ALONE
                    add(f"{impl} {e} x{n}", jitted_rollout, impl, e, ours(e), n, seed)
                if e.endswith("-v1"):
                    fns = ours(e, patient_spread=V1_SPREAD)
                    add(f"virtual {e} x{n}", jitted_rollout, "virtual", e, fns, n, seed)
            for v in variants:
                add(
                    f"ceiling-{v} x{n}",
                    jitted_rollout,
                    f"ceiling-{v}",
                    CEILING_ENV,
                    ceiling(v),
                    n,
                    seed,
                )
    if "adapter" in args.sections:
        for e in v0_envs:
            add(f"adapter {e}", single_env, "adapter-single", e, steps, seed)
            for n in args.vector_envs:
                add(f"adapter {e} x{n}", vector_env, e, n, seed)
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
        same_task = (r["env_id"].replace("-v1", "-v0"), r["batch"])
        is_v1 = r["env_id"].endswith("-v1") and same_task in v0
        r["vs_v0"] = r["steps_per_s"] / v0[same_task] if is_v1 else None
        ours_on_ceiling = r["impl"] == "sepsisim_jax" and r["env_id"] == CEILING_ENV
        ratio = ours_on_ceiling and ceiling_valid and r["batch"] in ceilings
        r["vs_ceiling"] = r["steps_per_s"] / ceilings[r["batch"]] if ratio else None
    return rows


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
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the best run counts")
    parser.add_argument("--reference-steps", type=int, help="steps per timed single-env run")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="batches 1 and 64, vector envs 16 and 256, few single-env steps",
    )
    args = parser.parse_args(argv)
    args.sections = [s for s in SECTIONS if s in args.sections]
    args.envs = args.envs or list(sepsisim_jax.ENV_IDS)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.out = args.out or RESULTS_DIR / default_out_name(args.sections, args.quick)
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
    check = None
    if "core" in args.sections and CEILING_ENV in args.envs:
        check = check_ceiling(args.seed)
        print_check(check)
    timed = time_interleaved(plan(args), args.repeats)
    rows = summarise(timed, ceiling_valid=check is None or check["passed"])
    recorded = ("sections", "repeats", "reference_steps", "batches", "vector_envs", "envs", "seed")
    settings = {"severity": SEVERITY, "episode_steps": EPISODE_STEPS}
    settings |= {name: getattr(args, name) for name in recorded}
    report(args.out, settings, rows, COLUMNS, targets(rows, args.sections), ceiling_check=check)


if __name__ == "__main__":
    main()
