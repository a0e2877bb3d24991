"""Layer 3, planning and fitting by gradients through the simulator: open-loop treatment
schedules (:mod:`~sepsisim_jax.planning.schedules`) and patient parameters recovered from a
trajectory (:mod:`~sepsisim_jax.planning.fitting`)."""

from sepsisim_jax.envs.rewards import DEFAULT_SMOOTHING, RewardSmoothing
from sepsisim_jax.planning.fitting import (
    PatientFit,
    fit_patient,
    simulate_observations,
    trajectory_error,
)
from sepsisim_jax.planning.schedules import Plan, optimize_schedule, schedule_returns

__all__ = [
    "DEFAULT_SMOOTHING",
    "PatientFit",
    "Plan",
    "RewardSmoothing",
    "fit_patient",
    "optimize_schedule",
    "schedule_returns",
    "simulate_observations",
    "trajectory_error",
]
