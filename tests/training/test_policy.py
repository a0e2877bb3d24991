"""The trained policy object: pure, jittable, vmappable, and scored like any other policy."""

from __future__ import annotations

import chex
import jax
import numpy as np

from sepsisim_jax.cohort.rollout import rollout_episodes, summarize
from sepsisim_jax.policies import heuristic_policy, random_policy
from sepsisim_jax.training import TrainingResult, compare_policies, evaluate
from sepsisim_jax.training.networks import to_env_action

N_PATIENTS = 64


def observations(env, params, n: int = 32) -> jax.Array:
    keys = jax.random.split(jax.random.key(1), n)
    return jax.vmap(env.reset, in_axes=(0, None))(keys, params)[0]


def by_hand(trained: TrainingResult, seed: int):
    """One seed's deterministic action written out from the trainer's network and runner."""
    trainer, runner = trained.trainer, trained.runner
    net_params = jax.tree.map(lambda x: x[seed], runner.train_state.params)
    stats = jax.tree.map(lambda x: x[seed], runner.obs_stats)

    def act(key, obs, params):
        mean, _, _ = trainer.network.apply(net_params, stats.normalize(obs))
        return to_env_action(mean, trainer.env.action_low, trainer.env.action_high)

    return act


def test_the_policy_is_the_networks_mean_action_under_jit_and_vmap(trained):
    env, params = trained.trainer.env, trained.trainer.env_params
    policy, obs = trained.policies[0], observations(env, params)
    batched = jax.jit(jax.vmap(policy, in_axes=(0, 0, None)))
    actions = np.asarray(batched(jax.random.split(jax.random.key(2), len(obs)), obs, params))
    expected = jax.vmap(by_hand(trained, 0), in_axes=(None, 0, None))(None, obs, params)
    np.testing.assert_allclose(actions, expected, rtol=1e-6, atol=1e-6)
    # Deterministic: another key gives the same actions; always within the bounds.
    again = batched(jax.random.split(jax.random.key(3), len(obs)), obs, params)
    np.testing.assert_array_equal(actions, again)
    assert np.all(actions >= env.action_low) and np.all(actions <= env.action_high)
    assert not np.allclose(actions, actions[0])  # depends on the observation


def test_the_policy_is_a_pytree_traced_by_jit_without_retracing(trained):
    traces = []

    @jax.jit
    def act(policy, obs):
        traces.append(None)
        return policy(None, obs, None)

    obs = observations(trained.trainer.env, trained.trainer.env_params, 1)[0]
    first, second = trained.policies
    assert not np.array_equal(act(first, obs), act(second, obs))  # the parameters flow in
    assert len(traces) == 1  # one compilation for both seeds
    leaves, treedef = jax.tree.flatten(first)
    chex.assert_trees_all_equal(jax.tree.unflatten(treedef, leaves).net_params, first.net_params)


def test_the_result_gives_the_best_seeds_policy(trained):
    best = trained.policies[trained.best_seed()]
    chex.assert_trees_all_equal(trained.policy.net_params, best.net_params)
    chex.assert_trees_all_equal(trained.policy.obs_stats, best.obs_stats)
    assert trained.policy.config == trained.config


def test_evaluate_on_the_policy_equals_a_rollout_of_the_network_by_hand(trained):
    env, params = trained.trainer.env, trained.trainer.env_params
    key = jax.random.key(4)
    got = evaluate(trained.policy, env, params, key, N_PATIENTS)
    hand = by_hand(trained, trained.best_seed())
    hand = summarize(rollout_episodes(env, params, hand, key, N_PATIENTS, 72))
    assert got.keys() == hand.keys() | {"quantiles"}
    np.testing.assert_allclose([got[k] for k in hand], list(hand.values()), rtol=1e-5)


def test_compare_policies_equals_separate_evaluate_calls_on_the_same_patients(trained):
    env, params = trained.trainer.env, trained.trainer.env_params
    key = jax.random.key(5)
    policies = {
        "PPO seed 0": trained.policies[0],
        "PPO seed 1": trained.policies[1],
        "heuristic": heuristic_policy(env),
        "random": random_policy(env),
    }
    rows = compare_policies(env, params, policies, key, N_PATIENTS)
    assert [row["policy"] for row in rows] == list(policies)
    for row, policy in zip(rows, policies.values(), strict=True):
        assert row == {"policy": row["policy"], **evaluate(policy, env, params, key, N_PATIENTS)}
    assert rows[0]["mean_return"] != rows[1]["mean_return"]  # each seed is its own policy
