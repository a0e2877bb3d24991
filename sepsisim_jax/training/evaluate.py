"""Evaluate a policy on held-out patients: one vmapped batch of full episodes."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy
from sepsisim_jax.rollout import rollout_episodes, summarize
from sepsisim_jax.training.networks import ActorCritic, to_env_action
from sepsisim_jax.training.normalization import RunningStats


def evaluate(
    policy: Policy, env: SepsisEnv, params: Any, key: jax.Array, n_patients: int = 1000
) -> dict[str, float]:
    """Mean and sd of return, survival rate, mean episode length, mean final MAP, lactate, SOFA.

    Each patient runs one episode (until death or the 72-step cut); works for any
    ``policy(key, obs, params) -> action``, the baselines included.
    """
    n_steps = int(params.max_steps_in_episode)
    return summarize(rollout_episodes(env, params, policy, key, n_patients, n_steps))


def ppo_policy(
    network: ActorCritic, net_params: Any, obs_stats: RunningStats, env: SepsisEnv
) -> Policy:
    """The deterministic PPO policy: the Gaussian mean, mapped onto the action bounds."""

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, params
        mean, _, _ = network.apply(net_params, obs_stats.normalize(jnp.asarray(obs)))
        return to_env_action(mean, env.action_low, env.action_high)

    return policy
