"""Batched random-action rollouts shared by ``throughput.py`` and ``fused_ceiling.py``.

A *batch step* ``step(keys, state, actions) -> (obs, state, reward, terminated, truncated)``
advances a batch of patients by one hour with auto-reset: ``vmap(env.step)`` of sepsisim_jax
(:func:`ours`) or a hand-fused ceiling. Every rollout draws its inputs the same way
(:func:`step_inputs`), so two batch steps given the same key meet the same keys and actions,
which :func:`compare` uses to check that they compute the same thing.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import Timed

import sepsisim_jax

EPISODE_STEPS = 72  # the reference registers every env with TimeLimit(max_episode_steps=72)
SEVERITY = "medium"
MIN_RUN_STEPS = 65536  # env-steps per timed run of a batched rollout (repeated calls if smaller)
ALONE = "-alone"  # impl suffix: actions (and keys) drawn before the timed loop

StepFn = Callable[
    [jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array]
]
BatchFns = tuple[StepFn, Callable[[jax.Array], Any]]  # a batch step and a batched reset


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


def action_bounds(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper action bounds of a sepsisim_jax environment."""
    env, _ = sepsisim_jax.make(env_id)
    return np.asarray(env.action_low), np.asarray(env.action_high)


def jitted_rollout(
    impl: str, env_id: str, fns: BatchFns, batch: int, seed: int, min_steps: int = MIN_RUN_STEPS
) -> Timed:
    """Admit ``batch`` patients, compile (timed) a 72-step rollout; a run calls it, each call
    ended by ``block_until_ready``, until at least ``min_steps`` env-steps.

    An ``impl`` ending in ``-alone`` times the environment alone: the rollout's per-step
    keys and actions (the same ones the random-action rollout draws) are drawn before,
    outside the timed call, and passed in. ``env_id`` gives the action bounds.
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
    calls = math.ceil(min_steps / (batch * EPISODE_STEPS))

    def run() -> None:
        for _ in range(calls):
            jax.block_until_ready(compiled(*args))

    labels = {"env_id": env_id, "impl": impl, "batch": batch}
    return Timed(labels, calls * batch * EPISODE_STEPS, run, compile_s)


def recorded_rollout(
    fns: BatchFns, env_id: str, batch: int, steps: int, seed: int
) -> list[np.ndarray]:
    """Admission observations, then per-step observations, rewards and done flags of
    ``steps`` random-action steps of ``batch`` patients: the same admissions, keys and
    actions for any batch step given the same ``seed``."""
    step_fn, reset = fns
    bounds = action_bounds(env_id)
    reset_key, run_key = jax.random.split(jax.random.key(seed))
    obs0, state = reset(jax.random.split(reset_key, batch))
    roll = make_rollout(step_fn, batch, *bounds, steps, record=True)
    return [np.asarray(x, np.float64) for x in (obs0, *jax.jit(roll)(state, run_key))]


def compare(expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> dict[str, Any]:
    """Worst relative difference of observations and rewards of two
    :func:`recorded_rollout` results, and the done flags that differ."""
    obs0, obs, reward, terminated, truncated = expected
    obs0_c, obs_c, reward_c, terminated_c, truncated_c = got

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(a))))

    flags = np.sum(terminated != terminated_c) + np.sum(truncated != truncated_c)
    return {
        "max_rel_diff_obs": max(rel(obs0, obs0_c), rel(obs, obs_c)),
        "max_rel_diff_reward": rel(reward, reward_c),
        "flag_mismatches": int(flags),
        "episodes_ended": int(np.sum(np.logical_or(terminated, truncated))),
        "deaths": int(np.sum(terminated)),
    }


def print_check(check: dict[str, Any]) -> None:
    """Print a ceiling check (``fused_ceiling.check_ceiling``): each case and variant."""
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
