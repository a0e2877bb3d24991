"""Cohort rollouts: episode bookkeeping against a step-by-step loop, and reference outcomes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.policies import heuristic_policy, random_policy
from sepsisim_jax.rollout import rollout_episodes, summarize, trajectories


@pytest.mark.parametrize("env_id", sepsisim_jax.ENV_IDS)
def test_episode_stats_agree_with_the_recorded_trajectories(env_id):
    env, params = sepsisim_jax.make(env_id, severity="hard")
    policy = random_policy(env)
    key = jax.random.key(3)
    stats = rollout_episodes(env, params, policy, key, 256)
    traj = trajectories(env, params, policy, key, 256)
    done = np.asarray(traj.terminated | traj.truncated)
    first_end = done.argmax(axis=0)
    lengths = first_end + 1
    rewards = np.asarray(traj.reward)
    returns = np.array([rewards[:n, i].sum() for i, n in enumerate(lengths)])
    died = np.asarray(traj.terminated)[first_end, np.arange(256)]
    np.testing.assert_array_equal(stats.lengths, lengths)
    np.testing.assert_allclose(stats.returns, returns, rtol=1e-5)
    np.testing.assert_array_equal(stats.survived, ~died)
    final_map = np.asarray(traj.info["map_mmhg"])[first_end, np.arange(256)]
    np.testing.assert_array_equal(stats.final_map, final_map)


def test_outcomes_are_those_the_reference_reports():
    """Measured reference outcomes (50 episodes each) hold for 2,000 of our patients."""
    env, params = sepsisim_jax.make("VasopressorTitration-v0", severity="easy")
    summary = summarize(
        rollout_episodes(env, params, heuristic_policy(env), jax.random.key(0), 2000)
    )
    assert summary["survival"] == 0.0 and 7.0 <= summary["mean_length"] <= 9.0
    np.testing.assert_allclose(summary["mean_return"], -38.3, atol=1.0)
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="medium")
    summary = summarize(
        rollout_episodes(env, params, heuristic_policy(env), jax.random.key(0), 2000)
    )
    assert summary["survival"] == 1.0 and summary["mean_length"] == 72.0
    np.testing.assert_allclose(summary["mean_return"], 61.2, atol=1.0)
    summary = summarize(rollout_episodes(env, params, random_policy(env), jax.random.key(0), 2000))
    assert 0.75 < summary["survival"] < 0.95
