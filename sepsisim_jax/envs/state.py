"""The environment state, shared by every task."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct
from gymnax.environments import environment

from sepsisim_jax.physiology.interface import PatientStateLike


@struct.dataclass
class EnvState(environment.EnvState):
    """Patient physiology plus the treatment history the rewards and observations need."""

    patient: PatientStateLike  # the patient model's state (v0 PatientState, v1 CoupledState)
    total_fluid_ml: jax.Array
    hours_on_vasopressors: jax.Array
    antibiotic_active: jax.Array  # bool
    sofa: jax.Array  # int32, simplified SOFA of the current physiology
    time: jax.Array  # int32, steps taken in this episode
    physiology: Any = None  # this patient's drawn params (virtual patients), else None
