"""The environment state and one hour's treatment, shared by every task."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct
from gymnax.environments import environment

from sepsisim_jax.physiology.patient import PatientState


@struct.dataclass
class EnvState(environment.EnvState):
    """Patient physiology plus the treatment history the rewards and observations need."""

    patient: PatientState
    total_fluid_ml: jax.Array
    hours_on_vasopressors: jax.Array
    antibiotic_active: jax.Array  # bool
    sofa: jax.Array  # int32, simplified SOFA of the current physiology
    time: jax.Array  # int32, steps taken in this episode
    physiology: Any = None  # this patient's drawn params (virtual patients), else None


@struct.dataclass
class Treatment:
    """What one hour's action does: fluid given, resulting dose, antibiotic status and effect."""

    fluid_ml: jax.Array
    vaso_dose: jax.Array
    antibiotic_active: jax.Array
    antibiotic_efficacy: jax.Array
