"""One patient: admission and the one-hour step shared by every environment.

The order of operations is the reference's: integrate the inflammation ODE over ``dt``
(diffrax), update intravascular volume with this hour's fluid, compute MAP from the new
damage, volume and vasopressor dose (plus noise), step lactate with that MAP, then urine
output from MAP (plus noise). The random numbers are :mod:`~sepsisim_jax.physiology.noise`'s.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology import cardiovascular, inflammation, lactate
from sepsisim_jax.physiology.cardiovascular import CardiovascularParams
from sepsisim_jax.physiology.inflammation import InflammationParams, InflammationState
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.lactate import LactateParams
from sepsisim_jax.physiology.noise import Draws, NoiseParams
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.solver import Integrator

_REFERENCE = "sepsisim 0.1.0"


@struct.dataclass
class PatientParams:
    """Everything that defines a simulated patient's physiology and its time step."""

    inflammation: InflammationParams = struct.field(default_factory=InflammationParams)
    cardiovascular: CardiovascularParams = struct.field(default_factory=CardiovascularParams)
    lactate: LactateParams = struct.field(default_factory=LactateParams)
    noise: NoiseParams = struct.field(default_factory=NoiseParams)
    dt: float = param(
        1.0, 0.25, 4.0, "h", _REFERENCE + " (one decision per hour)", per_patient=False
    )
    initial_bacteria: float = param(
        0.4, 0.01, 2.0, "normalised", _REFERENCE + " severity levels 0.2-0.65"
    )

    @property
    def bacteria_max(self) -> float:
        """Largest bacterial load a state can hold (the carrying capacity clips it)."""
        return self.inflammation.b_max


@struct.dataclass
class PatientState:
    """Physiological state after a step: inflammation plus haemodynamics and lactate."""

    inflammation: InflammationState
    volume: jax.Array  # L above baseline
    vaso_dose: jax.Array  # mcg/kg/min norepinephrine equivalent
    map_mmhg: jax.Array
    lactate: jax.Array  # mmol/L
    urine: jax.Array  # mL/kg/h

    @property
    def bacteria(self) -> jax.Array:
        return self.inflammation.bacteria

    @property
    def damage(self) -> jax.Array:
        """Tissue damage as a fraction, 1 at most; death at ``DEATH_DAMAGE``."""
        return self.inflammation.damage


def admit(
    params: PatientParams,
    volume: jax.Array,
    vaso_dose: jax.Array,
    draws: Draws,
    dtype: jnp.dtype,
) -> PatientState:
    """Admission state: jittered bacterial load, resting mediators, first MAP, lactate, urine."""
    noise = params.noise
    bacteria = params.initial_bacteria * (1.0 + noise.admission_jitter * draws.bacteria_u)
    infl = inflammation.initial_state(params.inflammation, bacteria, dtype)
    volume = jnp.asarray(volume, dtype)
    vaso_dose = jnp.asarray(vaso_dose, dtype)
    map_mmhg = cardiovascular.mean_arterial_pressure(
        infl.damage,
        volume,
        vaso_dose,
        params.cardiovascular,
        noise.map_noise_sd * draws.admission_map_z,
    )
    lac = lactate.admission_lactate(
        params.lactate,
        params.initial_bacteria,
        1.0 + noise.admission_jitter * draws.lactate_u,
    )
    urine = cardiovascular.urine_output(map_mmhg, noise.urine_noise_sd * draws.admission_urine_z)
    return PatientState(
        inflammation=infl,
        volume=volume,
        vaso_dose=vaso_dose,
        map_mmhg=map_mmhg.astype(dtype),
        lactate=lac.astype(dtype),
        urine=urine.astype(dtype),
    )


def advance(
    state: PatientState,
    params: PatientParams,
    integrate: Integrator,
    treatment: Treatment,
    draws: Draws,
) -> PatientState:
    """One step of ``params.dt`` hours with the given fluid bolus, dose and antibiotic effect."""
    dtype = state.map_mmhg.dtype
    fluid_ml, vaso_dose = treatment.fluid_ml, treatment.vaso_dose
    infl = integrate(
        state.inflammation,
        params.inflammation,
        jnp.asarray(treatment.antibiotic_efficacy, dtype),
        jnp.asarray(params.dt, dtype),
    )
    infl = inflammation.clip_state(infl, params.inflammation)
    volume = cardiovascular.update_volume(state.volume, fluid_ml, params.cardiovascular, params.dt)
    map_mmhg = cardiovascular.mean_arterial_pressure(
        infl.damage,
        volume,
        vaso_dose,
        params.cardiovascular,
        params.noise.map_noise_sd * draws.map_z,
    )
    lac = lactate.lactate_step(state.lactate, map_mmhg, infl.damage, params.lactate, params.dt)
    urine = cardiovascular.urine_output(map_mmhg, params.noise.urine_noise_sd * draws.urine_z)
    return PatientState(
        inflammation=jax.tree.map(lambda x: x.astype(dtype), infl),
        volume=volume.astype(dtype),
        vaso_dose=jnp.asarray(vaso_dose, dtype),
        map_mmhg=map_mmhg.astype(dtype),
        lactate=lac.astype(dtype),
        urine=urine.astype(dtype),
    )
