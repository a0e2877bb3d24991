"""Treatment planning and parameter fitting by gradients through the simulator.

With its noise fixed by the key, a patient's course is a deterministic function of the actions
and of its physiological parameters, differentiable through the diffrax solve
(``SepsisEnv.with_transition_gradients``). Two uses:

- :func:`optimize_schedule`: an open-loop treatment schedule by gradient ascent (Adam) on the
  return of one patient or a batch, compared with closed-loop policies on the same patients.
- :func:`fit_patient`: physiological parameters recovered from an observed trajectory by
  gradient descent on the weighted squared error of the observations
  (:func:`trajectory_error`).

Gradients need what the reference's rewards lack in places: its thresholds (the MAP band,
lactate below 2 mmol/L, urine output, the stabilisation bonus, death) are flat almost
everywhere. ``SepsisEnv.with_smoothed_rewards`` replaces them with logistic steps
(:class:`RewardSmoothing`), for the planner's objective only; returns are always reported
with the env's own rewards, the reference's for a default env.

Key scheme: that of :mod:`sepsisim_jax.rollout`. Patient ``p`` of ``key`` is admitted with
its admission key, and hour ``t`` steps with the step key of ``fold_in(episode_key, t)``; a
schedule's return on patient ``p`` is therefore the return that
``rollout_episodes(env, params, policy, key, n, n_steps=horizon)`` gives a policy that plays
the schedule (same admission, same noise). A return sums the rewards until the episode ends
(death or the step limit) or the horizon does: over a horizon shorter than the episode it is
a partial return.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from tqdm import tqdm

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.clinical import DEATH_DAMAGE, DEFAULT_SMOOTHING, RewardSmoothing, step_up
from sepsisim_jax.envs.sepsis_management import SepsisManagement
from sepsisim_jax.physiology.virtual_patients import per_patient_fields, replace_fields
from sepsisim_jax.policies import Policy
from sepsisim_jax.rollout import _hour_keys, patient_keys, rollout_episodes, trajectories
from sepsisim_jax.sharding import padded_width

BOUND_MARGIN = 1e-3  # a start at a bound begins this fraction of the range inside it
WARMUP_FRACTION = 0.1  # the learning rate rises linearly over this fraction of the steps
FINAL_LR_FRACTION = 0.01  # then decays (cosine) to this fraction of its peak

__all__ = [
    "DEFAULT_SMOOTHING",
    "PatientFit",
    "Plan",
    "RewardSmoothing",
    "fit_patient",
    "optimize_schedule",
    "schedule_returns",
    "simulate_observations",
    "trajectory_error",
]


# --- schedules ------------------------------------------------------------------------------


def _has_antibiotic(env: SepsisEnv) -> bool:
    """Whether ``env``'s last action component is SepsisManagement's antibiotic switch."""
    return isinstance(env, SepsisManagement)


def _continuous_bounds(env: SepsisEnv) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the action components the gradient moves (all but the antibiotic)."""
    k = env.num_actions - int(_has_antibiotic(env))
    return env.action_low[:k], env.action_high[:k]


def _actions(env: SepsisEnv, logits: jax.Array, antibiotic_hour: jax.Array) -> jax.Array:
    """One patient's ``(horizon, num_actions)`` actions: ``low + (high - low) sigmoid(logits)``
    for the continuous components, then the antibiotic (1 from ``antibiotic_hour`` on)."""
    low, high = (jnp.asarray(b, logits.dtype)[None] for b in _continuous_bounds(env))
    actions = low + (high - low) * jax.nn.sigmoid(logits)
    if not _has_antibiotic(env):
        return actions
    given = (jnp.arange(logits.shape[0]) >= antibiotic_hour).astype(logits.dtype)
    return jnp.concatenate([actions, given[:, None]], axis=1)


def _logits(env: SepsisEnv, actions: jax.Array) -> jax.Array:
    """The logits whose :func:`_actions` are ``actions`` (continuous components), each kept
    :data:`BOUND_MARGIN` of its range inside the bounds."""
    low, high = _continuous_bounds(env)
    share = (np.asarray(actions, np.float64)[..., : low.shape[0]] - low) / (high - low)
    share = np.clip(share, BOUND_MARGIN, 1.0 - BOUND_MARGIN)
    return jnp.asarray(np.log(share) - np.log1p(-share), env.dtype)


def _returns(
    env: SepsisEnv,
    params: Any,
    admission_keys: jax.Array,
    episode_keys: jax.Array,
    actions: jax.Array,
) -> jax.Array:
    """Each patient's return under ``actions`` ``(n, horizon, num_actions)``: the rewards until
    its episode ends or the horizon does (the step keys of :func:`_hour_keys`).

    With smoothed rewards, death is soft too: hour ``t``'s reward counts with the weight
    ``prod_{s < t} (1 - step_up(damage_s, DEATH_DAMAGE, w))`` (the chance of being alive if
    each hour's death penalty were a probability of dying), so the death penalty sums to 50
    times the chance of death and the return is smooth in when death comes.
    """
    n, horizon = actions.shape[:2]
    _, state = jax.vmap(env.reset, in_axes=(0, None))(admission_keys, params)
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    smoothing = env.reward_smoothing

    def hour(carry, inputs):
        state, alive, total = carry
        t, action = inputs
        _, key_step = _hour_keys(episode_keys, t)
        _, state, reward, terminated, _ = step(key_step, state, action, params)
        truncated = env.is_truncated(state, params)
        if smoothing is None:
            total = total + jnp.where(alive, reward, 0.0)
            return (state, alive & ~(terminated | truncated), total), None
        dying = step_up(state.patient.damage, DEATH_DAMAGE, smoothing.damage)
        total = total + alive * reward
        return (state, jnp.where(truncated, 0.0, alive * (1.0 - dying)), total), None

    alive = jnp.ones((n,), bool if smoothing is None else env.dtype)
    carry = (state, alive, jnp.zeros((n,), env.dtype))
    inputs = (jnp.arange(horizon), jnp.swapaxes(actions, 0, 1))
    (_, _, total), _ = jax.lax.scan(hour, carry, inputs)
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
    admission_keys, episode_keys = patient_keys(key, jnp.arange(width, dtype=jnp.int32))
    padded = jnp.concatenate([schedule, jnp.zeros((width - n, *schedule.shape[1:]))], axis=0)
    return _returns(env, params, admission_keys, episode_keys, padded.astype(env.dtype))[:n]


# --- planning -------------------------------------------------------------------------------


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
    antibiotic_hour: jax.Array  # (n,) int32 first hour given (horizon: never); -1 if no such action
    returns: jax.Array  # (steps + 1, n) return of each iterate, row 0 the initial schedule
    objective: jax.Array  # (steps, n) objective of each iterate before its update
    initial_return: jax.Array  # (n,) the initial schedule's, with its best antibiotic hour
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
    antibiotic_hours: Sequence[int] | None = None,
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
    The antibiotic is a switch in the dynamics (given once its action exceeds 0.5), which no
    gradient passes: its start hour is enumerated instead. Each hour of ``antibiotic_hours``
    (default ``(0,)``, the first hour; ``horizon`` means never) gets its own ascent, and each
    patient keeps the best. Every iterate's return is evaluated with ``env``'s own reward,
    and the schedule returned is each patient's best iterate.

    Args:
        init: the starting schedule: ``None`` (mid-range: 500 mL/h, dose unchanged), actions
            ``(horizon, num_actions)`` or ``(n_patients, horizon, num_actions)``, or a policy
            whose actions on these patients are the start (e.g. the heuristic); the start's
            antibiotic column is not used (see ``antibiotic_hours``).
        compare: policies whose returns on the same patients over the same horizon are
            reported in ``Plan.comparison`` (e.g. ``{"heuristic": heuristic_policy(env)}``).

    One compilation runs all ``steps`` in a ``lax.scan`` (no progress bar); the batch of
    patients and antibiotic hours is one vmapped computation.
    """
    horizon = _check_horizon(params, horizon)
    _check_positive_int("steps", steps)
    _check_positive_int("n_patients", n_patients)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if smoothing is not None and not isinstance(smoothing, RewardSmoothing):
        raise TypeError(f"smoothing must be a RewardSmoothing or None, got {smoothing!r}")
    hours = _check_antibiotic_hours(env, antibiotic_hours, horizon)
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
    """The ascent of :func:`optimize_schedule` for every (patient, antibiotic hour) pair: the
    plan (without its returns) and the initial schedule with the best antibiotic hour."""
    n, c = logits.shape[0], len(hours)
    admission_keys, episode_keys = patient_keys(key, jnp.arange(n, dtype=jnp.int32))
    admission_keys, episode_keys = (
        jnp.repeat(k, c, axis=0) for k in (admission_keys, episode_keys)
    )
    hour_of = jnp.tile(jnp.asarray(hours, jnp.int32), n)
    logits = jnp.repeat(logits, c, axis=0)
    smooth_env = env.with_transition_gradients().with_smoothed_rewards(smoothing)
    to_actions = jax.vmap(partial(_actions, env))

    def returns_of(env_: SepsisEnv, z: jax.Array) -> jax.Array:
        return _returns(env_, params, admission_keys, episode_keys, to_actions(z, hour_of))

    def loss(z: jax.Array) -> tuple[jax.Array, jax.Array]:
        objective = returns_of(smooth_env, z)
        return -jnp.sum(objective), objective

    optimizer = _adam_scheduled(learning_rate, steps)

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
        """Each patient's schedule of the antibiotic hour ``choice`` and its index."""
        chosen = jnp.arange(n) * c + choice
        return to_actions(z[chosen], hour_of[chosen]), chosen

    initial, _ = pick(jnp.argmax(exact[0].reshape(n, c), axis=1), logits)
    schedule, chosen = pick(jnp.argmax(best.reshape(n, c), axis=1), best_z)
    plan = Plan(
        schedule=schedule,
        antibiotic_hour=hour_of[chosen] if _has_antibiotic(env) else jnp.full((n,), -1, jnp.int32),
        returns=exact[:, chosen],
        objective=objective[:, chosen],
        initial_return=jnp.zeros((n,), env.dtype),  # set from schedule_returns
        final_return=jnp.zeros((n,), env.dtype),
    )
    return plan, initial


def _check_positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_horizon(params: Any, horizon: int | None) -> int:
    """The horizon in hours: at most the episode length ``params.max_steps_in_episode``."""
    limit = int(params.max_steps_in_episode)
    if horizon is None:
        return limit
    _check_positive_int("horizon", horizon)
    if horizon > limit:
        raise ValueError(
            f"horizon={horizon} exceeds the episode length params.max_steps_in_episode={limit}"
        )
    return int(horizon)


def _check_antibiotic_hours(
    env: SepsisEnv, antibiotic_hours: Sequence[int] | None, horizon: int
) -> tuple[int, ...]:
    """The antibiotic start hours to enumerate (``(-1,)``, unused, for an env without one)."""
    if not _has_antibiotic(env):
        if antibiotic_hours is not None:
            raise ValueError(
                f"{env.env_id} has no antibiotic action; antibiotic_hours must be None"
            )
        return (-1,)
    hours = (0,) if antibiotic_hours is None else tuple(antibiotic_hours)
    valid = all(isinstance(h, int | np.integer) and 0 <= h <= horizon for h in hours)
    if not hours or not valid or len(set(hours)) != len(hours):
        raise ValueError(
            f"antibiotic_hours must be distinct ints in [0, horizon={horizon}] "
            f"(horizon: never), got {antibiotic_hours!r}"
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


# --- fitting --------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("env", "patient"))
def simulate_observations(
    env: SepsisEnv, params: Any, key: jax.Array, actions: jax.Array, patient: int = 0
) -> jax.Array:
    """Observations ``(T + 1, obs_dim)`` of patient ``patient`` of ``key`` under ``actions``
    ``(T, num_actions)``: at admission, then after each hour (no reset at death).

    Differentiable in ``params`` with ``env.with_transition_gradients()``.
    """
    return _simulate(env, params, key, actions, patient)


def _simulate(
    env: SepsisEnv, params: Any, key: jax.Array, actions: jax.Array, patient: int
) -> jax.Array:
    """:func:`simulate_observations`, unjitted (differentiated inside the fit's own jit)."""
    admission_keys, episode_keys = patient_keys(key, jnp.asarray([patient], jnp.int32))
    obs, state = env.reset(admission_keys[0], params)

    def hour(state, inputs):
        t, action = inputs
        _, key_step = _hour_keys(episode_keys, t)
        obs, state, *_ = env.step_env(key_step[0], state, action, params)
        return state, obs

    inputs = (jnp.arange(actions.shape[0]), jnp.asarray(actions, env.dtype))
    _, observed = jax.lax.scan(hour, state, inputs)
    return jnp.concatenate([obs[None], observed], axis=0)


def trajectory_error(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    actions: jax.Array,
    observations: jax.Array,
    values: Mapping[str, float],
    *,
    scale: jax.Array | None = None,
    patient: int = 0,
) -> tuple[jax.Array, jax.Array]:
    """The error :func:`fit_patient` descends, and its gradient, at the parameter ``values``
    (per-patient parameters by name; the others are ``params``'s).

    The error is the mean over hours and features of ``((model - observed) / scale)^2``, the
    model's observations those of :func:`simulate_observations` (gradients through the
    dynamics and the ODE solve). Returns the error and its gradient in the values, in the
    order of ``values``. Arguments as :func:`fit_patient`'s; one compilation per env, patient
    and parameter names, shared with the fit.
    """
    names = _check_names(env, params, values)
    actions, observations, scale = _check_trajectory(env, params, actions, observations, scale)
    point = jnp.asarray([values[n] for n in names], env.dtype)
    return _error_and_gradient(
        env, params, key, actions, observations, scale, point, names, patient
    )


@partial(jax.jit, static_argnames=("env", "names", "patient"))
def _error_and_gradient(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    actions: jax.Array,
    observations: jax.Array,
    scale: jax.Array,
    values: jax.Array,
    names: tuple[str, ...],
    patient: int,
) -> tuple[jax.Array, jax.Array]:
    grad_env = env.with_transition_gradients()

    def error(values: jax.Array) -> jax.Array:
        free = {name: values[i] for i, name in enumerate(names)}
        model_params = params.replace(patient=replace_fields(params.patient, free))
        model = _simulate(grad_env, model_params, key, actions, patient)
        return jnp.mean(jnp.square((model - observations) / scale[None]))

    return jax.value_and_grad(error)(values)


@struct.dataclass
class PatientFit:
    """Result of :func:`fit_patient`; arrays follow the order of ``names``."""

    values: jax.Array  # recovered parameter values
    start: jax.Array  # where the descent started
    truth: jax.Array  # the true values where given, else NaN
    loss: jax.Array  # (steps + 1,) trajectory error of each iterate, the last the recovered
    names: tuple[str, ...] = struct.field(pytree_node=False)

    @property
    def relative_error(self) -> jax.Array:
        """``|values - truth| / |truth|`` (NaN where the truth is unknown)."""
        return jnp.abs(self.values - self.truth) / jnp.abs(self.truth)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per parameter: name, truth, start, recovered value, relative error."""
        arrays = (self.truth, self.start, self.values, self.relative_error)
        truth, start, values, error = (np.asarray(a, np.float64) for a in arrays)
        return [
            {
                "parameter": name,
                "true": float(truth[i]),
                "start": float(start[i]),
                "recovered": float(values[i]),
                "relative_error": float(error[i]),
            }
            for i, name in enumerate(self.names)
        ]


def fit_patient(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    actions: jax.Array,
    observations: jax.Array,
    names: Sequence[str],
    *,
    start: Mapping[str, float] | None = None,
    truth: Mapping[str, float] | None = None,
    steps: int = 300,
    learning_rate: float = 0.05,
    scale: jax.Array | None = None,
    patient: int = 0,
    progress: bool = True,
) -> PatientFit:
    """Recover the physiological parameters ``names`` of a patient from its trajectory.

    The model is ``params`` with the named per-patient parameters (see
    :func:`~sepsisim_jax.physiology.virtual_patients.per_patient_fields`) free, simulated under
    the known ``actions`` ``(T, num_actions)`` with the noise of patient ``patient`` of ``key``
    (:func:`simulate_observations`); ``observations`` ``(T + 1, obs_dim)`` are what was seen.
    To fit a trajectory whose noise is unknown, switch the model's noise off in ``params``
    (``map_noise_sd``, ``urine_noise_sd``, ``admission_jitter`` = 0) and let ``scale`` weigh
    the residuals. Adam (10% warm-up, cosine decay to 1%) descends :func:`trajectory_error`,
    the mean of ``((model - observed) / scale)^2`` over hours and features, ``scale`` by
    default the width of each feature's observation bounds (the measurement noise sd gives the
    maximum-likelihood fit under Gaussian noise; ``inf`` leaves a feature out). Each parameter is
    ``low + (high - low) sigmoid(u)`` of its declared range (in log space where ``low > 0``),
    so every iterate stays in range. ``start`` defaults to the values in ``params``.

    The descent runs on the host, one jitted error-and-gradient and one jitted Adam update per
    step, with a progress bar.

    Raises:
        ValueError: an unknown or repeated name (listing the valid ones), a start or truth
            outside its parameter's range or for another name, an env with virtual patients
            (fit the drawn patient on an env without them), or mis-shaped arrays.
    """
    names = _check_names(env, params, names)
    _check_positive_int("steps", steps)
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    actions, observations, scale = _check_trajectory(env, params, actions, observations, scale)
    fields = {f.name: f for f in per_patient_fields(params.patient)}
    bounds = np.array([[fields[n].spec.low, fields[n].spec.high] for n in names], np.float64)
    initial = [float(fields[n].read(params.patient)) for n in names]
    start_values = _named_values("start", start, names, bounds, initial)
    truth_values = _named_values("truth", truth, names, bounds, [np.nan] * len(names))

    space = tuple(jnp.asarray(a, env.dtype) for a in _log_space(bounds))
    latent = jnp.asarray(_to_latent(np.asarray(start_values), bounds), env.dtype)
    optimizer = _adam(float(learning_rate), steps)
    state = optimizer.init(latent)
    values = _to_value(latent, *space)
    trace = []
    for _ in tqdm(range(steps), desc="fit_patient", disable=not progress, file=sys.stderr):
        error, grad = _error_and_gradient(
            env, params, key, actions, observations, scale, values, names, patient
        )
        trace.append(error)
        latent, state, values = _descend(optimizer, latent, state, grad, space)
    error, _ = _error_and_gradient(
        env, params, key, actions, observations, scale, values, names, patient
    )
    return PatientFit(
        values=values,
        start=jnp.asarray(start_values, env.dtype),
        truth=jnp.asarray(truth_values, env.dtype),
        loss=jnp.stack([*trace, error]),
        names=names,
    )


def _check_names(env: SepsisEnv, params: Any, names: Sequence[str]) -> tuple[str, ...]:
    """``names`` as a tuple, if they are distinct per-patient parameters of ``params``."""
    if env.patient_spread:
        raise ValueError(
            "fitting needs an env without virtual patients (patient_spread=0): the model's "
            "patient is params.patient with the named parameters free"
        )
    valid = sorted(f.name for f in per_patient_fields(params.patient))
    names = tuple(names)
    unknown = [n for n in names if n not in valid]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"names must be distinct per-patient parameters, got {list(names)} "
            f"(unknown: {unknown}); valid names: {valid}"
        )
    return names


def _check_trajectory(
    env: SepsisEnv,
    params: Any,
    actions: jax.Array,
    observations: jax.Array,
    scale: jax.Array | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Actions, observations and scale as arrays, checked against each other and ``env``."""
    actions = jnp.asarray(actions, env.dtype)
    observations = jnp.asarray(observations, jnp.float32)
    n_obs = len(env.observation_names)
    if actions.ndim != 2 or actions.shape[1] != env.num_actions:
        raise ValueError(f"actions must have shape (T, {env.num_actions}), got {actions.shape}")
    if observations.shape != (actions.shape[0] + 1, n_obs):
        raise ValueError(
            f"observations must have shape (T + 1, {n_obs}) = {(actions.shape[0] + 1, n_obs)}, "
            f"got {observations.shape}"
        )
    if scale is None:
        space = env.observation_space(params)
        scale = space.high - space.low
    scale = jnp.asarray(scale, jnp.float32)
    if scale.shape != (n_obs,) or not bool(jnp.all(scale > 0)):
        raise ValueError(f"scale must hold {n_obs} positive values, got {scale!r}")
    return actions, observations, scale


def _named_values(
    what: str,
    given: Mapping[str, float] | None,
    names: tuple[str, ...],
    bounds: np.ndarray,
    default: list[float],
) -> list[float]:
    """``given`` as a list in the order of ``names`` (``default`` where absent), in range."""
    given = dict(given or {})
    extra = sorted(set(given) - set(names))
    if extra:
        raise ValueError(f"{what} names parameters {extra} that are not fitted: {list(names)}")
    values = [float(given.get(n, d)) for n, d in zip(names, default, strict=True)]
    for name, value, (low, high) in zip(names, values, bounds, strict=True):
        if not np.isnan(value) and not low <= value <= high:
            raise ValueError(f"{what} {name}={value:g} is outside its range [{low:g}, {high:g}]")
    return values


def _log_space(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per parameter: whether it lives in log space (``low > 0``) and its ends there."""
    log = bounds[:, 0] > 0
    ends = np.where(log[:, None], np.log(np.where(log[:, None], bounds, 1.0)), bounds)
    return log, ends[:, 0], ends[:, 1]


def _to_value(latent: jax.Array, log: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Parameter values of the unconstrained ``latent`` (sigmoid onto each range)."""
    inner = low + (high - low) * jax.nn.sigmoid(latent)
    return jnp.where(log, jnp.exp(inner), inner)


def _to_latent(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_to_value`, kept :data:`BOUND_MARGIN` inside each range."""
    log, low, high = _log_space(bounds)
    inner = np.where(log, np.log(np.maximum(values, 1e-300)), values)
    share = np.clip((inner - low) / (high - low), BOUND_MARGIN, 1.0 - BOUND_MARGIN)
    return np.log(share) - np.log1p(-share)


@functools.cache
def _adam(learning_rate: float, steps: int) -> optax.GradientTransformation:
    """:func:`_adam_scheduled`, one per setting, so that the fit's jitted update is shared."""
    return _adam_scheduled(learning_rate, steps)


def _adam_scheduled(learning_rate: float | jax.Array, steps: int) -> optax.GradientTransformation:
    """Adam whose step rises linearly over the first :data:`WARMUP_FRACTION` of the ``steps``
    (Adam's first steps are full-size in every coordinate, however small its gradient), then
    decays (cosine) to :data:`FINAL_LR_FRACTION` of ``learning_rate`` (which may be traced)."""
    warmup = max(1, int(WARMUP_FRACTION * steps))
    shape = optax.warmup_cosine_decay_schedule(
        1.0 / warmup, 1.0, warmup, max(steps, warmup + 1), FINAL_LR_FRACTION
    )
    return optax.chain(
        optax.scale_by_adam(), optax.scale_by_schedule(shape), optax.scale(-learning_rate)
    )


@partial(jax.jit, static_argnames=("optimizer",))
def _descend(
    optimizer: optax.GradientTransformation,
    latent: jax.Array,
    state: Any,
    grad: jax.Array,
    space: tuple[jax.Array, jax.Array, jax.Array],
) -> tuple[jax.Array, Any, jax.Array]:
    """One Adam step on the latent parameters from the gradient in the values."""
    _, pullback = jax.vjp(lambda u: _to_value(u, *space), latent)
    updates, state = optimizer.update(pullback(grad)[0], state, latent)
    latent = optax.apply_updates(latent, updates)
    return latent, state, _to_value(latent, *space)
