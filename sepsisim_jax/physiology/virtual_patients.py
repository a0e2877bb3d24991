"""Virtual patients: each admission draws its own physiological parameters.

Every parameter declared ``per_patient`` (see :mod:`~sepsisim_jax.physiology.parameters`)
is drawn from a log-normal distribution around its value in the env params, truncated to its
declared range:

    log theta = log theta_0 + spread z,   z ~ N(0, 1) truncated to [log(low / theta_0),
                                                                  log(high / theta_0)] / spread

by inverting the normal CDF on a uniform draw, so one uniform number per parameter makes one
patient. ``spread`` is the one knob (the standard deviation of ``log theta``); spread 0 means
no draw at all: the env params are the patient, bit for bit. Parameters whose value is 0 stay
0 (a log-normal cannot move them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from sepsisim_jax.physiology.parameters import ParamSpec


@dataclasses.dataclass(frozen=True)
class PatientField:
    """One per-patient parameter: flat name, its spec and how to read it from a params struct."""

    name: str
    spec: ParamSpec
    read: Callable[[Any], Any]


def per_patient_fields(params: Any) -> tuple[PatientField, ...]:
    """The per-patient parameters of a (nested) params struct, in declaration order."""
    found: list[PatientField] = []

    def walk(struct: Any, read: Callable[[Any], Any]) -> None:
        for field in dataclasses.fields(struct):
            value = getattr(struct, field.name)
            getter = _getter(read, field.name)
            if dataclasses.is_dataclass(value):
                walk(value, getter)
            elif "spec" in field.metadata and field.metadata["spec"].per_patient:
                found.append(PatientField(field.name, field.metadata["spec"], getter))

    walk(params, lambda p: p)
    return tuple(found)


def _getter(outer: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    return lambda p: getattr(outer(p), name)


def sample_patient(params: Any, spread: float, u: jax.Array) -> Any:
    """``params`` with every per-patient parameter drawn, one uniform ``u[i]`` in (0, 1) each.

    Raises ``ValueError`` for a negative spread or a ``u`` of the wrong length.
    """
    fields = per_patient_fields(params)
    if spread < 0:
        raise ValueError(f"patient spread must be >= 0, got {spread}")
    if u.shape != (len(fields),):
        raise ValueError(f"expected {len(fields)} uniforms, got shape {u.shape}")
    if spread == 0:
        return params
    truncation = _truncation(_values(params, fields, u.dtype), fields, spread)
    values = _drawn_values(truncation, fields, spread, u)
    return replace_fields(params, {f.name: value for f, value in zip(fields, values, strict=True)})


def sample_patient_where(
    admit: jax.Array,
    key: jax.Array,
    params: Any,
    current: Any,
    spread: float,
    uniforms: Callable[[jax.Array], jax.Array],
) -> Any:
    """``current`` with its per-patient parameters redrawn where ``admit``: those of
    ``sample_patient(params, spread, uniforms(key))``; elsewhere they stay ``current``'s.

    The same numbers as drawing every patient and selecting, but under ``vmap`` only the
    admitted patients are drawn (while they are at most 1/32 of a batch of at least
    1,024, else all are): an environment step admits a new patient where an episode ended,
    a few in a hundred, and the uniforms and inverse normal CDFs of the dozens of parameters
    cost several times the rest of the step.
    """
    fields = per_patient_fields(params)
    if spread == 0:
        return current
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
    truncation = _truncation(_values(params, fields, dtype), fields, spread)

    def draw(keys: jax.Array, truncation: Truncation) -> jax.Array:
        # Parameters on the leading axis, patients on the last: XLA's inverse normal CDF
        # runs about twice as fast along a long last axis as along one of 46.
        return _drawn_values(truncation, fields, spread, jax.vmap(uniforms)(keys).T)

    old = tuple(jnp.asarray(f.read(current), dtype) for f in fields)
    new = _where_admitted(draw, admit, key, truncation, old)
    return replace_fields(current, {f.name: value for f, value in zip(fields, new, strict=True)})


def _values(params: Any, fields: tuple[PatientField, ...], dtype: jnp.dtype) -> jax.Array:
    """The per-patient parameters of ``params`` as one vector."""
    return jnp.stack([jnp.asarray(f.read(params), dtype) for f in fields])


# Per parameter: its centre, the centre made safe for a log, the normal CDF at the lower end
# of its range and the CDF's width over the range.
Truncation = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


def _truncation(centre: jax.Array, fields: tuple[PatientField, ...], spread: float) -> Truncation:
    """What the draws of every patient share: the truncation of each parameter's normal."""
    dtype = centre.dtype
    low = np.array([f.spec.low for f in fields], dtype)
    high = np.array([f.spec.high for f in fields], dtype)
    safe = jnp.where(centre > 0, centre, 1.0)
    with np.errstate(divide="ignore"):
        log_low, log_high = np.log(low), np.log(high)  # -inf where low = 0
    cdf_low = ndtr((log_low - jnp.log(safe)) / spread)
    cdf_high = ndtr((log_high - jnp.log(safe)) / spread)
    return centre, safe, cdf_low, cdf_high - cdf_low


def _drawn_values(
    truncation: Truncation, fields: tuple[PatientField, ...], spread: float, u: jax.Array
) -> jax.Array:
    """Truncated log-normal draws around the centre, one uniform ``u[i]`` each (``u`` may
    hold patients on further axes, parameters on the first).

    The uniforms and the values pass optimization barriers, so XLA compiles this arithmetic
    alone wherever it is used: a patient drawn at reset, at an auto-reset of a whole batch or
    of the few admitted (:func:`sample_patient_where`) gets the same values to the bit.
    """
    column = (-1,) + (1,) * (u.ndim - 1)  # per parameter, broadcast over the patients
    centre, safe, cdf_low, width = (jnp.reshape(x, column) for x in truncation)
    u = jax.lax.optimization_barrier(u)
    low = np.array([f.spec.low for f in fields], u.dtype).reshape(column)
    high = np.array([f.spec.high for f in fields], u.dtype).reshape(column)
    z = ndtri(cdf_low + u * width)
    value = jnp.where(centre > 0, jnp.clip(safe * jnp.exp(spread * z), low, high), centre)
    return jax.lax.optimization_barrier(value)


# Sparse drawing under vmap: at most 1/SPARSE_SHARE of a batch, from SPARSE_MIN_BATCH up.
SPARSE_SHARE = 32
SPARSE_MIN_BATCH = 1024

Draw = Callable[[jax.Array, Truncation], jax.Array]


def _where_admitted(
    draw: Draw, admit: jax.Array, key: jax.Array, centre: Truncation, old: tuple[jax.Array, ...]
) -> tuple[jax.Array, ...]:
    """``where(admit, draw(key, centre)[i], old[i])`` for each ``i``; one patient, but a
    ``vmap`` over patients draws only the admitted ones (:func:`_batch_where_admitted`)."""

    def plain(admit, key, centre, old):
        return _select_drawn(admit, draw(key[None], centre)[:, 0], old)

    one = jax.custom_batching.custom_vmap(plain)

    @one.def_vmap
    def _rule(axis_size, in_batched, admit, key, centre, old):
        admit_b, key_b, centre_b, _ = in_batched
        centre_b = any(jax.tree.leaves(centre_b))
        if admit_b and key_b and not centre_b:
            old = tuple(jnp.broadcast_to(x, (axis_size,)) for x in old)
            out = _batch_where_admitted(draw, admit, key, centre, old)
        else:
            in_axes = (0 if admit_b else None, 0 if key_b else None)
            in_axes += tuple(jax.tree.map(lambda b: 0 if b else None, in_batched[2:]))
            out = jax.vmap(plain, in_axes=in_axes)(admit, key, centre, old)
        return out, tuple(True for _ in out)

    return one(admit, key, centre, old)


def _select_drawn(admit: jax.Array, drawn: jax.Array, old: tuple[jax.Array, ...]) -> tuple:
    return tuple(jnp.where(admit, d, o) for d, o in zip(drawn, old, strict=True))


def _batch_where_admitted(
    draw: Draw, admit: jax.Array, keys: jax.Array, centre: Truncation, old: tuple[jax.Array, ...]
) -> tuple[jax.Array, ...]:
    """:func:`_where_admitted` over a batch (leading axis of ``admit``, ``keys``, ``old``).

    Up to ``batch // SPARSE_SHARE`` admitted patients are gathered, drawn and scattered into
    ``old``; with more (or a small batch), every patient is drawn and selected. A further
    ``vmap`` (over seeds, say) flattens its axis into the batch, keeping this path.
    """

    @jax.custom_batching.custom_vmap
    def batch(admit, keys, centre, old):
        n = admit.shape[0]
        capacity = n // SPARSE_SHARE

        def dense():
            return _select_drawn(admit, draw(keys, centre), old)

        if n < SPARSE_MIN_BATCH:
            return dense()
        index = jnp.nonzero(admit, size=capacity, fill_value=n)[0]

        def sparse():
            drawn = draw(keys[jnp.minimum(index, n - 1)], centre)
            return tuple(o.at[index].set(d, mode="drop") for o, d in zip(old, drawn, strict=True))

        return jax.lax.cond(jnp.sum(admit) <= capacity, sparse, dense)

    @batch.def_vmap
    def _rule(axis_size, in_batched, admit, keys, centre, old):
        admit_b, keys_b, centre_b, _ = in_batched
        if any(jax.tree.leaves(centre_b)):  # a centre per outer index: draw every patient
            out = jax.vmap(
                lambda a, k, c, o: _select_drawn(a, draw(k, c), o),
                in_axes=(
                    0 if admit_b else None,
                    0 if keys_b else None,
                    jax.tree.map(lambda b: 0 if b else None, centre_b),
                    0,
                ),
            )(
                admit,
                keys,
                centre,
                tuple(jnp.broadcast_to(x, (axis_size, *x.shape[-1:])) for x in old),
            )
            return out, tuple(True for _ in out)
        inner = admit.shape[-1]
        flat = lambda x: jnp.broadcast_to(x, (axis_size, inner)).reshape(-1)  # noqa: E731
        keys = jnp.broadcast_to(keys, (axis_size, inner)).reshape(-1)
        out = batch(flat(admit), keys, centre, tuple(flat(x) for x in old))
        out = tuple(x.reshape(axis_size, inner) for x in out)
        return out, tuple(True for _ in out)

    return batch(admit, keys, centre, old)


def replace_fields(params: Any, values: dict[str, Any]) -> Any:
    """``params`` with the declared parameters named in ``values`` replaced (flat names)."""
    changes = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if dataclasses.is_dataclass(value):
            changes[field.name] = replace_fields(value, values)
        elif field.name in values and "spec" in field.metadata:
            changes[field.name] = values[field.name]
    return params.replace(**changes)
