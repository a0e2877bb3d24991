"""Layer 0, pure-function physiology: the v0 inflammation ODE and circulation (sepsisim 0.1.0),
the published Reynolds 2006 model coupled to the circulation (v1), lactate, SOFA, the solver,
the random draws both models share, virtual patients and the patient-model registry.

Imports nothing of the package but :mod:`sepsisim_jax._checks`.
"""

from sepsisim_jax.physiology.cardiovascular import CardiovascularParams
from sepsisim_jax.physiology.inflammation import InflammationParams, InflammationState
from sepsisim_jax.physiology.interface import ModelFeature, PatientStateLike, Treatment
from sepsisim_jax.physiology.lactate import LactateParams
from sepsisim_jax.physiology.models import MODELS, REYNOLDS_COUPLED, SEPSISIM, PatientModel
from sepsisim_jax.physiology.noise import Draws, NoiseParams
from sepsisim_jax.physiology.parameters import (
    ParamSpec,
    param_specs,
    replace_params,
    validate_params,
)
from sepsisim_jax.physiology.patient import PatientParams, PatientState
from sepsisim_jax.physiology.solver import SOLVERS, SolverConfig, make_integrator

__all__ = [
    "MODELS",
    "REYNOLDS_COUPLED",
    "SEPSISIM",
    "SOLVERS",
    "CardiovascularParams",
    "Draws",
    "InflammationParams",
    "InflammationState",
    "LactateParams",
    "ModelFeature",
    "NoiseParams",
    "ParamSpec",
    "PatientModel",
    "PatientParams",
    "PatientState",
    "PatientStateLike",
    "SolverConfig",
    "Treatment",
    "make_integrator",
    "param_specs",
    "replace_params",
    "validate_params",
]
