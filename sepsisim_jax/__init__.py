"""sepsisim_jax: JAX-native sepsis simulator for reinforcement learning.

A functional reimplementation of sepsisim 0.1.0's three environments (FluidResuscitation,
VasopressorTitration, SepsisManagement) in the gymnax style, with diffrax physiology.
"""

from sepsisim_jax.envs import (
    ENV_IDS,
    SEVERITIES,
    V0_IDS,
    V1_IDS,
    EnvState,
    SepsisEnv,
    make,
    register_gymnasium,
    register_gymnax,
)
from sepsisim_jax.physiology import SolverConfig, param_specs, replace_params, validate_params

__version__ = "0.1.0"

register_gymnax()
register_gymnasium()

__all__ = [
    "ENV_IDS",
    "SEVERITIES",
    "V0_IDS",
    "V1_IDS",
    "EnvState",
    "SepsisEnv",
    "SolverConfig",
    "__version__",
    "make",
    "param_specs",
    "register_gymnasium",
    "register_gymnax",
    "replace_params",
    "validate_params",
]
