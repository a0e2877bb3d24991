"""FluidResuscitation (``-v0`` and ``-v1``): hourly crystalloid boluses for a septic patient (port of sepsisim 0.1.0).

| | shape, dtype | content |
|---|---|---|
| observation | (7,) float32 | MAP [20, 150] mmHg, lactate [0.1, 30] mmol/L, urine [0, 2] mL/kg/h, tissue damage [0, 1], excess volume [-1, 10] L, bacteria [0, 1], SOFA [0, 12] |
| action | (1,) float32 | fluid bolus [0, 1000] mL this hour |
| reward | () float | +2 if 65 <= MAP <= 90, -3 if MAP < 50, -(65 - MAP)/15 if 50 <= MAP < 65; +1 if lactate < 2, -0.5 (lactate - 4) if above 4; +0.5 if urine >= 0.5; -(V - 4) if volume V > 4 L; -0.1 D; -50 on death |
| termination | | tissue damage >= 0.9; truncation after the model's episode (72 steps on v0, 96 on v1) |

Antibiotics are running throughout (efficacy 0.5/h), so survival does not depend on the policy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from sepsisim_jax.envs.actions import FLUID_BOLUS
from sepsisim_jax.envs.base import Reader, SepsisEnv
from sepsisim_jax.envs.rewards import excess, lactate_reward, map_band_reward, urine_reward
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.models import SEPSISIM
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.patient import PatientParams


@struct.dataclass
class FluidResuscitationParams(environment.EnvParams):
    """Traced parameters of FluidResuscitation-v0."""

    patient: PatientParams = struct.field(default_factory=PatientParams)
    antibiotic_efficacy: float = param(
        0.5, 0.0, 1.0, "1/h", "sepsisim 0.1.0 (antibiotic given from admission)"
    )
    max_steps_in_episode: int = SEPSISIM.episode_steps


def fluid_heuristic(read: Reader) -> jax.Array:
    """sepsisim 0.1.0's rule: no fluid above 3.5 L excess; else 750/500/250/125 mL for MAP
    below 65/70/80/otherwise."""
    map_mmhg = read("map_mmhg")
    fluid = jnp.select(
        [map_mmhg < 65.0, map_mmhg < 70.0, map_mmhg < 80.0], [750.0, 500.0, 250.0], 125.0
    )
    return jnp.where(read("intravascular_volume") > 3.5, 0.0, fluid)[None]


class FluidResuscitation(SepsisEnv[FluidResuscitationParams]):
    """Fluid resuscitation: restore MAP and lactate clearance without fluid overload."""

    task_name = "FluidResuscitation"
    params_cls = FluidResuscitationParams
    actions = (FLUID_BOLUS,)
    reference_options = ("dt", "antibiotic_given")
    heuristic = staticmethod(fluid_heuristic)
    severity_bacteria = {"easy": 0.2, "medium": 0.4, "hard": 0.6}
    observation_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "intravascular_volume",
        "bacteria",
        "sofa",
    )
    info_names = (
        "map_mmhg",
        "lactate",
        "urine_output",
        "tissue_damage",
        "bacteria",
        "total_fluid_ml",
        "intravascular_volume",
        "step",
    )

    def _admission_treatment(self, params: FluidResuscitationParams) -> tuple[float, float]:
        return 0.0, 0.0

    def _treat(
        self, state: EnvState, action: jax.Array, params: FluidResuscitationParams
    ) -> tuple[Treatment, jax.Array]:
        treatment = Treatment(
            fluid_ml=action[0],
            vaso_dose=state.patient.vaso_dose,
            antibiotic_efficacy=jnp.asarray(params.antibiotic_efficacy),
        )
        return treatment, state.antibiotic_active

    def _reward(
        self, prev: EnvState, state: EnvState, params: FluidResuscitationParams
    ) -> jax.Array:
        pat = state.patient
        smoothing = self.reward_smoothing
        map_reward = map_band_reward(
            pat.map_mmhg,
            upper=90.0,
            bonus=2.0,
            floor=50.0,
            gain=1.0,
            divisor=15.0,
            smoothing=smoothing,
        )
        return (
            map_reward
            + lactate_reward(pat.lactate, smoothing)
            + urine_reward(pat.urine, smoothing)
            - excess(pat.volume, 4.0)
            - 0.1 * pat.damage
        )
