"""What the planner and the patient fit share: Adam on a warm-up and cosine schedule, and
starting points kept inside their bounds."""

from __future__ import annotations

import jax
import optax

BOUND_MARGIN = 1e-3  # a start at a bound begins this fraction of the range inside it
WARMUP_FRACTION = 0.1  # the learning rate rises linearly over this fraction of the steps
FINAL_LR_FRACTION = 0.01  # then decays (cosine) to this fraction of its peak


def adam_scheduled(learning_rate: float | jax.Array, steps: int) -> optax.GradientTransformation:
    """Adam whose step rises linearly over the first :data:`WARMUP_FRACTION` of the ``steps``
    (Adam's first steps are full-size in every coordinate, however small its gradient), then
    decays (cosine) to :data:`FINAL_LR_FRACTION` of ``learning_rate`` (which may be traced)."""
    warmup = max(1, int(WARMUP_FRACTION * steps))
    shape = optax.warmup_cosine_decay_schedule(
        1.0 / warmup, 1.0, warmup, max(steps, warmup + 1), FINAL_LR_FRACTION
    )
    return optax.chain(
        optax.scale_by_adam(), optax.scale_by_schedule(shape), optax.scale(-learning_rate)
    )
