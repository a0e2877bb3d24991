"""The action components of the tasks, each declared once: name, label, unit, bounds, kind.

A task lists its components in action order (:attr:`SepsisEnv.actions`); its action space,
the labels of figures, the planner's treatment of each component and counterfactual schedules
all read these declarations. A *switch* is a one-time decision (the antibiotic): it acts from
the first hour its value exceeds :data:`SWITCH_THRESHOLD` and stays on; gradients do not pass
it, so the planner enumerates the hour it is switched on instead of ascending it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

MAX_FLUID_ML = 1000.0  # largest bolus per step, mL (sepsisim 0.1.0)
MAX_DOSE = 2.0  # largest dose, mcg/kg/min of norepinephrine base (sepsisim 0.1.0)
MAX_DOSE_CHANGE = 0.1  # largest dose change per step, mcg/kg/min (sepsisim 0.1.0)
SWITCH_THRESHOLD = 0.5  # a switch action above this switches it on (sepsisim 0.1.0)


@dataclasses.dataclass(frozen=True)
class ActionComponent:
    """One component of a task's action vector."""

    name: str
    label: str
    unit: str
    low: float
    high: float
    switch: bool = False  # a one-time switch, on from the first value above SWITCH_THRESHOLD

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


FLUID_BOLUS = ActionComponent("fluid_bolus", "fluid bolus", "mL", 0.0, MAX_FLUID_ML)
DOSE_CHANGE = ActionComponent(
    "dose_change", "vasopressor dose change", "mcg/kg/min", -MAX_DOSE_CHANGE, MAX_DOSE_CHANGE
)
ANTIBIOTIC = ActionComponent("antibiotic", "antibiotic", "given > 0.5", 0.0, 1.0, switch=True)


def action_bounds(components: tuple[ActionComponent, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Float32 ``(low, high)`` vectors of ``components``, in order."""
    low = np.array([c.low for c in components], np.float32)
    high = np.array([c.high for c in components], np.float32)
    return low, high


def component_index(components: tuple[ActionComponent, ...], name: str) -> int:
    """Position of the component ``name``; ``ValueError`` naming the declared ones."""
    names = [c.name for c in components]
    if name not in names:
        raise ValueError(f"no action component {name!r}; this task's components: {names}")
    return names.index(name)
