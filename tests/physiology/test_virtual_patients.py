"""Virtual patients: drawn parameters, and how the environments admit, report and observe them."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import truncnorm

import sepsisim_jax
from sepsisim_jax.envs.base import HIDDEN_FROM_CLINICIANS
from sepsisim_jax.physiology import noise, virtual_patients
from sepsisim_jax.physiology.coupled import CoupledParams
from sepsisim_jax.physiology.parameters import param_specs
from sepsisim_jax.physiology.patient import PatientParams
from sepsisim_jax.physiology.virtual_patients import (
    per_patient_fields,
    sample_patient,
    sample_patient_where,
)

MODELS = {"v0": PatientParams(), "v1": CoupledParams()}
N_DRAWS = 4000
VARIED = (0, 17, -1)  # fields whose uniform rows 4-9 set to 0.2 and 0.8, the others as row 2
RANDOM = slice(10, None)  # rows of independent uniforms


def _uniforms(n_fields: int) -> np.ndarray:
    """``(N_DRAWS, n_fields)`` float32 uniforms: rows 0-1 the extreme uniforms a float32 draw
    can give, rows 2-3 one patient twice, rows 4-9 that patient with one uniform changed."""
    rng = np.random.Generator(np.random.PCG64(0))
    u = rng.uniform(0.0, 1.0, (N_DRAWS, n_fields)).astype(np.float32)
    u[0], u[1] = 1e-7, np.nextafter(np.float32(1.0), np.float32(0.0))
    u[3] = u[2]
    for k, i in enumerate(VARIED):
        u[4 + 2 * k : 6 + 2 * k] = u[2]
        u[4 + 2 * k, i], u[5 + 2 * k, i] = 0.2, 0.8
    return u


@functools.cache
def _patients(model: str, spread: float) -> tuple[Any, np.ndarray]:
    """``N_DRAWS`` patients of ``model`` at ``spread`` as the envs draw them (float32, every
    leaf with a leading batch axis) and their uniforms."""
    params = MODELS[model]
    u = _uniforms(len(per_patient_fields(params)))
    patients = jax.jit(jax.vmap(lambda u: sample_patient(params, spread, u)))(jnp.asarray(u))
    return jax.tree.map(np.asarray, patients), u


def _draws(model: str, spread: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``{name: values}`` of :func:`_patients` and the uniforms."""
    patients, u = _patients(model, spread)
    return {f.name: f.read(patients) for f in per_patient_fields(MODELS[model])}, u


# --- drawing -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS))
def test_spread_zero_is_the_params_themselves(model):
    params = MODELS[model]
    u = jnp.full((len(per_patient_fields(params)),), 0.9)
    assert sample_patient(params, 0.0, u) is params
    assert sample_patient(params, 0, u) is params


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("spread", [0.1, 1.0])
def test_drawn_values_lie_in_their_declared_ranges(model, spread):
    drawn, _ = _draws(model, spread)
    fields = per_patient_fields(MODELS[model])
    assert len(drawn) == len(fields) > 20
    reached = 0
    for f in fields:
        values = drawn[f.name]
        assert values.dtype == np.float32 and np.all(np.isfinite(values)), f.name
        # As float32 holds the ends of the range (float32(1.2) is 1.2000000477).
        low, high = np.float32(f.spec.low), np.float32(f.spec.high)
        assert low <= values.min() and values.max() <= high, f.name
        assert np.unique(values[RANDOM]).size > 0.99 * (N_DRAWS - 10), f.name
        # The extreme uniforms (z of about -+5.3) reach the ends of a range that truncates
        # the normal within 4 sd, to float32 rounding of the CDF.
        centre = float(f.read(MODELS[model]))
        for row, end in ((0, f.spec.low), (1, f.spec.high)):
            if end > 0 and abs(np.log(end / centre)) < 4 * spread:
                np.testing.assert_allclose(values[row], end, rtol=2e-3, err_msg=f.name)
                reached += 1
    assert reached >= (10 if spread == 1.0 else 1)


@pytest.mark.parametrize("model", list(MODELS))
def test_draws_are_log_normal_around_the_default_with_sd_of_log_the_spread(model):
    spread = 0.1
    drawn, u = _draws(model, spread)
    params = MODELS[model]
    wide = 0
    for i, f in enumerate(per_patient_fields(params)):
        centre = float(f.read(params))
        low = np.log(f.spec.low / centre) / spread if f.spec.low > 0 else -np.inf
        high = np.log(f.spec.high / centre) / spread
        log_ratio = np.log(drawn[f.name][RANDOM].astype(np.float64) / centre)
        # The inverse CDF of the truncated normal, as scipy computes it (float32 accuracy).
        expected = spread * truncnorm.ppf(u[RANDOM, i].astype(np.float64), low, high)
        np.testing.assert_allclose(log_ratio, expected, atol=5e-5, err_msg=f.name)
        if min(-low, high) > 4.0:  # truncation beyond 4 sd: a plain log-normal
            wide += 1
            # Sampling error of the median ~1.25 sd / sqrt(n) = 0.002, of the sd ~1.1%.
            assert abs(np.median(log_ratio)) < 0.01, f.name
            np.testing.assert_allclose(np.std(log_ratio), spread, rtol=0.05, err_msg=f.name)
    assert wide >= 10  # e.g. every Reynolds rate: half to twice its value is +-6.9 sd


def test_narrow_ranges_truncate_the_draws_instead_of_piling_them_at_the_ends():
    drawn, _ = _draws("v1", 1.0)
    # vaso_hill: default 1.8 in [1, 3], a log range of -0.59..+0.51: inside 1 sd of spread 1.
    values = drawn["vaso_hill"][RANDOM]
    assert np.mean(values <= 1.0) < 0.001 and np.mean(values >= 3.0) < 0.001
    assert values.min() < 1.01 and values.max() > 2.98
    # This deep inside the normal the truncated draw is nearly uniform in log.
    counts, _ = np.histogram(np.log(values), bins=4, range=(0.0, np.log(3.0)))
    assert counts.min() > 0.6 * counts.max()


def test_each_uniform_sets_its_own_parameter_and_the_same_uniforms_the_same_patient():
    drawn, _ = _draws("v1", 1.0)
    fields = per_patient_fields(MODELS["v1"])
    for f in fields:
        assert drawn[f.name][2] == drawn[f.name][3], f.name  # rows 2 and 3: the same uniforms
    for k, i in enumerate(VARIED):
        lower, upper = 4 + 2 * k, 5 + 2 * k
        for j, f in enumerate(fields):
            values = drawn[f.name]
            if j == i % len(fields):
                assert values[lower] < values[upper], f.name
            else:
                assert values[lower] == values[upper] == values[2], (f.name, i)


@pytest.mark.parametrize("model", list(MODELS))
def test_only_per_patient_parameters_are_drawn(model):
    params = MODELS[model]
    fields = per_patient_fields(params)
    specs = param_specs(params)
    fixed = {name for name, spec in specs.items() if not spec.per_patient}
    assert {"dt", "map_noise_sd", "urine_noise_sd", "admission_jitter"} <= fixed
    assert fixed.isdisjoint(f.name for f in fields)
    assert {f.name for f in fields} | fixed == set(specs)
    patients, _ = _patients(model, 1.0)
    np.testing.assert_array_equal(patients.dt, np.float32(params.dt))
    for name, value in vars(params.noise).items():
        drawn = getattr(patients.noise, name)
        np.testing.assert_array_equal(drawn, np.float32(value), err_msg=name)
    for f in fields:  # while every drawn one moves (row 1: the largest uniform)
        assert f.read(patients)[1] != np.float32(f.read(params)), f.name


def test_bad_spread_or_uniforms_raise():
    params = MODELS["v1"]
    n = len(per_patient_fields(params))
    with pytest.raises(ValueError, match="spread must be >= 0"):
        sample_patient(params, -0.1, jnp.full((n,), 0.5))
    for shape in [(n - 1,), (n + 1,), (n, 1), ()]:
        with pytest.raises(ValueError, match=f"expected {n} uniforms"):
            sample_patient(params, 0.5, jnp.full(shape, 0.5))


def test_a_step_draws_the_same_numbers_with_or_without_a_patient():
    keys = jax.random.split(jax.random.key(2), 300)
    n = len(per_patient_fields(MODELS["v1"]))
    assert noise.draws_separate_exactly(keys[0])
    both = jax.vmap(lambda k: noise.draw(k, jnp.float32, n))(keys)
    step = jax.vmap(lambda k: noise.draw(k, jnp.float32))(keys)
    alone = jax.vmap(lambda k: noise.patient_uniforms(k, jnp.float32, n))(keys)
    assert step.patient_u is None
    for name in ("map_z", "urine_z", "admission_map_z", "admission_urine_z"):
        np.testing.assert_array_equal(getattr(step, name), getattr(both, name), err_msg=name)
    np.testing.assert_array_equal(step.bacteria_u, both.bacteria_u)
    np.testing.assert_array_equal(step.lactate_u, both.lactate_u)
    np.testing.assert_array_equal(alone, both.patient_u)
    assert np.all((alone > 0) & (alone < 1))


WHERE_SPREAD = 0.3
N_WHERE = 2048  # patients of each case below


def _admission_uniforms(key: jax.Array) -> jax.Array:
    n = len(per_patient_fields(MODELS["v1"]))
    return noise.patient_uniforms(key, dtype=jnp.float32, n_patient=n)


@functools.cache
def _where_inputs() -> tuple[jax.Array, Any, Any]:
    """The keys, the current patients and the patients ``sample_patient`` draws from the keys
    of every case below (each case admits others of the same ``N_WHERE`` patients)."""
    params = MODELS["v1"]
    keys = jax.random.split(jax.random.key(5), N_WHERE)
    current = jax.jit(jax.vmap(lambda u: sample_patient(params, WHERE_SPREAD, u)))(
        jax.random.uniform(jax.random.key(6), (N_WHERE, len(per_patient_fields(params))))
    )
    drawn = jax.jit(
        jax.vmap(lambda k: sample_patient(params, WHERE_SPREAD, _admission_uniforms(k)))
    )(keys)
    return keys, current, drawn


@functools.cache
def _where_run(shape: tuple[int, ...]):
    """``sample_patient_where`` vmapped over ``shape`` (one or two axes), jitted: ``admit`` is
    traced, so the cases of one shape share the compiled program."""

    def one(admit, key, current):
        params = MODELS["v1"]
        return sample_patient_where(admit, key, params, current, WHERE_SPREAD, _admission_uniforms)

    run = jax.vmap(one)
    for _ in shape[:-1]:
        run = jax.vmap(run)
    return jax.jit(run)


def _where_admitted_case(admit: np.ndarray, shape: tuple[int, ...]) -> tuple[Any, Any, Any]:
    """``sample_patient_where`` vmapped over ``shape`` (one or two axes), its expected value
    from ``sample_patient`` of every patient, and the current patients."""
    assert admit.size == N_WHERE
    keys, current, drawn = _where_inputs()
    expected = jax.tree.map(
        lambda d, c: np.where(admit.reshape((-1,) + (1,) * (np.ndim(d) - 1)), d, c),
        drawn,
        current,
    )
    reshape = lambda x: jnp.reshape(x, shape + jnp.shape(x)[1:])  # noqa: E731
    got = _where_run(shape)(
        reshape(jnp.asarray(admit)), reshape(keys), jax.tree.map(reshape, current)
    )
    flat = jax.tree.map(lambda x: np.reshape(x, (admit.size, *np.shape(x)[len(shape) :])), got)
    return flat, (expected, current)


@pytest.mark.parametrize("n_admitted", [0, 17, 700])  # none, a few (drawn alone), many
@pytest.mark.parametrize("shape", [(2048,), (2, 1024)])  # a batch, and a vmap of batches
def test_drawing_only_the_admitted_gives_the_patients_drawing_all_gives(n_admitted, shape):
    n = int(np.prod(shape))
    assert n >= virtual_patients.SPARSE_MIN_BATCH  # large enough to draw only the admitted
    admit = np.zeros(n, bool)
    admit[np.random.default_rng(0).choice(n, n_admitted, replace=False)] = True
    got, (expected, current) = _where_admitted_case(admit, shape)
    for f in per_patient_fields(MODELS["v1"]):
        np.testing.assert_array_equal(f.read(got), f.read(expected), err_msg=f.name)
        np.testing.assert_array_equal(f.read(got)[~admit], f.read(current)[~admit])
    # Fields that are not the patient's (step length, noise) are the current ones.
    np.testing.assert_array_equal(got.dt, current.dt)
    np.testing.assert_array_equal(got.noise.map_noise_sd, current.noise.map_noise_sd)


def test_auto_reset_in_a_large_batch_admits_the_patient_reset_admits():
    """The few patients whose episode ends in a batch step get the virtual patient that
    ``reset`` with the same key admits, to the bit; the others keep their own."""
    env, params = sepsisim_jax.make(SPREAD_ID, patient_spread=0.2, observation="privileged")
    n, ending = 2048, np.arange(0, 2048, 97)  # 22 episodes end: a few of the batch
    keys = jax.random.split(jax.random.key(8), n)
    reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
    _, state = reset(keys, params)
    last = np.zeros(n, np.int32)
    last[ending] = params.max_steps_in_episode - 1
    state = state.replace(time=jnp.asarray(last))
    step_keys = jax.random.split(jax.random.key(9), n)
    actions = jnp.broadcast_to((env.action_low + env.action_high) / 2, (n, env.num_actions))
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    obs, new, _, terminated, truncated, _ = step(step_keys, state, actions, params)
    ended = np.asarray(terminated | truncated)
    assert set(np.flatnonzero(ended)) >= set(ending) and ended.sum() < n // 32
    reset_obs, admitted = reset(step_keys, params)
    for f in per_patient_fields(params.patient):
        got, old = f.read(new.physiology), f.read(state.physiology)
        np.testing.assert_array_equal(got[ended], f.read(admitted.physiology)[ended], f.name)
        np.testing.assert_array_equal(got[~ended], old[~ended], err_msg=f.name)
    np.testing.assert_array_equal(np.asarray(obs)[ended], np.asarray(reset_obs)[ended])


# --- the environments ----------------------------------------------------------------------


def _course(env, params, key, n_steps):
    """Admission and ``n_steps`` steps of one patient under constant mid-range actions."""
    action = (env.action_low + env.action_high) / 2
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(state, key):
        obs, state, reward, _, _, info = env.step(key, state, action, params)
        return state, (obs, state, reward, info)

    _, steps = jax.lax.scan(body, state, jax.random.split(key_steps, n_steps))
    return (obs, state), steps


@pytest.mark.parametrize("env_id", ["SepsisManagement-v0", "FluidResuscitation-v1"])
def test_spread_zero_env_is_bit_identical_to_the_default_env(env_id):
    default, params = sepsisim_jax.make(env_id)
    zero, zero_params = sepsisim_jax.make(env_id, patient_spread=0)
    assert zero.patient_spread == 0.0 and zero.observation_names == default.observation_names
    assert zero.info_names == default.info_names
    run = jax.jit(_course, static_argnums=(0, 3))
    expected = run(default, params, jax.random.key(4), 5)
    got = run(zero, zero_params, jax.random.key(4), 5)
    assert expected[0][1].physiology is None and got[0][1].physiology is None
    leaves, treedef = jax.tree.flatten(expected)
    assert treedef == jax.tree.structure(got)
    for a, b in zip(leaves, jax.tree.leaves(got), strict=True):
        assert np.array_equal(a, b), (a, b)


SPREAD_ID = "SepsisManagement-v1"
N_PATIENTS = 64
EPISODE = 3  # steps per episode here, so that 7 steps hold two auto-resets (steps 3 and 6)
N_STEPS = 7


def _privileged_course(env, params, key):
    """Admission, ``N_STEPS`` steps under constant mid-range actions and the final state.

    Per step: the observation and the info values as one float32 vector in
    ``env.info_names`` order (stacked states or info dicts compile twice as long).
    """
    action = (env.action_low + env.action_high) / 2
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(state, key):
        obs, state, _, _, _, info = env.step(key, state, action, params)
        return state, (obs, jnp.stack([jnp.asarray(info[k], jnp.float32) for k in env.info_names]))

    final, steps = jax.lax.scan(body, state, jax.random.split(key_steps, N_STEPS))
    return (obs, state), steps, final


@functools.cache
def _privileged_cohort():
    """64 patients of a privileged v1 env at spread 0.5 as host arrays: admission, steps
    (time-major, ``(7, 64, ...)``) and the final state."""
    env, params = sepsisim_jax.make(SPREAD_ID, patient_spread=0.5, observation="privileged")
    params = params.replace(max_steps_in_episode=EPISODE)
    keys = jax.random.split(jax.random.key(11), N_PATIENTS)
    run = jax.jit(jax.vmap(lambda k: _privileged_course(env, params, k)))
    admission, steps, final = jax.tree.map(np.asarray, run(keys))
    return env, params, (admission, jax.tree.map(lambda x: np.swapaxes(x, 0, 1), steps), final)


def _info_column(env, info: np.ndarray, name: str) -> np.ndarray:
    return info[..., env.info_names.index(name)]


def test_a_batch_holds_different_patients_and_each_keeps_its_own_for_an_episode():
    env, params, ((_, admitted), (_, info), final) = _privileged_cohort()
    # Info after step t describes that step's patient; episodes end at steps 3 and 6.
    steps = _info_column(env, info, "step")
    np.testing.assert_array_equal(steps[:, 0], [1, 2, 3, 1, 2, 3, 1])
    for f in per_patient_fields(params.patient):
        first = f.read(admitted.physiology)
        assert first.shape == (N_PATIENTS,) and first.dtype == np.float32
        assert np.unique(first).size >= N_PATIENTS - 2, f.name  # float32 uniforms may tie
        reported = _info_column(env, info, f.name)
        second, third = reported[EPISODE], reported[2 * EPISODE]
        # The same patient through an episode, a new one at every admission.
        for t, patient in enumerate([first] * EPISODE + [second] * EPISODE + [third]):
            np.testing.assert_array_equal(reported[t], patient, err_msg=f"{f.name} step {t + 1}")
        assert np.mean(second != first) > 0.95 and np.mean(third != second) > 0.95, f.name
        np.testing.assert_array_equal(f.read(final.physiology), third)


def test_info_reports_every_drawn_parameter_by_name():
    env, params, ((_, admitted), _, final) = _privileged_cohort()
    fields = per_patient_fields(params.patient)
    assert len(fields) == 50
    assert env.info_names[-len(fields) :] == tuple(f.name for f in fields)
    for state in (admitted, final):
        info = jax.vmap(env.info)(state)
        for f in fields:
            assert info[f.name].dtype == jnp.float32, f.name
            np.testing.assert_array_equal(info[f.name], f.read(state.physiology))
    # Without virtual patients there is nothing drawn to report.
    plain, _ = sepsisim_jax.make(SPREAD_ID)
    assert set(plain.info_names).isdisjoint(f.name for f in fields)


def test_privileged_observation_holds_the_drawn_values_inside_the_space():
    env, params, ((obs0, admitted), (obs, info), final) = _privileged_cohort()
    fields = per_patient_fields(params.patient)
    full, _ = sepsisim_jax.make(SPREAD_ID, patient_spread=0.5)
    n_full = len(full.observation_names)
    assert env.observation_names == full.observation_names + tuple(f.name for f in fields)
    drawn = np.stack([_info_column(env, info, f.name) for f in fields], axis=-1)
    # After a step the observation shows the patient of the next step (a new one after the
    # steps that ended an episode), the info the patient of this step.
    for t in range(N_STEPS - 1):
        np.testing.assert_array_equal(obs[t, :, n_full:], drawn[t + 1], err_msg=f"step {t + 1}")
    for o, state in ((obs0, admitted), (obs[-1], final)):
        expected = np.stack([f.read(state.physiology) for f in fields], axis=-1)
        np.testing.assert_array_equal(o[:, n_full:], expected)
    space = env.observation_space(params)
    low, high = np.asarray(space.low), np.asarray(space.high)
    assert low.shape == (n_full + len(fields),)
    np.testing.assert_array_equal(low[n_full:], np.float32([f.spec.low for f in fields]))
    np.testing.assert_array_equal(high[n_full:], np.float32([f.spec.high for f in fields]))
    for o in (obs0, obs.reshape(-1, obs.shape[-1])):
        assert np.all((o >= low) & (o <= high))


def test_full_and_clinical_observations_leave_the_parameters_out():
    _, params, ((obs0, admitted), (obs, _), final) = _privileged_cohort()
    names = {f.name for f in per_patient_fields(params.patient)}
    full, _ = sepsisim_jax.make(SPREAD_ID, patient_spread=0.5)
    clinical, _ = sepsisim_jax.make(SPREAD_ID, patient_spread=0.5, observation="clinical")
    v0 = sepsisim_jax.make("SepsisManagement-v0")[0]
    assert full.observation_names == v0.observation_names
    assert names.isdisjoint(full.observation_names) and names.isdisjoint(clinical.observation_names)
    assert set(HIDDEN_FROM_CLINICIANS) == {"bacteria", "tissue_damage"}
    assert set(HIDDEN_FROM_CLINICIANS) <= set(full.observation_names)
    kept = [n for n in full.observation_names if n not in ("bacteria", "tissue_damage")]
    assert list(clinical.observation_names) == kept
    # On the same states: full is the head of the privileged vector, clinical its columns.
    n_full = len(full.observation_names)
    columns = [full.observation_names.index(n) for n in kept]
    for privileged, state in ((obs0, admitted), (obs[-1], final)):
        full_obs = np.asarray(jax.vmap(full.get_obs)(state))
        np.testing.assert_array_equal(full_obs, privileged[:, :n_full])
        clinical_obs = np.asarray(jax.vmap(clinical.get_obs)(state))
        np.testing.assert_array_equal(clinical_obs, full_obs[:, columns])
    assert np.any(obs[-1][:, full.observation_index("tissue_damage")] > 0)  # not trivial
    space, full_space = clinical.observation_space(params), full.observation_space(params)
    np.testing.assert_array_equal(space.low, np.asarray(full_space.low)[columns])
    np.testing.assert_array_equal(space.high, np.asarray(full_space.high)[columns])
    # Clinical observation works without virtual patients too.
    plain, _ = sepsisim_jax.make("FluidResuscitation-v0", observation="clinical")
    reference = sepsisim_jax.make("FluidResuscitation-v0")[0].observation_names
    hidden = ("bacteria", "tissue_damage")
    assert plain.observation_names == tuple(n for n in reference if n not in hidden)
    assert len(plain.observation_names) == len(reference) - 2


@pytest.mark.parametrize("env_id", ["FluidResuscitation-v0", "SepsisManagement-v1"])
def test_bad_spread_and_observation_options_raise(env_id):
    with pytest.raises(ValueError, match="privileged observation needs virtual patients"):
        sepsisim_jax.make(env_id, observation="privileged")
    with pytest.raises(ValueError, match="privileged observation needs virtual patients"):
        sepsisim_jax.make(env_id, patient_spread=0.0, observation="privileged")
    for spread in (-0.1, 1.01, 2.0, float("nan"), float("inf"), "0.5", None):
        with pytest.raises(ValueError, match=r"patient_spread must be a number in \[0, 1\]"):
            sepsisim_jax.make(env_id, patient_spread=spread)
    with pytest.raises(ValueError, match="unknown observation 'partial'"):
        sepsisim_jax.make(env_id, patient_spread=0.5, observation="partial")
    # The ends of the interval are valid.
    assert sepsisim_jax.make(env_id, patient_spread=1.0)[0].patient_spread == 1.0
    assert sepsisim_jax.make(env_id, patient_spread=1, observation="privileged")[0]
