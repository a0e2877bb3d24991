"""Step-by-step parity with the reference sepsisim 0.1.0, noise off on both sides.

The reference computes in float64. Parity is asserted in float64 (``jax_enable_x64``), where
thresholds on values built from float32 actions (a dose of 0.05 + 0.05 against SOFA's 0.1,
say) resolve exactly as in the reference, and in the default float32 mode for random actions.

Tolerances (relative, per observation component, floor 1e-3 on the reference value; rewards
relative to max(|reward|, 1)):
- adaptive solver ("dopri5", the reference's RK45 tolerances): 1e-5
- fixed-step default ("rk4", two steps per hour): 1e-3
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.policies import heuristic_policy
from tests.conftest import NOISELESS

TOLERANCE = {"dopri5": 1e-5, "rk4": 1e-3}
CONSTANT_ACTIONS = {
    "FluidResuscitation-v0": [500.0],
    "VasopressorTitration-v0": [0.03],
    "SepsisManagement-v0": [300.0, 0.03, 1.0],
}


def _relative_error(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-3)


BOUND_SEQUENCES = ("bang-bang", "held-max", "alternating")


def _at_bounds(sequence: str, t: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Actions exactly at the bounds: 3 steps up then 3 down, held at the top, or alternating."""
    upper = {"bang-bang": (t // 3) % 2 == 0, "held-max": True, "alternating": t % 2 == 0}
    return np.asarray(high if upper[sequence] else low, np.float32)


def _run_parity(reference, env_id, severity, solver, sequence, seed=0, **options):
    ref = reference(env_id, severity, **options)
    # Environments that differ only in severity share one compiled step (equal static keys
    # but for severity); the severity's params are passed explicitly.
    env, _ = sepsisim_jax.make(env_id, solver=solver)
    _, params = sepsisim_jax.make(env_id, severity=severity, solver=solver, **NOISELESS, **options)
    policy = heuristic_policy(env)
    rng = np.random.Generator(np.random.PCG64(seed))
    ref_obs, _ = ref.reset(seed=seed)
    obs, state = env.reset(jax.random.key(seed), params)
    np.testing.assert_allclose(np.asarray(obs), ref_obs, rtol=1e-6)
    steps = 0
    for t in range(72):
        if sequence == "constant":
            action = np.asarray(CONSTANT_ACTIONS[env_id], np.float32)
        elif sequence == "random":
            action = rng.uniform(ref.action_space.low, ref.action_space.high).astype(np.float32)
        elif sequence in BOUND_SEQUENCES:
            action = _at_bounds(sequence, t, ref.action_space.low, ref.action_space.high)
        else:
            action = np.asarray(policy(None, obs, params))
            expected = ref_heuristic_action(ref, ref_obs)
            np.testing.assert_array_equal(action, expected, err_msg=f"heuristic at step {t}")
        ref_obs, ref_reward, ref_terminated, _, ref_info = ref.step(action)
        obs, state, reward, terminated, truncated, info = env.step(
            jax.random.key(t), state, jnp.asarray(action), params
        )
        final = np.asarray(info["final_observation"])
        error = _relative_error(final, ref_obs)
        assert error.max() <= TOLERANCE[solver], (
            f"step {t}: component {error.argmax()} ours {final[error.argmax()]} "
            f"reference {ref_obs[error.argmax()]}"
        )
        reward_error = abs(float(reward) - ref_reward) / max(abs(ref_reward), 1.0)
        assert reward_error <= TOLERANCE[solver], (t, float(reward), ref_reward)
        assert bool(terminated) == ref_terminated, t
        assert bool(truncated) == (t == 71 and not ref_terminated)
        for key, value in ref_info.items():
            np.testing.assert_allclose(float(info[key]), float(value), rtol=1e-3, atol=1e-6)
        steps += 1
        if ref_terminated:
            break
    return steps


def ref_heuristic_action(ref, ref_obs):
    from sepsisim.agents.heuristic_agent import HeuristicAgent

    action, _ = HeuristicAgent(ref).predict(ref_obs)
    return action


@pytest.mark.parametrize("solver", ["rk4", "dopri5"])
@pytest.mark.parametrize("sequence", ["constant", "random", "heuristic"])
@pytest.mark.parametrize("severity", sepsisim_jax.SEVERITIES)
@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_parity_float64(noiseless_reference, env_id, severity, sequence, solver):
    with jax.enable_x64(True):
        steps = _run_parity(noiseless_reference, env_id, severity, solver, sequence)
    expected_death = env_id == "VasopressorTitration-v0"
    assert (steps < 72) == expected_death


@pytest.mark.parametrize("sequence", BOUND_SEQUENCES)
@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_parity_float64_actions_at_the_bounds(noiseless_reference, env_id, sequence):
    """Bang-bang and clipped actions: float32 bounds clipped in float32, as the reference."""
    with jax.enable_x64(True):
        for severity in sepsisim_jax.SEVERITIES:
            _run_parity(noiseless_reference, env_id, severity, "rk4", sequence)


OPTIONS = [
    ("FluidResuscitation-v0", {"antibiotic_given": False}),
    ("FluidResuscitation-v0", {"dt": 0.5}),
    ("VasopressorTitration-v0", {"antibiotic_given": False, "fluid_protocol": 0.0}),
    ("VasopressorTitration-v0", {"fluid_protocol": 600.0, "dt": 2.0}),
    ("SepsisManagement-v0", {"dt": 0.25}),
]


@pytest.mark.parametrize(("env_id", "options"), OPTIONS)
def test_parity_float64_reference_constructor_options(noiseless_reference, env_id, options):
    with jax.enable_x64(True):
        for sequence in ("random", "heuristic"):
            _run_parity(noiseless_reference, env_id, "medium", "dopri5", sequence, **options)


@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_parity_float32_random_actions(noiseless_reference, env_id):
    _run_parity(noiseless_reference, env_id, "hard", "rk4", "random", seed=3)


def test_info_keys_match_reference(noiseless_reference):
    gymnax_keys = {"terminated", "truncated", "final_observation"}
    for env_id in sepsisim_jax.REFERENCE_IDS:
        ref = noiseless_reference(env_id, "medium")
        ref.reset(seed=0)
        _, _, _, _, ref_info = ref.step(ref.action_space.sample())
        env, params = sepsisim_jax.make(env_id)
        _, state = env.reset(jax.random.key(0), params)
        info = env.step(jax.random.key(1), state, jnp.zeros(env.num_actions), params)[-1]
        assert set(info) == set(ref_info) | gymnax_keys
        assert env.info_names == tuple(ref_info)


def test_spaces_match_reference(noiseless_reference):
    for env_id in sepsisim_jax.REFERENCE_IDS:
        ref = noiseless_reference(env_id, "medium")
        env, params = sepsisim_jax.make(env_id)
        for ours, theirs in [
            (env.observation_space(params), ref.observation_space),
            (env.action_space(params), ref.action_space),
        ]:
            np.testing.assert_array_equal(np.asarray(ours.low), theirs.low)
            np.testing.assert_array_equal(np.asarray(ours.high), theirs.high)
            assert ours.shape == theirs.shape
