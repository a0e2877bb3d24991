"""The -v1 environments: the v0 tasks, unchanged, on the coupled Reynolds 2006 patient.

Same actions, rewards and observation layout as v0, over 96 one-hour steps instead of 72 (the
patient model's ``episode_steps``: long enough for an untreated patient's fate to show within
the episode); the patient is
:data:`~sepsisim_jax.physiology.models.REYNOLDS_COUPLED` (``docs/physiology.md``), whose
pathogen ``P`` appears where v0 shows bacteria and whose damage ``0.9 D / D_lethal`` appears
where v0 shows tissue damage. Severity tiers are points of Pulse's severity tables in
``(P0, k_pg)``.
"""

from __future__ import annotations

from sepsisim_jax.envs.fluid_resuscitation import FluidResuscitation
from sepsisim_jax.envs.sepsis_management import SepsisManagement
from sepsisim_jax.envs.vasopressor_titration import VasopressorTitration
from sepsisim_jax.physiology.models import REYNOLDS_COUPLED


class FluidResuscitationV1(FluidResuscitation):
    """Fluid resuscitation of a coupled Reynolds 2006 patient."""

    env_id = "FluidResuscitation-v1"
    model = REYNOLDS_COUPLED


class VasopressorTitrationV1(VasopressorTitration):
    """Vasopressor titration of a coupled Reynolds 2006 patient."""

    env_id = "VasopressorTitration-v1"
    model = REYNOLDS_COUPLED


class SepsisManagementV1(SepsisManagement):
    """Fluids, vasopressors and antibiotic timing for a coupled Reynolds 2006 patient."""

    env_id = "SepsisManagement-v1"
    model = REYNOLDS_COUPLED
