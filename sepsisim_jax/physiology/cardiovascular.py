"""Lumped haemodynamics: mean arterial pressure, intravascular volume and urine output.

A deliberately simple model (no Frank-Starling curve or Windkessel circuit) of how sepsis,
crystalloid fluids and norepinephrine move MAP, after sepsisim 0.1.0:

    MAP = MAP_0 (1 - 0.3 D) + g_f V / (1 + 0.3 max(V, 0)) + g_v u / (1 + 0.05 u) + noise

with tissue damage ``D``, excess volume ``V`` (L) and vasopressor dose ``u`` (mcg/kg/min),
clipped to [20, 150] mmHg. Fluid targets: Surviving Sepsis Campaign (Rhodes et al.,
Intensive Care Med 2017); fluid response: CLOVERS (NEJM 2023).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology.parameters import param

MAP_RANGE = (20.0, 150.0)  # mmHg
VOLUME_RANGE = (-1.0, 10.0)  # L above baseline
URINE_RANGE = (0.0, 2.0)  # mL/kg/h
SEPSIS_MAP_DEPRESSION = 0.3  # fraction of baseline MAP lost at full tissue damage
FLUID_SATURATION = 0.3  # 1/L: diminishing MAP return of excess volume
VASOPRESSOR_SATURATION = 0.05  # 1/(mcg/kg/min): diminishing MAP return of dose


@struct.dataclass
class CardiovascularParams:
    """Gains and rates of the lumped haemodynamic model."""

    map_baseline: float = param(75.0, 65.0, 100.0, "mmHg", "Rhodes et al. 2017")
    fluid_map_gain: float = param(8.0, 2.0, 15.0, "mmHg/L", "CLOVERS trial, NEJM 2023")
    vaso_map_gain: float = param(15.0, 5.0, 30.0, "mmHg/(mcg/kg/min)", "Rhodes et al. 2017")
    fluid_redistribution_rate: float = param(
        0.15, 0.05, 0.3, "1/h", "sepsisim 0.1.0, estimated from clinical data"
    )


def mean_arterial_pressure(
    damage: jax.Array,
    volume: jax.Array,
    vaso_dose: jax.Array,
    p: CardiovascularParams,
    noise: jax.Array,
) -> jax.Array:
    """MAP (mmHg) from damage, excess volume and vasopressor dose, plus additive noise."""
    depression = p.map_baseline * SEPSIS_MAP_DEPRESSION * damage
    fluid = p.fluid_map_gain * volume / (1.0 + FLUID_SATURATION * jnp.maximum(volume, 0.0))
    vaso = p.vaso_map_gain * vaso_dose / (1.0 + VASOPRESSOR_SATURATION * vaso_dose)
    return jnp.clip(p.map_baseline - depression + fluid + vaso + noise, *MAP_RANGE)


def update_volume(
    volume: jax.Array, fluid_ml: jax.Array, p: CardiovascularParams, dt: jax.Array
) -> jax.Array:
    """Add the bolus, then redistribute a fraction ``rate * dt`` of the excess (explicit Euler)."""
    loaded = volume + fluid_ml / 1000.0
    return jnp.clip(loaded - p.fluid_redistribution_rate * loaded * dt, *VOLUME_RANGE)


def urine_output(map_mmhg: jax.Array, noise: jax.Array) -> jax.Array:
    """Urine output (mL/kg/h), piecewise linear in MAP: 0 below 50, 0.3 at 65, 0.5 from 95."""
    low = 0.3 * (map_mmhg - 50.0) / 15.0
    high = 0.3 + 0.2 * jnp.minimum(1.0, (map_mmhg - 65.0) / 30.0)
    urine = jnp.where(map_mmhg < 50.0, 0.0, jnp.where(map_mmhg < 65.0, low, high))
    return jnp.clip(urine + noise, *URINE_RANGE)
