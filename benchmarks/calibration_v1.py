"""Calibration of the v1 patient (Reynolds 2006 coupled to the circulation) against the clinic.

Each clinical target is set beside what the model gives, with a verdict (met or not met, by
a band stated with the target) and the gap. Sections:

1. antibiotic delay (Kumar et al. 2006, Seymour et al. 2017): SepsisManagement-v1, same
   patients under the clinical heuristic's fluids and vasopressors with the antibiotic given
   at hour h = 0..12; survival lost per hour over h = 0..6 and the odds ratio of death per
   hour of delay from a logistic fit; figure ``docs/figures/antibiotic_delay.png``;
2. a 500 mL crystalloid bolus over 30 min (Ernest et al. 1999, Hahn 2020, Glassford et al.
   2014): the fraction still intravascular and the MAP rise of the quasi-steady plasma volume;
3. hours with MAP < 65 in the first 24 h against death (Maheshwari et al. 2018);
4. refractory shock: mortality when the dose ever exceeded 1 mcg/kg/min (Martin et al. 2015);
5. fate separation: untreated patients, death within the 96 h episode against death within
   2,000 h, the same patient integrated on;
6. tier fractions: who survives untreated, who only with treatment, who dies under every
   policy tried; and survival per environment, tier and baseline policy.

Every cohort is drawn with ``patient_spread`` 0.2 and the same key, so every policy and
every antibiotic hour meets the same patients (those of ``rollout_episodes`` with that key).

Usage: ``python benchmarks/calibration_v1.py [--patients 2000] [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from common import RESULTS_DIR, machine_info, verdict, write_results
from matplotlib.figure import Figure
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.physiology import coupled
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED, tier_point
from sepsisim_jax.policies import heuristic_policy
from sepsisim_jax.rollout import patient_keys
from sepsisim_jax.text_table import Column, text_table

ENVS = ("FluidResuscitation-v1", "VasopressorTitration-v1", "SepsisManagement-v1")
TIERS = REYNOLDS_COUPLED.severities
SPREAD = 0.2
EPISODE_HOURS = REYNOLDS_COUPLED.episode_steps  # 96 one-hour steps
FATE_HOURS = 2000
ANTIBIOTIC_HOURS = tuple(range(13))
OTHER_EPISODES = (72, 120)  # h: the fate agreement an episode of that length would have
SENSITIVITY_KILL = (0.5, 1.0)  # 1/h, against v1's 0.2: how strong an antibiotic Kumar implies
FIGURE = Path(__file__).resolve().parent.parent / "docs" / "figures" / "antibiotic_delay.png"

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

# Clinical targets and the bands that count as met.
KUMAR_SURVIVAL_HOUR0 = 0.799
KUMAR_LOSS_PER_HOUR = 0.076
KUMAR_BAND = (0.038, 0.114)  # +-50% of 7.6 points per hour
ODDS_BAND = (1.03, 1.12)  # Seymour 2017's lower 95% limit to Kumar 2006's adjusted 1.119
ERNEST_FRACTION, ERNEST_BAND = 0.25, (0.20, 0.30)
HAHN_DURING_BAND, HAHN_AFTER_BAND = (0.50, 0.60), (0.15, 0.20)
GLASSFORD_RISE_BAND = (6.0, 9.0)  # 7-8 mmHg, +-1 mmHg
GLASSFORD_GONE = 0.25  # "largely gone" at 1 h: below a quarter of the peak rise
MARTIN_REFRACTORY, MARTIN_OVERALL, MARTIN_BAND = 0.90, 0.48, (0.80, 1.0)
FATE_AGREEMENT = 0.95
BOLUS_MINUTES = 30.0
BOLUS_L = 0.5
HYPOTENSION_BINS = ((0, 0), (1, 2), (3, 5), (6, 11), (12, 24))


# --- policies ---------------------------------------------------------------------------------


def _policy_table(env: SepsisEnv) -> Callable[..., jax.Array]:
    """``act(key, obs, params, policy_id, antibiotic_hour)`` for every policy of ``env``."""
    task = env.env_id.split("-")[0]
    heuristic = heuristic_policy(env)

    def act(key, obs, params, policy_id, antibiotic_hour):
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
        options = jnp.stack([zero, heur, rand, max_fluid, antibiotic_at, titrate, strong]).astype(
            jnp.float32
        )
        return options[policy_id]

    return act


# --- cohorts ----------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("env", "n_patients"))
def cohort(
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    n_patients: int,
    n_steps: jax.Array,
    policy_id: jax.Array,
    antibiotic_hour: jax.Array,
    protocol_hours: jax.Array,
) -> dict[str, Any]:
    """``n_patients`` admitted as ``rollout_episodes`` admits them with ``key``, then
    ``n_steps`` hours (traced: one compilation serves 96 and 2,000) of ``env.step_env``
    without auto-reset, keeping per-patient books: the first death, hours with observed
    MAP < 65 over hours 1-24 while alive, the largest dose within the episode, ``N*`` and
    ``D`` at hour 12 and at the end, and the drawn circulation parameters. A task's fluid
    protocol (VasopressorTitration) stops after ``protocol_hours``."""
    act = jax.vmap(_policy_table(env), in_axes=(0, 0, None, None, None))
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))
    admission_keys, _ = patient_keys(key, jnp.arange(n_patients))
    _, key_loop = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(admission_keys, params)
    dtype = env.dtype
    books = {
        "alive": jnp.ones((n_patients,), bool),
        "death_hour": jnp.full((n_patients,), FATE_HOURS + 1, jnp.int32),
        "hypotension_hours_24": jnp.zeros((n_patients,), jnp.int32),
        "max_dose": jnp.zeros((n_patients,), dtype),
        "damage_12": jnp.zeros((n_patients,), dtype),
        "phagocytes_12": jnp.zeros((n_patients,), dtype),
    }

    def body(t, carry):
        obs, state, books = carry
        key_act, key_step = jax.random.split(jax.random.fold_in(key_loop, t))
        action = act(jax.random.split(key_act, n_patients), obs, params, policy_id, antibiotic_hour)
        hour_params = params
        if hasattr(params, "fluid_protocol_ml"):
            protocol = jnp.where(t < protocol_hours, params.fluid_protocol_ml, 0.0)
            hour_params = params.replace(fluid_protocol_ml=protocol)
        obs, state, _, terminated, _ = step(
            jax.random.split(key_step, n_patients), state, action, hour_params
        )
        hour, alive = t + 1, books["alive"]
        inflammation = state.patient.ode.inflammation
        in_episode = alive & (t < EPISODE_HOURS)
        books = {
            "alive": alive & ~terminated,
            "death_hour": jnp.where(alive & terminated, hour, books["death_hour"]),
            "hypotension_hours_24": books["hypotension_hours_24"]
            + (alive & ~terminated & (hour <= 24) & (state.patient.map_mmhg < 65.0)),
            "max_dose": jnp.where(
                in_episode,
                jnp.maximum(books["max_dose"], state.patient.vaso_dose),
                books["max_dose"],
            ),
            "damage_12": jnp.where(hour == 12, inflammation.damage, books["damage_12"]),
            "phagocytes_12": jnp.where(hour == 12, inflammation.phagocytes, books["phagocytes_12"]),
        }
        return obs, state, books

    _, state, books = jax.lax.fori_loop(0, n_steps, body, (obs, state, books))
    inflammation = state.patient.ode.inflammation
    return books | {
        "final_damage": inflammation.damage,
        "final_pathogen": inflammation.pathogen,
        "circulation": state.physiology.circulation,
    }


class Runner:
    """Cohorts of one size and key, by environment, tier and policy, cached on the host."""

    def __init__(self, n_patients: int, seed: int, bar: tqdm) -> None:
        self.n_patients = n_patients
        self.key = jax.random.key(seed)
        self.bar = bar
        self.envs = {e: sepsisim_jax.make(e, patient_spread=SPREAD)[0] for e in ENVS}
        self.cache: dict[tuple, dict[str, Any]] = {}

    def params(self, env_id: str, tier: str, policy_id: int, kill: float | None) -> Any:
        """The tier's params (traced, so one compiled env serves the three tiers)."""
        params = sepsisim_jax.make(env_id, severity=tier, patient_spread=SPREAD)[1]
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
        hours: int = EPISODE_HOURS,
        abx: int = 0,
        kill: float | None = None,
        protocol_hours: int = FATE_HOURS,
    ) -> dict[str, Any]:
        """One cohort; ``kill`` overrides the antibiotic's kill rate (1/h) for a sensitivity;
        a task's fluid protocol stops after ``protocol_hours``."""
        if policy_id == NONE:
            hours = FATE_HOURS  # untreated cohorts run on to their fate; the episode is its start
        k = (env_id, tier, policy_id, hours, abx, kill, protocol_hours)
        if k not in self.cache:
            self.bar.set_postfix_str(f"{env_id} {tier} {POLICY_NAMES[policy_id]} h{abx}")
            out = cohort(
                self.envs[env_id],
                self.params(env_id, tier, policy_id, kill),
                self.key,
                self.n_patients,
                jnp.asarray(hours, jnp.int32),
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
    """How many cohorts :func:`run_all` simulates (for the progress bar)."""
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


# --- statistics -------------------------------------------------------------------------------


def logistic_fit(x: np.ndarray, died: np.ndarray) -> dict[str, float | None]:
    """Logistic regression of death on ``x`` (Newton-Raphson): odds ratio per unit of ``x``
    with its Wald 95% interval; ``None`` where the outcome or ``x`` does not vary."""
    x, y = np.asarray(x, float), np.asarray(died, float)
    empty = {"odds_ratio": None, "ci_low": None, "ci_high": None, "n": len(x)}
    if y.min() == y.max() or x.min() == x.max():
        return empty
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        w = np.maximum(p * (1.0 - p), 1e-12)
        hessian = design.T @ (design * w[:, None])
        delta = np.linalg.solve(hessian, design.T @ (y - p))
        beta += delta
        if np.max(np.abs(delta)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-design @ beta))
    hessian = design.T @ (design * np.maximum(p * (1.0 - p), 1e-12)[:, None])
    se = float(np.sqrt(np.linalg.inv(hessian)[1, 1]))
    b = float(beta[1])
    return {
        "odds_ratio": float(np.exp(b)),
        "ci_low": float(np.exp(b - 1.96 * se)),
        "ci_high": float(np.exp(b + 1.96 * se)),
        "n": len(x),
    }


def target(
    section: str,
    name: str,
    source: str,
    goal: str,
    band: tuple[float, float],
    value: float | None,
    spec: str,
    case: str = "",
) -> dict[str, Any]:
    """One target: met when ``value`` lies in ``band``; ``gap`` to the nearer end of it."""
    met = value is not None and band[0] <= value <= band[1]
    gap = None if value is None else float(value - np.clip(value, *band)) + 0.0
    return {
        "section": section,
        "name": name,
        "case": case,
        "source": source,
        "goal": goal,
        "band": list(band),
        "value": value,
        "gap_to_band": gap,
        "met": bool(met),
        "spec": spec,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# --- sections ---------------------------------------------------------------------------------


def delay_curve(run: Runner, tier: str, kill: float | None = None) -> dict[str, Any]:
    """Survival against the antibiotic hour for one tier, the same patients at every hour."""
    env_id = "SepsisManagement-v1"
    died = np.stack(
        [run(env_id, tier, ANTIBIOTIC_AT, abx=h, kill=kill)["died"] for h in ANTIBIOTIC_HOURS]
    )
    survival = 1.0 - died.mean(axis=1)
    hours = np.repeat(np.asarray(ANTIBIOTIC_HOURS, float), died.shape[1])
    return {
        "tier": tier,
        "antibiotic_kill_per_h": kill,
        "survival_by_hour": [float(s) for s in survival],
        "survival_lost_per_hour_0_6": float((survival[0] - survival[6]) / 6.0),
        "odds_ratio_per_hour_0_12": logistic_fit(hours, died.ravel()),
        "odds_ratio_per_hour_0_6": logistic_fit(hours[: 7 * died.shape[1]], died[:7].ravel()),
    }


def antibiotic_delay(run: Runner) -> tuple[list[dict], list[dict], list[dict]]:
    """Section 1: survival against the antibiotic hour, per tier, on the same patients; and
    the same at stronger kill rates (a sensitivity, not the model)."""
    rows, targets = [], []
    default_kill = sepsisim_jax.make("SepsisManagement-v1")[1].antibiotic_efficacy
    for tier in TIERS:
        row = delay_curve(run, tier) | {"antibiotic_kill_per_h": float(default_kill)}
        rows.append(row)
        loss, fit = row["survival_lost_per_hour_0_6"], row["odds_ratio_per_hour_0_12"]
        targets.append(
            target(
                "1 antibiotic delay",
                "survival lost per hour, h = 0..6",
                "Kumar et al., Crit Care Med 2006",
                "7.6 points per hour",
                KUMAR_BAND,
                loss,
                ".3f",
                tier,
            )
        )
        targets.append(
            target(
                "1 antibiotic delay",
                "odds ratio of death per hour, h = 0..12",
                "Seymour et al., NEJM 2017 (1.04); Kumar 2006 adjusted (1.119)",
                "1.04-1.12 per hour",
                ODDS_BAND,
                fit["odds_ratio"],
                ".3f",
                tier,
            )
        )
    sensitivity = [delay_curve(run, tier, kill) for kill in SENSITIVITY_KILL for tier in TIERS]
    return rows, targets, sensitivity


def antibiotic_figure(rows: list[dict], n_patients: int) -> Figure:
    """Survival against the antibiotic hour, one line per tier, and Kumar's slope."""
    fig = Figure(figsize=(10, 6), layout="constrained")
    ax = fig.subplots()
    colours = {"easy": "tab:green", "medium": "tab:orange", "hard": "tab:red"}
    hours = np.asarray(ANTIBIOTIC_HOURS)
    for row in rows:
        p0, k_pg = tier_point(row["tier"])
        survival = 100 * np.asarray(row["survival_by_hour"])
        ax.plot(
            hours,
            survival,
            "o-",
            color=colours[row["tier"]],
            lw=2,
            label=f"{row['tier']} ($P_0$ = {p0:g}, $k_{{pg}}$ = {k_pg:g}/h): "
            f"{100 * row['survival_lost_per_hour_0_6']:.1f} points lost per hour over 0-6 h",
        )
        ax.plot(
            hours[:7],
            survival[0] - 100 * KUMAR_LOSS_PER_HOUR * hours[:7],
            ":",
            color=colours[row["tier"]],
            lw=1.5,
        )
    kumar = 100 * (KUMAR_SURVIVAL_HOUR0 - KUMAR_LOSS_PER_HOUR * hours[:7])
    ax.plot(
        hours[:7],
        kumar,
        "k--",
        lw=2,
        label="Kumar et al. 2006: 79.9%, then 7.6 points lost per hour",
    )
    ax.plot([], [], "k:", lw=1.5, label="Kumar's slope from each tier's hour-0 survival")
    ax.set_xlabel("hour after admission at which the antibiotic is started")
    ax.set_ylabel(f"survival at {EPISODE_HOURS} h (%)")
    ax.set_xticks(hours)
    ax.set_xlim(-0.3, hours[-1] + 0.3)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(
        "SepsisManagement-v1: survival against antibiotic delay\n"
        f"heuristic fluids and vasopressor; {n_patients:,} virtual patients per tier "
        f"(spread {SPREAD:g}), the same at every hour",
        fontsize=11,
    )
    return fig


def bolus(run: Runner) -> tuple[dict, list[dict]]:
    """Section 2: the 500 mL / 30 min bolus in the quasi-steady plasma volume."""
    untreated = run("SepsisManagement-v1", "medium", NONE)
    c = untreated["circulation"]
    damage, phagocytes = untreated["damage_12"], untreated["phagocytes_12"]
    t = BOLUS_MINUTES / 60.0
    rate = BOLUS_L / t  # L/h

    def fractions(k):
        end = (1.0 - np.exp(-k * t)) / (k * t)
        return end, end * np.exp(-k * 0.5)

    default = coupled.CirculationParams()
    k0 = default.leak_rate
    d_typ = float(np.median(damage))
    k_typ = default.leak_rate * (1.0 + default.leak_damage_gain * d_typ)
    k_each = c.leak_rate * (1.0 + c.leak_damage_gain * damage)
    end0, after0 = fractions(k0)
    end_typ, after_typ = fractions(k_typ)
    end_each, _ = fractions(k_each)

    def rise(n, d, params, fluid_rate):
        none = coupled.true_map(n, coupled.plasma_volume(d, 0.0, params), 0.0, params)
        bolus = coupled.true_map(n, coupled.plasma_volume(d, fluid_rate, params), 0.0, params)
        return np.asarray(bolus - none), np.asarray(none)

    rise_each, base_each = rise(phagocytes, damage, c, rate)
    rise_env, _ = rise(phagocytes, damage, c, BOLUS_L / 1.0)
    rise_healthy, _ = rise(0.0, 0.0, default, rate)
    rise_typ, base_typ = rise(float(np.median(phagocytes)), d_typ, default, rate)
    rise_one_hour_after = 0.0  # no infusion: V = V_eq(D) again, by construction
    q = lambda x: [float(v) for v in np.percentile(x, [25, 50, 75])]  # noqa: E731
    result = {
        "cohort": "SepsisManagement-v1, medium, untreated, hour 12",
        "median_damage_hour_12": d_typ,
        "median_phagocytes_hour_12": float(np.median(phagocytes)),
        "damage_hour_12_quartiles": q(damage),
        "leak_rate_at_d0_per_h": float(k0),
        "leak_rate_at_typical_d_per_h": float(k_typ),
        "intravascular_fraction_end_of_infusion_d0": float(end0),
        "intravascular_fraction_30min_after_d0": float(after0),
        "intravascular_fraction_end_of_infusion_typical_d": float(end_typ),
        "intravascular_fraction_30min_after_typical_d": float(after_typ),
        "intravascular_fraction_end_of_infusion_cohort_quartiles": q(end_each),
        "map_rise_1000ml_per_h_healthy": float(rise_healthy),
        "map_rise_1000ml_per_h_typical": float(rise_typ),
        "map_without_bolus_typical": float(base_typ),
        "map_rise_1000ml_per_h_cohort_quartiles": q(rise_each),
        "map_without_bolus_cohort_quartiles": q(base_each),
        "map_rise_env_500ml_action_cohort_quartiles": q(rise_env),
        "map_rise_one_hour_after": rise_one_hour_after,
    }
    med_rise = result["map_rise_1000ml_per_h_cohort_quartiles"][1]
    section = "2 bolus"
    targets = [
        target(
            section,
            "intravascular fraction at end of 30 min infusion, septic",
            "Ernest et al., Crit Care Med 1999",
            "about 25%",
            ERNEST_BAND,
            float(end_typ),
            ".0%",
            f"D = {d_typ:.2f}",
        ),
        target(
            section,
            "intravascular fraction at end of infusion, no damage",
            "Hahn, Acta Anaesth Scand 2020",
            "50-60% during infusion",
            HAHN_DURING_BAND,
            float(end0),
            ".0%",
            "D = 0",
        ),
        target(
            section,
            "intravascular fraction 30 min after infusion, no damage",
            "Hahn, Acta Anaesth Scand 2020",
            "15-20% 30 min after",
            HAHN_AFTER_BAND,
            float(after0),
            ".0%",
            "D = 0",
        ),
        target(
            section,
            "MAP rise during 500 mL over 30 min (mmHg)",
            "Glassford et al., Crit Care 2014",
            "about +7-8 mmHg",
            GLASSFORD_RISE_BAND,
            med_rise,
            ".1f",
            "cohort median, hour 12",
        ),
        target(
            section,
            "MAP rise 1 h after the bolus, fraction of peak",
            "Glassford et al., Crit Care 2014",
            "largely gone within about 1 h",
            (0.0, GLASSFORD_GONE),
            rise_one_hour_after / med_rise if med_rise else None,
            ".2f",
            "quasi-steady",
        ),
    ]
    return result, targets


def hypotension(run: Runner, envs: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Section 3: hours of observed MAP < 65 in the first 24 h against death in the episode."""
    rows, targets = [], []
    for env_id in [e for e in ("VasopressorTitration-v1", "SepsisManagement-v1") if e in envs]:
        for policy_id in (RANDOM, HEURISTIC):
            outs = [run(env_id, tier, policy_id) for tier in TIERS]
            hours = np.concatenate([o["hypotension_hours_24"] for o in outs])
            died = np.concatenate([o["died"] for o in outs])
            death_hour = np.concatenate([o["death_hour"] for o in outs])
            landmark = death_hour > 24  # alive at 24 h
            bins = []
            for low, high in HYPOTENSION_BINS:
                inside = landmark & (hours >= low) & (hours <= high)
                bins.append(
                    {
                        "hours": [low, high],
                        "n": int(inside.sum()),
                        "survival": float(1 - died[inside].mean()) if inside.any() else None,
                    }
                )
            fit = logistic_fit(hours[landmark], died[landmark])
            fit_all = logistic_fit(hours, died)
            rows.append(
                {
                    "env_id": env_id,
                    "policy": POLICY_NAMES[policy_id],
                    "n": len(died),
                    "alive_at_24h": int(landmark.sum()),
                    "bins_alive_at_24h": bins,
                    "odds_ratio_per_hour_alive_at_24h": fit,
                    "odds_ratio_per_hour_all": fit_all,
                }
            )
            ci = fit["ci_low"]
            targets.append(
                target(
                    "3 time below MAP 65",
                    "OR of death per hour MAP < 65, alive at 24 h: lower 95% CI",
                    "Maheshwari et al., Intensive Care Med 2018",
                    "risk rises with time below 65 (OR > 1)",
                    (1.0, np.inf),
                    ci,
                    ".3f",
                    f"{env_id} {POLICY_NAMES[policy_id]}",
                )
            )
    return rows, targets


def refractory(run: Runner, envs: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Section 4: mortality of patients whose dose ever exceeded 1 mcg/kg/min, against all."""
    rows, targets = [], []
    for env_id in [e for e in ("SepsisManagement-v1", "VasopressorTitration-v1") if e in envs]:
        for policy_id in (HEURISTIC, AGGRESSIVE):
            pooled_died, pooled_high = [], []
            for tier in (*TIERS, "all"):
                if tier == "all":
                    died, high = np.concatenate(pooled_died), np.concatenate(pooled_high)
                else:
                    out = run(env_id, tier, policy_id)
                    died, high = out["died"], out["max_dose"] > 1.0
                    pooled_died.append(died)
                    pooled_high.append(high)
                rows.append(
                    {
                        "env_id": env_id,
                        "policy": POLICY_NAMES[policy_id],
                        "tier": tier,
                        "n": len(died),
                        "mortality_all": float(died.mean()),
                        "n_dose_above_1": int(high.sum()),
                        "mortality_dose_above_1": float(died[high].mean()) if high.any() else None,
                        "mortality_dose_at_most_1": float(died[~high].mean())
                        if (~high).any()
                        else None,
                    }
                )
            pooled = rows[-1]
            targets.append(
                target(
                    "4 refractory shock",
                    "mortality when NE ever > 1 mcg/kg/min (tiers pooled)",
                    "Martin et al., Shock 2015",
                    "about 90% (48% overall)",
                    MARTIN_BAND,
                    pooled["mortality_dose_above_1"],
                    ".2f",
                    f"{env_id} {POLICY_NAMES[policy_id]}, n = {pooled['n_dose_above_1']}",
                )
            )
    return rows, targets


def fates(run: Runner, envs: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Section 5: untreated, death within the episode against death within 2,000 h."""
    rows, targets = [], []
    for env_id in envs:
        for tier in TIERS:
            out = run(env_id, tier, NONE, hours=FATE_HOURS)
            died_in_episode = out["death_hour"] <= EPISODE_HOURS
            died_fate = out["death_hour"] <= FATE_HOURS
            survivors = ~died_fate
            stopped = None
            if env_id.startswith("VasopressorTitration"):
                after = run(env_id, tier, NONE, protocol_hours=EPISODE_HOURS)
                stopped = float((died_in_episode == (after["death_hour"] <= FATE_HOURS)).mean())
            rows.append(
                {
                    "env_id": env_id,
                    "tier": tier,
                    "n": len(died_in_episode),
                    "died_in_episode": float(died_in_episode.mean()),
                    "died_2000h": float(died_fate.mean()),
                    "late_deaths": float((died_fate & ~died_in_episode).mean()),
                    "agreement": float((died_in_episode == died_fate).mean()),
                    "agreement_protocol_stopped_after_episode": stopped,
                    "agreement_if_episode_hours": {
                        str(h): float(((out["death_hour"] <= h) == died_fate).mean())
                        for h in OTHER_EPISODES
                    },
                    "alive_not_recovered_2000h": float(
                        (
                            survivors
                            & ((out["final_pathogen"] >= 0.01) | (out["final_damage"] >= 1))
                        ).mean()
                    ),
                    "median_late_death_hour": float(
                        np.median(out["death_hour"][died_fate & ~died_in_episode])
                    )
                    if (died_fate & ~died_in_episode).any()
                    else None,
                    "survivors_final_damage_max": float(out["final_damage"][survivors].max())
                    if survivors.any()
                    else None,
                    "survivors_final_pathogen_max": float(out["final_pathogen"][survivors].max())
                    if survivors.any()
                    else None,
                }
            )
            targets.append(
                target(
                    "5 fate separation",
                    f"agreement of {EPISODE_HOURS} h outcome with 2,000 h fate, untreated",
                    "modelling target (an episode shows the patient's fate)",
                    ">= 95%",
                    (FATE_AGREEMENT, 1.0),
                    rows[-1]["agreement"],
                    ".1%",
                    f"{env_id} {tier}",
                )
            )
    return rows, targets


def tier_fractions(run: Runner, envs: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """Section 6: survival by baseline policy, and who needs treatment or dies under all."""
    survival_rows, fraction_rows = [], []
    for env_id in envs:
        for tier in TIERS:
            survival = {
                POLICY_NAMES[p]: float(1 - run(env_id, tier, p)["died"].mean())
                for p in (NONE, HEURISTIC, RANDOM, MAX_FLUID)
            }
            flooded = run(env_id, tier, MAX_FLUID)
            flooded_deaths = flooded["death_hour"][flooded["died"]]
            survival_rows.append(
                {
                    "env_id": env_id,
                    "tier": tier,
                    **survival,
                    "max_fluids_median_death_hour": float(np.median(flooded_deaths))
                    if flooded_deaths.size
                    else None,
                }
            )
            untreated = run(env_id, tier, NONE)["died"]
            treated = np.stack([run(env_id, tier, p)["died"] for p in TREATMENTS[env_id]])
            saved_by_any = ~treated.all(axis=0)
            heuristic_died = run(env_id, tier, HEURISTIC)["died"]
            fraction_rows.append(
                {
                    "env_id": env_id,
                    "tier": tier,
                    "n": len(untreated),
                    "policies_tried": [POLICY_NAMES[p] for p in TREATMENTS[env_id]],
                    "survive_untreated": float((~untreated).mean()),
                    "need_treatment": float((untreated & saved_by_any).mean()),
                    "die_under_every_policy_tried": float((untreated & ~saved_by_any).mean()),
                    "survive_untreated_die_under_heuristic": float(
                        (~untreated & heuristic_died).mean()
                    ),
                    "survival_by_policy": {
                        POLICY_NAMES[p]: float(1 - d.mean())
                        for p, d in zip(TREATMENTS[env_id], treated, strict=True)
                    },
                }
            )
    return survival_rows, fraction_rows


# --- printing ---------------------------------------------------------------------------------


def _or_cell(fit: dict) -> str:
    if fit["odds_ratio"] is None:
        return "-"
    return f"{fit['odds_ratio']:.3f} ({fit['ci_low']:.3f}-{fit['ci_high']:.3f})"


def _quartiles(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def _delay_table(rows: list[dict], kill_column: bool = False) -> str:
    cols: list[Column] = [("tier", "<7", lambda r: r["tier"])]
    if kill_column:
        cols.append(("kill/h", ">6", lambda r: f"{r['antibiotic_kill_per_h']:.1f}"))
    cols += [
        (f"h{h}", ">5", lambda r, h=h: f"{100 * r['survival_by_hour'][h]:.1f}")
        for h in ANTIBIOTIC_HOURS
    ]
    cols += [
        ("lost/h 0-6", ">10", lambda r: f"{100 * r['survival_lost_per_hour_0_6']:.2f}"),
        ("OR/h 0-12 (95% CI)", ">22", lambda r: _or_cell(r["odds_ratio_per_hour_0_12"])),
        ("OR/h 0-6", ">8", lambda r: _fmt(r["odds_ratio_per_hour_0_6"]["odds_ratio"], ".3f")),
    ]
    return text_table(rows, cols)


def print_delay(results: dict[str, Any], n: int) -> None:
    print(f"\n1. Antibiotic delay: SepsisManagement-v1, heuristic haemodynamics, {n:,} patients")
    print(
        f"survival at {EPISODE_HOURS} h (%) by antibiotic hour h; lost/h (Kumar 7.6); OR per hour"
    )
    print(_delay_table(results["antibiotic_delay"]))
    print("sensitivity (not the model's default): the same with a stronger antibiotic")
    print(_delay_table(results["antibiotic_delay_sensitivity"], kill_column=True))


def print_bolus(b: dict[str, Any]) -> None:
    print("\n2. 500 mL crystalloid over 30 min (1 L/h for 0.5 h), quasi-steady plasma volume")
    print(
        "typical D = median D at hour 12 of untreated medium patients = "
        f"{b['median_damage_hour_12']:.2f} (quartiles {_quartiles(b['damage_hour_12_quartiles'])})"
    )
    lines = [
        ("leak rate k(D) (1/h)", "leak_rate_at_d0_per_h", "leak_rate_at_typical_d_per_h", ".2f"),
        (
            "intravascular at end of infusion",
            "intravascular_fraction_end_of_infusion_d0",
            "intravascular_fraction_end_of_infusion_typical_d",
            ".0%",
        ),
        (
            "intravascular 30 min after its end",
            "intravascular_fraction_30min_after_d0",
            "intravascular_fraction_30min_after_typical_d",
            ".0%",
        ),
        (
            "MAP rise during infusion (mmHg), default params",
            "map_rise_1000ml_per_h_healthy",
            "map_rise_1000ml_per_h_typical",
            ".1f",
        ),
    ]
    cols: list[Column] = [
        ("quantity", "<48", lambda r: r[0]),
        ("D = 0", ">7", lambda r: format(b[r[1]], r[3])),
        ("typical D", ">9", lambda r: format(b[r[2]], r[3])),
    ]
    print(text_table(lines, cols))
    print(
        "cohort at hour 12, each patient's own parameters (quartiles): MAP rise "
        f"{_quartiles(b['map_rise_1000ml_per_h_cohort_quartiles'])} mmHg on a MAP of "
        f"{_quartiles(b['map_without_bolus_cohort_quartiles'])} mmHg"
    )
    print(
        "the env's 500 mL action (0.5 L/h over the hour): MAP rise "
        f"{_quartiles(b['map_rise_env_500ml_action_cohort_quartiles'])} mmHg; "
        f"one hour after the bolus: {b['map_rise_one_hour_after']:.1f} mmHg"
    )


def print_hypotension(rows: list[dict]) -> None:
    print(f"\n3. Hours with observed MAP < 65 over hours 1-24 and death by {EPISODE_HOURS} h")
    print("survival of the patients alive at 24 h, by hours below 65 (n in brackets)")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("policy", "<10", lambda r: r["policy"]),
        ("alive@24", ">8", lambda r: f"{r['alive_at_24h']:,}"),
    ]
    for i, (low, high) in enumerate(HYPOTENSION_BINS):
        title = f"{low} h" if low == high else f"{low}-{high} h"

        def cell(r: dict, i: int = i) -> str:
            b = r["bins_alive_at_24h"][i]
            return f"{_fmt(b['survival'], '.2f')} ({b['n']})"

        cols.append((title, ">12", cell))
    cols += [
        (
            "OR/h alive@24 (95% CI)",
            ">22",
            lambda r: _or_cell(r["odds_ratio_per_hour_alive_at_24h"]),
        ),
        ("OR/h all", ">8", lambda r: _fmt(r["odds_ratio_per_hour_all"]["odds_ratio"], ".3f")),
    ]
    print(text_table(rows, cols))


def print_refractory(rows: list[dict]) -> None:
    print(f"\n4. Refractory shock: mortality at {EPISODE_HOURS} h when the dose ever exceeded 1")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("policy", "<20", lambda r: r["policy"]),
        ("tier", "<6", lambda r: r["tier"]),
        ("mortality", ">9", lambda r: f"{r['mortality_all']:.3f}"),
        ("n dose>1", ">8", lambda r: f"{r['n_dose_above_1']:,}"),
        ("mort. dose>1", ">12", lambda r: _fmt(r["mortality_dose_above_1"], ".3f")),
        ("mort. dose<=1", ">13", lambda r: _fmt(r["mortality_dose_at_most_1"], ".3f")),
    ]
    print(text_table(rows, cols))


def print_fates(rows: list[dict]) -> None:
    print(
        f"\n5. Fate separation, untreated: death within {EPISODE_HOURS} h, within {FATE_HOURS:,} h"
    )
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
        (f"died {EPISODE_HOURS}h", ">8", lambda r: f"{r['died_in_episode']:.3f}"),
        ("died 2000h", ">10", lambda r: f"{r['died_2000h']:.3f}"),
        ("agreement", ">9", lambda r: f"{r['agreement']:.3f}"),
        ("late death, median h", ">20", lambda r: _fmt(r["median_late_death_hour"], ".0f")),
        ("alive, not recovered", ">20", lambda r: f"{r['alive_not_recovered_2000h']:.3f}"),
        (
            f"agreement at {'/'.join(map(str, OTHER_EPISODES))} h",
            ">21",
            lambda r: "/".join(f"{v:.3f}" for v in r["agreement_if_episode_hours"].values()),
        ),
        (
            "agreement, protocol stopped",
            ">27",
            lambda r: _fmt(r["agreement_protocol_stopped_after_episode"], ".3f"),
        ),
    ]
    print(text_table(rows, cols))
    print("alive, not recovered: alive at 2,000 h with P >= 0.01 or D >= 1")
    print("agreement at other lengths: had the episode been that long (the same patients)")
    print(f"protocol stopped: VasopressorTitration's fluid protocol ends at {EPISODE_HOURS} h")


def print_survival(rows: list[dict], fractions: list[dict], n: int) -> None:
    print(f"\n6a. Survival at {EPISODE_HOURS} h by policy ({n:,} patients each, spread {SPREAD:g})")
    cols: list[Column] = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
    ]
    for p in (NONE, HEURISTIC, RANDOM, MAX_FLUID):
        name = POLICY_NAMES[p]
        cols.append((name, ">12", lambda r, name=name: f"{r[name]:.3f}"))
    cols.append(
        (
            "max fluids: median death h",
            ">26",
            lambda r: _fmt(r["max_fluids_median_death_hour"], ".0f"),
        )
    )
    print(text_table(rows, cols))

    print("\n6b. Tier fractions: (a) survive untreated, (b) die untreated but survive under at")
    print("    least one policy tried, (c) die under every policy tried (only those listed)")
    cols = [
        ("environment", "<24", lambda r: r["env_id"]),
        ("tier", "<6", lambda r: r["tier"]),
        ("(a)", ">6", lambda r: f"{r['survive_untreated']:.3f}"),
        ("(b)", ">6", lambda r: f"{r['need_treatment']:.3f}"),
        ("(c)", ">6", lambda r: f"{r['die_under_every_policy_tried']:.3f}"),
        ("harmed by heur.", ">15", lambda r: f"{r['survive_untreated_die_under_heuristic']:.3f}"),
        (
            "survival under each policy tried",
            "<60",
            lambda r: ", ".join(f"{k} {v:.2f}" for k, v in r["survival_by_policy"].items()),
        ),
    ]
    print(text_table(fractions, cols))
    print("harmed by heur.: survive untreated but die under the heuristic")


def print_targets(targets: list[dict]) -> None:
    print("\nTargets (met when the model's value lies in the band):")
    cols: list[Column] = [
        ("section", "<19", lambda r: r["section"]),
        ("target", "<56", lambda r: r["name"]),
        ("case", "<42", lambda r: r["case"]),
        ("goal", "<38", lambda r: r["goal"]),
        ("model", ">7", lambda r: _fmt(r["value"], r["spec"])),
        ("verdict", "<7", lambda r: verdict(r["met"])),
    ]
    print(text_table(targets, cols))
    print(f"{sum(t['met'] for t in targets)} of {len(targets)} targets met")


def print_tables(results: dict[str, Any]) -> None:
    n = results["environment"]["patients"]
    if results["antibiotic_delay"]:
        print_delay(results, n)
    if results["bolus"]:
        print_bolus(results["bolus"])
    if results["hypotension"]:
        print_hypotension(results["hypotension"])
    if results["refractory"]:
        print_refractory(results["refractory"])
    print_fates(results["fates"])
    print_survival(results["survival"], results["tier_fractions"], n)
    print_targets(results["targets"])


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000, help="per cohort")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="SepsisManagement-v1 only, 200 patients (about 30 s): a smoke test",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    if args.quick:
        args.patients, args.envs = 200, ["SepsisManagement-v1"]
    if args.patients < 10:
        parser.error("--patients must be >= 10")
    envs = tuple(e for e in ENVS if e in args.envs)
    name = "calibration_v1_quick.json" if args.quick else "calibration_v1.json"
    out = args.out or RESULTS_DIR / name
    start = time.perf_counter()
    with tqdm(total=planned_runs(envs), desc="cohorts", unit="cohort") as bar:
        run = Runner(args.patients, args.seed, bar)
        sm = "SepsisManagement-v1" in envs
        delay_rows, delay_targets, delay_sensitivity = antibiotic_delay(run) if sm else ([], [], [])
        bolus_result, bolus_targets = bolus(run) if sm else ({}, [])
        hypo_rows, hypo_targets = hypotension(run, envs)
        refr_rows, refr_targets = refractory(run, envs)
        fate_rows, fate_targets = fates(run, envs)
        survival_rows, fraction_rows = tier_fractions(run, envs)
    elapsed = time.perf_counter() - start
    settings = {
        "patients": args.patients,
        "seed": args.seed,
        "patient_spread": SPREAD,
        "episode_hours": EPISODE_HOURS,
        "fate_hours": FATE_HOURS,
        "envs": list(envs),
        "tiers": {t: dict(zip(("P0", "k_pg"), tier_point(t), strict=True)) for t in TIERS},
        "policies": POLICY_TEXT,
        "command": "python benchmarks/calibration_v1.py" + (" --quick" if args.quick else ""),
        "wall_s": elapsed,
    }
    results = {
        "environment": machine_info() | settings,
        "antibiotic_delay": delay_rows,
        "antibiotic_delay_sensitivity": delay_sensitivity,
        "bolus": bolus_result,
        "hypotension": hypo_rows,
        "refractory": refr_rows,
        "fates": fate_rows,
        "survival": survival_rows,
        "tier_fractions": fraction_rows,
        "targets": delay_targets + bolus_targets + hypo_targets + refr_targets + fate_targets,
    }
    for t in results["targets"]:  # JSON has no infinity
        t["band"] = [None if np.isinf(v) else v for v in t["band"]]
    print_tables(results)
    print(f"\nwall time {elapsed:.0f} s")
    if delay_rows and not args.quick:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        antibiotic_figure(delay_rows, args.patients).savefig(args.figure, dpi=100)
        print(f"Figure written to {args.figure}")
    write_results(out, results)


if __name__ == "__main__":
    main()
