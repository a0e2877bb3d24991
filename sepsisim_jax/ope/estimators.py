"""Importance-sampling and doubly robust estimates of an evaluation policy's value.

Notation: episode ``i`` of ``n`` has ``L_i`` steps, rewards ``r_it``, per-decision weights
``w_it`` and trajectory weight ``W_i = w_{i, L_i - 1}`` (:mod:`sepsisim_jax.ope.weights`);
``G_i = sum_t gamma^t r_it``. Ordinary estimators are means of independent per-episode terms:
their standard error is the terms' sd / sqrt(n). Self-normalised ones are ratios: their
standard error is the sd over ``n_bootstrap`` resamples of whole episodes (Efron 1979);
resamples in which every weight is 0 (the estimate is undefined) are left out of it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sepsisim_jax.offline.episodes import Episodes
from sepsisim_jax.ope.common import as_episodes, check_inputs, discounts, horizon, scaled, unscale
from sepsisim_jax.ope.fqe import FQEConfig, FQEFit, fit_fqe, fqe_result
from sepsisim_jax.ope.types import LoggedData, OPEResult, QValues
from sepsisim_jax.ope.weights import importance_weights
from sepsisim_jax.stochastic import StochasticPolicy


def prepare(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float,
    behaviour: StochasticPolicy | None = None,
) -> LoggedData:
    """What every estimator reads, computed once: the checked episodes' importance weights
    under ``policy`` and their discounted rewards."""
    episodes = as_episodes(episodes)
    check_inputs(episodes, policy, gamma, behaviour)
    weights = importance_weights(episodes, policy, params, behaviour=behaviour)
    discount = discounts(gamma, horizon(episodes))
    rewards = np.asarray(episodes.rewards[:, : discount.shape[0]], np.float64)
    rewards = np.where(weights.mask, rewards, 0.0) * discount
    return LoggedData(weights=weights, rewards=rewards, discount=discount, gamma=float(gamma))


def _result(name: str, estimate: float, se: float, method: str, data: LoggedData) -> OPEResult:
    return OPEResult(
        estimator=name,
        estimate=float(estimate),
        se=float(se),
        se_method=method,
        diagnostics=data.weights.diagnostics(),
        n_episodes=data.n,
        gamma=data.gamma,
    )


def _mean_and_se(terms: np.ndarray) -> tuple[float, float]:
    """Mean of independent per-episode terms and its standard error (sd / sqrt(n))."""
    with np.errstate(invalid="ignore", over="ignore"):
        se = (
            float(np.std(terms, ddof=1) / math.sqrt(terms.shape[0]))
            if terms.shape[0] > 1
            else np.nan
        )
        return float(np.mean(terms)), se


def _weighted_terms(log_w: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``exp(log_w) * values`` summed over steps: each column scaled by its largest weight
    and restored after the product (exactly 0 where the value or the weight is 0)."""
    w, shift = scaled(log_w)
    return np.sum(unscale(w * values, shift), axis=-1)


def _ratio_of_sums(counts: np.ndarray, w: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``sum_i c_i w_it v_it / sum_i c_i w_it`` for each row of ``counts`` and each column
    (NaN where every weight of the column is 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ (w * values)) / (counts @ w)


def _bootstrap(statistic: Any, n: int, n_bootstrap: int, seed: int) -> tuple[float, float]:
    """``statistic(counts)`` for counts ``(B, n)`` of episodes: the point estimate (each
    episode once) and the sd over ``n_bootstrap`` multinomial resamples of ``n`` episodes."""
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an int >= 2, got {n_bootstrap!r}")
    estimate = float(statistic(np.ones((1, n)))[0])
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(np.float64)
    draws = statistic(counts)
    finite = draws[np.isfinite(draws)]
    se = float(np.std(finite, ddof=1)) if finite.shape[0] > 1 else np.nan
    return estimate, se


# --- the estimators, on prepared data -----------------------------------------------------


def _is(data: LoggedData) -> OPEResult:
    terms = _weighted_terms(
        data.weights.log_trajectory_weight[:, None], data.rewards.sum(1, keepdims=True)
    )
    return _result("IS", *_mean_and_se(terms), "analytic", data)


def _pdis(data: LoggedData) -> OPEResult:
    terms = _weighted_terms(data.weights.log_weight, data.rewards)
    return _result("PDIS", *_mean_and_se(terms), "analytic", data)


def _wis(data: LoggedData, n_bootstrap: int, seed: int) -> OPEResult:
    w, _ = scaled(data.weights.log_trajectory_weight)
    returns = data.rewards.sum(1)

    def statistic(counts: np.ndarray) -> np.ndarray:
        return _ratio_of_sums(counts, w[:, None], returns[:, None])[:, 0]

    return _result("WIS", *_bootstrap(statistic, data.n, n_bootstrap, seed), "bootstrap", data)


def _pdwis(data: LoggedData, n_bootstrap: int, seed: int) -> OPEResult:
    w, _ = scaled(data.weights.log_weight)

    def statistic(counts: np.ndarray) -> np.ndarray:
        return np.sum(_ratio_of_sums(counts, w, data.rewards), axis=1)

    return _result("PDWIS", *_bootstrap(statistic, data.n, n_bootstrap, seed), "bootstrap", data)


def _previous(log_weight: np.ndarray) -> np.ndarray:
    """``log w_{t-1}`` with ``w_{-1} = 1``."""
    return np.concatenate([np.zeros_like(log_weight[:, :1]), log_weight[:, :-1]], axis=1)


def _model_terms(data: LoggedData, values: QValues) -> tuple[np.ndarray, np.ndarray]:
    """``gamma^t (r_t - Q_t)`` and ``gamma^t V_t`` at the logged steps (0 after the end)."""
    n_steps = data.rewards.shape[1]
    q, v = (np.asarray(x, np.float64) for x in (values.q, values.v))
    if q.shape != data.rewards.shape or v.shape != data.rewards.shape:
        raise ValueError(
            f"q_values.q and q_values.v must have shape {data.rewards.shape} (episodes x the "
            f"longest episode's {n_steps} steps), got {q.shape} and {v.shape}"
        )
    mask = data.weights.mask
    advantage = data.rewards - np.where(mask, q, 0.0) * data.discount
    return advantage, np.where(mask, v, 0.0) * data.discount


def _dr(data: LoggedData, values: QValues) -> OPEResult:
    advantage, baseline = _model_terms(data, values)
    log_w = data.weights.log_weight
    terms = _weighted_terms(log_w, advantage) + _weighted_terms(_previous(log_w), baseline)
    return _result("DR", *_mean_and_se(terms), "analytic", data)


def _wdr(data: LoggedData, values: QValues, n_bootstrap: int, seed: int) -> OPEResult:
    advantage, baseline = _model_terms(data, values)
    w, _ = scaled(data.weights.log_weight)
    w_previous, _ = scaled(_previous(data.weights.log_weight))

    def statistic(counts: np.ndarray) -> np.ndarray:
        return np.sum(
            _ratio_of_sums(counts, w, advantage) + _ratio_of_sums(counts, w_previous, baseline),
            axis=1,
        )

    return _result("WDR", *_bootstrap(statistic, data.n, n_bootstrap, seed), "bootstrap", data)


# --- public entry points -------------------------------------------------------------------


def importance_sampling(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    behaviour: StochasticPolicy | None = None,
) -> OPEResult:
    """Trajectory-wise (ordinary) importance sampling, ``(1/n) sum_i W_i G_i`` (Precup,
    Sutton & Singh 2000, ICML, "IS"): unbiased; standard error analytic.

    ``episodes`` are logged by the behaviour policy (or a Minari dataset); ``policy`` is
    the evaluation policy; ``behaviour``, if given, is checked for support first
    (:func:`~sepsisim_jax.ope.weights.importance_weights` checks the data either way).
    """
    return _is(prepare(episodes, policy, params, gamma, behaviour))


def weighted_importance_sampling(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    behaviour: StochasticPolicy | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> OPEResult:
    """Weighted (self-normalised) IS, ``sum_i W_i G_i / sum_i W_i`` (Precup et al. 2000,
    "WIS"; Mahmood, van Hasselt & Sutton 2014): biased, consistent, bounded by the returns;
    standard error by bootstrap over episodes (``seed``). Arguments as
    :func:`importance_sampling`."""
    return _wis(prepare(episodes, policy, params, gamma, behaviour), n_bootstrap, seed)


def per_decision_importance_sampling(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    behaviour: StochasticPolicy | None = None,
) -> OPEResult:
    """Per-decision IS, ``(1/n) sum_i sum_t gamma^t w_it r_it``: each reward weighted by the
    ratios of the steps before it only (Precup et al. 2000, "PDIS"); unbiased, analytic
    standard error. Arguments as :func:`importance_sampling`."""
    return _pdis(prepare(episodes, policy, params, gamma, behaviour))


def per_decision_weighted_importance_sampling(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    behaviour: StochasticPolicy | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> OPEResult:
    """Per-decision weighted IS, ``sum_t gamma^t sum_i w_it r_it / sum_j w_jt`` (the
    weighted per-decision estimator of Precup et al. 2000; "PDWIS", Thomas 2015, ch. 3),
    ended episodes keeping their weight in the normalisers; bootstrap standard error.
    Arguments as :func:`weighted_importance_sampling`."""
    data = prepare(episodes, policy, params, gamma, behaviour)
    return _pdwis(data, n_bootstrap, seed)


def doubly_robust(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    q_values: QValues | None = None,
    key: Any = None,
    fqe_config: Any = None,
    behaviour: StochasticPolicy | None = None,
) -> OPEResult:
    """Per-decision doubly robust estimate (Jiang & Li 2016, ICML, the recursive DR unrolled):

    ``(1/n) sum_i sum_t gamma^t [w_it (r_it - Q(s_it, a_it, t)) + w_i,t-1 V(s_it, t)]``,
    ``w_i,-1 = 1``: unbiased for any model ``Q``/``V`` fixed apart from these episodes, of
    lower variance the better the model. ``q_values`` is the model at the logged steps;
    without it FQE is fitted on the same episodes with ``key`` and ``fqe_config``
    (:func:`sepsisim_jax.ope.fqe.fit_fqe`; the model then depends on the data, so the
    estimate is only nearly unbiased). ``Q = V = 0`` gives per-decision IS. Analytic
    standard error (for the given model)."""
    data = prepare(episodes, policy, params, gamma, behaviour)
    return _dr(data, _values(episodes, policy, params, gamma, q_values, key, fqe_config))


def weighted_doubly_robust(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    *,
    q_values: QValues | None = None,
    key: Any = None,
    fqe_config: Any = None,
    behaviour: StochasticPolicy | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
) -> OPEResult:
    """Weighted doubly robust (Thomas & Brunskill 2016, ICML, "WDR"): :func:`doubly_robust`
    with ``w_it / n`` replaced by ``w_it / sum_j w_jt`` (and ``w_i,-1 = 1``); biased,
    consistent, usually far less variable. Bootstrap standard error (for the given model).
    Arguments as :func:`doubly_robust` and :func:`weighted_importance_sampling`."""
    data = prepare(episodes, policy, params, gamma, behaviour)
    values = _values(episodes, policy, params, gamma, q_values, key, fqe_config)
    return _wdr(data, values, n_bootstrap, seed)


def _values(
    episodes: Any, policy: Any, params: Any, gamma: float, q_values: Any, key: Any, config: Any
) -> QValues:
    if q_values is not None:
        if not isinstance(q_values, QValues):
            raise TypeError(f"q_values must be a QValues, got {type(q_values).__name__}")
        return q_values
    if key is None:
        raise ValueError("doubly robust estimates need q_values, or a key to fit FQE with")
    return fit_fqe(episodes, policy, params, gamma, key, config or FQEConfig()).values


@dataclasses.dataclass(frozen=True)
class Estimator:
    """An estimator of the registry: ``estimate(data, fit, n_bootstrap, seed)`` on data from
    :func:`prepare`, with the fitted model where ``needs_model`` (FQE's, shared by DR, WDR and
    FQE itself)."""

    estimate: Callable[[LoggedData, FQEFit | None, int, int], OPEResult]
    needs_model: bool = False


# Every estimator by name, in the order tables list them.
ESTIMATORS: dict[str, Estimator] = {
    "IS": Estimator(lambda data, fit, n_bootstrap, seed: _is(data)),
    "WIS": Estimator(lambda data, fit, n_bootstrap, seed: _wis(data, n_bootstrap, seed)),
    "PDIS": Estimator(lambda data, fit, n_bootstrap, seed: _pdis(data)),
    "PDWIS": Estimator(lambda data, fit, n_bootstrap, seed: _pdwis(data, n_bootstrap, seed)),
    "DR": Estimator(lambda data, fit, n_bootstrap, seed: _dr(data, fit.values), True),
    "WDR": Estimator(
        lambda data, fit, n_bootstrap, seed: _wdr(data, fit.values, n_bootstrap, seed), True
    ),
    "FQE": Estimator(lambda data, fit, n_bootstrap, seed: fqe_result(fit, data.gamma), True),
}
