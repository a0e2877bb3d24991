"""Behaviour policies for logged datasets, by name, with their densities described.

The names of :data:`BEHAVIOURS` build a :class:`~sepsisim_jax.stochastic.StochasticPolicy`:
uniform random actions, the task's clinical heuristic or a saved PPO policy, each acting
deterministically, with epsilon-greedy exploration or with truncated-normal noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sepsisim_jax import _checks
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import heuristic_policy
from sepsisim_jax.stochastic import (
    StochasticPolicy,
    deterministic,
    epsilon_greedy,
    gaussian,
    uniform,
)

BEHAVIOURS = ("random", "heuristic", "ppo")  # names :func:`behaviour_policy` takes
DENSITIES = {
    "uniform": "1 / |B| on the action box B = [low, high]",
    "epsilon": "point mass 1 - epsilon at base(obs), plus density epsilon / |B| on the box",
    "gaussian": (
        "prod_i phi(z_i) / (sd_i (Phi(beta_i) - Phi(alpha_i))), z = (a - base(obs)) / sd, "
        "sd = scale (high - low), normal truncated to [low, high]"
    ),
}


def behaviour_policy(
    env: SepsisEnv,
    name: str,
    *,
    epsilon: float = 0.0,
    scale: float | list[float] | None = None,
    checkpoint: str | Path | None = None,
) -> StochasticPolicy:
    """A behaviour policy with its density, by name (:data:`BEHAVIOURS`).

    - ``"random"``: uniform actions (no ``epsilon`` or ``scale``);
    - ``"heuristic"``: the clinical heuristic (:func:`~sepsisim_jax.policies.heuristic_policy`);
    - ``"ppo"``: the PPO policy saved in ``checkpoint`` (a directory or file written by
      ``sepsisim-jax train``), trained on this environment id with the full observation.

    The heuristic and PPO act deterministically, with a uniform action with probability
    ``epsilon`` (:func:`~sepsisim_jax.stochastic.epsilon_greedy`), or with truncated-normal
    noise of sd ``scale x (high - low)`` per component (:func:`~sepsisim_jax.stochastic.
    gaussian`); give at most one of the two.
    """
    _checks.instance("env", env, SepsisEnv, "a SepsisEnv (from sepsisim_jax.make)")
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour policy {name!r}; valid: {list(BEHAVIOURS)}")
    _checks.number_in("epsilon", epsilon, 0.0, 1.0)
    if scale is not None and epsilon > 0:
        raise ValueError(f"give epsilon or scale, not both (epsilon={epsilon}, scale={scale})")
    if (name == "ppo") != (checkpoint is not None):
        raise ValueError(
            "a checkpoint goes with the behaviour policy 'ppo' and only with it "
            f"(policy {name!r}, checkpoint {checkpoint!r})"
        )
    if name == "random":
        if epsilon > 0 or scale is not None:
            raise ValueError(
                f"the random policy is uniform already; it takes no epsilon or scale "
                f"(epsilon={epsilon}, scale={scale})"
            )
        return uniform(env)
    base = heuristic_policy(env) if name == "heuristic" else _ppo_policy(env, checkpoint)
    if scale is not None:
        return gaussian(env, base, scale, name)
    if epsilon > 0:
        return epsilon_greedy(env, base, float(epsilon), name)
    return deterministic(env, base, name)


def _ppo_policy(env: SepsisEnv, checkpoint: str | Path) -> Any:
    from sepsisim_jax.training.checkpoint import load_checkpoint

    policy = load_checkpoint(checkpoint)
    trained = policy.config.env_id
    if trained != env.env_id or env.observation != "full":
        raise ValueError(
            f"the checkpoint {str(checkpoint)!r} was trained on {trained} with the full "
            f"observation; the environment is {env.env_id} with the {env.observation!r} one"
        )
    return policy


def describe(policy: StochasticPolicy, checkpoint: str | Path | None) -> dict[str, Any]:
    """What a dataset's metadata records of its behaviour policy."""

    def shortest(values: Any) -> list[float]:  # float32 values as written: 0.3, not 0.30000001
        return [float(str(v)) for v in np.atleast_1d(np.asarray(values, np.float32))]

    return {
        "name": policy.name,
        "kind": policy.kind,
        "epsilon": shortest(policy.epsilon)[0] if policy.kind == "epsilon" else None,
        "scale": shortest(policy.scale) if policy.kind == "gaussian" else None,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "density": DENSITIES[policy.kind],
        "density_reference": "sepsisim_jax.stochastic.StochasticPolicy.log_prob",
    }


def resolve_behaviour(
    env: SepsisEnv,
    policy: StochasticPolicy | str,
    epsilon: float,
    scale: float | list[float] | None,
    checkpoint: str | Path | None,
) -> StochasticPolicy:
    """``policy`` if a :class:`StochasticPolicy` of ``env``'s actions, else the named one
    (:func:`behaviour_policy`)."""
    if isinstance(policy, str):
        return behaviour_policy(env, policy, epsilon=epsilon, scale=scale, checkpoint=checkpoint)
    if not isinstance(policy, StochasticPolicy):
        raise TypeError(f"policy must be a StochasticPolicy or a name, got {policy!r}")
    if epsilon or scale is not None or checkpoint is not None:
        raise ValueError("epsilon, scale and checkpoint go with a policy name, not a policy")
    low, high = np.asarray(policy.low), np.asarray(policy.high)
    if low.shape != env.action_low.shape or not (
        np.allclose(low, env.action_low) and np.allclose(high, env.action_high)
    ):
        raise ValueError(f"policy {policy.name!r} was not built for {env.env_id}'s actions")
    return policy
