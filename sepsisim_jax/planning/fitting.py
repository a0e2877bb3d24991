"""Patient fitting by gradients through the simulator.

With its noise fixed by the key, a patient's course is a deterministic function of its
physiological parameters, differentiable through the diffrax solve
(``SepsisEnv.with_transition_gradients``). :func:`fit_patient` recovers the parameters from
an observed trajectory by gradient descent on the weighted squared error of the observations
(:func:`trajectory_error`); the model's observations come from the cohort engine
(:func:`~sepsisim_jax.cohort.scan.scan_cohort` with the known actions as an
:class:`~sepsisim_jax.cohort.scan.OpenLoop` schedule), the patient's noise that of its index.
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

from sepsisim_jax import _checks
from sepsisim_jax.cohort.scan import OpenLoop, scan_cohort
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.physiology.virtual_patients import per_patient_fields, replace_fields
from sepsisim_jax.planning.optim import BOUND_MARGIN, adam_scheduled


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

    def record(carry, obs, state, action, output):
        return carry, output[0][0]

    schedule = OpenLoop(jnp.asarray(actions, env.dtype)[None])
    first, _, observed = scan_cohort(
        env,
        params,
        schedule,
        key,
        jnp.asarray([patient], jnp.int32),
        None,
        record,
        None,
        auto_reset=False,
    )
    return jnp.concatenate([env.get_obs(jax.tree.map(lambda x: x[0], first))[None], observed])


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
    _checks.positive_int("steps", steps)
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
    """:func:`~sepsisim_jax.planning.optim.adam_scheduled`, one per setting, so that the fit's
    jitted update is shared."""
    return adam_scheduled(learning_rate, steps)


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
