"""The v1 coupled model: circulation, couplings to inflammation, gradients and extreme inputs.

Each coupling is checked against the equations of the :mod:`sepsisim_jax.physiology.coupled`
docstring, and with the couplings switched off the inflammation part of the vector field
must be the published Reynolds (2006) model exactly.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sepsisim_jax.physiology import coupled, perfusion, reynolds2006, sofa
from sepsisim_jax.physiology.cardiovascular import MAP_RANGE, VOLUME_RANGE
from sepsisim_jax.physiology.coupled import CirculationParams, CoupledODE, CoupledParams, Drive
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.lactate import LACTATE_RANGE
from sepsisim_jax.physiology.models import tier_point
from sepsisim_jax.physiology.noise import Draws, NoiseParams, draw
from sepsisim_jax.physiology.parameters import replace_params
from sepsisim_jax.physiology.reynolds2006 import ReynoldsParams, ReynoldsState
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator
from sepsisim_jax.physiology.virtual_patients import per_patient_fields

CIRC = CirculationParams()
INTEGRATE = make_integrator(SolverConfig(), coupled.vector_field)
N_STAR = np.linspace(0.0, 1.5, 61)  # activated phagocytes, beyond the 0.98 of septic death


def _medium_patient(**overrides) -> CoupledParams:
    """The medium v1 tier (as the environments admit it), noise off, ``overrides`` by name."""
    p0, k_pg = tier_point("medium")
    params = CoupledParams(
        reynolds=ReynoldsParams(k_pg=k_pg),
        initial_pathogen=p0,
        noise=NoiseParams(map_noise_sd=0.0, urine_noise_sd=0.0, admission_jitter=0.0),
    )
    return replace_params(params, **overrides) if overrides else params


def _zero_draws(dtype) -> Draws:
    zero = jnp.zeros((), dtype)
    return Draws(zero, zero, zero, zero, zero, zero)


def _random_states(n: int, seed: int) -> CoupledODE:
    """Positive states over the range the model visits, float64."""
    rng = np.random.Generator(np.random.PCG64(seed))
    p, n_star, d, c_a = rng.uniform(0.0, [10.0, 1.2, 20.0, 0.6], size=(n, 4)).T
    leaked, lactate = rng.uniform([0.0, 0.5], [12.0, 15.0], size=(n, 2)).T
    return CoupledODE(
        inflammation=ReynoldsState(*(jnp.asarray(x) for x in (p, n_star, d, c_a))),
        interstitial=jnp.asarray(leaked),
        lactate=jnp.asarray(lactate),
    )


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


# --- the circulation --------------------------------------------------------------------------


@pytest.mark.parametrize("plasma", [-0.3, 0.0, 0.5])
@pytest.mark.parametrize("dose", [0.0, 0.1, 2.0])
def test_map_falls_as_activated_phagocytes_rise(plasma, dose):
    map_mmhg = np.asarray(coupled.true_map(jnp.asarray(N_STAR), plasma, dose, CIRC))
    assert np.all(np.diff(map_mmhg) < 0.0), map_mmhg
    # Unclipped over this grid: the fall is the model's, not the MAP range's.
    assert MAP_RANGE[0] < map_mmhg.min() and map_mmhg.max() < MAP_RANGE[1]
    # Deep vasodilation: at N* -> infinity the tone term tends to MAP_0 (1 - g_no).
    far = float(coupled.true_map(1e6, 0.0, 0.0, CIRC))
    np.testing.assert_allclose(far, CIRC.map_baseline * (1 - CIRC.vasodilation_max), rtol=1e-5)


def test_map_rises_with_dose_saturating_at_emax_and_the_response_weakens_with_n_star():
    dose = jnp.linspace(0.0, 2.0, 81)
    n = jnp.asarray(N_STAR)[:, None]
    with_dose = np.asarray(coupled.true_map(n, 0.0, dose[None, :], CIRC))
    dose_free = np.asarray(coupled.true_map(n, 0.0, 0.0, CIRC))
    response = with_dose - dose_free
    assert np.all(np.diff(with_dose, axis=1) > 0.0)  # more drug, more pressure
    assert np.all(response[:, 0] == 0.0)
    assert np.all(response <= CIRC.vaso_emax)  # Emax saturation
    # The Emax model of the docstring, term for term.
    hill = np.asarray(dose) ** CIRC.vaso_hill
    occupancy = hill / (CIRC.vaso_ec50**CIRC.vaso_hill + hill)
    emax = CIRC.vaso_emax / (1.0 + N_STAR / CIRC.vaso_resistance_half)
    np.testing.assert_allclose(response, emax[:, None] * occupancy[None, :], rtol=1e-10)
    # At the maximal dose the response is within 2% of its ceiling in a healthy patient...
    assert response[0, -1] > 0.98 * CIRC.vaso_emax
    # ...and vasodilatory shock blunts it: the response falls with N* at every dose.
    assert np.all(np.diff(response[:, 1:], axis=0) < 0.0)
    assert response[-1, -1] < 0.3 * CIRC.vaso_emax


def test_plasma_volume_falls_with_damage_and_rises_with_infusion():
    damage = jnp.linspace(0.0, 20.0, 81)[:, None]
    rate = jnp.linspace(0.0, 1.0, 11)[None, :]  # L/h
    volume = np.asarray(coupled.plasma_volume(damage, rate, CIRC))
    assert np.all(np.diff(volume, axis=0) < 0.0)  # leak and depletion grow with damage
    assert np.all(np.diff(volume, axis=1) > 0.0)
    assert volume[0, 0] == 0.0  # healthy and not infused: normal volume
    # Without infusion it tends to the depleted level -d_leak D / (D + x_leak) >= -d_leak.
    expected = -CIRC.leak_depletion * damage[:, 0] / (damage[:, 0] + CIRC.leak_depletion_half)
    np.testing.assert_allclose(volume[:, 0], expected, rtol=1e-12)
    assert np.all(volume[:, 0] > -CIRC.leak_depletion)


@pytest.mark.parametrize("dt", [0.5, 1.0, 2.0])
def test_quasi_steady_fraction_of_an_infusion_still_in_the_vessels(dt):
    """The docstring's quasi-steady plasma volume V = V_eq(D) + u / k(D), k(D) = k_leak
    (1 + a_leak D): a bolus infused over ``dt`` hours leaves the fraction 1 / (k(D) dt) of
    itself in the vessels at the end of the step."""
    damage = jnp.asarray([0.0, 0.5, 1.0, 3.0, 10.0])
    bolus = 0.5  # L
    at_rest = coupled.plasma_volume(damage, 0.0, CIRC)
    retained = (coupled.plasma_volume(damage, bolus / dt, CIRC) - at_rest) / bolus
    k = CIRC.leak_rate * (1.0 + CIRC.leak_damage_gain * np.asarray(damage))
    np.testing.assert_allclose(retained, 1.0 / (k * dt), rtol=1e-12)
    if dt == 1.0:
        # The calibration target: about a quarter of an hour's crystalloid stays in the
        # vessels of a septic patient (Ernest et al. 1999), here at D = 1.
        np.testing.assert_allclose(retained[2], 0.25, rtol=1e-12)


# --- couplings of circulation and inflammation -----------------------------------------------


def _field(y: CoupledODE, params: CoupledParams, fluid=0.0, dose=0.0, kill=0.0) -> CoupledODE:
    drive = Drive(*(jnp.broadcast_to(jnp.asarray(v, jnp.float64), y.interstitial.shape)
                    for v in (fluid, dose, kill)))  # fmt: skip
    return coupled.vector_field(0.0, y, (params, drive))


def test_hypoperfusion_adds_damage_in_proportion_to_the_pressure_deficit():
    params = _medium_patient()
    c = params.circulation
    y = _random_states(512, seed=1)
    y = y.replace(interstitial=jnp.minimum(y.interstitial, c.overload_threshold - 0.1))
    fluid = jnp.linspace(0.0, 1.0, 512)
    field = _field(y, params, fluid=fluid)
    base = reynolds2006.rates(y.inflammation, params.reynolds)
    map_mmhg = coupled.true_map(
        y.inflammation.phagocytes,
        coupled.plasma_volume(y.inflammation.damage, fluid, c),
        0.0,
        c,
    )
    extra = np.asarray(field.inflammation.damage - base.damage)
    low = np.asarray(map_mmhg < c.autoregulation_map)
    assert 50 < low.sum() < 500  # both regimes are sampled
    assert c.autoregulation_map == 65.0
    expected = c.hypoperfusion_damage * (1.0 - np.asarray(map_mmhg) / 65.0)
    np.testing.assert_allclose(extra[low], expected[low], rtol=1e-9, atol=1e-12)
    assert np.all(extra[low] > 0.0)
    np.testing.assert_array_equal(extra[~low], 0.0)  # autoregulated: no extra damage
    # Only the damage equation feels it.
    for name in ("pathogen", "phagocytes", "anti_inflammatory"):
        np.testing.assert_array_equal(
            getattr(field.inflammation, name), getattr(base, name), err_msg=name
        )


def test_fluid_overload_adds_damage_only_above_its_threshold():
    params = _medium_patient()
    c = params.circulation
    leaked = jnp.linspace(0.0, 12.0, 121)
    healthy = ReynoldsState(*(jnp.full_like(leaked, v) for v in (0.0, 0.0, 0.0, 0.125)))
    y = CoupledODE(inflammation=healthy, interstitial=leaked, lactate=jnp.ones_like(leaked))
    # N* = 0: MAP is 85 mmHg or more, so the only extra damage is the overload term.
    field = _field(y, params)
    extra = np.asarray(
        field.inflammation.damage - reynolds2006.rates(healthy, params.reynolds).damage
    )
    above = np.asarray(leaked) > c.overload_threshold
    np.testing.assert_array_equal(extra[~above], 0.0)
    np.testing.assert_allclose(
        extra[above], c.overload_damage * (np.asarray(leaked)[above] - c.overload_threshold)
    )
    assert np.all(extra[above] > 0.0)
    # The leaked fluid itself: all infused fluid enters, a fraction k_ex leaves per hour.
    infused = _field(y, params, fluid=0.4)
    np.testing.assert_allclose(infused.interstitial, 0.4 - c.excretion_rate * leaked, rtol=1e-12)


def test_antibiotic_kill_reduces_pathogen_growth_by_k_times_p():
    params = _medium_patient()
    y = _random_states(256, seed=2)
    for kill in (0.05, 0.2, 1.0):
        treated = _field(y, params, fluid=0.3, dose=0.1, kill=kill)
        untreated = _field(y, params, fluid=0.3, dose=0.1)
        np.testing.assert_allclose(
            treated.inflammation.pathogen - untreated.inflammation.pathogen,
            -kill * np.asarray(y.inflammation.pathogen),
            rtol=1e-9,
            atol=1e-12,
        )
        for name in ("phagocytes", "damage", "anti_inflammatory"):
            np.testing.assert_array_equal(
                getattr(treated.inflammation, name), getattr(untreated.inflammation, name)
            )


def test_with_the_couplings_off_inflammation_is_the_published_model_exactly():
    rng = np.random.Generator(np.random.PCG64(3))
    n = 256
    # Every per-patient parameter drawn anywhere in its range, then the couplings switched off.
    fields = per_patient_fields(CoupledParams())
    drawn = {f.name: jnp.asarray(rng.uniform(f.spec.low, f.spec.high, n)) for f in fields}
    drawn |= {"hypoperfusion_damage": 0.0, "overload_damage": 0.0}
    params = replace_params(CoupledParams(), **drawn)
    y = _random_states(n, seed=4)
    field = _field(y, params)
    published = reynolds2006.rates(y.inflammation, params.reynolds)
    for name in ("pathogen", "phagocytes", "damage", "anti_inflammatory"):
        np.testing.assert_array_equal(
            getattr(field.inflammation, name), getattr(published, name), err_msg=name
        )
    np.testing.assert_allclose(
        field.interstitial, -params.circulation.excretion_rate * y.interstitial, rtol=1e-12
    )
    # Switched on, the same states and patients do get extra damage (the check can fail).
    on = _field(y, replace_params(params, hypoperfusion_damage=1.0, overload_damage=0.1))
    assert np.any(on.inflammation.damage != published.damage)


# --- lactate and urine output: readouts of the noise-free state ------------------------------


def test_lactate_is_produced_by_hypoperfusion_and_inflammation_and_cleared_by_the_liver():
    params = _medium_patient()
    c, lac = params.circulation, params.lactate
    y = _random_states(512, seed=5)
    fluid = jnp.linspace(0.0, 1.0, 512)
    field = _field(y, params, fluid=fluid, dose=0.05)
    infl = y.inflammation
    map_mmhg = np.asarray(
        coupled.true_map(infl.phagocytes, coupled.plasma_volume(infl.damage, fluid, c), 0.05, c)
    )
    n_star, damage, lactate = (np.asarray(x) for x in (infl.phagocytes, infl.damage, y.lactate))
    assert 50 < np.sum(map_mmhg < 65.0) < 500  # both regimes are sampled
    production = 4.0 * np.maximum(0.0, 1.0 - map_mmhg / 65.0) + 1.2 * n_star
    clearance = 0.3 * np.minimum(1.0, map_mmhg / 65.0) / (1.0 + damage / 5.0)
    assert (lac.hypoperfusion_production, lac.inflammatory_production) == (4.0, 1.2)
    expected = production - clearance * (lactate - 1.0)
    np.testing.assert_allclose(field.lactate, expected, rtol=1e-9, atol=1e-12)
    # The patient's death threshold is not an input: drawing another leaves lactate alone.
    other = _field(y, replace_params(params, lethal_damage=6.0), fluid=fluid, dose=0.05)
    np.testing.assert_array_equal(other.lactate, field.lactate)
    # The steady state is where production balances clearance.
    steady = perfusion.steady_lactate(map_mmhg, n_star, damage, lac)
    rate = perfusion.lactate_rate(steady, map_mmhg, n_star, damage, lac)
    np.testing.assert_allclose(rate, 0.0, atol=1e-12)


def test_urine_output_is_normal_in_health_and_falls_with_pressure_and_kidney_injury():
    kidney = CoupledParams().kidney
    map_mmhg = jnp.asarray([85.0, 75.0, 60.0, 45.0, 30.0])
    healthy = np.asarray(perfusion.urine_output(map_mmhg, 0.0, 0.0, kidney))
    np.testing.assert_allclose(healthy, [1.0, 1.0, 0.5, 0.0, 0.0], rtol=1e-12)
    injured = np.asarray(perfusion.urine_output(map_mmhg, 4.0, 0.0, kidney))
    np.testing.assert_allclose(injured, healthy / 2.0, rtol=1e-12)
    # Noise is added to the output, which stays in its range.
    noisy = perfusion.urine_output(map_mmhg, 0.0, jnp.asarray([0.5, -0.1, 0, 0, -0.1]), kidney)
    np.testing.assert_allclose(noisy, [1.5, 0.9, 0.5, 0.0, 0.0], rtol=1e-12)


def test_a_healthy_admission_scores_no_sofa_point_and_its_lactate_is_the_states_own():
    params = _medium_patient()
    state = coupled.admit(params, 0.0, 0.0, _zero_draws(jnp.float64), jnp.float64)
    assert float(state.map_mmhg) == pytest.approx(85.0, abs=0.5)
    assert float(state.lactate) == 1.0  # a resting host: production 0, the baseline
    assert float(state.urine) == 1.0
    assert int(sofa.sofa_score(state.map_mmhg, 0.0, state.urine, state.lactate)) == 0
    # Admission jitter scales the state's lactate; the ODE carries the same value.
    jittered = replace_params(params, admission_jitter=0.2)
    draws = _zero_draws(jnp.float64).replace(lactate_u=jnp.asarray(0.5))
    state = coupled.admit(jittered, 0.0, 0.0, draws, jnp.float64)
    assert float(state.lactate) == pytest.approx(1.1) and state.ode.lactate == state.lactate


def test_measurement_noise_changes_the_observations_and_never_the_state():
    """The same treatment course with the MAP and urine noise on and off: every state leaf
    (the ODE, lactate, plasma, damage) is bit-identical, the observed MAP and urine differ."""
    quiet = _medium_patient()
    noisy = replace_params(quiet, map_noise_sd=5.0, urine_noise_sd=0.2)
    keys = jax.random.split(jax.random.key(7), 24)
    fluid = jnp.asarray([500.0, 250.0, 0.0, 100.0] * 6)
    dose = jnp.linspace(0.0, 0.4, 24)

    @jax.jit
    def course(params):
        dtype = jnp.float64
        state = coupled.admit(params, 0.0, 0.0, draw(keys[0], dtype), dtype)

        def body(state, xs):
            key, f, d = xs
            state = coupled.advance(
                state, params, INTEGRATE, Treatment(f, d, 0.2), draw(key, dtype)
            )
            return state, state

        return jax.lax.scan(body, state, (keys, fluid, dose))[1]

    a, b = course(quiet), course(noisy)
    for leaf_a, leaf_b in zip(
        jax.tree.leaves((a.ode, a.lactate, a.plasma, a.damage, a.volume)),
        jax.tree.leaves((b.ode, b.lactate, b.plasma, b.damage, b.volume)),
        strict=True,
    ):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    assert np.all(a.map_mmhg != b.map_mmhg) and np.mean(a.urine != b.urine) > 0.5
    assert np.ptp(np.asarray(a.lactate)) > 0.1  # lactate does move over the course


# --- jit, vmap and gradients through advance() ------------------------------------------------


def _final_damage(fluid_ml, dose, params: CoupledParams, hours: int = 24):
    """Reynolds damage D after ``hours`` one-hour steps of a constant treatment."""
    dtype = jnp.result_type(float)
    draws = _zero_draws(dtype)
    state = coupled.admit(params, 0.0, 0.0, draws, dtype)

    def body(state, _):
        treatment = Treatment(fluid_ml, dose, 0.0)
        return coupled.advance(state, params, INTEGRATE, treatment, draws), None

    state, _ = jax.lax.scan(body, state, length=hours)
    return state.ode.inflammation.damage


@functools.cache
def _compiled():
    """Final damage vmapped over (fluid, dose) pairs, and its value and gradient w.r.t. both
    for one pair (a vmapped gradient compiles four times as long), jitted once."""
    params = _medium_patient()

    def damage(fluid, dose):
        return _final_damage(fluid, dose, params)

    return jax.jit(jax.vmap(damage)), jax.jit(jax.value_and_grad(damage, argnums=(0, 1)))


def test_grad_of_final_damage_wrt_fluid_and_dose_matches_central_differences():
    batched_value, value_and_grad = _compiled()

    def value(fluid, dose):
        return np.asarray(batched_value(fluid, dose))

    # Constant fluid (mL/h) and dose for the medium tier: hypotensive courses (hypoperfusion
    # damage), one held above the autoregulation MAP (none) and one fluid overload (500 mL/h
    # leaks 7 L in 24 h). Doses are positive: at zero, d^h has a one-sided difference
    # quotient of order h^0.8.
    fluid = jnp.asarray([0.0, 100.0, 250.0, 0.0, 100.0, 500.0])
    dose = jnp.asarray([0.02, 0.02, 0.05, 0.1, 0.2, 0.02])
    damage, d_fluid, d_dose = np.asarray(
        [jax.tree.leaves(value_and_grad(f, d)) for f, d in zip(fluid, dose, strict=True)]
    ).T
    np.testing.assert_allclose(damage, value(fluid, dose), rtol=1e-12)  # jit, vmap alike
    assert np.all(np.isfinite(d_fluid)) and np.all(np.isfinite(d_dose))
    h_fluid, h_dose = 1e-2, 1e-5
    numeric_fluid = (value(fluid + h_fluid, dose) - value(fluid - h_fluid, dose)) / (2 * h_fluid)
    numeric_dose = (value(fluid, dose + h_dose) - value(fluid, dose - h_dose)) / (2 * h_dose)
    # Central differences of a smooth float64 solve: error O(h^2) plus rounding ~1e-10.
    np.testing.assert_allclose(d_fluid, numeric_fluid, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(d_dose, numeric_dose, rtol=1e-5, atol=1e-9)
    # While MAP is below 65 mmHg both treatments protect the tissues; held above it, neither
    # changes the damage (that of inflammation alone); overload makes more fluid harmful.
    assert np.all(d_fluid[:4] < 0.0) and np.all(d_dose[:4] < 0.0)
    assert d_fluid[4] == 0.0 and d_dose[4] == 0.0
    assert d_fluid[5] > 0.0 and d_dose[5] < 0.0
    assert np.all(damage > 5.0)


# --- extreme inputs ---------------------------------------------------------------------------


def _corner_patients(n: int, seed: int) -> CoupledParams:
    """``n`` patients with every per-patient parameter at the low or high end of its range
    (first all low, then all high, then random corners), every leaf float32 of shape (n,)."""
    fields = per_patient_fields(CoupledParams())
    rng = np.random.Generator(np.random.PCG64(seed))
    high = rng.integers(0, 2, size=(n, len(fields))).astype(bool)
    high[0], high[1] = False, True
    values = {f.name: np.where(high[:, i], f.spec.high, f.spec.low) for i, f in enumerate(fields)}
    # Validated in float64, then cast (float32 rounds 1.2 up, past its declared bound).
    params = replace_params(CoupledParams(), **values)
    return jax.tree.map(lambda leaf: jnp.full((n,), leaf, jnp.float32), params)


def test_72_hours_of_extreme_treatment_at_the_edges_of_the_parameter_ranges_stay_finite():
    with jax.enable_x64(False):
        n_patients = 48
        params = _corner_patients(n_patients, seed=5)
        # Fluid (mL/h), dose, antibiotic kill rate (1/h; on is the top of the task's range)
        # and fluid given before admission (L, the largest volume a state holds or none).
        regimes = jnp.asarray(
            [
                [1000.0, 2.0, 1.0, 10.0],
                [1000.0, 2.0, 0.0, 10.0],
                [1000.0, 0.0, 0.0, 0.0],
                [0.0, 2.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
                [0.0, 0.0, 1.0, 0.0],
            ],
            jnp.float32,
        )

        def course(params, regime, key):
            """Every state value after each of 72 steps, as one ``(72, n_values)`` array."""
            draws = jax.vmap(lambda k: draw(k, jnp.float32))(jax.random.split(key, 73))
            first = jax.tree.map(lambda x: x[0], draws)
            state = coupled.admit(params, regime[3], regime[1], first, jnp.float32)

            def body(state, d):
                treatment = Treatment(regime[0], regime[1], regime[2])
                new = coupled.advance(state, params, INTEGRATE, treatment, d)
                return new, jnp.stack(jax.tree.leaves(new))

            return jax.lax.scan(body, state, jax.tree.map(lambda x: x[1:], draws))[1]

        # Every patient under every regime: one flat batch (patient-major).
        n_regimes = len(regimes)
        batch_params = jax.tree.map(lambda leaf: jnp.repeat(leaf, n_regimes), params)
        batch_regimes = jnp.tile(regimes, (n_patients, 1))
        keys = jax.random.split(jax.random.key(0), n_patients * n_regimes)
        values = np.asarray(jax.jit(jax.vmap(course))(batch_params, batch_regimes, keys))
        values = values.reshape(n_patients, n_regimes, 72, -1)
        first = jax.tree.map(lambda x: x[0], batch_params)
        layout = jax.eval_shape(
            lambda: coupled.admit(first, 0.0, 0.0, _zero_draws(jnp.float32), jnp.float32)
        )
        names = [
            jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(layout)
        ]
        assert len(names) == values.shape[-1]

        def column(name: str) -> np.ndarray:
            return values[..., names.index(name)]

        for i, name in enumerate(names):
            assert np.all(np.isfinite(values[..., i])), name
        for name in (".ode.inflammation.pathogen", ".ode.inflammation.phagocytes",
                     ".ode.inflammation.damage", ".ode.inflammation.anti_inflammatory",
                     ".ode.interstitial"):  # fmt: skip
            assert column(name).min() >= 0.0, name
        p_inf = np.asarray(params.reynolds.p_inf)[:, None, None]
        assert np.all(column(".ode.inflammation.pathogen") <= 1.0001 * p_inf)
        for name, (low, high) in (
            (".map_mmhg", MAP_RANGE),
            (".lactate", LACTATE_RANGE),
            (".volume", VOLUME_RANGE),
            (".damage", (0.0, 1.0)),
        ):
            assert low <= column(name).min() and column(name).max() <= high, name
        # The leaked fluid follows dO/dt = u - k_ex O from its admission value: 1 L/h for
        # 72 h leaves at least 5 L in the tissues (u / k_ex at the fastest excretion).
        k_ex = np.asarray(params.circulation.excretion_rate)[:, None]
        u, leaked0 = np.asarray(regimes[:, 0]) / 1000.0, np.asarray(regimes[:, 3])
        expected = u / k_ex + (leaked0 - u / k_ex) * np.exp(-k_ex * 72.0)
        np.testing.assert_allclose(column(".ode.interstitial")[..., -1], expected, rtol=1e-4)
        assert np.all(expected[:, :3] > 4.99)
        # Some patients reach the lethal damage, others (antibiotic, no shock) do not.
        final = column(".damage")[..., -1]
        assert final.max() >= 0.9 and final.min() < 0.9
