"""Baseline policies as pure jittable functions ``policy(key, obs, params) -> action``.

Both work on a single observation; ``vmap`` them for a batch. The heuristic is each task's
own clinical rule (:attr:`SepsisEnv.heuristic`; for the three tasks, sepsisim 0.1.0's
``HeuristicAgent`` after the Surviving Sepsis Campaign hour-1 bundle, Rhodes et al. 2017),
applied to the same float32 observation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from sepsisim_jax.envs.base import SepsisEnv

Policy = Callable[[jax.Array, jax.Array, Any], jax.Array]


def as_pytree(policy: Policy) -> Any:
    """``policy`` as a jit argument: pytrees of arrays (a PPO policy, a policy with a density)
    as they are, traced; plain functions wrapped in a ``Partial`` (a pytree without leaves,
    compiled once per function object)."""
    leaves = jax.tree.leaves(policy)
    if leaves and all(isinstance(x, jax.Array | np.ndarray) for x in leaves):
        return policy
    return Partial(policy)


@functools.cache
def random_policy(env: SepsisEnv) -> Policy:
    """Uniform random actions in the environment's action space (one function per env)."""

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del obs
        return env.action_space(params).sample(key)

    return policy


@functools.cache
def heuristic_policy(env: SepsisEnv) -> Policy:
    """``env``'s clinical heuristic (its task's :attr:`~SepsisEnv.heuristic` rule), reading
    features from the observation by name (``env.observation_index``).

    Raises ``ValueError`` for a task that declares no heuristic rule.
    """
    rule = env.heuristic
    if rule is None:
        raise ValueError(f"{env.env_id} declares no heuristic rule (SepsisEnv.heuristic)")

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, params
        obs = jnp.asarray(obs, jnp.float32)
        return rule(lambda name: obs[env.observation_index(name)]).astype(jnp.float32)

    return policy


POLICIES: dict[str, Callable[[SepsisEnv], Policy]] = {
    "random": random_policy,
    "heuristic": heuristic_policy,
}


def baseline_policies(env: SepsisEnv) -> dict[str, Policy]:
    """The baselines ``env`` has, by name: random, and the heuristic where its task has one."""
    names = [n for n in POLICIES if n != "heuristic" or env.heuristic is not None]
    return {name: POLICIES[name](env) for name in names}
