"""Parameter declarations: every traced parameter carries its default, range, unit and source.

A field made with :func:`param` stores a :class:`ParamSpec` in its dataclass metadata;
:func:`validate_params` walks a (nested) params struct and checks every concrete value
against its range. Validation runs on the host, never inside ``jit``: ``make`` and
:func:`replace_params` call it, and users who build params by hand can call it directly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
from flax import struct


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """Default, closed range, unit and literature source of one parameter.

    ``per_patient`` marks a property of the patient, which virtual patients draw at admission;
    step lengths and measurement noise are not.
    """

    default: float
    low: float
    high: float
    unit: str
    source: str
    per_patient: bool = True


def param(
    default: float, low: float, high: float, unit: str, source: str, per_patient: bool = True
) -> Any:
    """A pytree dataclass field whose metadata holds its :class:`ParamSpec`."""
    spec = ParamSpec(default, low, high, unit, source, per_patient)
    return struct.field(default=default, metadata={"spec": spec})


def param_specs(params: Any) -> dict[str, ParamSpec]:
    """Flat ``{name: spec}`` of a params struct, recursing into nested structs."""
    specs: dict[str, ParamSpec] = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if "spec" in field.metadata:
            specs[field.name] = field.metadata["spec"]
        elif dataclasses.is_dataclass(value):
            specs.update(param_specs(value))
    return specs


def validate_params(params: Any) -> None:
    """Raise ``ValueError`` naming the parameter, its value and its range if one is outside.

    Values may be Python scalars or arrays (all elements are checked, so batched params for
    domain randomisation work); tracers are skipped because their values are unknown.
    """
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if dataclasses.is_dataclass(value):
            validate_params(value)
            continue
        spec = field.metadata.get("spec")
        if spec is None or isinstance(value, jax.core.Tracer):
            continue
        array = np.asarray(value, dtype=np.float64)
        bad = ~np.isfinite(array) | (array < spec.low) | (array > spec.high)
        if np.any(bad):
            shown = array.flat[int(np.argmax(bad.ravel()))]
            raise ValueError(
                f"parameter {field.name}={shown:g} is outside its range "
                f"[{spec.low:g}, {spec.high:g}] {spec.unit} ({spec.source})"
            )


def replace_params(params: Any, **overrides: Any) -> Any:
    """Return ``params`` with fields replaced by flat name (nested structs searched), validated.

    Raises ``TypeError`` for a name no struct declares, listing the valid names.
    """
    remaining = dict(overrides)
    updated = _replace_nested(params, remaining)
    if remaining:
        valid = ", ".join(sorted(_field_names(params)))
        raise TypeError(f"unknown parameter(s) {sorted(remaining)}; valid names: {valid}")
    validate_params(updated)
    return updated


def _replace_nested(params: Any, remaining: dict[str, Any]) -> Any:
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        if field.name in remaining:
            changes[field.name] = remaining.pop(field.name)
        elif dataclasses.is_dataclass(value):
            changes[field.name] = _replace_nested(value, remaining)
    return params.replace(**changes)


def _field_names(params: Any) -> list[str]:
    names: list[str] = []
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        names.extend(_field_names(value) if dataclasses.is_dataclass(value) else [field.name])
    return names
