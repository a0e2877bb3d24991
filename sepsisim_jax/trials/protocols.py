"""Treatment protocols: parametrised, jittable policies that read the observation by name.

A :class:`Protocol` holds the numbers of a bedside protocol (when the antibiotic is given,
how much fluid over how many hours and for whom, the MAP target band norepinephrine is
titrated to, when vasopressors may start). :meth:`Protocol.policy` turns it into a policy for
one environment: a pytree whose numbers are traced, so every protocol arm of a trial runs
through one compiled program. It sets only the action components the environment's task
declares (:attr:`~sepsisim_jax.envs.base.SepsisEnv.actions`) and reads the features it needs
by name; a protocol that needs a feature the environment does not observe raises
``ValueError`` when the policy is built.

:func:`usual_care` is the Surviving Sepsis Campaign 2021 adult guideline (Evans et al., Crit
Care Med 2021;49:e1063) as far as these tasks express it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sepsisim_jax.envs.actions import MAX_DOSE_CHANGE, MAX_FLUID_ML
from sepsisim_jax.envs.base import SepsisEnv

HOURS = "step"  # the feature that counts the hours since admission


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The settings of a protocol (all in the units of the observation and the action).

    Hours count from admission (hour 0 is the first action). Each hour the protocol:

    - gives the antibiotic from hour ``antibiotic_hour`` on (``inf``: never);
    - during the first ``bolus_hours`` hours, while MAP < ``trigger_map`` or lactate >=
      ``trigger_lactate``, gives ``bolus_ml_per_kg`` x ``weight_kg`` spread evenly over those
      hours (at most the task's largest bolus per hour); otherwise ``maintenance_ml_per_h``;
    - from hour ``vasopressor_hour`` on, raises norepinephrine by ``titration_step`` while MAP
      is below ``map_target`` and lowers it by as much while MAP is above ``map_target +
      map_band`` and a dose is running.

    A protocol reads the current observation only: a patient who stops meeting the bolus
    trigger stops receiving boluses (reassessment each hour), which is what makes it a
    policy of the observation rather than a fixed schedule.
    """

    antibiotic_hour: float = 0.0
    bolus_ml_per_kg: float = 30.0
    bolus_hours: float = 3.0
    trigger_map: float = 65.0  # mmHg
    trigger_lactate: float = 4.0  # mmol/L
    maintenance_ml_per_h: float = 0.0
    weight_kg: float = 70.0  # modelling assumption: the models have no body weight
    map_target: float = 65.0  # mmHg
    map_band: float = 10.0  # mmHg above the target before the dose is lowered
    titration_step: float = 0.05  # mcg/kg/min per hour
    vasopressor_hour: float = 0.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"Protocol.{field.name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"Protocol.{field.name} must be >= 0, got {value!r}")
        for name in ("bolus_hours", "weight_kg"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) == 0:
                raise ValueError(f"Protocol.{name} must be a positive finite number")
        if self.titration_step > MAX_DOSE_CHANGE:
            raise ValueError(
                f"Protocol.titration_step must be at most the task's largest dose change "
                f"{MAX_DOSE_CHANGE} mcg/kg/min per hour, got {self.titration_step!r}"
            )

    def replace(self, **changes: float) -> Protocol:
        """A copy with ``changes`` (checked like a new protocol)."""
        return dataclasses.replace(self, **changes)

    def policy(self, env: SepsisEnv) -> ProtocolPolicy:
        """This protocol as a policy of ``env`` (``ValueError`` if it needs an unobserved
        feature: the hours since admission for timed steps, MAP and lactate for the bolus
        trigger and the titration, the running dose for lowering it)."""
        components = tuple(c.name for c in env.actions)
        needs = set()
        if "antibiotic" in components and math.isfinite(self.antibiotic_hour):
            needs.add(HOURS)
        if "fluid_bolus" in components:
            needs |= {HOURS, "map_mmhg", "lactate"}
        if "dose_change" in components:
            needs |= {"map_mmhg", "vasopressor_dose"}
            needs |= {HOURS} if self.vasopressor_hour > 0 else set()
        missing = sorted(needs - set(env.observation_names))
        if missing:
            raise ValueError(
                f"this protocol needs {missing} observed, and {env.env_id} (observation "
                f"{env.observation!r}) observes {list(env.observation_names)}"
            )
        index = {name: env.observation_index(name) for name in needs}
        fields = dataclasses.fields(Protocol)
        settings = {f.name: np.asarray(getattr(self, f.name), np.float32) for f in fields}
        return ProtocolPolicy(settings, tuple(sorted(index.items())), components)


@struct.dataclass(eq=False)
class ProtocolPolicy:
    """A :class:`Protocol` bound to an environment: ``policy(key, obs, params) -> action``.
    The settings are pytree leaves (traced where the cohort functions take a policy as a
    pytree); the observation layout and the action components are static. Hashed by identity,
    like a PPO policy, where a function takes the policy as a static argument."""

    settings: dict[str, Any]
    index: tuple[tuple[str, int], ...] = struct.field(pytree_node=False)
    components: tuple[str, ...] = struct.field(pytree_node=False)

    def __call__(self, key: jax.Array, obs: jax.Array, params: Any) -> jax.Array:
        del key, params
        s = self.settings
        obs = jnp.asarray(obs, jnp.float32)
        read = {name: obs[i] for name, i in self.index}
        hour = read.get(HOURS, jnp.float32(0.0))
        values = {}
        if "antibiotic" in self.components:
            values["antibiotic"] = (hour >= s["antibiotic_hour"]).astype(jnp.float32)
        if "fluid_bolus" in self.components:
            triggered = (read["map_mmhg"] < s["trigger_map"]) | (
                read["lactate"] >= s["trigger_lactate"]
            )
            per_hour = s["bolus_ml_per_kg"] * s["weight_kg"] / s["bolus_hours"]
            bolus = jnp.minimum(per_hour, MAX_FLUID_ML)
            early = hour < s["bolus_hours"]
            values["fluid_bolus"] = jnp.where(
                early & triggered, bolus, jnp.minimum(s["maintenance_ml_per_h"], MAX_FLUID_ML)
            )
        if "dose_change" in self.components:
            pressure = read["map_mmhg"]
            allowed = hour >= s["vasopressor_hour"]
            up = allowed & (pressure < s["map_target"])
            down = (pressure > s["map_target"] + s["map_band"]) & (read["vasopressor_dose"] > 0)
            step = s["titration_step"]
            values["dose_change"] = jnp.where(up, step, jnp.where(down, -step, 0.0))
        return jnp.stack([jnp.asarray(values[c], jnp.float32) for c in self.components])


def usual_care() -> Protocol:
    """Surviving Sepsis Campaign 2021 (Evans et al. 2021), adults with sepsis or septic shock:
    antibiotics within one hour of recognition (here: in the first hour, hour 0); 30 mL/kg of
    crystalloid within the first 3 hours for hypotension or lactate >= 4 mmol/L; norepinephrine
    first-line, titrated to an initial MAP target of 65 mmHg (here: raised 0.05 mcg/kg/min per
    hour while MAP < 65, lowered above 75). Body weight 70 kg is an assumption."""
    return Protocol()
