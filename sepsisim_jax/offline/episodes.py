"""Logged episodes in memory, and the true value of a policy, by chunks of patients.

:func:`record_episodes` keeps every step of each patient's first episode under a policy with a
density (:mod:`sepsisim_jax.stochastic`): observations, actions, rewards, the end flags, the
reference's info (hidden state and, with virtual patients, the drawn parameters) and the
behaviour policy's ``(log_p, atom)`` of each action. :func:`policy_value` is a policy's
expected discounted and undiscounted return, estimated on a cohort. Both run on the cohort
engine (:func:`~sepsisim_jax.cohort.scan.scan_cohort`, the host loop
:func:`~sepsisim_jax.cohort.chunks.chunks`): episode ``p`` of ``key`` is the one
:func:`~sepsisim_jax.cohort.rollout.rollout_episodes` runs for patient ``p``, whatever the
chunking.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sepsisim_jax import _checks
from sepsisim_jax.cohort.chunks import chunks
from sepsisim_jax.cohort.scan import scan_cohort
from sepsisim_jax.cohort.sharding import constrain_patients, padded_width, patient_range
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy, as_pytree
from sepsisim_jax.stochastic import StochasticPolicy


@struct.dataclass
class Episodes:
    """``n`` episodes of at most ``T`` steps, episode-major; entries after an episode's end
    (step ``length`` on) are zero (``False`` for flags) and masked by :attr:`mask`.

    ``observations[i, t]`` is what action ``t`` was taken in (``t = length``: the last
    observation); ``infos[k][i, t]`` is the info of that state (the admission's at ``t = 0``);
    ``log_prob``/``atom`` are the behaviour's ``(log_p, atom)`` of ``actions[i, t]``.
    """

    observations: np.ndarray  # (n, T + 1, obs_dim) float32
    actions: np.ndarray  # (n, T, n_actions) float32
    rewards: np.ndarray  # (n, T)
    terminations: np.ndarray  # (n, T) bool: died at this step
    truncations: np.ndarray  # (n, T) bool: step limit at this step
    lengths: np.ndarray  # (n,) int32
    log_prob: np.ndarray  # (n, T)
    atom: np.ndarray  # (n, T) bool
    infos: dict[str, np.ndarray]  # each (n, T + 1)

    @property
    def n_episodes(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def mask(self) -> np.ndarray:
        """``(n, T)`` bool: step ``t`` belongs to episode ``i``."""
        return np.arange(self.actions.shape[1]) < self.lengths[:, None]

    def returns(self, gamma: float = 1.0) -> np.ndarray:
        """Each episode's return discounted by ``gamma`` (float64)."""
        discount = gamma ** np.arange(self.rewards.shape[1], dtype=np.float64)
        return (self.rewards.astype(np.float64) * discount).sum(axis=1)


def _check(env: SepsisEnv, policy: Any, n: int, chunk_size: int, gamma: float = 1.0) -> None:
    _checks.instance("env", env, SepsisEnv, "a SepsisEnv (from sepsisim_jax.make)")
    _checks.policy("policy", policy)
    _checks.positive_int("n_episodes", n)
    _checks.positive_int("chunk_size", chunk_size)
    _checks.number_in("gamma", gamma, 0.0, 1.0)


@partial(jax.jit, static_argnums=(0,))
def record_chunk(
    env: SepsisEnv, params: Any, policy: StochasticPolicy, key: jax.Array, patients: jax.Array
) -> dict[str, Any]:
    """The first episode of the patients ``patients`` (indices of the cohort of ``key``) as
    the fields of :class:`Episodes` (on the device; lengths int32)."""
    n, n_steps = patients.shape[0], env.model.episode_steps
    log_prob = jax.vmap(policy.log_prob, in_axes=(0, 0, None))

    def record(active, obs, state, action, output):
        next_obs, next_state, reward, terminated, _ = output
        truncated = env.is_truncated(next_state, params)
        logp, atom = log_prob(obs, action, params)
        keep = partial(jnp.where, active)
        step = {
            "active": active,
            "actions": jnp.where(active[:, None], action, 0.0),
            "rewards": keep(reward, 0.0),
            "terminations": active & terminated,
            "truncations": active & truncated,
            "log_prob": keep(logp, 0.0),
            "atom": active & atom,
            "next_observations": jnp.where(active[:, None], next_obs, 0.0),
            "next_infos": {k: keep(v, 0) for k, v in jax.vmap(env.info)(next_state).items()},
        }
        return active & ~(terminated | truncated), step

    patients = constrain_patients(patients)
    first, _, steps = scan_cohort(
        env, params, policy, key, patients, n_steps, record, jnp.ones(n, bool), auto_reset=False
    )
    steps = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), steps)  # episode-major
    first_obs = jax.vmap(env.get_obs)(first)
    infos = jax.vmap(env.info)(first)
    return {
        "observations": jnp.concatenate([first_obs[:, None], steps.pop("next_observations")], 1),
        "infos": {
            k: jnp.concatenate([v[:, None], steps["next_infos"][k]], 1) for k, v in infos.items()
        },
        "lengths": jnp.sum(steps.pop("active"), axis=1, dtype=jnp.int32),
        **{k: v for k, v in steps.items() if k != "next_infos"},
    }


def record_episodes(
    env: SepsisEnv,
    params: Any,
    policy: StochasticPolicy,
    key: jax.Array,
    n_episodes: int,
    *,
    chunk_size: int = 4096,
    progress: bool = True,
) -> Episodes:
    """Each of ``n_episodes`` patients' first episode under ``policy``, in chunks of
    ``chunk_size`` patients (one compilation), with a progress bar."""
    if not isinstance(policy, StochasticPolicy):
        raise TypeError(
            "policy must be a StochasticPolicy (sepsisim_jax.stochastic), whose density is "
            f"logged with each action; got {type(policy).__name__}"
        )
    _check(env, policy, n_episodes, chunk_size)
    parts = [
        chunk
        for _, chunk in episode_chunks(
            env, params, policy, key, n_episodes, chunk_size, progress=progress
        )
    ]
    return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)


def episode_chunks(
    env: SepsisEnv,
    params: Any,
    policy: StochasticPolicy,
    key: jax.Array,
    n_episodes: int,
    chunk_size: int,
    *,
    progress: bool = False,
) -> Iterator[tuple[int, Episodes]]:
    """``(first episode, Episodes)`` of :func:`record_episodes` chunk by chunk, in order, the
    next chunk simulating while the caller uses this one (memory: two chunks)."""
    width = padded_width(min(chunk_size, n_episodes))
    for start, keep, chunk in chunks(
        lambda first: record_chunk(env, params, policy, key, patient_range(first, width)),
        n_episodes,
        width,
        progress=progress,
        desc="episodes",
        unit="episode",
    ):
        chunk = jax.tree.map(lambda x, keep=keep: np.asarray(x)[:keep], chunk)
        chunk["lengths"] = chunk["lengths"].astype(np.int32)
        yield start, Episodes(**chunk)


@struct.dataclass
class PolicyValue:
    """A policy's expected return estimated on ``n`` independent episodes."""

    discounted: float  # mean return discounted by ``gamma``
    discounted_se: float  # its standard error
    undiscounted: float
    undiscounted_se: float
    survival: float
    gamma: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@partial(jax.jit, static_argnums=(0,))
def _value_chunk(
    env: SepsisEnv, params: Any, policy: Any, key: jax.Array, patients: jax.Array, gamma: Any
) -> jax.Array:
    n = patients.shape[0]

    def record(carry, obs, state, action, output):
        active, discount, totals = carry
        _, next_state, reward, terminated, _ = output
        truncated = env.is_truncated(next_state, params)
        gained = jnp.where(active, reward, 0.0).astype(jnp.float32)
        totals = totals + jnp.stack([discount * gained, gained, (active & terminated) * 1.0])
        return (active & ~(terminated | truncated), discount * gamma, totals), None

    carry = (jnp.ones(n, bool), jnp.ones(n, jnp.float32), jnp.zeros((3, n), jnp.float32))
    patients = constrain_patients(patients)
    _, (_, _, totals), _ = scan_cohort(
        env, params, policy, key, patients, None, record, carry, auto_reset=False
    )
    return totals


def policy_value(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_episodes: int,
    *,
    gamma: float = 0.99,
    chunk_size: int = 65536,
    progress: bool = True,
) -> PolicyValue:
    """``policy``'s mean discounted and undiscounted return (and survival) on ``n_episodes``
    patients of ``key``, with standard errors (sd / sqrt(n), float64 on the host)."""
    _check(env, policy, n_episodes, chunk_size, gamma)
    width = padded_width(min(chunk_size, n_episodes))
    sums = np.zeros((3, 2))  # (discounted, undiscounted, deaths) x (sum, sum of squares)
    gamma_array = jnp.asarray(gamma, jnp.float32)
    tree_policy = as_pytree(policy)
    for _, keep, totals in chunks(
        lambda first: _value_chunk(
            env, params, tree_policy, key, patient_range(first, width), gamma_array
        ),
        n_episodes,
        width,
        progress=progress,
        desc="value",
        unit="episode",
    ):
        totals = np.asarray(totals, np.float64)[:, :keep]
        sums += np.stack([totals.sum(1), (totals**2).sum(1)], axis=1)
    mean = sums[:, 0] / n_episodes
    se = np.sqrt(np.maximum(sums[:, 1] / n_episodes - mean**2, 0.0) / n_episodes)
    return PolicyValue(
        discounted=float(mean[0]),
        discounted_se=float(se[0]),
        undiscounted=float(mean[1]),
        undiscounted_se=float(se[1]),
        survival=float(1.0 - mean[2]),
        gamma=float(gamma),
        n=n_episodes,
    )
