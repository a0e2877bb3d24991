"""Virtual trials: protocols act as their settings say, arms see the same patients, outcomes
are the cohort engine's, and the comparisons are those of the per-patient outcomes."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import cli, plotting
from sepsisim_jax.cohort import clinical_course, patient_keys, rollout_episodes
from sepsisim_jax.trials import (
    EVERYONE,
    HYPOTENSIVE,
    SEPSIS3_SHOCK,
    Inclusion,
    Protocol,
    RunIn,
    lactate_above,
    run_trial,
    usual_care,
)

# One worker runs this module, so that its module fixtures compile once (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("trials")

N = 192
KEY = jax.random.key(11)


@pytest.fixture(scope="module")
def management():
    return sepsisim_jax.make("SepsisManagement-v0", severity="hard")


def _obs(env, **values) -> jnp.ndarray:
    obs = np.zeros(len(env.observation_names), np.float32)
    for name, value in values.items():
        obs[env.observation_index(name)] = value
    return jnp.asarray(obs)


def test_usual_care_gives_the_bundle_on_the_observation(management):
    env, params = management
    policy = jax.jit(usual_care().policy(env))
    assert [c.name for c in env.actions] == ["fluid_bolus", "dose_change", "antibiotic"]

    def act(**values):
        return np.asarray(policy(None, _obs(env, **values), params))

    # Hypotensive in hour 0: 30 mL/kg x 70 kg over 3 h, norepinephrine up, the antibiotic.
    action = act(map_mmhg=58.0, lactate=1.5, step=0.0)
    np.testing.assert_allclose(action, [700.0, 0.05, 1.0])
    # Lactate >= 4 alone also triggers the bolus; MAP in the band holds the dose.
    np.testing.assert_allclose(act(map_mmhg=70.0, lactate=4.0, step=2.0), [700.0, 0.0, 1.0])
    # After 3 h no bolus; above the band (75) a running dose comes down, no dose stays at 0.
    np.testing.assert_allclose(
        act(map_mmhg=80.0, lactate=5.0, step=3.0, vasopressor_dose=0.2), [0.0, -0.05, 1.0]
    )
    np.testing.assert_allclose(act(map_mmhg=80.0, lactate=1.0, step=3.0), [0.0, 0.0, 1.0])


def test_settings_move_the_antibiotic_the_target_and_the_fluids(management):
    env, params = management
    protocol = usual_care().replace(
        antibiotic_hour=6.0,
        map_target=80.0,
        map_band=5.0,
        vasopressor_hour=2.0,
        maintenance_ml_per_h=100.0,
        bolus_ml_per_kg=60.0,
        bolus_hours=2.0,
    )
    policy = protocol.policy(env)  # unjitted: the settings are traced leaves either way
    act = lambda **v: np.asarray(policy(None, _obs(env, **v), params))  # noqa: E731
    np.testing.assert_allclose(act(map_mmhg=75.0, lactate=1.0, step=1.0), [100.0, 0.0, 0.0])
    np.testing.assert_allclose(act(map_mmhg=60.0, lactate=1.0, step=1.0), [1000.0, 0.0, 0.0])
    np.testing.assert_allclose(act(map_mmhg=75.0, lactate=1.0, step=6.0), [100.0, 0.05, 1.0])
    never = usual_care().replace(antibiotic_hour=math.inf).policy(env)
    assert float(never(None, _obs(env, map_mmhg=90.0, step=72.0), params)[2]) == 0.0


def test_protocols_of_one_shape_are_one_program(management):
    env, _ = management
    a, b = usual_care().policy(env), usual_care().replace(map_target=85.0).policy(env)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(a))


def test_a_task_sets_only_its_own_components_and_needs_what_it_reads():
    env, params = sepsisim_jax.make("VasopressorTitration-v0")
    policy = usual_care().policy(env)  # dose changes only: needs MAP and the running dose
    obs = _obs(env, map_mmhg=60.0, vasopressor_dose=0.1)
    np.testing.assert_allclose(np.asarray(policy(None, obs, params)), [0.05])
    with pytest.raises(ValueError, match="needs \\['step'\\] observed"):
        usual_care().replace(vasopressor_hour=1.0).policy(env)
    fluids, _ = sepsisim_jax.make("FluidResuscitation-v0")
    with pytest.raises(ValueError, match="step"):
        usual_care().policy(fluids)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"antibiotic_hour": -1.0}, "antibiotic_hour must be >= 0"),
        ({"map_target": float("nan")}, "map_target must be a number"),
        ({"bolus_hours": 0.0}, "bolus_hours must be a positive finite number"),
        ({"titration_step": 0.5}, "titration_step must be at most"),
        ({"weight_kg": True}, "weight_kg must be a number"),
    ],
)
def test_bad_settings_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        Protocol(**changes)


@pytest.fixture(scope="module")
def trial(management):
    """The antibiotic never (the reference), usual care, and usual care again, on the same
    patients."""
    env, params = management
    arms = {
        "no antibiotic": usual_care().replace(antibiotic_hour=math.inf).policy(env),
        "usual care": usual_care().policy(env),
        "usual care again": usual_care().policy(env),
    }
    return run_trial(env, params, arms, KEY, N, n_bootstrap=500, chunk_size=64)


def test_outcomes_are_the_cohort_engines_for_the_same_key(management, trial):
    env, params = management
    policy = usual_care().policy(env)
    stats = rollout_episodes(env, params, policy, KEY, N)
    course = clinical_course(env, params, policy, KEY, N)
    arm = trial.arms["usual care"]
    np.testing.assert_array_equal(arm.died, ~np.asarray(stats.survived))
    np.testing.assert_array_equal(arm.hours, np.asarray(stats.lengths))
    np.testing.assert_allclose(arm.fluid_24h_ml, np.nansum(np.asarray(course.fluid_ml)[:24], 0))
    np.testing.assert_allclose(arm.peak_dose, np.nanmax(np.asarray(course.vasopressor_dose), 0))
    assert (arm.antibiotic_hour == 0).all()
    assert np.isnan(trial.arms["no antibiotic"].antibiotic_hour).all()


def test_comparisons_are_those_of_the_per_patient_outcomes(trial):
    rows = {row["arm"]: row for row in trial.rows}
    reference = rows["no antibiotic"]
    assert reference["risk_difference"] == 0.0 and reference["risk_difference_ci"] == [0.0, 0.0]
    assert reference["risk_ratio"] == 1.0 and reference["risk_ratio_ci"] == [1.0, 1.0]
    died = {name: arm.died for name, arm in trial.arms.items()}
    care, again = rows["usual care"], rows["usual care again"]
    for key in ("mortality", "mortality_ci", "risk_difference", "risk_difference_ci"):
        assert care[key] == again[key], key
    assert care["mortality"] == died["usual care"].mean()
    assert care["risk_difference"] == died["usual care"].mean() - died["no antibiotic"].mean()
    assert care["risk_ratio"] == died["usual care"].mean() / died["no antibiotic"].mean()
    # Without the antibiotic (the only treatment that clears bacteria) more die, clearly.
    low, high = care["risk_difference_ci"]
    assert low <= care["risk_difference"] <= high < 0.0
    for row in trial.rows:
        assert row["mortality_ci"][0] <= row["mortality"] <= row["mortality_ci"][1]
        assert row["patients"] == N == trial.enrolled


def test_the_trial_is_the_same_for_every_chunk_size_and_seeded(management, trial):
    env, params = management
    arms = {"usual care": usual_care().policy(env)}
    again = run_trial(env, params, arms, KEY, N, n_bootstrap=500, chunk_size=N)
    np.testing.assert_array_equal(again.arms["usual care"].died, trial.arms["usual care"].died)
    for key in ("mortality", "mortality_ci", "fluid_24h_ml", "peak_dose", "hours"):
        assert again.rows[0][key] == trial.rows[1][key], key


def test_inclusion_reads_the_admission_observation(management, trial):
    env, params = management
    admission_keys, _ = patient_keys(KEY, jnp.arange(N))
    obs = np.asarray(jax.vmap(env.reset, in_axes=(0, None))(admission_keys, params)[0])
    lactate = obs[:, env.observation_index("lactate")]
    threshold = float(np.median(lactate))
    arms = {"usual care": usual_care().policy(env)}
    enrolled = run_trial(env, params, arms, KEY, N, inclusion=lactate_above(threshold))
    assert enrolled.enrolled == (lactate > threshold).sum() > 0
    np.testing.assert_array_equal(
        enrolled.arms["usual care"].died, trial.arms["usual care"].died[lactate > threshold]
    )
    assert EVERYONE({"map_mmhg": np.zeros(3)}).all()
    assert HYPOTENSIVE({"map_mmhg": np.array([60.0, 70.0])}).tolist() == [True, False]


def test_a_run_in_treats_every_arm_alike_and_enrols_at_its_end(management, trial):
    """Three hours of usual care, then each arm; enrolment on the observation at hour 3 among
    the patients alive then (lactate and the dose are observed without noise on v0)."""
    env, params = management
    care = usual_care().policy(env)
    arms = {"usual care": care, "no antibiotic after 3 h": trial_arm_without_antibiotic(env)}
    run_in = RunIn(care, 3)
    shock = run_trial(env, params, arms, KEY, N, run_in=run_in, inclusion=SEPSIS3_SHOCK)
    course = clinical_course(env, params, care, KEY, N)
    alive = np.asarray(course.length) > 3
    at_3h = alive & (np.asarray(course.vasopressor_dose)[3] > 0)
    at_3h &= np.asarray(course.lactate)[3] > 2
    assert shock.enrolled == at_3h.sum() > 0 and shock.run_in_hours == 3
    # The arm that is the run-in's policy throughout is usual care from admission.
    np.testing.assert_array_equal(
        shock.arms["usual care"].died, trial.arms["usual care"].died[at_3h]
    )
    assert (shock.arms["no antibiotic after 3 h"].antibiotic_hour == 0).all()  # given in run-in
    with pytest.raises(ValueError, match=r"RunIn\.hours must be a positive int"):
        RunIn(care, 0)
    vaso, vaso_params = sepsisim_jax.make("VasopressorTitration-v0")
    with pytest.raises(ValueError, match="a run-in needs the hours since admission"):
        run_trial(vaso, vaso_params, {"a": usual_care().policy(vaso)}, KEY, N, run_in=run_in)


def trial_arm_without_antibiotic(env):
    return usual_care().replace(antibiotic_hour=math.inf).policy(env)


def test_table_json_and_forest_plot(trial, tmp_path):
    figure = plotting.trial_forest(trial)
    left, right = figure.axes
    assert [t.get_text() for t in left.get_yticklabels()] == list(trial.arms)
    assert right.get_xlabel().startswith("risk difference vs no antibiotic")
    table = trial.table()
    assert all(name in table for name in trial.arms) and "risk diff" in table
    saved = json.loads(trial.save(tmp_path / "trial.json").read_text())
    assert saved["enrolled"] == N and saved["reference"] == "no antibiotic"
    assert [row["arm"] for row in saved["rows"]] == list(trial.arms)


def test_bad_trials_raise(management):
    env, params = management
    arms = {"usual care": usual_care().policy(env)}
    with pytest.raises(ValueError, match="at least one arm"):
        run_trial(env, params, {}, KEY, N)
    with pytest.raises(ValueError, match="reference arm 'x'"):
        run_trial(env, params, arms, KEY, N, reference="x")
    with pytest.raises(TypeError, match="must be a policy"):
        run_trial(env, params, {"bad": 3}, KEY, N)
    with pytest.raises(ValueError, match="n_patients must be a positive int"):
        run_trial(env, params, arms, KEY, 0)
    nobody = Inclusion("nobody", lambda obs: np.zeros_like(obs["map_mmhg"], bool))
    with pytest.raises(ValueError, match="no patient of 192 meets the inclusion 'nobody'"):
        run_trial(env, params, arms, KEY, N, inclusion=nobody, chunk_size=64)
    unknown = Inclusion("age", lambda obs: obs["age"] > 65)
    with pytest.raises(ValueError, match="reads 'age', which SepsisManagement-v0 does not"):
        run_trial(env, params, arms, KEY, N, inclusion=unknown, chunk_size=64)


def test_the_command_line_runs_a_trial_of_named_arms(trial, tmp_path, capsys):
    out, figure = tmp_path / "trial.json", tmp_path / "trial.png"
    argv = ["trial", "--env", "SepsisManagement-v0", "--severity", "hard", "--spread", "0"]
    argv += ["--patients", str(N), "--seed", "11", "--bootstrap", "500"]
    argv += ["--arm", "no antibiotic=usual_care:antibiotic_hour=inf", "--arm", "usual_care"]
    assert cli.main([*argv, "--json", str(out), "--figure", str(figure)]) == 0
    saved = json.loads(out.read_text())
    assert [row["arm"] for row in saved["rows"]] == ["no antibiotic", "usual_care"]
    for got, expected in zip(saved["rows"], trial.rows[:2], strict=True):
        got, expected = ({k: v for k, v in r.items() if k != "arm"} for r in (got, expected))
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert figure.stat().st_size > 0
    assert f"{N:,} of {N:,} patients enrolled" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arms", "extra", "message"),
    [
        (["usual_care:dose=1"], [], "unknown setting 'dose'"),
        (["best=ppo"], [], "the base must be one of"),
        (["heuristic:map_target=80"], [], "only usual_care takes settings"),
        (["usual_care:map_target=high"], [], "map_target must be a number"),
        (["usual_care", "usual_care"], [], "two arms have the same name"),
        (["usual_care"], ["--include", "sepsis3-shock"], "give --run-in HOURS"),
    ],
)
def test_bad_trial_arguments_exit_with_the_reason(arms, extra, message):
    argv = ["trial", "--env", "SepsisManagement-v0", "--patients", "8", *extra]
    with pytest.raises(SystemExit, match=message):
        cli.main(argv + [a for arm in arms for a in ("--arm", arm)])
