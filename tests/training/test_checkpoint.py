"""Checkpoints: round trip gives identical actions; bad files raise clear errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import serialization

from sepsisim_jax.training import (
    CheckpointError,
    PPOConfig,
    load_checkpoint,
    make_train,
    ppo_policy,
    save_checkpoint,
)
from sepsisim_jax.training.checkpoint import CHECKPOINT_FILE

CONFIG = PPOConfig(
    env_id="SepsisManagement-v0",
    total_timesteps=8 * 24,
    num_envs=8,
    num_steps=24,
    num_minibatches=2,
    hidden_sizes=(8,),
)


@pytest.fixture(scope="module")
def trained():
    trainer = make_train(CONFIG)
    runner, _ = jax.jit(trainer.train)(jax.random.key(0))
    return trainer, runner


def test_round_trip_gives_identical_actions(trained, tmp_path):
    trainer, runner = trained
    save_checkpoint(tmp_path, CONFIG, runner.train_state.params, runner.obs_stats)
    config, network, params, stats = load_checkpoint(tmp_path)
    assert config == CONFIG
    obs = jax.random.uniform(
        jax.random.key(1),
        (64, 10),
        minval=trainer.env.observation_space(None).low,
        maxval=trainer.env.observation_space(None).high,
    )
    before = ppo_policy(trainer.network, runner.train_state.params, runner.obs_stats, trainer.env)
    after = ppo_policy(network, params, stats, trainer.env)
    act = jax.vmap(lambda p, o: p(None, o, None), in_axes=(None, 0))
    np.testing.assert_array_equal(act(before, obs), act(after, obs))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00\x01 not msgpack at all")
    with pytest.raises(CheckpointError, match="not"):
        load_checkpoint(tmp_path)


def test_mismatched_version_and_shapes(trained, tmp_path):
    _, runner = trained
    path = save_checkpoint(tmp_path, CONFIG, runner.train_state.params, runner.obs_stats)
    payload = serialization.msgpack_restore(path.read_bytes())
    payload["version"] = "0.0.1"
    path.write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match=r"written by sepsisim_jax 0\.0\.1"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, CONFIG, runner.train_state.params, runner.obs_stats)
    payload = serialization.msgpack_restore(path.read_bytes())
    payload["config"]["hidden_sizes"] = [32]
    path.write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path)
