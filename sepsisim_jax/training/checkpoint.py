"""Save and load a :class:`PPOPolicy` with its config, normalisation statistics and version.

One file, ``policy.msgpack`` (flax serialization), holding the network parameters, the
observation statistics, the :class:`PPOConfig` as a dict and the library version. Loading
checks each of them and raises :class:`CheckpointError` with what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from sepsisim_jax._version import __version__
from sepsisim_jax.envs.registration import env_factory
from sepsisim_jax.training.config import PPOConfig
from sepsisim_jax.training.normalization import RunningStats
from sepsisim_jax.training.policy import PPOPolicy, actor_critic

CHECKPOINT_FILE = "policy.msgpack"
FORMAT = "sepsisim_jax.ppo/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not match this library."""


def save_checkpoint(directory: Path | str, policy: PPOPolicy) -> Path:
    """Write ``policy`` to ``directory/policy.msgpack`` and return the path."""
    path = Path(directory) / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": _encode(policy.config.to_dict()),
        "net_params": jax.tree.map(np.asarray, serialization.to_state_dict(policy.net_params)),
        "obs_stats": jax.tree.map(np.asarray, serialization.to_state_dict(policy.obs_stats)),
    }
    path.write_bytes(serialization.msgpack_serialize(payload))
    return path


def load_checkpoint(directory: Path | str) -> PPOPolicy:
    """Read ``directory/policy.msgpack`` (or that file itself) back into the saved policy."""
    path = Path(directory)
    path = path / CHECKPOINT_FILE if path.is_dir() else path
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (expected a {CHECKPOINT_FILE} file)")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises several unrelated types on corrupt input
        raise CheckpointError(f"{path} is not a readable checkpoint: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    if payload.get("version") != __version__:
        raise CheckpointError(
            f"{path} was written by sepsisim_jax {payload.get('version')}, "
            f"this is {__version__}; retrain or use the matching version"
        )
    try:
        config = PPOConfig.from_dict(_decode(payload["config"]))
        obs_dim = len(env_factory(config.env_id)().observation_names)
        template = actor_critic(config).init(jax.random.key(0), jnp.zeros((1, obs_dim)))
        net_params = serialization.from_state_dict(template, payload["net_params"])
        _check_shapes(template, net_params, path)
        obs_stats = serialization.from_state_dict(
            RunningStats.create(obs_dim), payload["obs_stats"]
        )
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} does not match this library's policy: {error}") from error
    return PPOPolicy.create(
        config, jax.tree.map(jnp.asarray, net_params), jax.tree.map(jnp.asarray, obs_stats)
    )


def _check_shapes(template: Any, loaded: Any, path: Path) -> None:
    expected = jax.tree.map(np.shape, template)
    found = jax.tree.map(np.shape, loaded)
    if expected != found:
        raise CheckpointError(f"{path}: parameter shapes {found} differ from {expected}")


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    """msgpack keeps no tuples: store them as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v.values()) if isinstance(v, dict) else v) for k, v in values.items()}
