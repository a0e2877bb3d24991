"""Treatment limits, episode rules and reward terms shared by the environments (sepsisim 0.1.0).

Every constant here is the reference's; the environment modules import them from this one
place and never from each other.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from sepsisim_jax.physiology.models import SEPSISIM

EPISODE_STEPS = SEPSISIM.episode_steps  # 72, the reference's Gymnasium time limit
MAX_FLUID_ML = 1000.0  # largest bolus per step, mL
MAX_DOSE = 2.0  # largest norepinephrine-equivalent dose, mcg/kg/min
MAX_DOSE_CHANGE = 0.1  # largest dose change per step, mcg/kg/min
ANTIBIOTIC_THRESHOLD = 0.5  # an antibiotic action above this gives the antibiotic
DEATH_DAMAGE = 0.9  # tissue damage at which the patient dies (episode terminates)
DEATH_PENALTY = 50.0
SEVERITIES = ("easy", "medium", "hard")


def map_band_reward(
    map_mmhg: jax.Array,
    *,
    upper: float,
    bonus: float,
    floor: float,
    gain: float,
    divisor: float,
    penalise_hypertension: bool = False,
) -> jax.Array:
    """The MAP term of every reward, first matching case wins.

    ``bonus`` if 65 <= MAP <= ``upper``; -3 if MAP < ``floor``; ``-gain (65 - MAP) / divisor``
    if MAP < 65; with ``penalise_hypertension``, ``-0.5 (MAP - 100) / 20`` if MAP > 100; else 0.
    The arithmetic is the reference's, operation for operation.
    """
    cases = [
        (map_mmhg >= 65.0) & (map_mmhg <= upper),
        map_mmhg < floor,
        map_mmhg < 65.0,
    ]
    values = [bonus, -3.0, -gain * (65.0 - map_mmhg) / divisor]
    if penalise_hypertension:
        cases.append(map_mmhg > 100.0)
        values.append(-0.5 * (map_mmhg - 100.0) / 20.0)
    return first_match(cases, values, 0.0)


def first_match(cases: list[jax.Array], values: list[Any], default: Any) -> jax.Array:
    """``values[i]`` of the first true ``cases[i]``, else ``default``: ``jnp.select`` as nested
    ``jnp.where``, which XLA fuses elementwise (``jnp.select`` becomes a reduction)."""
    out = jnp.asarray(default)
    for case, value in zip(reversed(cases), reversed(values), strict=True):
        out = jnp.where(case, value, out)
    return out


def lactate_reward(lactate: jax.Array) -> jax.Array:
    """+1 below 2 mmol/L, -0.5 per mmol/L above 4, else 0 (all three rewards)."""
    return jnp.where(lactate < 2.0, 1.0, jnp.where(lactate > 4.0, -0.5 * (lactate - 4.0), 0.0))


def urine_reward(urine: jax.Array) -> jax.Array:
    """+0.5 for urine output >= 0.5 mL/kg/h (all three rewards)."""
    return jnp.where(urine >= 0.5, 0.5, 0.0)


def excess(value: jax.Array, threshold: float) -> jax.Array:
    """``max(value - threshold, 0)``: the amount by which a penalised threshold is exceeded."""
    return jnp.maximum(value - threshold, 0.0)
