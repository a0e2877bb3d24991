"""Logged episodes: the episodes of the rollouts, whatever the chunking, with their end flags,
hidden state and behaviour densities; the true value is that of the rollouts."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import stochastic
from sepsisim_jax.cohort.rollout import rollout_episodes
from sepsisim_jax.offline.episodes import policy_value, record_episodes
from sepsisim_jax.policies import heuristic_policy

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("episodes")

N = 48
KEY = jax.random.key(11)
EPSILON = 0.5  # hard v0 patients die often under it: episodes of every length


@pytest.fixture(scope="module")
def setting():
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    policy = stochastic.epsilon_greedy(env, heuristic_policy(env), EPSILON, "heuristic")
    return env, params, policy


@pytest.fixture(scope="module")
def episodes(setting):
    env, params, policy = setting
    return record_episodes(env, params, policy, KEY, N, chunk_size=16, progress=False)


def test_the_logged_episodes_are_the_rollouts_episodes_for_every_chunking(setting, episodes):
    env, params, policy = setting
    stats = rollout_episodes(env, params, policy, KEY, N)
    np.testing.assert_array_equal(episodes.lengths, np.asarray(stats.lengths))
    np.testing.assert_allclose(episodes.returns(), np.asarray(stats.returns), rtol=1e-5, atol=1e-3)
    died = episodes.terminations.any(axis=1)
    np.testing.assert_array_equal(died, ~np.asarray(stats.survived))
    assert 0 < died.sum() < N  # deaths and survivors
    # Patient p's episode depends only on KEY and p: 20 patients in chunks of 16 (the same
    # compiled chunk, the second padded) are the first 20 of the 48.
    fewer = record_episodes(env, params, policy, KEY, 20, chunk_size=16, progress=False)
    for name, array in vars(fewer).items():
        jax.tree.map(
            lambda a, b: np.testing.assert_array_equal(a, b[:20]), array, getattr(episodes, name)
        )


def test_episode_boundaries_padding_and_logged_fields(setting, episodes):
    env, _, _ = setting
    steps = np.arange(episodes.actions.shape[1])
    last = steps == episodes.lengths[:, None] - 1
    ended = episodes.terminations | episodes.truncations
    np.testing.assert_array_equal(ended, last)  # one end flag, at the last step
    mask = episodes.mask
    for padded in (episodes.rewards, episodes.log_prob, episodes.actions[..., 0]):
        assert np.all(padded[~mask] == 0)
    seen = np.arange(episodes.observations.shape[1]) <= episodes.lengths[:, None]
    assert np.all(episodes.observations[~seen] == 0)
    assert np.all(episodes.observations[seen].any(axis=-1))
    damage = episodes.infos["tissue_damage"]
    index = env.observation_index("tissue_damage")
    np.testing.assert_allclose(damage[seen], episodes.observations[..., index][seen], rtol=1e-6)
    final = damage[np.arange(N), episodes.lengths]
    np.testing.assert_array_equal(final >= 0.9, episodes.terminations.any(axis=1))
    assert {"bacteria", "tissue_damage"} <= set(episodes.infos)
    atom = episodes.atom[mask]
    np.testing.assert_allclose(episodes.log_prob[mask][atom], np.log(1 - EPSILON), rtol=1e-6)
    assert abs(atom.mean() - (1 - EPSILON)) < 0.05


def test_the_true_value_is_that_of_the_rollouts(setting):
    env, params, policy = setting
    n = N  # the rollout above, compiled once; the value in chunks of 16, gamma traced
    value = policy_value(env, params, policy, KEY, n, gamma=1.0, chunk_size=16, progress=False)
    returns = np.asarray(rollout_episodes(env, params, policy, KEY, n).returns, np.float64)
    assert value.n == n and value.discounted == pytest.approx(value.undiscounted)
    assert value.undiscounted == pytest.approx(returns.mean(), rel=1e-5)
    assert value.undiscounted_se == pytest.approx(returns.std() / np.sqrt(n), rel=1e-4)
    discounted = policy_value(env, params, policy, KEY, n, gamma=0.9, chunk_size=16, progress=False)
    assert abs(discounted.discounted) < abs(value.undiscounted)


def test_bad_requests(setting):
    env, params, policy = setting
    with pytest.raises(TypeError, match="StochasticPolicy"):
        record_episodes(env, params, heuristic_policy(env), KEY, 4)
    with pytest.raises(ValueError, match="n_episodes must be a positive int"):
        record_episodes(env, params, policy, KEY, 0)
    with pytest.raises(ValueError, match="gamma must be a number in"):
        policy_value(env, params, policy, KEY, 4, gamma=1.5)
