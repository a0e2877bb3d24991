"""The patient models an environment id can pair with a task.

A :class:`PatientModel` bundles what a task needs from the physiology: the ODE the solver
integrates, admission and the one-hour step (which takes a
:class:`~sepsisim_jax.physiology.interface.Treatment` and returns a state with the fields of
:class:`~sepsisim_jax.physiology.interface.PatientStateLike`), how a severity tier sets the
patient, the episode length over which its fates separate, defaults of task parameters that
depend on the patient (the antibiotic's kill rate, a background infusion), and the features
the model adds to ``info``. ``-v0`` ids pair a task with :data:`SEPSISIM` (the reference's
model, unchanged); ``-v1`` ids with :data:`REYNOLDS_COUPLED`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from sepsisim_jax.physiology import coupled, inflammation, patient
from sepsisim_jax.physiology.coupled import CoupledParams
from sepsisim_jax.physiology.interface import ModelFeature
from sepsisim_jax.physiology.patient import PatientParams
from sepsisim_jax.physiology.reynolds2006 import ReynoldsParams
from sepsisim_jax.physiology.solver import VectorField

# Pulse's sepsis severities mapped piecewise-linearly onto the Reynolds model (Pulse engine,
# ImmuneModel.cpp, feature/sepsis 2024): infection severity -> P0, progression -> k_pg.
PULSE_SEVERITY = (0.0, 0.3, 0.6, 0.9, 1.0)
PULSE_P0 = (0.0, 1.0, 1.25, 1.4, 1.5)
PULSE_K_PG = (0.0, 0.25, 0.33, 0.60, 0.65)
# v1 tiers: one point of severity per tier, for infection and progression alike.
V1_TIER_SEVERITY = {"easy": 0.3, "medium": 0.6, "hard": 0.9}


@dataclasses.dataclass(frozen=True, eq=False)
class PatientModel:
    """One physiology, as the tasks use it (compared by identity: one instance per model,
    registered by its ``version`` in :data:`MODELS`, which pickling keeps).

    ``task_defaults`` override task parameters by name, in each task that has the parameter;
    ``info_features`` are the quantities the model reports besides the shared state.
    """

    version: str
    description: str
    vector_field: VectorField
    admit: Callable[..., Any]
    advance: Callable[..., Any]
    patient_params: Callable[[Mapping[str, float], str], Any]
    severities: tuple[str, ...]
    episode_steps: int
    task_defaults: Mapping[str, float] = dataclasses.field(default_factory=dict)
    info_features: tuple[ModelFeature, ...] = ()

    def __reduce__(self) -> tuple[Callable[[str], PatientModel], tuple[str]]:
        """Unpickled, the same registered instance (identity is what jit caches compare)."""
        return model, (self.version,)


def _sepsisim_params(task_loads: Mapping[str, float], severity: str) -> PatientParams:
    return PatientParams(initial_bacteria=task_loads[severity])


def tier_point(severity: str) -> tuple[float, float]:
    """``(P0, k_pg)`` of a v1 tier, from Pulse's severity tables."""
    s = V1_TIER_SEVERITY[severity]
    return float(np.interp(s, PULSE_SEVERITY, PULSE_P0)), float(
        np.interp(s, PULSE_SEVERITY, PULSE_K_PG)
    )


def _coupled_params(task_loads: Mapping[str, float], severity: str) -> CoupledParams:
    del task_loads  # the tiers of v1 are the same for every task
    p0, k_pg = tier_point(severity)
    return CoupledParams(reynolds=ReynoldsParams(k_pg=k_pg), initial_pathogen=p0)


SEPSISIM = PatientModel(
    version="v0",
    description="sepsisim 0.1.0: 4-ODE inflammation after Reynolds 2006, lumped circulation",
    vector_field=inflammation.vector_field,
    admit=patient.admit,
    advance=patient.advance,
    patient_params=_sepsisim_params,
    severities=("easy", "medium", "hard"),
    episode_steps=72,  # the reference's Gymnasium time limit
)
REYNOLDS_COUPLED = PatientModel(
    version="v1",
    description="published Reynolds et al. 2006 model coupled both ways to the circulation",
    vector_field=coupled.vector_field,
    admit=coupled.admit,
    advance=coupled.advance,
    patient_params=_coupled_params,
    severities=tuple(V1_TIER_SEVERITY),
    # The shortest whole-day episode whose untreated outcome agrees with the 2,000 h fate for
    # at least 95% of patients (docs/physiology.md, "Fate separation"); 72 h missed it.
    episode_steps=96,
    task_defaults={
        "antibiotic_efficacy": 0.2,
        # VasopressorTitration's background infusion: maintenance fluid, 25-30 mL/kg/day for
        # 70-80 kg (NICE CG174, 2013), not the reference's 250 mL/h (6 L/day), which in this
        # model overloads the tissues and kills some patients days after the episode.
        "fluid_protocol_ml": 100.0,
    },
    info_features=coupled.INFO_FEATURES,
)
MODELS: dict[str, PatientModel] = {m.version: m for m in (SEPSISIM, REYNOLDS_COUPLED)}


def model(version: str) -> PatientModel:
    """The registered model of ``version``; ``ValueError`` naming the registered ones."""
    if version not in MODELS:
        raise ValueError(f"unknown patient model {version!r}; registered: {list(MODELS)}")
    return MODELS[version]
