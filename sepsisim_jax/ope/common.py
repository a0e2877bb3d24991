"""What every estimator shares: input checks, the logged steps as rows, chunked jitted maps
(on the host loop of :mod:`~sepsisim_jax.cohort.chunks`), weights scaled to their maximum."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from sepsisim_jax import _checks
from sepsisim_jax.cohort.chunks import chunks
from sepsisim_jax.offline.episodes import Episodes
from sepsisim_jax.stochastic import StochasticPolicy

CHUNK_ROWS = 8192  # rows (logged steps) per call of a jitted map: one compilation per function


def as_episodes(data: Any) -> Episodes:
    """``data`` as :class:`~sepsisim_jax.offline.episodes.Episodes`: itself, or a Minari dataset
    (or its id) read with :func:`sepsisim_jax.offline.datasets.load_episodes` (the ``offline``
    extra)."""
    if isinstance(data, Episodes):
        return data
    minari = sys.modules.get("minari")  # a MinariDataset exists only once minari is imported
    if isinstance(data, str) or (minari is not None and isinstance(data, minari.MinariDataset)):
        from sepsisim_jax.offline.datasets import load_episodes  # imports minari: when needed

        return load_episodes(data, progress=False)
    raise TypeError(
        "episodes must be an Episodes (sepsisim_jax.offline.record_episodes), a Minari "
        f"dataset or a Minari dataset id, got {type(data).__name__}"
    )


def check_inputs(episodes: Episodes, policy: Any, gamma: float, behaviour: Any = None) -> None:
    """``TypeError``/``ValueError`` for a policy without a density, ``gamma`` outside [0, 1],
    episodes without a step, or a behaviour policy that is not a ``StochasticPolicy``."""
    for name, value in (("policy", policy), ("behaviour", behaviour)):
        if value is not None and not isinstance(value, StochasticPolicy):
            raise TypeError(
                f"{name} must be a StochasticPolicy (sepsisim_jax.stochastic), whose density "
                f"the estimators need; got {type(value).__name__}"
            )
    _checks.number_in("gamma", gamma, 0.0, 1.0)
    if episodes.n_episodes < 1 or int(np.min(episodes.lengths)) < 1:
        raise ValueError(
            "episodes must hold at least one episode and every episode at least one step; got "
            f"{episodes.n_episodes} episodes, shortest {np.min(episodes.lengths, initial=0)}"
        )


def horizon(episodes: Episodes) -> int:
    """The longest episode's number of steps: the columns that any estimator reads."""
    return int(np.max(episodes.lengths))


def discounts(gamma: float, n_steps: int) -> np.ndarray:
    """``gamma ** t`` for ``t = 0 .. n_steps - 1`` in float64."""
    return float(gamma) ** np.arange(n_steps, dtype=np.float64)


def map_rows(
    fn: Callable[..., Any], rows: tuple[np.ndarray, ...], *args: Any, chunk: int = CHUNK_ROWS
) -> Any:
    """``fn(start, *chunk_rows, *args)`` over ``rows`` (arrays with the same leading length)
    in pieces of ``chunk`` rows, the last one padded with zeros; outputs (a pytree of arrays
    with a leading row axis) are joined on the host and cut to the rows given. ``start`` is
    the first row's index, so that per-row keys do not depend on the chunking."""

    def piece(start: int) -> Any:
        blocks = []
        for array in rows:
            block = np.asarray(array[start : start + chunk])
            if block.shape[0] < chunk:
                pad = np.zeros((chunk - block.shape[0], *block.shape[1:]), block.dtype)
                block = np.concatenate([block, pad])
            blocks.append(block)
        return fn(np.int32(start), *blocks, *args)

    n = rows[0].shape[0]
    parts = [output for _, _, output in chunks(piece, n, chunk, unit="row")]
    joined = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
    return jax.tree.map(lambda x: x[:n], joined)


def scaled(log_w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(exp(log_w - m), m)`` with ``m`` the maximum along ``axis`` (0 where every weight is
    0), so that the largest scaled weight of each slice is 1 and none overflows."""
    shift = np.max(log_w, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    return np.exp(log_w - shift), np.squeeze(shift, axis)


def unscale(value: Any, shift: Any) -> np.ndarray:
    """``value * exp(shift)``, exactly 0 where ``value`` is 0 (not ``0 * inf``)."""
    value = np.asarray(value, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(value == 0, 0.0, value * np.exp(shift))
