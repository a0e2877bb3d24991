"""The one host loop over chunks: dispatch, prefetch, copy to the host, progress bar.

Every loop that runs a compiled function over pieces of a large job (cohort summaries,
logged episodes, policy values, dataset writing, off-policy row maps) goes through
:func:`chunks`. JAX dispatches asynchronously, so with ``prefetch`` the next chunk is already
computing on the device while the host reads and uses this one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from tqdm import tqdm

from sepsisim_jax import _checks
from sepsisim_jax.cohort.sharding import to_host


def chunks(
    fn: Callable[[int], Any],
    n: int,
    chunk_size: int,
    *,
    prefetch: bool = True,
    progress: bool = False,
    desc: str | None = None,
    unit: str = "patient",
) -> Iterator[tuple[int, int, Any]]:
    """``(start, count, output)`` for ``start = 0, chunk_size, 2 chunk_size, ... < n`` in order.

    ``fn(start)`` computes the chunk of items ``start .. start + chunk_size - 1`` and returns
    a pytree of device arrays; ``output`` is that pytree on the host (gathered from every
    process of a ``jax.distributed`` run), ``count`` how many of its items are within ``n``
    (the last chunk may run past it: its extra items are the caller's to drop). With
    ``prefetch``, ``fn(start + chunk_size)`` is called before this chunk is copied to the
    host. ``progress`` shows a bar (on stderr) that advances by ``count`` per chunk.
    """
    _checks.positive_int("n", n)
    _checks.positive_int("chunk_size", chunk_size)
    starts = range(0, n, chunk_size)
    with tqdm(
        total=n, desc=desc, unit=unit, unit_scale=True, disable=not progress, file=sys.stderr
    ) as bar:
        pending = fn(starts[0])
        for i, start in enumerate(starts):
            last = i + 1 == len(starts)
            upcoming = fn(starts[i + 1]) if prefetch and not last else None
            output = to_host(pending)
            count = min(chunk_size, n - start)
            yield start, count, output
            bar.update(count)
            pending = upcoming if prefetch or last else fn(starts[i + 1])
