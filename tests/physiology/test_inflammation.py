"""The inflammation ODE and its diffrax integration: vector field, accuracy, order, vmap, grad."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from sepsisim.models.inflammation import InflammationModel

from sepsisim_jax.physiology.inflammation import (
    InflammationParams,
    InflammationState,
    initial_state,
    vector_field,
)
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator

PARAMS = InflammationParams()


def _state(values: np.ndarray) -> InflammationState:
    return InflammationState(*(jnp.asarray(values[..., i]) for i in range(4)))


def _as_array(state: InflammationState) -> np.ndarray:
    return np.stack([np.asarray(leaf) for leaf in jax.tree.leaves(state)], axis=-1)


@pytest.fixture
def states() -> np.ndarray:
    """Random states covering the region episodes visit, some slightly negative.

    Over 72 h of random treatment at hard severity, trajectories stay within B <= 0.8,
    M <= 1.05, A <= 2.8 and D <= 0.9.
    """
    rng = np.random.Generator(np.random.PCG64(1))
    return rng.uniform([-0.05, -0.05, -0.05, -0.05], [1.0, 1.2, 3.0, 1.0], size=(64, 4))


def test_vector_field_matches_reference(states):
    with jax.enable_x64(True):
        ref = InflammationModel(antibiotic_efficacy=0.5)
        ours = _as_array(vector_field(0.0, _state(states), (PARAMS, 0.5)))
        expected = np.stack([ref.derivatives(0.0, s) for s in states])
        np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


def _scipy_solution(states: np.ndarray, antibiotic: float, dt: float) -> np.ndarray:
    ref = InflammationModel(antibiotic_efficacy=antibiotic)
    return np.stack(
        [
            solve_ivp(ref.derivatives, (0, dt), s, method="DOP853", rtol=1e-12, atol=1e-14).y[:, -1]
            for s in states
        ]
    )


@functools.cache
def _visited_states(n: int) -> np.ndarray:
    """Inflammation states that episodes reach: SepsisManagement, hard, random treatment."""
    import sepsisim_jax
    from sepsisim_jax.cohort.rollout import trajectories
    from sepsisim_jax.policies import random_policy

    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    traj = trajectories(env, params, random_policy(env), jax.random.key(0), n_patients=n)
    infl = traj.state.patient.inflammation
    steps = np.random.Generator(np.random.PCG64(2)).integers(0, 72, n)
    return np.stack([np.asarray(leaf)[steps, np.arange(n)] for leaf in jax.tree.leaves(infl)], -1)


@pytest.mark.parametrize(("solver", "tolerance"), [("rk4", 2e-4), ("dopri5", 1e-6)])
def test_one_hour_matches_high_accuracy_reference(solver, tolerance):
    states = _visited_states(64).astype(np.float64)
    with jax.enable_x64(True):
        integrate = make_integrator(SolverConfig(name=solver), vector_field)
        ours = jax.vmap(integrate, in_axes=(0, None, None, None))(
            _state(states), PARAMS, jnp.asarray(0.5), jnp.asarray(1.0)
        )
        expected = _scipy_solution(states, 0.5, 1.0)
        np.testing.assert_allclose(_as_array(ours), expected, rtol=tolerance, atol=tolerance)


def test_rk4_converges_with_fourth_order(states):
    states = np.abs(states[:8])
    with jax.enable_x64(True):
        expected = _scipy_solution(states, 0.5, 1.0)
        errors = []
        for substeps in (2, 4, 8):
            integrate = make_integrator(SolverConfig(substeps=substeps), vector_field)
            out = integrate(_state(states), PARAMS, jnp.asarray(0.5), jnp.asarray(1.0))
            errors.append(np.max(np.abs(_as_array(out) - expected)))
        orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
        assert np.all(orders > 3.5), orders


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
def test_vmap_equals_one_patient_at_a_time(states, solver):
    states = np.abs(states[:16]).astype(np.float32)
    integrate = make_integrator(SolverConfig(name=solver), vector_field)
    abx = jnp.linspace(0.0, 1.0, 16)
    batched = jax.jit(jax.vmap(integrate, in_axes=(0, None, 0, None)))(
        _state(states), PARAMS, abx, jnp.asarray(1.0, jnp.float32)
    )
    single = jax.jit(integrate)
    for i in (0, 7, 15):
        alone = single(_state(states[i]), PARAMS, abx[i], jnp.asarray(1.0, jnp.float32))
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], batched), alone, rtol=1e-6, atol=1e-7
        )


def test_nested_vmap_and_batched_params_and_batched_dt(states):
    states = np.abs(states[:12]).reshape(3, 4, 4).astype(np.float32)
    integrate = make_integrator(SolverConfig(), vector_field)
    k_dm = jnp.array([0.3, 0.5, 0.7])
    dt = jnp.array([0.5, 1.0, 2.0], jnp.float32)

    def one(y, k, dt):
        return integrate(y, PARAMS.replace(k_dm=k), jnp.asarray(0.5, jnp.float32), dt)

    nested = jax.vmap(jax.vmap(one, in_axes=(0, None, None)), in_axes=(0, 0, 0))
    out = jax.jit(nested)(_state(states), k_dm, dt)
    assert out.damage.shape == (3, 4)
    for i in range(3):
        for j in (0, 3):
            alone = one(_state(states[i, j]), k_dm[i], dt[i])
            np.testing.assert_allclose(out.damage[i, j], alone.damage, rtol=1e-6)


@pytest.mark.slow
def test_gradient_matches_finite_differences():
    integrate = make_integrator(SolverConfig(), vector_field)

    def damage(k_dm, abx):
        p = PARAMS.replace(k_dm=k_dm)
        y = integrate(y0, p, abx, jnp.asarray(1.0))
        return integrate(y, p, abx, jnp.asarray(1.0)).damage

    with jax.enable_x64(True):
        y0 = initial_state(PARAMS, jnp.asarray(0.5), jnp.float64)
        grad = jax.jit(jax.grad(damage, argnums=(0, 1)))(0.5, 0.3)
        damage = jax.jit(damage)
        h = 1e-6
        numeric = (
            (damage(0.5 + h, 0.3) - damage(0.5 - h, 0.3)) / (2 * h),
            (damage(0.5, 0.3 + h) - damage(0.5, 0.3 - h)) / (2 * h),
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5)
        per_patient = jax.jit(jax.vmap(jax.grad(damage), in_axes=(0, None)))(
            jnp.array([0.4, 0.5]), 0.3
        )
        np.testing.assert_allclose(per_patient[1], grad[0], rtol=1e-10)


def test_solver_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown solver"):
        SolverConfig(name="euler")
    with pytest.raises(ValueError, match="substeps"):
        SolverConfig(substeps=0)
