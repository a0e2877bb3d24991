"""The random numbers every patient model draws: step noise, admission jitter, virtual patients.

One ``jax.random.uniform`` call per environment step yields all six numbers a step can need
(two noise draws for the step, four for a possible auto-reset admission), so a vmapped batch
pays a single threefry evaluation per patient and step. A virtual patient's parameters take
the uniforms after those six in the same draw; with JAX's partitionable threefry each
uniform depends only on the key and its position, so a step may draw its six alone and
leave the patient's to the patients it admits (:func:`patient_uniforms`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sepsisim_jax.physiology.parameters import param

_REFERENCE = "sepsisim 0.1.0"


@struct.dataclass
class NoiseParams:
    """Measurement and admission variability; all zero gives a deterministic simulator."""

    map_noise_sd: float = param(
        2.0, 0.0, 10.0, "mmHg", _REFERENCE + ", N(0, 2) per step", per_patient=False
    )
    urine_noise_sd: float = param(
        0.05, 0.0, 0.5, "mL/kg/h", _REFERENCE + ", N(0, 0.05)", per_patient=False
    )
    admission_jitter: float = param(
        0.2,
        0.0,
        0.5,
        "fraction",
        _REFERENCE + ", bacteria and lactate times U(0.8, 1.2)",
        per_patient=False,
    )


@struct.dataclass
class Draws:
    """Standard random numbers for one step: step noise and a possible admission."""

    map_z: jax.Array  # N(0, 1), MAP noise of the step
    urine_z: jax.Array  # N(0, 1), urine noise of the step
    admission_map_z: jax.Array
    admission_urine_z: jax.Array
    bacteria_u: jax.Array  # U(-1, 1), admission bacteria multiplier
    lactate_u: jax.Array  # U(-1, 1), admission lactate multiplier
    patient_u: jax.Array | None = None  # U(0, 1), one per drawn parameter (virtual patients)


STEP_DRAWS = 6  # uniforms of a step: four normals and the two admission jitters


def draw(key: jax.Array, dtype: jnp.dtype, n_patient: int = 0) -> Draws:
    """All random numbers of one step from a single uniform draw (normals via erfinv), plus
    ``n_patient`` uniforms in (0, 1) for a virtual patient's parameters."""
    u = _uniforms(key, dtype, STEP_DRAWS + n_patient)
    z = np.sqrt(2.0).astype(dtype) * jax.lax.erf_inv(u[:4])
    patient_u = _unit_interval(u[STEP_DRAWS:]) if n_patient else None
    return Draws(z[0], z[1], z[2], z[3], u[4], u[5], patient_u)


def patient_uniforms(key: jax.Array, dtype: jnp.dtype, n_patient: int) -> jax.Array:
    """``draw(key, dtype, n_patient).patient_u`` alone: the same numbers, from the same draw."""
    return _unit_interval(_uniforms(key, dtype, STEP_DRAWS + n_patient)[STEP_DRAWS:])


def draws_separate_exactly(key: jax.Array) -> bool:
    """Whether ``draw(key, dtype)`` gives the same step numbers as ``draw(key, dtype, n)``.

    True for threefry keys with ``jax_threefry_partitionable`` (JAX's default), whose
    ``i``-th uniform depends on the key and ``i`` only: a step can then draw its own numbers
    and leave the virtual patient's (:func:`patient_uniforms`) to the patients admitted.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl = str(jax.random.key_impl(key))
    else:
        impl = str(jax.config.jax_default_prng_impl)
    return impl == "threefry2x32" and bool(jax.config.jax_threefry_partitionable)


def _uniforms(key: jax.Array, dtype: jnp.dtype, n: int) -> jax.Array:
    """``n`` uniforms in (-1, 1) from one ``jax.random.uniform`` call."""
    low = np.nextafter(np.asarray(-1.0, dtype), np.asarray(0.0, dtype))
    return jax.random.uniform(key, (n,), dtype, minval=low, maxval=1.0)


def _unit_interval(u: jax.Array) -> jax.Array:
    """Uniforms in (-1, 1) mapped to (0, 1)."""
    return 0.5 * (u + 1.0)
