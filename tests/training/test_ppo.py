"""PPO: jit and vmap over seeds, determinism, chunking, GAE masking, the shuffle and the
network's gradient against JAX's own, a real learning check."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sepsisim_jax.policies import random_policy
from sepsisim_jax.training import (
    PPOConfig,
    evaluate,
    held_out_key,
    init_seeds,
    make_train,
    train_ppo,
)
from sepsisim_jax.training.networks import ActorCritic, dense_dot
from sepsisim_jax.training.ppo import (
    Transition,
    generalized_advantages,
    permutation,
    stable_argsort,
)

TINY = PPOConfig(
    env_id="FluidResuscitation-v0",
    total_timesteps=2 * 16 * 24,
    num_envs=16,
    num_steps=24,
    update_epochs=2,
    num_minibatches=4,
    hidden_sizes=(16, 16),
)


@pytest.fixture(scope="module")
def tiny_trainer():
    return make_train(TINY)


def test_two_seeds_train_in_one_vmapped_call_with_finite_losses(tiny_trainer):
    keys = jax.random.split(jax.random.key(0), 2)
    run = jax.jit(jax.vmap(tiny_trainer.run, in_axes=(0, None)), static_argnums=1)
    runner, metrics = run(init_seeds(tiny_trainer, keys), TINY.num_updates)
    assert metrics.value_loss.shape == (2, TINY.num_updates)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl"):
        chex.assert_tree_all_finite(getattr(metrics, name))
    chex.assert_tree_all_finite(runner.train_state.params)
    differs = jax.tree.map(lambda x: bool(jnp.any(x[0] != x[1])), runner.train_state.params)
    assert all(jax.tree.leaves(differs))


def test_same_key_same_parameters_and_chunks_equal_one_run(tiny_trainer):
    train = jax.jit(tiny_trainer.train)
    first, _ = train(jax.random.key(3))
    second, _ = train(jax.random.key(3))
    chex.assert_trees_all_equal(first.train_state.params, second.train_state.params)
    runner = jax.jit(tiny_trainer.init)(jax.random.key(3))
    run = jax.jit(tiny_trainer.run, static_argnums=1)
    for _ in range(TINY.num_updates):
        runner, _ = run(runner, 1)
    chex.assert_trees_all_close(runner.train_state.params, first.train_state.params, rtol=1e-5)


def test_gae_bootstraps_through_truncation_but_not_through_death():
    def batch(terminated, done):
        ones = jnp.ones((1, 1))
        return Transition(
            obs=jnp.zeros((1, 1, 1)),
            action=jnp.zeros((1, 1, 1)),
            log_prob=0 * ones,
            value=0.5 * ones,
            reward=ones,
            terminated=jnp.full((1, 1), terminated),
            done=jnp.full((1, 1), done),
            next_value=2.0 * ones,
        )

    cut, _ = generalized_advantages(batch(False, True), gamma=0.9, gae_lambda=0.95)
    dead, _ = generalized_advantages(batch(True, True), gamma=0.9, gae_lambda=0.95)
    np.testing.assert_allclose(cut, 1.0 + 0.9 * 2.0 - 0.5)
    np.testing.assert_allclose(dead, 1.0 - 0.5)
    # Two steps: an episode end at t=0 stops the recursion from t=1.
    two = jax.tree.map(lambda x: jnp.concatenate([x, x]), batch(False, False))
    two = two.replace(done=jnp.array([[True], [False]]))
    adv, _ = generalized_advantages(two, gamma=0.9, gae_lambda=0.95)
    np.testing.assert_allclose(adv[0], 1.0 + 0.9 * 2.0 - 0.5)


@pytest.mark.parametrize("n", [1, 7, 576, 4608, 70_000])
def test_permutation_is_jax_random_permutation(n):
    keys = jax.random.split(jax.random.key(5), 8)
    ours = jax.jit(jax.vmap(lambda k: permutation(k, n)))(keys)
    theirs = jax.jit(jax.vmap(lambda k: jax.random.permutation(k, n)))(keys)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype


def test_stable_argsort_orders_equal_keys_by_index():
    keys = jax.random.randint(jax.random.key(6), (4, 1000), 0, 30).astype(jnp.uint32)
    keys = keys.at[:, :3].set(jnp.uint32(2**32 - 1))  # the largest key, tied
    ours = jax.jit(jax.vmap(stable_argsort))(keys)
    np.testing.assert_array_equal(ours, jnp.argsort(keys, axis=1, stable=True))
    with pytest.raises(ValueError, match="32 bits"):
        stable_argsort(jnp.zeros(70_000, jnp.uint32))


def test_the_networks_faster_kernel_gradient_matches_autodiff_of_plain_dots(monkeypatch):
    obs = jax.random.normal(jax.random.key(7), (576, 10))
    network = ActorCritic(3)
    params = network.init(jax.random.key(8), obs)

    def loss(p, x):
        mean, log_std, value = network.apply(p, x)
        return jnp.sum(jnp.sin(mean) * jnp.exp(log_std)) + jnp.sum(value**2)

    outputs = [jax.jit(network.apply)(params, x) for x in (obs, obs[0], obs.reshape(8, 72, 10))]
    grads = jax.jit(jax.grad(loss))(params, obs)
    with monkeypatch.context() as patch:  # nn.Dense's default dot_general
        patch.setattr("sepsisim_jax.training.networks.dense_dot", jax.lax.dot_general)
        plain_outputs = [
            jax.jit(network.apply)(params, x) for x in (obs, obs[0], obs.reshape(8, 72, 10))
        ]
        plain_grads = jax.jit(jax.grad(loss))(params, obs)
    chex.assert_trees_all_equal(outputs, plain_outputs)  # the forward pass is unchanged
    for ours, plain in zip(jax.tree.leaves(grads), jax.tree.leaves(plain_grads), strict=True):
        # sums over 576 samples in another order: float rounding, relative to the leaf's scale
        np.testing.assert_allclose(ours, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())
    # other contractions (not inputs x kernel) are passed through
    lhs, rhs = jnp.ones((3, 4)), jnp.ones((5, 4))
    dims = (((1,), (1,)), ((), ()))
    np.testing.assert_array_equal(dense_dot(lhs, rhs, dims), jax.lax.dot_general(lhs, rhs, dims))


def test_config_is_validated_and_frozen():
    with pytest.raises(ValueError, match="valid ids"):
        PPOConfig(env_id="Nope-v0")
    with pytest.raises(ValueError, match="not divisible"):
        PPOConfig(num_envs=10, num_steps=7, num_minibatches=4)
    with pytest.raises(ValueError, match="less than one update"):
        PPOConfig(total_timesteps=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.num_envs = 3  # type: ignore[misc]
    assert PPOConfig.from_dict(TINY.to_dict()) == TINY


@pytest.mark.slow
def test_short_run_beats_the_random_policy_on_sepsis_management_easy():
    config = PPOConfig(env_id="SepsisManagement-v0", severity="easy", total_timesteps=64 * 72 * 16)
    result = train_ppo(config, n_seeds=1, progress=False)
    env, params = result.trainer.env, result.trainer.env_params
    ppo = evaluate(result.policy, env, params, held_out_key(0), n_patients=500)
    baseline = evaluate(random_policy(env), env, params, held_out_key(0), n_patients=500)
    assert ppo["mean_return"] > baseline["mean_return"] + 5.0
    assert ppo["survival"] >= baseline["survival"]
