"""Haemodynamics, lactate and SOFA against the reference's functions on many random inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sepsisim.models import sofa as ref_sofa
from sepsisim.models.cardiovascular import CardiovascularModel
from sepsisim.models.lactate import LactateModel

from sepsisim_jax.physiology import cardiovascular, lactate, sofa
from sepsisim_jax.physiology.cardiovascular import CardiovascularParams
from sepsisim_jax.physiology.lactate import LactateParams

N = 2000


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(0))


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def test_mean_arterial_pressure(rng):
    ref = CardiovascularModel()
    damage, volume = rng.uniform(0, 1, N), rng.uniform(-1, 10, N)
    dose, noise = rng.uniform(0, 2, N), rng.normal(0, 20, N)
    ours = cardiovascular.mean_arterial_pressure(
        jnp.asarray(damage),
        jnp.asarray(volume),
        jnp.asarray(dose),
        CardiovascularParams(),
        jnp.asarray(noise),
    )

    class Fixed:  # a generator whose normal() returns this patient's noise
        def __init__(self, value):
            self.value = value

        def normal(self, loc, scale):
            return self.value

    expected = [
        ref.compute_map(*args[:3], Fixed(args[3]))
        for args in zip(damage, volume, dose, noise, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    assert ours.min() >= 20.0 and ours.max() <= 150.0


def test_volume_update_and_urine_output(rng):
    ref = CardiovascularModel()
    volume, fluid = rng.uniform(-1, 10, N), rng.uniform(0, 1000, N)
    ours = cardiovascular.update_volume(
        jnp.asarray(volume), jnp.asarray(fluid), CardiovascularParams(), 1.0
    )
    expected = [ref.update_volume(v, f, 1.0) for v, f in zip(volume, fluid, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    map_mmhg = rng.uniform(20, 150, N)
    urine = cardiovascular.urine_output(jnp.asarray(map_mmhg), 0.0)
    np.testing.assert_allclose(urine, [ref.compute_urine_output(m) for m in map_mmhg], rtol=1e-12)


def test_lactate_step_and_admission(rng):
    ref = LactateModel()
    lac, map_mmhg, damage = rng.uniform(0.1, 30, N), rng.uniform(20, 150, N), rng.uniform(0, 1, N)
    ours = lactate.lactate_step(
        jnp.asarray(lac), jnp.asarray(map_mmhg), jnp.asarray(damage), LactateParams(), 1.0
    )
    expected = [ref.step(*a) for a in zip(lac, map_mmhg, damage, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    severity = rng.uniform(0, 5, N)
    admission = lactate.admission_lactate(LactateParams(), jnp.asarray(severity), 1.0)
    np.testing.assert_allclose(admission, [ref.reset(s) for s in severity], rtol=1e-12)


def test_sofa_components_including_thresholds(rng):
    # Uniform draws plus every threshold itself and its neighbours.
    edges = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 2.0, 4.0, 6.0, 10.0, 70.0])
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    # XLA on CPU flushes subnormals to zero; a dose of 5e-324 is not a clinical question.
    near[np.abs(near) < np.finfo(np.float64).tiny] = 0.0
    map_mmhg = np.concatenate([rng.uniform(20, 150, N), near])
    dose = np.concatenate([rng.choice([0.0, 1.0], N) * rng.uniform(0, 2, N), near])
    urine = np.concatenate([rng.uniform(0, 2, N), near])
    lac = np.concatenate([rng.uniform(0.1, 30, N), near])
    ours = sofa.sofa_score(*(jnp.asarray(x) for x in (map_mmhg, dose, urine, lac)))
    expected = [
        ref_sofa.compute_sofa_score(*a) for a in zip(map_mmhg, dose, urine, lac, strict=True)
    ]
    np.testing.assert_array_equal(ours, expected)
    assert ours.dtype == jnp.int32 and ours.min() >= 0 and ours.max() <= 12
