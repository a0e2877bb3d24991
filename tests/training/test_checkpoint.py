"""Checkpoints: the round trip gives the same policy; bad files raise clear errors."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest
from flax import serialization

from sepsisim_jax.training import CheckpointError, PPOPolicy, load_checkpoint, save_checkpoint
from sepsisim_jax.training.checkpoint import CHECKPOINT_FILE


def test_round_trip_gives_the_same_policy_and_identical_actions(trained, tmp_path):
    policy = trained.policy
    path = save_checkpoint(tmp_path, policy)
    assert path == tmp_path / CHECKPOINT_FILE
    loaded = load_checkpoint(tmp_path)
    assert isinstance(loaded, PPOPolicy)
    assert loaded.config == trained.config and loaded.network == policy.network
    chex.assert_trees_all_equal(loaded, policy)
    space = trained.trainer.env.observation_space(trained.trainer.env_params)
    obs = jax.random.uniform(jax.random.key(1), (64, 10), minval=space.low, maxval=space.high)
    act = jax.jit(jax.vmap(lambda p, o: p(None, o, None), in_axes=(None, 0)))
    np.testing.assert_array_equal(act(policy, obs), act(load_checkpoint(path), obs))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00\x01 not msgpack at all")
    with pytest.raises(CheckpointError, match="not"):
        load_checkpoint(tmp_path)


def test_mismatched_version_and_shapes(trained, tmp_path):
    path = save_checkpoint(tmp_path, trained.policy)
    payload = serialization.msgpack_restore(path.read_bytes())
    payload["version"] = "0.0.1"
    path.write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match=r"written by sepsisim_jax 0\.0\.1"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, trained.policy)
    payload = serialization.msgpack_restore(path.read_bytes())
    payload["config"]["hidden_sizes"] = [32]
    path.write_bytes(serialization.msgpack_serialize(payload))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(tmp_path)
