"""stable-baselines3 through the Gymnasium adapter (its env checker, PPO, evaluate_policy) and
through ``adapters.sb3.SepsisVecEnv`` (DummyVecEnv equivalence, wrappers, PPO, A2C, SAC, TD3).

Needs the ``sb3`` extra. CI installs it, so there a missing stable-baselines3 fails the run
instead of skipping these tests.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import sepsisim_jax
from tests.test_docs import python_blocks

if os.environ.get("CI"):
    importlib.import_module("stable_baselines3")
else:
    pytest.importorskip("stable_baselines3")

from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

from sepsisim_jax.adapters.sb3 import SepsisVecEnv, make_sb3_vec_env

REFERENCE_IDS = sepsisim_jax.REFERENCE_IDS
SB3_ADVICE = "We recommend you to use a symmetric and normalized Box action space"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """SB3's networks here are tiny: torch on one thread runs them several times faster than
    with its default of one thread per core, which parallel test workers oversubscribe."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(f"sepsisim_jax/{env_id}", **kwargs)


@pytest.mark.parametrize("env_id", REFERENCE_IDS)
def test_passes_sb3_check_env(env_id):
    """Silent with normalised actions; with the reference's bounds, only the advice to
    normalise them (which any env with those bounds gets)."""
    for normalize in (True, False):
        env = _make(env_id, normalize_actions=normalize).unwrapped  # (gym.make's v1 notice)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env)
        messages = [str(w.message) for w in caught]
        assert all(SB3_ADVICE in m for m in messages), messages
        assert bool(messages) != normalize, messages


# The three-action task on the single env with the reference's bounds (SB3's Python loop makes
# each case cost 10-20 s; DummyVecEnv's handling of our envs is tested below and by the docs'
# example with normalised actions).
@pytest.mark.parametrize(("env_id", "vectorised"), [("SepsisManagement-v0", False)])
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
    blocks = [b for b in python_blocks("training.md") if "gym.make" in b]
    assert any("stable_baselines3" in b for b in blocks)
    namespace: dict = {}
    exec(compile("\n".join(blocks), "docs/training.md", "exec"), namespace)
    assert np.isfinite(namespace["mean_return"])


# SepsisVecEnv: SB3's VecEnv over the jitted vector env.


def _dummy(env_id: str, n: int, **kwargs) -> DummyVecEnv:
    return DummyVecEnv([lambda: _make(env_id, **kwargs) for _ in range(n)])


def _actions(env, rng: np.random.Generator) -> np.ndarray:
    space = env.action_space
    shape = (env.num_envs, *space.shape)
    return rng.uniform(space.low, space.high, shape).astype(np.float32)


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("SepsisManagement-v0", {"severity": "hard", "normalize_actions": True}),
        ("VasopressorTitration-v0", {}),
        ("FluidResuscitation-v0", {"severity": "easy"}),
    ],
)
def test_sepsis_vec_env_matches_a_dummy_vec_env_of_single_envs(env_id, kwargs):
    """Same seeds, same actions, 150 steps (deaths and the 72-step limit): the same returns.

    Flags and structure are compared exactly, numbers to 1e-5: a batch of 4 and the single
    env's batch of 1 are different XLA programs, which may round a float differently."""
    ours, theirs = make_sb3_vec_env(env_id, 4, **kwargs), _dummy(env_id, 4, **kwargs)
    assert ours.observation_space == theirs.observation_space
    assert ours.action_space == theirs.action_space
    close = {"rtol": 1e-5, "atol": 1e-5}
    ours.seed(7)
    theirs.seed(7)
    np.testing.assert_allclose(ours.reset(), theirs.reset(), **close)
    _assert_infos_close(ours.reset_infos, theirs.reset_infos)
    rng, ends = np.random.default_rng(0), {True: 0, False: 0}
    for _ in range(150):
        actions = _actions(ours, rng)
        (obs, rewards, dones, infos), expected = ours.step(actions), theirs.step(actions)
        assert obs.dtype == np.float32 and rewards.dtype == np.float32 and dones.dtype == bool
        np.testing.assert_allclose(obs, expected[0], **close)
        np.testing.assert_allclose(rewards, expected[1], **close)
        np.testing.assert_array_equal(dones, expected[2])
        for info, other, done in zip(infos, expected[3], dones, strict=True):
            assert info.keys() == other.keys()
            if done:
                terminal = info.pop("terminal_observation")
                assert terminal.dtype == np.float32
                np.testing.assert_allclose(terminal, other.pop("terminal_observation"), **close)
                ends[info["TimeLimit.truncated"]] += 1
            assert info["TimeLimit.truncated"] is other["TimeLimit.truncated"]
        _assert_infos_close(infos, expected[3])
        _assert_infos_close(ours.reset_infos, theirs.reset_infos)
    assert ends[True] >= 4 or env_id == "VasopressorTitration-v0"  # the time limit is crossed
    assert ends[False] >= 1 or env_id == "FluidResuscitation-v0"  # and a patient died


def _assert_infos_close(infos: list[dict], expected: list[dict]) -> None:
    """Same keys and Python types; bools equal, numbers to 1e-5 (relative or absolute)."""
    assert len(infos) == len(expected)
    for info, other in zip(infos, expected, strict=True):
        assert {k: type(v) for k, v in info.items()} == {k: type(v) for k, v in other.items()}
        assert info == pytest.approx(other, rel=1e-5, abs=1e-5)


def test_sepsis_vec_env_seeding():
    env = make_sb3_vec_env("FluidResuscitation-v0", 3)
    assert env.seed(11) == [11, 12, 13]
    first = env.reset()
    actions = np.full((3, 1), 500.0, np.float32)
    stepped = env.step(actions)[0]
    again = env.reset()  # no seed: the key chains go on, new patients
    assert not np.array_equal(again, first)
    env.seed(11)
    np.testing.assert_array_equal(env.reset(), first)
    np.testing.assert_array_equal(env.step(actions)[0], stepped)
    single = _make("FluidResuscitation-v0")
    np.testing.assert_array_equal(single.reset(seed=13)[0], first[2])  # sub-env i: seed + i


def test_sepsis_vec_env_rejects_bad_input_and_unsupported_calls():
    env = make_sb3_vec_env("SepsisManagement-v0", 2, seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        env.step(np.zeros((3,), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        env.step(np.zeros((1, 3), np.float32))
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()
    assert env.render_mode is None and env.get_attr("render_mode") == [None, None]
    assert env.get_attr("action_space", 1) == [env.action_space]
    assert not env.has_attr("no_such_attribute")
    assert env.env_is_wrapped(Monitor) == [False, False]
    with pytest.raises(IndexError):
        env.get_attr("render_mode", [2])
    with pytest.raises(NotImplementedError, match="one jitted batch"):
        env.set_attr("render_mode", "human")
    with pytest.raises(NotImplementedError, match="one jitted batch"):
        env.env_method("reset")
    with pytest.raises(ValueError, match="same-step"):
        SepsisVecEnv(gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")]))
    env.close()


def test_sepsis_vec_env_import_error_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n.split(".")[0] == "stable_baselines3"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "sepsisim_jax.adapters.sb3")
    with pytest.raises(ImportError, match=r'pip install "sepsisim-jax\[sb3\]"'):
        importlib.import_module("sepsisim_jax.adapters.sb3")


def test_ppo_learns_on_sepsis_vec_env_under_vec_normalize_and_vec_monitor():
    env = make_sb3_vec_env("SepsisManagement-v0", 8, max_episode_steps=24, normalize_actions=True)
    env = VecNormalize(VecMonitor(env), norm_reward=False)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=2, seed=0)
    model.learn(total_timesteps=512)
    assert model.num_timesteps == 512
    lengths = [e["l"] for e in model.ep_info_buffer]
    assert len(lengths) >= 8 and max(lengths) <= 24
    assert env.action_space.low.min() == -1.0 and env.action_space.high.max() == 1.0


# SAC only: TD3 collects through the same off-policy loop and replay buffer of SB3, so it would
# step this adapter along the same code path (the time-limit flags reach the buffer alike).
@pytest.mark.parametrize("algorithm", [SAC])
def test_off_policy_algorithms_learn_on_sepsis_vec_env(algorithm):
    env = VecMonitor(make_sb3_vec_env("FluidResuscitation-v0", 4, max_episode_steps=16))
    model = algorithm("MlpPolicy", env, learning_starts=64, batch_size=64, seed=0)
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256 and len(model.ep_info_buffer) >= 4
    timeouts = model.replay_buffer.timeouts[: model.replay_buffer.pos]
    assert timeouts.any()  # the replay buffer saw the time limit


def test_a2c_learns_on_sepsis_vec_env():
    env = VecMonitor(make_sb3_vec_env("SepsisManagement-v0", 8, max_episode_steps=12))
    model = A2C("MlpPolicy", env, n_steps=8, seed=0).learn(total_timesteps=256)
    assert model.num_timesteps == 256 and len(model.ep_info_buffer) >= 8


def test_readme_vec_env_example_runs():
    (block,) = [b for b in python_blocks("training.md") if "sepsisim_jax.adapters.sb3" in b]
    namespace: dict = {}
    exec(compile(block, "docs/training.md", "exec"), namespace)
    assert np.isfinite(namespace["mean_return"])
