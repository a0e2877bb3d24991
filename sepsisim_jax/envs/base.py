"""The shared sepsis environment: one patient, one-hour steps, gymnax's functional interface.

A task (its action components, the reward, which features are observed, its heuristic rule)
is a subclass of :class:`SepsisEnv`; the patient model it runs on is a constructor argument
(an environment id pairs the two, :mod:`~sepsisim_jax.envs.registration`). The base class
owns everything else: admission, clipping the action to its declared bounds, the physiology
step, death (tissue damage >= 0.9, reward - 50), truncation after ``max_steps_in_episode``
steps and auto-reset. Observation and info come from the feature declarations of
:mod:`sepsisim_jax.envs.features`, actions from those of :mod:`sepsisim_jax.envs.actions`.

``step`` overrides gymnax's default to stay cheap under ``vmap``: all random numbers of a step
come from one draw, and the admission used on auto-reset is built from that same draw instead
of a second ``reset_env`` with its own key splits. The contract is gymnax 1.0's:
``obs, state, reward, terminated, truncated, info`` with ``info["final_observation"]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from sepsisim_jax.envs import features
from sepsisim_jax.envs.actions import ActionComponent, action_bounds
from sepsisim_jax.envs.rewards import (
    DEATH_DAMAGE,
    DEATH_PENALTY,
    DEFAULT_SMOOTHING,
    RewardSmoothing,
    step_up,
)
from sepsisim_jax.envs.state import EnvState
from sepsisim_jax.physiology import noise
from sepsisim_jax.physiology.interface import Treatment
from sepsisim_jax.physiology.models import SEPSISIM, PatientModel
from sepsisim_jax.physiology.noise import Draws
from sepsisim_jax.physiology.sofa import sofa_score
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator
from sepsisim_jax.physiology.virtual_patients import (
    per_patient_fields,
    replace_fields,
    sample_patient,
    sample_patient_where,
)

P = TypeVar("P", bound=environment.EnvParams)


OBSERVATIONS = ("full", "clinical", "privileged")
HIDDEN_FROM_CLINICIANS = ("bacteria", "tissue_damage")
Reader = Callable[[str], jax.Array]  # feature name -> its value in the observation
Rule = Callable[[Reader], jax.Array]  # a heuristic: the action from the observed features


class SepsisEnv(environment.Environment[EnvState, P], Generic[P]):
    """Base class: a task subclass sets the class constants and the three hooks at the bottom;
    ``model`` is the patient model it runs on (an env id pairs the two)."""

    _supports_transition_gradients = True
    reward_smoothing: RewardSmoothing | None = None  # see with_smoothed_rewards

    task_name: ClassVar[str]  # the id's first part, e.g. "SepsisManagement"
    params_cls: ClassVar[type]
    actions: ClassVar[tuple[ActionComponent, ...]]  # the action vector's components, in order
    severity_bacteria: ClassVar[dict[str, float]] = {}  # v0 initial bacterial load per tier
    reference_options: ClassVar[tuple[str, ...]] = ()  # sepsisim's constructor options
    heuristic: ClassVar[Rule | None] = None  # the task's clinical rule (policies.heuristic_policy)
    observation_names: tuple[str, ...]  # declared features, in observation order
    info_names: tuple[str, ...]  # declared features, in the reference's info order

    def __init__(
        self,
        severity: str = "medium",
        solver: SolverConfig | str = "rk4",
        patient_spread: float = 0.0,
        observation: str = "full",
        *,
        model: PatientModel = SEPSISIM,
    ) -> None:
        """Args:
        severity: a tier of ``model`` (``"easy"``, ``"medium"``, ``"hard"``).
        solver: ``"rk4"``, ``"dopri5"`` or a :class:`SolverConfig`.
        patient_spread: virtual patients: 0 (default) admits the params' patient every
            time; above 0, each admission draws its parameters (log-normal with this sd of
            the log, truncated to the declared ranges, :mod:`~sepsisim_jax.physiology.
            virtual_patients`) into ``state.physiology``, reported in ``info``.
        observation: ``"full"`` (the reference's features), ``"clinical"`` (without what no
            clinician measures: bacteria and tissue damage) or ``"privileged"`` (full plus the
            patient's drawn parameters; needs ``patient_spread > 0``).
        model: the patient model (:data:`~sepsisim_jax.physiology.models.MODELS`).
        """
        super().__init__()
        if not isinstance(model, PatientModel):
            raise TypeError(f"model must be a PatientModel, got {type(model).__name__}")
        self.model = model
        if severity not in self.model.severities:
            raise ValueError(
                f"unknown severity {severity!r} for {self.env_id}; "
                f"valid severities: {list(self.model.severities)}"
            )
        if isinstance(solver, str):
            solver = SolverConfig(name=solver)  # type: ignore[arg-type]
        if not isinstance(solver, SolverConfig):
            raise TypeError(f"solver must be a SolverConfig or a name, got {solver!r}")
        if not (isinstance(patient_spread, int | float) and 0.0 <= patient_spread <= 1.0):
            raise ValueError(f"patient_spread must be a number in [0, 1], got {patient_spread!r}")
        if observation not in OBSERVATIONS:
            raise ValueError(f"unknown observation {observation!r}; valid: {OBSERVATIONS}")
        if observation == "privileged" and patient_spread == 0:
            raise ValueError("a privileged observation needs virtual patients (patient_spread > 0)")
        self.severity = severity
        self.solver = solver
        self.patient_spread = float(patient_spread)
        self.observation = observation
        self._declare_features()

    def _declare_features(self) -> None:
        """Observation and info names and their feature table, drawn parameters included."""
        spread = self.patient_spread
        patient_fields = per_patient_fields(self.patient_params()) if spread else ()
        self._patient_fields = patient_fields
        self.features = (
            features.FEATURES
            | {f.name: features.model_feature(f) for f in self.model.info_features}
            | {f.name: features.parameter_feature(f) for f in patient_fields}
        )
        names = type(self).observation_names
        if self.observation == "clinical":
            names = tuple(n for n in names if n not in HIDDEN_FROM_CLINICIANS)
        elif self.observation == "privileged":
            names = names + tuple(f.name for f in patient_fields)
        self.observation_names = names
        self.info_names = (
            type(self).info_names
            + tuple(f.name for f in self.model.info_features)
            + tuple(f.name for f in patient_fields)
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration only; the feature table (closures) is rebuilt."""
        return {k: v for k, v in self.__dict__.items() if k not in ("features", "_patient_fields")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._declare_features()

    def __repr__(self) -> str:
        smoothed = "" if self.reward_smoothing is None else f", {self.reward_smoothing!r}"
        return (
            f"{type(self).__name__}(severity={self.severity!r}, solver={self.solver!r}, "
            f"patient_spread={self.patient_spread!r}, observation={self.observation!r}, "
            f"model={self.model.version!r}{smoothed})"
        )

    def with_smoothed_rewards(
        self, smoothing: RewardSmoothing | None = DEFAULT_SMOOTHING
    ) -> SepsisEnv[P]:
        """A copy whose rewards have logistic steps for thresholds (:class:`RewardSmoothing`),
        so that gradients pass through them; ``None`` gives the reference's rewards back.

        A surrogate for gradient-based planning, not the task's reward: the default env's
        rewards are the reference's exactly. Dynamics, observations and termination are
        unchanged. Combine with ``with_transition_gradients()`` to differentiate a return.
        """
        if smoothing is not None and not isinstance(smoothing, RewardSmoothing):
            raise TypeError(f"smoothing must be a RewardSmoothing or None, got {smoothing!r}")
        env = copy.copy(self)
        env.reward_smoothing = smoothing
        return env

    def _static_key(self) -> tuple:
        return (
            type(self),
            self.model,
            self.severity,
            self.solver,
            self.patient_spread,
            self.observation,
            self.transition_gradients_enabled,
            self.reward_smoothing,
        )

    def __eq__(self, other: object) -> bool:
        """Equal configuration means equal behaviour, so jitted functions are shared."""
        return isinstance(other, SepsisEnv) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    # --- gymnax interface -------------------------------------------------------------------

    @property
    def env_id(self) -> str:
        """``<task>-<model version>``, e.g. ``"SepsisManagement-v1"``."""
        return f"{self.task_name}-{self.model.version}"

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    @property
    def action_low(self) -> np.ndarray:
        """Float32 lower bounds of the declared action components."""
        return action_bounds(self.actions)[0]

    @property
    def action_high(self) -> np.ndarray:
        """Float32 upper bounds of the declared action components."""
        return action_bounds(self.actions)[1]

    @property
    def dtype(self) -> jnp.dtype:
        """Float dtype of the state: float32, or float64 under ``jax_enable_x64``."""
        return jax.dtypes.canonicalize_dtype(jnp.float64)

    @property
    def default_params(self) -> P:
        """The task's params with its model's patient at this severity, its episode length and
        its defaults of the task parameters this task has."""
        params = self.params_cls(
            patient=self.patient_params(), max_steps_in_episode=self.model.episode_steps
        )
        own = {k: v for k, v in self.model.task_defaults.items() if hasattr(params, k)}
        return params.replace(**own)

    def patient_params(self) -> Any:
        """The model's patient at this severity (the v0 tiers are the task's bacterial loads)."""
        return self.model.patient_params(self.severity_bacteria, self.severity)

    def action_space(self, params: P | None = None) -> spaces.Box:
        """The reference's action bounds; actions outside are clipped."""
        return spaces.Box(
            jnp.asarray(self.action_low), jnp.asarray(self.action_high), self.action_low.shape
        )

    def observation_space(self, params: P | None = None) -> spaces.Box:
        """Float32 bounds of the observation for ``params`` (the reference's at the defaults).

        Bounds that follow from a parameter (bacteria from ``b_max``, counters from the episode
        length and ``dt``) are computed from ``params``, so observations stay inside the space
        for params anywhere in their declared ranges. With virtual patients, each per-patient
        parameter counts at the top of its range (the carrying capacities bound bacteria).
        """
        params = self._params(params)
        if self.patient_spread:
            tops = {f.name: f.spec.high for f in self._patient_fields}
            params = params.replace(patient=replace_fields(params.patient, tops))
        low, high = features.observation_bounds(self.observation_names, params, self.features)
        return spaces.Box(low, high, low.shape, jnp.float32)

    def observation_index(self, name: str) -> int:
        """Position of the feature ``name`` in this environment's observation."""
        if name not in self.observation_names:
            raise KeyError(f"{self.env_id} does not observe {name!r}: {self.observation_names}")
        return self.observation_names.index(name)

    def info(self, state: EnvState) -> dict[str, jax.Array]:
        """The reference's info dict of ``state`` (its keys, in its order)."""
        return features.info_dict(self.info_names, state, self.features)

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: EnvState,
        action: jax.Array,
        params: P | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One step with auto-reset; returns ``obs, state, reward, terminated, truncated, info``."""
        params = self._params(params)
        separate = self._draws_patient_apart(key)
        draws = self._draw(key, with_patient=not separate)
        obs_st, state_st, reward, terminated, info = self._transition(state, action, params, draws)
        truncated = self.is_truncated(state_st, params)
        done = jnp.logical_or(terminated, truncated)
        physiology = None
        if separate:
            # Where an episode ended, the next patient's parameters; elsewhere the current
            # patient's. Under vmap only the patients admitted are drawn.
            physiology = sample_patient_where(
                done,
                key,
                params.patient,
                state.physiology,
                self.patient_spread,
                partial(noise.patient_uniforms, dtype=self.dtype, n_patient=self._n_drawn),
            )
        _, state_re = self._admit(params, draws, physiology)
        state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
        if separate:
            state = state.replace(physiology=physiology)  # already selected
        # The observation is read from the selected state, not selected between the two
        # observations: the same values, but XLA then reads the observation from the state it
        # stores anyway instead of recomputing both branches of the step inside the
        # observation's concatenation (about half of a batched step's time otherwise).
        obs = self.get_obs(state)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
        }
        return obs, state, reward, terminated, truncated, info

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array, params: P
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """The transition without auto-reset (gymnax hook)."""
        draws = self._draw(key, with_patient=not self._draws_patient_apart(key))
        return self._transition(state, action, params, draws)

    def reset_env(self, key: jax.Array, params: P) -> tuple[jax.Array, EnvState]:
        """Admit a new patient; the same key admits the same patient as an auto-reset with it."""
        return self._admit(params, self._draw(key))

    def is_terminated(self, state: EnvState, params: P) -> jax.Array:
        return state.patient.damage >= DEATH_DAMAGE

    def get_obs(self, state: EnvState, params: P | None = None, key: Any = None) -> jax.Array:
        return features.observation_vector(self.observation_names, state, self.features)

    # --- shared dynamics --------------------------------------------------------------------

    def _params(self, params: P | None) -> P:
        return self.default_params if params is None else params

    @property
    def _n_drawn(self) -> int:
        """Uniforms a virtual patient's parameters take (0 without virtual patients)."""
        return len(self._patient_fields)

    def _draw(self, key: jax.Array, with_patient: bool = True) -> Draws:
        """The step's random numbers and, ``with_patient``, a virtual patient's uniforms."""
        return noise.draw(key, self.dtype, self._n_drawn if with_patient else 0)

    def _draws_patient_apart(self, key: jax.Array) -> bool:
        """Whether a step draws its own numbers apart from a virtual patient's (the same
        numbers as one draw of both), so that only the patients admitted draw theirs."""
        return bool(self.patient_spread) and noise.draws_separate_exactly(key)

    def _patient(self, state: EnvState, params: P) -> Any:
        """This patient's physiological params: drawn at admission, or the env params'."""
        return self._patient_params(state.physiology, params)

    def _patient_params(self, physiology: Any, params: P) -> Any:
        """The env params' patient, with the per-patient parameters of ``physiology``.

        Only the drawn fields are read from ``physiology``; the others (step length,
        measurement noise) are the env params' values, which the drawn params copied. So
        under ``vmap`` the step length stays unbatched, and the solver keeps integrating the
        whole batch as one state instead of falling back to a per-patient time grid.
        """
        if physiology is None:
            return params.patient
        drawn = {f.name: f.read(physiology) for f in self._patient_fields}
        return replace_fields(params.patient, drawn)

    def _admit(self, params: P, draws: Draws, physiology: Any = None) -> tuple[jax.Array, EnvState]:
        """Admission; a virtual patient's ``physiology`` is drawn from ``draws`` unless given."""
        volume, vaso_dose = self._admission_treatment(params)
        if self.patient_spread and physiology is None:
            physiology = sample_patient(params.patient, self.patient_spread, draws.patient_u)
        patient_params = self._patient_params(physiology, params)
        pat = self.model.admit(patient_params, volume, vaso_dose, draws, self.dtype)
        sofa = sofa_score(pat.map_mmhg, pat.vaso_dose, pat.urine, pat.lactate)
        zero = jnp.zeros((), self.dtype)
        state = EnvState(
            patient=pat,
            total_fluid_ml=zero,
            hours_on_vasopressors=zero,
            antibiotic_active=jnp.asarray(False),
            sofa=sofa,
            time=jnp.asarray(0, jnp.int32),
            physiology=physiology,
        )
        return self.get_obs(state), state

    def _transition(
        self, state: EnvState, action: jax.Array, params: P, draws: Draws
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        treatment, antibiotic_active = self._treat(state, self.clip_action(action), params)
        patient_params = self._patient(state, params)
        pat = self.model.advance(
            state.patient,
            patient_params,
            make_integrator(self.solver, self.model.vector_field),
            treatment,
            draws,
        )
        on_vasopressors = jnp.where(treatment.vaso_dose > 0.0, patient_params.dt, 0.0)
        new_state = EnvState(
            patient=pat,
            total_fluid_ml=state.total_fluid_ml + treatment.fluid_ml,
            hours_on_vasopressors=(state.hours_on_vasopressors + on_vasopressors).astype(
                self.dtype
            ),
            antibiotic_active=antibiotic_active,
            sofa=sofa_score(pat.map_mmhg, pat.vaso_dose, pat.urine, pat.lactate),
            time=state.time + 1,
            physiology=state.physiology,
        )
        terminated = self.is_terminated(new_state, params)
        reward = self._reward(state, new_state, params)
        smoothing = self.reward_smoothing
        if smoothing is None:
            reward = jnp.where(terminated, reward - DEATH_PENALTY, reward)
        else:  # the penalty in proportion to a logistic step in damage, on every step
            damage = new_state.patient.damage
            reward = reward - DEATH_PENALTY * step_up(damage, DEATH_DAMAGE, smoothing.damage)
        reward = reward.astype(self.dtype)
        obs, new_state = self._apply_transition_gradient_policy(self.get_obs(new_state), new_state)
        return obs, new_state, reward, terminated, self.info(new_state)

    def clip_action(self, action: jax.Array) -> jax.Array:
        """The action clipped to its bounds, as the reference clips it, in the state dtype.

        Each component is clipped in the action's own float dtype (a float32 action at the
        upper dose bound gives float32(0.1), as numpy 2 gives the reference), then cast. An
        integer action is cast first. NaN or +-inf components become 0 (no intervention).

        Raises ``ValueError`` for an action that does not hold ``num_actions`` values.
        """
        action = jnp.asarray(action)
        if action.size != self.num_actions:
            raise ValueError(
                f"{self.env_id} expects an action of shape ({self.num_actions},), "
                f"got shape {action.shape}"
            )
        action = jnp.reshape(action, (self.num_actions,))
        if not jnp.issubdtype(action.dtype, jnp.floating):
            action = action.astype(self.dtype)
        low = jnp.asarray(self.action_low, action.dtype)
        high = jnp.asarray(self.action_high, action.dtype)
        clipped = jnp.clip(action, low, high).astype(self.dtype)
        return jnp.where(jnp.isfinite(action), clipped, 0.0)

    # --- hooks for the tasks ----------------------------------------------------------------

    def _admission_treatment(self, params: P) -> tuple[jax.Array, jax.Array]:
        """Excess volume (L) and vasopressor dose at admission."""
        raise NotImplementedError

    def _treat(self, state: EnvState, action: jax.Array, params: P) -> tuple[Treatment, jax.Array]:
        """Turn a clipped action into this hour's treatment and whether the antibiotic is
        running from this hour on."""
        raise NotImplementedError

    def _reward(self, prev: EnvState, state: EnvState, params: P) -> jax.Array:
        """Reward of the step before the death penalty."""
        raise NotImplementedError
