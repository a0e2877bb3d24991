"""Planning and fitting by gradients: a schedule's return is the rollouts' return, its gradient
is the finite differences', the planner improves on its start, the fit recovers the truth; the
smoothed rewards are an option that leaves the default env as it was."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.cohort.rollout import rollout_episodes
from sepsisim_jax.envs.rewards import (
    RewardSmoothing,
    lactate_reward,
    map_band_reward,
    urine_reward,
)
from sepsisim_jax.planning import (
    fit_patient,
    optimize_schedule,
    schedule_returns,
    simulate_observations,
    trajectory_error,
)
from tests.conftest import NOISELESS

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("planning")

KEY = jax.random.key(11)
HORIZON = 8  # hours: untreated hard v0 patients die within it (damage 0.9 by hour 6)
N = 3
FIT_TOLERANCE = 1e-3  # relative error of each recovered parameter on noise-free data
NARROW = RewardSmoothing(map_mmhg=1e-6, lactate=1e-6, urine=1e-6, damage=1e-6)


@pytest.fixture(scope="module")
def hard():
    return sepsisim_jax.make("SepsisManagement-v0", severity="hard")


@pytest.fixture(scope="module")
def schedule(hard):
    """Random fluids and dose changes, no antibiotic: the patients die within the horizon."""
    env, _ = hard
    rng = np.random.default_rng(0)
    actions = rng.uniform(env.action_low, env.action_high, (HORIZON, 3)).astype(np.float32)
    actions[:, 2] = 0.0
    return jnp.asarray(actions)


def test_a_schedule_returns_what_the_rollouts_give_a_policy_playing_it(hard, schedule):
    env, params = hard
    step = env.observation_index("step")

    def play(key, obs, params):
        return schedule[jnp.minimum(obs[step].astype(jnp.int32), HORIZON - 1)]

    planned = schedule_returns(env, params, KEY, jnp.broadcast_to(schedule, (N, *schedule.shape)))
    rolled = rollout_episodes(env, params, play, KEY, N, HORIZON)
    np.testing.assert_array_equal(np.asarray(planned), np.asarray(rolled.returns))
    assert not np.all(np.asarray(rolled.survived))  # rewards after a death are masked alike
    assert len(set(np.asarray(planned).tolist())) == N  # different patients, different returns


@pytest.fixture(scope="module")
def fit_case():
    """A noise-free hard v0 patient, its observed trajectory and a start 20-30% off the truth."""
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard", **NOISELESS)
    hours = np.arange(HORIZON)
    # Alternating boluses against a rising dose: fluid and vasopressor effects on MAP separate.
    actions = np.stack([1000.0 * (hours % 2 == 0), np.full(HORIZON, 0.1), np.ones(HORIZON)], 1)
    actions = jnp.asarray(actions, jnp.float32)
    truth = {"fluid_map_gain": 8.0, "vaso_map_gain": 15.0, "k_growth": 0.6, "clearance_rate": 0.3}
    start = dict(zip(truth, (10.4, 11.25, 0.75, 0.24), strict=True))
    observed = simulate_observations(env, params, KEY, actions)
    return env, sepsisim_jax.replace_params(params, **start), actions, observed, truth, start


@pytest.mark.slow
def test_gradients_match_central_finite_differences(fit_case):
    """The fit's gradient, through the dynamics and the ODE solve (``k_growth`` acts on the
    bacteria only), against central differences of the same float32 error."""
    env, model, actions, observed, _, start = fit_case

    def error(values):
        return trajectory_error(env, model, KEY, actions, observed, values)

    _, grad = error(start)
    for i, (name, value) in enumerate(start.items()):
        eps = 1e-2 * value
        up, _ = error(start | {name: value + eps})
        down, _ = error(start | {name: value - eps})
        central = float(up - down) / (2 * eps)
        assert grad[i] != 0.0, name
        np.testing.assert_allclose(grad[i], central, rtol=2e-3, err_msg=name)


@pytest.mark.slow
def test_the_planner_improves_the_return_over_its_initial_schedule(hard):
    env, params = hard
    hours = (0, HORIZON)  # at admission, or never: never lets the patients die
    plan = optimize_schedule(env, params, KEY, HORIZON, 40, n_patients=N, switch_hours=hours)
    initial, final = np.asarray(plan.initial_return), np.asarray(plan.final_return)
    assert np.all(final >= initial) and np.mean(final - initial) > 1.0, (initial, final)
    np.testing.assert_array_equal(np.asarray(plan.switch_hour), 0)
    schedule = np.asarray(plan.schedule)
    assert schedule.shape == (N, HORIZON, 3)
    assert np.all((schedule >= env.action_low) & (schedule <= env.action_high))
    np.testing.assert_array_equal(schedule[..., 2], 1.0)
    returns = np.asarray(plan.returns)
    assert returns.shape == (41, N) and plan.objective.shape == (40, N)
    np.testing.assert_allclose(returns[0], initial, rtol=1e-5)  # other batch, last bits apart
    np.testing.assert_allclose(returns.max(axis=0), final, rtol=1e-5)


@pytest.mark.slow
def test_the_fit_recovers_known_parameters_on_noise_free_data(fit_case):
    env, model, actions, observed, truth, start = fit_case
    fit = fit_patient(
        env, model, KEY, actions, observed, tuple(truth), truth=truth, steps=200, progress=False
    )
    np.testing.assert_allclose(np.asarray(fit.start), list(start.values()))
    assert np.all(np.abs(np.asarray(fit.start) / list(truth.values()) - 1) >= 0.2)
    assert np.max(np.asarray(fit.relative_error)) < FIT_TOLERANCE, fit.rows()
    assert fit.loss[-1] < 1e-6 * fit.loss[0]
    assert [row["parameter"] for row in fit.rows()] == list(truth)


def test_fit_patient_refuses_unknown_parameters_and_virtual_patients(hard):
    env, params = hard
    actions = jnp.zeros((2, 3))
    observed = jnp.zeros((3, len(env.observation_names)))
    with pytest.raises(ValueError, match=r"unknown: \['k_grow'\]\); valid names: .*k_growth"):
        fit_patient(env, params, KEY, actions, observed, ["k_grow"])
    with pytest.raises(ValueError, match="valid names"):
        fit_patient(env, params, KEY, actions, observed, ["dt"])  # not a patient's property
    with pytest.raises(ValueError, match="outside its range"):
        fit_patient(env, params, KEY, actions, observed, ["k_growth"], start={"k_growth": 5.0})
    with pytest.raises(ValueError, match="observations must have shape"):
        fit_patient(env, params, KEY, actions, observed[:2], ["k_growth"])
    spread, spread_params = sepsisim_jax.make("SepsisManagement-v0", patient_spread=0.2)
    with pytest.raises(ValueError, match="without virtual patients"):
        fit_patient(spread, spread_params, KEY, actions, observed, ["k_growth"])


def test_optimize_schedule_refuses_bad_arguments(hard):
    env, params = hard
    with pytest.raises(ValueError, match="exceeds the episode length"):
        optimize_schedule(env, params, KEY, 73, 1)
    with pytest.raises(ValueError, match="switch_hours"):
        optimize_schedule(env, params, KEY, 4, 1, switch_hours=(0, 5))
    with pytest.raises(ValueError, match="init must have shape"):
        optimize_schedule(env, params, KEY, 4, 1, init=jnp.zeros((3, 3)))
    with pytest.raises(TypeError, match="smoothing"):
        optimize_schedule(env, params, KEY, 4, 1, smoothing=0.1)
    fluids, fluid_params = sepsisim_jax.make("FluidResuscitation-v0")
    with pytest.raises(ValueError, match="no switch component"):
        optimize_schedule(fluids, fluid_params, KEY, 4, 1, switch_hours=(0,))


def test_smoothing_is_an_option_that_leaves_the_default_env_as_it_was(hard):
    env, _ = hard
    assert env.reward_smoothing is None
    assert env.with_smoothed_rewards(None) == env
    assert hash(env.with_smoothed_rewards(None)) == hash(env)
    smoothed = env.with_smoothed_rewards()
    assert smoothed != env and env.reward_smoothing is None
    assert "RewardSmoothing" in repr(smoothed) and "RewardSmoothing" not in repr(env)
    with pytest.raises(ValueError, match="map_mmhg"):
        RewardSmoothing(map_mmhg=0.0)
    with pytest.raises(TypeError, match="smoothing"):
        env.with_smoothed_rewards(2.0)


@pytest.mark.parametrize("hypertension", [False, True])
def test_the_smoothed_reward_terms_tend_to_the_reference_terms(hypertension):
    """Away from the thresholds, narrow steps give the reference's values; at a threshold the
    smoothed term is the mean of the two sides, and its slope is not zero."""
    band = {"upper": 85.0, "bonus": 2.0, "floor": 55.0, "gain": 1.5, "divisor": 10.0}
    band["penalise_hypertension"] = hypertension
    edges = np.array([55.0, 65.0, 85.0, 100.0])
    grid = np.linspace(30.0, 140.0, 1101)
    grid = grid[np.min(np.abs(grid[:, None] - edges), axis=1) > 0.05]
    lactate = np.array([0.5, 1.9, 2.1, 3.0, 6.0])
    urine = np.array([0.1, 0.49, 0.51, 1.0])
    smooth = RewardSmoothing()  # 2 mmHg: the floor's step (10 mmHg away) is 0.7% short

    @jax.jit
    def terms(grid, lactate, urine):
        def smoothed(map_mmhg):
            return map_band_reward(map_mmhg, **band, smoothing=smooth)

        return {
            "map": (map_band_reward(grid, **band, smoothing=NARROW), map_band_reward(grid, **band)),
            "lactate": (lactate_reward(lactate, NARROW), lactate_reward(lactate)),
            "urine": (urine_reward(urine, NARROW), urine_reward(urine)),
            "at_65": smoothed(65.0),
            "slopes": jax.vmap(jax.grad(smoothed))(jnp.asarray([65.0, 75.0])),
        }

    out = terms(grid, lactate, urine)
    for name in ("map", "lactate", "urine"):
        np.testing.assert_allclose(*out[name], atol=1e-6, err_msg=name)
    np.testing.assert_allclose(out["at_65"], (0.0 + 2.0) / 2, atol=0.03)
    assert out["slopes"][0] > 0.1  # a gradient where the reference's step has none
    assert abs(out["slopes"][1]) < 1e-2  # flat inside the band, as the reference
