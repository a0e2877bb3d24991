"""Score policies on held-out patients: full episodes in vmapped chunks, summarised as they run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from sepsisim_jax.cohort.rollout import SUMMARY_COLUMNS
from sepsisim_jax.cohort.summary import CHUNK_SIZE, cohort_summary
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy
from sepsisim_jax.text_table import text_table


def evaluate(
    policy: Policy,
    env: SepsisEnv,
    params: Any,
    key: jax.Array,
    n_patients: int = 1000,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = False,
) -> dict[str, Any]:
    """Mean and sd of return, survival rate, mean episode length, mean final MAP, lactate, SOFA,
    and the quantiles of :func:`sepsisim_jax.cohort.summary.cohort_summary` (``"quantiles"``).

    Each patient runs one episode (until death or the step limit), ``chunk_size`` patients per
    compiled call, so any cohort size fits in memory; works for any
    ``policy(key, obs, params) -> action``, the baselines and :class:`PPOPolicy` alike (a PPO
    policy's arrays are traced: one compilation per network shape).
    """
    n_steps = int(params.max_steps_in_episode)
    summary = cohort_summary(
        env,
        params,
        policy,
        key,
        n_patients,
        chunk_size=chunk_size,
        n_steps=n_steps,
        progress=progress,
    )
    return summary.overall.row()


def compare_policies(
    env: SepsisEnv,
    params: Any,
    policies: Mapping[str, Policy],
    key: jax.Array,
    n_patients: int = 1000,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Every policy on the same ``n_patients`` patients of ``key``: ``{"policy": name, ...}``
    rows with the outcome of :func:`evaluate`, in the order of ``policies``."""
    return [
        {
            "policy": name,
            **evaluate(
                policy, env, params, key, n_patients, chunk_size=chunk_size, progress=progress
            ),
        }
        for name, policy in policies.items()
    ]


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`compare_policies` as a text table."""
    return text_table(
        rows,
        [
            ("policy", "<18", lambda r: r["policy"]),
            *SUMMARY_COLUMNS,
            ("final MAP", ">10", lambda r: f"{r['final_map']:.1f}"),
            ("lactate", ">8", lambda r: f"{r['final_lactate']:.2f}"),
            ("SOFA", ">6", lambda r: f"{r['final_sofa']:.2f}"),
        ],
    )
