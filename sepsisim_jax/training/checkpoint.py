"""Save and load a trained PPO policy with its config, normalisation statistics and version.

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

from sepsisim_jax.training.config import PPOConfig
from sepsisim_jax.training.networks import ActorCritic
from sepsisim_jax.training.normalization import RunningStats

CHECKPOINT_FILE = "policy.msgpack"
FORMAT = "sepsisim_jax.ppo/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not match this library."""


def save_checkpoint(
    directory: Path | str,
    config: PPOConfig,
    net_params: Any,
    obs_stats: RunningStats,
) -> Path:
    """Write the policy of one seed to ``directory/policy.msgpack`` and return the path."""
    from sepsisim_jax import __version__

    path = Path(directory) / CHECKPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": _encode(config.to_dict()),
        "net_params": jax.tree.map(np.asarray, serialization.to_state_dict(net_params)),
        "obs_stats": jax.tree.map(np.asarray, serialization.to_state_dict(obs_stats)),
    }
    path.write_bytes(serialization.msgpack_serialize(payload))
    return path


def load_checkpoint(directory: Path | str) -> tuple[PPOConfig, ActorCritic, Any, RunningStats]:
    """Read ``directory/policy.msgpack``: ``config, network, net_params, obs_stats``."""
    from sepsisim_jax import __version__

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
        network = ActorCritic(_action_dim(config), config.hidden_sizes, config.log_std_init)
        template = network.init(jax.random.key(0), jnp.zeros((1, _obs_dim(config))))
        net_params = serialization.from_state_dict(template, payload["net_params"])
        _check_shapes(template, net_params, path)
        obs_stats = serialization.from_state_dict(
            RunningStats.create(_obs_dim(config)), payload["obs_stats"]
        )
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} does not match this library's policy: {error}") from error
    return config, network, jax.tree.map(jnp.asarray, net_params), obs_stats


def _check_shapes(template: Any, loaded: Any, path: Path) -> None:
    expected = jax.tree.map(np.shape, template)
    found = jax.tree.map(np.shape, loaded)
    if expected != found:
        raise CheckpointError(f"{path}: parameter shapes {found} differ from {expected}")


def _env_class(config: PPOConfig):
    from sepsisim_jax.envs.registration import env_class

    return env_class(config.env_id)


def _action_dim(config: PPOConfig) -> int:
    return len(_env_class(config).action_low)


def _obs_dim(config: PPOConfig) -> int:
    return len(_env_class(config).observation_names)


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    """msgpack keeps no tuples: store them as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v.values()) if isinstance(v, dict) else v) for k, v in values.items()}
