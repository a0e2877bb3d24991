"""Simplified SOFA score (0-12): cardiovascular, renal and a lactate proxy for the metabolic part.

A proxy built from three of the six Sequential Organ Failure Assessment components
(Vincent et al. 1996; Singer et al., Sepsis-3, JAMA 2016), each 0-4, with the thresholds of
sepsisim 0.1.0. It differs from the published score: any vasopressor gives 2 cardiovascular
points (published: dopamine or dobutamine), renal points come from urine output alone
(published: creatinine, and urine only below 500 and 200 mL/day), and lactate stands in for
bilirubin. ``docs/physiology.md`` tabulates the differences.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp

MAX_SOFA = 12  # three components of at most 4 points


def cardiovascular_sofa(map_mmhg: jax.Array, vaso_dose: jax.Array) -> jax.Array:
    """4 above 0.3, 3 above 0.1, 2 for any vasopressor (mcg/kg/min); else 1 if MAP < 70.

    Nested ``jnp.where`` rather than ``jnp.select``, which XLA lowers to a reduction that
    does not fuse with the rest of a step.
    """
    points = jnp.where(map_mmhg < 70.0, 1, 0)
    points = jnp.where(vaso_dose > 0.0, 2, points)
    points = jnp.where(vaso_dose > 0.1, 3, points)
    return jnp.where(vaso_dose > 0.3, 4, points).astype(jnp.int32)


def renal_sofa(urine: jax.Array) -> jax.Array:
    """One point below each of 0.5, 0.3, 0.2 and 0.1 mL/kg/h of urine output."""
    return _count(urine < threshold for threshold in (0.5, 0.3, 0.2, 0.1))


def lactate_sofa(lactate: jax.Array) -> jax.Array:
    """One point above each of 2, 4, 6 and 10 mmol/L of lactate."""
    return _count(lactate > threshold for threshold in (2.0, 4.0, 6.0, 10.0))


def _count(conditions: Iterable[jax.Array]) -> jax.Array:
    """Elementwise number of true conditions, as int32."""
    return sum(jnp.asarray(c, jnp.int32) for c in conditions)


def sofa_score(
    map_mmhg: jax.Array, vaso_dose: jax.Array, urine: jax.Array, lactate: jax.Array
) -> jax.Array:
    """Sum of the three components, an int32 in [0, 12]."""
    return cardiovascular_sofa(map_mmhg, vaso_dose) + renal_sofa(urine) + lactate_sofa(lactate)
