"""The cohort engine: many patients, hour by hour, in one ``lax.scan`` over a ``vmap``.

Key scheme, the one every cohort function uses (rollouts, trajectories, clinical courses,
summaries, logged episodes, policy values, planning, virtual trials):

- patient ``p`` of the cohort of ``key`` is admitted with the first and runs its episode with
  the second key of ``split(fold_in(key, p))`` (:func:`patient_keys`);
- hour ``t`` of that episode draws the action with the first and steps the environment with
  the second key of ``split(fold_in(episode_key, t))`` (:func:`hour_keys`).

A patient's course therefore depends only on ``key`` and its index ``p``: not on the cohort's
size, its chunking, the devices it runs on, or the policy (two policies meet the same
admission and the same noise in every hour; only their actions differ). Batches are padded to
the rule of :mod:`~sepsisim_jax.cohort.sharding`, which keeps the arithmetic of a patient the
same bit for bit in any batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from sepsisim_jax.cohort.sharding import constrain_patients, padded_width
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.policies import Policy


def patient_keys(key: jax.Array, patients: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Admission and episode keys of the patients with indices ``patients``."""
    keys = jax.vmap(lambda p: jax.random.split(jax.random.fold_in(key, p)))(patients)
    return keys[:, 0], keys[:, 1]


def hour_keys(episode_keys: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Action and step keys of hour ``t`` of each episode."""
    keys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, t)))(episode_keys)
    return keys[:, 0], keys[:, 1]


def padded_patients(n: int) -> jax.Array:
    """Indices ``0 .. n - 1`` padded to the padding rule (the extra patients are the caller's
    to drop) and sharded over the devices."""
    return constrain_patients(jnp.arange(padded_width(n), dtype=jnp.int32))


@struct.dataclass
class OpenLoop:
    """An open-loop action source: ``actions[i, t]`` is patient ``i``'s action at hour ``t``,
    whatever it observes (a treatment schedule)."""

    actions: jax.Array  # (n_patients, n_steps, n_actions)


ActionSource = Policy | OpenLoop
# record(carry, obs, state, action, output) -> (carry, per_step): the books of one hour, where
# obs and state are what the action was taken in and output is what the step returned.
Record = Callable[[Any, jax.Array, EnvState, jax.Array, tuple], tuple[Any, Any]]


def scan_cohort(
    env: SepsisEnv,
    params: Any,
    source: ActionSource,
    key: jax.Array,
    patients: jax.Array,
    n_steps: int | None,
    record: Record,
    carry: Any,
    *,
    auto_reset: bool = True,
) -> tuple[EnvState, Any, Any]:
    """Admit the patients with indices ``patients``, then ``n_steps`` hours of acting and
    stepping in one ``lax.scan`` (the module's key scheme). Unjitted: callers jit.

    Args:
        source: a policy ``policy(key, obs, params) -> action`` (vmapped over the patients)
            or an :class:`OpenLoop` schedule with one row per patient.
        n_steps: hours to run; ``None`` is the patient model's episode length (a schedule's
            length for an :class:`OpenLoop`).
        record: keeps the books of each hour (:data:`Record`), starting from ``carry``.
        auto_reset: step with ``env.step`` (a new admission after an episode ends) or, if
            false, with ``env.step_env`` (no admission; ``output`` then has no ``truncated``).

    Returns:
        The admission states, the final ``carry`` and the stacked per-hour records.
    """
    open_loop = isinstance(source, OpenLoop)
    if open_loop:
        schedule_steps = source.actions.shape[1]
        if n_steps not in (None, schedule_steps):
            raise ValueError(f"n_steps={n_steps} but the schedule has {schedule_steps} hours")
        n_steps = schedule_steps
    elif n_steps is None:
        n_steps = env.model.episode_steps
    admission_keys, episode_keys = patient_keys(key, patients)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(admission_keys, params)
    step = jax.vmap(env.step if auto_reset else env.step_env, in_axes=(0, 0, 0, None))
    act = None if open_loop else jax.vmap(source, in_axes=(0, 0, None))

    def body(loop, inputs):
        obs, state, carry = loop
        t, action = inputs if open_loop else (inputs, None)
        key_act, key_step = hour_keys(episode_keys, t)
        if not open_loop:
            action = act(key_act, obs, params)
        output = step(key_step, state, action, params)
        carry, per_step = record(carry, obs, state, action, output)
        return (output[0], output[1], carry), per_step

    hours = jnp.arange(n_steps)
    inputs = (hours, jnp.swapaxes(source.actions, 0, 1)) if open_loop else hours
    (_, _, carry), per_step = jax.lax.scan(body, (obs, state, carry), inputs)
    return state, carry, per_step
