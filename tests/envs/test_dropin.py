"""Drop-in behaviour: the reference's constructor options, copies and pickles, spaces that
follow from the params."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.physiology.parameters import param_specs, replace_params


def test_options_are_validated_clearly():
    with pytest.raises(TypeError, match="takes no option 'antibiotic_given'"):
        sepsisim_jax.make("SepsisManagement-v0", antibiotic_given=False)
    with pytest.raises(TypeError, match="takes no option 'fluid_protocol'"):
        gym.make("sepsisim_jax/FluidResuscitation-v0", fluid_protocol=100.0)
    with pytest.raises(TypeError, match="must be a bool"):
        sepsisim_jax.make("FluidResuscitation-v0", antibiotic_given="no")
    with pytest.raises(ValueError, match="not both"):
        sepsisim_jax.make("FluidResuscitation-v0", antibiotic_given=False, antibiotic_efficacy=0.2)
    with pytest.raises(ValueError, match="fluid_protocol_ml=5000"):
        sepsisim_jax.make("VasopressorTitration-v0", fluid_protocol=5000.0)
    with pytest.raises(ValueError, match="dt=10"):
        sepsisim_jax.make("SepsisManagement-v0", dt=10.0)


def test_options_reach_gym_make_and_make_vec_with_the_reference_meaning():
    _, params = sepsisim_jax.make(
        "VasopressorTitration-v0", antibiotic_given=False, fluid_protocol=400.0, dt=0.5
    )
    assert params.antibiotic_efficacy == 0.0 and params.fluid_protocol_ml == 400.0
    assert params.patient.dt == 0.5
    kwargs = {"antibiotic_given": False, "fluid_protocol": 400.0, "dt": 0.5}
    single = gym.make("sepsisim_jax/VasopressorTitration-v0", **kwargs).unwrapped
    vector = gym.make_vec(
        "sepsisim_jax/VasopressorTitration-v0",
        num_envs=2,
        vectorization_mode="vector_entry_point",
        **kwargs,
    )
    assert single.params == params
    assert vector.params == params.replace(max_steps_in_episode=72)
    _, default = sepsisim_jax.make("FluidResuscitation-v0", antibiotic_given=True)
    assert default.antibiotic_efficacy == 0.5


def _same_step(env, params, other, other_params):
    key = jax.random.key(3)
    _, state = env.reset(key, params)
    action = env.action_space(params).sample(key)
    got = other.step(key, other.reset(key, other_params)[1], action, other_params)
    want = env.step(key, state, action, params)
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(want[0]))
    assert float(got[2]) == float(want[2])


@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_envs_params_and_adapters_deep_copy_and_pickle(env_id):
    env, params = sepsisim_jax.make(env_id, severity="hard")
    for clone in (copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))):
        env2, params2 = clone(env), clone(params)
        assert env2 == env and hash(env2) == hash(env) and params2 == params
        _same_step(env, params, env2, params2)
    gym_env = gym.make(f"sepsisim_jax/{env_id}")
    gym_env.reset(seed=4)
    action = gym_env.action_space.sample()
    copies = [copy.deepcopy(gym_env), pickle.loads(pickle.dumps(gym_env))]
    expected = gym_env.step(action)
    for other in copies:
        result = other.step(action)
        np.testing.assert_array_equal(result[0], expected[0])
        assert result[1:4] == expected[1:4] and result[4] == expected[4]


def _corners(params, rng: np.random.Generator, n_random: int):
    """Params at every range's low end, every high end, and drawn uniformly inside."""
    specs = param_specs(params)
    yield replace_params(params, **{k: s.low for k, s in specs.items()})
    yield replace_params(params, **{k: s.high for k, s in specs.items()})
    for _ in range(n_random):
        yield replace_params(params, **{k: rng.uniform(s.low, s.high) for k, s in specs.items()})


@pytest.mark.parametrize("env_id", sepsisim_jax.REFERENCE_IDS)
def test_observations_stay_in_the_space_for_params_across_their_ranges(env_id):
    env, default = sepsisim_jax.make(env_id)
    rng = np.random.Generator(np.random.PCG64(0))

    @jax.jit
    def run(params, key):
        keys = jax.random.split(key, 32)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

        def body(carry, key):
            _, state = carry
            actions = jax.vmap(env.action_space(params).sample)(jax.random.split(key, 32))
            out = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key, 32), state, actions, params
            )
            return (out[0], out[1]), jnp.stack([out[0], out[5]["final_observation"]])

        _, seen = jax.lax.scan(body, (obs, state), jax.random.split(key, 72))
        return obs, seen

    for i, params in enumerate(_corners(default, rng, 4)):
        first, seen = run(params, jax.random.key(i))
        space = env.observation_space(params)
        dim = first.shape[-1]
        values = np.concatenate([np.reshape(first, (-1, dim)), np.reshape(seen, (-1, dim))])
        low, high = np.asarray(space.low), np.asarray(space.high)
        outside = (values < low) | (values > high) | ~np.isfinite(values)
        assert not outside.any(), (i, np.argwhere(outside)[:5], values[outside][:5])
