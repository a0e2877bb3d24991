"""The death rule and the reward terms shared by the tasks (sepsisim 0.1.0).

Every constant here is the reference's; the task modules import them from this one place and
never from each other (action limits are declared in :mod:`~sepsisim_jax.envs.actions`).

The reward terms take an optional :class:`RewardSmoothing`. Without it (the default, and what
every env uses unless built with ``env.with_smoothed_rewards()``) they are the reference's
exactly; with it, their thresholds become logistic steps, for gradients through the rewards.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

DEATH_DAMAGE = 0.9  # tissue damage at which the patient dies (episode terminates)
DEATH_PENALTY = 50.0


@dataclasses.dataclass(frozen=True)
class RewardSmoothing:
    """Widths of the logistic steps that replace the rewards' thresholds (static, hashable).

    A threshold indicator ``1[x >= c]`` becomes ``sigmoid((x - c) / width)`` with the width of
    ``x``'s quantity; the reference's reward is the limit of zero widths. Smoothed: the MAP
    band (its pieces blended by such steps, :func:`map_band_reward`), lactate below 2 mmol/L,
    urine output from 0.5 mL/kg/h, SepsisManagement's stabilisation bonus (its MAP and
    lactate conditions) and the death penalty (a step in tissue damage at 0.9, paid on every
    step in proportion). Left exact: kinks and clips (they pass gradient where not binding),
    the integer SOFA score and the antibiotic and time conditions (not continuous).
    """

    map_mmhg: float = 2.0  # mmHg
    lactate: float = 0.2  # mmol/L
    urine: float = 0.05  # mL/kg/h
    damage: float = 0.02  # fraction

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"RewardSmoothing.{field.name} must be > 0, got {value!r}")


DEFAULT_SMOOTHING = RewardSmoothing()


def step_up(x: jax.Array, threshold: float, width: float) -> jax.Array:
    """``sigmoid((x - threshold) / width)``: the smoothed indicator of ``x >= threshold``."""
    return jax.nn.sigmoid((x - threshold) / width)


def map_band_reward(
    map_mmhg: jax.Array,
    *,
    upper: float,
    bonus: float,
    floor: float,
    gain: float,
    divisor: float,
    penalise_hypertension: bool = False,
    smoothing: RewardSmoothing | None = None,
) -> jax.Array:
    """The MAP term of every reward, first matching case wins.

    ``bonus`` if 65 <= MAP <= ``upper``; -3 if MAP < ``floor``; ``-gain (65 - MAP) / divisor``
    if MAP < 65; with ``penalise_hypertension``, ``-0.5 (MAP - 100) / 20`` if MAP > 100; else 0.
    The arithmetic is the reference's, operation for operation. With ``smoothing``, the
    pieces ``f_0 .. f_k`` (left to right, meeting at ``floor``, 65, ``upper`` and 100) are
    blended as ``f_0 + sum_i step_up(MAP, c_i, w) (f_i - f_{i-1})``.
    """
    if smoothing is not None:
        pieces = [jnp.asarray(-3.0), -gain * (65.0 - map_mmhg) / divisor, bonus, 0.0]
        edges = [floor, 65.0, upper]
        if penalise_hypertension:
            pieces.append(-0.5 * (map_mmhg - 100.0) / 20.0)
            edges.append(100.0)
        out = pieces[0]
        for edge, below, above in zip(edges, pieces[:-1], pieces[1:], strict=True):
            out = out + step_up(map_mmhg, edge, smoothing.map_mmhg) * (above - below)
        return out
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


def lactate_reward(lactate: jax.Array, smoothing: RewardSmoothing | None = None) -> jax.Array:
    """+1 below 2 mmol/L, -0.5 per mmol/L above 4, else 0 (all three rewards); smoothed, the
    +1 is ``step_up(-lactate, -2, w)``."""
    if smoothing is not None:
        return step_up(-lactate, -2.0, smoothing.lactate) - 0.5 * excess(lactate, 4.0)
    return jnp.where(lactate < 2.0, 1.0, jnp.where(lactate > 4.0, -0.5 * (lactate - 4.0), 0.0))


def urine_reward(urine: jax.Array, smoothing: RewardSmoothing | None = None) -> jax.Array:
    """+0.5 for urine output >= 0.5 mL/kg/h (all three rewards); smoothed, ``0.5 step_up``."""
    if smoothing is not None:
        return 0.5 * step_up(urine, 0.5, smoothing.urine)
    return jnp.where(urine >= 0.5, 0.5, 0.0)


def excess(value: jax.Array, threshold: float) -> jax.Array:
    """``max(value - threshold, 0)``: the amount by which a penalised threshold is exceeded."""
    return jnp.maximum(value - threshold, 0.0)
