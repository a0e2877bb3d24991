"""Off-policy evaluation on logged episodes with a known truth: unbiased estimators agree with
the simulator, the estimators reduce to each other where theory says so, masks and support."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import ope, plotting
from sepsisim_jax.offline.episodes import policy_value, record_episodes
from sepsisim_jax.stochastic import deterministic, epsilon_greedy, gaussian

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("ope")

N = 2000  # logged episodes
N_TRUTH = 20000  # episodes of the evaluation policy's true value
HORIZON = 10  # steps: short, so that the weights stay usable
GAMMA = 0.99
FQE = ope.FQEConfig(hidden_sizes=(32, 32))  # 2 x 10 iterations of 100 steps


def untreated(key, obs, params):
    """No fluid, no vasopressor change, no antibiotic: on hard, most patients die early."""
    del key, obs, params
    return jnp.zeros(3)


@pytest.fixture(scope="module")
def setting():
    env, params = sepsisim_jax.make(
        "SepsisManagement-v0", severity="hard", max_steps_in_episode=HORIZON
    )
    behaviour = gaussian(env, untreated, 0.3, "untreated")
    target = gaussian(env, untreated, 0.25, "untreated")  # less fluid on average
    logged = record_episodes(env, params, behaviour, jax.random.key(0), N, progress=False)
    return env, params, behaviour, target, logged


@pytest.fixture(scope="module")
def truth(setting):
    env, params, _, target, _ = setting
    return policy_value(
        env, params, target, jax.random.key(1), N_TRUTH, gamma=GAMMA, progress=False
    )


@pytest.fixture(scope="module")
def results(setting):
    _, params, behaviour, target, logged = setting
    return ope.evaluate_all(
        logged, target, params, GAMMA, jax.random.key(2), behaviour=behaviour, fqe_config=FQE
    )


def test_unbiased_estimators_agree_with_the_simulators_truth(setting, truth, results):
    logged = setting[-1]
    naive = logged.returns(GAMMA)
    naive_se = naive.std() / np.sqrt(N)
    # Off-policy for real: the behaviour's own mean return is far from the target's value.
    assert abs(naive.mean() - truth.discounted) > 5 * np.hypot(naive_se, truth.discounted_se)
    for name in ("IS", "PDIS", "DR"):  # unbiased (DR nearly: FQE is fitted on the same data)
        result = results[name]
        assert result.se_method == "analytic" and result.se > 0
        tolerance = 3 * np.hypot(result.se, truth.discounted_se)
        assert abs(result.estimate - truth.discounted) < tolerance, (name, result, truth)
    for name in ("WIS", "PDWIS", "WDR"):  # consistent, bootstrap standard errors
        result = results[name]
        assert result.se_method == "bootstrap" and result.se > 0
        tolerance = 3 * np.hypot(result.se, truth.discounted_se)
        assert abs(result.estimate - truth.discounted) < tolerance, (name, result, truth)
    assert results["DR"].se < results["PDIS"].se  # the model removes variance
    diagnostics = results["IS"].diagnostics
    assert 0.1 * N < diagnostics.ess < N and diagnostics.nonzero_fraction == 1.0
    assert diagnostics.max_weight > 1.0 and abs(diagnostics.mean_weight - 1.0) < 0.1


def test_fqe_recovers_the_value_on_and_off_policy(setting, truth, results):
    _, params, behaviour, _, logged = setting
    # Off-policy (the target on the behaviour's data): within 5% of the simulator's value.
    assert abs(results["FQE"].estimate - truth.discounted) < 0.05 * abs(truth.discounted)
    assert np.isnan(results["FQE"].se) and results["FQE"].se_method == "none"
    # On-policy: within 5% of the data's own mean return.
    fit = ope.fit_fqe(logged, behaviour, params, GAMMA, jax.random.key(3), FQE)
    mean_return = logged.returns(GAMMA).mean()
    assert abs(fit.estimate - mean_return) < 0.05 * abs(mean_return)
    assert fit.losses.shape == (2 * HORIZON,) and fit.losses[-1] < fit.losses[0]
    assert np.all(fit.values.q[~logged.mask[:, :HORIZON]] == 0.0)


def test_on_policy_weights_are_one_and_importance_sampling_is_the_mean_return(setting):
    _, params, behaviour, _, logged = setting
    weights = ope.importance_weights(logged, behaviour, params)
    assert np.all(weights.log_ratio == 0.0) and np.all(weights.log_weight == 0.0)
    mean_return = logged.returns(GAMMA).mean()
    for estimator in (
        ope.importance_sampling,
        ope.weighted_importance_sampling,
        ope.per_decision_importance_sampling,
        ope.per_decision_weighted_importance_sampling,
    ):
        result = estimator(logged, behaviour, params, GAMMA)
        np.testing.assert_allclose(result.estimate, mean_return, rtol=1e-12)
        assert result.diagnostics.ess == pytest.approx(N, rel=1e-12)
        assert result.diagnostics.max_weight == 1.0


def test_weighted_estimators_of_a_constant_return_give_that_constant(setting):
    _, params, _, target, logged = setting
    rewards = np.zeros_like(logged.rewards)
    rewards[:, 0] = 7.0  # every episode's return is 7, whatever happens later
    constant = logged.replace(rewards=rewards)
    for estimator in (
        ope.weighted_importance_sampling,
        ope.per_decision_weighted_importance_sampling,
    ):
        assert estimator(constant, target, params, GAMMA).estimate == pytest.approx(7.0, rel=1e-12)
    # Ordinary IS scales by the mean weight instead, which is not exactly 1.
    ordinary = ope.importance_sampling(constant, target, params, GAMMA)
    assert ordinary.estimate != pytest.approx(7.0, rel=1e-6)
    assert ordinary.estimate == pytest.approx(7.0 * ordinary.diagnostics.mean_weight, rel=1e-12)


def test_doubly_robust_with_a_zero_model_is_per_decision_importance_sampling(setting):
    _, params, _, target, logged = setting
    zeros = np.zeros((N, HORIZON))
    model = ope.QValues(q=zeros, v=zeros)
    pairs = (
        (ope.doubly_robust, ope.per_decision_importance_sampling),
        (ope.weighted_doubly_robust, ope.per_decision_weighted_importance_sampling),
    )
    for dr, per_decision in pairs:
        with_zero = dr(logged, target, params, GAMMA, q_values=model)
        np.testing.assert_allclose(
            with_zero.estimate, per_decision(logged, target, params, GAMMA).estimate, rtol=1e-12
        )
    with pytest.raises(ValueError, match=r"q_values\.q and q_values\.v must have shape"):
        ope.doubly_robust(
            logged, target, params, GAMMA, q_values=ope.QValues(q=zeros[:, :3], v=zeros)
        )
    with pytest.raises(ValueError, match="or a key to fit FQE"):
        ope.doubly_robust(logged, target, params, GAMMA)


def test_masks_and_shapes_with_early_deaths(setting, results):
    _, params, behaviour, target, logged = setting
    lengths = logged.lengths
    died = logged.terminations.any(axis=1)
    assert np.any(lengths < HORIZON) and np.all(died == (lengths < HORIZON))
    assert np.all(logged.terminations[np.arange(N), lengths - 1] == died)
    weights = ope.importance_weights(logged, target, params)
    assert weights.log_ratio.shape == weights.log_weight.shape == (N, HORIZON)
    after = ~logged.mask[:, :HORIZON]
    assert np.all(weights.log_ratio[after] == 0.0)
    last = weights.log_weight[np.arange(N), lengths - 1]
    np.testing.assert_array_equal(weights.log_trajectory_weight, last)  # held after the end
    # Whatever lies after each episode's end is never read.
    padding = logged.mask == 0
    garbage = logged.replace(
        rewards=np.where(padding, 1e6, logged.rewards),
        actions=np.where(padding[..., None], np.nan, logged.actions),
        log_prob=np.where(padding, np.nan, logged.log_prob),
        observations=logged.observations.copy(),
    )
    garbage.observations[:, HORIZON + 1 :] = np.nan  # never observed: after the last step
    again = ope.evaluate_all(
        garbage, target, params, GAMMA, jax.random.key(2), behaviour=behaviour, fqe_config=FQE
    )
    for name, result in results.items():
        assert again[name].estimate == result.estimate, name


def test_undefined_importance_weights_are_clear_errors(setting):
    env, params, behaviour, _, logged = setting
    point_mass = deterministic(env, untreated, "untreated")
    with pytest.raises(ValueError, match="point masses on actions that the behaviour"):
        ope.importance_sampling(logged, point_mass, params, behaviour=behaviour)
    with pytest.raises(ValueError, match="no logged action lies on one"):
        ope.importance_sampling(logged, point_mass, params)  # found from the data alone
    epsilon = epsilon_greedy(env, untreated, 0.1, "untreated")
    with pytest.raises(ValueError, match="point mass"):
        ope.weighted_importance_sampling(logged, epsilon, params, behaviour=behaviour)
    with pytest.raises(TypeError, match="policy must be a StochasticPolicy"):
        ope.importance_sampling(logged, untreated, params)
    with pytest.raises(ValueError, match="gamma must be a number in"):
        ope.importance_sampling(logged, behaviour, params, gamma=1.5)
    with pytest.raises(TypeError, match="episodes must be an Episodes"):
        ope.importance_sampling({"rewards": logged.rewards}, behaviour, params)
    with pytest.raises(ValueError, match="n_bootstrap must be an int >= 2"):
        ope.weighted_importance_sampling(logged, behaviour, params, n_bootstrap=1)
    with pytest.raises(ValueError, match="steps_per_iteration must be a positive int"):
        ope.FQEConfig(steps_per_iteration=0)


def test_the_error_figure_draws_one_line_per_estimator_and_counts_failures():
    errors = {
        "case": {
            "IS": {100: [1.0, -2.0], 1000: [0.5, np.nan]},
            "WIS": {100: [0.2, -0.1], 1000: [0.05, 0.02]},
        }
    }
    figure = plotting.ope_errors(errors, {"case": 0.01})
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["IS (1 failed)", "WIS", "se of the truth"]
    np.testing.assert_allclose(lines[0].get_ydata(), [np.sqrt(2.5), 0.5])  # RMSE of the finite
    np.testing.assert_allclose(lines[1].get_xdata(), [100, 1000])
    with pytest.raises(ValueError, match="at least one case"):
        plotting.ope_errors({})
