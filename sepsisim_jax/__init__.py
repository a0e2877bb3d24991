"""sepsisim_jax: a JAX-native sepsis simulator for reinforcement learning.

A functional reimplementation of sepsisim 0.1.0's three tasks (FluidResuscitation,
VasopressorTitration, SepsisManagement) in the gymnax style, on the reference's physiology
(``-v0`` ids) or the published Reynolds 2006 model coupled to the circulation (``-v1``).

The package is layered; a module imports only from its own layer or below, never another
module's private names, and no import cycle exists (``tests/test_architecture.py`` checks):

0. ``physiology`` (imports nothing of the package but ``_checks``), ``_checks``, ``_version``,
   ``text_table``
1. ``envs``: tasks, their actions, features and rewards; the registry of (task, model) ids
2. ``policies``, ``stochastic``, ``cohort``: baselines, policies with a density, the cohort
   engine (key scheme, host chunk loop, rollouts, summaries, sharding)
3. ``offline``, ``ope``, ``planning``, ``counterfactual``, ``training``, ``trials``: the analyses
4. ``adapters`` (Gymnasium, stable-baselines3), ``plotting``, ``cli`` and this front door

The user verbs are re-exported here: ``sepsisim_jax.make``, ``sepsisim_jax.rollout_episodes``.
"""

from sepsisim_jax._version import __version__
from sepsisim_jax.cohort import (
    clinical_course,
    cohort_summary,
    rollout_episodes,
    scan_cohort,
    summarize,
    trajectories,
)
from sepsisim_jax.counterfactual import antibiotic_at, paired_outcomes
from sepsisim_jax.envs import (
    ENV_IDS,
    REFERENCE_IDS,
    SEVERITIES,
    V0_IDS,
    V1_IDS,
    EnvState,
    SepsisEnv,
    env_ids,
    make,
    register,
    register_gymnasium,
    register_gymnax,
)
from sepsisim_jax.offline import policy_value, record_episodes
from sepsisim_jax.physiology import SolverConfig, param_specs, replace_params, validate_params
from sepsisim_jax.planning import fit_patient, optimize_schedule
from sepsisim_jax.policies import heuristic_policy, random_policy
from sepsisim_jax.training import evaluate, train_ppo

register_gymnax()
register_gymnasium()

__all__ = [
    "ENV_IDS",
    "REFERENCE_IDS",
    "SEVERITIES",
    "V0_IDS",
    "V1_IDS",
    "EnvState",
    "SepsisEnv",
    "SolverConfig",
    "__version__",
    "antibiotic_at",
    "clinical_course",
    "cohort_summary",
    "env_ids",
    "evaluate",
    "fit_patient",
    "heuristic_policy",
    "make",
    "optimize_schedule",
    "paired_outcomes",
    "param_specs",
    "policy_value",
    "random_policy",
    "record_episodes",
    "register",
    "register_gymnasium",
    "register_gymnax",
    "replace_params",
    "rollout_episodes",
    "scan_cohort",
    "summarize",
    "train_ppo",
    "trajectories",
    "validate_params",
]
