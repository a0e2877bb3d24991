"""Cohort rollouts: episode bookkeeping against a step-by-step loop, and reference outcomes."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.cohort.rollout import clinical_course, rollout_episodes, summarize, trajectories
from sepsisim_jax.policies import heuristic_policy, random_policy


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
    np.testing.assert_allclose(stats.returns, returns, rtol=1e-5, atol=1e-4)  # float32 sums
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


def test_clinical_course_is_the_first_episode_of_each_patient():
    """Same key, same episodes as rollout_episodes; the recorded trajectories agree hour by hour.

    SepsisManagement, hard, random actions: some patients die, the others reach the 72-h cut.
    """
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    policy = random_policy(env)
    key = jax.random.key(3)
    n = 64
    course = clinical_course(env, params, policy, key, n)
    stats = rollout_episodes(env, params, policy, key, n)
    traj = trajectories(env, params, policy, key, n)
    np.testing.assert_array_equal(course.length, stats.lengths)
    np.testing.assert_array_equal(course.died, ~np.asarray(stats.survived))
    np.testing.assert_allclose(course.returns, stats.returns, rtol=1e-5, atol=1e-4)
    lengths = np.asarray(course.length)
    map_mmhg = np.asarray(course.map_mmhg)
    assert map_mmhg.shape == (73, n)
    np.testing.assert_array_equal(map_mmhg[0], traj.state.patient.map_mmhg[0])
    for i in range(n):
        last = lengths[i]
        # Hours 1..last are the post-step values the env reported, NaN afterwards.
        np.testing.assert_array_equal(map_mmhg[1 : last + 1, i], traj.info["map_mmhg"][:last, i])
        assert np.isnan(map_mmhg[last + 1 :, i]).all()
        assert np.isnan(np.asarray(course.reward)[last:, i]).all()
        np.testing.assert_array_equal(
            np.asarray(course.reward)[:last, i], np.asarray(traj.reward)[:last, i]
        )
    given = np.asarray(course.fluid_ml)[:-1]
    assert np.nanmin(given) >= 0.0 and np.nanmax(given) <= 1000.0
    died = np.asarray(course.died)
    assert 0 < died.sum() < n
    damage_at_end = np.asarray(course.tissue_damage)[lengths, np.arange(n)]
    np.testing.assert_array_equal(damage_at_end[died] >= 0.9, True)
    np.testing.assert_array_equal(damage_at_end[~died] < 0.9, True)
