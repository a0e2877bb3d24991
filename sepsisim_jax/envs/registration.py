"""Environment ids, ``make`` and registration with gymnax's and Gymnasium's registries."""

from __future__ import annotations

from typing import Any

import gymnasium
import gymnax

from sepsisim_jax.envs.base import SEVERITIES, SepsisEnv
from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation
from sepsisim_jax.envs.sepsis_management import SepsisManagement
from sepsisim_jax.envs.vasopressor_titration import VasopressorTitration
from sepsisim_jax.physiology.parameters import replace_params
from sepsisim_jax.physiology.solver import SolverConfig

NAMESPACE = "sepsisim_jax"
ENVIRONMENTS: dict[str, type[SepsisEnv]] = {
    cls.env_id: cls for cls in (FluidResuscitation, VasopressorTitration, SepsisManagement)
}
ENV_IDS: tuple[str, ...] = tuple(ENVIRONMENTS)
MAX_EPISODE_STEPS = 72  # the reference's Gymnasium time limit (and our max_steps_in_episode)
_ADAPTER = "sepsisim_jax.gymnasium_adapter"


def env_class(env_id: str) -> type[SepsisEnv]:
    """The environment class of ``env_id`` (with or without the ``sepsisim_jax/`` prefix)."""
    bare = env_id.removeprefix(NAMESPACE + "/") if isinstance(env_id, str) else env_id
    if bare not in ENVIRONMENTS:
        raise ValueError(f"unknown environment id {env_id!r}; valid ids: {list(ENV_IDS)}")
    return ENVIRONMENTS[bare]


def make(
    env_id: str,
    severity: str = "medium",
    solver: SolverConfig | str = "rk4",
    **params: Any,
) -> tuple[SepsisEnv, Any]:
    """Build an environment and its validated default params: ``env, params = make(id)``.

    Args:
        env_id: one of :data:`ENV_IDS`, optionally prefixed ``"sepsisim_jax/"``.
        severity: ``"easy"``, ``"medium"`` or ``"hard"`` (initial bacterial load).
        solver: ``"rk4"`` (fixed step, fast), ``"dopri5"`` (adaptive, as the reference) or a
            :class:`SolverConfig`.
        **params: parameter overrides by field name, e.g. ``map_noise_sd=0.0`` or
            ``k_growth=0.7``; each is checked against its declared range.

    Raises:
        ValueError: unknown id, severity or solver, or a parameter outside its range.
        TypeError: an unknown parameter name.
    """
    env = env_class(env_id)(severity=severity, solver=solver)
    return env, replace_params(env.default_params, **params)


def _gymnax_factory(env_id: str):
    def factory(**kwargs: Any) -> SepsisEnv:
        return env_class(env_id)(**kwargs)

    return factory


def register_gymnax() -> None:
    """Register ``sepsisim_jax/<id>`` with gymnax so that ``gymnax.make`` finds them (idempotent)."""
    for env_id in ENV_IDS:
        full_id = f"{NAMESPACE}/{env_id}"
        if full_id not in gymnax.registered_envs:
            gymnax.register(full_id, _gymnax_factory(env_id))


def register_gymnasium() -> None:
    """Register ``sepsisim_jax/<id>`` for ``gym.make`` and ``gym.make_vec`` (idempotent).

    The namespace keeps them apart from the reference's ``sepsisim/<id>``. Entry points are
    import strings, so the adapter module loads only when an environment is made.
    """
    for env_id in ENV_IDS:
        full_id = f"{NAMESPACE}/{env_id}"
        if full_id not in gymnasium.registry:
            gymnasium.register(
                id=full_id,
                entry_point=f"{_ADAPTER}:SepsisGymEnv",
                vector_entry_point=f"{_ADAPTER}:SepsisVectorEnv",
                max_episode_steps=MAX_EPISODE_STEPS,
                kwargs={"env_id": env_id},
            )


__all__ = [
    "ENV_IDS",
    "MAX_EPISODE_STEPS",
    "SEVERITIES",
    "env_class",
    "make",
    "register_gymnasium",
    "register_gymnax",
]
