"""Virtual trials: arms on the same virtual patients, compared as a clinical trial reports.

Every arm treats the same patients: patient ``p`` of a trial with ``key`` is admitted and
meets the same noise in every arm (the key scheme of :mod:`sepsisim_jax.cohort.scan`), so the
arms differ only by their treatment, as in a crossover no real trial can run. Inclusion is
decided on the observation at enrolment (what is known then), and the same patients are
included in every arm. Enrolment is at admission, or after a run-in (:class:`RunIn`): every
arm first gives the same treatment for some hours, as trials that enrol patients already in
shock do (SEPSISPAM randomised patients on vasopressors); patients who die during the run-in
are not enrolled.

Outcomes per patient: death within the episode (the trial's mortality), fluid given in the
first 24 hours, the peak vasopressor dose, the hour the antibiotic started. Each arm is
compared with a reference arm by the risk difference and the risk ratio of death, with
confidence intervals from a patient-level bootstrap that resamples patients jointly across
arms (the arms are paired).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sepsisim_jax import _checks
from sepsisim_jax.cohort import chunks, scan_cohort
from sepsisim_jax.cohort.sharding import constrain_patients, padded_width, patient_range
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.features import FEATURES
from sepsisim_jax.policies import Policy, as_pytree
from sepsisim_jax.text_table import text_table

FIRST_HOURS = 24  # the window of the fluid-volume outcome


@dataclasses.dataclass(frozen=True)
class Inclusion:
    """An inclusion criterion: ``rule`` maps the observation at enrolment (feature name ->
    array over patients) to a boolean mask of the enrolled patients."""

    name: str
    rule: Callable[[Mapping[str, np.ndarray]], np.ndarray]

    def __call__(self, admission: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.rule(admission), bool)


EVERYONE = Inclusion("every admitted patient", lambda obs: np.ones_like(obs["map_mmhg"], bool))
HYPOTENSIVE = Inclusion("MAP < 65 mmHg at admission", lambda obs: obs["map_mmhg"] < 65.0)


def lactate_above(threshold: float) -> Inclusion:
    """Admission lactate above ``threshold`` mmol/L."""
    name = f"lactate > {threshold:g} mmol/L at admission"
    return Inclusion(name, lambda obs: obs["lactate"] > threshold)


SHOCK_AT_ADMISSION = Inclusion(
    "MAP < 65 mmHg and lactate > 2 mmol/L at admission",
    lambda obs: (obs["map_mmhg"] < 65.0) & (obs["lactate"] > 2.0),
)  # the observable half of Sepsis-3 septic shock (Singer 2016), before fluids
SEPSIS3_SHOCK = Inclusion(
    "on a vasopressor with lactate > 2 mmol/L after the run-in",
    lambda obs: (obs["vasopressor_dose"] > 0.0) & (obs["lactate"] > 2.0),
)  # Sepsis-3 septic shock (Singer 2016): a vasopressor needed for MAP >= 65 and lactate > 2
# mmol/L despite adequate fluid; with a run-in of fluids and titrated norepinephrine
# (usual_care), a patient still on norepinephrine at its end needs it.


@dataclasses.dataclass(frozen=True)
class RunIn:
    """The treatment every arm gives for the first ``hours`` hours, before enrolment."""

    policy: Policy
    hours: int

    def __post_init__(self) -> None:
        _checks.policy("RunIn.policy", self.policy)
        _checks.positive_int("RunIn.hours", self.hours)


@dataclasses.dataclass(frozen=True)
class ArmOutcomes:
    """Per-patient outcomes of one arm, over every patient of the trial (host arrays)."""

    died: np.ndarray  # bool
    hours: np.ndarray  # int32, hours until death or the end of the episode
    fluid_24h_ml: np.ndarray  # fluid given in the first 24 hours (the task's protocol too)
    peak_dose: np.ndarray  # highest vasopressor dose, mcg/kg/min
    antibiotic_hour: np.ndarray  # first hour with the antibiotic active (NaN: never)


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """A virtual trial: its design, the enrolled patients' outcomes, and the comparisons.
    Outcomes count from admission (a run-in's fluid and doses included)."""

    env_id: str
    severity: str
    inclusion: str
    run_in_hours: int
    screened: int
    reference: str
    arms: dict[str, ArmOutcomes]  # enrolled patients only
    rows: list[dict[str, Any]]
    confidence: float
    n_bootstrap: int

    @property
    def enrolled(self) -> int:
        return int(next(iter(self.arms.values())).died.size)

    def table(self) -> str:
        """The rows as a text table."""
        pct = round(100 * self.confidence)
        ci = f"{pct}% CI"

        def interval(low: float, high: float, spec: str) -> str:
            return f"[{low:{spec}}, {high:{spec}}]"

        return text_table(
            self.rows,
            [
                ("arm", "<20", lambda r: r["arm"]),
                ("mortality", ">9", lambda r: f"{r['mortality']:.1%}"),
                (ci, ">17", lambda r: interval(*r["mortality_ci"], ".1%")),
                ("risk diff", ">9", lambda r: f"{r['risk_difference']:+.1%}"),
                (ci, ">17", lambda r: interval(*r["risk_difference_ci"], "+.1%")),
                ("risk ratio", ">10", lambda r: f"{r['risk_ratio']:.2f}"),
                (ci, ">13", lambda r: interval(*r["risk_ratio_ci"], ".2f")),
                ("fluid 24 h mL", ">13", lambda r: f"{r['fluid_24h_ml']:.0f}"),
                ("peak dose", ">9", lambda r: f"{r['peak_dose']:.3f}"),
                ("on vasopr.", ">10", lambda r: f"{r['vasopressor_fraction']:.1%}"),
                ("antibiotic h", ">12", lambda r: f"{r['antibiotic_hour']:.1f}"),
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        """The design and the rows (JSON-ready; per-patient outcomes left out)."""
        return {
            "env_id": self.env_id,
            "severity": self.severity,
            "inclusion": self.inclusion,
            "run_in_hours": self.run_in_hours,
            "screened": self.screened,
            "enrolled": self.enrolled,
            "reference": self.reference,
            "confidence": self.confidence,
            "n_bootstrap": self.n_bootstrap,
            "rows": self.rows,
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def run_trial(
    env: SepsisEnv,
    params: Any,
    arms: Mapping[str, Policy],
    key: jax.Array,
    n_patients: int,
    *,
    inclusion: Inclusion = EVERYONE,
    run_in: RunIn | None = None,
    reference: str | None = None,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk_size: int = 16_384,
    progress: bool = False,
) -> TrialResult:
    """Screen ``n_patients`` patients of ``key``, enrol those ``inclusion`` admits, and treat
    them under each arm (a name -> policy mapping; :meth:`Protocol.policy
    <sepsisim_jax.trials.protocols.Protocol.policy>` makes one of a protocol).

    With a ``run_in``, every arm gives its policy for its first hours (the arms then need the
    hours since admission observed) and enrolment is decided on the observation at its end,
    among the patients alive then.

    ``reference`` (default: the first arm) is what the others are compared with. Bootstrap
    intervals are percentile intervals of ``n_bootstrap`` patient-level resamples drawn with
    numpy's generator of ``seed``; a risk ratio whose reference mortality is zero in a
    resample is undefined there and left out of its interval.
    """
    _checks.positive_int("n_patients", n_patients)
    _checks.positive_int("n_bootstrap", n_bootstrap)
    _checks.positive_int("chunk_size", chunk_size)
    _checks.number_in("confidence", confidence, 0.5, 0.999)
    if not arms:
        raise ValueError("a trial needs at least one arm")
    for name, policy in arms.items():
        _checks.policy(f"arm {name!r}", policy)
    reference = next(iter(arms)) if reference is None else reference
    if reference not in arms:
        raise ValueError(f"reference arm {reference!r} is not one of the arms {list(arms)}")
    _checks.instance("inclusion", inclusion, Inclusion, "an Inclusion")
    _checks.instance("run_in", run_in, RunIn | type(None), "a RunIn or None")
    enrol_hour = 0
    if run_in is not None:
        if "step" not in env.observation_names:
            raise ValueError(
                f"a run-in needs the hours since admission ('step') observed, and {env.env_id} "
                f"observes {list(env.observation_names)}"
            )
        enrol_hour = run_in.hours
        arms = {name: _after_run_in(env, run_in, policy) for name, policy in arms.items()}

    enrolment, outcomes = None, {}
    for name, policy in arms.items():
        arm_enrolment, outcomes[name] = _arm(
            env, params, policy, key, n_patients, enrol_hour, chunk_size, progress
        )
        if enrolment is None:
            enrolment = arm_enrolment
        elif not np.array_equal(enrolment, arm_enrolment, equal_nan=True):
            raise RuntimeError("the arms enrolled different patients: the key scheme is broken")
    assert enrolment is not None
    alive = ~np.isnan(enrolment[:, 0])  # NaN: died before enrolment
    observed = {name: enrolment[:, i] for i, name in enumerate(env.observation_names)}
    try:
        enrolled = inclusion(observed) & alive
    except KeyError as error:
        raise ValueError(
            f"inclusion {inclusion.name!r} reads {error}, which {env.env_id} does not observe "
            f"({list(env.observation_names)})"
        ) from None
    if enrolled.shape != (n_patients,):
        raise ValueError(
            f"inclusion {inclusion.name!r} gave shape {enrolled.shape}, not one bool per "
            f"patient ({n_patients},)"
        )
    if not enrolled.any():
        raise ValueError(f"no patient of {n_patients} meets the inclusion {inclusion.name!r}")
    arms_enrolled = {
        name: ArmOutcomes(**{f.name: getattr(o, f.name)[enrolled] for f in dataclasses.fields(o)})
        for name, o in outcomes.items()
    }
    rows = _compare(arms_enrolled, reference, n_bootstrap, confidence, seed)
    return TrialResult(
        env_id=env.env_id,
        severity=env.severity,
        inclusion=inclusion.name,
        run_in_hours=enrol_hour,
        screened=n_patients,
        reference=reference,
        arms=arms_enrolled,
        rows=rows,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
    )


@struct.dataclass(eq=False)
class _AfterRunIn:
    """The run-in's policy for its hours, then the arm's (a pytree: one program per arm)."""

    run_in: Any
    arm: Any
    hours: jax.Array
    step: int = struct.field(pytree_node=False)  # the observation's hours since admission

    def __call__(self, key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        early = obs[self.step] < self.hours
        return jnp.where(early, self.run_in(key, obs, params), self.arm(key, obs, params))


def _after_run_in(env: SepsisEnv, run_in: RunIn, policy: Policy) -> _AfterRunIn:
    return _AfterRunIn(
        as_pytree(run_in.policy),
        as_pytree(policy),
        np.asarray(run_in.hours, np.float32),
        env.observation_index("step"),
    )


def _arm(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_patients: int,
    enrol_hour: int,
    chunk_size: int,
    progress: bool,
) -> tuple[np.ndarray, ArmOutcomes]:
    """Observations at enrolment (NaN for a patient who died before) and outcomes of every
    patient under ``policy``."""
    width = padded_width(min(chunk_size, n_patients))
    tree = as_pytree(policy)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    hour = np.int32(enrol_hour)
    for _, keep, (enrolment, books) in chunks(
        lambda first: _chunk(env, params, tree, key, patient_range(first, width), hour),
        n_patients,
        width,
        progress=progress,
        desc=env.env_id,
    ):
        parts.append((enrolment[:keep], {k: v[:keep] for k, v in books.items()}))
    enrolment = np.concatenate([e for e, _ in parts])
    books = {k: np.concatenate([b[k] for _, b in parts]) for k in parts[0][1]}
    return enrolment, ArmOutcomes(**books)


@partial(jax.jit, static_argnums=(0,))
def _chunk(
    env: SepsisEnv,
    params: Any,
    policy: Any,
    key: jax.Array,
    patients: jax.Array,
    enrol_hour: jax.Array,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    patients = constrain_patients(patients)
    dose = FEATURES["vasopressor_dose"].read
    nan = jnp.asarray(jnp.nan, jnp.float32)
    n = patients.shape[0]
    start = {
        "active": jnp.ones(n, bool),
        "died": jnp.zeros(n, bool),
        "hours": jnp.zeros(n, jnp.int32),
        "fluid_24h_ml": jnp.zeros(n, jnp.float32),
        "peak_dose": jnp.zeros(n, jnp.float32),
        "antibiotic_hour": jnp.full(n, nan),
        "enrolment": jnp.full((n, len(env.observation_names)), nan),
    }

    def record(books, obs, state, action, output):
        _, after, _, terminated, _ = output
        active = books["active"]
        fluid = (after.total_fluid_ml - state.total_fluid_ml).astype(jnp.float32)
        first_hours = active & (state.time < FIRST_HOURS)
        started = active & after.antibiotic_active & jnp.isnan(books["antibiotic_hour"])
        books = {
            "active": active & ~(terminated | env.is_truncated(after, params)),
            "died": books["died"] | (active & terminated),
            "hours": books["hours"] + active.astype(jnp.int32),
            "fluid_24h_ml": books["fluid_24h_ml"] + jnp.where(first_hours, fluid, 0.0),
            "peak_dose": jnp.where(
                active,
                jnp.maximum(books["peak_dose"], dose(after).astype(jnp.float32)),
                books["peak_dose"],
            ),
            "antibiotic_hour": jnp.where(
                started, state.time.astype(jnp.float32), books["antibiotic_hour"]
            ),
            # the observation an action of the enrolment hour sees (no auto-reset here)
            "enrolment": jnp.where(
                (active & (state.time == enrol_hour))[:, None],
                obs.astype(jnp.float32),
                books["enrolment"],
            ),
        }
        return books, None

    _, books, _ = scan_cohort(
        env, params, policy, key, patients, None, record, start, auto_reset=False
    )
    del books["active"]
    return books.pop("enrolment"), books


def _compare(
    arms: Mapping[str, ArmOutcomes],
    reference: str,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> list[dict[str, Any]]:
    died = np.stack([a.died for a in arms.values()]).astype(np.float64)  # (arms, patients)
    n = died.shape[1]
    ref = list(arms).index(reference)
    draws = np.random.default_rng(seed).integers(0, n, (n_bootstrap, n))
    # mortality of each arm in each resample: (resamples, arms)
    resampled = np.stack([died[:, idx].mean(axis=1) for idx in draws])
    tail = 100 * (1 - confidence) / 2
    low_high = (tail, 100 - tail)

    def interval(x: np.ndarray) -> list[float]:
        x = x[np.isfinite(x)]
        return [float(v) for v in np.percentile(x, low_high)] if x.size else [np.nan, np.nan]

    mortality = died.mean(axis=1)
    rows = []
    for i, (name, arm) in enumerate(arms.items()):
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = resampled[:, i] / resampled[:, ref]
            point_ratio = mortality[i] / mortality[ref] if mortality[ref] > 0 else np.nan
        given = arm.antibiotic_hour[np.isfinite(arm.antibiotic_hour)]
        rows.append(
            {
                "arm": name,
                "patients": n,
                "deaths": int(arm.died.sum()),
                "mortality": float(mortality[i]),
                "mortality_ci": interval(resampled[:, i]),
                "risk_difference": float(mortality[i] - mortality[ref]),
                "risk_difference_ci": interval(resampled[:, i] - resampled[:, ref]),
                "risk_ratio": float(point_ratio),
                "risk_ratio_ci": interval(ratio),
                "fluid_24h_ml": float(arm.fluid_24h_ml.mean()),
                "peak_dose": float(arm.peak_dose.mean()),
                "vasopressor_fraction": float((arm.peak_dose > 0).mean()),
                "antibiotic_fraction": float(given.size / n),
                "antibiotic_hour": float(given.mean()) if given.size else float("nan"),
                "hours": float(arm.hours.mean()),
            }
        )
    return rows
