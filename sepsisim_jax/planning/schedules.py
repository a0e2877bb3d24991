"""Treatment planning by gradients through the simulator: open-loop schedules.

With its noise fixed by the key, a patient's course is a deterministic function of the
actions, differentiable through the diffrax solve (``SepsisEnv.with_transition_gradients``).
:func:`optimize_schedule` finds an open-loop treatment schedule by gradient ascent (Adam) on
the return of one patient or a batch, compared with closed-loop policies on the same patients.

Gradients need what the reference's rewards lack in places: its thresholds (the MAP band,
lactate below 2 mmol/L, urine output, the stabilisation bonus, death) are flat almost
everywhere. ``SepsisEnv.with_smoothed_rewards`` replaces them with logistic steps
(:class:`RewardSmoothing`), for the planner's objective only; returns are always reported
with the env's own rewards, the reference's for a default env.

Schedules run on the cohort engine (:func:`~sepsisim_jax.cohort.scan.scan_cohort` with an
:class:`~sepsisim_jax.cohort.scan.OpenLoop` source) and its key scheme, so a schedule's return
on patient ``p`` is the return that ``rollout_episodes(env, params, policy, key, n,
n_steps=horizon)`` gives a policy that plays the schedule (same admission, same noise). A
return sums the rewards until the episode ends (death or the step limit) or the horizon
does: over a horizon shorter than the episode it is a partial return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from sepsisim_jax import _checks
from sepsisim_jax.cohort.rollout import rollout_episodes, trajectories
from sepsisim_jax.cohort.scan import OpenLoop, scan_cohort
from sepsisim_jax.cohort.sharding import padded_width
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.rewards import DEATH_DAMAGE, DEFAULT_SMOOTHING, RewardSmoothing, step_up
from sepsisim_jax.planning.optim import BOUND_MARGIN, adam_scheduled
from sepsisim_jax.policies import Policy


def switch_index(env: SepsisEnv) -> int | None:
    """Position of ``env``'s switch component (declared ``switch``), ``None`` without one;
    ``ValueError`` for a task with several (the planner enumerates one switch's hour)."""
    switches = [i for i, c in enumerate(env.actions) if c.switch]
    if len(switches) > 1:
        names = [env.actions[i].name for i in switches]
        raise ValueError(f"the planner handles one switch component; {env.env_id} has {names}")
    return switches[0] if switches else None


def _continuous(env: SepsisEnv) -> list[int]:
    """Positions of the components the gradient moves (every one but the switch)."""
    return [i for i, c in enumerate(env.actions) if not c.switch]


def _continuous_bounds(env: SepsisEnv) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the components the gradient moves."""
    keep = _continuous(env)
    return env.action_low[keep], env.action_high[keep]


def _actions(env: SepsisEnv, logits: jax.Array, switch_hour: jax.Array) -> jax.Array:
    """One patient's ``(horizon, num_actions)`` actions: ``low + (high - low) sigmoid(logits)``
    for the continuous components and, for the switch, 1 from ``switch_hour`` on (0 before)."""
    low, high = (jnp.asarray(b, logits.dtype)[None] for b in _continuous_bounds(env))
    moved = low + (high - low) * jax.nn.sigmoid(logits)
    switch = switch_index(env)
    if switch is None:
        return moved
    given = (jnp.arange(logits.shape[0]) >= switch_hour).astype(logits.dtype)
    columns = [moved[:, k] for k in range(moved.shape[1])]
    columns.insert(switch, given)
    return jnp.stack(columns, axis=1)


def _logits(env: SepsisEnv, actions: jax.Array) -> jax.Array:
    """The logits whose :func:`_actions` are ``actions`` (continuous components), each kept
    :data:`~sepsisim_jax.planning.optim.BOUND_MARGIN` of its range inside the bounds."""
    low, high = _continuous_bounds(env)
    share = (np.asarray(actions, np.float64)[..., _continuous(env)] - low) / (high - low)
    share = np.clip(share, BOUND_MARGIN, 1.0 - BOUND_MARGIN)
    return jnp.asarray(np.log(share) - np.log1p(-share), env.dtype)


def _returns(
    env: SepsisEnv, params: Any, patients: jax.Array, key: jax.Array, actions: jax.Array
) -> jax.Array:
    """Each patient's return under ``actions`` ``(n, horizon, num_actions)`` (patients
    ``patients`` of ``key``): the rewards until its episode ends or the horizon does.

    With smoothed rewards, death is soft too: hour ``t``'s reward counts with the weight
    ``prod_{s < t} (1 - step_up(damage_s, DEATH_DAMAGE, w))`` (the chance of being alive if
    each hour's death penalty were a probability of dying), so the death penalty sums to 50
    times the chance of death and the return is smooth in when death comes.
    """
    smoothing = env.reward_smoothing

    def record(carry, obs, state, action, output):
        alive, total = carry
        _, state, reward, terminated, _ = output
        truncated = env.is_truncated(state, params)
        if smoothing is None:
            total = total + jnp.where(alive, reward, 0.0)
            return (alive & ~(terminated | truncated), total), None
        dying = step_up(state.patient.damage, DEATH_DAMAGE, smoothing.damage)
        total = total + alive * reward
        return (jnp.where(truncated, 0.0, alive * (1.0 - dying)), total), None

    n = actions.shape[0]
    alive = jnp.ones((n,), bool if smoothing is None else env.dtype)
    carry = (alive, jnp.zeros((n,), env.dtype))
    _, (_, total), _ = scan_cohort(
        env, params, OpenLoop(actions), key, patients, None, record, carry, auto_reset=False
    )
    return total


@partial(jax.jit, static_argnames=("env",))
def schedule_returns(env: SepsisEnv, params: Any, key: jax.Array, schedule: jax.Array) -> jax.Array:
    """Returns of patients ``0 .. n - 1`` of ``key`` under the open-loop ``schedule``
    ``(n, horizon, num_actions)`` (actions as given to ``env.step``: clipped to the bounds).

    The rewards are ``env``'s: the reference's for a default env, the smoothed surrogate for
    ``env.with_smoothed_rewards()``, where death is soft too (each hour's reward weighted by
    the product of ``1 - step_up(damage, 0.9, w)`` over the hours before). Differentiable in
    ``schedule`` (and ``params``) with ``env.with_transition_gradients()``; without it,
    gradients stop at each step's state.
    """
    n = schedule.shape[0]
    width = padded_width(n)  # the rollouts' padding rule, for the same arithmetic bit for bit
    patients = jnp.arange(width, dtype=jnp.int32)
    padded = jnp.concatenate([schedule, jnp.zeros((width - n, *schedule.shape[1:]))], axis=0)
    return _returns(env, params, patients, key, padded.astype(env.dtype))[:n]


@struct.dataclass
class Plan:
    """Result of :func:`optimize_schedule` for ``n`` patients over ``horizon`` hours.

    ``returns`` and the comparison use the env's own rewards (the reference's for a default
    env); ``objective`` is what the gradient ascended (the smoothed return when smoothing).
    ``initial_return`` and ``final_return`` are :func:`schedule_returns`'s, bit for bit those
    of ``rollout_episodes``; ``returns``, computed in the optimisation's batch, can differ
    from them in the last bits (XLA's vectorised loops round by batch width).
    """

    schedule: jax.Array  # (n, horizon, num_actions), within the action bounds
    switch_hour: jax.Array  # (n,) int32 hour the switch goes on (horizon: never); -1 if no switch
    returns: jax.Array  # (steps + 1, n) return of each iterate, row 0 the initial schedule
    objective: jax.Array  # (steps, n) objective of each iterate before its update
    initial_return: jax.Array  # (n,) the initial schedule's, with its best switch hour
    final_return: jax.Array  # (n,) return of ``schedule`` (the best iterate)
    comparison: dict[str, jax.Array] = struct.field(default_factory=dict)  # name -> (n,)


def optimize_schedule(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    horizon: int | None = None,
    steps: int = 200,
    *,
    n_patients: int = 1,
    learning_rate: float = 0.1,
    init: Policy | jax.Array | None = None,
    switch_hours: Sequence[int] | None = None,
    smoothing: RewardSmoothing | None = DEFAULT_SMOOTHING,
    compare: Mapping[str, Policy] | None = None,
) -> Plan:
    """Plan an open-loop schedule for patients ``0 .. n_patients - 1`` of ``key`` by gradient
    ascent on their returns over ``horizon`` hours (default: the episode).

    What the gradient sees: each continuous component (fluid bolus, vasopressor dose change) is
    ``low + (high - low) sigmoid(z)`` of a free logit ``z`` per hour, so every iterate respects
    the bounds; Adam (``learning_rate`` on ``z``, 10% warm-up, cosine decay to 1%) ascends
    the return of ``env.with_transition_gradients()`` with ``smoothing``
    (:class:`RewardSmoothing`, with a soft death, see :func:`schedule_returns`; ``None``
    ascends the reference's reward, whose thresholds give zero gradient almost everywhere).
    A switch component (declared ``switch``: the antibiotic, given once its action exceeds
    0.5) passes no gradient: the hour it goes on is enumerated instead. Each hour of
    ``switch_hours``
    (default ``(0,)``, the first hour; ``horizon`` means never) gets its own ascent, and each
    patient keeps the best. Every iterate's return is evaluated with ``env``'s own reward,
    and the schedule returned is each patient's best iterate.

    Args:
        init: the starting schedule: ``None`` (mid-range: 500 mL/h, dose unchanged), actions
            ``(horizon, num_actions)`` or ``(n_patients, horizon, num_actions)``, or a policy
            whose actions on these patients are the start (e.g. the heuristic); the start's
            switch column is not used (see ``switch_hours``).
        compare: policies whose returns on the same patients over the same horizon are
            reported in ``Plan.comparison`` (e.g. ``{"heuristic": heuristic_policy(env)}``).

    One compilation runs all ``steps`` in a ``lax.scan`` (no progress bar); the batch of
    patients and switch hours is one vmapped computation.
    """
    horizon = _check_horizon(params, horizon)
    _checks.positive_int("steps", steps)
    _checks.positive_int("n_patients", n_patients)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if smoothing is not None and not isinstance(smoothing, RewardSmoothing):
        raise TypeError(f"smoothing must be a RewardSmoothing or None, got {smoothing!r}")
    hours = _check_switch_hours(env, switch_hours, horizon)
    logits = _initial_logits(env, params, key, init, n_patients, horizon)
    plan, initial = _optimize(
        env, params, key, logits, hours, steps, jnp.asarray(learning_rate, env.dtype), smoothing
    )
    comparison = {
        name: rollout_episodes(env, params, policy, key, n_patients, horizon).returns
        for name, policy in (compare or {}).items()
    }
    return plan.replace(
        initial_return=schedule_returns(env, params, key, initial),
        final_return=schedule_returns(env, params, key, plan.schedule),
        comparison=comparison,
    )


@partial(jax.jit, static_argnames=("env", "hours", "steps", "smoothing"))
def _optimize(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    logits: jax.Array,
    hours: tuple[int, ...],
    steps: int,
    learning_rate: jax.Array,
    smoothing: RewardSmoothing | None,
) -> tuple[Plan, jax.Array]:
    """The ascent of :func:`optimize_schedule` for every (patient, switch hour) pair: the
    plan (without its returns) and the initial schedule with the best switch hour."""
    n, c = logits.shape[0], len(hours)
    patients = jnp.repeat(jnp.arange(n, dtype=jnp.int32), c)  # each once per switch hour
    hour_of = jnp.tile(jnp.asarray(hours, jnp.int32), n)
    logits = jnp.repeat(logits, c, axis=0)
    smooth_env = env.with_transition_gradients().with_smoothed_rewards(smoothing)
    to_actions = jax.vmap(partial(_actions, env))

    def returns_of(env_: SepsisEnv, z: jax.Array) -> jax.Array:
        return _returns(env_, params, patients, key, to_actions(z, hour_of))

    def loss(z: jax.Array) -> tuple[jax.Array, jax.Array]:
        objective = returns_of(smooth_env, z)
        return -jnp.sum(objective), objective

    optimizer = adam_scheduled(learning_rate, steps)

    def iterate(carry, _):
        z, state, best_z, best = carry
        exact = returns_of(env, z)
        better = exact > best
        best_z = jnp.where(better[:, None, None], z, best_z)
        best = jnp.where(better, exact, best)
        grad, objective = jax.grad(loss, has_aux=True)(z)
        updates, state = optimizer.update(grad, state, z)
        return (optax.apply_updates(z, updates), state, best_z, best), (exact, objective)

    best = jnp.full((n * c,), -jnp.inf, env.dtype)
    carry = (logits, optimizer.init(logits), logits, best)
    (z, _, best_z, best), (exact, objective) = jax.lax.scan(iterate, carry, None, length=steps)
    last = returns_of(env, z)
    best_z = jnp.where((last > best)[:, None, None], z, best_z)
    best = jnp.maximum(last, best)
    exact = jnp.concatenate([exact, last[None]], axis=0)

    def pick(choice: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Each patient's schedule of the switch hour ``choice`` and its index."""
        chosen = jnp.arange(n) * c + choice
        return to_actions(z[chosen], hour_of[chosen]), chosen

    initial, _ = pick(jnp.argmax(exact[0].reshape(n, c), axis=1), logits)
    schedule, chosen = pick(jnp.argmax(best.reshape(n, c), axis=1), best_z)
    has_switch = switch_index(env) is not None
    plan = Plan(
        schedule=schedule,
        switch_hour=hour_of[chosen] if has_switch else jnp.full((n,), -1, jnp.int32),
        returns=exact[:, chosen],
        objective=objective[:, chosen],
        initial_return=jnp.zeros((n,), env.dtype),  # set from schedule_returns
        final_return=jnp.zeros((n,), env.dtype),
    )
    return plan, initial


def _check_horizon(params: Any, horizon: int | None) -> int:
    """The horizon in hours: at most the episode length ``params.max_steps_in_episode``."""
    limit = int(params.max_steps_in_episode)
    if horizon is None:
        return limit
    _checks.positive_int("horizon", horizon)
    if horizon > limit:
        raise ValueError(
            f"horizon={horizon} exceeds the episode length params.max_steps_in_episode={limit}"
        )
    return int(horizon)


def _check_switch_hours(
    env: SepsisEnv, switch_hours: Sequence[int] | None, horizon: int
) -> tuple[int, ...]:
    """The switch hours to enumerate (``(-1,)``, unused, for an env without a switch)."""
    if switch_index(env) is None:
        if switch_hours is not None:
            raise ValueError(f"{env.env_id} has no switch component; switch_hours must be None")
        return (-1,)
    hours = (0,) if switch_hours is None else tuple(switch_hours)
    valid = all(isinstance(h, int | np.integer) and 0 <= h <= horizon for h in hours)
    if not hours or not valid or len(set(hours)) != len(hours):
        raise ValueError(
            f"switch_hours must be distinct ints in [0, horizon={horizon}] "
            f"(horizon: never), got {switch_hours!r}"
        )
    return tuple(int(h) for h in hours)


def _initial_logits(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    init: Policy | jax.Array | None,
    n_patients: int,
    horizon: int,
) -> jax.Array:
    """Logits ``(n_patients, horizon, k)`` of the starting schedule (see ``init``)."""
    k = _continuous_bounds(env)[0].shape[0]
    if init is None:
        return jnp.zeros((n_patients, horizon, k), env.dtype)
    if callable(init):
        played = trajectories(env, params, init, key, n_patients, horizon).action
        return _logits(env, jnp.swapaxes(played, 0, 1))
    actions = np.asarray(init)
    shapes = ((horizon, env.num_actions), (n_patients, horizon, env.num_actions))
    if actions.shape not in shapes:
        raise ValueError(f"init must have shape {shapes[0]} or {shapes[1]}, got {actions.shape}")
    return _logits(env, np.broadcast_to(actions, shapes[1]))
