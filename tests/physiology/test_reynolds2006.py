"""The reduced acute inflammatory response model of Reynolds et al. (2006), as published.

The curated fates of BIOMD0000000714 over 2,000 h, the fixed-step default against the adaptive
solver, the vector field against a numpy transcription of the paper's equations, batching and
gradients through the package integrator, and the parameter table.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sepsisim_jax.physiology.parameters import param_specs, validate_params
from sepsisim_jax.physiology.reynolds2006 import (
    SCENARIOS,
    ReynoldsParams,
    ReynoldsState,
    clip_state,
    initial_state,
    rates,
    vector_field,
)
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator

PARAMS = ReynoldsParams()
ADAPTIVE = SolverConfig(name="dopri5")
FIXED = SolverConfig()  # the default: rk4, 2 substeps per step

# Table 1 of Reynolds et al. (2006), typed from the paper (k_pg is 0.6 in the septic scenario).
PUBLISHED = {
    "k_pm": 0.6,
    "k_mp": 0.01,
    "s_m": 0.005,
    "mu_m": 0.002,
    "k_pg": 0.3,
    "p_inf": 20.0,
    "k_pn": 1.8,
    "k_np": 0.1,
    "k_nn": 0.01,
    "s_nr": 0.08,
    "mu_nr": 0.12,
    "mu_n": 0.05,
    "k_nd": 0.02,
    "k_dn": 0.35,
    "x_dn": 0.06,
    "mu_d": 0.02,
    "c_inf": 0.28,
    "s_c": 0.0125,
    "k_cn": 0.04,
    "k_cnd": 48.0,
    "mu_c": 0.1,
}

# (P, N*, D, C_A) at 2,000 h from an independent diffrax Dopri5 solve at rtol 1e-8, float64,
# quoted to three or four significant digits; every fate is a stable steady state by then.
AT_2000_H = {
    "health": (0.0, 0.0, 0.0, 0.125),
    "aseptic death": (0.0, 0.635, 17.40, 0.523),
    "septic death": (4.936, 0.981, 17.49, 0.523),
}


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def _as_array(state: ReynoldsState) -> np.ndarray:
    """``(..., 4)`` array of (P, N*, D, C_A)."""
    return np.stack([np.asarray(leaf) for leaf in jax.tree.leaves(state)], axis=-1)


def _run(k_pg, p0, dt, config: SolverConfig, steps: int, clip: bool = False) -> ReynoldsState:
    """States after each of ``steps`` steps of length ``dt`` from ``P0`` into a resting host."""
    integrate = make_integrator(config, vector_field)
    params = PARAMS.replace(k_pg=k_pg)
    dt = jnp.asarray(dt)
    kill = jnp.zeros_like(dt)

    def step(y, _):
        y = integrate(y, params, kill, dt)
        y = clip_state(y) if clip else y
        return y, y

    _, ys = jax.lax.scan(step, initial_state(params, p0, dt.dtype), length=steps)
    return ys


_trajectory = jax.jit(_run, static_argnames=("config", "steps", "clip"))


@functools.cache
def _course(scenario: str, config: SolverConfig, dt: float, hours: int) -> np.ndarray:
    """``(hours / dt, 4)`` float64 course of a curated scenario, computed once per session."""
    k_pg, p0 = SCENARIOS[scenario]
    steps = round(hours / dt)
    return _as_array(_trajectory(k_pg, p0, dt, config=config, steps=steps))


def _fates(final: np.ndarray) -> tuple[bool, bool]:
    """(tissue damage persists, pathogen persists) of a final (P, N*, D, C_A)."""
    return bool(final[2] > 5.0), bool(final[0] > 1.0)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_curated_scenarios_reach_their_fates_over_2000_hours(scenario):
    course = _course(scenario, ADAPTIVE, 10.0, 2000)
    final = course[-1]
    pathogen, phagocytes, damage, anti = final
    if scenario == "health":
        np.testing.assert_allclose([pathogen, phagocytes, damage], 0.0, atol=1e-6)
        np.testing.assert_allclose(anti, PARAMS.s_c / PARAMS.mu_c, rtol=1e-6)
    elif scenario == "aseptic death":
        assert abs(pathogen) < 1e-6
        assert abs(damage - 17.4) < 0.5
    else:
        assert abs(pathogen - 4.94) < 0.1
        assert abs(damage - 17.5) < 0.5
    np.testing.assert_allclose(final, AT_2000_H[scenario], rtol=5e-4, atol=1e-3)
    # The fate holds: the state no longer moves and the field vanishes there.
    np.testing.assert_allclose(course[-2], final, atol=1e-6)
    k_pg = SCENARIOS[scenario][0]
    field = rates(ReynoldsState(*final), PARAMS.replace(k_pg=k_pg))
    np.testing.assert_allclose(_as_array(field), 0.0, atol=1e-7)


def test_fixed_step_default_tracks_the_adaptive_solver_over_96_hours():
    worst = {}
    for scenario in SCENARIOS:
        fixed = _course(scenario, FIXED, 1.0, 96)
        adaptive = _course(scenario, ADAPTIVE, 1.0, 96)
        # Hourly error of each state relative to that state's peak over the 96 h.
        scale = np.max(np.abs(adaptive), axis=0)
        worst[scenario] = np.max(np.abs(fixed - adaptive) / scale)
    # Measured: health 8.4e-4 (in D), aseptic death 2.9e-4 (in P),
    # septic death 2.4e-4 (in P); the adaptive solver itself is within 1.5e-6 (absolute) of scipy
    # DOP853 at rtol 1e-12 on the same equations.
    assert max(worst.values()) < 3e-3, worst


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_fixed_step_default_keeps_every_fate_over_2000_hours(scenario):
    fixed = _course(scenario, FIXED, 1.0, 2000)[-1]
    adaptive = _course(scenario, ADAPTIVE, 10.0, 2000)[-1]
    expected = {"health": (False, False), "aseptic death": (True, False)}
    assert _fates(fixed) == _fates(adaptive) == expected.get(scenario, (True, True))
    np.testing.assert_allclose(fixed, adaptive, atol=1e-6)


def _published_rates(y: np.ndarray, p: dict, kill: np.ndarray, injury: np.ndarray) -> np.ndarray:
    """Equations (1)-(4) of Reynolds et al. (2006), plus an extra kill of P and source of D."""
    pathogen, phagocytes, damage, anti = np.moveaxis(y, -1, 0)

    def f(v):
        return v / (1.0 + (anti / p["c_inf"]) ** 2)

    r = f(p["k_nn"] * phagocytes + p["k_np"] * pathogen + p["k_nd"] * damage)
    dp = (
        p["k_pg"] * pathogen * (1.0 - pathogen / p["p_inf"])
        - p["k_pm"] * p["s_m"] * pathogen / (p["mu_m"] + p["k_mp"] * pathogen)
        - p["k_pn"] * f(phagocytes) * pathogen
        - kill * pathogen
    )
    dn = p["s_nr"] * r / (p["mu_nr"] + r) - p["mu_n"] * phagocytes
    hill = f(phagocytes) ** 6
    dd = p["k_dn"] * hill / (p["x_dn"] ** 6 + hill) - p["mu_d"] * damage + injury
    g = f(phagocytes + p["k_cnd"] * damage)
    dc = p["s_c"] + p["k_cn"] * g / (1.0 + g) - p["mu_c"] * anti
    return np.stack([dp, dn, dd, dc], axis=-1)


def test_vector_field_matches_the_published_equations():
    rng = np.random.Generator(np.random.PCG64(7))
    n = 256
    # Positive states over the range the fates visit, and every parameter drawn in its range.
    y = rng.uniform(0.0, [8.0, 1.2, 20.0, 0.6], size=(n, 4))
    specs = param_specs(PARAMS)
    drawn = {name: rng.uniform(s.low, s.high, n) for name, s in specs.items()}
    params = ReynoldsParams(**{name: jnp.asarray(v) for name, v in drawn.items()})
    kill, injury = rng.uniform(0.0, 1.0, n), rng.uniform(0.0, 0.5, n)
    state = ReynoldsState(*(jnp.asarray(y[:, i]) for i in range(4)))

    ours = _as_array(rates(state, params, jnp.asarray(kill), jnp.asarray(injury)))
    np.testing.assert_allclose(ours, _published_rates(y, drawn, kill, injury), rtol=1e-12)
    field = _as_array(vector_field(0.0, state, (params, jnp.asarray(kill))))
    np.testing.assert_allclose(field, _published_rates(y, drawn, kill, 0.0), rtol=1e-12)
    untreated = _as_array(rates(state, params))
    np.testing.assert_allclose(untreated, _published_rates(y, drawn, 0.0, 0.0), rtol=1e-12)
    # The inputs act only through their own terms.
    np.testing.assert_allclose(ours[:, 0], untreated[:, 0] - kill * y[:, 0], rtol=1e-10)
    np.testing.assert_allclose(ours[:, 2], untreated[:, 2] + injury, rtol=1e-10)
    np.testing.assert_array_equal(ours[:, [1, 3]], untreated[:, [1, 3]])


def test_a_negative_pathogen_is_read_as_zero():
    state = ReynoldsState(*(jnp.asarray(v) for v in (-0.2, 0.3, 2.0, 0.2)))
    at_zero = ReynoldsState(*(jnp.asarray(v) for v in (0.0, 0.3, 2.0, 0.2)))
    ours = _as_array(rates(state, PARAMS, 0.5))
    assert ours[0] == 0.0
    np.testing.assert_array_equal(ours, _as_array(rates(at_zero, PARAMS, 0.5)))


@pytest.mark.parametrize("config", [FIXED, ADAPTIVE], ids=["rk4", "dopri5"])
def test_jit_vmap_over_initial_pathogen_equals_each_patient_alone(config):
    p0 = jnp.array([0.25, 0.5, 1.0, 1.5, 2.0])
    run = functools.partial(_run, 0.3, dt=1.0, config=config, steps=48)
    batched = _as_array(jax.jit(jax.vmap(run))(p0))
    assert batched.shape == (5, 48, 4)
    for i, p in enumerate(np.asarray(p0)):
        alone = _as_array(_trajectory(0.3, p, 1.0, config=config, steps=48))
        np.testing.assert_allclose(batched[i], alone, rtol=1e-12, atol=1e-15)
    # The batch really holds different patients: damage at 48 h grows with the inoculum.
    assert np.all(np.diff(batched[:, -1, 2]) > 0)


def _damage_at_48_hours(k_pg, p0):
    return _run(k_pg, p0, 1.0, FIXED, 48).damage[-1]


_damage_and_gradient = jax.jit(jax.value_and_grad(_damage_at_48_hours))
_damage = jax.jit(_damage_at_48_hours)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_gradient_of_damage_at_48_hours_wrt_pathogen_growth(scenario):
    k_pg, p0 = SCENARIOS[scenario]
    value, grad = _damage_and_gradient(k_pg, p0)
    np.testing.assert_allclose(value, _damage(k_pg, p0), rtol=1e-12)
    h = 1e-5
    numeric = (_damage(k_pg + h, p0) - _damage(k_pg - h, p0)) / (2 * h)
    assert np.isfinite(grad) and grad > 0.0
    np.testing.assert_allclose(grad, numeric, rtol=1e-6)


def test_clip_state_floors_every_state_at_zero():
    rng = np.random.Generator(np.random.PCG64(3))
    y = rng.uniform(-1.0, 1.0, size=(64, 4))
    clipped = _as_array(clip_state(ReynoldsState(*(jnp.asarray(y[:, i]) for i in range(4)))))
    np.testing.assert_array_equal(clipped, np.maximum(y, 0.0))
    # Over a full health course, clipped after every step, P never goes below zero (the adaptive
    # solver undershoots it slightly as the infection clears) and the fate is unchanged.
    k_pg, p0 = SCENARIOS["health"]
    course = _as_array(_trajectory(k_pg, p0, 10.0, config=ADAPTIVE, steps=200, clip=True))
    assert np.min(course[:, 0]) >= 0.0
    np.testing.assert_allclose(course[-1], AT_2000_H["health"], atol=1e-6)


def test_every_parameter_has_its_published_default_inside_its_range():
    specs = param_specs(PARAMS)
    names = [field.name for field in dataclasses.fields(ReynoldsParams)]
    assert set(specs) == set(names) == set(PUBLISHED)
    for field in dataclasses.fields(ReynoldsParams):
        spec = specs[field.name]
        assert spec.default == field.default == getattr(PARAMS, field.name)
        assert spec.default == PUBLISHED[field.name], field.name
        assert spec.low <= spec.default <= spec.high, field.name
        assert spec.unit and "Reynolds" in spec.source, field.name
    validate_params(PARAMS)
    for k_pg, _ in SCENARIOS.values():
        validate_params(PARAMS.replace(k_pg=k_pg))
    with pytest.raises(ValueError, match=r"k_pg=5 is outside its range"):
        validate_params(PARAMS.replace(k_pg=5.0))
