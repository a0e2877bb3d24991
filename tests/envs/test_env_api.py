"""The functional environment API: jit, vmap, determinism, batch invariance, bounds, bad input."""

from __future__ import annotations

import functools

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.envs.base import SepsisEnv
from tests.conftest import NOISELESS

ENV_IDS = sepsisim_jax.ENV_IDS
# Properties of the simulation rather than of a task (determinism, batch invariance) are
# checked on the task with every treatment, on each patient model: the other tasks differ only
# in which treatments an action sets and in what is observed.
EVERY_TREATMENT = ("SepsisManagement-v0", "SepsisManagement-v1")


def _random_actions(env: SepsisEnv, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.uniform(
        key, (*shape, env.num_actions), minval=env.action_low, maxval=env.action_high
    )


def _trajectory(env, params, key, actions):
    """Observations and rewards of one patient over ``actions`` (steps x action_dim)."""
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def body(state, inputs):
        key, action = inputs
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return state, (obs, reward, terminated, truncated)

    keys = jax.random.split(key_steps, actions.shape[0])
    _, (observations, rewards, terminated, truncated) = jax.lax.scan(body, state, (keys, actions))
    return obs, observations, rewards, terminated, truncated


HORIZON = 30  # steps of the batched runs below


def _keys(seed: int) -> jax.Array:
    """The key of one patient, as a batch of one."""
    return jax.random.split(jax.random.key(seed), 1)


@functools.cache
def _batched_trajectories(env_id: str):
    """``(params, keys, actions) -> trajectories`` of ``env_id``'s default env, jitted and
    vmapped over patients (keys ``(n,)``, actions ``(n, steps, action_dim)``), built once per id
    so that the tests running a batch of this id share its compiled programs."""
    env, _ = sepsisim_jax.make(env_id)
    return jax.jit(
        jax.vmap(lambda p, k, a: _trajectory(env, p, k, a), in_axes=(None, 0, 0)),
    )


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_and_step_under_jit_stay_in_spaces(env_id):
    env, params = sepsisim_jax.make(env_id)
    obs, state = jax.jit(env.reset)(jax.random.key(0), params)
    assert obs.dtype == jnp.float32 and obs.shape == (len(env.observation_names),)
    assert env.observation_space(params).contains(obs)
    action = env.action_space(params).sample(jax.random.key(1))
    assert env.action_space(params).contains(action)
    obs, state, reward, terminated, truncated, info = jax.jit(env.step)(
        jax.random.key(2), state, action, params
    )
    assert env.observation_space(params).contains(obs)
    assert reward.shape == () and terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert int(info["step"]) == 1 and int(state.time) == 1


def test_step_compiles_once_across_keys_params_and_equal_envs():
    env, params = sepsisim_jax.make("SepsisManagement-v0")

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, action, params):
        return env.step(key, state, action, params)

    _, state = env.reset(jax.random.key(0), params)
    for i, severity in enumerate(sepsisim_jax.SEVERITIES):
        _, other_params = sepsisim_jax.make("SepsisManagement-v0", severity=severity)
        step(jax.random.key(i), state, jnp.ones(3), other_params)
    assert sepsisim_jax.make("SepsisManagement-v0")[0] == env
    assert hash(sepsisim_jax.make("SepsisManagement-v0")[0]) == hash(env)
    assert sepsisim_jax.make("SepsisManagement-v0", severity="hard")[0] != env


@pytest.mark.parametrize("env_id", EVERY_TREATMENT)
def test_same_key_same_trajectory_different_key_different(env_id):
    env, params = sepsisim_jax.make(env_id)
    actions = _random_actions(env, jax.random.key(5), (1, HORIZON))
    run = _batched_trajectories(env_id)  # one patient: the program of a patient alone below
    first, second, other = (run(params, _keys(seed), actions) for seed in (1, 1, 2))
    chex.assert_trees_all_equal(first, second)
    assert not np.allclose(first[1], other[1])


@pytest.mark.parametrize("env_id", EVERY_TREATMENT)
def test_patient_identical_alone_and_in_a_batch_of_1024(env_id):
    env, params = sepsisim_jax.make(env_id)
    keys = jax.random.split(jax.random.key(7), 1024)
    actions = _random_actions(env, jax.random.key(8), (1024, HORIZON))
    batched = functools.partial(_batched_trajectories(env_id), params)
    whole = batched(keys, actions)
    for i in (0, 511, 1023):
        alone = batched(keys[i : i + 1], actions[i : i + 1])
        got, expected = (
            jax.tree.map(lambda x, i=i: x[i], whole),
            jax.tree.map(lambda x: x[0], alone),
        )
        if env_id.endswith("-v0"):
            chex.assert_trees_all_equal(got, expected)
        else:
            # v1 (fractional Hill powers) rounds differently in XLA's vectorised and
            # scalar code by a few ulp (measured: 2e-11 in damage, 1.3e-7 in a reward).
            chex.assert_trees_all_close(got, expected, rtol=1e-6, atol=1e-5)


def test_vmap_over_params_matches_separate_runs():
    env, _ = sepsisim_jax.make("FluidResuscitation-v0")
    params = [sepsisim_jax.make("FluidResuscitation-v0", k_growth=g)[1] for g in (0.4, 0.9)]
    stacked = jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *params)
    key, actions = _keys(3), _random_actions(env, jax.random.key(1), (1, HORIZON))
    run = jax.vmap(lambda p: _trajectory(env, p, key[0], actions[0]))
    together = jax.jit(run)(stacked)
    # Separate runs: each params alone, one patient with the same key and actions.
    alone = _batched_trajectories("FluidResuscitation-v0")
    for i, p in enumerate(params):
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: x[i], together),
            jax.tree.map(lambda x: x[0], alone(p, key, actions)),
            rtol=1e-6,
        )


@pytest.mark.parametrize(
    ("env_id", "transition_gradients"),
    [("SepsisManagement-v0", False), ("SepsisManagement-v0", True), ("SepsisManagement-v1", True)],
)
def test_grad_of_return_wrt_actions_is_finite(env_id, transition_gradients):
    env, params = sepsisim_jax.make(env_id)
    if transition_gradients:
        env = env.with_transition_gradients()
    actions = _random_actions(env, jax.random.key(0), (10,))

    def total_reward(actions):
        return jnp.sum(_trajectory(env, params, jax.random.key(1), actions)[2])

    grad = jax.jit(jax.grad(total_reward))(actions)
    assert grad.shape == actions.shape
    chex.assert_tree_all_finite(grad)


def test_grad_of_return_reaches_earlier_fluids_through_the_state():
    """A hypotensive patient (MAP < 65) is rewarded for fluid given hours before."""
    env, params = sepsisim_jax.make("FluidResuscitation-v0", severity="hard", **NOISELESS)
    actions = jnp.full((10, 1), 10.0)

    def total_reward(env, actions):
        return jnp.sum(_trajectory(env, params, jax.random.key(1), actions)[2])

    with_state = jax.grad(total_reward, argnums=1)(env.with_transition_gradients(), actions)
    detached = jax.grad(total_reward, argnums=1)(env, actions)
    assert jnp.all(with_state[:-1] > 0.0)  # each bolus raises later MAPs
    assert jnp.all(with_state >= detached)


def test_grad_flows_through_the_ode_with_transition_gradients():
    env, params = sepsisim_jax.make("FluidResuscitation-v0", **NOISELESS)
    env = env.with_transition_gradients()

    def final_damage(k_dm):
        p = params.replace(
            patient=params.patient.replace(
                inflammation=params.patient.inflammation.replace(k_dm=k_dm)
            )
        )
        _, state = env.reset(jax.random.key(0), p)

        def body(state, key):
            return env.step(key, state, jnp.zeros(1), p)[1], None

        state, _ = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 3))
        return state.patient.inflammation.damage

    grad = jax.jit(jax.grad(final_damage))(0.5)
    step = 1e-2
    damage = jax.jit(final_damage)
    numeric = (damage(0.5 + step) - damage(0.5 - step)) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-2)
    assert grad > 0  # more damage per mediator means more damage


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_components_mean_no_intervention(bad):
    env, params = sepsisim_jax.make("SepsisManagement-v0")
    _, state = env.reset(jax.random.key(0), params)
    key = jax.random.key(1)
    poisoned = env.step(key, state, jnp.array([bad, 0.05, bad]), params)
    clean = env.step(key, state, jnp.array([0.0, 0.05, 0.0]), params)
    chex.assert_trees_all_equal(poisoned[:5], clean[:5])
    chex.assert_tree_all_finite(poisoned[1])


def test_actions_are_clipped_to_the_action_space():
    env, params = sepsisim_jax.make("SepsisManagement-v0")
    _, state = env.reset(jax.random.key(0), params)
    key = jax.random.key(1)
    big = env.step(key, state, jnp.array([5000.0, 3.0, 7.0]), params)
    edge = env.step(key, state, jnp.array([1000.0, 0.1, 1.0]), params)
    chex.assert_trees_all_equal(big[:5], edge[:5])


def test_wrong_action_shape_raises():
    env, params = sepsisim_jax.make("SepsisManagement-v0")
    _, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match=r"expects an action of shape \(3,\)"):
        env.step(jax.random.key(1), state, jnp.zeros(2), params)


def test_episode_truncates_after_72_steps_and_auto_resets():
    env, params = sepsisim_jax.make("FluidResuscitation-v0")
    actions = jnp.full((73, 1), 250.0)
    _, observations, _, terminated, truncated = _trajectory(env, params, jax.random.key(0), actions)
    assert not terminated.any()
    assert truncated[71] and truncated.sum() == 1
    # After the cut the next observation is a freshly admitted patient (damage 0).
    assert observations[71][3] == 0.0 and observations[70][3] > 0.0


def test_death_terminates_with_penalty_and_auto_resets():
    env, params = sepsisim_jax.make("VasopressorTitration-v0")
    _, state = env.reset(jax.random.key(0), params)
    for t in range(72):
        obs, state, reward, terminated, truncated, info = env.step(
            jax.random.key(t), state, jnp.zeros(1), params
        )
        if terminated:
            break
    assert terminated and not truncated and t < 10
    assert float(info["tissue_damage"]) >= 0.9 and float(reward) < -40.0
    assert int(state.time) == 0 and float(obs[3]) == 0.0
    assert float(info["final_observation"][3]) >= 0.9


def test_reset_key_admits_the_same_patient_as_an_auto_reset():
    env, params = sepsisim_jax.make("VasopressorTitration-v0")
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(time=jnp.asarray(71, jnp.int32))  # next step is cut
    key = jax.random.key(9)
    obs, new_state, *_ = env.step(key, state, jnp.zeros(1), params)
    reset_obs, reset_state = env.reset(key, params)
    chex.assert_trees_all_equal((obs, new_state), (reset_obs, reset_state))


def test_noise_scales_zero_give_a_deterministic_simulator():
    env, params = sepsisim_jax.make("SepsisManagement-v0", **NOISELESS)
    actions = _random_actions(env, jax.random.key(0), (1, HORIZON))
    run = _batched_trajectories("SepsisManagement-v0")  # the same env; params are traced
    a, b = run(params, _keys(1), actions), run(params, _keys(2), actions)
    chex.assert_trees_all_close(a, b, rtol=0, atol=0)


def test_admission_noise_has_the_reference_distribution():
    env, params = sepsisim_jax.make("FluidResuscitation-v0", severity="hard")
    keys = jax.random.split(jax.random.key(0), 20_000)
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    bacteria = np.asarray(obs[:, 5])
    assert 0.6 * 0.8 <= bacteria.min() and bacteria.max() <= 0.6 * 1.2
    np.testing.assert_allclose(bacteria.mean(), 0.6, rtol=0.01)
    np.testing.assert_allclose(bacteria.std(), 0.6 * 0.4 / np.sqrt(12), rtol=0.05)
    map_mmhg = np.asarray(obs[:, 0])
    np.testing.assert_allclose(map_mmhg.mean(), 75.0, atol=0.1)
    np.testing.assert_allclose(map_mmhg.std(), 2.0, rtol=0.05)


def test_make_rejects_unknown_ids_severities_and_parameters():
    with pytest.raises(ValueError, match="valid ids"):
        sepsisim_jax.make("CartPole-v1")
    with pytest.raises(ValueError, match=r"valid severities: \['easy', 'medium', 'hard'\]"):
        sepsisim_jax.make("FluidResuscitation-v0", severity="extreme")
    with pytest.raises(TypeError, match="unknown parameter"):
        sepsisim_jax.make("FluidResuscitation-v0", k_grow=0.5)
    with pytest.raises(ValueError, match=r"k_growth=5 is outside its range \[0.1, 1\] 1/h"):
        sepsisim_jax.make("FluidResuscitation-v0", k_growth=5.0)
    with pytest.raises(ValueError, match="unknown solver"):
        sepsisim_jax.make("FluidResuscitation-v0", solver="euler")


def test_gymnax_registry_knows_the_environments():
    for env_id in ENV_IDS:
        env, params = gymnax.make(f"sepsisim_jax/{env_id}", severity="hard")
        assert isinstance(env, SepsisEnv) and env.severity == "hard"
        assert params == env.default_params


@pytest.mark.slow
# v1 at full spread: tests/envs/test_v1.py. FluidResuscitation's actions and observations are
# SepsisManagement's; VasopressorTitration observes the hours on vasopressors besides.
@pytest.mark.parametrize("env_id", ["VasopressorTitration-v0", "SepsisManagement-v0"])
def test_stress_10000_patients_random_actions_finite_and_in_bounds(env_id):
    """10,000 virtual patients per tier at the largest spread (1.0), one full episode."""
    env, _ = sepsisim_jax.make(env_id, patient_spread=1.0)

    @jax.jit
    def stress(params, key):
        key_reset, key_loop = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(key_reset, 10_000), params
        )
        space = env.observation_space(params)
        low, high = space.low[None], space.high[None]

        def body(carry, key):
            state, ok, finite = carry
            key_action, key_step = jax.random.split(key)
            action = _random_actions(env, key_action, (10_000,))
            obs, state, reward, _, _, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(key_step, 10_000), state, action, params
            )
            both = jnp.concatenate([obs, info["final_observation"]])
            ok &= jnp.all((both >= low) & (both <= high))
            finite &= jnp.all(jnp.isfinite(both)) & jnp.all(jnp.isfinite(reward))
            return (state, ok, finite), None

        (_, ok, finite), _ = jax.lax.scan(
            body,
            (state, jnp.all((obs >= low) & (obs <= high)), jnp.array(True)),
            jax.random.split(key_loop, env.model.episode_steps),
        )
        return ok, finite

    for severity in sepsisim_jax.SEVERITIES:
        _, params = sepsisim_jax.make(env_id, severity=severity, patient_spread=1.0)
        ok, finite = stress(params, jax.random.key(0))
        assert bool(finite), severity
        assert bool(ok), severity


def test_runs_in_float64_with_stable_scan_carry():
    with jax.enable_x64(True):
        env, params = sepsisim_jax.make("SepsisManagement-v0")
        obs, state = env.reset(jax.random.key(0), params)
        assert state.patient.map_mmhg.dtype == jnp.float64 and obs.dtype == jnp.float32
        actions = _random_actions(env, jax.random.key(1), (72,))
        out = jax.jit(lambda k: _trajectory(env, params, k, actions))(jax.random.key(2))
        chex.assert_tree_all_finite(out)
