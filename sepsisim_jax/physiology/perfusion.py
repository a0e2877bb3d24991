"""v1's readouts of perfusion and inflammation: blood lactate and urine output.

Lactate (mmol/L) is a state of the coupled ODE, driven by the noise-free state:

    dL/dt = p_hypo max(0, 1 - MAP / MAP_L) + p_infl N*
            - k_cl min(1, MAP / MAP_L) / (1 + D / D_liver) (L - L_0)

Production by hypoperfusion (anaerobic glycolysis below the guideline's MAP 65) and by the
inflammatory state (adrenergic aerobic glycolysis in muscle, "stress hyperlactataemia": Levy
et al., Lancet 2005; Levy et al., Shock 2008; Garcia-Alvarez, Marik and Bellomo, Crit Care
2014); hepatic clearance falls with perfusion and with organ damage ``D`` in the model's own
units, never relative to the patient's death threshold.

Urine output (mL/kg/h) follows renal perfusion pressure and falls with organ damage (septic
acute kidney injury occurs without hypotension):

    U = U_n clip((MAP - MAP_anuria) / (MAP_full - MAP_anuria), 0, 1) / (1 + D / D_kidney)

with ``U_n`` about 1 mL/kg/h in health, so that a healthy patient scores no renal SOFA point
(oliguria is < 0.5 mL/kg/h, KDIGO 2012). Measurement noise is added to the observation only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology.cardiovascular import URINE_RANGE
from sepsisim_jax.physiology.parameters import param

_ASSUMED = "modelling assumption"
_STRESS = "stress hyperlactataemia: Levy et al., Lancet 2005; Garcia-Alvarez et al., Crit Care 2014"


@struct.dataclass
class LactateKineticsParams:
    """Production and clearance of blood lactate in the coupled model."""

    baseline_lactate: float = param(1.0, 0.5, 1.5, "mmol/L", "normal physiology")
    hypoperfusion_production: float = param(
        4.0, 2.0, 8.0, "mmol/L/h at zero MAP", "sepsisim 0.1.0 (Hernandez et al. 2019)"
    )
    inflammatory_production: float = param(
        1.2,
        0.0,
        3.0,
        "mmol/L/h per unit N*",
        _STRESS + "; sized to +1 mmol/L at a typical N* of 0.25 (" + _ASSUMED + ")",
    )
    clearance_rate: float = param(0.3, 0.1, 0.5, "1/h", "Bakker et al. 2022")
    lactate_map_threshold: float = param(65.0, 55.0, 70.0, "mmHg", "Rhodes et al. 2017")
    clearance_damage_half: float = param(
        5.0, 1.0, 20.0, "units D", "hepatic clearance halves at this damage; " + _ASSUMED
    )


@struct.dataclass
class RenalParams:
    """Urine output from renal perfusion pressure and organ damage."""

    normal_urine: float = param(
        1.0, 0.6, 1.5, "mL/kg/h", "normal adult output; oliguria < 0.5 (KDIGO 2012)"
    )
    anuria_map: float = param(
        45.0, 35.0, 55.0, "mmHg", "filtration stops; sepsisim 0.1.0 uses 50; " + _ASSUMED
    )
    full_urine_map: float = param(
        75.0,
        65.0,
        85.0,
        "mmHg",
        "urine rises from MAP 65 to 85 in septic shock (Sharma et al. 2012; Kato and Pinsky,"
        " Ann Intensive Care 2015); " + _ASSUMED,
    )
    kidney_damage_half: float = param(
        4.0, 1.0, 20.0, "units D", "septic kidney injury halves output; " + _ASSUMED
    )


def lactate_rate(
    lactate: jax.Array,
    map_mmhg: jax.Array,
    phagocytes: jax.Array,
    damage: jax.Array,
    p: LactateKineticsParams,
) -> jax.Array:
    """``dL/dt`` (mmol/L/h) at the noise-free MAP, ``N*`` and ``D``."""
    production, clearance = _kinetics(map_mmhg, phagocytes, damage, p)
    return production - clearance * (lactate - p.baseline_lactate)


def steady_lactate(
    map_mmhg: jax.Array, phagocytes: jax.Array, damage: jax.Array, p: LactateKineticsParams
) -> jax.Array:
    """The lactate at which production equals clearance in this state (``dL/dt = 0``)."""
    production, clearance = _kinetics(map_mmhg, phagocytes, damage, p)
    return p.baseline_lactate + production / clearance


def _kinetics(
    map_mmhg: jax.Array, phagocytes: jax.Array, damage: jax.Array, p: LactateKineticsParams
) -> tuple[jax.Array, jax.Array]:
    """Production (mmol/L/h) and clearance rate (1/h); MAP is at least 20 mmHg, so the
    clearance is positive."""
    perfusion = map_mmhg / p.lactate_map_threshold
    production = p.hypoperfusion_production * jnp.maximum(0.0, 1.0 - perfusion)
    production = production + p.inflammatory_production * jnp.maximum(phagocytes, 0.0)
    hepatic = 1.0 / (1.0 + jnp.maximum(damage, 0.0) / p.clearance_damage_half)
    return production, p.clearance_rate * jnp.minimum(1.0, perfusion) * hepatic


def urine_output(
    map_mmhg: jax.Array, damage: jax.Array, noise: jax.Array, p: RenalParams
) -> jax.Array:
    """Observed urine output (mL/kg/h): the noise-free output plus ``noise``, clipped."""
    pressure = (map_mmhg - p.anuria_map) / (p.full_urine_map - p.anuria_map)
    kidney = 1.0 / (1.0 + jnp.maximum(damage, 0.0) / p.kidney_damage_half)
    return jnp.clip(p.normal_urine * jnp.clip(pressure, 0.0, 1.0) * kidney + noise, *URINE_RANGE)
