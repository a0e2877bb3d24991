"""Hand-fused FluidResuscitation-v0 step in plain ``jax.numpy``: the benchmark's arithmetic ceiling.

The same transition as ``sepsisim_jax``'s FluidResuscitation (random numbers, order of
operations, clipping, reward, termination, truncation and auto-reset), written as one
elementwise function with no diffrax, no gymnax and no pytree of parameters: every constant
is a Python float, the inflammation ODE is integrated by a hand-written classical RK4, and
the state carries only what the next step needs.

Randomness matches the environment draw for draw: one ``jax.random.uniform`` of six numbers
per patient key and step in ``(-1, 1)``; the first four become standard normals through
``sqrt(2) * erfinv(u)`` (step MAP and urine noise, admission MAP and urine noise), the last two
are the admission jitters of bacteria and lactate.

Two batch layouts are provided, both taking per-patient keys, a batched state and actions of
shape ``(batch, 1)``: :func:`soa_step` evaluates the arithmetic on whole-batch arrays (struct
of arrays; only the random draw is vmapped), :func:`vmap_step` vmaps the single-patient step.

Run as a script, it checks both variants against sepsisim_jax (the same admissions, keys and
actions; the check ``throughput.py`` also runs) and times them beside sepsisim_jax's
``vmap(env.step)`` at each batch size: ``python benchmarks/fused_ceiling.py [--batches ...]
[--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from common import Target, Timed, optional, output_path, report, time_interleaved
from rollouts import (
    MIN_RUN_STEPS,
    SEVERITY,
    BatchFns,
    compare,
    jitted_rollout,
    ours,
    print_check,
    recorded_rollout,
)

from sepsisim_jax.text_table import Column

EPISODE_STEPS = 72
NUM_DRAWS = 6
SEVERITY_BACTERIA = {"easy": 0.2, "medium": 0.4, "hard": 0.6}


@dataclasses.dataclass(frozen=True)
class Constants:
    """The reference's default physiology (sepsisim 0.1.0), as static Python floats."""

    initial_bacteria: float = 0.4
    dt: float = 1.0
    substeps: int = 2
    # inflammation ODE (Reynolds et al. 2006, hourly calibration)
    k_growth: float = 0.6
    k_kill: float = 0.5
    b_max: float = 1.0
    s_m: float = 0.01
    k_mb: float = 1.5
    k_md: float = 0.2
    mu_m: float = 0.2
    k_ma: float = 0.5
    s_a: float = 0.01
    k_am: float = 0.4
    k_ad: float = 0.1
    mu_a: float = 0.05
    k_dm: float = 0.5
    mu_d: float = 0.12
    antibiotic_efficacy: float = 0.5
    # haemodynamics, lactate, noise
    map_baseline: float = 75.0
    fluid_map_gain: float = 8.0
    redistribution_rate: float = 0.15
    baseline_lactate: float = 1.0
    max_production_rate: float = 4.0
    clearance_rate: float = 0.3
    map_threshold: float = 65.0
    damage_production_gain: float = 1.5
    map_noise_sd: float = 2.0
    urine_noise_sd: float = 0.05
    admission_jitter: float = 0.2
    max_fluid_ml: float = 1000.0

    @classmethod
    def for_severity(cls, severity: str) -> Constants:
        """Defaults with the initial bacterial load of ``severity``."""
        return cls(initial_bacteria=SEVERITY_BACTERIA[severity])


class Draws(NamedTuple):
    """One step's random numbers: four standard normals and two uniforms in (-1, 1)."""

    map_z: jax.Array
    urine_z: jax.Array
    admission_map_z: jax.Array
    admission_urine_z: jax.Array
    bacteria_u: jax.Array
    lactate_u: jax.Array


class State(NamedTuple):
    """Per-patient state carried between steps (leaves are scalars or whole-batch arrays)."""

    bacteria: jax.Array
    pro_inflammatory: jax.Array
    anti_inflammatory: jax.Array
    damage: jax.Array
    volume: jax.Array  # L above baseline
    lactate: jax.Array  # mmol/L
    total_fluid_ml: jax.Array
    time: jax.Array  # int32


Inflammation = tuple[jax.Array, jax.Array, jax.Array, jax.Array]
BatchStep = Callable[
    [jax.Array, State, jax.Array],
    tuple[jax.Array, State, jax.Array, jax.Array, jax.Array],
]


def float_dtype() -> jnp.dtype:
    """float32, or float64 under ``jax_enable_x64`` (as the environment)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def uniforms(key: jax.Array) -> jax.Array:
    """The six uniforms in (-1, 1) of one patient's step."""
    dtype = float_dtype()
    low = np.nextafter(np.asarray(-1.0, dtype), np.asarray(0.0, dtype))
    return jax.random.uniform(key, (NUM_DRAWS,), dtype, minval=low, maxval=1.0)


def normal(u: jax.Array) -> jax.Array:
    """Standard normal from a uniform in (-1, 1) by the inverse error function."""
    return np.sqrt(2.0).astype(u.dtype) * jax.lax.erf_inv(u)


def draws_of(u: jax.Array) -> Draws:
    """Split the six uniforms of a step (last axis): the first four become normals."""
    z = normal(u[..., :4])  # one erfinv over a contiguous block, as the environment
    return Draws(z[..., 0], z[..., 1], z[..., 2], z[..., 3], u[..., 4], u[..., 5])


def derivatives(y: Inflammation, c: Constants) -> Inflammation:
    """Inflammation vector field with every state floored at zero first."""
    b, m, a, d = (jnp.maximum(v, 0.0) for v in y)
    sat = b / (1.0 + b)
    return (
        c.k_growth * b * (1.0 - b / c.b_max) - c.k_kill * m * sat - c.antibiotic_efficacy * b,
        c.s_m + c.k_mb * sat + c.k_md * d - c.mu_m * m - c.k_ma * m * a,
        c.s_a + c.k_am * m + c.k_ad * d - c.mu_a * a,
        c.k_dm * m / (1.0 + m) - c.mu_d * d,
    )


def rk4(y: Inflammation, c: Constants) -> Inflammation:
    """``c.substeps`` classical RK4 steps of ``dt / substeps`` hours, then the state clipping."""
    h = c.dt / c.substeps
    for _ in range(c.substeps):
        k1 = derivatives(y, c)
        k2 = derivatives(tuple(v + 0.5 * h * k for v, k in zip(y, k1, strict=True)), c)
        k3 = derivatives(tuple(v + 0.5 * h * k for v, k in zip(y, k2, strict=True)), c)
        k4 = derivatives(tuple(v + h * k for v, k in zip(y, k3, strict=True)), c)
        y = tuple(
            v + h * (p / 6.0 + q / 3.0 + r / 3.0 + s / 6.0)
            for v, p, q, r, s in zip(y, k1, k2, k3, k4, strict=True)
        )
    b, m, a, d = y
    return jnp.clip(b, 0.0, c.b_max), jnp.maximum(m, 0.0), jnp.maximum(a, 0.0), jnp.clip(d, 0.0, 1)


def mean_arterial_pressure(
    damage: jax.Array, volume: jax.Array, z: jax.Array, c: Constants
) -> jax.Array:
    """MAP without vasopressor (FluidResuscitation never gives any), clipped to [20, 150]."""
    fluid = c.fluid_map_gain * volume / (1.0 + 0.3 * jnp.maximum(volume, 0.0))
    depression = c.map_baseline * 0.3 * damage
    return jnp.clip(c.map_baseline - depression + fluid + c.map_noise_sd * z, 20.0, 150.0)


def urine_output(map_mmhg: jax.Array, z: jax.Array, c: Constants) -> jax.Array:
    """Piecewise-linear urine output in MAP plus noise, clipped to [0, 2] mL/kg/h."""
    low = 0.3 * (map_mmhg - 50.0) / 15.0
    high = 0.3 + 0.2 * jnp.minimum(1.0, (map_mmhg - 65.0) / 30.0)
    urine = jnp.where(map_mmhg < 50.0, 0.0, jnp.where(map_mmhg < 65.0, low, high))
    return jnp.clip(urine + c.urine_noise_sd * z, 0.0, 2.0)


def lactate_step(
    lactate: jax.Array, map_mmhg: jax.Array, damage: jax.Array, c: Constants
) -> jax.Array:
    """One Euler step of lactate production minus clearance, clipped to [0.1, 30]."""
    perfusion = map_mmhg / c.map_threshold
    production = c.max_production_rate * jnp.maximum(0.0, 1.0 - perfusion)
    production = production + c.damage_production_gain * damage
    clearance = c.clearance_rate * jnp.minimum(1.0, perfusion) * jnp.maximum(0.3, 1 - 0.5 * damage)
    rate = production - clearance * (lactate - c.baseline_lactate)
    return jnp.clip(lactate + rate * c.dt, 0.1, 30.0)


def sofa(map_mmhg: jax.Array, urine: jax.Array, lactate: jax.Array) -> jax.Array:
    """Simplified SOFA without vasopressor: MAP < 70, urine and lactate thresholds."""
    score = (map_mmhg < 70.0).astype(jnp.int32)
    for threshold in (0.5, 0.3, 0.2, 0.1):
        score = score + (urine < threshold).astype(jnp.int32)
    for threshold in (2.0, 4.0, 6.0, 10.0):
        score = score + (lactate > threshold).astype(jnp.int32)
    return score


def reward_of(
    map_mmhg: jax.Array, lactate: jax.Array, urine: jax.Array, volume: jax.Array, damage: jax.Array
) -> jax.Array:
    """FluidResuscitation reward before the death penalty."""
    map_term = jnp.where(
        (map_mmhg >= 65.0) & (map_mmhg <= 90.0),
        2.0,
        jnp.where(
            map_mmhg < 50.0, -3.0, jnp.where(map_mmhg < 65.0, -(65.0 - map_mmhg) / 15.0, 0.0)
        ),
    )
    lactate_term = jnp.where(
        lactate < 2.0, 1.0, jnp.where(lactate > 4.0, -0.5 * (lactate - 4.0), 0.0)
    )
    urine_term = jnp.where(urine >= 0.5, 0.5, 0.0)
    return map_term + lactate_term + urine_term - jnp.maximum(volume - 4.0, 0.0) - 0.1 * damage


def observation(
    map_mmhg: jax.Array,
    lactate: jax.Array,
    urine: jax.Array,
    damage: jax.Array,
    volume: jax.Array,
    bacteria: jax.Array,
    score: jax.Array,
) -> jax.Array:
    """Float32 observation, features on the last axis, in the reference's order."""
    values = (map_mmhg, lactate, urine, damage, volume, bacteria, score)
    return jnp.stack([v.astype(jnp.float32) for v in values], axis=-1)


def admit(draws: Draws, c: Constants) -> tuple[jax.Array, State]:
    """Admission: jittered bacteria and lactate, noisy MAP and urine, mediators at rest."""
    features, state = admit_features(draws, c)
    return observation(*features), state


def admit_features(draws: Draws, c: Constants) -> tuple[tuple[jax.Array, ...], State]:
    """:func:`admit` with the observation as its features, unstacked."""
    dtype = float_dtype()
    bacteria = c.initial_bacteria * (1.0 + c.admission_jitter * draws.bacteria_u)
    bacteria = jnp.clip(bacteria, 0.01, c.b_max)
    zero = jnp.zeros_like(bacteria)
    map_mmhg = jnp.clip(c.map_baseline + c.map_noise_sd * draws.admission_map_z, 20.0, 150.0)
    lactate0 = c.baseline_lactate + 3.0 * c.initial_bacteria
    lactate = jnp.clip(lactate0 * (1.0 + c.admission_jitter * draws.lactate_u), 0.5, 15.0)
    urine = urine_output(map_mmhg, draws.admission_urine_z, c)
    state = State(
        bacteria=bacteria,
        pro_inflammatory=jnp.full_like(zero, c.s_m / c.mu_m, dtype),
        anti_inflammatory=jnp.full_like(zero, c.s_a / c.mu_a, dtype),
        damage=zero,
        volume=zero,
        lactate=lactate,
        total_fluid_ml=zero,
        time=jnp.zeros_like(zero, jnp.int32),
    )
    score = sofa(map_mmhg, urine, lactate)
    return (map_mmhg, lactate, urine, zero, zero, bacteria, score), state


def transition(
    draws: Draws, state: State, fluid_ml: jax.Array, c: Constants
) -> tuple[jax.Array, State, jax.Array, jax.Array, jax.Array]:
    """One hour with auto-reset; elementwise, so leaves may be scalars or whole batches."""
    fluid = jnp.clip(jnp.where(jnp.isfinite(fluid_ml), fluid_ml, 0.0), 0.0, c.max_fluid_ml)
    y = (state.bacteria, state.pro_inflammatory, state.anti_inflammatory, state.damage)
    b, m, a, d = rk4(y, c)
    loaded = state.volume + fluid / 1000.0
    volume = jnp.clip(loaded - c.redistribution_rate * loaded * c.dt, -1.0, 10.0)
    map_mmhg = mean_arterial_pressure(d, volume, draws.map_z, c)
    lactate = lactate_step(state.lactate, map_mmhg, d, c)
    urine = urine_output(map_mmhg, draws.urine_z, c)
    terminated = d >= 0.9
    reward = reward_of(map_mmhg, lactate, urine, volume, d)
    reward = jnp.where(terminated, reward - 50.0, reward)
    time = state.time + 1
    truncated = time >= EPISODE_STEPS
    features = (map_mmhg, lactate, urine, d, volume, b, sofa(map_mmhg, urine, lactate))
    stepped = State(b, m, a, d, volume, lactate, state.total_fluid_ml + fluid, time)
    features_reset, state_reset = admit_features(draws, c)
    done = terminated | truncated
    state = State(*(jnp.where(done, r, s) for r, s in zip(state_reset, stepped, strict=True)))
    # Select each feature, then stack: selecting the stacked vectors makes XLA recompute both
    # branches of the step inside the stacking, which costs more than the rest of the step.
    obs = observation(
        *(jnp.where(done, r, s) for r, s in zip(features_reset, features, strict=True))
    )
    return obs, state, reward, terminated, truncated


def soa_step(c: Constants) -> BatchStep:
    """Batch step on struct-of-arrays state: only the per-key draw is vmapped."""

    def step(keys: jax.Array, state: State, actions: jax.Array):
        draws = draws_of(jax.vmap(uniforms)(keys))
        return transition(draws, state, actions[:, 0], c)

    return step


def vmap_step(c: Constants) -> BatchStep:
    """Batch step as ``vmap`` of the single-patient step."""

    def step_one(key: jax.Array, state: State, action: jax.Array):
        return transition(draws_of(uniforms(key)), state, action[0], c)

    return jax.vmap(step_one)


def reset(keys: jax.Array, c: Constants) -> tuple[jax.Array, State]:
    """Admit one patient per key (the same patient the environment's ``reset`` admits)."""
    return admit(draws_of(jax.vmap(uniforms)(keys)), c)


VARIANTS: dict[str, Callable[[Constants], BatchStep]] = {"soa": soa_step, "vmap": vmap_step}


# --- the check against sepsisim_jax and the timing --------------------------------------------

ENV_ID = "FluidResuscitation-v0"  # the environment the ceiling computes
CHECK_BATCH = 256
CHECK_STEPS = 2 * EPISODE_STEPS  # two episodes: covers the auto-reset at step 72
CHECK_TOLERANCE = 1e-3  # on |ours - ceiling| / max(1, |ours|)
CHECK_CASES: dict[str, dict[str, float]] = {
    "default": {},
    "no antibiotic": {"antibiotic_efficacy": 0.0},  # patients die: covers termination
}
TARGET_SHARE = 0.5  # sepsisim_jax's env-steps/s of the ceiling's, at the largest batch
DEFAULTS = {"batches": [1024, 16384, 65536], "repeats": 3, "min_run_steps": MIN_RUN_STEPS}
QUICK = {"batches": [64], "repeats": 1, "min_run_steps": 64 * EPISODE_STEPS}
COLUMNS: list[Column] = [
    ("impl", "<14", lambda r: r["impl"]),
    ("batch", ">6", lambda r: str(r["batch"])),
    ("setup s", ">7", lambda r: optional(r["setup_s"], ".1f")),
    ("env-steps/s", ">13", lambda r: f"{r['steps_per_s']:,.0f}"),
    ("us/call", ">9", lambda r: f"{r['us_per_call']:,.1f}"),
    ("of ceiling", ">10", lambda r: optional(r["vs_ceiling"], ".0%")),
]


def ceiling(variant: str, **overrides: float) -> BatchFns:
    """A hand-fused FluidResuscitation batch step (``"soa"`` or ``"vmap"``) and its reset."""
    constants = dataclasses.replace(Constants.for_severity(SEVERITY), **overrides)
    return VARIANTS[variant](constants), lambda keys: reset(keys, constants)


def check_ceiling(seed: int) -> dict[str, Any]:
    """Run sepsisim_jax and both variants from the same keys and actions; compare.

    Two cases: the benchmarked defaults, and no antibiotic so that patients die and the
    termination, death penalty and reset after death are compared too.
    """
    cases: dict[str, dict[str, Any]] = {}
    for name, overrides in CHECK_CASES.items():
        expected = recorded_rollout(
            ours(ENV_ID, **overrides), ENV_ID, CHECK_BATCH, CHECK_STEPS, seed
        )
        cases[name] = {}
        for variant in VARIANTS:
            got = recorded_rollout(
                ceiling(variant, **overrides), ENV_ID, CHECK_BATCH, CHECK_STEPS, seed
            )
            result = compare(expected, got)
            worst = max(result["max_rel_diff_obs"], result["max_rel_diff_reward"])
            passed = worst < CHECK_TOLERANCE and result["flag_mismatches"] == 0
            cases[name][variant] = result | {"passed": bool(passed)}
    return {
        "env_id": ENV_ID,
        "batch": CHECK_BATCH,
        "steps": CHECK_STEPS,
        "tolerance": CHECK_TOLERANCE,
        "cases": cases,
        "passed": all(v["passed"] for case in cases.values() for v in case.values()),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int, help="batch sizes")
    parser.add_argument("--repeats", type=int, help="timed rounds; the best run counts")
    parser.add_argument("--min-run-steps", type=int, help="env-steps per timed run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--quick", action="store_true", help="batch 64, one round: a smoke test")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.repeats, args.min_run_steps, *args.batches) < 1:
        parser.error("--batches, --repeats and --min-run-steps must be positive")
    args.out = output_path(args.out, "fused_ceiling", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Check the ceiling, time it beside sepsisim_jax, report and write the JSON."""
    args = parse_args(argv)
    check = check_ceiling(args.seed)
    print_check(check)
    jobs: list[tuple[str, Callable[[], Timed]]] = []
    for n in args.batches:
        impls = {"sepsisim_jax": ours(ENV_ID)} | {f"ceiling-{v}": ceiling(v) for v in VARIANTS}
        for impl, fns in impls.items():
            prepare = functools.partial(
                jitted_rollout, impl, ENV_ID, fns, n, args.seed, args.min_run_steps
            )
            jobs.append((f"{impl} x{n}", prepare))
    rows = [t.row() for t in time_interleaved(jobs, args.repeats)]
    best = {}
    for r in rows:
        r["us_per_call"] = 1e6 * r["batch"] / r["steps_per_s"]
        if r["impl"].startswith("ceiling"):
            best[r["batch"]] = max(best.get(r["batch"], 0.0), r["steps_per_s"])
    for r in rows:
        valid = r["impl"] == "sepsisim_jax" and check["passed"]
        r["vs_ceiling"] = r["steps_per_s"] / best[r["batch"]] if valid else None
    largest = max(args.batches)
    ratios = [r["vs_ceiling"] for r in rows if r["batch"] == largest and r["vs_ceiling"]]
    share = {ENV_ID: ratios[0]} if ratios else {}
    text = f"sepsisim_jax of ceiling ({ENV_ID}, batch {largest:,})"
    targets = [Target("vs_ceiling", text, share, TARGET_SHARE, ".0%")]
    settings = {"env_id": ENV_ID, "severity": SEVERITY, "episode_steps": EPISODE_STEPS}
    settings |= {k: getattr(args, k) for k in ("batches", "repeats", "min_run_steps", "seed")}
    return report(args.out, settings, rows, COLUMNS, targets, ceiling_check=check)


if __name__ == "__main__":
    main()
