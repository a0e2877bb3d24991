"""Logged datasets in Minari's format, with the behaviour policy's density and true value.

:func:`collect` simulates ``n`` episodes under a behaviour policy with a known density
(:mod:`sepsisim_jax.stochastic`), chunk by chunk as :func:`~sepsisim_jax.episodes.
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
ones (:func:`~sepsisim_jax.episodes.policy_value` on ``fold_in(key, VALUE_KEY_FOLD)``).

Writing: Minari's own writer (``minari.create_dataset_from_buffers``) creates the dataset
with the first episode; the others are appended chunk by chunk in the same HDF5 layout by
:class:`_HDF5Appender`, which opens the file once per chunk and stores each array compactly
(Minari's ``update_dataset_from_buffer``, ``writer="minari"``, is several times slower and
larger on disk for these short episodes). Memory stays that of one chunk.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
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

from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.registration import NAMESPACE, make
from sepsisim_jax.episodes import Episodes, _record_chunk, policy_value
from sepsisim_jax.policies import heuristic_policy
from sepsisim_jax.sharding import padded_width, patient_range, to_host
from sepsisim_jax.stochastic import (
    StochasticPolicy,
    deterministic,
    epsilon_greedy,
    gaussian,
    uniform,
)

if TYPE_CHECKING:
    from minari import MinariDataset

BEHAVIOURS = ("random", "heuristic", "ppo")  # names :func:`behaviour_policy` takes
WRITERS = ("batched", "minari")
METADATA_KEY = "sepsisim_jax"  # our entry in the dataset's metadata
VALUE_KEY_FOLD = 0x7A1E  # the true value's patients: fold_in(key, VALUE_KEY_FOLD)
INSTALL_HINT = 'pip install "sepsisim-jax[offline]"'
DENSITIES = {
    "uniform": "1 / |B| on the action box B = [low, high]",
    "epsilon": "point mass 1 - epsilon at base(obs), plus density epsilon / |B| on the box",
    "gaussian": (
        "prod_i phi(z_i) / (sd_i (Phi(beta_i) - Phi(alpha_i))), z = (a - base(obs)) / sd, "
        "sd = scale (high - low), normal truncated to [low, high]"
    ),
}
_COMPACT_BYTES = 16_384  # arrays up to this size live in their HDF5 object header


def _import_minari() -> Any:
    try:
        import minari
    except ImportError as error:
        raise ImportError(f"datasets need Minari with HDF5 support: {INSTALL_HINT}") from error
    return minari


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as error:
        raise ImportError(f"datasets need h5py (Minari's HDF5 store): {INSTALL_HINT}") from error
    return h5py


# --- behaviour policies ---------------------------------------------------------------------


def behaviour_policy(
    env: SepsisEnv,
    name: str,
    *,
    epsilon: float = 0.0,
    scale: float | list[float] | None = None,
    checkpoint: str | Path | None = None,
) -> StochasticPolicy:
    """A behaviour policy with its density, by name (:data:`BEHAVIOURS`).

    - ``"random"``: uniform actions (no ``epsilon`` or ``scale``);
    - ``"heuristic"``: the clinical heuristic (:func:`~sepsisim_jax.policies.heuristic_policy`);
    - ``"ppo"``: the PPO policy saved in ``checkpoint`` (a directory or file written by
      ``sepsisim-jax train``), trained on this environment id with the full observation.

    The heuristic and PPO act deterministically, with a uniform action with probability
    ``epsilon`` (:func:`~sepsisim_jax.stochastic.epsilon_greedy`), or with truncated-normal
    noise of sd ``scale x (high - low)`` per component (:func:`~sepsisim_jax.stochastic.
    gaussian`); give at most one of the two.
    """
    if not isinstance(env, SepsisEnv):
        raise TypeError(f"env must be a SepsisEnv, got {type(env).__name__}")
    if name not in BEHAVIOURS:
        raise ValueError(f"unknown behaviour policy {name!r}; valid: {list(BEHAVIOURS)}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
    if scale is not None and epsilon > 0:
        raise ValueError(f"give epsilon or scale, not both (epsilon={epsilon}, scale={scale})")
    if (name == "ppo") != (checkpoint is not None):
        raise ValueError(
            "a checkpoint goes with the behaviour policy 'ppo' and only with it "
            f"(policy {name!r}, checkpoint {checkpoint!r})"
        )
    if name == "random":
        if epsilon > 0 or scale is not None:
            raise ValueError(
                f"the random policy is uniform already; it takes no epsilon or scale "
                f"(epsilon={epsilon}, scale={scale})"
            )
        return uniform(env)
    base = heuristic_policy(env) if name == "heuristic" else _ppo_policy(env, checkpoint)
    if scale is not None:
        return gaussian(env, base, scale, name)
    if epsilon > 0:
        return epsilon_greedy(env, base, float(epsilon), name)
    return deterministic(env, base, name)


def _ppo_policy(env: SepsisEnv, checkpoint: str | Path) -> Any:
    from sepsisim_jax.training.checkpoint import load_checkpoint

    policy = load_checkpoint(checkpoint)
    trained = policy.config.env_id
    if trained != env.env_id or env.observation != "full":
        raise ValueError(
            f"the checkpoint {str(checkpoint)!r} was trained on {trained} with the full "
            f"observation; the environment is {env.env_id} with the {env.observation!r} one"
        )
    return policy


def _describe(policy: StochasticPolicy, checkpoint: str | Path | None) -> dict[str, Any]:
    def shortest(values: Any) -> list[float]:  # float32 values as written: 0.3, not 0.30000001
        return [float(str(v)) for v in np.atleast_1d(np.asarray(values, np.float32))]

    return {
        "name": policy.name,
        "kind": policy.kind,
        "epsilon": shortest(policy.epsilon)[0] if policy.kind == "epsilon" else None,
        "scale": shortest(policy.scale) if policy.kind == "gaussian" else None,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "density": DENSITIES[policy.kind],
        "density_reference": "sepsisim_jax.stochastic.StochasticPolicy.log_prob",
    }


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


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


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
        key: episode ``p`` is patient ``p`` of ``key`` (:mod:`sepsisim_jax.rollout`'s
            scheme), the episode ``record_episodes(env, params, policy, key, n)`` records.
        dataset_id: Minari id, ``(namespace/)name-v<version>``; default
            :func:`default_dataset_id`. It goes under ``MINARI_DATASETS_PATH`` (default
            ``~/.minari/datasets``) and must not exist yet.
        gamma, value_episodes: discount and cohort size of the true value.
        chunk_size: patients simulated and written at a time.
        writer: ``"batched"`` (default) or ``"minari"`` (Minari's ``update_dataset_from_buffer``
            for every chunk: the same data, slower and larger).
        author, author_email, code_permalink: Minari's descriptive metadata, if wanted.
        progress: progress bars (collection, then the true value).

    A failure or an interruption deletes the partial dataset.
    """
    minari = _import_minari()
    _import_h5py()
    _positive_int("n_episodes", n_episodes)
    _positive_int("chunk_size", chunk_size)
    _positive_int("value_episodes", value_episodes)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
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
    behaviour = _behaviour(env, policy, epsilon, scale, checkpoint)
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
        "version": _version(),
        "env": {
            "env_id": env.env_id,
            "gymnasium_id": plan.spec.id,
            **config,
            "episode_steps": env.model.episode_steps,
            "observation_names": list(env.observation_names),
            "info_names": list(env.info_names),
        },
        "behaviour": _describe(behaviour, checkpoint),
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


def _behaviour(
    env: SepsisEnv,
    policy: StochasticPolicy | str,
    epsilon: float,
    scale: float | list[float] | None,
    checkpoint: str | Path | None,
) -> StochasticPolicy:
    """``policy`` if a :class:`StochasticPolicy` of ``env``'s actions, else by name."""
    if isinstance(policy, str):
        return behaviour_policy(env, policy, epsilon=epsilon, scale=scale, checkpoint=checkpoint)
    if not isinstance(policy, StochasticPolicy):
        raise TypeError(f"policy must be a StochasticPolicy or a name, got {policy!r}")
    if epsilon or scale is not None or checkpoint is not None:
        raise ValueError("epsilon, scale and checkpoint go with a policy name, not a policy")
    low, high = np.asarray(policy.low), np.asarray(policy.high)
    if low.shape != env.action_low.shape or not (
        np.allclose(low, env.action_low) and np.allclose(high, env.action_high)
    ):
        raise ValueError(f"policy {policy.name!r} was not built for {env.env_id}'s actions")
    return policy


def _key_data(key: jax.Array) -> list[int]:
    """The key's raw words (typed keys and legacy uint32 keys alike)."""
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    return np.asarray(jax.random.key_data(key) if typed else key).tolist()


def _version() -> str:
    from sepsisim_jax import __version__

    return __version__


def _write(minari: Any, plan: _Plan, progress: bool) -> dict[str, float]:
    """Simulate and write every chunk; returns the seconds spent waiting for the simulation
    (compilation included; simulation overlaps writing) and writing."""
    seconds = {"simulation": 0.0, "write": 0.0}
    chunks = _chunks(plan)
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
                _HDF5Appender(dataset.storage).append(chunk, first, bar.update)
            seconds["write"] += time.perf_counter() - start


def _chunks(plan: _Plan) -> Iterator[tuple[int, Episodes]]:
    """``(first episode, chunk)`` in order: the episodes of :func:`~sepsisim_jax.episodes.
    record_episodes`. The next chunk is dispatched before this one is handed over, so the
    device simulates while the host writes."""
    n_episodes = plan.n_episodes
    width = padded_width(min(plan.chunk_size, n_episodes))
    starts = list(range(0, n_episodes, width))

    def dispatch(start: int) -> Any:
        patients = patient_range(start, width)
        return _record_chunk(plan.env, plan.params, plan.behaviour, plan.key, patients)

    pending = dispatch(starts[0])
    for i, start in enumerate(starts):
        chunk = to_host(pending)
        if i + 1 < len(starts):
            pending = dispatch(starts[i + 1])
        keep = min(width, n_episodes - start)
        chunk = jax.tree.map(lambda x, keep=keep: np.asarray(x)[:keep], chunk)
        chunk["lengths"] = chunk["lengths"].astype(np.int32)
        yield start, Episodes(**chunk)


def _slice(episodes: Episodes, start: int, stop: int) -> Episodes:
    return jax.tree.map(lambda x: x[start:stop], episodes)


def _episode_arrays(episodes: Episodes) -> Iterator[tuple[dict, dict]]:
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


def _buffers(episodes: Episodes) -> list[Any]:
    from minari.data_collector import EpisodeBuffer

    return [EpisodeBuffer(**arrays, infos=infos) for arrays, infos in _episode_arrays(episodes)]


def _create(minari: Any, plan: _Plan, episode: Episodes) -> Any:
    """The dataset, created by Minari's own writer with its first episode."""
    behaviour, config = plan.behaviour, plan.spec.kwargs
    description = (
        f"{plan.n_episodes:,} episodes of {plan.spec.id} ({config['severity']}, patient "
        f"spread {config['patient_spread']:g}) under the behaviour policy {behaviour.name!r} "
        f"(density: {DENSITIES[behaviour.kind]}), simulated by sepsisim_jax {_version()}; "
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
            requirements=[f"sepsisim-jax=={_version()}"],
            data_format="hdf5",
            **plan.credits,
        )


class _HDF5Appender:
    """Appends episodes to a Minari HDF5 store in Minari's layout (group ``episode_<id>``
    with attributes ``id`` and ``total_steps``, the arrays as datasets, ``infos`` a group of
    one dataset per key), with h5py's low-level API: one file open per chunk, small arrays
    stored in their object header (HDF5's compact layout), the rest contiguous."""

    MAIN_FILE = "main_data.hdf5"  # Minari's HDF5Storage file name

    def __init__(self, storage: Any) -> None:
        if getattr(storage, "FORMAT", None) != "hdf5":
            raise ValueError(f"the batched writer writes HDF5 stores, not {storage!r}")
        h5py = _import_h5py()
        self.storage, self.h5py = storage, h5py
        self.path = Path(storage.data_path) / self.MAIN_FILE
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
        layout = self.compact if data.nbytes <= _COMPACT_BYTES else None
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
            for i, (arrays, infos) in enumerate(_episode_arrays(episodes)):
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


# --- reading --------------------------------------------------------------------------------


def _dataset(dataset: MinariDataset | str) -> MinariDataset:
    minari = _import_minari()
    return minari.load_dataset(dataset) if isinstance(dataset, str) else dataset


def dataset_metadata(dataset: MinariDataset | str) -> dict[str, Any]:
    """What :func:`collect` recorded about a dataset (a ``MinariDataset`` or its id):
    ``version``, ``env`` (configuration), ``behaviour`` (name, kind, epsilon, scale,
    checkpoint, density), ``true_value`` (:class:`~sepsisim_jax.episodes.PolicyValue`'s
    fields and the key it was estimated on) and ``collection`` (episodes, key, timings)."""
    metadata = _dataset(dataset).storage.metadata
    if METADATA_KEY not in metadata:
        raise ValueError(
            f"dataset {metadata.get('dataset_id')!r} was not written by "
            "sepsisim_jax.datasets.collect (its metadata has no 'sepsisim_jax' entry)"
        )
    return metadata[METADATA_KEY]


def load_episodes(
    dataset: MinariDataset | str, *, reader: str = "batched", progress: bool = True
) -> Episodes:
    """A dataset written by :func:`collect` (or its id) as padded :class:`~sepsisim_jax.
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
            arrays = _HDF5Reader(dataset.storage).read(indices, steps, bar.update)
    lengths = arrays.pop("lengths")
    rows = np.arange(len(lengths))
    for name in ("log_prob", "atom"):  # Episodes pads with zeros where Minari's infos have NaN
        arrays[name][rows, lengths] = 0
        arrays[name] = np.ascontiguousarray(arrays[name][:, :steps])
    infos = {k: arrays.pop(k) for k in sorted(arrays) if k not in _EPISODE_FIELDS}
    return Episodes(**arrays, lengths=lengths, infos=infos)


_STEP_FIELDS = ("actions", "rewards", "terminations", "truncations")
_EPISODE_FIELDS = ("observations", *_STEP_FIELDS, "log_prob", "atom")


def _gather(episodes: Iterator[dict], n: int, steps: int, advance: Any) -> dict[str, np.ndarray]:
    """Minari's episode dicts into padded arrays: ``steps`` per step field, ``steps + 1``
    for observations and every info (``log_prob``, ``atom`` included), and ``lengths``."""
    arrays: dict[str, np.ndarray] = {"lengths": np.zeros(n, np.int32)}
    for i, episode in enumerate(episodes):
        arrays["lengths"][i] = len(episode["rewards"])
        values = {k: episode[k] for k in ("observations", *_STEP_FIELDS)} | episode["infos"]
        for name, value in values.items():
            if name not in arrays:
                width = steps if name in _STEP_FIELDS else steps + 1
                arrays[name] = np.zeros((n, width, *value.shape[1:]), value.dtype)
            arrays[name][i, : len(value)] = value
        advance(1)
    return arrays


class _HDF5Reader:
    """Reads the episodes of a Minari HDF5 store straight into padded arrays (the layout of
    :class:`_HDF5Appender`), one low-level read per array."""

    def __init__(self, storage: Any) -> None:
        if getattr(storage, "FORMAT", None) != "hdf5":
            raise ValueError(f"the batched reader reads HDF5 stores, not {storage!r}")
        self.h5py = _import_h5py()
        self.path = Path(storage.data_path) / _HDF5Appender.MAIN_FILE

    def read(
        self, indices: np.ndarray, steps: int, advance: Any, every: int = 256
    ) -> dict[str, np.ndarray]:
        h5, n = self.h5py, len(indices)
        arrays: dict[str, np.ndarray] = {"lengths": np.zeros(n, np.int32)}
        with h5.File(self.path, "r") as file:
            first = file[f"episode_{indices[0]}"]
            names = ["observations", *_STEP_FIELDS] + [f"infos/{k}" for k in first["infos"]]
            targets = []
            for name in names:
                template = first[name]
                width = steps if name in _STEP_FIELDS else steps + 1
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


__all__ = [
    "BEHAVIOURS",
    "DENSITIES",
    "VALUE_KEY_FOLD",
    "behaviour_policy",
    "collect",
    "dataset_metadata",
    "default_dataset_id",
    "load_episodes",
]
