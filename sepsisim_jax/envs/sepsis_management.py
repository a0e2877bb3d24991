"""SepsisManagement (``-v0`` and ``-v1``): fluids, vasopressor titration and antibiotic timing together (port of sepsisim 0.1.0).

| | shape, dtype | content |
|---|---|---|
| observation | (10,) float32 | MAP [20, 150] mmHg, lactate [0.1, 30] mmol/L, urine [0, 2] mL/kg/h, tissue damage [0, 1], excess volume [-1, 10] L, vasopressor dose [0, 2] mcg/kg/min, bacteria [0, 1], SOFA [0, 12], hours since admission [0, 72], antibiotic active {0, 1} |
| action | (3,) float32 | fluid bolus [0, 1000] mL, dose change [-0.1, 0.1] mcg/kg/min, antibiotic [0, 1] (given once, when > 0.5) |
| reward | () float | +1.5 if 65 <= MAP <= 90, -3 if MAP < 55, -(65 - MAP)/10 if 55 <= MAP < 65; +1 if lactate < 2, -0.5 (lactate - 4) above 4; +0.5 clip(lactate drop, -2, 2); +0.3 SOFA drop; -0.5 (V - 4) above 4 L; -0.3 (dose - 0.5) above 0.5; +0.5 if urine >= 0.5; -1 per step without antibiotic from step 3; -0.1 D; -50 on death; +10 when stabilised (MAP >= 65, lactate < 2, SOFA <= 3, from step 6) |
| termination | | tissue damage >= 0.9; truncation after the model's episode (72 steps on v0, 96 on v1) |

The only environment where the policy changes survival: the antibiotic (efficacy 0.5/h once
given) is what clears bacteria.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from sepsisim_jax.envs.actions import (
    ANTIBIOTIC,
    DOSE_CHANGE,
    FLUID_BOLUS,
    MAX_DOSE,
    SWITCH_THRESHOLD,
)
from sepsisim_jax.envs.base import Reader, SepsisEnv
from sepsisim_jax.envs.rewards import (
    excess,
    lactate_reward,
    map_band_reward,
    step_up,
    urine_reward,
)
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.models import SEPSISIM
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.patient import PatientParams

ANTIBIOTIC_GRACE_STEPS = 3  # steps without antibiotic before the -1 per step penalty
STABILISATION_BONUS = 10.0
STABILISATION_MIN_STEPS = 6


@struct.dataclass
class SepsisManagementParams(environment.EnvParams):
    """Traced parameters of SepsisManagement-v0."""

    patient: PatientParams = struct.field(default_factory=PatientParams)
    antibiotic_efficacy: float = param(
        0.5, 0.0, 1.0, "1/h", "sepsisim 0.1.0 (effect once the antibiotic is given)"
    )
    max_steps_in_episode: int = SEPSISIM.episode_steps


def management_heuristic(read: Reader) -> jax.Array:
    """sepsisim 0.1.0's rule: 750 mL if MAP < 65 and volume < 4 L, else 500/250/125 mL by MAP
    70/80; +0.05 dose if MAP < 65 with volume >= 2 L, -0.02 if MAP > 85 on vasopressors;
    the antibiotic until it is active."""
    map_mmhg, volume = read("map_mmhg"), read("intravascular_volume")
    fluid = jnp.select(
        [(map_mmhg < 65.0) & (volume < 4.0), map_mmhg < 70.0, map_mmhg < 80.0],
        [750.0, 500.0, 250.0],
        125.0,
    )
    dose_change = jnp.select(
        [(map_mmhg < 65.0) & (volume >= 2.0), (map_mmhg > 85.0) & (read("vasopressor_dose") > 0.0)],
        [0.05, -0.02],
        0.0,
    )
    give_antibiotic = jnp.where(read("antibiotic_active") > 0.5, 0.0, 1.0)
    return jnp.stack([fluid, dose_change, give_antibiotic])


class SepsisManagement(SepsisEnv[SepsisManagementParams]):
    """Combined management: fluids, vasopressors and when to start antibiotics."""

    task_name = "SepsisManagement"
    params_cls = SepsisManagementParams
    actions = (FLUID_BOLUS, DOSE_CHANGE, ANTIBIOTIC)
    reference_options = ("dt",)
    heuristic = staticmethod(management_heuristic)
    severity_bacteria = {"easy": 0.25, "medium": 0.45, "hard": 0.65}
    observation_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "intravascular_volume",
        "vasopressor_dose",
        "bacteria",
        "sofa",
        "step",
        "antibiotic_active",
    )
    info_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "bacteria",
        "vasopressor_dose",
        "total_fluid_ml",
        "intravascular_volume",
        "antibiotic_active",
        "step",
    )

    def _admission_treatment(self, params: SepsisManagementParams) -> tuple[float, float]:
        return 0.0, 0.0

    def _treat(
        self, state: EnvState, action: jax.Array, params: SepsisManagementParams
    ) -> tuple[Treatment, jax.Array]:
        active = state.antibiotic_active | (action[2] > SWITCH_THRESHOLD)
        treatment = Treatment(
            fluid_ml=action[0],
            vaso_dose=jnp.clip(state.patient.vaso_dose + action[1], 0.0, MAX_DOSE),
            antibiotic_efficacy=jnp.where(active, params.antibiotic_efficacy, 0.0),
        )
        return treatment, active

    def _reward(self, prev: EnvState, state: EnvState, params: SepsisManagementParams) -> jax.Array:
        pat = state.patient
        map_mmhg = pat.map_mmhg
        smoothing = self.reward_smoothing
        map_reward = map_band_reward(
            map_mmhg,
            upper=90.0,
            bonus=1.5,
            floor=55.0,
            gain=1.0,
            divisor=10.0,
            smoothing=smoothing,
        )
        untreated = ~state.antibiotic_active & (prev.time >= ANTIBIOTIC_GRACE_STEPS)
        if smoothing is None:
            stabilised = (
                (map_mmhg >= 65.0)
                & (pat.lactate < 2.0)
                & (state.sofa <= 3)
                & (state.time >= STABILISATION_MIN_STEPS)
            )
            bonus = jnp.where(stabilised, STABILISATION_BONUS, 0.0)
        else:
            exact = (state.sofa <= 3) & (state.time >= STABILISATION_MIN_STEPS)
            bonus = (
                STABILISATION_BONUS
                * step_up(map_mmhg, 65.0, smoothing.map_mmhg)
                * step_up(-pat.lactate, -2.0, smoothing.lactate)
                * jnp.where(exact, 1.0, 0.0)
            )
        return (
            map_reward
            + lactate_reward(pat.lactate, smoothing)
            + 0.5 * jnp.clip(prev.patient.lactate - pat.lactate, -2.0, 2.0)
            + 0.3 * (prev.sofa - state.sofa)
            - 0.5 * excess(pat.volume, 4.0)
            - 0.3 * excess(pat.vaso_dose, 0.5)
            + urine_reward(pat.urine, smoothing)
            - jnp.where(untreated, 1.0, 0.0)
            - 0.1 * pat.damage
            + bonus
        )
