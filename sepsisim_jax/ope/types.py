"""The types every off-policy estimator shares: logged data prepared once, importance
weights and their diagnostics, a model's Q values, and a result."""

from __future__ import annotations

from typing import Any

import numpy as np
from flax import struct

from sepsisim_jax.ope.common import scaled, unscale


@struct.dataclass
class Diagnostics:
    """How usable a dataset's trajectory weights ``w_i`` are for the evaluation policy."""

    ess: float  # effective sample size (sum w)^2 / sum w^2 (Kong 1992); n for equal weights
    max_weight: float  # largest w_i (inf where it overflows float64)
    mean_weight: float  # mean w_i: 1 in expectation, far from 1 when the weights degenerate
    nonzero_fraction: float  # fraction of episodes with w_i > 0

    @classmethod
    def none(cls) -> Diagnostics:
        """For estimators without weights (FQE): every field NaN."""
        return cls(np.nan, np.nan, np.nan, np.nan)


@struct.dataclass
class Weights:
    """Log importance weights of ``n`` episodes, ``T`` = the longest episode's steps."""

    log_ratio: np.ndarray  # (n, T) float32: log rho_t, 0 after the episode's end
    log_weight: np.ndarray  # (n, T) float64: log w_t, cumulative, held after the end
    mask: np.ndarray  # (n, T) bool: step t belongs to episode i

    @property
    def log_trajectory_weight(self) -> np.ndarray:
        """``(n,)`` log of each episode's trajectory weight."""
        return self.log_weight[:, -1]

    def diagnostics(self) -> Diagnostics:
        """:class:`Diagnostics` of the trajectory weights (float64)."""
        log_w = self.log_trajectory_weight
        w, shift = scaled(log_w)
        total, squares = float(np.sum(w)), float(np.sum(w**2))
        with np.errstate(over="ignore"):
            max_weight = float(np.exp(np.max(log_w)))
            mean_weight = unscale(total / w.shape[0], shift)
        return Diagnostics(
            ess=total**2 / squares if squares > 0 else 0.0,
            max_weight=max_weight,
            mean_weight=float(mean_weight),
            nonzero_fraction=float(np.mean(log_w > -np.inf)),
        )


@struct.dataclass
class OPEResult:
    """One estimator's estimate of the evaluation policy's expected discounted return."""

    estimator: str
    estimate: float  # NaN where undefined (every weight 0)
    se: float  # standard error; NaN where none is defined
    se_method: str  # "analytic", "bootstrap" or "none"
    diagnostics: Diagnostics  # of the trajectory weights (NaN for FQE)
    n_episodes: int
    gamma: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "estimate": self.estimate,
            "se": self.se,
            "se_method": self.se_method,
            **{k: getattr(self.diagnostics, k) for k in Diagnostics.__dataclass_fields__},
            "n_episodes": self.n_episodes,
            "gamma": self.gamma,
        }


@struct.dataclass
class QValues:
    """A model of the evaluation policy's values at the logged steps, in reward units:
    ``q[i, t] = Q(s_it, a_it, t)`` and ``v[i, t] = E_{a ~ pi_e} Q(s_it, a, t)``, both 0 after
    the episode's end (e.g. :func:`sepsisim_jax.ope.fqe.fit_fqe`'s ``values``)."""

    q: np.ndarray  # (n, T) float64
    v: np.ndarray  # (n, T) float64


@struct.dataclass
class LoggedData:
    """Host arrays every estimator reads, cut to the longest episode (float64):
    :func:`sepsisim_jax.ope.estimators.prepare`'s output."""

    weights: Weights
    rewards: np.ndarray  # (n, T): gamma^t r_it, 0 after the end
    discount: np.ndarray  # (T,)
    gamma: float

    @property
    def n(self) -> int:
        return int(self.rewards.shape[0])
