"""A trained PPO policy as one callable pytree, with the signature of the baseline policies."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.envs.registration import env_factory
from sepsisim_jax.training.config import PPOConfig
from sepsisim_jax.training.networks import ActorCritic, to_env_action
from sepsisim_jax.training.normalization import RunningStats


def actor_critic(config: PPOConfig) -> ActorCritic:
    """The network that ``config`` trains."""
    n_actions = env_factory(config.env_id)().num_actions
    return ActorCritic(n_actions, config.hidden_sizes, config.log_std_init)


# eq=False: compared and hashed by identity, so that, like the baseline functions, a policy can
# be a static argument of the jitted rollouts (its arrays cannot be hashed).
@struct.dataclass(eq=False)
class PPOPolicy:
    """Deterministic PPO policy ``policy(key, obs, params) -> action``: the Gaussian mean.

    Pure and jittable; one observation per call (``vmap`` it for a batch). Observations are
    normalised by the training statistics, and the action in [-1, 1] is mapped onto
    ``[action_low, action_high]``. ``key`` and ``params`` are ignored.
    """

    net_params: Any
    obs_stats: RunningStats
    action_low: jax.Array
    action_high: jax.Array
    network: ActorCritic = struct.field(pytree_node=False)
    config: PPOConfig = struct.field(pytree_node=False)

    @classmethod
    def create(cls, config: PPOConfig, net_params: Any, obs_stats: RunningStats) -> PPOPolicy:
        """The policy of ``config``'s network with these parameters and statistics."""
        env = env_factory(config.env_id)()
        return cls(
            net_params=net_params,
            obs_stats=obs_stats,
            action_low=jnp.asarray(env.action_low),
            action_high=jnp.asarray(env.action_high),
            network=actor_critic(config),
            config=config,
        )

    def __call__(self, key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, params
        mean, _, _ = self.network.apply(self.net_params, self.obs_stats.normalize(obs))
        return to_env_action(mean, self.action_low, self.action_high)
