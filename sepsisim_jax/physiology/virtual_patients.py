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
    dtype = u.dtype
    centre = jnp.stack([jnp.asarray(f.read(params), dtype) for f in fields])
    low = np.array([f.spec.low for f in fields], dtype)
    high = np.array([f.spec.high for f in fields], dtype)
    safe = jnp.where(centre > 0, centre, 1.0)
    with np.errstate(divide="ignore"):
        log_low, log_high = np.log(low), np.log(high)  # -inf where low = 0
    cdf_low = ndtr((log_low - jnp.log(safe)) / spread)
    cdf_high = ndtr((log_high - jnp.log(safe)) / spread)
    z = ndtri(cdf_low + u * (cdf_high - cdf_low))
    value = jnp.where(centre > 0, jnp.clip(safe * jnp.exp(spread * z), low, high), centre)
    return replace_fields(params, {f.name: value[i] for i, f in enumerate(fields)})


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
