"""Logged datasets in Minari's format, with the behaviour policy's density and true value.

:func:`collect` simulates ``n`` episodes under a behaviour policy with a known density
(:mod:`sepsisim_jax.stochastic`), chunk by chunk as :func:`~sepsisim_jax.offline.episodes.
record_episodes` does (the same episodes for the same key), and writes them as a Minari
dataset (Farama's offline-RL format; the ``offline`` extra: ``pip install
"sepsisim-jax[offline]"``). Each episode of ``N`` steps holds, as Minari stores them:

- ``observations`` (``N + 1``), ``actions``, ``rewards``, ``terminations``, ``truncations``
  (``N``); only the last step can be terminal (death) or truncated (the step limit);
- ``infos``, ``N + 1`` entries per key: entry ``t`` is the info of the state of observation
  ``t`` (entry 0 the admission's): the hidden state (bacteria, tissue damage, the v1 model's
  state and, with virtual patients, the drawn parameters), plus ``log_prob`` and ``atom``, the
  behaviour's :meth:`~sepsisim_jax.stochastic.StochasticPolicy.log_prob` of action ``t``
  taken in observation ``t``. No action follows the last observation, so the last entry of
  ``log_prob`` is NaN and that of ``atom`` is False.

The dataset's Gymnasium spec is the registered ``sepsisim_jax/<env_id>`` with this
configuration (severity, patient spread, observation, solver, parameter overrides), so
``dataset.recover_environment()`` gives a :class:`~sepsisim_jax.gymnasium_adapter.
SepsisGymEnv` of the same patients. Its metadata (:func:`dataset_metadata`) carries the
behaviour policy, its density, and its true value: the mean discounted and undiscounted
return, with standard errors, over ``value_episodes`` patients independent of the logged
ones (:func:`~sepsisim_jax.offline.episodes.policy_value` on ``fold_in(key, VALUE_KEY_FOLD)``).

Writing: Minari's own writer (``minari.create_dataset_from_buffers``) creates the dataset
with the first episode; the others are appended chunk by chunk in the same HDF5 layout by
:class:`~sepsisim_jax.offline.hdf5.HDF5Appender` (Minari's ``update_dataset_from_buffer``,
``writer="minari"``, is several times slower and larger on disk for these short episodes),
while the next chunk simulates. Memory stays that of two chunks.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from tqdm import tqdm

from sepsisim_jax import _checks
from sepsisim_jax._version import __version__
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.registration import NAMESPACE, make
from sepsisim_jax.offline.behaviour import DENSITIES, describe, resolve_behaviour
from sepsisim_jax.offline.episodes import Episodes, episode_chunks, policy_value
from sepsisim_jax.offline.hdf5 import (
    EPISODE_FIELDS,
    INSTALL_HINT,
    STEP_FIELDS,
    HDF5Appender,
    HDF5Reader,
    episode_arrays,
    import_h5py,
)
from sepsisim_jax.stochastic import StochasticPolicy

if TYPE_CHECKING:
    from minari import MinariDataset

WRITERS = ("batched", "minari")
METADATA_KEY = "sepsisim_jax"  # our entry in the dataset's metadata
VALUE_KEY_FOLD = 0x7A1E  # the true value's patients: fold_in(key, VALUE_KEY_FOLD)


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as error:
        raise ImportError(f"datasets need Minari with HDF5 support: {INSTALL_HINT}") from error
    return minari


# --- collection -----------------------------------------------------------------------------


def default_dataset_id(env: SepsisEnv, policy: StochasticPolicy) -> str:
    """``sepsisim_jax/<env_id>/<severity>[-spread<s>][-<observation>]-<policy>-v0``, in the
    characters Minari allows (``.`` becomes ``p``)."""
    parts = [env.severity]
    if env.patient_spread > 0:
        parts.append(f"spread{env.patient_spread:g}")
    if env.observation != "full":
        parts.append(env.observation)
    parts.append(policy.name)
    slug = re.sub(r"[^0-9A-Za-z_]+", "-", "-".join(parts).replace(".", "p")).strip("-")
    return f"{NAMESPACE}/{env.env_id}/{slug}-v0"


def _check_dataset_id(dataset_id: str) -> Path:
    """The directory ``dataset_id`` would go to; ``ValueError`` if malformed or taken."""
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.storage.datasets_root_dir import get_dataset_path

    if not isinstance(dataset_id, str):
        raise TypeError(f"dataset_id must be a str, got {dataset_id!r}")
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError) as error:  # TypeError: no version (minari 0.5.4)
        raise ValueError(
            f"malformed dataset_id {dataset_id!r}: Minari ids are "
            "(namespace/)name-v<version>, in letters, digits, '_' and '-'"
        ) from error
    path = get_dataset_path(dataset_id)
    if path.exists():
        raise ValueError(
            f"a dataset {dataset_id!r} already exists at {path}; choose another dataset_id or "
            f"delete it (minari.delete_dataset({dataset_id!r}))"
        )
    return path


def _env_spec(env_id: str, config: dict[str, Any]) -> Any:
    """The registered Gymnasium spec of ``env_id`` with ``config`` as its make kwargs."""
    import gymnasium

    spec = gymnasium.spec(f"{NAMESPACE}/{env_id}")
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **config})


def collect(
    env_id: str,
    policy: StochasticPolicy | str,
    n_episodes: int,
    key: jax.Array,
    *,
    dataset_id: str | None = None,
    severity: str = "medium",
    patient_spread: float = 0.0,
    observation: str = "full",
    solver: str = "rk4",
    epsilon: float = 0.0,
    scale: float | list[float] | None = None,
    checkpoint: str | Path | None = None,
    gamma: float = 0.99,
    value_episodes: int = 100_000,
    chunk_size: int = 4096,
    writer: str = "batched",
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
    progress: bool = True,
    **params: Any,
) -> MinariDataset:
    """Simulate ``n_episodes`` patients of ``key`` under a behaviour policy and write them as
    the Minari dataset ``dataset_id`` (module docstring); returns the loaded
    ``minari.MinariDataset``.

    Args:
        env_id: an id of :data:`~sepsisim_jax.ENV_IDS`; with ``severity``,
            ``patient_spread``, ``observation``, ``solver`` (a name) and ``**params`` (the
            reference's options and parameter overrides) as in :func:`sepsisim_jax.make`.
        policy: a :class:`~sepsisim_jax.stochastic.StochasticPolicy` built for this
            environment, or a name of :func:`behaviour_policy` with its ``epsilon``,
            ``scale`` and ``checkpoint``.
        key: episode ``p`` is patient ``p`` of ``key`` (:mod:`sepsisim_jax.cohort.scan`'s
            scheme), the episode ``record_episodes(env, params, policy, key, n)`` records.
        dataset_id: Minari id, ``(namespace/)name-v<version>``; default
            :func:`default_dataset_id`. It goes under ``MINARI_DATASETS_PATH`` (default
            ``~/.minari/datasets``) and must not exist yet.
        gamma: discount of the true value.
        value_episodes: cohort size of the true value.
        chunk_size: patients simulated and written at a time.
        writer: ``"batched"`` (default) or ``"minari"`` (Minari's ``update_dataset_from_buffer``
            for every chunk: the same data, slower and larger).
        author: Minari's descriptive metadata, if wanted.
        author_email: likewise.
        code_permalink: likewise.
        progress: progress bars (collection, then the true value).

    A failure or an interruption deletes the partial dataset.
    """
    minari = _import_minari()
    import_h5py()
    _checks.positive_int("n_episodes", n_episodes)
    _checks.positive_int("chunk_size", chunk_size)
    _checks.positive_int("value_episodes", value_episodes)
    _checks.number_in("gamma", gamma, 0.0, 1.0)
    if writer not in WRITERS:
        raise ValueError(f"unknown writer {writer!r}; valid: {list(WRITERS)}")
    if not isinstance(solver, str):
        raise TypeError(f"solver must be a solver name (stored with the dataset), got {solver!r}")
    config = {"severity": severity, "patient_spread": patient_spread}
    config |= {"observation": observation, "solver": solver, **params}
    try:
        json.dumps(config)
    except TypeError as error:
        raise TypeError(f"parameter overrides must be numbers or bools: {error}") from error
    env, env_params = make(env_id, **config)
    behaviour = resolve_behaviour(env, policy, epsilon, scale, checkpoint)
    dataset_id = default_dataset_id(env, behaviour) if dataset_id is None else dataset_id
    path = _check_dataset_id(dataset_id)
    plan = _Plan(
        dataset_id=dataset_id,
        spec=_env_spec(env.env_id, config),
        env=env,
        params=env_params,
        behaviour=behaviour,
        key=key,
        n_episodes=n_episodes,
        chunk_size=chunk_size,
        writer=writer,
        credits={"author": author, "author_email": author_email, "code_permalink": code_permalink},
    )
    metadata = {
        "version": __version__,
        "env": {
            "env_id": env.env_id,
            "gymnasium_id": plan.spec.id,
            **config,
            "episode_steps": env.model.episode_steps,
            "observation_names": list(env.observation_names),
            "info_names": list(env.info_names),
        },
        "behaviour": describe(behaviour, checkpoint),
        "collection": {
            "n_episodes": n_episodes,
            "key_data": _key_data(key),
            "chunk_size": chunk_size,
            "writer": writer,
            "infos": {
                "log_prob": "behaviour's log_prob of action t in observation t; last entry NaN",
                "atom": "whether log_prob is a point mass's; last entry False",
            },
        },
    }
    try:
        timings = _write(minari, plan, progress)
        start = time.perf_counter()
        value_key = jax.random.fold_in(key, VALUE_KEY_FOLD)
        value = policy_value(
            env, env_params, behaviour, value_key, value_episodes, gamma=gamma, progress=progress
        )
        metadata["true_value"] = {**value.to_dict(), "key": f"fold_in(key, {VALUE_KEY_FOLD:#x})"}
        metadata["collection"]["seconds"] = timings | {"value": time.perf_counter() - start}
        minari.load_dataset(dataset_id).storage.update_metadata({METADATA_KEY: metadata})
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return minari.load_dataset(dataset_id)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What :func:`collect` writes, checked."""

    dataset_id: str
    spec: Any  # gymnasium EnvSpec
    env: SepsisEnv
    params: Any
    behaviour: StochasticPolicy
    key: jax.Array
    n_episodes: int
    chunk_size: int
    writer: str
    credits: dict[str, str | None]


def _key_data(key: jax.Array) -> list[int]:
    """The key's raw words (typed keys and legacy uint32 keys alike)."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).tolist()


def _write(minari: Any, plan: _Plan, progress: bool) -> dict[str, float]:
    """Simulate and write every chunk; returns the seconds spent waiting for the simulation
    (compilation included; simulation overlaps writing) and writing."""
    seconds = {"simulation": 0.0, "write": 0.0}
    chunks = episode_chunks(
        plan.env, plan.params, plan.behaviour, plan.key, plan.n_episodes, plan.chunk_size
    )
    dataset = None
    with tqdm(
        total=plan.n_episodes, desc="collect", unit="episode", disable=not progress, file=sys.stderr
    ) as bar:
        while True:
            start = time.perf_counter()
            first, chunk = next(chunks, (None, None))
            seconds["simulation"] += time.perf_counter() - start
            if chunk is None:
                return seconds
            start = time.perf_counter()
            if dataset is None:
                dataset = _create(minari, plan, _slice(chunk, 0, 1))
                chunk, first = _slice(chunk, 1, chunk.n_episodes), first + 1
                bar.update(1)
            if plan.writer == "minari":
                dataset.update_dataset_from_buffer(_buffers(chunk))
                bar.update(chunk.n_episodes)
            else:
                HDF5Appender(dataset.storage).append(chunk, first, bar.update)
            seconds["write"] += time.perf_counter() - start


def _slice(episodes: Episodes, start: int, stop: int) -> Episodes:
    return jax.tree.map(lambda x: x[start:stop], episodes)


def _buffers(episodes: Episodes) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    return [EpisodeBuffer(**arrays, infos=infos) for arrays, infos in episode_arrays(episodes)]


def _create(minari: Any, plan: _Plan, episode: Episodes) -> Any:
    """The dataset, created by Minari's own writer with its first episode."""
    behaviour, config = plan.behaviour, plan.spec.kwargs
    description = (
        f"{plan.n_episodes:,} episodes of {plan.spec.id} ({config['severity']}, patient "
        f"spread {config['patient_spread']:g}) under the behaviour policy {behaviour.name!r} "
        f"(density: {DENSITIES[behaviour.kind]}), simulated by sepsisim_jax {__version__}; "
        "infos carry the hidden state and the behaviour's log_prob and atom of each action."
    )
    with warnings.catch_warnings():
        # Minari suggests an author, e-mail and code link when none is given: they are optional.
        for field in ("author", "author_email", "code_permalink"):
            warnings.filterwarnings("ignore", message=f"`{field}` is set to None")
        return minari.create_dataset_from_buffers(
            plan.dataset_id,
            _buffers(episode),
            env=plan.spec,
            eval_env=plan.spec,
            algorithm_name=f"sepsisim_jax behaviour policy: {behaviour.name}",
            description=description,
            requirements=[f"sepsisim-jax=={__version__}"],
            data_format="hdf5",
            **plan.credits,
        )


# --- reading --------------------------------------------------------------------------------


def _dataset(dataset: MinariDataset | str) -> MinariDataset:
    minari = _import_minari()
    return minari.load_dataset(dataset) if isinstance(dataset, str) else dataset


def dataset_metadata(dataset: MinariDataset | str) -> dict[str, Any]:
    """What :func:`collect` recorded about a dataset (a ``MinariDataset`` or its id):
    ``version``, ``env`` (configuration), ``behaviour`` (name, kind, epsilon, scale,
    checkpoint, density), ``true_value`` (:class:`~sepsisim_jax.offline.episodes.PolicyValue`'s
    fields and the key it was estimated on) and ``collection`` (episodes, key, timings)."""
    metadata = _dataset(dataset).storage.metadata
    if METADATA_KEY not in metadata:
        raise ValueError(
            f"dataset {metadata.get('dataset_id')!r} was not written by "
            "sepsisim_jax.offline.collect (its metadata has no 'sepsisim_jax' entry)"
        )
    return metadata[METADATA_KEY]


def load_episodes(
    dataset: MinariDataset | str, *, reader: str = "batched", progress: bool = True
) -> Episodes:
    """A dataset written by :func:`collect` (or its id) as padded :class:`~sepsisim_jax.offline.
    episodes.Episodes`: equal to what ``record_episodes`` returns for the same key (for a
    dataset narrowed to some episodes, those episodes in its order).

    ``reader="batched"`` reads the HDF5 file directly into the padded arrays (about ten times
    faster than Minari's per-episode reader); ``"minari"`` goes through
    ``dataset.storage.get_episodes``."""
    if reader not in WRITERS:
        raise ValueError(f"unknown reader {reader!r}; valid: {list(WRITERS)}")
    dataset = _dataset(dataset)
    steps = dataset_metadata(dataset)["env"]["episode_steps"]
    indices = np.asarray(dataset.episode_indices)
    if len(indices) == 0:
        raise ValueError(f"dataset {dataset.id!r} (as narrowed) holds no episodes")
    with tqdm(
        total=len(indices), desc="load", unit="episode", disable=not progress, file=sys.stderr
    ) as bar:
        if reader == "minari":
            episodes = dataset.storage.get_episodes(indices)
            arrays = _gather(episodes, len(indices), steps, bar.update)
        else:
            arrays = HDF5Reader(dataset.storage).read(indices, steps, bar.update)
    lengths = arrays.pop("lengths")
    rows = np.arange(len(lengths))
    for name in ("log_prob", "atom"):  # Episodes pads with zeros where Minari's infos have NaN
        arrays[name][rows, lengths] = 0
        arrays[name] = np.ascontiguousarray(arrays[name][:, :steps])
    infos = {k: arrays.pop(k) for k in sorted(arrays) if k not in EPISODE_FIELDS}
    return Episodes(**arrays, lengths=lengths, infos=infos)


def _gather(episodes: Iterator[dict], n: int, steps: int, advance: Any) -> dict[str, np.ndarray]:
    """Minari's episode dicts into padded arrays: ``steps`` per step field, ``steps + 1``
    for observations and every info (``log_prob``, ``atom`` included), and ``lengths``."""
    arrays: dict[str, np.ndarray] = {"lengths": np.zeros(n, np.int32)}
    for i, episode in enumerate(episodes):
        arrays["lengths"][i] = len(episode["rewards"])
        values = {k: episode[k] for k in ("observations", *STEP_FIELDS)} | episode["infos"]
        for name, value in values.items():
            if name not in arrays:
                width = steps if name in STEP_FIELDS else steps + 1
                arrays[name] = np.zeros((n, width, *value.shape[1:]), value.dtype)
            arrays[name][i, : len(value)] = value
        advance(1)
    return arrays


__all__ = [
    "VALUE_KEY_FOLD",
    "collect",
    "dataset_metadata",
    "default_dataset_id",
    "load_episodes",
]
