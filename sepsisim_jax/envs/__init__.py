"""The three sepsis environments on one shared patient model."""

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.features import FEATURES, Feature
from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation, FluidResuscitationParams
from sepsisim_jax.envs.registration import (
    ENV_IDS,
    REFERENCE_OPTIONS,
    SEVERITIES,
    V0_IDS,
    V1_IDS,
    env_class,
    make,
    register_gymnasium,
    register_gymnax,
)
from sepsisim_jax.envs.sepsis_management import SepsisManagement, SepsisManagementParams
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.envs.vasopressor_titration import (
    VasopressorTitration,
    VasopressorTitrationParams,
)

__all__ = [
    "ENV_IDS",
    "FEATURES",
    "REFERENCE_OPTIONS",
    "SEVERITIES",
    "V0_IDS",
    "V1_IDS",
    "EnvState",
    "Feature",
    "FluidResuscitation",
    "FluidResuscitationParams",
    "SepsisEnv",
    "SepsisManagement",
    "SepsisManagementParams",
    "VasopressorTitration",
    "VasopressorTitrationParams",
    "env_class",
    "make",
    "register_gymnasium",
    "register_gymnax",
]
