"""Layer 1, the environments: three tasks (actions, reward, observation) on any patient model.

Imports only :mod:`sepsisim_jax.physiology`.
"""

from sepsisim_jax.envs.actions import ANTIBIOTIC, DOSE_CHANGE, FLUID_BOLUS, ActionComponent
from sepsisim_jax.envs.base import OBSERVATIONS, SepsisEnv
from sepsisim_jax.envs.features import FEATURES, Feature
from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation, FluidResuscitationParams
from sepsisim_jax.envs.registration import (
    ENV_IDS,
    REFERENCE_IDS,
    REGISTRY,
    SEVERITIES,
    TASKS,
    V0_IDS,
    V1_IDS,
    env_factory,
    env_ids,
    make,
    register,
    register_gymnasium,
    register_gymnax,
)
from sepsisim_jax.envs.rewards import RewardSmoothing
from sepsisim_jax.envs.sepsis_management import SepsisManagement, SepsisManagementParams
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.envs.vasopressor_titration import (
    VasopressorTitration,
    VasopressorTitrationParams,
)

__all__ = [
    "ANTIBIOTIC",
    "DOSE_CHANGE",
    "ENV_IDS",
    "FEATURES",
    "FLUID_BOLUS",
    "OBSERVATIONS",
    "REFERENCE_IDS",
    "REGISTRY",
    "SEVERITIES",
    "TASKS",
    "V0_IDS",
    "V1_IDS",
    "ActionComponent",
    "EnvState",
    "Feature",
    "FluidResuscitation",
    "FluidResuscitationParams",
    "RewardSmoothing",
    "SepsisEnv",
    "SepsisManagement",
    "SepsisManagementParams",
    "VasopressorTitration",
    "VasopressorTitrationParams",
    "env_factory",
    "env_ids",
    "make",
    "register",
    "register_gymnasium",
    "register_gymnax",
]
