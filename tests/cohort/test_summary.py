"""Cohorts in chunks: per-patient outcomes and summaries do not depend on the chunking, the
summaries are those of the per-patient outcomes, and the streaming quantiles keep their bound."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.cohort.rollout import rollout_episodes
from sepsisim_jax.cohort.summary import (
    METRICS,
    RELATIVE_ERROR,
    ZERO_BAND,
    _LogHistogram,
    cohort_summary,
)
from sepsisim_jax.policies import heuristic_policy, random_policy

N = 1000
KEY = jax.random.key(7)


@pytest.fixture(scope="module")
def hard():
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    return env, params, random_policy(env)


@pytest.fixture(scope="module")
def outcomes(hard):
    env, params, policy = hard
    stats = rollout_episodes(env, params, policy, KEY, N)
    return {m: np.asarray(getattr(stats, m), np.float64) for m in METRICS}


def _groups(summary):
    return [dataclasses.asdict(g) for g in summary.groups]


def test_a_patients_episode_depends_only_on_the_key_and_its_index(hard, outcomes):
    env, params, policy = hard
    chunked = rollout_episodes(env, params, policy, KEY, N, chunk_size=300)
    smaller = rollout_episodes(env, params, policy, KEY, 333)  # odd: padded, same outcomes
    for m in METRICS:
        np.testing.assert_array_equal(np.asarray(getattr(chunked, m)), outcomes[m])
        np.testing.assert_array_equal(np.asarray(getattr(smaller, m)), outcomes[m][:333])
    other = rollout_episodes(env, params, policy, jax.random.key(8), N)
    assert not np.array_equal(np.asarray(other.returns), outcomes["returns"])


def test_the_summary_is_the_same_for_every_chunk_size(hard):
    """Exact and streaming quantiles alike (one test: both run the same compiled chunks)."""
    env, params, policy = hard
    for exact_limit in (N, 0):
        summaries = [
            cohort_summary(
                env, params, policy, KEY, N, chunk_size=c, exact_limit=exact_limit, progress=False
            )
            for c in (96, 512, 4096)
        ]
        assert summaries[0].quantile_method == ("exact" if exact_limit else "log-histogram")
        assert _groups(summaries[0]) == _groups(summaries[1]) == _groups(summaries[2])


def test_the_summary_is_that_of_the_per_patient_outcomes(hard, outcomes):
    env, params, policy = hard
    summary = cohort_summary(env, params, policy, KEY, N, chunk_size=512, progress=False)
    overall = summary.overall
    assert overall.patients == N and 0.3 < overall.mean["survived"] < 0.95  # deaths and not
    for m in METRICS:
        np.testing.assert_allclose(overall.mean[m], outcomes[m].mean(), rtol=1e-12)
        np.testing.assert_allclose(overall.sd[m], outcomes[m].std(), rtol=1e-9)
    for m, table in overall.quantiles.items():
        for q, value in table.items():
            assert value == np.quantile(outcomes[m], q, method="inverted_cdf"), (m, q)


def test_streaming_quantiles_lie_within_their_stated_bound(hard, outcomes):
    env, params, policy = hard
    summary = cohort_summary(env, params, policy, KEY, N, exact_limit=0, progress=False)
    assert summary.relative_error == RELATIVE_ERROR
    for m, table in summary.overall.quantiles.items():
        for q, value in table.items():
            exact = np.quantile(outcomes[m], q, method="inverted_cdf")
            assert abs(value - exact) <= RELATIVE_ERROR * abs(exact) + ZERO_BAND, (m, q)
            if m in ("lengths", "final_sofa"):
                assert value == exact  # integer outcomes are counted exactly


def test_log_histogram_quantiles_of_values_of_both_signs_and_zero():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 100, 5000), np.zeros(300), rng.lognormal(0, 3, 2000)])
    histogram = _LogHistogram()
    for part in np.array_split(rng.permutation(values), 7):
        histogram.add(part)
    for q in (0.001, 0.05, 0.3, 0.5, 0.9, 1.0):
        exact = np.quantile(values, q, method="inverted_cdf")
        assert abs(histogram.quantile(q) - exact) <= RELATIVE_ERROR * abs(exact) + ZERO_BAND
    histogram.add(np.array([1e12]))
    assert histogram.quantile(0.5) == math.inf  # an overflow voids the bound, visibly


def test_parameter_bins_split_virtual_patients_evenly_and_partition_the_cohort():
    env, params = sepsisim_jax.make("SepsisManagement-v1", patient_spread=0.2)
    policy = heuristic_policy(env)
    summary = cohort_summary(
        env, params, policy, KEY, 2000, chunk_size=512, parameter="k_pm", bins=4, progress=False
    )
    overall, bins = summary.groups[0], summary.groups[1:]
    assert len(bins) == 4 and bins[0].label.startswith("k_pm [")
    assert sum(g.patients for g in bins) == overall.patients == 2000
    assert all(400 < g.patients < 600 for g in bins)  # 500 expected; 5 sd of a binomial is 97
    survivors = sum(g.mean["survived"] * g.patients for g in bins)
    np.testing.assert_allclose(survivors, overall.mean["survived"] * 2000, rtol=1e-12)
    explicit = cohort_summary(
        env, params, policy, KEY, 2000, chunk_size=512, parameter="k_pm", bins=[0.6], progress=False
    )
    assert [g.patients for g in explicit.groups[1:]] != [1000, 1000]  # edges in the unit
    assert sum(g.patients for g in explicit.groups[1:]) == 2000


def test_bad_requests_fail_with_the_reason(hard):
    env, params, policy = hard
    with pytest.raises(ValueError, match="virtual patients"):
        cohort_summary(env, params, policy, KEY, 10, parameter="k_pm", progress=False)
    env1, params1 = sepsisim_jax.make("SepsisManagement-v1", patient_spread=0.2)
    with pytest.raises(ValueError, match="'nonsense' is not drawn per patient; choose one of"):
        cohort_summary(env1, params1, policy, KEY, 10, parameter="nonsense", progress=False)
    with pytest.raises(ValueError, match="bin edges must increase"):
        cohort_summary(env1, params1, policy, KEY, 10, parameter="k_pm", bins=[0.7, 0.6])
    with pytest.raises(ValueError, match="quantiles must lie in"):
        cohort_summary(env, params, policy, KEY, 10, quantiles=(0.0,), progress=False)
    with pytest.raises(ValueError, match="n_patients must be a positive int"):
        cohort_summary(env, params, policy, KEY, 0, progress=False)
