"""Shared fixtures: the reference simulator with its randomness switched off."""

from __future__ import annotations

import jax
import numpy as np
import pytest

# Catch accidental rank promotion (a (3,) action meeting a (3, 1) array, say) as an error.
jax.config.update("jax_numpy_rank_promotion", "raise")


class MidpointGenerator:
    """A ``numpy.random.Generator`` stand-in: ``normal`` gives its mean, ``uniform`` its centre."""

    def __init__(self, seed: object = None) -> None:
        del seed

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: object = None) -> float:
        return loc

    def uniform(self, low: float = 0.0, high: float = 1.0, size: object = None) -> float:
        return (low + high) / 2


@pytest.fixture
def noiseless_reference(monkeypatch: pytest.MonkeyPatch):
    """Factory of reference envs (unwrapped) whose random draws are replaced by their centres."""
    import gymnasium as gym
    import sepsisim  # noqa: F401  (registers the reference ids)

    monkeypatch.setattr(np.random, "default_rng", MidpointGenerator)

    def make_reference(env_id: str, severity: str, **options):
        return gym.make(f"sepsisim/{env_id}", severity=severity, **options).unwrapped

    return make_reference


NOISELESS = {"map_noise_sd": 0.0, "urine_noise_sd": 0.0, "admission_jitter": 0.0}
