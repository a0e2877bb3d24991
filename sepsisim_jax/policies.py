"""Baseline policies as pure jittable functions ``policy(key, obs, params) -> action``.

Both work on a single observation; ``vmap`` them for a batch. The heuristic is the clinical
rule set of sepsisim 0.1.0's ``HeuristicAgent`` (after the Surviving Sepsis Campaign hour-1
bundle, Rhodes et al. 2017), applied to the same float32 observation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from sepsisim_jax.envs.base import SepsisEnv

Policy = Callable[[jax.Array, jax.Array, Any], jax.Array]


@functools.cache
def random_policy(env: SepsisEnv) -> Policy:
    """Uniform random actions in the environment's action space (one function per env)."""

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del obs
        return env.action_space(params).sample(key)

    return policy


def _fluid_heuristic(read: Callable[[str], jax.Array]) -> jax.Array:
    map_mmhg = read("map_mmhg")
    fluid = jnp.select(
        [map_mmhg < 65.0, map_mmhg < 70.0, map_mmhg < 80.0], [750.0, 500.0, 250.0], 125.0
    )
    return jnp.where(read("intravascular_volume") > 3.5, 0.0, fluid)[None]


def _vasopressor_heuristic(read: Callable[[str], jax.Array]) -> jax.Array:
    map_mmhg = read("map_mmhg")
    return jnp.select([map_mmhg < 65.0, map_mmhg > 85.0], [0.05, -0.02], 0.0)[None]


def _management_heuristic(read: Callable[[str], jax.Array]) -> jax.Array:
    map_mmhg, volume = read("map_mmhg"), read("intravascular_volume")
    fluid = jnp.select(
        [(map_mmhg < 65.0) & (volume < 4.0), map_mmhg < 70.0, map_mmhg < 80.0],
        [750.0, 500.0, 250.0],
        125.0,
    )
    dose_change = jnp.select(
        [(map_mmhg < 65.0) & (volume >= 2.0), (map_mmhg > 85.0) & (read("vasopressor_dose") > 0.0)],
        [0.05, -0.02],
        0.0,
    )
    give_antibiotic = jnp.where(read("antibiotic_active") > 0.5, 0.0, 1.0)
    return jnp.stack([fluid, dose_change, give_antibiotic])


_HEURISTICS: dict[str, Callable[[Callable[[str], jax.Array]], jax.Array]] = {
    "FluidResuscitation": _fluid_heuristic,
    "VasopressorTitration": _vasopressor_heuristic,
    "SepsisManagement": _management_heuristic,
}


@functools.cache
def heuristic_policy(env: SepsisEnv) -> Policy:
    """The reference's clinical heuristic for ``env``: thresholds on MAP, volume and dose.

    - FluidResuscitation: no fluid above 3.5 L excess; else 750/500/250/125 mL for MAP below
      65/70/80/otherwise.
    - VasopressorTitration: +0.05 below MAP 65, -0.02 above 85, else hold.
    - SepsisManagement: 750 mL if MAP < 65 and volume < 4 L, else 500/250/125 mL by MAP
      70/80; +0.05 dose if MAP < 65 with volume >= 2 L, -0.02 if MAP > 85 on vasopressors;
      antibiotic until it is active.

    Features are read from the observation by name (``env.observation_index``).
    """
    rule = _HEURISTICS[env.env_id.split("-")[0]]  # one rule per task, v0 and v1 alike

    def policy(key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, params
        obs = jnp.asarray(obs, jnp.float32)
        return rule(lambda name: obs[env.observation_index(name)]).astype(jnp.float32)

    return policy


POLICIES: dict[str, Callable[[SepsisEnv], Policy]] = {
    "random": random_policy,
    "heuristic": heuristic_policy,
}
