"""The reduced acute inflammatory response model of Reynolds et al. (2006), as published.

Reynolds A, Rubin J, Clermont G, Day J, Vodovotz Y, Ermentrout GB. A reduced mathematical model
of the acute inflammatory response: I. Derivation of model and analysis of anti-inflammation.
J Theor Biol 242(1):220-236, 2006; curated as BioModels BIOMD0000000714.

States: pathogen ``P``, activated phagocytes ``N*``, tissue damage ``D`` and the slow
anti-inflammatory mediator ``C_A``; time in hours. With the anti-inflammatory damping
``f(V) = V / (1 + (C_A / c_inf)^2)`` and ``R = f(k_nn N* + k_np P + k_nd D)``:

    dP/dt   = k_pg P (1 - P / p_inf) - k_pm s_m P / (mu_m + k_mp P) - k_pn f(N*) P
    dN*/dt  = s_nr R / (mu_nr + R) - mu_n N*
    dD/dt   = k_dn f(N*)^6 / (x_dn^6 + f(N*)^6) - mu_d D
    dC_A/dt = s_c + k_cn f(N* + k_cnd D) / (1 + f(N* + k_cnd D)) - mu_c C_A

:func:`rates` also takes the two inputs through which the v1 coupled model acts on it: an
extra first-order kill of ``P`` (an antibiotic) and an extra production of ``D`` (injury
from hypoperfusion and fluid overload). Both are zero in the published model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology.parameters import param

_SOURCE = "Reynolds et al. 2006, Table 1 (BIOMD0000000714)"
_RANGE = "; range a modelling choice around the published value"
# Published value (all rates 1/h unless noted), range, unit.
_TABLE = {
    "k_pm": (0.6, 0.3, 1.2, "1/(units M) /h", "local immune response kill"),
    "k_mp": (0.01, 0.005, 0.02, "1/(units P)", "local response exhaustion"),
    "s_m": (0.005, 0.0025, 0.01, "units/h", "local immune source"),
    "mu_m": (0.002, 0.001, 0.004, "1/h", "local immune decay"),
    "k_pg": (0.3, 0.1, 0.8, "1/h", "pathogen growth"),
    "p_inf": (20.0, 10.0, 40.0, "10^6 cells/cc", "pathogen carrying capacity"),
    "k_pn": (1.8, 0.9, 3.6, "1/(units N*) /h", "phagocyte kill of pathogen"),
    "k_np": (0.1, 0.05, 0.2, "1/(units P)", "pathogen activation of phagocytes"),
    "k_nn": (0.01, 0.005, 0.02, "1/(units N*)", "phagocyte self-activation"),
    "s_nr": (0.08, 0.04, 0.16, "units/h", "resting phagocyte source"),
    "mu_nr": (0.12, 0.06, 0.24, "1/h", "resting phagocyte decay"),
    "mu_n": (0.05, 0.025, 0.1, "1/h", "activated phagocyte decay"),
    "k_nd": (0.02, 0.01, 0.04, "1/(units D)", "damage activation of phagocytes"),
    "k_dn": (0.35, 0.175, 0.7, "units D/h", "maximal damage production"),
    "x_dn": (0.06, 0.03, 0.12, "units N*", "half-effect of phagocytes on damage"),
    "mu_d": (0.02, 0.01, 0.04, "1/h", "damage repair"),
    "c_inf": (0.28, 0.14, 0.56, "units C_A", "anti-inflammatory strength"),
    "s_c": (0.0125, 0.00625, 0.025, "units/h", "anti-inflammatory source"),
    "k_cn": (0.04, 0.02, 0.08, "units/h", "anti-inflammatory production"),
    "k_cnd": (48.0, 24.0, 96.0, "units N*/units D", "damage weight in C_A production"),
    "mu_c": (0.1, 0.05, 0.2, "1/h", "anti-inflammatory decay"),
}


def _field(name: str):
    default, low, high, unit, meaning = _TABLE[name]
    return param(default, low, high, unit, f"{_SOURCE}, {meaning}{_RANGE}")


@struct.dataclass
class ReynoldsParams:
    """The 21 rate constants of the reduced model at their published values.

    Ranges are half to twice the published value (a modelling choice, wide enough for the
    virtual patients; ``k_pg`` is wider, to hold the curated septic scenario at 0.6).
    """

    k_pm: float = _field("k_pm")
    k_mp: float = _field("k_mp")
    s_m: float = _field("s_m")
    mu_m: float = _field("mu_m")
    k_pg: float = _field("k_pg")
    p_inf: float = _field("p_inf")
    k_pn: float = _field("k_pn")
    k_np: float = _field("k_np")
    k_nn: float = _field("k_nn")
    s_nr: float = _field("s_nr")
    mu_nr: float = _field("mu_nr")
    mu_n: float = _field("mu_n")
    k_nd: float = _field("k_nd")
    k_dn: float = _field("k_dn")
    x_dn: float = _field("x_dn")
    mu_d: float = _field("mu_d")
    c_inf: float = _field("c_inf")
    s_c: float = _field("s_c")
    k_cn: float = _field("k_cn")
    k_cnd: float = _field("k_cnd")
    mu_c: float = _field("mu_c")


@struct.dataclass
class ReynoldsState:
    """Pathogen ``P``, activated phagocytes ``N*``, damage ``D``, anti-inflammation ``C_A``."""

    pathogen: jax.Array
    phagocytes: jax.Array
    damage: jax.Array
    anti_inflammatory: jax.Array


# The curated scenarios of BIOMD0000000714: (k_pg, P0) and the fate they reach.
SCENARIOS: dict[str, tuple[float, float]] = {
    "health": (0.3, 1.0),
    "aseptic death": (0.3, 1.5),
    "septic death": (0.6, 1.0),
}


def initial_state(p: ReynoldsParams, pathogen: jax.Array, dtype: jnp.dtype) -> ReynoldsState:
    """Infection with ``P0 = pathogen`` into a resting host: ``N* = D = 0``, ``C_A = s_c/mu_c``."""
    zero = jnp.zeros_like(jnp.asarray(pathogen, dtype))
    return ReynoldsState(
        pathogen=jnp.asarray(pathogen, dtype),
        phagocytes=zero,
        damage=zero,
        anti_inflammatory=(zero + p.s_c / p.mu_c).astype(dtype),
    )


def rates(
    y: ReynoldsState,
    p: ReynoldsParams,
    pathogen_kill: jax.Array | float = 0.0,
    damage_input: jax.Array | float = 0.0,
) -> ReynoldsState:
    """Time derivatives (per hour) of the model, plus an extra kill rate of ``P`` (1/h) and an
    extra production of ``D`` (units/h). ``P`` is read as ``max(P, 0)``; elementwise."""
    pathogen = jnp.maximum(y.pathogen, 0.0)
    damping = 1.0 + (y.anti_inflammatory / p.c_inf) ** 2

    def f(v: jax.Array) -> jax.Array:
        return v / damping

    f_n = f(y.phagocytes)
    r = f(p.k_nn * y.phagocytes + p.k_np * pathogen + p.k_nd * y.damage)
    f_cn = f(y.phagocytes + p.k_cnd * y.damage)
    f_n6 = f_n**6
    return ReynoldsState(
        pathogen=(
            p.k_pg * pathogen * (1.0 - pathogen / p.p_inf)
            - p.k_pm * p.s_m * pathogen / (p.mu_m + p.k_mp * pathogen)
            - p.k_pn * f_n * pathogen
            - pathogen_kill * pathogen
        ),
        phagocytes=p.s_nr * r / (p.mu_nr + r) - p.mu_n * y.phagocytes,
        damage=p.k_dn * f_n6 / (p.x_dn**6 + f_n6) - p.mu_d * y.damage + damage_input,
        anti_inflammatory=p.s_c + p.k_cn * f_cn / (1.0 + f_cn) - p.mu_c * y.anti_inflammatory,
    )


def vector_field(
    t: jax.Array, y: ReynoldsState, args: tuple[ReynoldsParams, jax.Array]
) -> ReynoldsState:
    """diffrax vector field of the model alone; ``args = (params, pathogen_kill)``."""
    del t
    params, pathogen_kill = args
    return rates(y, params, pathogen_kill)


def clip_state(y: ReynoldsState) -> ReynoldsState:
    """Every state floored at zero after a step (the solvers let ``P`` dip below it)."""
    return jax.tree.map(lambda leaf: jnp.maximum(leaf, 0.0), y)
