"""Every output is bit for bit what the fixture holds: a refactor changes no output.

``tests/fixtures/golden.npz`` holds the outputs of the cases below. They were first computed at
commit 69dd7f3, before the package was regrouped (with that commit's module paths; CHANGELOG.md
lists the moves), and recorded again, with ``python -m tests.test_golden``, when the fixed-step
RK4 was written out instead of run through diffrax's loop (which moved float32 bits; see
CHANGELOG.md). The cases:
trajectories of all six ids with and without virtual patients; for SepsisManagement v0 and v1
``rollout_episodes`` (heuristic), ``cohort_summary`` (random, and by bins of a drawn
parameter) and ``clinical_course``; logged episodes, a Minari dataset read back, policy values,
an OPE table, counterfactual pairs, planning, patient fitting and PPO. (The regrouping itself
was checked against a wider record at 69dd7f3: rollouts, summaries and courses of every id,
counterfactuals and plans on both models; this is the part kept as a test, chosen to compile
few programs.) A refactor must keep them; a change that is meant to move them records a new
fixture and says so in the CHANGELOG. Outputs added since (new fields) are not compared;
renamed ones are compared under their new names (:data:`RENAMED`).

The test command compares :data:`CORE`, 4 of the 17 cases in a quarter of the time: v0's
trajectories, rollouts, summary and courses; v1's trajectories and rollouts with virtual
patients; counterfactual pairs; PPO. ``python -m pytest tests/test_golden.py --golden all``
compares all 17, which a refactor runs before it lands.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "golden.npz"
IDS = (
    "FluidResuscitation-v0",
    "VasopressorTitration-v0",
    "SepsisManagement-v0",
    "FluidResuscitation-v1",
    "VasopressorTitration-v1",
    "SepsisManagement-v1",
)
ENVS = [(env_id, spread) for env_id in IDS for spread in (0.0, 0.2)]
TIMINGS = ("compile_seconds", "run_seconds")
RENAMED = {".antibiotic_hour": ".switch_hour"}  # fixture name -> today's (planning's Plan)


def current_api() -> types.SimpleNamespace:
    """The functions the cases call, from today's modules."""
    import sepsisim_jax
    from sepsisim_jax import cohort, counterfactual, offline, ope, planning, stochastic
    from sepsisim_jax.offline import datasets
    from sepsisim_jax.training import default_config, train_ppo

    return types.SimpleNamespace(
        make=sepsisim_jax.make,
        heuristic_policy=sepsisim_jax.heuristic_policy,
        random_policy=sepsisim_jax.random_policy,
        rollout_episodes=cohort.rollout_episodes,
        trajectories=cohort.trajectories,
        cohort_summary=cohort.cohort_summary,
        clinical_course=cohort.clinical_course,
        record_episodes=offline.record_episodes,
        policy_value=offline.policy_value,
        collect=datasets.collect,
        dataset_metadata=datasets.dataset_metadata,
        load_episodes=datasets.load_episodes,
        ope=ope,
        epsilon_greedy=stochastic.epsilon_greedy,
        gaussian=stochastic.gaussian,
        paired_outcomes=counterfactual.paired_outcomes,
        antibiotic_at=counterfactual.antibiotic_at,
        schedule_returns=planning.schedule_returns,
        optimize_schedule=planning.optimize_schedule,
        simulate_observations=planning.simulate_observations,
        fit_patient=planning.fit_patient,
        default_config=default_config,
        train_ppo=train_ppo,
    )


def arrays(prefix: str, tree) -> dict[str, np.ndarray]:
    """The leaves of ``tree`` as host arrays, keyed by ``prefix`` and their path."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def as_json(prefix: str, value) -> dict[str, np.ndarray]:
    return {prefix: np.array(json.dumps(value, sort_keys=True))}


def policy(api, env, name: str):
    return api.heuristic_policy(env) if name == "heuristic" else api.random_policy(env)


def env_case(api, env_id: str, spread: float) -> dict[str, np.ndarray]:
    """Trajectories (random policy) of one environment, and for SepsisManagement the
    rollouts (heuristic) and, without virtual patients, a cohort summary (random) and
    clinical courses (heuristic)."""
    env, params = api.make(env_id, severity="hard", patient_spread=spread)
    traj = api.trajectories(env, params, policy(api, env, "random"), jax.random.key(2), 4, 24)
    out = arrays("trajectories", traj)
    if not env_id.startswith("SepsisManagement"):
        return out
    heuristic = policy(api, env, "heuristic")
    out |= arrays("rollout", api.rollout_episodes(env, params, heuristic, jax.random.key(1), 37))
    if spread == 0.0:
        summary = api.cohort_summary(
            env,
            params,
            policy(api, env, "random"),
            jax.random.key(3),
            300,
            chunk_size=128,
            progress=False,
        ).to_dict()
        out |= as_json("summary", {k: v for k, v in summary.items() if k not in TIMINGS})
        out |= arrays("course", api.clinical_course(env, params, heuristic, jax.random.key(4), 3))
    return out


def binned_summary_case(api) -> dict[str, np.ndarray]:
    """A cohort summary by bins of a drawn parameter (v1, virtual patients, heuristic)."""
    env, params = api.make("SepsisManagement-v1", patient_spread=0.2)
    summary = api.cohort_summary(
        env,
        params,
        api.heuristic_policy(env),
        jax.random.key(5),
        200,
        chunk_size=64,
        parameter="k_pg",
        bins=3,
        progress=False,
    ).to_dict()
    return as_json("binned", {k: v for k, v in summary.items() if k not in TIMINGS})


def offline_case(api, tmp_path: Path) -> dict[str, np.ndarray]:
    """Logged episodes, a Minari dataset of them read back, values and an OPE table."""
    env, params = api.make("SepsisManagement-v0", severity="hard", max_steps_in_episode=12)
    behaviour = api.gaussian(env, api.heuristic_policy(env), 0.2, "heuristic")
    target = api.gaussian(env, api.heuristic_policy(env), 0.15, "heuristic")
    key = jax.random.key(6)
    logged = api.record_episodes(env, params, behaviour, key, 50, chunk_size=32, progress=False)
    out = arrays("episodes", logged)
    value = api.policy_value(env, params, target, key, 100, chunk_size=64, progress=False)
    out |= as_json("value", value.to_dict())
    results = api.ope.evaluate_all(
        logged,
        target,
        params,
        0.99,
        jax.random.key(7),
        behaviour=behaviour,
        fqe_config=api.ope.FQEConfig(hidden_sizes=(16,), iterations=3, steps_per_iteration=10),
        n_bootstrap=20,
    )
    out |= as_json("ope", {name: r.to_dict() for name, r in results.items()})
    with mock.patch.dict(os.environ, {"MINARI_DATASETS_PATH": str(tmp_path)}):
        dataset = api.collect(
            "SepsisManagement-v1",
            "heuristic",
            20,
            jax.random.key(8),
            severity="hard",
            patient_spread=0.2,
            epsilon=0.1,
            value_episodes=40,
            chunk_size=16,
            progress=False,
        )
    out |= arrays("dataset", api.load_episodes(dataset, progress=False))
    out |= as_json("dataset_value", api.dataset_metadata(dataset)["true_value"])
    return out


def counterfactual_case(api) -> dict[str, np.ndarray]:
    out = {}
    for env_id in ("SepsisManagement-v1",):
        env, params = api.make(env_id, severity="medium")
        pair = api.paired_outcomes(
            env,
            params,
            api.antibiotic_at(env, 1),
            api.antibiotic_at(env, 6),
            jax.random.key(9),
            40,
        )
        out |= arrays(f"{env_id}/pair", (pair.a, pair.b))
    return out


def planning_case(api) -> dict[str, np.ndarray]:
    out = {}
    for env_id in ("SepsisManagement-v0", "SepsisManagement-v1"):
        env, params = api.make(env_id, severity="hard")
        key = jax.random.key(10)
        rng = np.random.default_rng(0)
        schedule = rng.uniform(env.action_low, env.action_high, (3, 12, 3)).astype(np.float32)
        out[f"{env_id}/schedule_returns"] = np.asarray(
            api.schedule_returns(env, params, key, jnp.asarray(schedule))
        )
        out[f"{env_id}/observed"] = np.asarray(
            api.simulate_observations(env, params, key, jnp.asarray(schedule[0]), patient=1)
        )
        if env_id.endswith("-v1"):
            continue  # the planner's gradients: on v0 (the engine and the planner are shared)
        plan = api.optimize_schedule(
            env,
            params,
            key,
            12,
            4,
            n_patients=2,
            switch_hours=(0, 3),
            init=api.heuristic_policy(env),
            compare={"heuristic": api.heuristic_policy(env)},
        )
        out |= arrays(f"{env_id}/plan", plan)
    env, params = api.make(
        "SepsisManagement-v0",
        severity="hard",
        map_noise_sd=0.0,
        urine_noise_sd=0.0,
        admission_jitter=0.0,
    )
    key = jax.random.key(12)
    actions = jnp.tile(jnp.asarray([[300.0, 0.02, 1.0]]), (10, 1))
    observed = api.simulate_observations(env, params, key, actions)
    fit = api.fit_patient(
        env,
        params,
        key,
        actions,
        observed,
        ("k_growth", "map_baseline"),
        start={"k_growth": 0.5, "map_baseline": 80.0},
        steps=5,
        progress=False,
    )
    out |= arrays("fit", fit)
    return out


def ppo_case(api) -> dict[str, np.ndarray]:
    config = api.default_config("SepsisManagement-v1", total_timesteps=2 * 8 * 96, num_envs=8)
    result = api.train_ppo(config, n_seeds=2, progress=False)
    return arrays("ppo", (result.metrics, result.runner.train_state.params))


CASES = {
    **{f"env/{env_id}/{spread:g}": (env_case, env_id, spread) for env_id, spread in ENVS},
    "binned": (binned_summary_case,),
    "offline": (offline_case, "tmp"),
    "counterfactual": (counterfactual_case,),
    "planning": (planning_case,),
    "ppo": (ppo_case,),
}


CORE = ("env/SepsisManagement-v0/0", "env/SepsisManagement-v1/0.2", "counterfactual", "ppo")


def run_case(api, name: str, tmp_path: Path) -> dict[str, np.ndarray]:
    fn, *args = CASES[name]
    args = [tmp_path if a == "tmp" else a for a in args]
    return {f"{name}/{k}": v for k, v in fn(api, *args).items()}


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return dict(data)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "name" in metafunc.fixturenames:
        everything = metafunc.config.getoption("golden") == "all"
        metafunc.parametrize("name", list(CASES) if everything else list(CORE))


def test_core_cases_are_cases_of_the_fixture(golden):
    assert set(CORE) <= set(CASES)
    assert all(any(key.startswith(name + "/") for key in golden) for name in CASES)


@pytest.mark.slow
def test_outputs_are_bit_for_bit_those_of_the_fixture(name, golden, tmp_path):
    got = run_case(current_api(), name, tmp_path)
    expected = {renamed(k): v for k, v in golden.items() if k.startswith(name + "/")}
    assert expected, f"the fixture has no case {name}"
    assert set(expected) <= set(got), sorted(set(expected) - set(got))
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def renamed(key: str) -> str:
    for old, new in RENAMED.items():
        key = key.replace(old, new)
    return key


def record(path: Path = FIXTURE) -> None:
    """Compute every case with today's code and write them as the fixture (a change meant to
    move outputs does this, and says so in CHANGELOG.md)."""
    import tempfile

    api, out = current_api(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            out |= run_case(api, name, Path(tmp))
    np.savez_compressed(path, **out)
    print(f"wrote {len(out)} arrays of {len(CASES)} cases to {path.name}")


if __name__ == "__main__":
    record()
