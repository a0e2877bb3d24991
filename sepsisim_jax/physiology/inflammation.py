"""Four-state acute inflammation model after Reynolds et al. (2006).

Reynolds A, Rubin J, Clermont G, Day J, Vodovotz Y, Ermentrout GB. A reduced mathematical
model of the acute inflammatory response: I. Derivation of model and analysis of
anti-inflammation. J Theor Biol 242(1):220-236, 2006.

States (all normalised): bacteria ``B``, pro-inflammatory mediators ``M``, anti-inflammatory
mediators ``A``, tissue damage ``D``. With ``s(B) = B / (1 + B)`` and every state floored
at zero before evaluation, the vector field is

    dB/dt = k_growth B (1 - B / b_max) - k_kill M s(B) - e_abx B
    dM/dt = s_m + k_mb s(B) + k_md D - mu_m M - k_ma M A
    dA/dt = s_a + k_am M + k_ad D - mu_a A
    dD/dt = k_dm M / (1 + M) - mu_d D

Defaults, ranges and units are those of sepsisim 0.1.0, which calibrated several rates to
an hourly RL time scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology.parameters import param

_REYNOLDS = "Reynolds et al. 2006"
_CALIBRATED = "Reynolds et al. 2006, calibrated to an hourly time scale in sepsisim 0.1.0"


@struct.dataclass
class InflammationState:
    """Bacteria, pro- and anti-inflammatory mediators, tissue damage (normalised units)."""

    bacteria: jax.Array
    pro_inflammatory: jax.Array
    anti_inflammatory: jax.Array
    damage: jax.Array


@struct.dataclass
class InflammationParams:
    """Rate constants of the inflammation ODE."""

    k_growth: float = param(0.6, 0.1, 1.0, "1/h", _REYNOLDS)
    k_kill: float = param(0.5, 0.1, 1.0, "1/h", _REYNOLDS)
    b_max: float = param(1.0, 0.5, 2.0, "normalised", _REYNOLDS + " (carrying capacity)")
    s_m: float = param(0.01, 0.001, 0.1, "1/h", _REYNOLDS)
    k_mb: float = param(1.5, 0.5, 5.0, "1/h", _REYNOLDS)
    k_md: float = param(0.2, 0.1, 2.0, "1/h", _CALIBRATED)
    mu_m: float = param(0.2, 0.01, 0.5, "1/h", _CALIBRATED)
    k_ma: float = param(0.5, 0.1, 1.0, "1/h", _CALIBRATED)
    s_a: float = param(0.01, 0.001, 0.1, "1/h", _REYNOLDS)
    k_am: float = param(0.4, 0.1, 2.0, "1/h", _REYNOLDS)
    k_ad: float = param(0.1, 0.01, 0.5, "1/h", _REYNOLDS)
    mu_a: float = param(0.05, 0.01, 0.5, "1/h", _REYNOLDS)
    k_dm: float = param(0.5, 0.1, 2.0, "1/h", _CALIBRATED)
    mu_d: float = param(0.12, 0.01, 0.5, "1/h", _CALIBRATED)


def vector_field(
    t: jax.Array, y: InflammationState, args: tuple[InflammationParams, jax.Array]
) -> InflammationState:
    """Right-hand side of the inflammation ODE; ``args = (params, antibiotic_efficacy)``.

    Elementwise in every leaf, so it applies unchanged to a whole batch held as one state.
    """
    del t
    p, abx = args
    b = jnp.maximum(y.bacteria, 0.0)
    m = jnp.maximum(y.pro_inflammatory, 0.0)
    a = jnp.maximum(y.anti_inflammatory, 0.0)
    d = jnp.maximum(y.damage, 0.0)
    saturation = b / (1.0 + b)
    return InflammationState(
        bacteria=p.k_growth * b * (1.0 - b / p.b_max) - p.k_kill * m * saturation - abx * b,
        pro_inflammatory=p.s_m + p.k_mb * saturation + p.k_md * d - p.mu_m * m - p.k_ma * m * a,
        anti_inflammatory=p.s_a + p.k_am * m + p.k_ad * d - p.mu_a * a,
        damage=p.k_dm * m / (1.0 + m) - p.mu_d * d,
    )


def clip_state(y: InflammationState, p: InflammationParams) -> InflammationState:
    """Post-step clipping of the reference: all states >= 0, B <= b_max, D <= 1."""
    return InflammationState(
        bacteria=jnp.clip(y.bacteria, 0.0, p.b_max),
        pro_inflammatory=jnp.maximum(y.pro_inflammatory, 0.0),
        anti_inflammatory=jnp.maximum(y.anti_inflammatory, 0.0),
        damage=jnp.clip(y.damage, 0.0, 1.0),
    )


def initial_state(
    p: InflammationParams, bacteria_load: jax.Array, dtype: jnp.dtype
) -> InflammationState:
    """Admission state: given bacterial load (clipped to [0.01, b_max]), mediators at rest, D = 0.

    The resting mediator levels are the ODE's fixed points without infection:
    ``M = s_m / mu_m`` and ``A = s_a / mu_a``.
    """
    return InflammationState(
        bacteria=jnp.clip(bacteria_load, 0.01, p.b_max).astype(dtype),
        pro_inflammatory=jnp.asarray(p.s_m / p.mu_m, dtype),
        anti_inflammatory=jnp.asarray(p.s_a / p.mu_a, dtype),
        damage=jnp.zeros((), dtype),
    )
