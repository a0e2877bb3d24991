"""Actor-critic MLP: Gaussian policy on the normalised action space [-1, 1]^d, and a value head."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class ActorCritic(nn.Module):
    """Separate tanh MLPs for the policy mean and the value; a state-independent log std."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Return ``(mean, log_std, value)`` for a batch of normalised observations."""
        actor, critic = obs, obs
        for width in self.hidden_sizes:
            actor = nn.tanh(
                nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(actor)
            )
            critic = nn.tanh(
                nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(critic)
            )
        mean = nn.Dense(self.action_dim, kernel_init=nn.initializers.orthogonal(0.01))(actor)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(critic)[..., 0]
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape), value


def gaussian_log_prob(x: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log density of a diagonal Gaussian, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 * (1.0 + jnp.log(2 * jnp.pi)), axis=-1)


def to_env_action(action: jax.Array, low: np.ndarray, high: np.ndarray) -> jax.Array:
    """Map a normalised action (clipped to [-1, 1]) affinely onto the box [low, high]."""
    unit = (jnp.clip(action, -1.0, 1.0) + 1.0) / 2.0
    lead = (1,) * (jnp.ndim(action) - 1)
    low = jnp.reshape(jnp.asarray(low), lead + np.shape(low))
    high = jnp.reshape(jnp.asarray(high), lead + np.shape(high))
    return low + unit * (high - low)
