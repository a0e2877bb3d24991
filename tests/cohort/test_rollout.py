"""Cohort rollouts: episode bookkeeping against a step-by-step loop, and reference outcomes."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.cohort.rollout import clinical_course, rollout_episodes, summarize, trajectories
from sepsisim_jax.policies import heuristic_policy, random_policy

N = 256


@functools.cache
def hard_random(env_id: str):
    """Episode stats and trajectories of the same ``N`` hard patients under random actions."""
    env, params = sepsisim_jax.make(env_id, severity="hard")
    policy = random_policy(env)
    key = jax.random.key(3)
    return rollout_episodes(env, params, policy, key, N), trajectories(env, params, policy, key, N)


# The books are the same code for every task: the task with every treatment, on each model.
@pytest.mark.parametrize("env_id", ["SepsisManagement-v0", "SepsisManagement-v1"])
def test_episode_stats_agree_with_the_recorded_trajectories(env_id):
    stats, traj = hard_random(env_id)
    done = np.asarray(traj.terminated | traj.truncated)
    first_end = done.argmax(axis=0)
    lengths = first_end + 1
    rewards = np.asarray(traj.reward)
    returns = np.array([rewards[:n, i].sum() for i, n in enumerate(lengths)])
    died = np.asarray(traj.terminated)[first_end, np.arange(N)]
    np.testing.assert_array_equal(stats.lengths, lengths)
    np.testing.assert_allclose(stats.returns, returns, rtol=1e-5, atol=1e-4)  # float32 sums
    np.testing.assert_array_equal(stats.survived, ~died)
    final_map = np.asarray(traj.info["map_mmhg"])[first_end, np.arange(N)]
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


def test_clinical_course_is_the_first_episode_of_each_patient():
    """Same key, same episodes as rollout_episodes; the recorded trajectories agree hour by hour.

    SepsisManagement, hard, random actions: some patients die, the others reach the 72-h cut.
    """
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    n = N  # the patients of the episode-stats test, whose rollouts are reused
    course = clinical_course(env, params, random_policy(env), jax.random.key(3), n)
    stats, traj = hard_random("SepsisManagement-v0")
    np.testing.assert_array_equal(course.length, stats.lengths)
    np.testing.assert_array_equal(course.died, ~np.asarray(stats.survived))
    np.testing.assert_allclose(course.returns, stats.returns, rtol=1e-5, atol=1e-4)
    lengths = np.asarray(course.length)
    map_mmhg = np.asarray(course.map_mmhg)
    assert map_mmhg.shape == (73, n)
    np.testing.assert_array_equal(map_mmhg[0], traj.state.patient.map_mmhg[0])
    reported_map, reward, reported_reward = (
        np.asarray(x) for x in (traj.info["map_mmhg"], course.reward, traj.reward)
    )
    for i in range(n):
        last = lengths[i]
        # Hours 1..last are the post-step values the env reported, NaN afterwards.
        np.testing.assert_array_equal(map_mmhg[1 : last + 1, i], reported_map[:last, i])
        assert np.isnan(map_mmhg[last + 1 :, i]).all()
        assert np.isnan(reward[last:, i]).all()
        np.testing.assert_array_equal(reward[:last, i], reported_reward[:last, i])
    given = np.asarray(course.fluid_ml)[:-1]
    assert np.nanmin(given) >= 0.0 and np.nanmax(given) <= 1000.0
    died = np.asarray(course.died)
    assert 0 < died.sum() < n
    damage_at_end = np.asarray(course.tissue_damage)[lengths, np.arange(n)]
    np.testing.assert_array_equal(damage_at_end[died] >= 0.9, True)
    np.testing.assert_array_equal(damage_at_end[~died] < 0.9, True)
