"""A new task that reuses today's treatments is one task module and one registry row.

The toy task below is all such a module holds (its params, action components, features,
heuristic rule, treatment and reward); one :func:`register` call per patient model is the
registry row. Registered, it runs through the registry-parametrised tests of the environment
API, the command line, the figures, the planner and the behaviour policies without edits to
any of them or to the package.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import gymnasium
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.cli import main
from sepsisim_jax.cohort import clinical_course
from sepsisim_jax.counterfactual import antibiotic_at
from sepsisim_jax.envs.actions import DOSE_CHANGE, FLUID_BOLUS, MAX_DOSE
from sepsisim_jax.envs.base import Reader, SepsisEnv
from sepsisim_jax.envs.registration import NAMESPACE, REGISTRY
from sepsisim_jax.envs.rewards import map_band_reward, urine_reward
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.offline import behaviour_policy
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED, SEPSISIM
from sepsisim_jax.physiology.parameters import param
from sepsisim_jax.physiology.patient import PatientParams
from sepsisim_jax.planning import optimize_schedule
from tests.envs import test_env_api

TOY_IDS = ("Hydration-v0", "Hydration-v1")


# --- the task module ------------------------------------------------------------------------


@struct.dataclass
class HydrationParams(environment.EnvParams):
    patient: PatientParams = struct.field(default_factory=PatientParams)
    antibiotic_efficacy: float = param(0.5, 0.0, 1.0, "1/h", "toy task: given from admission")
    max_steps_in_episode: int = SEPSISIM.episode_steps


def hydration_rule(read: Reader) -> jax.Array:
    """500 mL below MAP 65, and a dose step below 60."""
    map_mmhg = read("map_mmhg")
    return jnp.stack(
        [jnp.where(map_mmhg < 65.0, 500.0, 0.0), jnp.where(map_mmhg < 60.0, 0.02, 0.0)]
    )


class Hydration(SepsisEnv[HydrationParams]):
    """Toy task: fluids and vasopressor changes with the antibiotic running; the reward is the
    MAP band and urine output."""

    task_name = "Hydration"
    params_cls = HydrationParams
    actions = (FLUID_BOLUS, DOSE_CHANGE)
    severity_bacteria = {"easy": 0.2, "medium": 0.4, "hard": 0.6}
    observation_names = ("map_mmhg", "lactate", "urine_output", "vasopressor_dose", "sofa")
    info_names = ("map_mmhg", "lactate", "tissue_damage", "step")
    heuristic = staticmethod(hydration_rule)

    def _admission_treatment(self, params: HydrationParams) -> tuple[float, float]:
        return 0.0, 0.0

    def _treat(
        self, state: EnvState, action: jax.Array, params: HydrationParams
    ) -> tuple[Treatment, jax.Array]:
        dose = jnp.clip(state.patient.vaso_dose + action[1], 0.0, MAX_DOSE)
        treatment = Treatment(action[0], dose, jnp.asarray(params.antibiotic_efficacy))
        return treatment, state.antibiotic_active

    def _reward(self, prev: EnvState, state: EnvState, params: HydrationParams) -> jax.Array:
        pat = state.patient
        band = map_band_reward(
            pat.map_mmhg, upper=90.0, bonus=1.0, floor=50.0, gain=1.0, divisor=15.0
        )
        return band + urine_reward(pat.urine)


# --- the registry row -----------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    """The toy task on both models, for this module only (the registries are restored)."""
    for env_id, model in zip(TOY_IDS, (SEPSISIM, REYNOLDS_COUPLED), strict=True):
        sepsisim_jax.register(env_id, Hydration, model)
    sepsisim_jax.register_gymnax()
    sepsisim_jax.register_gymnasium()
    yield
    for env_id in TOY_IDS:
        del REGISTRY[env_id]
        del gymnasium.registry[f"{NAMESPACE}/{env_id}"]
        gymnax.registered_envs.remove(f"{NAMESPACE}/{env_id}")


# --- what picks it up -----------------------------------------------------------------------


@pytest.mark.parametrize("env_id", TOY_IDS)
def test_the_environment_api_tests_pass_unchanged(env_id):
    assert env_id in sepsisim_jax.env_ids()
    test_env_api.test_reset_and_step_under_jit_stay_in_spaces(env_id)
    test_env_api.test_same_key_same_trajectory_different_key_different(env_id)
    env, params = sepsisim_jax.make(env_id, severity="hard")
    assert env.env_id == env_id and env.num_actions == 2
    np.testing.assert_array_equal(env.action_low, np.float32([0.0, -0.1]))
    assert gymnax.make(f"{NAMESPACE}/{env_id}")[0] == sepsisim_jax.make(env_id)[0]
    single = gymnasium.make(f"{NAMESPACE}/{env_id}")
    obs, info = single.reset(seed=0)
    assert obs.shape == (5,) and set(info) == set(env.info_names)
    # v1's antibiotic default is the model's, as for every task with that parameter.
    expected = REYNOLDS_COUPLED.task_defaults["antibiotic_efficacy"] if "v1" in env_id else 0.5
    assert params.antibiotic_efficacy == pytest.approx(expected)


def test_the_command_line_runs_it_with_its_own_heuristic(tmp_path, capsys):
    out = tmp_path / "rollout.json"
    argv = ["rollout", "--env", "Hydration-v0", "--patients", "32", "--json", str(out)]
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert [row["policy"] for row in rows] == ["random", "heuristic"]
    assert all(row["env"] == "Hydration-v0" and row["mean_length"] > 0 for row in rows)
    assert "Hydration-v0" in capsys.readouterr().out


def test_figures_planner_and_behaviour_policies_read_its_declarations():
    env, params = sepsisim_jax.make("Hydration-v0", severity="hard")
    heuristic = sepsisim_jax.heuristic_policy(env)
    course = clinical_course(env, params, heuristic, jax.random.key(0), 2, 6)
    assert course.action.shape == (7, 2, 2)
    figure = plotting.patient_trajectory(course, 0, title="toy")
    assert len(figure.axes) >= 6
    plan = optimize_schedule(env, params, jax.random.key(1), 4, 2, n_patients=1)
    assert plan.schedule.shape == (1, 4, 2) and int(plan.switch_hour[0]) == -1
    schedule = plotting.planned_schedule(plan, env)
    labels = [ax.get_ylabel() for ax in schedule.axes[1:]]
    assert labels == ["fluid bolus (mL)", "vasopressor dose change (mcg/kg/min)"]
    behaviour = behaviour_policy(env, "heuristic", epsilon=0.1)
    assert behaviour.low.shape == (2,)
    with pytest.raises(ValueError, match="antibiotic action component"):
        antibiotic_at(env, 3)


def test_a_misnamed_or_taken_id_is_refused():
    with pytest.raises(ValueError, match="'Hydration-v0'"):
        sepsisim_jax.register("Toy-v0", Hydration, SEPSISIM)
    with pytest.raises(ValueError, match="registered already"):
        sepsisim_jax.register("Hydration-v0", Hydration, SEPSISIM)
