"""Integer seeds to JAX keys, as ``reset(seed=s)`` of the Gymnasium and SB3 adapters uses them."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

SEED_LIMIT = 2**64  # seeds are ints in [0, 2**64)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """The keys behind ``reset(seed=s)``: ``jax.random.key(s)`` for ``s < 2**32``; larger
    seeds fold their high 32 bits into the key of their low 32 bits."""
    for seed in seeds:
        if not isinstance(seed, int | np.integer) or not 0 <= seed < SEED_LIMIT:
            raise ValueError(f"a seed must be an int in [0, 2**64), got {seed!r}")
    words = np.asarray([int(s) for s in seeds], np.uint64)
    return jax.random.wrap_key_data(
        _key_data(words.astype(np.uint32), (words >> 32).astype(np.uint32))
    )


@jax.jit
def _key_data(low: jax.Array, high: jax.Array) -> jax.Array:
    keys = jax.vmap(jax.random.key)(low)
    folded = jax.random.key_data(jax.vmap(jax.random.fold_in)(keys, high))
    return jnp.where(high[:, None] > 0, folded, jax.random.key_data(keys))


def seed_key(seed: int) -> jax.Array:
    """The key behind ``reset(seed=seed)`` (see :func:`seed_keys`)."""
    return seed_keys([seed])[0]
