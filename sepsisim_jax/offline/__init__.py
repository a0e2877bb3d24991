"""Layer 3, offline RL data: logged episodes and policy values in memory
(:mod:`~sepsisim_jax.offline.episodes`), behaviour policies by name
(:mod:`~sepsisim_jax.offline.behaviour`), Minari datasets (:mod:`~sepsisim_jax.offline.
datasets`, the ``offline`` extra) and the HDF5 layout they share (:mod:`~sepsisim_jax.offline.
hdf5`). Minari and h5py are imported only when a dataset is written or read."""

from sepsisim_jax.offline.behaviour import BEHAVIOURS, DENSITIES, behaviour_policy
from sepsisim_jax.offline.datasets import (
    VALUE_KEY_FOLD,
    collect,
    dataset_metadata,
    default_dataset_id,
    load_episodes,
)
from sepsisim_jax.offline.episodes import (
    Episodes,
    PolicyValue,
    episode_chunks,
    policy_value,
    record_chunk,
    record_episodes,
)

__all__ = [
    "BEHAVIOURS",
    "DENSITIES",
    "VALUE_KEY_FOLD",
    "Episodes",
    "PolicyValue",
    "behaviour_policy",
    "collect",
    "dataset_metadata",
    "default_dataset_id",
    "episode_chunks",
    "load_episodes",
    "policy_value",
    "record_chunk",
    "record_episodes",
]
