"""Counterfactuals: the same patients under two policies, each patient's outcome under both.

:func:`paired_outcomes` runs the cohort of ``key`` once under policy A and once under policy
B with :func:`sepsisim_jax.cohort.rollout.rollout_episodes`. Its key scheme gives patient ``p`` the
same admission (with virtual patients, the same drawn parameters) and the same noise in every
hour whatever the policy, so only the actions differ, and each patient's treatment effect
``Y_p(B) - Y_p(A)`` (the potential outcomes of Rubin 1974, J Educ Psychol 66:688) is observed
rather than estimated. Effects are B minus A throughout.

:func:`antibiotic_at` schedules the antibiotic (the switch component named ``"antibiotic"``
of a task's declared actions, SepsisManagement's) from a given hour, with the clinical
heuristic's other components: the delay of Kumar et al. (2006, Crit Care Med 34:1589) asked
of the same patients.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sepsisim_jax import _checks
from sepsisim_jax.cohort.rollout import EpisodeStats, rollout_episodes
from sepsisim_jax.envs.actions import ANTIBIOTIC
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.policies import Policy, heuristic_policy
from sepsisim_jax.text_table import Column, text_table

STEP_SLACK = 1e-4  # of a step: float32 rounding of hour / dt


@struct.dataclass
class PairedOutcomes:
    """Per-patient outcomes of the same cohort under policy A (``a``) and policy B (``b``)."""

    a: EpisodeStats
    b: EpisodeStats
    name_a: str = struct.field(pytree_node=False, default="A")
    name_b: str = struct.field(pytree_node=False, default="B")

    @property
    def return_effect(self) -> jax.Array:
        """Each patient's return under B minus under A."""
        return self.b.returns - self.a.returns

    @property
    def survival_effect(self) -> jax.Array:
        """Each patient's survival under B minus under A: +1 saved by B, -1 lost, 0 the same."""
        return self.b.survived.astype(jnp.int32) - self.a.survived.astype(jnp.int32)

    def survival_counts(self) -> dict[str, int]:
        """The 2x2 table: patients who survive under both, only under A, only under B, neither."""
        a, b = np.asarray(self.a.survived), np.asarray(self.b.survived)
        return {
            "both": int(np.sum(a & b)),
            "only_a": int(np.sum(a & ~b)),
            "only_b": int(np.sum(~a & b)),
            "neither": int(np.sum(~a & ~b)),
        }

    def summary(self) -> dict[str, Any]:
        """Mean return, survival and final SOFA under A and under B, the mean paired effect
        of each with its standard error (sd of the per-patient differences / sqrt(n)), and
        the 2x2 table of :meth:`survival_counts`."""
        n = int(np.shape(self.a.returns)[0])
        out: dict[str, Any] = {"policy_a": self.name_a, "policy_b": self.name_b, "patients": n}
        for name, field in (
            ("return", "returns"),
            ("survival", "survived"),
            ("final_sofa", "final_sofa"),
        ):
            a, b = (np.asarray(getattr(s, field), np.float64) for s in (self.a, self.b))
            diff = b - a
            se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            out |= {
                f"{name}_a": float(a.mean()),
                f"{name}_b": float(b.mean()),
                f"{name}_effect": float(diff.mean()),
                f"{name}_effect_se": se,
            }
        return out | self.survival_counts()


def paired_outcomes(
    env: SepsisEnv,
    params: Any,
    policy_a: Policy,
    policy_b: Policy,
    key: jax.Array,
    n_patients: int,
    *,
    n_steps: int | None = None,
    chunk_size: int | None = None,
    names: tuple[str, str] = ("A", "B"),
) -> PairedOutcomes:
    """The ``n_patients`` patients of ``key`` under ``policy_a`` and under ``policy_b``.

    Each side is exactly ``rollout_episodes(env, params, policy, key, n_patients, n_steps,
    chunk_size)`` (see there for ``n_steps`` and ``chunk_size``); ``names`` label the policies
    in tables and figures. Works for every env id, with or without virtual patients.

    Raises:
        TypeError: ``env`` is not a :class:`SepsisEnv` or a policy is not callable.
        ValueError: ``n_patients``, ``n_steps`` or ``chunk_size`` is not a positive int, or
            ``names`` is not two strings.
    """
    _checks.instance("env", env, SepsisEnv, "a SepsisEnv (from sepsisim_jax.make)")
    _checks.policy("policy_a", policy_a)
    _checks.policy("policy_b", policy_b)
    _checks.positive_int("n_patients", n_patients)
    _checks.positive_int("n_steps", n_steps, optional=True)
    _checks.positive_int("chunk_size", chunk_size, optional=True)
    if not (isinstance(names, tuple | list) and len(names) == 2) or not all(
        isinstance(n, str) for n in names
    ):
        raise ValueError(f"names must be two strings, got {names!r}")
    a, b = (
        rollout_episodes(env, params, p, key, n_patients, n_steps, chunk_size)
        for p in (policy_a, policy_b)
    )
    return PairedOutcomes(a=a, b=b, name_a=names[0], name_b=names[1])


def antibiotic_at(env: SepsisEnv, hour: float, base: Policy | None = None) -> Policy:
    """``base`` (default: :func:`~sepsisim_jax.policies.heuristic_policy`) with the antibiotic
    withheld before ``hour`` and given from it on.

    The antibiotic component is 1 at every step whose start, ``step * dt`` hours after
    admission (the observed ``step`` feature, ``dt`` from ``params.patient``), has reached
    ``hour``, and 0 before; the drug acts from that step's transition on (``antibiotic_active``
    in the state after it). ``hour`` 0 gives it at admission, as the heuristic does. The same
    arguments return the same function, so jitted rollouts compile once.

    Raises:
        ValueError: ``env`` declares no antibiotic action component (of the built-in tasks,
            only SepsisManagement has one) or does not observe ``step``, or ``hour`` is not a
            finite number >= 0.
        TypeError: ``base`` is not callable.
    """
    _checks.instance("env", env, SepsisEnv, "a SepsisEnv (from sepsisim_jax.make)")
    if ANTIBIOTIC not in env.actions:
        raise ValueError(
            f"antibiotic_at needs an env with an antibiotic action component, got {env.env_id} "
            f"with {[c.name for c in env.actions]}"
        )
    if "step" not in env.observation_names:
        raise ValueError(
            f"antibiotic_at reads the 'step' feature, which {env.env_id} does not observe: "
            f"{env.observation_names}"
        )
    number = int | float | np.integer | np.floating
    if isinstance(hour, bool) or not isinstance(hour, number) or not 0 <= hour < math.inf:
        raise ValueError(f"hour must be a finite number >= 0, got {hour!r}")
    _checks.policy("base", base, optional=True)
    return _scheduled(env, float(hour), heuristic_policy(env) if base is None else base)


@functools.cache
def _scheduled(env: SepsisEnv, hour: float, base: Policy) -> Policy:
    step_index = env.observation_index("step")
    component = env.actions.index(ANTIBIOTIC)

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        action = jnp.asarray(base(key, obs, params), jnp.float32)
        first_step = hour / jnp.asarray(params.patient.dt, jnp.float32)
        given = jnp.asarray(obs, jnp.float32)[step_index] >= first_step - STEP_SLACK
        return action.at[component].set(given.astype(jnp.float32))

    return policy


# Columns of :func:`effect_table`, over rows of :meth:`PairedOutcomes.summary`.
EFFECT_COLUMNS: tuple[Column, ...] = (
    ("policy A", "<16", lambda r: r["policy_a"]),
    ("policy B", "<16", lambda r: r["policy_b"]),
    ("patients", ">9", lambda r: f"{r['patients']:,}"),
    ("surv A", ">6", lambda r: f"{r['survival_a']:.3f}"),
    ("surv B", ">6", lambda r: f"{r['survival_b']:.3f}"),
    ("B-A survival ± se", ">18", lambda r: _pm(r, "survival_effect", ".4f")),
    ("both", ">8", lambda r: f"{r['both']:,}"),
    ("only A", ">7", lambda r: f"{r['only_a']:,}"),
    ("only B", ">7", lambda r: f"{r['only_b']:,}"),
    ("neither", ">8", lambda r: f"{r['neither']:,}"),
    ("return A", ">8", lambda r: f"{r['return_a']:.1f}"),
    ("return B", ">8", lambda r: f"{r['return_b']:.1f}"),
    ("B-A return ± se", ">16", lambda r: _pm(r, "return_effect", ".2f")),
    ("SOFA A", ">6", lambda r: f"{r['final_sofa_a']:.2f}"),
    ("SOFA B", ">6", lambda r: f"{r['final_sofa_b']:.2f}"),
)


def _pm(row: Mapping[str, Any], key: str, spec: str) -> str:
    return f"{row[key]:+{spec}} ± {row[key + '_se']:{spec}}"


def effect_table(rows: Sequence[Mapping[str, Any]], leading: Sequence[Column] = ()) -> str:
    """Text table of :meth:`PairedOutcomes.summary` rows; ``leading`` columns come first
    (e.g. the environment of each row)."""
    return text_table(rows, (*leading, *EFFECT_COLUMNS))
