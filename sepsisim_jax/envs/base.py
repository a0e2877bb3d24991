"""The shared sepsis environment: one patient, one-hour steps, gymnax's functional interface.

The three environments differ only in what the action controls, the reward and the
observation; :class:`SepsisEnv` owns everything else: admission, the physiology step, death
(tissue damage >= 0.9, reward - 50), truncation after ``max_steps_in_episode`` steps and
auto-reset.

``step`` overrides gymnax's default to stay cheap under ``vmap``: all random numbers of a step
come from one draw, and the admission used on auto-reset is built from that same draw instead
of a second ``reset_env`` with its own key splits. The contract is gymnax 1.0's:
``obs, state, reward, terminated, truncated, info`` with ``info["final_observation"]``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from sepsisim_jax.physiology import patient
from sepsisim_jax.physiology.parameters import validate_params
from sepsisim_jax.physiology.patient import Draws, PatientParams, PatientState
from sepsisim_jax.physiology.sofa import sofa_score
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator

DEATH_DAMAGE = 0.9  # tissue damage at which the patient dies (episode terminates)
DEATH_PENALTY = 50.0
SEVERITIES = ("easy", "medium", "hard")


@struct.dataclass
class EnvState(environment.EnvState):
    """Patient physiology plus the treatment history the rewards and observations need."""

    patient: PatientState
    total_fluid_ml: jax.Array
    hours_on_vasopressors: jax.Array
    antibiotic_active: jax.Array  # bool
    sofa: jax.Array  # int32, simplified SOFA of the current physiology
    time: jax.Array  # int32, steps taken in this episode


@struct.dataclass
class Treatment:
    """What this hour's action does: fluid given, resulting dose, antibiotic status."""

    fluid_ml: jax.Array
    vaso_dose: jax.Array
    antibiotic_active: jax.Array
    antibiotic_efficacy: jax.Array
    hours_on_vasopressors: jax.Array


P = TypeVar("P", bound=environment.EnvParams)


class SepsisEnv(environment.Environment[EnvState, P], Generic[P]):
    """Base class: subclasses set the class constants and the four hooks at the bottom."""

    _supports_transition_gradients = True

    env_id: ClassVar[str]
    severity_bacteria: ClassVar[dict[str, float]]  # initial bacterial load per severity
    obs_low: ClassVar[np.ndarray]
    obs_high: ClassVar[np.ndarray]
    action_low: ClassVar[np.ndarray]
    action_high: ClassVar[np.ndarray]
    info_keys: ClassVar[tuple[str, ...]]
    sofa_index: ClassVar[int]  # position of the SOFA score in the observation

    def __init__(self, severity: str = "medium", solver: SolverConfig | str = "rk4") -> None:
        super().__init__()
        if severity not in self.severity_bacteria:
            raise ValueError(
                f"unknown severity {severity!r} for {self.env_id}; "
                f"valid severities: {list(self.severity_bacteria)}"
            )
        if isinstance(solver, str):
            solver = SolverConfig(name=solver)  # type: ignore[arg-type]
        if not isinstance(solver, SolverConfig):
            raise TypeError(f"solver must be a SolverConfig or a name, got {solver!r}")
        self.severity = severity
        self.solver = solver
        self._integrate = make_integrator(solver)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(severity={self.severity!r}, solver={self.solver!r})"

    def _static_key(self) -> tuple:
        return (type(self), self.severity, self.solver, self.transition_gradients_enabled)

    def __eq__(self, other: object) -> bool:
        """Equal configuration means equal behaviour, so jitted functions are shared."""
        return isinstance(other, SepsisEnv) and self._static_key() == other._static_key()

    def __hash__(self) -> int:
        return hash(self._static_key())

    # --- gymnax interface -------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.env_id

    @property
    def num_actions(self) -> int:
        return len(self.action_low)

    @property
    def dtype(self) -> jnp.dtype:
        """Float dtype of the state: float32, or float64 under ``jax_enable_x64``."""
        return jax.dtypes.canonicalize_dtype(jnp.float64)

    def patient_params(self) -> PatientParams:
        return PatientParams(initial_bacteria=self.severity_bacteria[self.severity])

    def action_space(self, params: P | None = None) -> spaces.Box:
        """The reference's action bounds; actions outside are clipped."""
        return spaces.Box(
            jnp.asarray(self.action_low), jnp.asarray(self.action_high), self.action_low.shape
        )

    def observation_space(self, params: P | None = None) -> spaces.Box:
        """The reference's observation bounds (float32)."""
        return spaces.Box(jnp.asarray(self.obs_low), jnp.asarray(self.obs_high), self.obs_low.shape)

    @partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: EnvState,
        action: jax.Array,
        params: P | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """One step with auto-reset; returns ``obs, state, reward, terminated, truncated, info``."""
        if params is None:
            params = self.default_params
        draws = patient.draw(key, self.dtype)
        obs_st, state_st, reward, terminated, info = self._transition(state, action, params, draws)
        truncated = self.is_truncated(state_st, params)
        done = jnp.logical_or(terminated, truncated)
        obs_re, state_re = self._admit(params, draws)
        state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
        obs = jax.lax.select(done, obs_re, obs_st)
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
        return self._transition(state, action, params, patient.draw(key, self.dtype))

    def reset_env(self, key: jax.Array, params: P) -> tuple[jax.Array, EnvState]:
        """Admit a new patient; the same key admits the same patient as an auto-reset with it."""
        return self._admit(params, patient.draw(key, self.dtype))

    def is_terminated(self, state: EnvState, params: P) -> jax.Array:
        return state.patient.inflammation.damage >= DEATH_DAMAGE

    def observe(self, key: jax.Array, state: EnvState, action: Any, params: P) -> jax.Array:
        del key, action, params
        return self._observation(state)

    def get_obs(self, state: EnvState, params: P | None = None, key: Any = None) -> jax.Array:
        return self._observation(state)

    def validate(self, params: P) -> None:
        """Raise ``ValueError`` if any parameter is outside its declared range."""
        validate_params(params)

    # --- shared dynamics --------------------------------------------------------------------

    def _admit(self, params: P, draws: Draws) -> tuple[jax.Array, EnvState]:
        volume, vaso_dose = self._admission_treatment(params)
        pat = patient.admit(params.patient, volume, vaso_dose, draws, self.dtype)
        sofa = sofa_score(pat.map_mmhg, pat.vaso_dose, pat.urine, pat.lactate)
        zero = jnp.zeros((), self.dtype)
        state = EnvState(
            patient=pat,
            total_fluid_ml=zero,
            hours_on_vasopressors=zero,
            antibiotic_active=jnp.asarray(False),
            sofa=sofa,
            time=jnp.asarray(0, jnp.int32),
        )
        return self._observation(state), state

    def _transition(
        self, state: EnvState, action: jax.Array, params: P, draws: Draws
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        action = self._sanitize(action)
        treat = self._treat(state, action, params)
        pat = patient.advance(
            state.patient,
            params.patient,
            self._integrate,
            treat.fluid_ml,
            treat.vaso_dose,
            treat.antibiotic_efficacy,
            draws,
        )
        sofa = sofa_score(pat.map_mmhg, pat.vaso_dose, pat.urine, pat.lactate)
        new_state = EnvState(
            patient=pat,
            total_fluid_ml=state.total_fluid_ml + treat.fluid_ml,
            hours_on_vasopressors=treat.hours_on_vasopressors,
            antibiotic_active=treat.antibiotic_active,
            sofa=sofa,
            time=state.time + 1,
        )
        terminated = self.is_terminated(new_state, params)
        reward = self._reward(state, new_state, params)
        reward = jnp.where(terminated, reward - DEATH_PENALTY, reward).astype(self.dtype)
        obs, new_state = self._apply_transition_gradient_policy(
            self._observation(new_state), new_state
        )
        return obs, new_state, reward, terminated, self._info(new_state)

    def _sanitize(self, action: jax.Array) -> jax.Array:
        """Reshape to the action shape; NaN or +-inf components become 0 (no intervention)."""
        action = jnp.asarray(action)
        if action.size != self.num_actions:
            raise ValueError(
                f"{self.env_id} expects an action of shape ({self.num_actions},), "
                f"got shape {action.shape}"
            )
        action = jnp.reshape(action, (self.num_actions,)).astype(self.dtype)
        return jnp.where(jnp.isfinite(action), action, 0.0)

    def _info(self, state: EnvState) -> dict[str, jax.Array]:
        pat = state.patient
        values = {
            "map_mmhg": pat.map_mmhg,
            "lactate": pat.lactate,
            "urine_output": pat.urine,
            "tissue_damage": pat.inflammation.damage,
            "bacteria": pat.inflammation.bacteria,
            "vasopressor_dose": pat.vaso_dose,
            "hours_on_vasopressors": state.hours_on_vasopressors,
            "total_fluid_ml": state.total_fluid_ml,
            "intravascular_volume": pat.volume,
            "antibiotic_active": state.antibiotic_active,
            "step": state.time,
        }
        return {key: values[key] for key in self.info_keys}

    # --- hooks for the concrete environments ------------------------------------------------

    def _admission_treatment(self, params: P) -> tuple[jax.Array, jax.Array]:
        """Excess volume (L) and vasopressor dose at admission."""
        raise NotImplementedError

    def _treat(self, state: EnvState, action: jax.Array, params: P) -> Treatment:
        """Turn a sanitized action into this hour's treatment (clipping to the bounds)."""
        raise NotImplementedError

    def _reward(self, prev: EnvState, state: EnvState, params: P) -> jax.Array:
        """Reward of the step before the death penalty."""
        raise NotImplementedError

    def _observation(self, state: EnvState) -> jax.Array:
        """Float32 observation vector in the reference's order."""
        raise NotImplementedError


def lactate_reward(lactate: jax.Array) -> jax.Array:
    """+1 below 2 mmol/L, -0.5 per mmol/L above 4, shared by all three rewards."""
    return jnp.where(lactate < 2.0, 1.0, jnp.where(lactate > 4.0, -0.5 * (lactate - 4.0), 0.0))


def excess(value: jax.Array, threshold: float) -> jax.Array:
    """``max(value - threshold, 0)``: the amount by which a penalised threshold is exceeded."""
    return jnp.maximum(value - threshold, 0.0)


def as_float32_obs(*values: jax.Array) -> jax.Array:
    """Stack scalar values into a float32 observation vector."""
    return jnp.stack([jnp.asarray(v, jnp.float32) for v in values])
