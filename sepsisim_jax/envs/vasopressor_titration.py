"""VasopressorTitration (``-v0`` and ``-v1``): hourly norepinephrine dose changes in septic shock (port of sepsisim 0.1.0).

| | shape, dtype | content |
|---|---|---|
| observation | (8,) float32 | MAP [20, 150] mmHg, lactate [0.1, 30] mmol/L, urine [0, 2] mL/kg/h, tissue damage [0, 1], vasopressor dose [0, 2] mcg/kg/min, bacteria [0, 1], SOFA [0, 12], hours on vasopressors [0, 72] |
| action | (1,) float32 | dose change [-0.1, 0.1] mcg/kg/min this hour; the dose stays in [0, 2] |
| reward | () float | +2 if 65 <= MAP <= 85, -3 if MAP < 55, -1.5 (65 - MAP)/10 if 55 <= MAP < 65, -0.5 (MAP - 100)/20 if MAP > 100; +1 if lactate < 2, -0.5 (lactate - 4) above 4; -0.5 (dose - 0.5) above 0.5; +0.5 if urine >= 0.5; -0.1 D; -50 on death |
| termination | | tissue damage >= 0.9; truncation after the model's episode (72 steps on v0, 96 on v1) |

A protocol gives 250 mL of fluid every hour and a weak antibiotic (efficacy 0.15/h): with the
default physiology every patient dies within 7-8 hours, whatever the policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from sepsisim_jax.envs.actions import DOSE_CHANGE, MAX_DOSE, MAX_FLUID_ML
from sepsisim_jax.envs.base import Reader, SepsisEnv
from sepsisim_jax.envs.rewards import excess, lactate_reward, map_band_reward, urine_reward
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.models import SEPSISIM
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.patient import PatientParams

_REFERENCE = "sepsisim 0.1.0"


@struct.dataclass
class VasopressorTitrationParams(environment.EnvParams):
    """Traced parameters of VasopressorTitration-v0."""

    patient: PatientParams = struct.field(default_factory=PatientParams)
    antibiotic_efficacy: float = param(0.15, 0.0, 1.0, "1/h", _REFERENCE)
    fluid_protocol_ml: float = param(
        250.0, 0.0, MAX_FLUID_ML, "mL/h", _REFERENCE + " fluid protocol"
    )
    initial_volume: float = param(1.0, -1.0, 10.0, "L", _REFERENCE + " (pre-resuscitated)")
    initial_vaso_dose: float = param(0.05, 0.0, MAX_DOSE, "mcg/kg/min", _REFERENCE)
    max_steps_in_episode: int = SEPSISIM.episode_steps


def vasopressor_heuristic(read: Reader) -> jax.Array:
    """sepsisim 0.1.0's rule: +0.05 below MAP 65, -0.02 above 85, else hold."""
    map_mmhg = read("map_mmhg")
    return jnp.select([map_mmhg < 65.0, map_mmhg > 85.0], [0.05, -0.02], 0.0)[None]


class VasopressorTitration(SepsisEnv[VasopressorTitrationParams]):
    """Vasopressor titration: hold MAP in range without excessive vasoconstriction."""

    task_name = "VasopressorTitration"
    params_cls = VasopressorTitrationParams
    actions = (DOSE_CHANGE,)
    reference_options = ("dt", "antibiotic_given", "fluid_protocol")
    heuristic = staticmethod(vasopressor_heuristic)
    severity_bacteria = {"easy": 0.25, "medium": 0.45, "hard": 0.65}
    observation_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "vasopressor_dose",
        "bacteria",
        "sofa",
        "hours_on_vasopressors",
    )
    info_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "bacteria",
        "vasopressor_dose",
        "hours_on_vasopressors",
        "step",
    )

    def _admission_treatment(self, params: VasopressorTitrationParams) -> tuple:
        return params.initial_volume, params.initial_vaso_dose

    def _treat(
        self, state: EnvState, action: jax.Array, params: VasopressorTitrationParams
    ) -> tuple[Treatment, jax.Array]:
        dose = jnp.clip(state.patient.vaso_dose + action[0], 0.0, MAX_DOSE)
        treatment = Treatment(
            fluid_ml=jnp.asarray(params.fluid_protocol_ml, dose.dtype),
            vaso_dose=dose,
            antibiotic_efficacy=jnp.asarray(params.antibiotic_efficacy),
        )
        return treatment, state.antibiotic_active

    def _reward(
        self, prev: EnvState, state: EnvState, params: VasopressorTitrationParams
    ) -> jax.Array:
        pat = state.patient
        smoothing = self.reward_smoothing
        map_reward = map_band_reward(
            pat.map_mmhg,
            upper=85.0,
            bonus=2.0,
            floor=55.0,
            gain=1.5,
            divisor=10.0,
            penalise_hypertension=True,
            smoothing=smoothing,
        )
        return (
            map_reward
            + lactate_reward(pat.lactate, smoothing)
            - 0.5 * excess(pat.vaso_dose, 0.5)
            + urine_reward(pat.urine, smoothing)
            - 0.1 * pat.damage
        )
