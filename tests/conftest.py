"""Shared fixtures: the reference simulator with its randomness switched off."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tests.midpoint import MidpointGenerator

# Catch accidental rank promotion (a (3,) action meeting a (3, 1) array, say) as an error.
jax.config.update("jax_numpy_rank_promotion", "raise")


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
