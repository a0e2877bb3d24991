"""Cohort summaries of any size in bounded memory.

:func:`cohort_summary` runs a cohort in fixed-size chunks of patients through one compiled
function (sharded over every device, :mod:`~sepsisim_jax.cohort.sharding`; the host loop of
:mod:`~sepsisim_jax.cohort.chunks`) and folds each chunk's outcomes into running summaries on
the host, so memory does not grow with the cohort. Chunks use the key scheme of
:mod:`~sepsisim_jax.cohort.scan`: a patient's episode depends only on the key and its index,
and the summaries are built so that they do not depend on the chunk size either:

- means and standard deviations: float64 sums over consecutive blocks of :data:`BLOCK`
  patients (the same blocks whatever the chunking), added block after block;
- quantiles of the integer outcomes (episode length, SOFA): exact, from counts;
- quantiles of the continuous outcomes (return, final MAP, final lactate): exact for cohorts
  up to ``exact_limit`` patients (all values kept); above it, a streaming estimate from a
  histogram with logarithmic buckets (the mapping of DDSketch, Masson et al. 2019, PVLDB 12):
  bucket ``i`` holds ``gamma^(i-1) < |x| <= gamma^i`` with ``gamma = (1 + a) / (1 - a)``, and
  its representative ``2 gamma^i / (gamma + 1)`` lies within a relative error ``a``
  (:data:`RELATIVE_ERROR`) of every value in it. The estimate of a quantile is therefore within
  ``a |x_q|`` of the exact sample quantile ``x_q`` (plus :data:`ZERO_BAND` absolute, the width
  of the zero bucket). Counts do not depend on the order values arrive in.

Every quantile is the inverted-CDF sample quantile: the value of rank ``max(ceil(q n), 1)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sepsisim_jax import _checks
from sepsisim_jax.cohort.chunks import chunks
from sepsisim_jax.cohort.rollout import episode_stats
from sepsisim_jax.cohort.scan import patient_keys
from sepsisim_jax.cohort.sharding import constrain_patients, padded_width, patient_range
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.physiology.virtual_patients import (
    PatientField,
    per_patient_fields,
    sample_patient,
)
from sepsisim_jax.policies import Policy, as_pytree

# Outcomes summarised, as named in EpisodeStats; ``survived`` gets a mean only.
METRICS = ("returns", "survived", "lengths", "final_map", "final_lactate", "final_sofa")
INTEGER_METRICS = ("lengths", "final_sofa")  # exact quantiles from counts
CONTINUOUS_METRICS = ("returns", "final_map", "final_lactate")
QUANTILE_METRICS = ("returns", "lengths", "final_map", "final_lactate", "final_sofa")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BLOCK = 4096  # patients per summation block
CHUNK_SIZE = 65_536  # patients per compiled call by default
EXACT_LIMIT = 1_000_000  # cohorts up to this size keep every value for exact quantiles
RELATIVE_ERROR = 0.005  # of the streaming quantiles
ZERO_BAND = 1e-6  # |x| below this falls in the streaming histogram's zero bucket
LARGEST = 1e9  # |x| above this overflows the streaming histogram (its bound is then inf)


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """Outcomes of one group of patients (the whole cohort, or one parameter bin)."""

    label: str
    patients: int
    mean: dict[str, float]
    sd: dict[str, float]
    quantiles: dict[str, dict[float, float]]  # metric -> q -> value

    def row(self) -> dict[str, Any]:
        """The keys of :func:`sepsisim_jax.cohort.rollout.summarize`, plus the quantiles."""
        return {
            "mean_return": self.mean["returns"],
            "sd_return": self.sd["returns"],
            "survival": self.mean["survived"],
            "mean_length": self.mean["lengths"],
            "final_map": self.mean["final_map"],
            "final_lactate": self.mean["final_lactate"],
            "final_sofa": self.mean["final_sofa"],
            "quantiles": {
                m: {str(q): v for q, v in qs.items()} for m, qs in self.quantiles.items()
            },
        }


@dataclasses.dataclass(frozen=True)
class CohortSummary:
    """What :func:`cohort_summary` returns: the whole cohort first, then the parameter bins."""

    env_id: str
    severity: str
    patients: int
    chunk_size: int
    devices: int
    quantile_method: str  # "exact" or "log-histogram"
    relative_error: float  # bound of the continuous quantiles (0 when exact)
    parameter: str | None
    groups: tuple[GroupSummary, ...]
    compile_seconds: float
    run_seconds: float  # wall time of the chunks and the summaries, after compilation

    @property
    def overall(self) -> GroupSummary:
        return self.groups[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings and one row per group."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        settings["groups"] = [
            {"group": g.label, "patients": g.patients, **g.row()} for g in self.groups
        ]
        return settings


def cohort_summary(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_patients: int,
    *,
    chunk_size: int = CHUNK_SIZE,
    n_steps: int | None = None,
    parameter: str | None = None,
    bins: int | Sequence[float] = 5,
    quantiles: Sequence[float] = QUANTILES,
    exact_limit: int = EXACT_LIMIT,
    progress: bool = True,
) -> CohortSummary:
    """Summaries of one episode per patient for ``n_patients`` patients, in chunks.

    Args:
        env: the environment.
        params: its params.
        policy: ``policy(key, obs, params) -> action``.
        key: the cohort's key. These four are those of
            :func:`sepsisim_jax.cohort.rollout.rollout_episodes`, whose per-patient outcomes
            these summarise (same key, same patients).
        n_patients: cohort size; any size, memory is that of one chunk.
        chunk_size: patients per compiled call (at most the cohort), rounded up to the padding
            rule of :mod:`~sepsisim_jax.cohort.sharding` (a multiple of 16 per device). The
            last chunk is run in full and its patients beyond the cohort are dropped.
        n_steps: steps per episode (default: the patient model's episode length).
        parameter: with virtual patients, also summarise per bin of this per-patient
            parameter (its flat name, e.g. ``"k_pm"``).
        bins: number of equal-probability bins of the parameter's drawn distribution, or
            explicit interior bin edges in its unit.
        quantiles: probabilities in (0, 1] reported for every outcome but survival.
        exact_limit: cohorts up to this size get exact quantiles, larger ones the
            streaming estimate of the module docstring.
        progress: show a progress bar (on stderr) over patients.

    Raises:
        ValueError: a non-positive size, a quantile outside (0, 1], or a parameter that is not
            drawn per patient.
    """
    _checks.positive_int("n_patients", n_patients)
    _checks.positive_int("chunk_size", chunk_size)
    if not all(0.0 < q <= 1.0 for q in quantiles):
        raise ValueError(f"quantiles must lie in (0, 1], got {tuple(quantiles)}")
    chunk_size = padded_width(min(chunk_size, n_patients))
    edges, labels = _parameter_bins(env, params, parameter, bins)
    books = _Books(len(labels) + 1, exact=n_patients <= exact_limit)
    tree_policy = as_pytree(policy)
    start = time.perf_counter()
    run = _chunk.lower(
        env, n_steps, parameter, params, tree_policy, key, patient_range(0, chunk_size)
    ).compile()
    compiled = time.perf_counter()
    for _, keep, (outcomes, values) in chunks(
        lambda first: run(params, tree_policy, key, patient_range(first, chunk_size)),
        n_patients,
        chunk_size,
        progress=progress,
        desc=env.env_id,
    ):
        group = None if parameter is None else np.searchsorted(edges, values[:keep], "right")
        books.add(np.stack([outcomes[m][:keep] for m in METRICS], axis=1), group)
    groups = books.summaries(("all", *labels), tuple(quantiles))
    return CohortSummary(
        env_id=env.env_id,
        severity=env.severity,
        patients=n_patients,
        chunk_size=chunk_size,
        devices=jax.device_count(),
        quantile_method="exact" if books.exact else "log-histogram",
        relative_error=0.0 if books.exact else RELATIVE_ERROR,
        parameter=parameter,
        groups=groups,
        compile_seconds=compiled - start,
        run_seconds=time.perf_counter() - compiled,
    )


@partial(jax.jit, static_argnums=(0, 1, 2))
def _chunk(
    env: SepsisEnv,
    n_steps: int | None,
    parameter: str | None,
    params: Any,
    policy: Any,
    key: jax.Array,
    patients: jax.Array,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Per-patient outcomes of one chunk, and the binned parameter's value (0 if none)."""
    patients = constrain_patients(patients)
    stats = episode_stats(env, params, policy, key, patients, n_steps)
    outcomes = {m: getattr(stats, m) for m in METRICS}
    if parameter is None:
        return outcomes, jnp.zeros(patients.shape, env.dtype)
    admission_keys, _ = patient_keys(key, patients)
    _, states = jax.vmap(env.reset, in_axes=(0, None))(admission_keys, params)
    field = _field(params, parameter)
    return outcomes, field.read(states.physiology)


def _field(params: Any, parameter: str) -> PatientField:
    fields = {f.name: f for f in per_patient_fields(params.patient)}
    if parameter not in fields:
        raise ValueError(f"{parameter!r} is not drawn per patient; choose one of {list(fields)}")
    return fields[parameter]


def _parameter_bins(
    env: SepsisEnv, params: Any, parameter: str | None, bins: int | Sequence[float]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """The parameter's interior bin edges and the bin labels (none without a parameter)."""
    if parameter is None:
        return np.zeros(0), ()
    if not env.patient_spread:
        raise ValueError("per-parameter summaries need virtual patients (patient_spread > 0)")
    field = _field(params, parameter)
    n_fields = len(per_patient_fields(params.patient))
    if isinstance(bins, int):
        if bins < 1:
            raise ValueError(f"bins must be positive, got {bins}")
        # The draw is monotone in its uniform, so edges at u = k / bins split it evenly.
        edges = np.array(
            [
                field.read(
                    sample_patient(params.patient, env.patient_spread, jnp.full(n_fields, k / bins))
                )
                for k in range(1, bins)
            ],
            np.float64,
        )
    else:
        edges = np.asarray(bins, np.float64)
        if np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin edges must increase, got {tuple(bins)}")
    bounds = [field.spec.low, *edges.tolist(), field.spec.high]
    unit = field.spec.unit
    last = len(bounds) - 2
    labels = tuple(
        f"{parameter} [{lo:.4g}, {hi:.4g}{']' if i == last else ')'} {unit}".rstrip()
        for i, (lo, hi) in enumerate(itertools.pairwise(bounds))
    )
    return edges, labels


class _LogHistogram:
    """Counts of values in logarithmic buckets (module docstring), one row per group;
    mergeable and independent of the order values arrive in."""

    def __init__(self, n_groups: int = 1) -> None:
        self.log_gamma = math.log((1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR))
        self.offset = math.ceil(math.log(ZERO_BAND) / self.log_gamma)
        self.size = math.ceil(math.log(LARGEST) / self.log_gamma) - self.offset + 1
        # Per group: negative buckets, the zero bucket, positive buckets, overflows.
        self.counts = np.zeros((n_groups, 2 * self.size + 1), np.int64)
        self.overflow = np.zeros(n_groups, np.int64)

    def add(self, x: np.ndarray, group: np.ndarray | None = None) -> None:
        """Count ``x`` (one value per patient) into the rows ``group`` (default row 0)."""
        group = np.zeros(len(x), np.int64) if group is None else group
        magnitude = np.abs(x)
        small = magnitude < ZERO_BAND
        index = np.ceil(np.log(np.where(small, 1.0, magnitude)) / self.log_gamma) - self.offset
        np.add.at(self.overflow, group[index >= self.size], 1)
        index = np.clip(index, 0, self.size - 1).astype(np.int64)
        column = np.where(
            small, self.size, np.where(x > 0, self.size + 1 + index, self.size - 1 - index)
        )
        width = self.counts.shape[1]
        self.counts += np.bincount(group * width + column, minlength=self.counts.size).reshape(
            self.counts.shape
        )

    def quantile(self, q: float, group: int = 0) -> float:
        if self.overflow[group]:
            return math.inf
        gamma = math.exp(self.log_gamma)
        centre = 2 * gamma ** (np.arange(self.size) + self.offset) / (gamma + 1)
        values = np.concatenate([-centre[::-1], [0.0], centre])
        counts = self.counts[group]
        return float(values[np.searchsorted(np.cumsum(counts), _rank(q, int(counts.sum())))])


def _rank(q: float, n: int) -> int:
    """1-based rank of the inverted-CDF quantile ``q`` of ``n`` values."""
    return max(math.ceil(q * n), 1)


class _Books:
    """Running sums per group and metric, in blocks of :data:`BLOCK` patients, and quantile
    material (every value while ``exact``, else counts). Group 0 is the whole cohort, group
    ``b + 1`` the parameter bin ``b``; every tally is an ``np.bincount`` over group indices,
    which adds in the order of its input."""

    def __init__(self, n_groups: int, exact: bool) -> None:
        self.n_groups, self.exact = n_groups, exact
        n_metrics = len(METRICS)
        self.count = np.zeros(n_groups, np.int64)
        self.total = np.zeros((n_groups, n_metrics))
        self.total_sq = np.zeros((n_groups, n_metrics))
        self.pending = np.zeros((0, n_metrics))
        self.pending_bin = np.zeros(0, np.int64)
        self.values: list[tuple[np.ndarray, np.ndarray]] = []
        self.integer_counts = {m: np.zeros((n_groups, 1), np.int64) for m in INTEGER_METRICS}
        self.sketch = {m: _LogHistogram(n_groups) for m in CONTINUOUS_METRICS}

    def add(self, values: np.ndarray, bin_index: np.ndarray | None) -> None:
        """Fold in one chunk: ``values`` (patients, metrics) in patient order."""
        values = values.astype(np.float64)
        bins = np.full(len(values), -1, np.int64) if bin_index is None else bin_index
        for group in self._memberships(bins):
            self.count += np.bincount(group, minlength=self.n_groups)
            for m in INTEGER_METRICS:
                self._count_integers(m, group, values[:, METRICS.index(m)])
            if not self.exact:
                for m in CONTINUOUS_METRICS:
                    self.sketch[m].add(values[:, METRICS.index(m)], group)
        if self.exact:
            self.values.append((values.astype(np.float32), bins))
        self.pending = np.concatenate([self.pending, values])
        self.pending_bin = np.concatenate([self.pending_bin, bins])
        full = len(self.pending) // BLOCK * BLOCK
        self._sum_blocks(self.pending[:full], self.pending_bin[:full], BLOCK)
        self.pending, self.pending_bin = self.pending[full:], self.pending_bin[full:]

    def summaries(
        self, labels: Sequence[str], quantiles: tuple[float, ...]
    ) -> tuple[GroupSummary, ...]:
        if len(self.pending):
            self._sum_blocks(self.pending, self.pending_bin, len(self.pending))
            self.pending = self.pending[:0]
        if self.exact and self.values:
            values = np.concatenate([v for v, _ in self.values])
            bins = np.concatenate([b for _, b in self.values])
        out = []
        for g, label in enumerate(labels):
            n = int(self.count[g])
            mean = self.total[g] / max(n, 1)
            var = np.maximum(self.total_sq[g] / max(n, 1) - mean**2, 0.0)
            table: dict[str, dict[float, float]] = {}
            for m in QUANTILE_METRICS:
                if n == 0:
                    table[m] = {q: math.nan for q in quantiles}
                elif m in INTEGER_METRICS:
                    cumulative = np.cumsum(self.integer_counts[m][g])
                    table[m] = {
                        q: float(np.searchsorted(cumulative, _rank(q, n))) for q in quantiles
                    }
                elif self.exact:
                    chosen = (
                        values[:, METRICS.index(m)]
                        if g == 0
                        else values[bins == g - 1, METRICS.index(m)]
                    )
                    ordered = np.sort(chosen)
                    table[m] = {q: float(ordered[_rank(q, n) - 1]) for q in quantiles}
                else:
                    table[m] = {q: self.sketch[m].quantile(q, g) for q in quantiles}
            out.append(
                GroupSummary(
                    label=label,
                    patients=n,
                    mean={
                        k: float(v) if n else math.nan for k, v in zip(METRICS, mean, strict=True)
                    },
                    sd={
                        k: float(math.sqrt(v)) if n else math.nan
                        for k, v in zip(METRICS, var, strict=True)
                    },
                    quantiles=table,
                )
            )
        return tuple(out)

    def _memberships(self, bins: np.ndarray) -> list[np.ndarray]:
        """Group indices of each patient: everyone is in group 0, and in a bin's group."""
        everyone = np.zeros(len(bins), np.int64)
        return [everyone] if self.n_groups == 1 else [everyone, bins + 1]

    def _count_integers(self, m: str, group: np.ndarray, x: np.ndarray) -> None:
        value = np.rint(x).astype(np.int64)
        books = self.integer_counts[m]
        width = max(books.shape[1], int(value.max(initial=0)) + 1)
        if width > books.shape[1]:
            books = np.pad(books, ((0, 0), (0, width - books.shape[1])))
        books += np.bincount(group * width + value, minlength=books.size).reshape(books.shape)
        self.integer_counts[m] = books

    def _sum_blocks(self, values: np.ndarray, bins: np.ndarray, size: int) -> None:
        """Add the sums of consecutive blocks of ``size`` patients, one block after another.
        Each block's sum adds its patients in order, so it does not depend on the chunking."""
        if not len(values):
            return
        n_blocks = len(values) // size
        block = np.arange(len(values)) // size
        sums = np.zeros((n_blocks, self.n_groups, values.shape[1]))
        squares = np.zeros_like(sums)
        for group in self._memberships(bins):
            cell = block * self.n_groups + group
            for j in range(values.shape[1]):
                x = values[:, j]
                sums[:, :, j] += np.bincount(cell, x, sums[:, :, j].size).reshape(n_blocks, -1)
                squares[:, :, j] += np.bincount(cell, x * x, sums[:, :, j].size).reshape(
                    n_blocks, -1
                )
        for block_sum, block_sq in zip(sums, squares, strict=True):
            self.total += block_sum
            self.total_sq += block_sq
