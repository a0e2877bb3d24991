"""Importance weights of logged episodes under an evaluation policy, in log space.

The per-step likelihood ratio ``rho_t = pi_e(a_t | s_t) / pi_b(a_t | s_t)`` is the
Radon-Nikodym derivative of :func:`sepsisim_jax.stochastic.log_likelihood_ratio`, in log
space: each step's ``log rho_t`` in float32 (where the densities are computed), their running
sums ``log w_t = sum_{k <= t} log rho_k`` in float64 on the host. ``w_t`` is the per-decision
weight of step ``t`` (Precup, Sutton & Singh 2000), ``w_{L-1}`` the trajectory weight of an
episode of ``L`` steps. After an episode's end ``log rho = 0``: the weight is held, as for an
absorbing state in which both policies agree, so that per-decision normalisers count episodes
that ended (Thomas 2015, PhD thesis, ch. 3). Over 72-96 steps the weights span hundreds of
orders of magnitude; every sum over episodes is taken after subtracting the largest
``log w`` of its column (:func:`scaled`), which cancels in self-normalised estimators.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sepsisim_jax.offline.episodes import Episodes
from sepsisim_jax.ope.common import as_episodes, check_inputs, horizon, map_rows
from sepsisim_jax.ope.types import Weights
from sepsisim_jax.stochastic import StochasticPolicy, check_support, log_likelihood_ratio


@jax.jit
def _step_log_ratio(
    start: jax.Array,
    obs: jax.Array,
    actions: jax.Array,
    log_b: jax.Array,
    atom_b: jax.Array,
    policy: StochasticPolicy,
    params: Any,
) -> dict[str, jax.Array]:
    """``log pi_e - log pi_b`` of each row (:func:`~sepsisim_jax.stochastic.
    log_likelihood_ratio`)."""
    del start
    log_e, atom_e = jax.vmap(policy.log_prob, in_axes=(0, 0, None))(obs, actions, params)
    log_ratio = log_likelihood_ratio((log_e, atom_e), (log_b, atom_b))
    return {"log_ratio": log_ratio.astype(jnp.float32), "atom": atom_e}


def importance_weights(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    *,
    behaviour: StochasticPolicy | None = None,
) -> Weights:
    """:class:`Weights` of the logged actions under the evaluation ``policy``.

    The behaviour's ``(log_p, atom)`` are read from the episodes. With ``behaviour`` given,
    :func:`~sepsisim_jax.stochastic.check_support` runs first. Either way the data are
    checked: a ``ValueError`` where the evaluation policy puts a point mass on a logged
    action that the behaviour drew from a density (an infinite weight), where it has point
    masses but no logged action falls on one (the weights of its mass are undefined), or
    where a logged behaviour log-probability is not finite.
    """
    episodes = as_episodes(episodes)
    check_inputs(episodes, policy, 0.0, behaviour)
    if behaviour is not None:
        check_support(policy, behaviour)
    n_steps = horizon(episodes)
    mask = episodes.mask[:, :n_steps]
    log_b = np.asarray(episodes.log_prob[:, :n_steps], np.float32)
    if not np.all(np.isfinite(log_b[mask])):
        raise ValueError(
            "episodes.log_prob holds non-finite behaviour log-probabilities at logged steps; "
            "the behaviour policy must have a positive density or mass at every logged action"
        )
    n, obs_dim = episodes.n_episodes, episodes.observations.shape[-1]
    rows = (
        episodes.observations[:, :n_steps].reshape(n * n_steps, obs_dim),
        episodes.actions[:, :n_steps].reshape(n * n_steps, -1),
        log_b.reshape(-1),
        np.asarray(episodes.atom[:, :n_steps]).reshape(-1),
    )
    out = map_rows(partial(_step_log_ratio, policy=policy, params=params), rows)
    log_ratio = np.where(mask, out["log_ratio"].reshape(n, n_steps), 0.0).astype(np.float32)
    atom_e = out["atom"].reshape(n, n_steps) & mask
    if np.any(np.isposinf(log_ratio)):
        i, t = np.argwhere(np.isposinf(log_ratio))[0]
        raise ValueError(
            f"the evaluation policy {policy.name!r} puts a point mass on the action of episode "
            f"{i}, step {t}, which the behaviour policy drew from a density: the importance "
            "weight is infinite (the evaluation policy is not absolutely continuous with "
            "respect to the behaviour policy); evaluate a policy with a density instead"
        )
    if policy.has_atoms and not np.any(atom_e & np.asarray(episodes.atom[:, :n_steps])):
        raise ValueError(
            f"the evaluation policy {policy.name!r} has point masses but no logged action lies "
            "on one: the behaviour policy never took the evaluation policy's action, so "
            "importance weights cannot account for that mass"
        )
    if np.any(np.isnan(log_ratio)):
        raise ValueError(f"the evaluation policy {policy.name!r} gives NaN log-probabilities")
    with np.errstate(invalid="ignore"):
        log_weight = np.cumsum(log_ratio.astype(np.float64), axis=1)
    return Weights(log_ratio=log_ratio, log_weight=log_weight, mask=mask)
