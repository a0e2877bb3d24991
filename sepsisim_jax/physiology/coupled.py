"""The v1 patient: the published Reynolds 2006 model coupled both ways to a lumped circulation.

The ODE holds the four Reynolds states and the fluid that has leaked into the tissues
``O`` (L). Within a step the treatment is held constant: a fluid infusion ``u = bolus / dt``
(L/h), a norepinephrine dose ``c`` and the antibiotic's kill rate ``k_abx``. Plasma volume
leaks at ``k(D) = k_leak (1 + a_leak D)`` towards a depleted level ``V_eq(D)``; with
``k >= 2/h`` against hourly steps the model takes its quasi-steady limit (the stiff fast mode
removed), so the plasma volume deviation from normal is algebraic:

    V       = V_eq(D) + u / k(D),          V_eq(D) = -d_leak D / (D + x_leak)
    MAP     = MAP_0 (1 - g_no N* / (N* + x_no)) + g_v V / (1 + s_v max(V, 0)) + E(c, N*)
    E(c, N*) = E_max / (1 + N* / x_hypo) * c^h / (EC50^h + c^h)

and the couplings are

    dP/dt   += - k_abx P                                   (antibiotic, from the hour given)
    dD/dt   += k_hypo max(0, 1 - MAP / MAP_auto) + k_ov max(0, O - O_thr)
    dO/dt    = u - k_ex O                                   (all infused fluid leaks)
    dL/dt    = lactate production - clearance               (:mod:`.perfusion`)

with the Reynolds equations of :mod:`~sepsisim_jax.physiology.reynolds2006` otherwise
unchanged. A bolus therefore raises MAP while it runs and not after: the fraction of an
infusion of length ``T`` still in the vessels at its end is ``1 / (k T)`` (quasi-steady;
``(1 - exp(-k T)) / (k T)`` with the fast mode kept)
(Ernest et al. 1999 measured about a quarter in sepsis). Sources and assumptions are listed
per parameter and in ``docs/physiology.md``. Lactate is a state driven by the noise-free
MAP, ``N*`` and ``D``; after the step the observed MAP and urine output add measurement
noise, which changes observations only, never the state. Tissue damage is
reported as the fraction ``0.9 D / D_lethal`` (at most 1), so the tasks' death rule
(fraction >= 0.9) is ``D >= D_lethal``; the fluid the tasks see is the retained excess
``V + O``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.physiology import cardiovascular, perfusion, reynolds2006
from sepsisim_jax.physiology.cardiovascular import VOLUME_RANGE
from sepsisim_jax.physiology.interface import ModelFeature, Treatment
from sepsisim_jax.physiology.lactate import ADMISSION_LACTATE_RANGE, LACTATE_RANGE
from sepsisim_jax.physiology.noise import Draws, NoiseParams
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.perfusion import LactateKineticsParams, RenalParams
from sepsisim_jax.physiology.reynolds2006 import ReynoldsParams, ReynoldsState
from sepsisim_jax.physiology.solver import Integrator

_ASSUMED = "modelling assumption"
_DOBREVA = "after Dobreva et al., J Physiol 2021 (NO lowers systemic resistance)"
_NE = "BioGears norepinephrine Emax model (Hill 1.8); Oualha et al., Br J Clin Pharmacol 2014"
_LEAK = "calibrated to Ernest et al., Crit Care Med 1999 (about 25% intravascular in sepsis)"
DAMAGE_FRACTION_AT_DEATH = 0.9  # the tasks' death rule, on the reported fraction


@struct.dataclass
class CirculationParams:
    """The lumped circulation and its couplings to inflammation."""

    map_baseline: float = param(85.0, 70.0, 100.0, "mmHg", "normal adult MAP")
    vasodilation_max: float = param(0.45, 0.1, 0.7, "fraction of MAP_0", _DOBREVA + "; " + _ASSUMED)
    vasodilation_half: float = param(0.3, 0.1, 1.0, "units N*", _DOBREVA + "; " + _ASSUMED)
    volume_map_gain: float = param(
        60.0, 20.0, 100.0, "mmHg/L", "calibrated to +7-8 mmHg after 500 mL (Glassford et al. 2014)"
    )
    volume_saturation: float = param(
        5.0, 0.0, 20.0, "1/L", "Frank-Starling plateau above normal volume; " + _ASSUMED
    )
    vaso_emax: float = param(32.0, 10.0, 50.0, "mmHg", _NE + " (32 mmHg, <= 3 organ failures)")
    vaso_ec50: float = param(
        0.16, 0.05, 0.5, "mcg/kg/min", "BioGears EC50 8 ug/L at clearance 20 mL/min/kg"
    )
    vaso_hill: float = param(1.8, 1.0, 3.0, "dimensionless", "BioGears norepinephrine")
    vaso_resistance_half: float = param(
        0.48, 0.2, 1.0, "units N*", "Emax 32 -> 12 mmHg with organ failures (Oualha 2014)"
    )
    leak_rate: float = param(
        2.0, 0.5, 4.0, "1/h", "crystalloid distribution, Hahn 2020; " + _ASSUMED
    )
    leak_damage_gain: float = param(1.0, 0.0, 4.0, "1/(units D)", _LEAK)
    leak_depletion: float = param(
        0.3, 0.0, 1.0, "L", "plasma lost to capillary leak at high damage; " + _ASSUMED
    )
    leak_depletion_half: float = param(4.0, 1.0, 10.0, "units D", _ASSUMED)
    excretion_rate: float = param(
        0.05, 0.01, 0.2, "1/h", "renal and lymphatic removal of oedema; " + _ASSUMED
    )
    autoregulation_map: float = param(
        65.0, 55.0, 75.0, "mmHg", "Maheshwari et al. 2018 (harm below MAP 65)"
    )
    hypoperfusion_damage: float = param(
        1.0, 0.0, 4.0, "units D/h", "damage at zero perfusion pressure; " + _ASSUMED
    )
    overload_threshold: float = param(
        5.0, 2.0, 10.0, "L", "oedema above which lungs fail; " + _ASSUMED
    )
    overload_damage: float = param(0.1, 0.0, 1.0, "units D/h per L", _ASSUMED)


@struct.dataclass
class CoupledParams:
    """Everything that defines a v1 patient."""

    reynolds: ReynoldsParams = struct.field(default_factory=ReynoldsParams)
    circulation: CirculationParams = struct.field(default_factory=CirculationParams)
    lactate: LactateKineticsParams = struct.field(default_factory=LactateKineticsParams)
    kidney: RenalParams = struct.field(default_factory=RenalParams)
    noise: NoiseParams = struct.field(default_factory=NoiseParams)
    dt: float = param(1.0, 0.25, 4.0, "h", "one decision per hour, as v0", per_patient=False)
    initial_pathogen: float = param(
        1.25, 0.5, 2.5, "10^6 cells/cc", "Reynolds 2006 scenarios; Pulse infection severity"
    )
    # The same for every patient: a threshold drawn per patient made death partly a coin
    # toss independent of the course; patients differ by how their damage evolves.
    lethal_damage: float = param(
        10.0,
        5.0,
        15.0,
        "units D",
        "between the healthy peak (3.3) and the death state (17.4); " + _ASSUMED,
        per_patient=False,
    )

    @property
    def bacteria_max(self) -> float:
        """``P`` never exceeds the carrying capacity (admission loads are below its range)."""
        return self.reynolds.p_inf


@struct.dataclass
class CoupledODE:
    """The integrated state: inflammation, the fluid leaked into the tissues, lactate."""

    inflammation: ReynoldsState
    interstitial: jax.Array  # L
    lactate: jax.Array  # mmol/L


@struct.dataclass
class Drive:
    """Treatment held constant over a step."""

    fluid_rate: jax.Array  # L/h
    vaso_dose: jax.Array  # mcg/kg/min
    pathogen_kill: jax.Array  # 1/h


@struct.dataclass
class CoupledState:
    """v1 patient after a step; the fields the tasks read match the v0 patient's."""

    ode: CoupledODE
    plasma: jax.Array  # L from normal, at the end of the step
    vaso_dose: jax.Array
    map_mmhg: jax.Array  # observed (with noise)
    lactate: jax.Array  # the state's, mmol/L
    urine: jax.Array  # observed (with noise)
    damage: jax.Array  # 0.9 D / D_lethal, at most 1
    volume: jax.Array  # retained excess fluid V + O, L

    @property
    def bacteria(self) -> jax.Array:
        return self.ode.inflammation.pathogen


def plasma_volume(damage: jax.Array, fluid_rate: jax.Array, c: CirculationParams) -> jax.Array:
    """Quasi-steady plasma volume deviation (L) at ``damage`` under an infusion (L/h)."""
    d = jnp.maximum(damage, 0.0)
    depleted = -c.leak_depletion * d / (d + c.leak_depletion_half)
    return depleted + fluid_rate / (c.leak_rate * (1.0 + c.leak_damage_gain * d))


def true_map(
    phagocytes: jax.Array, plasma: jax.Array, vaso_dose: jax.Array, c: CirculationParams
) -> jax.Array:
    """Noise-free MAP (mmHg) from ``N*``, plasma volume and dose, clipped to the MAP range."""
    n = jnp.maximum(phagocytes, 0.0)
    tone = c.map_baseline * (1.0 - c.vasodilation_max * n / (n + c.vasodilation_half))
    volume = c.volume_map_gain * plasma / (1.0 + c.volume_saturation * jnp.maximum(plasma, 0.0))
    dose = jnp.maximum(vaso_dose, 0.0) ** c.vaso_hill
    response = dose / (c.vaso_ec50**c.vaso_hill + dose)
    vaso = c.vaso_emax / (1.0 + n / c.vaso_resistance_half) * response
    return jnp.clip(tone + volume + vaso, *cardiovascular.MAP_RANGE)


def vector_field(t: jax.Array, y: CoupledODE, args: tuple[CoupledParams, Drive]) -> CoupledODE:
    """Right-hand side of the coupled ODE; elementwise in every leaf."""
    del t
    p, drive = args
    c, infl = p.circulation, y.inflammation
    plasma = plasma_volume(infl.damage, drive.fluid_rate, c)
    map_mmhg = true_map(infl.phagocytes, plasma, drive.vaso_dose, c)
    injury = c.hypoperfusion_damage * jnp.maximum(
        0.0, 1.0 - map_mmhg / c.autoregulation_map
    ) + c.overload_damage * jnp.maximum(0.0, y.interstitial - c.overload_threshold)
    return CoupledODE(
        inflammation=reynolds2006.rates(infl, p.reynolds, drive.pathogen_kill, injury),
        interstitial=drive.fluid_rate - c.excretion_rate * y.interstitial,
        lactate=perfusion.lactate_rate(
            y.lactate, map_mmhg, infl.phagocytes, infl.damage, p.lactate
        ),
    )


def damage_fraction(y: CoupledODE, p: CoupledParams) -> jax.Array:
    """Reported tissue damage ``0.9 D / D_lethal``, clipped to [0, 1]."""
    return jnp.clip(DAMAGE_FRACTION_AT_DEATH * y.inflammation.damage / p.lethal_damage, 0.0, 1.0)


def _observe(
    y: CoupledODE,
    drive: Drive,
    p: CoupledParams,
    map_z: jax.Array,
    urine_z: jax.Array,
    dtype: jnp.dtype,
) -> CoupledState:
    """The state seen after ``y``: the noisy MAP and urine output are observations; every
    other field is a function of ``y`` and the treatment alone."""
    cast = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    infl = y.inflammation
    plasma = plasma_volume(infl.damage, drive.fluid_rate, p.circulation)
    map_true = true_map(infl.phagocytes, plasma, drive.vaso_dose, p.circulation)
    map_mmhg = jnp.clip(map_true + p.noise.map_noise_sd * map_z, *cardiovascular.MAP_RANGE)
    urine_noise = p.noise.urine_noise_sd * urine_z
    return CoupledState(
        ode=jax.tree.map(cast, y),
        plasma=cast(plasma),
        vaso_dose=cast(drive.vaso_dose),
        map_mmhg=cast(map_mmhg),
        lactate=cast(y.lactate),
        urine=cast(perfusion.urine_output(map_true, infl.damage, urine_noise, p.kidney)),
        damage=cast(damage_fraction(y, p)),
        volume=cast(jnp.clip(plasma + y.interstitial, *VOLUME_RANGE)),
    )


def admit(
    params: CoupledParams,
    volume: jax.Array,
    vaso_dose: jax.Array,
    draws: Draws,
    dtype: jnp.dtype,
) -> CoupledState:
    """Admission at the onset of infection: jittered ``P0`` into a resting host at normal plasma
    volume, with the lactate of that state (production balancing clearance) times the
    admission jitter; fluid given before admission (``volume``, L) has already leaked into the
    tissues."""
    noise = params.noise
    pathogen = params.initial_pathogen * (1.0 + noise.admission_jitter * draws.bacteria_u)
    inflammation = reynolds2006.initial_state(params.reynolds, pathogen, dtype)
    dose = jnp.asarray(vaso_dose, dtype)
    c = params.circulation
    map_true = true_map(
        inflammation.phagocytes, plasma_volume(inflammation.damage, 0.0, c), dose, c
    )
    resting = perfusion.steady_lactate(
        map_true, inflammation.phagocytes, inflammation.damage, params.lactate
    )
    lactate = jnp.clip(
        resting * (1.0 + noise.admission_jitter * draws.lactate_u), *ADMISSION_LACTATE_RANGE
    )
    y = CoupledODE(
        inflammation=inflammation,
        interstitial=jnp.asarray(volume, dtype),
        lactate=jnp.asarray(lactate, dtype),
    )
    zero = jnp.zeros((), dtype)
    drive = Drive(zero, dose, zero)
    return _observe(y, drive, params, draws.admission_map_z, draws.admission_urine_z, dtype)


def advance(
    state: CoupledState,
    params: CoupledParams,
    integrate: Integrator,
    treatment: Treatment,
    draws: Draws,
) -> CoupledState:
    """One step of ``params.dt`` hours: integrate the coupled ODE, then observe (the MAP of the
    step's last moment, its infusion still running)."""
    dtype = state.map_mmhg.dtype
    dt = jnp.asarray(params.dt, dtype)
    drive = Drive(
        fluid_rate=jnp.asarray(treatment.fluid_ml, dtype) / 1000.0 / dt,
        vaso_dose=jnp.asarray(treatment.vaso_dose, dtype),
        pathogen_kill=jnp.asarray(treatment.antibiotic_efficacy, dtype),
    )
    y = integrate(state.ode, params, drive, dt)
    y = y.replace(
        inflammation=reynolds2006.clip_state(y.inflammation),
        lactate=jnp.clip(y.lactate, *LACTATE_RANGE),
    )
    return _observe(y, drive, params, draws.map_z, draws.urine_z, dtype)


# The hidden state v1 reports in ``info`` besides the shared state (bounds from the params).
INFO_FEATURES = (
    ModelFeature(
        "phagocytes",
        "activated phagocytes N*",
        "",
        0.0,
        lambda p: p.reynolds.s_nr / p.reynolds.mu_n,  # R / (mu_nr + R) < 1
        lambda s: s.ode.inflammation.phagocytes,
    ),
    ModelFeature(
        "anti_inflammatory",
        "anti-inflammatory mediator C_A",
        "",
        0.0,
        lambda p: (p.reynolds.s_c + p.reynolds.k_cn) / p.reynolds.mu_c,
        lambda s: s.ode.inflammation.anti_inflammatory,
    ),
    ModelFeature(
        "reynolds_damage",
        "tissue damage D",
        "",
        0.0,
        float("inf"),
        lambda s: s.ode.inflammation.damage,
    ),
    ModelFeature(
        "leaked_fluid",
        "fluid leaked into tissues",
        "L",
        0.0,
        float("inf"),
        lambda s: s.ode.interstitial,
    ),
)
