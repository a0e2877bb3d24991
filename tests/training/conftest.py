"""A tiny trained result shared by the policy and checkpoint tests."""

from __future__ import annotations

import pytest

from sepsisim_jax.training import PPOConfig, TrainingResult, train_ppo

TINY_MANAGEMENT = PPOConfig(
    env_id="SepsisManagement-v0",
    total_timesteps=8 * 24,
    num_envs=8,
    num_steps=24,
    num_minibatches=2,
    hidden_sizes=(8,),
)


@pytest.fixture(scope="session")
def trained() -> TrainingResult:
    """Two seeds of one update each: distinct, non-trivial policies."""
    return train_ppo(TINY_MANAGEMENT, n_seeds=2, progress=False)
