"""What every patient model takes and exposes, declared once.

A model's step takes one hour's :class:`Treatment`; its state exposes what the tasks read
(:class:`PatientStateLike`: MAP, lactate, urine output, damage, volume, dose and the pathogen
load); quantities a model reports beyond those are :class:`ModelFeature` declarations on the
model (:class:`~sepsisim_jax.physiology.models.PatientModel`), which the environments add to
their ``info``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
from flax import struct


@struct.dataclass
class Treatment:
    """One hour's treatment as the patient receives it (after the task's rules)."""

    fluid_ml: jax.Array  # crystalloid given over the hour, mL
    vaso_dose: jax.Array  # norepinephrine-equivalent dose held over the hour, mcg/kg/min
    antibiotic_efficacy: jax.Array  # the antibiotic's kill rate this hour, 1/h (0: none)


class PatientStateLike(Protocol):
    """The state a patient model must expose after admission and after every step."""

    @property
    def map_mmhg(self) -> jax.Array: ...  # observed mean arterial pressure, mmHg

    @property
    def lactate(self) -> jax.Array: ...  # mmol/L

    @property
    def urine(self) -> jax.Array: ...  # mL/kg/h

    @property
    def damage(self) -> jax.Array: ...  # tissue damage fraction; the tasks' death at 0.9

    @property
    def volume(self) -> jax.Array: ...  # excess fluid, L

    @property
    def vaso_dose(self) -> jax.Array: ...  # mcg/kg/min

    @property
    def bacteria(self) -> jax.Array: ...  # pathogen load, in the model's unit


Bound = float | Callable[[Any], Any]


@dataclasses.dataclass(frozen=True)
class ModelFeature:
    """A quantity a model reports besides :class:`PatientStateLike`: name, label and unit for
    people, bounds (numbers, or functions of the patient params), reader of the model state."""

    name: str
    label: str
    unit: str
    low: Bound
    high: Bound
    read: Callable[[Any], jax.Array]
