"""Environment ids, ``make`` and registration with gymnax's and Gymnasium's registries."""

from __future__ import annotations

from typing import Any

import gymnasium
import gymnax
import numpy as np

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.clinical import SEVERITIES
from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation
from sepsisim_jax.envs.sepsis_management import SepsisManagement
from sepsisim_jax.envs.v1 import FluidResuscitationV1, SepsisManagementV1, VasopressorTitrationV1
from sepsisim_jax.envs.vasopressor_titration import VasopressorTitration
from sepsisim_jax.physiology.parameters import replace_params
from sepsisim_jax.physiology.solver import SolverConfig

NAMESPACE = "sepsisim_jax"
ENVIRONMENTS: dict[str, type[SepsisEnv]] = {
    cls.env_id: cls
    for cls in (
        FluidResuscitation,
        VasopressorTitration,
        SepsisManagement,
        FluidResuscitationV1,
        VasopressorTitrationV1,
        SepsisManagementV1,
    )
}
ENV_IDS: tuple[str, ...] = tuple(ENVIRONMENTS)
V0_IDS: tuple[str, ...] = tuple(e for e in ENV_IDS if e.endswith("-v0"))  # the reference's
V1_IDS: tuple[str, ...] = tuple(e for e in ENV_IDS if e.endswith("-v1"))  # coupled Reynolds
# The reference's constructor options besides ``severity``, per environment. ``dt`` is the
# patient parameter of that name; the others set the parameter named here.
REFERENCE_OPTIONS: dict[str, tuple[str, ...]] = {
    "FluidResuscitation-v0": ("dt", "antibiotic_given"),
    "VasopressorTitration-v0": ("dt", "antibiotic_given", "fluid_protocol"),
    "SepsisManagement-v0": ("dt",),
}
REFERENCE_OPTIONS |= {k.replace("-v0", "-v1"): v for k, v in REFERENCE_OPTIONS.items()}
_OPTION_PARAMS = {"antibiotic_given": "antibiotic_efficacy", "fluid_protocol": "fluid_protocol_ml"}
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
    patient_spread: float = 0.0,
    observation: str = "full",
    **params: Any,
) -> tuple[SepsisEnv, Any]:
    """Build an environment and its validated default params: ``env, params = make(id)``.

    Args:
        env_id: one of :data:`ENV_IDS`, optionally prefixed ``"sepsisim_jax/"``.
        severity: ``"easy"``, ``"medium"`` or ``"hard"`` (initial bacterial load).
        solver: ``"rk4"`` (fixed step, fast), ``"dopri5"`` (adaptive, as the reference) or a
            :class:`SolverConfig`.
        patient_spread: virtual patients (0: the same patient every admission; above 0 each
            admission draws its parameters, see :class:`SepsisEnv`).
        observation: ``"full"``, ``"clinical"`` or ``"privileged"`` (see :class:`SepsisEnv`).
        **params: the reference's constructor options (:data:`REFERENCE_OPTIONS`: ``dt``
            in hours, ``antibiotic_given`` a bool, ``fluid_protocol`` in mL/h, with the
            reference's defaults 1.0, True and 250.0, or 100.0 on the v1 patient) and
            parameter overrides by field name, e.g. ``map_noise_sd=0.0`` or
            ``k_growth=0.7``; each is checked against its range.

    Raises:
        ValueError: unknown id, severity or solver, a parameter outside its range, or an
            option given together with the parameter it sets.
        TypeError: an unknown parameter name, an option this environment does not take, or
            a non-bool ``antibiotic_given``.
    """
    cls = env_class(env_id)
    env = cls(
        severity=severity, solver=solver, patient_spread=patient_spread, observation=observation
    )
    defaults = env.default_params
    return env, replace_params(defaults, **_reference_options(cls.env_id, defaults, params))


def _reference_options(env_id: str, defaults: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the reference's constructor options turned into parameter overrides."""
    params = dict(params)
    for option, target in _OPTION_PARAMS.items():
        if option not in params:
            continue
        if option not in REFERENCE_OPTIONS[env_id]:
            raise TypeError(
                f"{env_id} takes no option {option!r} (the reference's takes "
                f"{list(REFERENCE_OPTIONS[env_id])})"
            )
        if target in params:
            raise ValueError(f"give {option!r} or {target!r}, not both")
        value = params.pop(option)
        if option == "antibiotic_given":
            if not isinstance(value, bool | np.bool_):
                raise TypeError(f"antibiotic_given must be a bool, got {value!r}")
            params[target] = getattr(defaults, target) if value else 0.0
        else:
            params[target] = value
    return params


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
                max_episode_steps=env_class(env_id).model.episode_steps,
                kwargs={"env_id": env_id},
            )


__all__ = [
    "ENV_IDS",
    "REFERENCE_OPTIONS",
    "SEVERITIES",
    "V0_IDS",
    "V1_IDS",
    "env_class",
    "make",
    "register_gymnasium",
    "register_gymnax",
]
