"""Running mean and variance of observations, held in the training state (never global)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    """Mean and variance over every observation seen, merged batch by batch (Chan et al. 1979)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, dim: int) -> RunningStats:
        return cls(jnp.zeros(dim), jnp.ones(dim), jnp.asarray(1e-4))

    def update(self, batch: jax.Array) -> RunningStats:
        """Merge a ``(n, dim)`` batch into the statistics."""
        n = batch.shape[0]
        batch_mean = jnp.mean(batch, axis=0)
        batch_var = jnp.var(batch, axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        return RunningStats(mean, m2 / total, total)

    def normalize(self, obs: jax.Array, clip: float = 10.0) -> jax.Array:
        """Standardise ``obs`` (any leading batch axes), clipped to [-clip, clip]."""
        lead = (1,) * (jnp.ndim(obs) - 1)
        mean = jnp.reshape(self.mean, lead + self.mean.shape)
        std = jnp.reshape(jnp.sqrt(self.var + 1e-8), lead + self.var.shape)
        return jnp.clip((obs - mean) / std, -clip, clip)
