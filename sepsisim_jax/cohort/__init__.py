"""Layer 2, the cohort engine: many patients, hour by hour, under one key scheme.

:mod:`~sepsisim_jax.cohort.scan` holds the key scheme and :func:`scan_cohort`, on which every
cohort function runs; :mod:`~sepsisim_jax.cohort.chunks` the one host loop over chunks;
:mod:`~sepsisim_jax.cohort.rollout` outcomes, trajectories and clinical courses;
:mod:`~sepsisim_jax.cohort.summary` streaming summaries of cohorts of any size;
:mod:`~sepsisim_jax.cohort.sharding` the patient axis over every device.
"""

from sepsisim_jax.cohort.chunks import chunks
from sepsisim_jax.cohort.rollout import (
    SUMMARY_COLUMNS,
    Course,
    EpisodeStats,
    Trajectories,
    clinical_course,
    episode_stats,
    rollout_episodes,
    summarize,
    trajectories,
)
from sepsisim_jax.cohort.scan import (
    OpenLoop,
    hour_keys,
    padded_patients,
    patient_keys,
    scan_cohort,
)
from sepsisim_jax.cohort.summary import CohortSummary, GroupSummary, cohort_summary

__all__ = [
    "SUMMARY_COLUMNS",
    "CohortSummary",
    "Course",
    "EpisodeStats",
    "GroupSummary",
    "OpenLoop",
    "Trajectories",
    "chunks",
    "clinical_course",
    "cohort_summary",
    "episode_stats",
    "hour_keys",
    "padded_patients",
    "patient_keys",
    "rollout_episodes",
    "scan_cohort",
    "summarize",
    "trajectories",
]
