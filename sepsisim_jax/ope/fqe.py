"""Fitted Q evaluation (Le, Voloshin & Yue 2019, ICML, "Batch policy learning under
constraints", algorithm FQE): a time-dependent ``Q(s, a, t)`` of the evaluation policy fitted
to the logged steps by repeated regression on

    ``y_it = r_it + gamma * c_it * E_{a' ~ pi_e(s_i,t+1)} Q_{k-1}(s_i,t+1, a', t + 1)``,

``c_it = 0`` where step ``t`` ends the episode (death, or the step limit: the horizon is
finite, so the time is an input and nothing follows the last step). ``Q_k`` is a small MLP
(flax), warm-started from ``Q_{k-1}`` and trained by Adam (optax) on minibatches for
``steps_per_iteration`` steps, the step size decaying within each iteration; each iteration
is one jitted call. ``K`` iterations carry the rewards ``K`` steps back: the default ``K`` is
twice the longest episode, the second half refining what the first carried back (with
``K = T`` the estimate was visibly noisier). The expectation over ``a'`` averages
``action_samples`` actions drawn once from the evaluation policy at every logged state (one
for a deterministic policy, which is then exact). Inputs are standardised with the logged
states' and actions' means and sds, the time enters as ``t / T``, and the rewards are divided
by the root mean square of the discounted returns.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from tqdm import tqdm

from sepsisim_jax import _checks
from sepsisim_jax.offline.episodes import Episodes
from sepsisim_jax.ope.common import as_episodes, check_inputs, discounts, horizon, map_rows
from sepsisim_jax.ope.types import Diagnostics, OPEResult, QValues
from sepsisim_jax.stochastic import StochasticPolicy

EVAL_BATCH = 4096  # rows per vmapped batch when evaluating Q on every logged step
MIN_SD = 1e-6  # features whose sd is below this are centred but not scaled
FINAL_LR = 0.05  # fraction of the learning rate at the end of each iteration


@dataclasses.dataclass(frozen=True)
class FQEConfig:
    """FQE's network and optimisation (static: each distinct config compiles once)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    iterations: int | None = None  # None: twice the longest episode's number of steps
    steps_per_iteration: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    action_samples: int = 4  # draws of a' ~ pi_e per state (1 for a deterministic policy)

    def __post_init__(self) -> None:
        sizes = self.hidden_sizes
        if (
            not isinstance(sizes, tuple)
            or not sizes
            or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes)
        ):
            raise ValueError(f"hidden_sizes must be a tuple of positive ints, got {sizes!r}")
        _checks.positive_int("iterations", self.iterations, optional=True)
        for name in ("steps_per_iteration", "batch_size", "action_samples"):
            _checks.positive_int(name, getattr(self, name))
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")


class QNetwork(nn.Module):
    """``Q(features) -> value``: a swish MLP on standardised ``[state, action, t / T]``."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.swish(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


@struct.dataclass
class FQEFit:
    """A fitted Q of the evaluation policy and its values at the logged steps."""

    values: QValues  # Q and V at every logged step, in reward units
    losses: np.ndarray  # (iterations,) mean squared TD error of each iteration (scaled)
    reward_scale: float  # rewards were divided by this for the regression
    net_params: Any

    @property
    def initial_values(self) -> np.ndarray:
        """``V(s_i0, 0)`` of each episode's first state."""
        return self.values.v[:, 0]

    @property
    def estimate(self) -> float:
        """The FQE estimate of the policy's value: the mean of :attr:`initial_values`."""
        return float(np.mean(self.initial_values))


@struct.dataclass
class _Tables:
    """Every logged state ``s_it``, ``t = 0 .. T``, as one row ``i * (T + 1) + t``."""

    obs: jax.Array  # (R, obs_dim)
    action: jax.Array  # (R, n_actions): the logged action (0 at t = T)
    samples: jax.Array  # (R, m, n_actions): actions of the evaluation policy
    time: jax.Array  # (R,) t / T
    reward: jax.Array  # (R,) scaled reward (0 at t = T and after the end)
    cont: jax.Array  # (R,) 1.0 where another step of the episode follows
    low: jax.Array  # (R,) bounds of any return from this state on (scaled): the targets' clip
    high: jax.Array
    mean: jax.Array  # (obs_dim + n_actions,) standardisation of [state, action]
    sd: jax.Array


def _features(tables: _Tables, obs: jax.Array, action: jax.Array, time: jax.Array) -> jax.Array:
    x = jnp.concatenate([obs, action], axis=-1)
    lead = (1,) * (x.ndim - 1)
    x = (x - tables.mean.reshape(lead + tables.mean.shape)) / tables.sd.reshape(
        lead + tables.sd.shape
    )
    return jnp.concatenate([x, time[..., None]], axis=-1)


def _q(config: FQEConfig, params: Any, tables: _Tables, rows: jax.Array, action: Any = None):
    """``Q`` at ``rows`` with the logged actions, or with ``action`` (``(rows, n_actions)``)."""
    action = tables.action[rows] if action is None else action
    x = _features(tables, tables.obs[rows], action, tables.time[rows])
    return QNetwork(config.hidden_sizes).apply(params, x)


def _v(config: FQEConfig, params: Any, tables: _Tables, rows: jax.Array) -> jax.Array:
    """``E_{a ~ pi_e} Q`` at ``rows``: the mean over the sampled actions."""
    samples = jnp.swapaxes(tables.samples[rows], 0, 1)  # (m, rows, n_actions)
    return jnp.mean(jax.vmap(lambda a: _q(config, params, tables, rows, a))(samples), axis=0)


@partial(jax.jit, static_argnames=("config",))
def _iteration(
    params: Any,
    opt_state: Any,
    tables: _Tables,
    valid: jax.Array,
    n_valid: jax.Array,
    gamma: jax.Array,
    key: jax.Array,
    config: FQEConfig,
) -> tuple[Any, Any, jax.Array]:
    """One FQE iteration: regress on targets from the parameters at entry (frozen)."""
    optimiser = optax.adam(config.learning_rate)
    frozen = params

    def step(carry, inputs):
        params, opt_state = carry
        step_key, decay = inputs
        rows = valid[jax.random.randint(step_key, (config.batch_size,), 0, n_valid)]
        following = _v(config, frozen, tables, rows + 1)
        target = tables.reward[rows] + gamma * tables.cont[rows] * following
        # No return from step t on can leave [min(r, 0), max(r, 0)] x sum_{k < T - t} gamma^k
        # (r over the logged rewards): clipping keeps an extrapolating Q from feeding on itself.
        target = jnp.clip(target, tables.low[rows], tables.high[rows])

        def loss(p):
            return jnp.mean((_q(config, p, tables, rows) - target) ** 2)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        updates = jax.tree.map(lambda u: decay * u, updates)
        return (optax.apply_updates(params, updates), opt_state), value

    keys = jax.random.split(key, config.steps_per_iteration)
    # Each regression's step size decays (cosine) to FINAL_LR of its start, so that the
    # iteration ends near its minimiser rather than wherever the last minibatch left it.
    phase = jnp.arange(config.steps_per_iteration) / config.steps_per_iteration
    decay = FINAL_LR + (1.0 - FINAL_LR) * 0.5 * (1.0 + jnp.cos(jnp.pi * phase))
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (keys, decay))
    return params, opt_state, jnp.mean(losses)


@partial(jax.jit, static_argnames=("width", "config"))
def _initial(key: jax.Array, width: int, config: FQEConfig) -> tuple[Any, Any]:
    """Network parameters for ``width`` input features and Adam's state."""
    net_params = QNetwork(config.hidden_sizes).init(key, jnp.zeros((1, width)))
    return net_params, optax.adam(config.learning_rate).init(net_params)


@partial(jax.jit, static_argnames=("config",))
def _evaluate(params: Any, tables: _Tables, config: FQEConfig) -> tuple[jax.Array, jax.Array]:
    """``Q`` at the logged action and ``V`` of every row."""
    rows = jnp.arange(tables.time.shape[0])

    def one(row):
        row = row[None]
        return _q(config, params, tables, row)[0], _v(config, params, tables, row)[0]

    return jax.lax.map(one, rows, batch_size=EVAL_BATCH)


@partial(jax.jit, static_argnames=("m",))
def _sample_rows(
    start: jax.Array,
    obs: jax.Array,
    *,
    policy: StochasticPolicy,
    params: Any,
    key: jax.Array,
    m: int,
) -> jax.Array:
    """``m`` actions of ``policy`` in each row's state; row ``start + j`` draws with
    ``split(fold_in(key, start + j), m)`` whatever the chunking."""
    rows = start + jnp.arange(obs.shape[0])
    keys = jax.vmap(lambda r: jax.random.split(jax.random.fold_in(key, r), m))(rows)
    draw = jax.vmap(jax.vmap(policy, in_axes=(0, None, None)), in_axes=(0, 0, None))
    return draw(keys, obs, params)


def _bucket(n: int) -> int:
    """``n`` rounded up to a power of two (at least 1024): few distinct shapes to compile."""
    return max(1024, 1 << (n - 1).bit_length())


def _pad(x: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((rows - x.shape[0], *x.shape[1:]), x.dtype)])


def _standardisation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, sd = values.mean(axis=0), values.std(axis=0)
    return mean, np.where(sd > MIN_SD, sd, 1.0)


def _tables(
    episodes: Episodes, policy: StochasticPolicy, params: Any, gamma: float, key: jax.Array, m: int
) -> tuple[_Tables, np.ndarray, float]:
    """The row tables (padded), the valid rows (steps that were taken) and the reward scale."""
    n, n_steps = episodes.n_episodes, horizon(episodes)
    stride = n_steps + 1
    mask = episodes.mask[:, :n_steps]
    obs = np.asarray(episodes.observations[:, :stride], np.float32)
    actions = np.asarray(episodes.actions[:, :n_steps], np.float32)
    rewards = np.where(mask, np.asarray(episodes.rewards[:, :n_steps], np.float64), 0.0)
    returns = (rewards * discounts(gamma, n_steps)).sum(axis=1)
    scale = float(np.sqrt(np.mean(returns**2))) or 1.0
    mean, sd = _standardisation(np.concatenate([obs[:, :n_steps][mask], actions[mask]], axis=1))
    cont = np.arange(n_steps)[None, :] + 1 < episodes.lengths[:, None]
    column = np.zeros((n, 1))
    samples = map_rows(
        partial(_sample_rows, policy=policy, params=params, key=key, m=m),
        (obs.reshape(n * stride, -1),),
    )
    size = _bucket(n * stride)
    remaining = np.cumsum(discounts(gamma, n_steps)[::-1])[::-1]  # sum_{k < T - t} gamma^k
    remaining = np.tile(np.concatenate([remaining, [0.0]]), n) / scale
    flat = {
        "obs": obs.reshape(n * stride, -1),
        "action": np.concatenate([actions, np.zeros_like(actions[:, :1])], 1).reshape(
            n * stride, -1
        ),
        "samples": np.asarray(samples, np.float32),
        "time": np.tile(np.arange(stride, dtype=np.float32) / n_steps, n),
        "reward": (np.concatenate([rewards, column], 1) / scale).astype(np.float32).reshape(-1),
        "cont": np.concatenate([cont & mask, column.astype(bool)], 1)
        .astype(np.float32)
        .reshape(-1),
        "low": (min(rewards[mask].min(initial=0.0), 0.0) * remaining).astype(np.float32),
        "high": (max(rewards[mask].max(initial=0.0), 0.0) * remaining).astype(np.float32),
    }
    tables = _Tables(
        **{k: jnp.asarray(_pad(v, size)) for k, v in flat.items()},
        mean=jnp.asarray(mean, jnp.float32),
        sd=jnp.asarray(sd, jnp.float32),
    )
    valid = np.flatnonzero(np.concatenate([mask, column.astype(bool)], 1).reshape(-1))
    return tables, valid.astype(np.int32), scale


def fit_fqe(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    key: jax.Array | None = None,
    config: FQEConfig = FQEConfig(),
    *,
    progress: bool = False,
) -> FQEFit:
    """Fit ``Q(s, a, t)`` of the evaluation ``policy`` on ``episodes`` (module docstring).

    ``key`` seeds the network, the sampled actions and the minibatches; the result is the
    same for the same key. A progress bar counts iterations with ``progress``.
    """
    episodes = as_episodes(episodes)
    check_inputs(episodes, policy, gamma)
    if key is None:
        raise ValueError("fit_fqe needs a key (network initialisation and minibatches)")
    if not isinstance(config, FQEConfig):
        raise TypeError(f"config must be an FQEConfig, got {type(config).__name__}")
    deterministic = policy.kind == "epsilon" and float(policy.epsilon) == 0.0
    m = 1 if deterministic else config.action_samples
    key_init, key_samples, key_train = jax.random.split(key, 3)
    tables, valid, scale = _tables(episodes, policy, params, gamma, key_samples, m)
    n_valid = valid.shape[0]
    valid_rows = jnp.asarray(_pad(valid, _bucket(n_valid)))
    width = tables.obs.shape[1] + tables.action.shape[1] + 1
    net_params, opt_state = _initial(key_init, width=width, config=config)
    iterations = config.iterations or 2 * horizon(episodes)
    gamma_array = jnp.asarray(gamma, jnp.float32)
    losses = []
    for k in tqdm(
        range(iterations), desc="FQE", unit="iteration", disable=not progress, file=sys.stderr
    ):
        net_params, opt_state, loss = _iteration(
            net_params,
            opt_state,
            tables,
            valid_rows,
            jnp.asarray(n_valid, jnp.int32),
            gamma_array,
            jax.random.fold_in(key_train, k),
            config=config,
        )
        losses.append(loss)
    q, v = (np.asarray(x, np.float64) for x in _evaluate(net_params, tables, config))
    n, stride = episodes.n_episodes, horizon(episodes) + 1
    mask = episodes.mask[:, : stride - 1]
    q, v = (np.where(mask, x[: n * stride].reshape(n, stride)[:, :-1] * scale, 0.0) for x in (q, v))
    return FQEFit(
        values=QValues(q=q, v=v),
        losses=np.asarray(jnp.stack(losses), np.float64),
        reward_scale=scale,
        net_params=net_params,
    )


def fitted_q_evaluation(
    episodes: Episodes | Any,
    policy: StochasticPolicy,
    params: Any,
    gamma: float = 0.99,
    key: jax.Array | None = None,
    config: FQEConfig = FQEConfig(),
    *,
    progress: bool = False,
) -> OPEResult:
    """The FQE estimate ``(1/n) sum_i V(s_i0, 0)`` (:func:`fit_fqe`). No standard error: the
    model's error is not a sampling error of its inputs (``se`` is NaN, ``se_method`` "none")."""
    fit = fit_fqe(episodes, policy, params, gamma, key, config, progress=progress)
    return fqe_result(fit, gamma)


def fqe_result(fit: FQEFit, gamma: float) -> OPEResult:
    """:class:`OPEResult` of a fitted :class:`FQEFit`."""
    return OPEResult(
        estimator="FQE",
        estimate=fit.estimate,
        se=math.nan,
        se_method="none",
        diagnostics=Diagnostics.none(),
        n_episodes=int(fit.values.v.shape[0]),
        gamma=float(gamma),
    )
