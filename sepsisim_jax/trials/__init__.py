"""Layer 3, virtual trials: treatment protocols as policies, and arms compared on the same
virtual patients as a clinical trial reports them.

:mod:`~sepsisim_jax.trials.protocols` holds :class:`Protocol` (parametrised bedside
protocols, jittable, one compiled program for every protocol arm) and :func:`usual_care`;
:mod:`~sepsisim_jax.trials.trial` runs a trial (:func:`run_trial`): inclusion on the
observation at admission or after a run-in, risk differences and ratios with paired bootstrap
intervals, and the secondary outcomes.
"""

from sepsisim_jax.trials.protocols import Protocol, ProtocolPolicy, usual_care
from sepsisim_jax.trials.trial import (
    EVERYONE,
    HYPOTENSIVE,
    SEPSIS3_SHOCK,
    SHOCK_AT_ADMISSION,
    ArmOutcomes,
    Inclusion,
    RunIn,
    TrialResult,
    lactate_above,
    run_trial,
)

__all__ = [
    "EVERYONE",
    "HYPOTENSIVE",
    "SEPSIS3_SHOCK",
    "SHOCK_AT_ADMISSION",
    "ArmOutcomes",
    "Inclusion",
    "Protocol",
    "ProtocolPolicy",
    "RunIn",
    "TrialResult",
    "lactate_above",
    "run_trial",
    "usual_care",
]
