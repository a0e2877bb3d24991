"""Baseline policies: the heuristic equals the reference agent's; both jit inside vmapped scans."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.policies import heuristic_policy, random_policy


def _observations(env, n: int, seed: int) -> np.ndarray:
    """Uniform observations in the space, plus ones sitting on each heuristic threshold."""
    rng = np.random.Generator(np.random.PCG64(seed))
    space = env.observation_space(env.default_params)
    low, high = np.asarray(space.low), np.asarray(space.high)
    obs = rng.uniform(low, high, size=(n, low.size)).astype(np.float32)
    on_edges = obs[: 4 * 64].copy()
    on_edges[:, env.observation_index("map_mmhg")] = np.repeat(np.float32([65, 70, 80, 85]), 64)
    obs = np.concatenate([obs, on_edges])
    names = env.observation_names
    if "antibiotic_active" in names:  # a flag: 0 or 1
        obs[:, names.index("antibiotic_active")] = rng.integers(0, 2, len(obs))
    if "intravascular_volume" in names:  # the volume thresholds
        volume = names.index("intravascular_volume")
        obs[::5, volume] = rng.choice(np.float32([2.0, 3.5, 4.0]), len(obs[::5]))
    if "vasopressor_dose" in names:
        obs[::7, names.index("vasopressor_dose")] = 0.0
    return obs


@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_heuristic_equals_reference_agent(env_id, noiseless_reference):
    from sepsisim.agents.heuristic_agent import HeuristicAgent

    env, params = sepsisim_jax.make(env_id)
    agent = HeuristicAgent(noiseless_reference(env_id, "medium"))
    obs = _observations(env, 3000, seed=4)
    ours = jax.jit(jax.vmap(heuristic_policy(env), in_axes=(None, 0, None)))(None, obs, params)
    expected = np.stack([agent.predict(o)[0] for o in obs])
    np.testing.assert_array_equal(np.asarray(ours), expected)
    assert ours.dtype == jnp.float32


@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_random_policy_is_uniform_in_the_action_space(env_id):
    env, params = sepsisim_jax.make(env_id)
    keys = jax.random.split(jax.random.key(0), 20_000)
    actions = np.asarray(jax.vmap(random_policy(env), in_axes=(0, None, None))(keys, None, params))
    assert actions.shape == (20_000, env.num_actions)
    assert np.all(actions >= env.action_low) and np.all(actions <= env.action_high)
    np.testing.assert_allclose(
        actions.mean(0), (env.action_low + env.action_high) / 2, atol=0.02 * env.action_high.max()
    )
