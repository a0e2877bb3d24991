"""Policies with a density: samples follow the stated law, densities integrate to one, and the
likelihood ratio handles point masses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import stochastic
from sepsisim_jax.policies import heuristic_policy

N = 20_000


@pytest.fixture(scope="module")
def fluid():
    env, params = sepsisim_jax.make("FluidResuscitation-v0")
    return env, params, heuristic_policy(env)


def _obs(env, map_mmhg: float, volume: float) -> jax.Array:
    obs = np.zeros(len(env.observation_names), np.float32)
    obs[env.observation_index("map_mmhg")] = map_mmhg
    obs[env.observation_index("intravascular_volume")] = volume
    return jnp.asarray(obs)


def _draw(policy, obs, params, n=N):
    keys = jax.random.split(jax.random.key(3), n)
    actions = jax.vmap(policy, in_axes=(0, None, None))(keys, obs, params)
    log_p, atom = jax.vmap(policy.log_prob, in_axes=(None, 0, None))(obs, actions, params)
    return np.asarray(actions[:, 0], np.float64), np.asarray(log_p), np.asarray(atom)


# MAP 60 mmHg: the heuristic gives 750 mL (inside the box); volume 4 L: 0 mL (on its edge).
@pytest.mark.parametrize(("map_mmhg", "volume", "mean"), [(60.0, 2.0, 750.0), (60.0, 4.0, 0.0)])
def test_the_gaussian_density_integrates_to_one_and_its_samples_follow_it(
    fluid, map_mmhg, volume, mean
):
    env, params, heuristic = fluid
    policy = stochastic.gaussian(env, heuristic, 0.1, "heuristic")
    obs = _obs(env, map_mmhg, volume)
    low, high = float(env.action_low[0]), float(env.action_high[0])
    grid = np.linspace(low, high, 20_001)
    log_p, atom = jax.vmap(policy.log_prob, in_axes=(None, 0, None))(
        obs, jnp.asarray(grid[:, None], jnp.float32), params
    )
    density = np.exp(np.asarray(log_p, np.float64))
    assert not np.any(atom)
    np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, rtol=1e-4)
    assert grid[np.argmax(density)] == pytest.approx(mean, abs=0.1)

    actions, sample_log_p, _ = _draw(policy, obs, params)
    assert np.all((actions >= low) & (actions <= high)) and np.all(np.isfinite(sample_log_p))
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
    empirical = np.searchsorted(np.sort(actions), grid, side="right") / N
    assert np.max(np.abs(empirical - cdf)) < 1.6 / np.sqrt(N)  # Kolmogorov-Smirnov, p ~ 0.01


def test_the_epsilon_policy_is_a_point_mass_plus_a_uniform_density(fluid):
    env, params, heuristic = fluid
    epsilon = 0.3
    policy = stochastic.epsilon_greedy(env, heuristic, epsilon, "heuristic")
    actions, log_p, atom = _draw(policy, _obs(env, 68.0, 2.0), params)  # heuristic: 500 mL
    width = float(env.action_high[0] - env.action_low[0])
    np.testing.assert_array_equal(atom, actions == 500.0)
    assert abs(atom.mean() - (1 - epsilon)) < 4 * np.sqrt(epsilon * (1 - epsilon) / N)
    np.testing.assert_allclose(log_p[atom], np.log(1 - epsilon), rtol=1e-6)
    np.testing.assert_allclose(log_p[~atom], np.log(epsilon / width), rtol=1e-6)
    explored = actions[~atom]
    assert abs(explored.mean() - width / 2) < 4 * width / np.sqrt(12 * explored.size)


def test_uniform_and_deterministic_densities(fluid):
    env, params, heuristic = fluid
    obs = _obs(env, 60.0, 2.0)
    width = float(env.action_high[0] - env.action_low[0])
    uniform = stochastic.uniform(env)
    for action, expected in ((10.0, -np.log(width)), (-1.0, -np.inf), (width + 1, -np.inf)):
        log_p, atom = uniform.log_prob(obs, jnp.array([action]), params)
        assert float(log_p) == pytest.approx(expected, rel=1e-6) and not bool(atom)
    fixed = stochastic.deterministic(env, heuristic, "heuristic")
    assert float(fixed(jax.random.key(0), obs, params)[0]) == 750.0
    assert tuple(map(float, fixed.log_prob(obs, jnp.array([750.0]), params))) == (0.0, 1.0)
    assert float(fixed.log_prob(obs, jnp.array([749.0]), params)[0]) == -np.inf
    assert fixed.has_atoms and not uniform.has_atoms


def test_the_likelihood_ratio_of_masses_and_densities():
    mass, density = jnp.asarray(True), jnp.asarray(False)
    log = jnp.log
    cases = [
        ((log(0.9), mass), (log(0.6), mass), 1.5),  # both point masses: ratio of masses
        ((log(0.2), density), (log(0.4), density), 0.5),  # both densities
        ((log(0.2), density), (log(0.6), mass), 0.0),  # no target mass at a behaviour atom
        ((log(0.9), mass), (log(0.4), density), np.inf),  # undefined: check_support's case
        ((-jnp.inf, density), (log(0.4), density), 0.0),
    ]
    for target, behaviour, expected in cases:
        assert float(stochastic.likelihood_ratio(target, behaviour)) == pytest.approx(expected)


def test_support_and_bad_arguments(fluid):
    env, _, heuristic = fluid
    gaussian = stochastic.gaussian(env, heuristic, 0.1, "heuristic")
    greedy = stochastic.deterministic(env, heuristic, "heuristic")
    with pytest.raises(ValueError, match="point masses"):
        stochastic.check_support(greedy, gaussian)
    stochastic.check_support(greedy, stochastic.epsilon_greedy(env, heuristic, 0.1))
    stochastic.check_support(gaussian, greedy)  # a density over atoms: weights 0, defined
    with pytest.raises(ValueError, match="epsilon must be a number in"):
        stochastic.epsilon_greedy(env, heuristic, 1.5)
    for scale in (0.0, -0.1, [0.1, 0.2]):
        with pytest.raises(ValueError, match="scale must be"):
            stochastic.gaussian(env, heuristic, scale)
    with pytest.raises(TypeError, match="base must be"):
        stochastic.gaussian(env, "heuristic", 0.1)
    with pytest.raises(TypeError, match="env must be"):
        stochastic.uniform("FluidResuscitation-v0")
