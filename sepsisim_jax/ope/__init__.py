"""Off-policy evaluation: an evaluation policy's value from episodes logged by another policy.

Layer 3. Every estimator takes logged :class:`~sepsisim_jax.offline.episodes.Episodes` (or a
Minari dataset),
the evaluation policy as a :class:`~sepsisim_jax.stochastic.StochasticPolicy` (its density
gives the importance weights), the env params and ``gamma``, and returns an
:class:`OPEResult`: the estimate of the expected discounted return, a standard error where
one is defined, and diagnostics of the importance weights. Estimators: trajectory-wise IS,
weighted IS, per-decision IS and weighted IS, per-decision doubly robust and its weighted
variant (:mod:`~sepsisim_jax.ope.estimators`), and fitted Q evaluation
(:mod:`~sepsisim_jax.ope.fqe`), registered by name in :data:`ESTIMATORS`; their shared types
are in :mod:`~sepsisim_jax.ope.types`. :func:`evaluate_all` runs them all, sharing the
weights and one FQE fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from sepsisim_jax.offline.episodes import Episodes
from sepsisim_jax.ope.estimators import (
    ESTIMATORS,
    Estimator,
    doubly_robust,
    importance_sampling,
    per_decision_importance_sampling,
    per_decision_weighted_importance_sampling,
    prepare,
    weighted_doubly_robust,
    weighted_importance_sampling,
)
from sepsisim_jax.ope.fqe import FQEConfig, FQEFit, fit_fqe, fitted_q_evaluation, fqe_result
from sepsisim_jax.ope.types import Diagnostics, LoggedData, OPEResult, QValues, Weights
from sepsisim_jax.ope.weights import importance_weights
from sepsisim_jax.stochastic import StochasticPolicy
from sepsisim_jax.text_table import Column, text_table


def evaluate_all(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    key: jax.Array | None = None,
    *,
    behaviour: StochasticPolicy | None = None,
    fqe_config: FQEConfig = FQEConfig(),  # noqa: B008  (frozen)
    n_bootstrap: int = 200,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, OPEResult]:
    """Every estimator of :data:`ESTIMATORS` on the same episodes, by name: the weights are
    computed once, FQE is fitted once with ``key`` and its Q serves DR and WDR."""
    if key is None:
        raise ValueError("evaluate_all needs a key (for the FQE fit)")
    data = prepare(episodes, policy, params, gamma, behaviour)
    fit = fit_fqe(episodes, policy, params, gamma, key, fqe_config, progress=progress)
    return {
        name: estimator.estimate(data, fit, n_bootstrap, seed)
        for name, estimator in ESTIMATORS.items()
    }


def results_table(results: Mapping[str, OPEResult], truth: float | None = None) -> str:
    """A text table of :func:`evaluate_all`'s results, with the error against ``truth``."""
    rows = [r.to_dict() for r in results.values()]
    columns: list[Column] = [
        ("estimator", "<9", lambda r: r["estimator"]),
        ("estimate", ">10", lambda r: f"{r['estimate']:.2f}"),
        ("se", ">8", lambda r: f"{r['se']:.2f}"),
        ("se by", "<9", lambda r: r["se_method"]),
    ]
    if truth is not None:
        columns.append(("error", ">9", lambda r: f"{r['estimate'] - truth:+.2f}"))
    columns += [
        ("ESS", ">9", lambda r: f"{r['ess']:.1f}"),
        ("max w", ">9", lambda r: f"{r['max_weight']:.3g}"),
        ("w > 0", ">6", lambda r: f"{r['nonzero_fraction']:.2f}"),
    ]
    return text_table(rows, columns)


__all__ = [
    "ESTIMATORS",
    "Diagnostics",
    "Estimator",
    "FQEConfig",
    "FQEFit",
    "LoggedData",
    "OPEResult",
    "QValues",
    "Weights",
    "doubly_robust",
    "evaluate_all",
    "fit_fqe",
    "fitted_q_evaluation",
    "fqe_result",
    "importance_sampling",
    "importance_weights",
    "per_decision_importance_sampling",
    "per_decision_weighted_importance_sampling",
    "prepare",
    "results_table",
    "weighted_doubly_robust",
    "weighted_importance_sampling",
]
