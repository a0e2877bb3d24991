"""The cohorts of the v1 calibration: policies chosen by a traced id, and one cohort run on the
package's cohort engine (:func:`sepsisim_jax.cohort.scan.scan_cohort`) with per-patient books.

Patients and hourly noise follow the package's key scheme: patient ``p`` of the cohort of
``key`` is admitted and run with the keys of ``fold_in(key, p)``, hour ``t`` with
``fold_in(episode key, t)``. A patient's course therefore depends on the key and its index
only, not on the size of the cohort; a 2,000-hour run repeats the first 96 hours of a
96-hour run; and every policy meets the same patients and the same noise in every hour.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.cohort.scan import padded_patients, scan_cohort
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED
from sepsisim_jax.policies import Policy, heuristic_policy

ENVS = ("FluidResuscitation-v1", "VasopressorTitration-v1", "SepsisManagement-v1")
TIERS = REYNOLDS_COUPLED.severities
SPREAD = 0.2
EPISODE_HOURS = REYNOLDS_COUPLED.episode_steps  # 96 one-hour steps
FATE_HOURS = 2000
ANTIBIOTIC_HOURS = tuple(range(13))
OTHER_EPISODES = (72, 120)  # h: the fate agreement an episode of that length would have
SENSITIVITY_KILL = (0.5, 1.0)  # 1/h, against v1's 0.2: how strong an antibiotic Kumar implies

# Policies, chosen by a traced id so that one compilation per environment serves them all.
NONE, HEURISTIC, RANDOM, MAX_FLUID, ANTIBIOTIC_AT, TITRATE, AGGRESSIVE = range(7)
POLICY_NAMES = {
    NONE: "no treatment",
    HEURISTIC: "heuristic",
    RANDOM: "random",
    MAX_FLUID: "max fluids",
    ANTIBIOTIC_AT: "antibiotic at hour 0",
    TITRATE: "titrate to MAP 65-75",
    AGGRESSIVE: "aggressive titration",
}
# The deterministic treatments of section 6 (antibiotic at hour 0 is SepsisManagement's own).
TREATMENTS = {
    "FluidResuscitation-v1": (HEURISTIC, MAX_FLUID, TITRATE),
    "VasopressorTitration-v1": (HEURISTIC, MAX_FLUID, TITRATE, AGGRESSIVE),
    "SepsisManagement-v1": (HEURISTIC, ANTIBIOTIC_AT, TITRATE, AGGRESSIVE, MAX_FLUID),
}
POLICY_TEXT = {
    "no treatment": "zero action (VasopressorTitration: the dose stays at its admission 0.05; "
    "SepsisManagement: no antibiotic); the task's own antibiotic and fluid protocol run",
    "heuristic": "sepsisim_jax.policies.heuristic_policy (SepsisManagement: antibiotic at hour 0)",
    "random": "uniform random actions in the action bounds",
    "max fluids": "1000 mL every hour (FluidResuscitation, SepsisManagement: nothing else, so no "
    "antibiotic in SepsisManagement); VasopressorTitration: its fluid protocol raised from "
    "its default (100 mL/h for v1) to 1000 mL/h, dose held",
    "antibiotic at hour h": "SepsisManagement: the heuristic's fluids and vasopressor, the "
    "antibiotic component overridden to 1 from the observed step h on, 0 before",
    "titrate to MAP 65-75": "vasopressor dose change +0.1 if MAP < 60, +0.05 if MAP < 65, "
    "-0.02 if MAP > 75 (SepsisManagement: heuristic fluids, antibiotic at hour 0); "
    "FluidResuscitation, which has no vasopressor: 1000 mL if MAP < 65, 250 mL if MAP < 75, "
    "else none",
    "aggressive titration": "dose change +0.1 whenever MAP < 65, -0.02 above 85 "
    "(SepsisManagement: heuristic fluids, antibiotic at hour 0)",
}


def policy_source(env: SepsisEnv, policy_id: jax.Array, antibiotic_hour: jax.Array) -> Policy:
    """The policy ``policy_id`` of ``env`` as ``policy(key, obs, params) -> action``; ids and
    the antibiotic hour may be traced."""
    task = env.task_name
    heuristic = heuristic_policy(env)

    def act(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        read = lambda name: obs[env.observation_index(name)]  # noqa: E731
        map_mmhg = read("map_mmhg")
        heur = heuristic(key, obs, params)
        zero = jnp.zeros_like(heur)
        rand = env.action_space(params).sample(key).astype(heur.dtype)
        titrated = jnp.select(
            [map_mmhg < 60.0, map_mmhg < 65.0, map_mmhg > 75.0], [0.1, 0.05, -0.02], 0.0
        )
        aggressive = jnp.select([map_mmhg < 65.0, map_mmhg > 85.0], [0.1, -0.02], 0.0)
        if task == "FluidResuscitation":
            max_fluid = jnp.array([1000.0])
            antibiotic_at = heur
            titrate = jnp.select([map_mmhg < 65.0, map_mmhg < 75.0], [1000.0, 250.0], 0.0)[None]
            strong = heur
        elif task == "VasopressorTitration":
            max_fluid = zero  # the protocol's fluid is raised in the params instead
            antibiotic_at = heur
            titrate, strong = titrated[None], aggressive[None]
        else:
            max_fluid = jnp.array([1000.0, 0.0, 0.0])
            given = (read("step") >= antibiotic_hour).astype(heur.dtype)
            antibiotic_at = heur.at[2].set(given)
            titrate = jnp.stack([heur[0], titrated, 1.0])
            strong = jnp.stack([heur[0], aggressive, 1.0])
        options = jnp.stack([zero, heur, rand, max_fluid, antibiotic_at, titrate, strong])
        return options.astype(jnp.float32)[policy_id]

    return act


class ProtocolStopped:
    """``env`` (no auto-reset) whose fluid protocol (VasopressorTitration's) gives nothing
    from hour ``hours`` of the episode on; everything else is ``env``'s."""

    def __init__(self, env: SepsisEnv, hours: jax.Array) -> None:
        self.env, self.hours = env, hours
        self.model = env.model

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, EnvState]:
        return self.env.reset(key, params)

    def step_env(self, key: jax.Array, state: EnvState, action: jax.Array, params: Any) -> tuple:
        protocol = jnp.where(state.time < self.hours, params.fluid_protocol_ml, 0.0)
        return self.env.step_env(key, state, action, params.replace(fluid_protocol_ml=protocol))


@partial(jax.jit, static_argnames=("env", "n_patients", "n_steps"))
def cohort(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    n_patients: int,
    n_steps: int,
    policy_id: jax.Array,
    antibiotic_hour: jax.Array,
    protocol_hours: jax.Array,
) -> dict[str, Any]:
    """Patients ``0 .. n_patients - 1`` of ``key`` for ``n_steps`` hours of ``env.step_env``
    (no auto-reset) under policy ``policy_id``, keeping per-patient books: the first death,
    hours with observed MAP < 65 over hours 1-24 while alive and the mmHg-hours below 65
    over them, the largest dose within the
    episode, ``N*`` and ``D`` at hour 12 and at the end, and the drawn circulation parameters.
    A task's fluid protocol (VasopressorTitration) stops after ``protocol_hours``."""
    patients = padded_patients(n_patients)
    width = patients.shape[0]
    stepped = ProtocolStopped(env, protocol_hours) if hasattr(params, "fluid_protocol_ml") else env
    zeros = jnp.zeros((width,), env.dtype)
    books = {
        "alive": jnp.ones((width,), bool),
        "death_hour": jnp.full((width,), n_steps + 1, jnp.int32),  # n_steps + 1: alive
        "hypotension_hours_24": jnp.zeros((width,), jnp.int32),
        "map_deficit_24": zeros,
        "max_dose": zeros,
        "damage_12": zeros,
        "phagocytes_12": zeros,
        "final_damage": zeros,
        "final_pathogen": zeros,
    }

    def record(books: dict, obs: jax.Array, state: EnvState, action: jax.Array, output: tuple):
        _, after, _, terminated, _ = output
        hour, alive = state.time + 1, books["alive"]
        inflammation = after.patient.ode.inflammation
        in_episode = alive & (state.time < EPISODE_HOURS)
        counted = alive & ~terminated & (hour <= 24)
        low_map = counted & (after.patient.map_mmhg < 65.0)
        deficit = jnp.where(counted, jnp.maximum(0.0, 65.0 - after.patient.map_mmhg), 0.0)
        books = {
            "alive": alive & ~terminated,
            "death_hour": jnp.where(alive & terminated, hour, books["death_hour"]),
            "hypotension_hours_24": books["hypotension_hours_24"] + low_map,
            "map_deficit_24": books["map_deficit_24"] + deficit,
            "max_dose": jnp.where(
                in_episode,
                jnp.maximum(books["max_dose"], after.patient.vaso_dose),
                books["max_dose"],
            ),
            "damage_12": jnp.where(hour == 12, inflammation.damage, books["damage_12"]),
            "phagocytes_12": jnp.where(hour == 12, inflammation.phagocytes, books["phagocytes_12"]),
            "final_damage": inflammation.damage,
            "final_pathogen": inflammation.pathogen,
        }
        return books, None

    source = policy_source(env, policy_id, antibiotic_hour)
    admitted, books, _ = scan_cohort(
        stepped, params, source, key, patients, n_steps, record, books, auto_reset=False
    )
    out = books | {"circulation": admitted.physiology.circulation}
    return jax.tree.map(lambda x: x[:n_patients], out)


class Runner:
    """Cohorts of one size and key, by environment, tier and policy, cached on the host.

    ``one_horizon`` runs every cohort to the fate horizon, treated ones too (one compiled
    function per environment instead of two, for smoke tests): the books of the episode are
    the same, since a longer run repeats the episode's hours; only ``final_damage`` and
    ``final_pathogen``, which the sections read for untreated cohorts alone, differ.
    """

    def __init__(
        self,
        n_patients: int,
        seed: int,
        bar: tqdm,
        fate_hours: int = FATE_HOURS,
        one_horizon: bool = False,
        overrides: dict[str, float] | None = None,
    ) -> None:
        self.n_patients, self.fate_hours = n_patients, fate_hours
        self.overrides = dict(overrides or {})
        self.episode_hours = fate_hours if one_horizon else EPISODE_HOURS
        self.key = jax.random.key(seed)
        self.bar = bar
        self.envs = {e: sepsisim_jax.make(e, patient_spread=SPREAD)[0] for e in ENVS}
        self.cache: dict[tuple, dict[str, Any]] = {}

    def params(self, env_id: str, tier: str, policy_id: int, kill: float | None) -> Any:
        """The tier's params (traced, so one compiled env serves the three tiers)."""
        params = sepsisim_jax.make(env_id, severity=tier, patient_spread=SPREAD, **self.overrides)[
            1
        ]
        if env_id.startswith("VasopressorTitration") and policy_id == MAX_FLUID:
            params = params.replace(fluid_protocol_ml=1000.0)
        if kill is not None:
            params = params.replace(antibiotic_efficacy=kill)
        return params

    def __call__(
        self,
        env_id: str,
        tier: str,
        policy_id: int,
        abx: int = 0,
        kill: float | None = None,
        protocol_hours: int = FATE_HOURS,
    ) -> dict[str, Any]:
        """One cohort: ``EPISODE_HOURS``, or the fate horizon for untreated patients (the
        episode is its start); ``kill`` overrides the antibiotic's kill rate (1/h) for a
        sensitivity; a task's fluid protocol stops after ``protocol_hours``."""
        hours = self.fate_hours if policy_id == NONE else self.episode_hours
        k = (env_id, tier, policy_id, hours, abx, kill, protocol_hours)
        if k not in self.cache:
            self.bar.set_postfix_str(f"{env_id} {tier} {POLICY_NAMES[policy_id]} h{abx}")
            out = cohort(
                self.envs[env_id],
                self.params(env_id, tier, policy_id, kill),
                self.key,
                self.n_patients,
                hours,
                jnp.asarray(policy_id, jnp.int32),
                jnp.asarray(abx, jnp.int32),
                jnp.asarray(protocol_hours, jnp.int32),
            )
            out = jax.device_get(out)
            out["died"] = out["death_hour"] <= EPISODE_HOURS
            self.cache[k] = out
            self.bar.update()
        return self.cache[k]


def planned_runs(envs: tuple[str, ...]) -> int:
    """How many cohorts the sections simulate (for the progress bar)."""
    n = 0
    for env_id in envs:
        policies = {NONE, HEURISTIC, RANDOM, MAX_FLUID, *TREATMENTS[env_id]}
        n += len(TIERS) * len(policies)
        if env_id.startswith("SepsisManagement"):
            n += len(TIERS) * (len(ANTIBIOTIC_HOURS) - 1)  # ANTIBIOTIC_AT h=0 counted above
            n += len(TIERS) * len(ANTIBIOTIC_HOURS) * len(SENSITIVITY_KILL)
        if env_id.startswith("VasopressorTitration"):
            n += len(TIERS)  # the fate with the fluid protocol stopped after the episode
    return n
