"""Cohort rollouts: one full episode for each of many patients in one jitted, vmapped scan.

A patient's episode ends at its first termination or truncation; the environment auto-resets
afterwards, and those later steps are masked out of the statistics. ``max_steps_in_episode``
steps therefore cover exactly one episode per patient. Everything here runs on
:func:`~sepsisim_jax.cohort.scan.scan_cohort` and its key scheme: a patient's episode depends
only on ``key`` and its index, not on the cohort's size, its chunking or the devices.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.cohort.scan import ActionSource, padded_patients, scan_cohort
from sepsisim_jax.cohort.sharding import constrain_patients, padded_width
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.features import FEATURES
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.policies import Policy
from sepsisim_jax.text_table import Column


@struct.dataclass
class EpisodeStats:
    """Per-patient outcome of one episode (arrays of shape ``(n_patients,)``)."""

    returns: jax.Array
    lengths: jax.Array  # int32, steps until the episode ended
    survived: jax.Array  # bool, not terminated by death
    final_map: jax.Array  # mmHg at the episode's last step
    final_lactate: jax.Array  # mmol/L
    final_sofa: jax.Array  # SOFA 0-12


def episode_stats(
    env: SepsisEnv,
    params: Any,
    policy: ActionSource,
    key: jax.Array,
    patients: jax.Array,
    n_steps: int | None = None,
) -> EpisodeStats:
    """One episode of each patient in ``patients`` (indices into the cohort of ``key``).

    The unjitted core of :func:`rollout_episodes`, for callers that compile their own loop
    over chunks or devices; ``n_steps`` as there. ``policy`` may also be an
    :class:`~sepsisim_jax.cohort.scan.OpenLoop` schedule.
    """
    n_patients = patients.shape[0]
    dtype = env.dtype
    zeros = jnp.zeros((n_patients,), dtype)
    initial = EpisodeStats(
        returns=zeros,
        lengths=jnp.zeros((n_patients,), jnp.int32),
        survived=jnp.ones((n_patients,), bool),
        final_map=zeros,
        final_lactate=zeros,
        final_sofa=zeros,
    )

    def record(carry, obs, state, action, output):
        active, stats = carry
        _, _, reward, terminated, truncated, info = output
        ending = active & (terminated | truncated)
        final = info["final_observation"]
        stats = EpisodeStats(
            returns=stats.returns + jnp.where(active, reward, 0.0),
            lengths=stats.lengths + active.astype(jnp.int32),
            survived=stats.survived & ~(active & terminated),
            final_map=jnp.where(ending, info["map_mmhg"], stats.final_map),
            final_lactate=jnp.where(ending, info["lactate"], stats.final_lactate),
            final_sofa=jnp.where(ending, final[:, env.observation_index("sofa")], stats.final_sofa),
        )
        return (active & ~ending, stats), None

    active = jnp.ones((n_patients,), bool)
    _, (_, stats), _ = scan_cohort(
        env, params, policy, key, patients, n_steps, record, (active, initial)
    )
    return stats


@partial(jax.jit, static_argnames=("env", "policy", "n_patients", "n_steps", "chunk_size"))
def rollout_episodes(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_patients: int,
    n_steps: int | None = None,
    chunk_size: int | None = None,
) -> EpisodeStats:
    """Run ``n_patients`` episodes of at most ``n_steps`` steps under ``policy``.

    ``n_steps`` must be at least ``params.max_steps_in_episode`` for every episode to end;
    the default is the patient model's episode length (72 steps for v0, 96 for v1).
    ``chunk_size`` simulates that many patients at a time (``lax.map`` over chunks, so the
    simulation's memory stays that of one chunk; only the per-patient outcomes grow with
    ``n_patients``); the outcomes are the same for every chunk size. With more than one device
    each chunk's patients are sharded over them; chunks are padded with extra patients whose
    outcomes are dropped (the padding rule of :mod:`sepsisim_jax.cohort.sharding`).
    For summaries of cohorts too large to hold even their outcomes, see
    :func:`sepsisim_jax.cohort.summary.cohort_summary`.
    """
    width = padded_width(n_patients if chunk_size is None else min(chunk_size, n_patients))
    n_chunks = -(-n_patients // width)
    patients = jnp.arange(n_chunks * width, dtype=jnp.int32).reshape(n_chunks, width)
    stats = jax.lax.map(
        lambda chunk: episode_stats(env, params, policy, key, constrain_patients(chunk), n_steps),
        patients,
    )
    return jax.tree.map(lambda x: x.reshape(-1)[:n_patients], stats)


@struct.dataclass
class Trajectories:
    """Time-major record of a cohort: leaves have shape ``(n_steps, n_patients, ...)``.

    ``state`` and ``obs`` are what each action was taken in; ``info`` holds the reference's
    info keys and ``final_observation`` after the step (before any auto-reset).
    """

    state: EnvState
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    info: dict[str, jax.Array]


@partial(jax.jit, static_argnames=("env", "policy", "n_patients", "n_steps"))
def trajectories(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_patients: int,
    n_steps: int | None = None,
) -> Trajectories:
    """Every step of ``n_patients`` patients under ``policy`` (auto-reset after an episode);
    ``n_steps`` defaults to the patient model's episode length."""

    def record(carry, obs, state, action, output):
        _, _, reward, terminated, truncated, info = output
        return carry, Trajectories(state, obs, action, reward, terminated, truncated, info)

    _, _, steps = scan_cohort(
        env, params, policy, key, padded_patients(n_patients), n_steps, record, None
    )
    return jax.tree.map(lambda x: x[:, :n_patients], steps)


def summarize(stats: EpisodeStats) -> dict[str, float]:
    """Mean and sd of return, survival rate, mean length and mean final MAP, lactate, SOFA."""
    return {
        "mean_return": float(jnp.mean(stats.returns)),
        "sd_return": float(jnp.std(stats.returns)),
        "survival": float(jnp.mean(stats.survived)),
        "mean_length": float(jnp.mean(stats.lengths)),
        "final_map": float(jnp.mean(stats.final_map)),
        "final_lactate": float(jnp.mean(stats.final_lactate)),
        "final_sofa": float(jnp.mean(stats.final_sofa)),
    }


# Table columns of the outcome :func:`summarize` reports: return, survival, episode length.
SUMMARY_COLUMNS: tuple[Column, ...] = (
    ("return (mean ± sd)", ">20", lambda r: f"{r['mean_return']:.1f} ± {r['sd_return']:.1f}"),
    ("survival", ">9", lambda r: f"{r['survival']:.3f}"),
    ("length", ">7", lambda r: f"{r['mean_length']:.1f}"),
)


@struct.dataclass
class Course:
    """Each patient's first episode, hour by hour: arrays of shape ``(n_hours + 1, n_patients)``.

    Row ``t`` of a state signal is the patient after ``t`` hours (row 0 at admission); row ``t``
    of a treatment or reward is what happened during hour ``t`` (the last row is NaN). Rows
    after the episode ended (death or the step limit) are NaN.
    """

    map_mmhg: jax.Array
    lactate: jax.Array  # mmol/L
    urine_output: jax.Array  # mL/kg/h
    tissue_damage: jax.Array
    sofa: jax.Array
    vasopressor_dose: jax.Array  # mcg/kg/min during the hour that ends at row t
    antibiotic_active: jax.Array  # 1.0 once the antibiotic is given, else 0.0
    fluid_ml: jax.Array  # fluid given during hour t (the task's own protocol included)
    reward: jax.Array  # reward of hour t
    action: jax.Array  # (n_hours + 1, n_patients, n_actions): hour t's clipped action, in the
    # order of the task's declared components (``env.actions``)
    length: jax.Array  # (n_patients,) int32, hours until the episode ended
    died: jax.Array  # (n_patients,) bool

    @property
    def returns(self) -> jax.Array:
        """Episode return of each patient."""
        return jnp.nansum(self.reward, axis=0)


COURSE_SIGNALS = (
    "map_mmhg",
    "lactate",
    "urine_output",
    "tissue_damage",
    "sofa",
    "vasopressor_dose",
    "antibiotic_active",
)  # the declared features a Course records, read from the state


def _signals(state: EnvState, dtype: jnp.dtype) -> dict[str, jax.Array]:
    return {name: jnp.asarray(FEATURES[name].read(state)).astype(dtype) for name in COURSE_SIGNALS}


@partial(jax.jit, static_argnames=("env", "policy", "n_patients", "n_hours"))
def clinical_course(
    env: SepsisEnv,
    params: Any,
    policy: Policy,
    key: jax.Array,
    n_patients: int,
    n_hours: int | None = None,
) -> Course:
    """Hour-by-hour signals of ``n_patients`` first episodes under ``policy``, for figures.

    Patients, noise and actions are those of :func:`rollout_episodes` with the same ``key``,
    so the episodes (and returns) are the same. ``n_hours`` must be at least
    ``params.max_steps_in_episode`` for every episode to end (default: the patient model's
    episode length).
    """
    dtype = env.dtype
    nan = jnp.asarray(jnp.nan, dtype)

    def record(active, obs, state, action, output):
        _, next_state, reward, terminated, _ = output
        truncated = env.is_truncated(next_state, params)
        hour = {
            "fluid_ml": jnp.where(active, next_state.total_fluid_ml - state.total_fluid_ml, nan),
            "reward": jnp.where(active, reward, nan),
            "action": jnp.where(active[:, None], jax.vmap(env.clip_action)(action), nan),
            "died": active & terminated,
        }
        after = {k: jnp.where(active, v, nan) for k, v in _signals(next_state, dtype).items()}
        return active & ~(terminated | truncated), (hour, after)

    patients = padded_patients(n_patients)
    active = jnp.ones(patients.shape, bool)
    state, _, (hours, after) = scan_cohort(
        env, params, policy, key, patients, n_hours, record, active, auto_reset=False
    )
    state = jax.tree.map(lambda x: x[:n_patients], state)
    hours, after = jax.tree.map(lambda x: x[:, :n_patients], (hours, after))
    admission = _signals(state, dtype)
    signals = {k: jnp.concatenate([v[None], after[k]]) for k, v in admission.items()}
    last = jnp.full((1, n_patients), jnp.nan, dtype)
    return Course(
        **signals,
        fluid_ml=jnp.concatenate([hours["fluid_ml"], last]),
        reward=jnp.concatenate([hours["reward"], last]),
        action=jnp.concatenate([hours["action"], jnp.full((1, *hours["action"].shape[1:]), nan)]),
        length=jnp.sum(~jnp.isnan(hours["reward"]), axis=0).astype(jnp.int32),
        died=jnp.any(hours["died"], axis=0),
    )
