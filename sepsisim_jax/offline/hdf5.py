"""Minari's HDF5 layout, in one owner: episodes written and read in batches.

Minari 0.5 stores a dataset in ``main_data.hdf5``: a group ``episode_<id>`` per episode, with
attributes ``id`` and ``total_steps``, its arrays as datasets (``observations`` one longer
than the steps) and ``infos`` a group of one dataset per key. :class:`HDF5Appender` appends
episodes in that layout with h5py's low-level API (one file open per chunk, small arrays in
their object header: several times faster and smaller than Minari's own per-episode writer
for these short episodes), :class:`HDF5Reader` reads them straight into padded arrays. The
``offline`` extra pins ``minari<0.6``; tests compare both with Minari's own writer and reader.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sepsisim_jax.offline.episodes import Episodes

INSTALL_HINT = 'pip install "sepsisim-jax[offline]"'
MAIN_FILE = "main_data.hdf5"  # Minari's HDF5Storage file name
COMPACT_BYTES = 16_384  # arrays up to this size live in their HDF5 object header
STEP_FIELDS = ("actions", "rewards", "terminations", "truncations")
EPISODE_FIELDS = ("observations", *STEP_FIELDS, "log_prob", "atom")


def import_h5py() -> Any:
    try:
        import h5py
    except ImportError as error:
        raise ImportError(f"datasets need h5py (Minari's HDF5 store): {INSTALL_HINT}") from error
    return h5py


def episode_arrays(episodes: Episodes) -> Iterator[tuple[dict, dict]]:
    """Per episode: Minari's arrays (``N + 1`` observations, ``N`` steps) and its infos."""
    log_prob = np.concatenate([episodes.log_prob, np.zeros_like(episodes.log_prob[:, :1])], 1)
    atom = np.concatenate([episodes.atom, np.zeros_like(episodes.atom[:, :1])], 1)
    rows = np.arange(episodes.n_episodes)
    log_prob[rows, episodes.lengths] = np.nan  # no action after the last observation
    atom[rows, episodes.lengths] = False
    infos = {**episodes.infos, "log_prob": log_prob, "atom": atom}
    for i, n in enumerate(episodes.lengths.tolist()):
        yield (
            {
                "observations": episodes.observations[i, : n + 1],
                "actions": episodes.actions[i, :n],
                "rewards": episodes.rewards[i, :n],
                "terminations": episodes.terminations[i, :n],
                "truncations": episodes.truncations[i, :n],
            },
            {k: v[i, : n + 1] for k, v in infos.items()},
        )


class HDF5Appender:
    """Appends episodes to a Minari HDF5 store in Minari's layout (group ``episode_<id>``
    with attributes ``id`` and ``total_steps``, the arrays as datasets, ``infos`` a group of
    one dataset per key), with h5py's low-level API: one file open per chunk, small arrays
    stored in their object header (HDF5's compact layout), the rest contiguous."""

    def __init__(self, storage: Any) -> None:
        if getattr(storage, "FORMAT", None) != "hdf5":
            raise ValueError(f"the batched writer writes HDF5 stores, not {storage!r}")
        h5py = import_h5py()
        self.storage, self.h5py = storage, h5py
        self.path = Path(storage.data_path) / MAIN_FILE
        self.compact = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        self.compact.set_layout(h5py.h5d.COMPACT)
        self.scalar = h5py.h5s.create(h5py.h5s.SCALAR)
        self.types: dict[np.dtype, Any] = {}
        self.spaces: dict[tuple[int, ...], Any] = {}

    def _type(self, dtype: np.dtype) -> Any:
        if dtype not in self.types:
            self.types[dtype] = self.h5py.h5t.py_create(dtype, logical=True)
        return self.types[dtype]

    def _space(self, shape: tuple[int, ...]) -> Any:
        if shape not in self.spaces:
            self.spaces[shape] = self.h5py.h5s.create_simple(shape)
        return self.spaces[shape]

    def _array(self, group: Any, name: bytes, data: np.ndarray) -> None:
        h5, kind = self.h5py, self._type(data.dtype)
        layout = self.compact if data.nbytes <= COMPACT_BYTES else None
        dataset = h5.h5d.create(group, name, kind, self._space(data.shape), dcpl=layout)
        dataset.write(h5.h5s.ALL, h5.h5s.ALL, np.ascontiguousarray(data), mtype=kind)

    def _attribute(self, group: Any, name: bytes, value: int) -> None:
        value = np.asarray(value, np.int64)
        self.h5py.h5a.create(group, name, self._type(value.dtype), self.scalar).write(value)

    def append(self, episodes: Episodes, first: int, advance: Any = None, every: int = 256) -> None:
        """Write ``episodes`` as episodes ``first, first + 1, ...`` (``first`` must be the
        store's episode count) and update its totals; ``advance(k)`` after every ``k``."""
        h5, total = self.h5py, self.storage.total_episodes
        if first != total:
            raise ValueError(f"the store holds {total} episodes; cannot append at {first}")
        with h5.File(self.path, "a", track_order=True) as file:
            for i, (arrays, infos) in enumerate(episode_arrays(episodes)):
                group = h5.h5g.create(file.id, f"episode_{first + i}".encode())
                self._attribute(group, b"id", first + i)
                self._attribute(group, b"total_steps", len(arrays["rewards"]))
                for name, data in arrays.items():
                    self._array(group, name.encode(), data)
                info_group = h5.h5g.create(group, b"infos")
                for name, data in infos.items():
                    self._array(info_group, name.encode(), data)
                if advance is not None and (i + 1) % every == 0:
                    advance(every)
        if advance is not None:
            advance(episodes.n_episodes % every)
        self.storage.update_metadata(
            {
                "total_episodes": first + episodes.n_episodes,
                "total_steps": self.storage.total_steps + int(episodes.lengths.sum()),
                "dataset_size": self.storage.get_size(),
            }
        )


class HDF5Reader:
    """Reads the episodes of a Minari HDF5 store straight into padded arrays (the layout of
    :class:`HDF5Appender`), one low-level read per array."""

    def __init__(self, storage: Any) -> None:
        if getattr(storage, "FORMAT", None) != "hdf5":
            raise ValueError(f"the batched reader reads HDF5 stores, not {storage!r}")
        self.h5py = import_h5py()
        self.path = Path(storage.data_path) / MAIN_FILE

    def read(
        self, indices: np.ndarray, steps: int, advance: Any, every: int = 256
    ) -> dict[str, np.ndarray]:
        h5, n = self.h5py, len(indices)
        arrays: dict[str, np.ndarray] = {"lengths": np.zeros(n, np.int32)}
        with h5.File(self.path, "r") as file:
            first = file[f"episode_{indices[0]}"]
            names = ["observations", *STEP_FIELDS] + [f"infos/{k}" for k in first["infos"]]
            targets = []
            for name in names:
                template = first[name]
                width = steps if name in STEP_FIELDS else steps + 1
                key = name.removeprefix("infos/")
                arrays[key] = np.zeros((n, width, *template.shape[1:]), template.dtype)
                kind = h5.h5t.py_create(template.dtype, logical=True)
                targets.append((name.encode(), arrays[key], width, kind))
            for row, index in enumerate(indices.tolist()):
                group = h5.h5g.open(file.id, f"episode_{index}".encode())
                for name, out, width, kind in targets:
                    dataset = h5.h5d.open(group, name)
                    count = dataset.shape[0]
                    if count > width:
                        raise ValueError(f"episode {index}: {name.decode()} has {count} > {width}")
                    dataset.read(h5.h5s.ALL, h5.h5s.ALL, out[row, :count], mtype=kind)
                    if name == b"rewards":
                        arrays["lengths"][row] = count
                if (row + 1) % every == 0:
                    advance(every)
        advance(n % every)
        return arrays
