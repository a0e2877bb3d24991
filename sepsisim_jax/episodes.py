"""Logged episodes in memory, and the true value of a policy, by chunks of patients.

:func:`record_episodes` keeps every step of each patient's first episode under a policy with a
density (:mod:`sepsisim_jax.stochastic`): observations, actions, rewards, the end flags, the
reference's info (hidden state and, with virtual patients, the drawn parameters) and the
behaviour policy's ``(log_p, atom)`` of each action. :func:`policy_value` is a policy's
expected discounted and undiscounted return, estimated on a cohort. Both use the key scheme of
:mod:`sepsisim_jax.rollout`: episode ``p`` of ``key`` is the one :func:`~sepsisim_jax.rollout.
rollout_episodes` runs for patient ``p``, whatever the chunking.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from tqdm import tqdm

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy
from sepsisim_jax.rollout import _scan_cohort
from sepsisim_jax.sharding import constrain_patients, padded_width, patient_range, to_host
from sepsisim_jax.stochastic import StochasticPolicy, as_pytree


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
    if not isinstance(env, SepsisEnv):
        raise TypeError(f"env must be a SepsisEnv, got {type(env).__name__}")
    if not callable(policy):
        raise TypeError(f"policy must be a policy(key, obs, params), got {policy!r}")
    for name, value in (("n_episodes", n), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")


@partial(jax.jit, static_argnums=(0,))
def _record_chunk(
    env: SepsisEnv, params: Any, policy: StochasticPolicy, key: jax.Array, patients: jax.Array
) -> dict[str, Any]:
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
    first, _, steps = _scan_cohort(
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
    width = padded_width(min(chunk_size, n_episodes))
    parts = []
    with tqdm(
        total=n_episodes, desc="episodes", unit="episode", disable=not progress, file=sys.stderr
    ) as bar:
        for start in range(0, n_episodes, width):
            chunk = to_host(_record_chunk(env, params, policy, key, patient_range(start, width)))
            keep = min(width, n_episodes - start)
            parts.append(jax.tree.map(lambda x, keep=keep: np.asarray(x)[:keep], chunk))
            bar.update(keep)
    joined = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
    joined["lengths"] = joined["lengths"].astype(np.int32)
    return Episodes(**joined)


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
    _, (_, _, totals), _ = _scan_cohort(
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
    with tqdm(
        total=n_episodes, desc="value", unit="episode", disable=not progress, file=sys.stderr
    ) as bar:
        for start in range(0, n_episodes, width):
            keep = min(width, n_episodes - start)
            patients = patient_range(start, width)
            totals = to_host(
                _value_chunk(env, params, as_pytree(policy), key, patients, gamma_array)
            )
            totals = np.asarray(totals, np.float64)[:, :keep]
            sums += np.stack([totals.sum(1), (totals**2).sum(1)], axis=1)
            bar.update(keep)
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
