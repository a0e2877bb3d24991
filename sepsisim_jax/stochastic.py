"""Policies with a known density, for logged datasets and off-policy evaluation.

A :class:`StochasticPolicy` is a policy ``policy(key, obs, params) -> action`` like the
baselines, plus ``log_prob(obs, action, params) -> (log_p, atom)``: the log density of
``action`` in ``obs``. Three families, each around a deterministic ``base`` policy (the
heuristic, a PPO policy, any ``policy(key, obs, params)``), with ``low``/``high`` the action
bounds and ``|B| = prod(high - low)`` the volume of the action box:

- **uniform**: ``a ~ U[low, high]``; density ``1 / |B|``.
- **epsilon**: with probability ``epsilon`` a uniform action, else ``base(obs)``. The law has
  a point mass ``1 - epsilon`` at ``base(obs)`` plus the density ``epsilon / |B|`` elsewhere;
  ``epsilon = 0`` is the deterministic ``base``.
- **gaussian**: each component independently from a normal distribution with mean
  ``base(obs)`` and sd ``scale * (high - low)``, truncated to ``[low, high]``; density
  ``prod_i phi(z_i) / (sd_i (Phi(beta_i) - Phi(alpha_i)))`` with ``z = (a - mean) / sd`` and
  ``alpha, beta`` the standardised bounds.

Point masses and densities are measured differently, so ``log_prob`` says which it returns:
``atom`` is true where ``action`` is ``base(obs)`` (within :data:`ATOM_TOLERANCE` of the
action range, for a base recomputed in another batch) and the policy has a point mass there;
``log_p`` is then the log of that mass, else the log of the density.
:func:`log_likelihood_ratio` turns two such pairs into the log of the Radon-Nikodym
derivative that importance sampling needs (:func:`likelihood_ratio` the derivative itself).
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.special import ndtr
from jax.scipy.stats import norm

from sepsisim_jax import _checks
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy, as_pytree

Kind = Literal["uniform", "epsilon", "gaussian"]
ATOM_TOLERANCE = 1e-6  # |action - base(obs)| <= this x (high - low) in every component


# eq=False: hashed by identity, so that it can be a static argument of the jitted rollouts.
@struct.dataclass(eq=False)
class StochasticPolicy:
    """A policy with a density (module docstring); build it with :func:`uniform`,
    :func:`epsilon_greedy`, :func:`gaussian` or :func:`deterministic`."""

    base: Any  # deterministic policy(key, obs, params) as a pytree (unused by "uniform")
    low: jax.Array
    high: jax.Array
    epsilon: jax.Array  # "epsilon": probability of a uniform action
    scale: jax.Array  # "gaussian": sd per component as a fraction of (high - low)
    kind: Kind = struct.field(pytree_node=False)
    name: str = struct.field(pytree_node=False)

    @property
    def has_atoms(self) -> bool:
        """Whether the law has point masses (an epsilon policy with ``epsilon < 1``)."""
        return self.kind == "epsilon" and bool(self.epsilon < 1.0)

    def __call__(self, key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        """One action for one observation (``vmap`` for a batch)."""
        key_choice, key_draw = jax.random.split(key)
        width = self.high - self.low
        uniform_action = self.low + width * jax.random.uniform(key_draw, self.low.shape)
        if self.kind == "uniform":
            return uniform_action
        mean = self._mean(obs, params)
        if self.kind == "epsilon":
            explore = jax.random.bernoulli(key_choice, self.epsilon)
            return jnp.where(explore, uniform_action, mean)
        sd = self.scale * width
        z = jax.random.truncated_normal(
            key_draw, (self.low - mean) / sd, (self.high - mean) / sd, self.low.shape
        )
        return jnp.clip(mean + sd * z, self.low, self.high)

    def log_prob(
        self, obs: jax.Array, action: jax.Array, params: Any
    ) -> tuple[jax.Array, jax.Array]:
        """``(log_p, atom)`` of ``action`` taken in ``obs`` (module docstring)."""
        action = jnp.asarray(action, self.low.dtype)
        width = self.high - self.low
        inside = jnp.all((action >= self.low) & (action <= self.high))
        log_uniform = jnp.where(inside, -jnp.sum(jnp.log(width)), -jnp.inf)
        if self.kind == "uniform":
            return log_uniform, jnp.asarray(False)
        mean = self._mean(obs, params)
        if self.kind == "epsilon":
            atom = jnp.all(jnp.abs(action - mean) <= ATOM_TOLERANCE * width) & (self.epsilon < 1)
            log_p = jnp.where(atom, jnp.log1p(-self.epsilon), jnp.log(self.epsilon) + log_uniform)
            return log_p, atom
        sd = self.scale * width
        mass = ndtr((self.high - mean) / sd) - ndtr((self.low - mean) / sd)
        log_density = norm.logpdf(action, mean, sd) - jnp.log(mass)
        return jnp.where(inside, jnp.sum(log_density), -jnp.inf), jnp.asarray(False)

    def _mean(self, obs: jax.Array, params: Any) -> jax.Array:
        base = self.base(jax.random.key(0), obs, params)  # deterministic: the key is unused
        return jnp.clip(jnp.asarray(base, self.low.dtype), self.low, self.high)


def log_likelihood_ratio(
    target: tuple[jax.Array, jax.Array], behaviour: tuple[jax.Array, jax.Array]
) -> jax.Array:
    """``log pi_target(a | s) - log pi_behaviour(a | s)`` from two ``(log_p, atom)`` pairs.

    Equal kinds (both masses, both densities) give the difference of the values; a density
    over a point mass of the behaviour is ``-inf`` (the target puts no mass there). A target
    mass where the behaviour has only a density is ``+inf``: :func:`check_support` rejects
    such pairs first.
    """
    (log_target, atom_target), (log_behaviour, atom_behaviour) = target, behaviour
    same = atom_target == atom_behaviour
    mismatch = jnp.where(atom_behaviour, -jnp.inf, jnp.inf)
    return jnp.where(same, log_target - jnp.where(same, log_behaviour, 0.0), mismatch)


def likelihood_ratio(
    target: tuple[jax.Array, jax.Array], behaviour: tuple[jax.Array, jax.Array]
) -> jax.Array:
    """``pi_target(a | s) / pi_behaviour(a | s)``: the exponential of
    :func:`log_likelihood_ratio` (0 and ``inf`` where the kinds differ)."""
    return jnp.exp(log_likelihood_ratio(target, behaviour))


def check_support(target: StochasticPolicy, behaviour: StochasticPolicy) -> None:
    """``ValueError`` where ``target``'s law cannot be absolutely continuous w.r.t.
    ``behaviour``'s: a target with point masses needs a behaviour with point masses. Whether
    the masses sit at the same actions depends on the data; ``ope.importance_weights`` checks
    that on the logged actions."""
    if target.has_atoms and not behaviour.has_atoms:
        raise ValueError(
            f"the target policy {target.name!r} puts point masses on actions that the behaviour "
            f"policy {behaviour.name!r} takes with probability 0, so importance weights are "
            "undefined; evaluate a Gaussian or epsilon policy, or log data from an epsilon policy"
        )


def _bounds(env: SepsisEnv) -> tuple[jax.Array, jax.Array]:
    return jnp.asarray(env.action_low, jnp.float32), jnp.asarray(env.action_high, jnp.float32)


def _build(
    env: SepsisEnv, kind: Kind, name: str, base: Policy | None, epsilon: float, scale: Any
) -> StochasticPolicy:
    _checks.instance("env", env, SepsisEnv, "a SepsisEnv (from sepsisim_jax.make)")
    if kind != "uniform":
        _checks.policy("base", base)
    low, high = _bounds(env)
    scale = jnp.broadcast_to(jnp.asarray(scale, jnp.float32), low.shape)
    return StochasticPolicy(
        base=None if base is None else as_pytree(base),
        low=low,
        high=high,
        epsilon=jnp.asarray(epsilon, jnp.float32),
        scale=scale,
        kind=kind,
        name=name,
    )


def uniform(env: SepsisEnv) -> StochasticPolicy:
    """Uniform random actions on ``env``'s action box (the same law as ``random_policy``)."""
    return _build(env, "uniform", "random", None, 1.0, 1.0)


def epsilon_greedy(
    env: SepsisEnv, base: Policy, epsilon: float, name: str = "policy"
) -> StochasticPolicy:
    """``base`` with probability ``1 - epsilon``, else a uniform action (``0 <= epsilon <= 1``)."""
    _checks.number_in("epsilon", epsilon, 0.0, 1.0)
    label = name if epsilon == 0 else f"{name}, epsilon {epsilon:g}"
    return _build(env, "epsilon", label, base, epsilon, 1.0)


def deterministic(env: SepsisEnv, base: Policy, name: str = "policy") -> StochasticPolicy:
    """``base`` itself, with its density: a point mass at ``base(obs)``."""
    return epsilon_greedy(env, base, 0.0, name)


def gaussian(
    env: SepsisEnv, base: Policy, scale: float | Any, name: str = "policy"
) -> StochasticPolicy:
    """``base`` plus truncated-normal noise of sd ``scale x (high - low)`` per component
    (``scale`` a positive number or one per action component)."""
    values = np.asarray(scale, np.float64)
    if values.ndim > 1 or values.size not in (1, env.num_actions) or not np.all(values > 0):
        raise ValueError(
            f"scale must be a positive number or {env.num_actions} positive numbers, got {scale!r}"
        )
    label = f"{name}, gaussian {', '.join(f'{v:g}' for v in np.atleast_1d(values))}"
    return _build(env, "gaussian", label, base, 0.0, values)
