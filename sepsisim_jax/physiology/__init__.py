"""Pure-function physiology: inflammation ODE, haemodynamics, lactate, SOFA, the patient step."""

from sepsisim_jax.physiology.cardiovascular import CardiovascularParams
from sepsisim_jax.physiology.inflammation import InflammationParams, InflammationState
from sepsisim_jax.physiology.lactate import LactateParams
from sepsisim_jax.physiology.parameters import (
    ParamSpec,
    param_specs,
    replace_params,
    validate_params,
)
from sepsisim_jax.physiology.patient import NoiseParams, PatientParams, PatientState
from sepsisim_jax.physiology.solver import SOLVERS, SolverConfig, make_integrator

__all__ = [
    "SOLVERS",
    "CardiovascularParams",
    "InflammationParams",
    "InflammationState",
    "LactateParams",
    "NoiseParams",
    "ParamSpec",
    "PatientParams",
    "PatientState",
    "SolverConfig",
    "make_integrator",
    "param_specs",
    "replace_params",
    "validate_params",
]
