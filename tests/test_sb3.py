"""stable-baselines3 through the Gymnasium adapter: its env checker, PPO and evaluate_policy.

Needs the ``sb3`` extra. CI installs it, so there a missing stable-baselines3 fails the run
instead of skipping these tests.
"""

from __future__ import annotations

import importlib
import os
import warnings

import gymnasium as gym
import numpy as np
import pytest

import sepsisim_jax
from tests.test_readme import _python_blocks

if os.environ.get("CI"):
    importlib.import_module("stable_baselines3")
else:
    pytest.importorskip("stable_baselines3")

from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

ENV_IDS = sepsisim_jax.ENV_IDS
SB3_ADVICE = "We recommend you to use a symmetric and normalized Box action space"


def _make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(f"sepsisim_jax/{env_id}", **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_sb3_check_env(env_id):
    """Silent with normalised actions; with the reference's bounds, only the advice to
    normalise them (which any env with those bounds gets)."""
    for normalize in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(_make(env_id, normalize_actions=normalize).unwrapped)
        messages = [str(w.message) for w in caught]
        assert all(SB3_ADVICE in m for m in messages), messages
        assert bool(messages) != normalize, messages


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("vectorised", [False, True], ids=["single", "dummy_vec_env"])
def test_ppo_learns_2048_steps_and_evaluate_policy_runs(env_id, vectorised):
    if vectorised:  # two monitored envs, normalised actions
        envs = [lambda: Monitor(_make(env_id, normalize_actions=True)) for _ in range(2)]
        env, n_steps = DummyVecEnv(envs), 256
    else:  # the env as it comes from gym.make, the reference's action bounds
        env, n_steps = _make(env_id), 512
    model = PPO("MlpPolicy", env, n_steps=n_steps, batch_size=64, n_epochs=2, seed=0)
    model.learn(total_timesteps=2_048)
    assert model.num_timesteps == 2_048
    lengths = np.concatenate([m.get_episode_lengths() for m in model.get_env().envs])
    assert lengths.size > 0 and lengths.min() >= 1 and lengths.max() <= 72
    eval_env = Monitor(_make(env_id, normalize_actions=vectorised))
    returns, lengths = evaluate_policy(
        model, eval_env, n_eval_episodes=2, return_episode_rewards=True
    )
    assert len(returns) == 2 and np.isfinite(returns).all()
    assert all(1 <= n <= 72 for n in lengths)


def test_dummy_vec_env_sees_the_time_limit_and_the_terminal_observation():
    env = DummyVecEnv([lambda: _make("FluidResuscitation-v0")])
    env.seed(0)
    env.reset()
    for t in range(1, 73):
        obs, _, dones, infos = env.step(np.full((1, 1), 250.0, np.float32))
        assert dones[0] == (t == 72)
    assert infos[0]["TimeLimit.truncated"] and infos[0]["step"] == 72
    terminal = infos[0]["terminal_observation"]
    assert terminal[3] > 0.0 and obs[0][3] == 0.0  # damage of the cut patient, then a new one


def test_readme_example_runs():
    blocks = [b for b in _python_blocks() if "gym.make" in b]
    assert any("stable_baselines3" in b for b in blocks)
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    assert np.isfinite(namespace["mean_return"])
