"""Environment ids: an id pairs a task with a patient model, ``<task>-<model version>``.

:data:`REGISTRY` maps each id to ``partial(Task, model=M)``; adding a task or a model is one
row there (or one :func:`register` call). ``-v0`` ids run the reference's physiology
(:data:`~sepsisim_jax.physiology.models.SEPSISIM`), ``-v1`` ids the published Reynolds 2006
model coupled to the circulation (:data:`~sepsisim_jax.physiology.models.REYNOLDS_COUPLED`).
:data:`REFERENCE_IDS`, apart from the model version, are the ids with a ``sepsisim`` 0.1.0
counterpart to compare against (``sepsisim/<id>``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium
import gymnax
import numpy as np

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation
from sepsisim_jax.envs.sepsis_management import SepsisManagement
from sepsisim_jax.envs.vasopressor_titration import VasopressorTitration
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED, SEPSISIM, PatientModel
from sepsisim_jax.physiology.parameters import replace_params
from sepsisim_jax.physiology.solver import SolverConfig

NAMESPACE = "sepsisim_jax"
SEVERITIES = ("easy", "medium", "hard")
TASKS: tuple[type[SepsisEnv], ...] = (FluidResuscitation, VasopressorTitration, SepsisManagement)
REGISTRY: dict[str, partial[SepsisEnv]] = {
    f"{task.task_name}-{model.version}": partial(task, model=model)
    for model in (SEPSISIM, REYNOLDS_COUPLED)
    for task in TASKS
}
ENV_IDS: tuple[str, ...] = tuple(REGISTRY)  # the built-in ids
V0_IDS: tuple[str, ...] = tuple(e for e in ENV_IDS if REGISTRY[e].keywords["model"] is SEPSISIM)
V1_IDS: tuple[str, ...] = tuple(
    e for e in ENV_IDS if REGISTRY[e].keywords["model"] is REYNOLDS_COUPLED
)
REFERENCE_IDS: tuple[str, ...] = V0_IDS  # sepsisim 0.1.0 has each: sepsisim/<id>
# The reference's options that set a parameter of another name (``dt`` is a parameter).
_OPTION_PARAMS = {"antibiotic_given": "antibiotic_efficacy", "fluid_protocol": "fluid_protocol_ml"}
_ADAPTER = "sepsisim_jax.gymnasium_adapter"


def register(env_id: str, task: type[SepsisEnv], model: PatientModel) -> None:
    """Add the id ``<task.task_name>-<model.version>`` (``ValueError`` if it is taken or
    misnamed); :func:`make`, the command line and the gymnax and Gymnasium registries
    (:func:`register_gymnax`, :func:`register_gymnasium`) find it from then on."""
    expected = f"{task.task_name}-{model.version}"
    if env_id != expected:
        raise ValueError(f"the id of {task.__name__} on model {model.version} is {expected!r}")
    if env_id in REGISTRY:
        raise ValueError(f"environment id {env_id!r} is registered already")
    REGISTRY[env_id] = partial(task, model=model)


def env_ids() -> tuple[str, ...]:
    """Every registered id, the built-in ones first."""
    return tuple(REGISTRY)


def env_factory(env_id: str) -> partial[SepsisEnv]:
    """``partial(Task, model=M)`` of ``env_id`` (with or without the ``sepsisim_jax/``
    prefix); ``ValueError`` naming the valid ids."""
    bare = env_id.removeprefix(NAMESPACE + "/") if isinstance(env_id, str) else env_id
    if bare not in REGISTRY:
        raise ValueError(f"unknown environment id {env_id!r}; valid ids: {list(REGISTRY)}")
    return REGISTRY[bare]


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
        env_id: a registered id (:func:`env_ids`), optionally prefixed ``"sepsisim_jax/"``.
        severity: ``"easy"``, ``"medium"`` or ``"hard"`` (initial bacterial load).
        solver: ``"rk4"`` (fixed step, fast), ``"dopri5"`` (adaptive, as the reference) or a
            :class:`SolverConfig`.
        patient_spread: virtual patients (0: the same patient every admission; above 0 each
            admission draws its parameters, see :class:`SepsisEnv`).
        observation: ``"full"``, ``"clinical"`` or ``"privileged"`` (see :class:`SepsisEnv`).
        **params: the reference's constructor options (the task's ``reference_options``:
            ``dt`` in hours, ``antibiotic_given`` a bool, ``fluid_protocol`` in mL/h, with the
            reference's defaults 1.0, True and 250.0, or 100.0 on the v1 patient) and
            parameter overrides by field name, e.g. ``map_noise_sd=0.0`` or
            ``k_growth=0.7``; each is checked against its range.

    Raises:
        ValueError: unknown id, severity or solver, a parameter outside its range, or an
            option given together with the parameter it sets.
        TypeError: an unknown parameter name, an option this environment does not take, or
            a non-bool ``antibiotic_given``.
    """
    env = env_factory(env_id)(
        severity=severity, solver=solver, patient_spread=patient_spread, observation=observation
    )
    defaults = env.default_params
    return env, replace_params(defaults, **_reference_options(env, defaults, params))


def _reference_options(env: SepsisEnv, defaults: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the reference's constructor options turned into parameter overrides."""
    params = dict(params)
    for option, target in _OPTION_PARAMS.items():
        if option not in params:
            continue
        if option not in env.reference_options:
            raise TypeError(
                f"{env.env_id} takes no option {option!r} (the reference's takes "
                f"{list(env.reference_options)})"
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


def register_gymnax() -> None:
    """Register ``sepsisim_jax/<id>`` with gymnax so that ``gymnax.make`` finds them (idempotent)."""
    for env_id, factory in REGISTRY.items():
        full_id = f"{NAMESPACE}/{env_id}"
        if full_id not in gymnax.registered_envs:
            gymnax.register(full_id, factory)


def register_gymnasium() -> None:
    """Register ``sepsisim_jax/<id>`` for ``gym.make`` and ``gym.make_vec`` (idempotent).

    The namespace keeps them apart from the reference's ``sepsisim/<id>``. Entry points are
    import strings, so the adapter module loads only when an environment is made.
    """
    for env_id, factory in REGISTRY.items():
        full_id = f"{NAMESPACE}/{env_id}"
        if full_id not in gymnasium.registry:
            gymnasium.register(
                id=full_id,
                entry_point=f"{_ADAPTER}:SepsisGymEnv",
                vector_entry_point=f"{_ADAPTER}:SepsisVectorEnv",
                max_episode_steps=factory.keywords["model"].episode_steps,
                kwargs={"env_id": env_id},
            )


__all__ = [
    "ENV_IDS",
    "REFERENCE_IDS",
    "REGISTRY",
    "SEVERITIES",
    "TASKS",
    "V0_IDS",
    "V1_IDS",
    "env_factory",
    "env_ids",
    "make",
    "register",
    "register_gymnasium",
    "register_gymnax",
]
