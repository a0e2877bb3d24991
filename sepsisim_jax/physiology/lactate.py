"""v0's lactate: production by hypoperfusion and injury, hepatic clearance (v1: :mod:`.perfusion`).

One explicit Euler step of length ``dt`` per environment step, after sepsisim 0.1.0:

    production = P_max max(0, 1 - MAP / MAP_thr) + g_D D
    clearance  = k_cl min(1, MAP / MAP_thr) max(0.3, 1 - 0.5 D)
    L' = L + dt (production - clearance (L - L_0)),  clipped to [0.1, 30] mmol/L

Sources: Hernandez et al., Intensive Care Med 2019; Bakker et al., Crit Care 2022.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology.parameters import param

LACTATE_RANGE = (0.1, 30.0)  # mmol/L after a step
ADMISSION_LACTATE_RANGE = (0.5, 15.0)  # mmol/L at admission
ADMISSION_SEVERITY_GAIN = 3.0  # mmol/L of admission lactate per unit of initial bacteria


@struct.dataclass
class LactateParams:
    """Production and clearance constants of the lactate model."""

    baseline_lactate: float = param(1.0, 0.5, 1.5, "mmol/L", "normal physiology")
    max_production_rate: float = param(4.0, 2.0, 8.0, "mmol/L/h", "Hernandez et al. 2019")
    clearance_rate: float = param(0.3, 0.1, 0.5, "1/h", "Bakker et al. 2022")
    map_threshold: float = param(65.0, 55.0, 70.0, "mmHg", "Rhodes et al. 2017")
    damage_production_gain: float = param(
        1.5, 0.5, 5.0, "mmol/L/h", "sepsisim 0.1.0, estimated from clinical data"
    )


def lactate_step(
    lactate: jax.Array, map_mmhg: jax.Array, damage: jax.Array, p: LactateParams, dt: jax.Array
) -> jax.Array:
    """Lactate (mmol/L) after one Euler step of production minus clearance."""
    perfusion = map_mmhg / p.map_threshold
    production = (
        p.max_production_rate * jnp.maximum(0.0, 1.0 - perfusion)
        + p.damage_production_gain * damage
    )
    clearance = (
        p.clearance_rate * jnp.minimum(1.0, perfusion) * jnp.maximum(0.3, 1.0 - 0.5 * damage)
    )
    rate = production - clearance * (lactate - p.baseline_lactate)
    return jnp.clip(lactate + rate * dt, *LACTATE_RANGE)


def admission_lactate(p: LactateParams, severity: jax.Array, multiplier: jax.Array) -> jax.Array:
    """Admission lactate ``(L_0 + 3 severity) * multiplier``, clipped to [0.5, 15] mmol/L."""
    return jnp.clip(
        (p.baseline_lactate + ADMISSION_SEVERITY_GAIN * severity) * multiplier,
        *ADMISSION_LACTATE_RANGE,
    )
