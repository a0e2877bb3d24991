"""Actor-critic MLP: Gaussian policy on the normalised action space [-1, 1]^d, and a value head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@jax.custom_vjp
def _matmul(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))


def _matmul_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    return _matmul(x, kernel), (x, kernel)


def _matmul_bwd(residuals: tuple[jax.Array, ...], grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    grad_x = jax.lax.dot_general(grad, kernel, (((grad.ndim - 1,), (1,)), ((), ())))
    # The kernel's gradient sums over the batch. As autodiff writes it, x^T g, XLA's CPU
    # backend contracts the batch (the major axis of both operands) in a generic dot about
    # twice as slow as its library kernel, which it picks when the transpose of x is a real
    # array; the barrier keeps XLA from folding the transpose back into the dot.
    flat_x = x.reshape((-1, x.shape[-1]))
    grad_kernel = jax.lax.optimization_barrier(flat_x.T) @ grad.reshape((-1, grad.shape[-1]))
    return grad_x, grad_kernel


_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def dense_dot(
    lhs: jax.Array,
    rhs: jax.Array,
    dimension_numbers: Any,
    precision: Any = None,
    preferred_element_type: Any = None,
) -> jax.Array:
    """``lax.dot_general`` for ``nn.Dense`` (inputs x kernel) with a faster kernel gradient on
    CPU: the same forward values, the gradient summed in another order (float rounding)."""
    if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())) or precision is not None:
        return jax.lax.dot_general(
            lhs, rhs, dimension_numbers, precision, preferred_element_type=preferred_element_type
        )
    return _matmul(lhs, rhs)


class ActorCritic(nn.Module):
    """Separate tanh MLPs for the policy mean and the value; a state-independent log std."""

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Return ``(mean, log_std, value)`` for a batch of normalised observations."""
        actor, critic = obs, obs

        def dense(features: int, scale: float) -> nn.Dense:
            init = nn.initializers.orthogonal(scale)
            return nn.Dense(features, kernel_init=init, dot_general=dense_dot)

        for width in self.hidden_sizes:
            actor = nn.tanh(dense(width, np.sqrt(2))(actor))
            critic = nn.tanh(dense(width, np.sqrt(2))(critic))
        mean = dense(self.action_dim, 0.01)(actor)
        value = dense(1, 1.0)(critic)[..., 0]
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
