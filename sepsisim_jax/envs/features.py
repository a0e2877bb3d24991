"""The observation and info features of the environments, each declared once.

A :class:`Feature` names a quantity, its unit, its bounds and how it is read from the
:class:`~sepsisim_jax.envs.state.EnvState`. :data:`FEATURES` holds what every patient model
exposes (:class:`~sepsisim_jax.physiology.interface.PatientStateLike`) and the treatment
history; a model's own quantities (:attr:`PatientModel.info_features`) and a virtual patient's
drawn parameters are added per environment (:func:`model_feature`, :func:`parameter_feature`).
A task lists the names of its observation and of its info in the reference's order; its
observation vector, observation space, info dict, the recorded clinical course, the figures
and the heuristic policy's thresholds all come from these declarations.

A bound is a number, or a function of the environment params where it follows from one (the
bacterial carrying capacity ``b_max``, the episode length, the step length ``dt``), so that
params drawn anywhere in their declared ranges keep observations inside the space. At the
default params every bound is the reference's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sepsisim_jax.envs.actions import MAX_DOSE, MAX_FLUID_ML
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology.cardiovascular import MAP_RANGE, URINE_RANGE, VOLUME_RANGE
from sepsisim_jax.physiology.interface import ModelFeature
from sepsisim_jax.physiology.lactate import LACTATE_RANGE
from sepsisim_jax.physiology.sofa import MAX_SOFA
from sepsisim_jax.physiology.virtual_patients import PatientField

Bound = float | Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class Feature:
    """One observed or reported quantity: name, label and unit for people, bounds, reader."""

    name: str
    label: str
    unit: str
    low: Bound
    high: Bound
    read: Callable[[EnvState], jax.Array]

    def bounds(self, params: Any) -> tuple[jax.Array, jax.Array]:
        """``(low, high)`` for ``params`` (bounds that follow from a parameter are computed)."""
        return tuple(  # type: ignore[return-value]
            jnp.asarray(b(params) if callable(b) else b) for b in (self.low, self.high)
        )

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


def _episode_hours(params: Any) -> Any:
    """``steps * dt``, with 1e-5 relative slack for the rounding of the hourly sum of a ``dt``
    that float32 cannot hold exactly (none at the default ``dt = 1``)."""
    dt = jnp.asarray(params.patient.dt)
    hours = params.max_steps_in_episode * dt
    return jnp.where(dt == 1.0, hours, hours * (1.0 + 1e-5))


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("map_mmhg", "MAP", "mmHg", *MAP_RANGE, lambda s: s.patient.map_mmhg),
        Feature("lactate", "lactate", "mmol/L", *LACTATE_RANGE, lambda s: s.patient.lactate),
        Feature("urine_output", "urine output", "mL/kg/h", *URINE_RANGE, lambda s: s.patient.urine),
        Feature("tissue_damage", "tissue damage", "", 0.0, 1.0, lambda s: s.patient.damage),
        Feature(
            "intravascular_volume", "excess volume", "L", *VOLUME_RANGE, lambda s: s.patient.volume
        ),
        Feature(
            "vasopressor_dose",
            "vasopressor dose",
            "mcg/kg/min",
            0.0,
            MAX_DOSE,
            lambda s: s.patient.vaso_dose,
        ),
        Feature(
            "bacteria",
            "bacteria",
            "",
            0.0,
            lambda p: p.patient.bacteria_max,
            lambda s: s.patient.bacteria,
        ),
        Feature("sofa", "SOFA score", "", 0.0, float(MAX_SOFA), lambda s: s.sofa),
        Feature(
            "hours_on_vasopressors",
            "hours on vasopressors",
            "h",
            0.0,
            _episode_hours,  # dt per step with a dose
            lambda s: s.hours_on_vasopressors,
        ),
        Feature(
            "step",
            "steps since admission",
            "",
            0.0,
            lambda p: p.max_steps_in_episode,
            lambda s: s.time,
        ),
        Feature(
            "antibiotic_active", "antibiotic given", "", 0.0, 1.0, lambda s: s.antibiotic_active
        ),
        Feature(
            "total_fluid_ml",
            "total fluid",
            "mL",
            0.0,
            lambda p: p.max_steps_in_episode * MAX_FLUID_ML,
            lambda s: s.total_fluid_ml,
        ),
    )
}


def model_feature(feature: ModelFeature) -> Feature:
    """A patient model's own quantity as a feature: read from ``state.patient``, its bounds
    from ``params.patient``."""

    def bound(b: Any) -> Bound:
        return (lambda p: b(p.patient)) if callable(b) else b

    return Feature(
        feature.name,
        feature.label,
        feature.unit,
        bound(feature.low),
        bound(feature.high),
        lambda s: feature.read(s.patient),
    )


def parameter_feature(field: PatientField) -> Feature:
    """A virtual patient's drawn parameter as a feature (its declared range as bounds)."""
    spec = field.spec
    return Feature(
        field.name,
        field.name,
        spec.unit,
        spec.low,
        spec.high,
        lambda s: field.read(s.physiology),
    )


Table = dict[str, Feature]


def features(names: tuple[str, ...], table: Table = FEATURES) -> tuple[Feature, ...]:
    """The declared features of ``names``, in order; ``KeyError`` naming an unknown one."""
    unknown = [n for n in names if n not in table]
    if unknown:
        raise KeyError(f"undeclared feature(s) {unknown}; declared: {list(table)}")
    return tuple(table[n] for n in names)


def observation_vector(
    names: tuple[str, ...], state: EnvState, table: Table = FEATURES
) -> jax.Array:
    """The float32 observation vector of ``names`` read from ``state``."""
    return jnp.stack([jnp.asarray(f.read(state), jnp.float32) for f in features(names, table)])


def observation_bounds(
    names: tuple[str, ...], params: Any, table: Table = FEATURES
) -> tuple[jax.Array, jax.Array]:
    """Float32 ``(low, high)`` vectors of ``names`` for ``params``."""
    pairs = [f.bounds(params) for f in features(names, table)]
    low = jnp.stack([jnp.asarray(lo, jnp.float32) for lo, _ in pairs])
    high = jnp.stack([jnp.asarray(hi, jnp.float32) for _, hi in pairs])
    return low, high


def info_dict(
    names: tuple[str, ...], state: EnvState, table: Table = FEATURES
) -> dict[str, jax.Array]:
    """``{name: value}`` of ``names`` read from ``state``, each in its state dtype."""
    return {f.name: f.read(state) for f in features(names, table)}
