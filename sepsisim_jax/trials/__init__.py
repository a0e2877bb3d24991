"""Layer 3, virtual trials: treatment protocols as policies, and arms compared on the same
virtual patients as a clinical trial reports them.

:mod:`~sepsisim_jax.trials.protocols` holds :class:`Protocol` (parametrised bedside
protocols, jittable, one compiled program for every protocol arm) and :func:`usual_care`;
:mod:`~sepsisim_jax.trials.trial` runs a trial (:func:`run_trial`) with inclusion criteria on
the admission observation, risk differences and ratios with paired bootstrap intervals, and
the secondary outcomes.
"""

from sepsisim_jax.trials.protocols import Protocol, ProtocolPolicy, usual_care
from sepsisim_jax.trials.trial import (
    EVERYONE,
    HYPOTENSIVE,
    SHOCK_AT_ADMISSION,
    ArmOutcomes,
    Inclusion,
    TrialResult,
    lactate_above,
    run_trial,
)

__all__ = [
    "EVERYONE",
    "HYPOTENSIVE",
    "SHOCK_AT_ADMISSION",
    "ArmOutcomes",
    "Inclusion",
    "Protocol",
    "ProtocolPolicy",
    "TrialResult",
    "lactate_above",
    "run_trial",
    "usual_care",
]
