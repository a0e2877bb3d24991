"""The -v1 environments: ids and registries, treatment effects, robustness, determinism.

Compilation dominates the cost of these tests, so each environment configuration is compiled
once and shared: the treatment arms of one environment run through one compiled cohort (the
arm is a traced parameter), the severity tiers through one compiled robustness run (a tier
only sets the default params, which are traced).
"""

from __future__ import annotations

import dataclasses
import functools

import gymnasium
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import sepsisim_jax
from sepsisim_jax.cohort.rollout import rollout_episodes
from sepsisim_jax.envs.actions import MAX_FLUID_ML
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.physiology.coupled import CoupledParams
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED, SEPSISIM, V1_TIER_SEVERITY, tier_point
from sepsisim_jax.physiology.patient import PatientParams
from sepsisim_jax.physiology.virtual_patients import per_patient_fields
from sepsisim_jax.policies import heuristic_policy

V1_IDS = ("FluidResuscitation-v1", "VasopressorTitration-v1", "SepsisManagement-v1")
V0_IDS = tuple(env_id.replace("-v1", "-v0") for env_id in V1_IDS)
TIERS = ("easy", "medium", "hard")


# --- ids, registries, spaces ------------------------------------------------------------------


def test_the_v1_ids_are_listed_after_the_v0_ids():
    assert sepsisim_jax.ENV_IDS == V0_IDS + V1_IDS


@pytest.mark.parametrize("env_id", V1_IDS)
def test_make_and_gymnax_make_build_the_v1_task_on_the_coupled_patient(env_id):
    env, params = sepsisim_jax.make(env_id)
    assert env.env_id == env_id and env.model is REYNOLDS_COUPLED
    assert isinstance(params.patient, CoupledParams)
    # gymnax.make: an equal env (so the same compiled functions) and the same defaults.
    gymnax_env, gymnax_params = gymnax.make(f"sepsisim_jax/{env_id}", severity="hard")
    assert type(gymnax_env) is type(env) and gymnax_env.severity == "hard"
    assert gymnax_env == sepsisim_jax.make(env_id, severity="hard")[0]
    assert hash(gymnax_env) == hash(sepsisim_jax.make(env_id, severity="hard")[0])
    assert gymnax_params == sepsisim_jax.make(env_id, severity="hard")[1]
    assert gymnax.make(f"sepsisim_jax/{env_id}", patient_spread=0.3)[0].patient_spread == 0.3


@pytest.mark.parametrize(("v0_id", "v1_id"), list(zip(V0_IDS, V1_IDS, strict=True)))
def test_v1_keeps_the_action_space_and_observation_layout_of_v0(v0_id, v1_id):
    v0, v0_params = sepsisim_jax.make(v0_id)
    v1, v1_params = sepsisim_jax.make(v1_id)
    assert isinstance(v1, type(v0))  # the task itself, unchanged
    a0, a1 = v0.action_space(v0_params), v1.action_space(v1_params)
    assert a0.shape == a1.shape and a1.dtype == a0.dtype
    np.testing.assert_array_equal(a0.low, a1.low)
    np.testing.assert_array_equal(a0.high, a1.high)
    assert v1.observation_names == v0.observation_names
    assert v1.observation_space(v1_params).shape == v0.observation_space(v0_params).shape
    # info: the v0 keys in their order, then the coupled model's hidden state.
    assert v1.info_names == v0.info_names + tuple(f.name for f in REYNOLDS_COUPLED.info_features)
    # Tasks share their own parameters; the v1 antibiotic kill rate is the model's.
    shared = {f.name for f in dataclasses.fields(v0_params)} - {"patient"}
    assert shared == {f.name for f in dataclasses.fields(v1_params)} - {"patient"}
    assert v1_params.antibiotic_efficacy == REYNOLDS_COUPLED.task_defaults["antibiotic_efficacy"]
    # VasopressorTitration's background infusion is maintenance fluid on the v1 patient.
    if hasattr(v0_params, "fluid_protocol_ml"):
        assert (v0_params.fluid_protocol_ml, v1_params.fluid_protocol_ml) == (250.0, 100.0)
        assert sepsisim_jax.make(v1_id, fluid_protocol=250.0)[1].fluid_protocol_ml == 250.0


@pytest.mark.parametrize("env_id", V0_IDS + V1_IDS)
def test_each_id_runs_the_episode_length_of_its_patient_model(env_id):
    """72 steps for v0 (the reference's), 96 for v1: functional params, Gymnasium's time
    limit and the default length of cohort rollouts agree."""
    env, params = sepsisim_jax.make(env_id, severity="easy")
    expected = 96 if env_id in V1_IDS else 72
    assert env.model.episode_steps == params.max_steps_in_episode == expected
    assert gymnasium.spec(f"sepsisim_jax/{env_id}").max_episode_steps == expected
    if not env_id.startswith("SepsisManagement"):
        return  # the length is the patient model's: one task runs it on each model
    stats = rollout_episodes(env, params, heuristic_policy(env), jax.random.key(0), 4)
    assert bool(stats.survived.all())  # the easy default patient under the heuristic
    np.testing.assert_array_equal(stats.lengths, expected)


@pytest.mark.parametrize("env_id", V1_IDS)
def test_severity_tiers_set_the_pulse_infection_point(env_id):
    points = []
    for severity in TIERS:
        _, params = sepsisim_jax.make(env_id, severity=severity)
        p0, k_pg = tier_point(severity)
        assert params.patient.initial_pathogen == p0 and params.patient.reynolds.k_pg == k_pg
        points.append((p0, k_pg))
    assert tuple(V1_TIER_SEVERITY) == TIERS
    assert np.all(np.diff(np.asarray(points), axis=0) > 0)  # harder: more and faster pathogen


@pytest.mark.parametrize("env_id", V0_IDS + V1_IDS)
def test_unknown_severity_names_the_valid_ones(env_id):
    with pytest.raises(ValueError, match=r"valid severities: \['easy', 'medium', 'hard'\]"):
        sepsisim_jax.make(env_id, severity="extreme")
    with pytest.raises(ValueError, match="unknown severity 'extreme'"):
        gymnax.make(f"sepsisim_jax/{env_id}", severity="extreme")


@pytest.mark.parametrize("env_id", V0_IDS)
def test_v0_ids_keep_the_reference_model(env_id):
    env, params = sepsisim_jax.make(env_id)
    assert env.model is SEPSISIM and type(params.patient) is PatientParams
    assert env.info_names == type(env).info_names  # nothing of v1 in info
    assert params.patient == PatientParams(initial_bacteria=env.severity_bacteria["medium"])


@pytest.mark.parametrize("env_id", V1_IDS)
def test_gymnasium_make_resets_and_steps_inside_the_spaces(env_id):
    env = gymnasium.make(f"sepsisim_jax/{env_id}")
    functional, params = sepsisim_jax.make(env_id)
    assert env.unwrapped.functional_env == functional
    v0, _ = sepsisim_jax.make(env_id.replace("-v1", "-v0"))
    assert env.action_space == gymnasium.spaces.Box(v0.action_low, v0.action_high)
    assert env.observation_space.shape == (len(v0.observation_names),)
    np.testing.assert_array_equal(
        env.observation_space.high, functional.observation_space(params).high
    )
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert list(info) == list(functional.info_names) and info["step"] == 0
    env.action_space.seed(1)
    for t in range(1, 4):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs), obs
        assert np.isfinite(reward) and not truncated and info["step"] == t
        assert all(np.isfinite(v) for v in info.values())
        if terminated:
            break
    env.close()


# --- treatment matters ------------------------------------------------------------------------


@functools.cache
def _armed(params_cls: type) -> type:
    """``params_cls`` with a traced ``arm``: which of the three policies of :func:`_arms`."""

    @struct.dataclass
    class Armed(params_cls):
        arm: jax.Array = 0

    return Armed


def _with_arm(params, arm: int):
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    return _armed(type(params))(**fields, arm=jnp.asarray(arm, jnp.int32))


NO_TREATMENT, HEURISTIC, MAX_FLUID = 0, 1, 2


@functools.cache
def _arms(env: SepsisEnv):
    """One policy for the three arms: no treatment (zero action), the heuristic, and 1000 mL
    of fluid every hour with nothing else (action component 0 is the bolus)."""
    heuristic = heuristic_policy(env)

    def policy(key, obs, params):
        zero = jnp.zeros(env.num_actions, jnp.float32)
        return jax.lax.switch(
            params.arm,
            [lambda: zero, lambda: heuristic(key, obs, params), lambda: zero.at[0].set(1000.0)],
        )

    return policy


N_COHORT = 2000  # one compilation per env; the cohort itself runs in well under a second


def _paired_sd(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a) - mean(b) for paired booleans (the same patients, noise)."""
    diff = a.astype(float) - b.astype(float)
    return float(np.std(diff, ddof=1) / np.sqrt(diff.size))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", V1_IDS)
def test_heuristic_beats_no_treatment_and_maximal_fluid_does_worse(env_id):
    """Medium tier, virtual patients at spread 0.2, 2,000 patients, the same key for every arm
    (so the arms see the same patients and noise and are compared patient by patient).

    Measured survival (none / heuristic / 1000 mL every hour), key 0, 2,000 patients:
    FluidResuscitation 0.561 / 0.590 / 0.001 (heuristic saves 60, loses 4),
    VasopressorTitration 0.596 / 0.664 / 0.001 (138 / 0), SepsisManagement 0.251 / 0.541 /
    0.000 (598 / 16). VasopressorTitration's action is the dose change alone: its maximal
    fluid arm is the zero action with the fluid protocol at 1000 mL/h.
    """
    env, params = sepsisim_jax.make(env_id, patient_spread=0.2)
    policy = _arms(env)
    max_fluid_params, max_fluid_arm = params, MAX_FLUID
    if "fluid_protocol_ml" in {f.name for f in dataclasses.fields(params)}:
        max_fluid_params, max_fluid_arm = params.replace(fluid_protocol_ml=MAX_FLUID_ML), 0
    key = jax.random.key(0)

    def survived(params, arm):
        stats = rollout_episodes(env, _with_arm(params, arm), policy, key, N_COHORT)
        return np.asarray(stats.survived)

    none = survived(params, NO_TREATMENT)
    heuristic = survived(params, HEURISTIC)
    max_fluid = survived(max_fluid_params, max_fluid_arm)
    # Neither all alive nor all dead without treatment: there is something to gain and lose.
    assert 0.1 < none.mean() < 0.9, none.mean()
    gain, loss = heuristic.mean() - none.mean(), none.mean() - max_fluid.mean()
    assert gain > 4 * _paired_sd(heuristic, none), (gain, _paired_sd(heuristic, none))
    assert loss > 4 * _paired_sd(none, max_fluid), (loss, _paired_sd(none, max_fluid))
    assert gain > 0.02 and loss > 0.2


# --- robustness, determinism, batch invariance ------------------------------------------------


N_ROBUST = 300
HOURS = REYNOLDS_COUPLED.episode_steps  # one full episode: deaths and the step limit


def _random_course(env: SepsisEnv, params, key: jax.Array):
    """One patient under uniform random actions for ``HOURS`` steps (auto-reset on).

    Returns the admission observation and, per step, the observation, reward, terminated,
    truncated, ``info["final_observation"]`` and the other info values as one float32 vector
    in ``env.info_names`` order (one output instead of about 60: half the compile time).
    """
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)
    space = env.action_space(params)

    def body(state, key):
        key_action, key_step = jax.random.split(key)
        obs, state, reward, terminated, truncated, info = env.step(
            key_step, state, space.sample(key_action), params
        )
        values = jnp.stack([jnp.asarray(info[k], jnp.float32) for k in env.info_names])
        return state, (obs, reward, terminated, truncated, info["final_observation"], values)

    _, steps = jax.lax.scan(body, state, jax.random.split(key_steps, HOURS))
    return obs, steps


@functools.cache
def _compiled_cohort(env: SepsisEnv):
    return jax.jit(jax.vmap(lambda params, key: _random_course(env, params, key), (None, 0)))


@functools.cache
def _robust_env(env_id: str) -> SepsisEnv:
    """The spread-1.0 env, made through gymnax's registry."""
    env, _ = gymnax.make(f"sepsisim_jax/{env_id}", patient_spread=1.0)
    return env


def _tier_params(env_id: str, severity: str):
    """The tier's params. A tier sets only the default params (traced), so the medium env
    runs every tier with one compilation; checked here."""
    env, params = sepsisim_jax.make(env_id, severity=severity, patient_spread=1.0)
    medium = _robust_env(env_id)
    assert env.observation_names == medium.observation_names
    assert env.info_names == medium.info_names
    assert jax.tree.structure(params) == jax.tree.structure(medium.default_params)
    return params


@functools.cache
def _robust_run(env_id: str, severity: str):
    env = _robust_env(env_id)
    params = _tier_params(env_id, severity)
    keys = jax.random.split(jax.random.key(2024), N_ROBUST)
    return jax.tree.map(np.asarray, _compiled_cohort(env)(params, keys))


def _observations(run) -> np.ndarray:
    """Every observation of a run: admissions, after each step, and each final observation."""
    obs0, (obs, _, _, _, final, _) = run
    dim = obs0.shape[-1]
    return np.concatenate([obs0, obs.reshape(-1, dim), final.reshape(-1, dim)])


@pytest.mark.slow
# FluidResuscitation's actions and observations are SepsisManagement's; VasopressorTitration
# observes the hours on vasopressors besides.
@pytest.mark.parametrize("env_id", ["VasopressorTitration-v1", "SepsisManagement-v1"])
def test_random_actions_at_full_spread_stay_finite_and_in_bounds(env_id):
    env = _robust_env(env_id)
    peak_bacteria = 0.0
    for severity in TIERS:
        params = _tier_params(env_id, severity)
        run = _robust_run(env_id, severity)
        _, (obs, reward, terminated, truncated, _, info) = run
        assert obs.shape == (N_ROBUST, HOURS, len(env.observation_names))
        assert info.shape == (N_ROBUST, HOURS, len(env.info_names))
        assert np.all(np.isfinite(_observations(run))) and np.all(np.isfinite(reward))
        for i, name in enumerate(env.info_names):
            assert np.all(np.isfinite(info[..., i])), (severity, name)
        # Every patient is drawn: 50 parameters in info, in their declared ranges.
        fields = per_patient_fields(params.patient)
        assert env.info_names[-len(fields) :] == tuple(f.name for f in fields)
        assert len(fields) == 50
        for f in fields:
            drawn = info[..., env.info_names.index(f.name)]
            low, high = np.float32(f.spec.low), np.float32(f.spec.high)
            assert low <= drawn.min() and drawn.max() <= high, f.name
            # Distinct patients (two of 300 float32 uniforms coincide with a chance of about
            # 0.5% per parameter).
            assert np.unique(drawn[:, 0]).size >= N_ROBUST - 3, f.name
        # Episodes end both ways (the run covers deaths and the step limit).
        assert terminated.any() and truncated.any(), severity
        space = env.observation_space(params)
        low, high = np.asarray(space.low), np.asarray(space.high)
        observed = _observations(run)
        inside = (observed >= low) & (observed <= high)
        for i, name in enumerate(env.observation_names):
            assert inside[:, i].all(), (severity, name, observed[~inside[:, i], i][:5])
        peak_bacteria = max(peak_bacteria, observed[:, env.observation_index("bacteria")].max())
    # Drawn carrying capacities above the default's: bacteria beyond the default p_inf (20)
    # occur, and fit the space.
    assert peak_bacteria > 20.0


@pytest.mark.slow
def test_same_key_same_trajectory_and_patient_alone_equals_patient_in_the_batch():
    env_id, severity = "SepsisManagement-v1", "hard"
    env = _robust_env(env_id)
    params = _tier_params(env_id, severity)
    keys = jax.random.split(jax.random.key(2024), N_ROBUST)
    batch = _robust_run(env_id, severity)
    # Determinism: the same keys again give the same trajectories, bit for bit.
    again = jax.tree.map(np.asarray, _compiled_cohort(env)(params, keys))
    for a, b in zip(jax.tree.leaves(batch), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    # Other keys, other patients and trajectories.
    other = _compiled_cohort(env)(params, jax.random.split(jax.random.key(7), N_ROBUST))
    assert not np.allclose(np.asarray(other[1][0]), batch[1][0])
    # Batch invariance: a patient run alone (no vmap) is the patient of the batch of 300:
    # the same flags, counters and episodes, and values equal to float32 rounding. (Not bit
    # for bit: XLA on CPU compiles some float32 divisions differently in the batched and the
    # scalar program, e.g. C_A / c_inf in the Reynolds damping; measured over all 300
    # patients, at most 1.2e-4 absolute and 1.8e-3 relative to |value| + 1e-3.)
    alone = jax.jit(lambda key: _random_course(env, params, key))
    for i in (0, 137, N_ROBUST - 1):
        single = jax.tree.map(np.asarray, alone(keys[i]))
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(batch), strict=True):
            if np.issubdtype(a.dtype, np.floating):
                np.testing.assert_allclose(a, b[i], rtol=1e-4, atol=2e-4)
            else:
                np.testing.assert_array_equal(a, b[i])
