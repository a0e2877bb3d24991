"""Score policies on held-out patients: one vmapped batch of full episodes per policy."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import jax

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy
from sepsisim_jax.rollout import SUMMARY_COLUMNS, EpisodeStats, rollout_episodes, summarize
from sepsisim_jax.text_table import text_table
from sepsisim_jax.training.policy import PPOPolicy


def evaluate(
    policy: Policy, env: SepsisEnv, params: Any, key: jax.Array, n_patients: int = 1000
) -> dict[str, float]:
    """Mean and sd of return, survival rate, mean episode length, mean final MAP, lactate, SOFA.

    Each patient runs one episode (until death or the step limit); works for any
    ``policy(key, obs, params) -> action``, the baselines and :class:`PPOPolicy` alike.
    """
    n_steps = int(params.max_steps_in_episode)
    if isinstance(policy, PPOPolicy):
        stats = _ppo_episodes(env, params, policy, key, n_patients, n_steps)
    else:
        stats = rollout_episodes(env, params, policy, key, n_patients, n_steps)
    return summarize(stats)


@partial(jax.jit, static_argnames=("env", "n_patients", "n_steps"))
def _ppo_episodes(
    env: SepsisEnv, params: Any, policy: PPOPolicy, key: jax.Array, n_patients: int, n_steps: int
) -> EpisodeStats:
    """``rollout_episodes`` with the policy's arrays traced: one compilation per network shape."""
    return rollout_episodes(env, params, policy, key, n_patients, n_steps)


def compare_policies(
    env: SepsisEnv,
    params: Any,
    policies: Mapping[str, Policy],
    key: jax.Array,
    n_patients: int = 1000,
) -> list[dict[str, Any]]:
    """Every policy on the same ``n_patients`` patients of ``key``: ``{"policy": name, ...}``
    rows with the outcome of :func:`evaluate`, in the order of ``policies``."""
    return [
        {"policy": name, **evaluate(policy, env, params, key, n_patients)}
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
