"""Counterfactuals: each side is the single-policy rollout, the effects and the 2x2 are those of
the per-patient outcomes, and the scheduled antibiotic starts at its hour on the same patients."""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.cohort.rollout import EpisodeStats, rollout_episodes
from sepsisim_jax.cohort.scan import scan_cohort
from sepsisim_jax.counterfactual import antibiotic_at, effect_table, paired_outcomes
from sepsisim_jax.physiology.virtual_patients import per_patient_fields
from sepsisim_jax.policies import heuristic_policy, random_policy

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("counterfactual")

N = 128
KEY = jax.random.key(3)
SCHEDULE_HOURS = 8  # hours of trajectory, enough to see the antibiotic start at hour 6


@pytest.fixture(scope="module")
def v0():
    """SepsisManagement-v0, hard: the antibiotic at hour 2 (A) against random actions (B)."""
    env, params = sepsisim_jax.make("SepsisManagement-v0", severity="hard")
    policies = (antibiotic_at(env, 2), random_policy(env))
    return env, params, policies, paired_outcomes(env, params, *policies, KEY, N)


@partial(jax.jit, static_argnames=("env", "policy"))
def _first_hours(env, params, policy):
    """Observation, action, antibiotic status and drawn parameters in each of the first
    hours, before each action, with the key scheme of the cohort rollouts (no auto-reset: a
    cheaper compilation than ``trajectories``)."""

    def record(carry, obs, state, action, output):
        return carry, (obs, action, state.antibiotic_active, state.physiology)

    patients = jnp.arange(64)
    _, _, steps = scan_cohort(
        env, params, policy, KEY, patients, SCHEDULE_HOURS, record, None, auto_reset=False
    )
    return steps


@pytest.fixture(scope="module")
def virtual():
    """SepsisManagement-v1 with virtual patients: the first hours with the antibiotic at
    hour 1 and at hour 6."""
    env, params = sepsisim_jax.make("SepsisManagement-v1", patient_spread=0.2)
    runs = {hour: _first_hours(env, params, antibiotic_at(env, hour)) for hour in (1, 6)}
    return env, params, runs


def _fields(stats: EpisodeStats) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in vars(stats).items()}


def test_each_side_is_the_rollout_of_its_policy_bit_for_bit(v0):
    env, params, policies, paired = v0
    for side, policy in zip((paired.a, paired.b), policies, strict=True):
        alone = rollout_episodes(env, params, policy, KEY, N, None, None)
        for name, value in _fields(alone).items():
            np.testing.assert_array_equal(_fields(side)[name], value, err_msg=name)
    assert not np.array_equal(paired.a.returns, paired.b.returns)  # the policies differ


def test_a_policy_against_itself_has_no_effect(v0):
    env, params, (policy, _), _ = v0
    same = paired_outcomes(env, params, policy, policy, KEY, N)
    assert np.all(np.asarray(same.return_effect) == 0.0)
    assert np.all(np.asarray(same.survival_effect) == 0)
    summary = same.summary()
    assert summary["return_effect"] == summary["survival_effect"] == 0.0
    assert summary["return_effect_se"] == summary["survival_effect_se"] == 0.0
    assert summary["only_a"] == summary["only_b"] == 0


def test_the_2x2_and_the_effects_are_those_of_the_per_patient_outcomes(v0):
    *_, paired = v0
    a, b = np.asarray(paired.a.survived), np.asarray(paired.b.survived)
    counts = paired.survival_counts()
    assert sum(counts.values()) == N
    assert sum(v > 0 for v in counts.values()) >= 2  # not a degenerate cohort
    assert counts == {
        "both": np.sum(a & b),
        "only_a": np.sum(a & ~b),
        "only_b": np.sum(~a & b),
        "neither": np.sum(~a & ~b),
    }
    effect = np.asarray(paired.survival_effect)
    assert np.sum(effect == 1) == counts["only_b"] and np.sum(effect == -1) == counts["only_a"]
    summary = paired.summary()
    assert summary["patients"] == N
    assert summary["survival_effect"] == pytest.approx((counts["only_b"] - counts["only_a"]) / N)
    assert summary["survival_b"] - summary["survival_a"] == pytest.approx(
        summary["survival_effect"]
    )
    diff = np.asarray(paired.b.returns, np.float64) - np.asarray(paired.a.returns, np.float64)
    assert summary["return_effect"] == pytest.approx(diff.mean(), rel=1e-6)
    assert summary["return_effect_se"] == pytest.approx(diff.std(ddof=1) / math.sqrt(N), rel=1e-5)
    table = effect_table([summary | {"policy_a": "early", "policy_b": "random"}])
    assert len(table.splitlines()) == 3 and "early" in table and f"{counts['both']:,}" in table


@pytest.mark.parametrize("hour", [1, 6])
def test_the_antibiotic_starts_at_the_stated_hour_and_not_before(virtual, hour):
    env, params, runs = virtual
    obs, action, active, _ = runs[hour]
    hours = np.arange(SCHEDULE_HOURS)[:, None]
    given = np.asarray(action[..., 2])
    np.testing.assert_array_equal(given, np.broadcast_to(hours >= hour, given.shape))
    active = np.asarray(active)  # in the state each action was taken in
    np.testing.assert_array_equal(active, np.broadcast_to(hours > hour, active.shape))
    per_hour = jax.vmap(jax.vmap(heuristic_policy(env), (None, 0, None)), (None, 0, None))
    expected = np.asarray(jax.jit(per_hour)(KEY, obs, params))
    np.testing.assert_array_equal(np.asarray(action[..., :2]), expected[..., :2])


def test_virtual_patients_are_the_same_under_both_schedules(virtual):
    _, params, runs = virtual
    (obs_early, _, _, early), (obs_late, _, _, late) = runs[1], runs[6]
    for x, y in zip(jax.tree.leaves(early), jax.tree.leaves(late), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    drawn = np.asarray(per_patient_fields(params.patient)[0].read(early))  # (hours, patients)
    assert np.unique(drawn[0]).size == drawn.shape[1]  # each patient drew their own
    obs_early, obs_late = np.asarray(obs_early), np.asarray(obs_late)
    np.testing.assert_array_equal(obs_early[:2], obs_late[:2])  # same admission, same hour 1
    assert not np.array_equal(obs_early[-1], obs_late[-1])  # then the antibiotic tells


@pytest.mark.parametrize(("hour", "dt"), [(1.5, 0.5), (0.75, 0.25), (1.0, 4.0), (0.0, 1.0)])
def test_the_schedule_counts_hours_whatever_the_step_length(hour, dt):
    env, params = sepsisim_jax.make("SepsisManagement-v0", dt=dt)
    steps = np.arange(12)
    obs = jnp.zeros((len(steps), len(env.observation_names)), jnp.float32)
    obs = obs.at[:, env.observation_index("step")].set(steps)
    action = jax.jit(jax.vmap(antibiotic_at(env, hour), (None, 0, None)))(KEY, obs, params)
    np.testing.assert_array_equal(np.asarray(action[:, 2]), (steps * dt >= hour).astype(float))


def test_the_figure_shows_the_effects_and_the_2x2(v0):
    *_, paired = v0
    fig = plotting.counterfactual_effects({"v0": paired, "again": paired}, title="demo")
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    bars = [patch.get_width() for patch in fig.axes[1].patches]
    assert bars == list(paired.survival_counts().values())
    heights = sum(patch.get_height() for patch in fig.axes[0].patches)
    assert heights == N
    with pytest.raises(ValueError, match="at least one"):
        plotting.counterfactual_effects({})


def _drop_step(env):
    env, _ = sepsisim_jax.make(env.env_id)
    env.observation_names = tuple(n for n in env.observation_names if n != "step")
    return env


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, 0), ValueError, "n_patients"),
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, 2.5), ValueError, "n_patients"),
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, True), ValueError, "n_patients"),
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, 4, chunk_size=0), ValueError, "chunk"),
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, 4, n_steps=-1), ValueError, "n_steps"),
        (lambda e, p, f: paired_outcomes(e, p, f, None, KEY, 4), TypeError, "policy_b"),
        (lambda e, p, f: paired_outcomes(e, p, 3, f, KEY, 4), TypeError, "policy_a"),
        (lambda e, p, f: paired_outcomes(p, p, f, f, KEY, 4), TypeError, "SepsisEnv"),
        (lambda e, p, f: paired_outcomes(e, p, f, f, KEY, 4, names=("x",)), ValueError, "names"),
        (lambda e, p, f: antibiotic_at(e, -1), ValueError, "hour"),
        (lambda e, p, f: antibiotic_at(e, math.nan), ValueError, "hour"),
        (lambda e, p, f: antibiotic_at(e, True), ValueError, "hour"),
        (lambda e, p, f: antibiotic_at(e, "6"), ValueError, "hour"),
        (lambda e, p, f: antibiotic_at(e, 6, base="heuristic"), TypeError, "base"),
        (lambda e, p, f: antibiotic_at(_drop_step(e), 6), ValueError, "'step'"),
        (
            lambda e, p, f: antibiotic_at(sepsisim_jax.make("FluidResuscitation-v0")[0], 1),
            ValueError,
            "antibiotic action",
        ),
        (
            lambda e, p, f: antibiotic_at(sepsisim_jax.make("VasopressorTitration-v1")[0], 1),
            ValueError,
            "antibiotic action",
        ),
    ],
)
def test_bad_inputs_raise_naming_the_argument(call, error, match):
    env, params = sepsisim_jax.make("SepsisManagement-v0")
    with pytest.raises(error, match=match):
        call(env, params, heuristic_policy(env))
