"""Gymnasium ``Env`` and ``VectorEnv`` over the jitted functional environments.

``gym.make("sepsisim_jax/<Id>")`` gives :class:`SepsisGymEnv`, a drop-in replacement for
``gym.make("sepsisim/<Id>")`` of sepsisim 0.1.0: the same spaces, info keys and episode rules.
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`SepsisVectorEnv`,
which steps all its patients in one jitted ``vmap`` call and auto-resets in Gymnasium's
same-step mode.

Seeding: ``reset(seed=s)`` starts the JAX key chain ``seed_key(s)``; each reset and each step
splits it, ``key, subkey = jax.random.split(key)``, and hands ``subkey`` to the functional
``reset`` or ``step``. A vector env seeds sub-env ``i`` with ``s + i``, so each sub-env runs
exactly the episodes a single env seeded with ``s + i`` runs under the same actions. After an
episode ends, the next unseeded ``reset()`` returns the patient the functional env already
admitted in that step's auto-reset, as the vector env continues with it.

The jitted functions are built once per environment configuration and shared by all adapters
of it; each step makes one call and one device-to-host copy.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from jax.flatten_util import ravel_pytree

from sepsisim_jax.envs.base import EnvState, SepsisEnv
from sepsisim_jax.envs.registration import make
from sepsisim_jax.physiology.solver import SolverConfig

SEED_LIMIT = 2**64  # seeds are ints in [0, 2**64)


# --- seeds and keys --------------------------------------------------------------------------


@jax.jit
def _key_data_from_words(low: jax.Array, high: jax.Array) -> jax.Array:
    keys = jax.vmap(jax.random.key)(low)
    folded = jax.vmap(jax.random.fold_in)(keys, high)
    return jax.random.key_data(jnp.where(high > 0, folded, keys))


def _seed_key_data(seeds: Sequence[int]) -> jax.Array:
    """Key data (one row per seed) of :func:`seed_keys`."""
    for seed in seeds:
        if not isinstance(seed, int | np.integer) or not 0 <= seed < SEED_LIMIT:
            raise ValueError(f"a seed must be an int in [0, 2**64), got {seed!r}")
    words = np.asarray([int(s) for s in seeds], np.uint64)
    low = (words & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (words >> np.uint64(32)).astype(np.uint32)
    return _key_data_from_words(low, high)


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """The JAX keys behind ``reset(seed=s)`` for each ``s`` (see :func:`seed_key`)."""
    return jax.random.wrap_key_data(_seed_key_data(seeds))


def seed_key(seed: int) -> jax.Array:
    """The JAX key behind ``reset(seed=seed)``: ``jax.random.key(seed)`` for seeds below 2**32.

    Larger seeds (below 2**64) fold their high 32 bits into the key of their low 32 bits.
    """
    return seed_keys([seed])[0]


# --- the jitted functions and the layout of what they return ---------------------------------
#
# Each jitted call takes and returns a few flat arrays (key data, the state as one vector, the
# params as one vector, a report vector) rather than pytrees: dispatch costs grow with the
# number of arguments and results. The single env goes further: its step takes one device
# array (the previous call's record) besides the action and the params, and returns one
# record, ``[key data, state, report]`` as uint32 words (floats bitcast, exactly), which is
# both the next step's input and, copied to the host once, everything the step returns.


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Where values sit in the report vector (a row per sub-env) a jitted call returns.

    A step's report is ``[obs, info]`` after the step (after any auto-reset), then
    ``[obs, info]`` before any auto-reset, then reward, terminated and truncated; a reset's is
    the first block alone.

    A single env's record is ``[key data, state, report]`` in uint32 words: ``key_words``
    words of key data, then the state vector and the report (a reset's padded to a step's
    length) with each float as ``float_words`` words.
    """

    obs_dim: int
    info_dtypes: dict[str, type[np.generic]]
    key_words: int
    state_size: int
    float_dtype: np.dtype

    @property
    def block(self) -> int:
        return self.obs_dim + len(self.info_dtypes)

    @property
    def step_report_size(self) -> int:
        return 2 * self.block + 3

    @property
    def float_words(self) -> int:
        return self.float_dtype.itemsize // 4

    @property
    def report_offset(self) -> int:
        """Index of the report's first word in a record."""
        return self.key_words + self.state_size * self.float_words

    def observation(self, report: np.ndarray, block: int = 0) -> np.ndarray:
        start = block * self.block
        return report[..., start : start + self.obs_dim].astype(np.float32)

    def info(
        self, report: np.ndarray, block: int = 0, mask: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Each info key's values, a new array per key; zero where ``mask`` (over the leading
        axis) is False."""
        start = block * self.block + self.obs_dim
        values = report[..., start : start + len(self.info_dtypes)]
        if mask is not None and not mask.all():
            values = np.where(mask[:, None], values, 0)
        return {
            key: values[..., i].astype(dtype)
            for i, (key, dtype) in enumerate(self.info_dtypes.items())
        }

    def outcome(self, report: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reward (float64), terminated and truncated (bool) of a step."""
        flags = report[..., 2 * self.block :]
        return flags[..., 0].astype(np.float64), flags[..., 1] != 0, flags[..., 2] != 0

    # A single env's report is one row: the methods below take it as a 1-D array and as the
    # list of its values (``tolist``), and use slices worked out once.

    def python_observation(self, report: np.ndarray, block: int) -> np.ndarray:
        """The observation in one sub-env's report, as a new float32 array."""
        return report[self._observation_slices[block]].astype(np.float32)

    def python_info(self, values: list[float], block: int) -> dict[str, Any]:
        """The info in one sub-env's report (as a list) with Python bool, int and float."""
        info = dict(zip(self._info_keys, values[self._info_slices[block]], strict=True))
        for key, convert in self._python_converters:
            info[key] = convert(info[key])
        return info

    def python_outcome(self, values: list[float]) -> tuple[float, bool, bool]:
        reward, terminated, truncated = values[2 * self.block :]
        return reward, terminated != 0, truncated != 0

    @functools.cached_property
    def _observation_slices(self) -> tuple[slice, slice]:
        return tuple(slice(b * self.block, b * self.block + self.obs_dim) for b in (0, 1))

    @functools.cached_property
    def _info_slices(self) -> tuple[slice, slice]:
        return tuple(slice(b * self.block + self.obs_dim, (b + 1) * self.block) for b in (0, 1))

    @functools.cached_property
    def _info_keys(self) -> tuple[str, ...]:
        return tuple(self.info_dtypes)

    @functools.cached_property
    def _python_converters(self) -> tuple[tuple[str, type], ...]:
        """``(key, bool or int)`` for the info keys that are not floats (``tolist`` gives
        floats, as ``float`` would)."""
        return tuple(
            (key, _PYTHON_TYPES[dtype])
            for key, dtype in self.info_dtypes.items()
            if dtype is not np.float64
        )

    def record_report(self, record: np.ndarray) -> np.ndarray:
        """The report (float dtype) of a single env's record (host uint32 words)."""
        return record[self.report_offset :].view(self.float_dtype)


_PYTHON_TYPES: dict[type[np.generic], type] = {np.bool_: bool, np.int64: int, np.float64: float}


class _Unravel(NamedTuple):
    """Rebuild params and state from their flat vectors."""

    params: Callable[[jax.Array], Any]
    state: Callable[[jax.Array], EnvState]


class _Jitted(NamedTuple):
    layout: _Layout
    unravel: _Unravel
    reset: Callable[..., Any]  # (key_data, params_vector) -> record
    step: Callable[..., Any]  # (record, action, params_vector) -> record
    reset_batch: Callable[..., Any]  # (key_data, params) -> key_data, state_vector, report
    step_batch: Callable[..., Any]  # (key_data, state, action, params) -> the same; a row per
    # sub-env (params shared)


def _pack(dtype: Any, *values: jax.Array) -> jax.Array:
    return jnp.concatenate([jnp.ravel(jnp.asarray(v, dtype)) for v in values])


def _observed(env: SepsisEnv, obs: jax.Array, info: dict[str, jax.Array]) -> jax.Array:
    return _pack(env.dtype, obs, *(info[key] for key in env.info_keys))


def _reset(
    env: SepsisEnv, unravel: _Unravel, key_data: jax.Array, params: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Split the key and admit a patient; the report is ``[obs, info]``."""
    key, key_reset = jax.random.split(jax.random.wrap_key_data(key_data))
    obs, state = env.reset(key_reset, unravel.params(params))
    report = _observed(env, obs, env._info(state))
    return jax.random.key_data(key), ravel_pytree(state)[0], report


def _step(
    env: SepsisEnv,
    unravel: _Unravel,
    key_data: jax.Array,
    state: jax.Array,
    action: jax.Array,
    params: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Split the key and step (auto-reset included); the report is laid out as in `_Layout`.

    ``action`` is clipped to the env's bounds here, as :class:`_Actions` clips on the host
    (NaN and +-inf pass), so a float32 action of the right shape needs no host work.
    """
    key, key_step = jax.random.split(jax.random.wrap_key_data(key_data))
    action = jnp.where(
        jnp.isfinite(action), jnp.clip(action, env.action_low, env.action_high), action
    )
    obs, state, reward, terminated, truncated, info = env.step(
        key_step, unravel.state(state), action, unravel.params(params)
    )
    report = jnp.concatenate(
        [
            _observed(env, obs, env._info(state)),
            _observed(env, info["final_observation"], info),
            _pack(env.dtype, reward, terminated, truncated),
        ]
    )
    return jax.random.key_data(key), ravel_pytree(state)[0], report


def _to_words(values: jax.Array) -> jax.Array:
    """A float vector as uint32 words (exact; 8-byte floats give two words each)."""
    return jnp.ravel(jax.lax.bitcast_convert_type(values, jnp.uint32))


def _from_words(words: jax.Array, dtype: np.dtype) -> jax.Array:
    """Inverse of :func:`_to_words`."""
    if dtype.itemsize == 8:
        words = jnp.reshape(words, (-1, 2))
    return jax.lax.bitcast_convert_type(words, dtype)


def _record(layout: _Layout, key_data: jax.Array, state: jax.Array, report: jax.Array) -> jax.Array:
    """A single env's record; a reset's report is padded with zeros to a step's length."""
    padding = jnp.zeros(layout.step_report_size - report.size, report.dtype)
    return jnp.concatenate([key_data, _to_words(state), _to_words(report), _to_words(padding)])


def _reset_record(
    env: SepsisEnv, unravel: _Unravel, layout: _Layout, key_data: jax.Array, params: jax.Array
) -> jax.Array:
    return _record(layout, *_reset(env, unravel, key_data, params))


def _step_record(
    env: SepsisEnv,
    unravel: _Unravel,
    layout: _Layout,
    record: jax.Array,
    action: jax.Array,
    params: jax.Array,
) -> jax.Array:
    """Step from the previous call's record; return the next one."""
    key_data = record[: layout.key_words]
    state = _from_words(record[layout.key_words : layout.report_offset], layout.float_dtype)
    return _record(layout, *_step(env, unravel, key_data, state, action, params))


def _canonical_params(env: SepsisEnv, params: Any) -> Any:
    """``params`` with each leaf an array of its default's dtype (scalars only)."""

    def leaf(default: Any, value: Any) -> jax.Array:
        if np.shape(value) != ():
            raise ValueError(
                f"the Gymnasium adapters take scalar parameters, got one of shape "
                f"{np.shape(value)}; vmap the functional environment for batched params"
            )
        return jnp.asarray(value, jnp.asarray(default).dtype)

    return jax.tree.map(leaf, env.default_params, params)


def _build(env: SepsisEnv) -> tuple[_Layout, _Unravel]:
    state = jax.eval_shape(env.reset, jax.random.key(0), env.default_params)[1]
    zeros = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), state)
    state_vector, unravel_state = ravel_pytree(zeros)
    unravel = _Unravel(
        params=ravel_pytree(_canonical_params(env, env.default_params))[1],
        state=unravel_state,
    )
    kinds = {"b": np.bool_, "i": np.int64, "u": np.int64, "f": np.float64}
    info = jax.eval_shape(env._info, state)
    key_data = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
    if state_vector.dtype != env.dtype:  # a record stores the state and the report alike
        raise TypeError(f"state vector of dtype {state_vector.dtype}, expected {env.dtype}")
    layout = _Layout(
        obs_dim=len(env.obs_low),
        info_dtypes={key: kinds[info[key].dtype.kind] for key in env.info_keys},
        key_words=key_data.size,
        state_size=state_vector.size,
        float_dtype=np.dtype(env.dtype),
    )
    return layout, unravel


@functools.cache
def _jitted_for(env: SepsisEnv, dtype: np.dtype) -> _Jitted:
    layout, unravel = _build(env)
    reset = functools.partial(_reset, env, unravel)
    step = functools.partial(_step, env, unravel)
    return _Jitted(
        layout=layout,
        unravel=unravel,
        reset=jax.jit(functools.partial(_reset_record, env, unravel, layout)),
        step=jax.jit(functools.partial(_step_record, env, unravel, layout)),
        reset_batch=jax.jit(jax.vmap(reset, in_axes=(0, None))),
        step_batch=jax.jit(jax.vmap(step, in_axes=(0, 0, 0, None))),
    )


def _jitted(env: SepsisEnv) -> _Jitted:
    """The jitted functions of ``env``: one set per configuration (and float width), shared
    by all adapters of it."""
    return _jitted_for(env, np.dtype(env.dtype))


def _flat_params(env: SepsisEnv, params: Any) -> jax.Array:
    return ravel_pytree(_canonical_params(env, params))[0]


@jax.jit
def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``mask`` (over the leading axis) is True, else ``old``."""

    def pick(n: jax.Array, o: jax.Array) -> jax.Array:
        return jnp.where(jnp.reshape(mask, mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


# --- actions ---------------------------------------------------------------------------------


class _Actions:
    """Checks actions on the host and maps them to the environment's action bounds."""

    def __init__(self, env: SepsisEnv, normalize: bool) -> None:
        self.env_id = env.env_id
        self.low = np.asarray(env.action_low, np.float64)
        self.high = np.asarray(env.action_high, np.float64)
        self.normalize = normalize
        bound = np.ones_like(env.action_low, dtype=np.float32)
        self.space = (
            spaces.Box(-bound, bound, dtype=np.float32)
            if normalize
            else spaces.Box(env.action_low, env.action_high, dtype=np.float32)
        )

    def __call__(self, action: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``action`` as float32 in the env's bounds; NaN and +-inf pass (no intervention).

        Raises ``ValueError`` naming the expected shape for a non-numeric or misshapen action.
        Without normalisation, a float32 array of the right shape (what
        ``action_space.sample()`` gives) is passed through as it is: the jitted step clips it
        exactly as this would.
        """
        if (
            type(action) is np.ndarray
            and action.dtype == np.float32
            and action.shape == shape
            and not self.normalize
        ):
            return action
        expected = f"{self.env_id} expects a numeric action of shape {shape}"
        try:
            array = np.asarray(action)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{expected}, got {type(action).__name__} {action!r}") from err
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{expected}, got dtype {array.dtype}")
        if array.shape != shape:
            raise ValueError(f"{expected}, got shape {array.shape}")
        array = array.astype(np.float64)
        low, high = self.space.low.astype(np.float64), self.space.high.astype(np.float64)
        clipped = np.clip(array, low, high)  # no float32 overflow; the env clips the same
        if self.normalize:
            clipped = self.low + (clipped + 1.0) * (self.high - self.low) / 2.0
        return np.where(np.isfinite(array), clipped, array).astype(np.float32)


def _not_rendered(render_mode: str | None) -> None:
    if render_mode is not None:
        raise ValueError(f"render_mode={render_mode!r}: these environments do not render")


# --- the single environment ------------------------------------------------------------------


class SepsisGymEnv(gymnasium.Env[np.ndarray, np.ndarray]):
    """One patient as a ``gymnasium.Env``, stepped by the jitted functional environment.

    Observations are float32 arrays in the reference's bounds, rewards Python floats, flags
    Python bools and ``info`` the reference's keys with Python scalars. The episode is cut
    after ``max_steps_in_episode`` steps (72; ``truncated=True``), which the 72-step
    ``TimeLimit`` of ``gym.make`` matches.

    Args:
        env_id: one of ``sepsisim_jax.ENV_IDS``.
        severity: ``"easy"``, ``"medium"`` or ``"hard"``.
        solver: ``"rk4"`` or ``"dopri5"`` (see ``sepsisim_jax.make``).
        normalize_actions: take actions in [-1, 1] per component, mapped linearly onto the
            reference's bounds (what stable-baselines3 and Gymnasium's checker recommend).
        render_mode: only ``None``.
        **params: parameter overrides, as for ``sepsisim_jax.make``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        env_id: str,
        severity: str = "medium",
        solver: SolverConfig | str = "rk4",
        normalize_actions: bool = False,
        render_mode: str | None = None,
        **params: Any,
    ) -> None:
        _not_rendered(render_mode)
        self.metadata = dict(type(self).metadata)  # vector wrappers write into it
        self.functional_env, self.params = make(env_id, severity=severity, solver=solver, **params)
        self._params = _flat_params(self.functional_env, self.params)
        self._jitted = _jitted(self.functional_env)
        self._layout = self._jitted.layout
        self._actions = _Actions(self.functional_env, normalize_actions)
        self.action_space = self._actions.space
        self.observation_space = spaces.Box(
            self.functional_env.obs_low, self.functional_env.obs_high, dtype=np.float32
        )
        self._record: jax.Array | None = None  # the last call's record (on the device)
        self._host: np.ndarray | None = None  # its copy on the host
        self._admitted: np.ndarray | None = None  # report of the auto-reset after an episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Admit a patient; ``seed`` restarts the key chain (``options`` are not used)."""
        super().reset(seed=seed)
        layout = self._layout
        if seed is None and self._admitted is not None:
            report = self._admitted
        else:
            if seed is not None:
                key = np.asarray(_seed_key_data([seed]))[0]
            elif self._host is None:
                key = np.asarray(_seed_key_data([int(self.np_random.integers(2**32))]))[0]
            else:
                key = self._host[: layout.key_words].copy()
            self._record = self._jitted.reset(key, self._params)
            self._host = np.asarray(self._record)
            report = layout.record_report(self._host)
        self._admitted = None
        return layout.python_observation(report, 0), layout.python_info(report.tolist(), 0)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One hour; ``ValueError`` for an action that is not numeric of the action shape."""
        if self._record is None:
            raise RuntimeError(f"{self.functional_env.env_id}: call reset() before step()")
        if self._admitted is not None:
            raise RuntimeError(
                f"{self.functional_env.env_id}: the episode has ended; call reset() before step()"
            )
        action = self._actions(action, self.action_space.shape)
        self._record = self._jitted.step(self._record, action, self._params)
        self._host = np.asarray(self._record)  # the one device-to-host copy
        layout = self._layout
        report = layout.record_report(self._host)
        values = report.tolist()
        reward, terminated, truncated = layout.python_outcome(values)
        if terminated or truncated:
            self._admitted = report  # the state already holds the next patient
        obs = layout.python_observation(report, 1)
        return obs, reward, terminated, truncated, layout.python_info(values, 1)


# --- the vector environment ------------------------------------------------------------------


class SepsisVectorEnv(VectorEnv):
    """``num_envs`` patients stepped together in one jitted ``vmap`` call.

    Same-step auto-reset: when a sub-env's episode ends, the returned observation and info
    are the next patient's, and ``info["final_obs"]`` / ``info["final_info"]`` (with their
    ``_final_obs`` / ``_final_info`` masks) hold the ended episode's, as Gymnasium's
    ``SyncVectorEnv`` gives them in that mode.

    Args:
        env_id, severity, solver, normalize_actions, render_mode, **params: as for
            :class:`SepsisGymEnv`.
        num_envs: number of patients.
        max_episode_steps: cut episodes after this many steps, if fewer than the
            ``max_steps_in_episode`` parameter (``gym.make_vec`` passes the registered 72).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": [],
    }

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        severity: str = "medium",
        solver: SolverConfig | str = "rk4",
        max_episode_steps: int | None = None,
        normalize_actions: bool = False,
        render_mode: str | None = None,
        **params: Any,
    ) -> None:
        _not_rendered(render_mode)
        if not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        self.metadata = dict(type(self).metadata)
        self.functional_env, params = make(env_id, severity=severity, solver=solver, **params)
        if max_episode_steps is not None:
            if not isinstance(max_episode_steps, int) or max_episode_steps < 1:
                raise ValueError(f"max_episode_steps must be a positive int: {max_episode_steps}")
            limit = min(max_episode_steps, params.max_steps_in_episode)
            params = params.replace(max_steps_in_episode=limit)
        self.params = params
        self._params = _flat_params(self.functional_env, params)
        self.num_envs = num_envs
        self._jitted = _jitted(self.functional_env)
        self._actions = _Actions(self.functional_env, normalize_actions)
        self.single_action_space = self._actions.space
        self.single_observation_space = spaces.Box(
            self.functional_env.obs_low, self.functional_env.obs_high, dtype=np.float32
        )
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._keys: jax.Array | None = None  # key data, a row per sub-env
        self._state: jax.Array | None = None  # EnvState vectors, a row per sub-env
        self._obs: np.ndarray | None = None

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Admit patients; ``seed`` gives sub-env ``i`` the seed ``seed + i``.

        ``seed`` may also be a list with one seed (or ``None``) per sub-env, and
        ``options={"reset_mask": mask}`` resets only the masked sub-envs.
        """
        mask = self._reset_mask(options)
        seeds = [s if m else None for s, m in zip(self._seeds(seed), mask, strict=True)]
        if isinstance(seed, int | np.integer):
            super().reset(seed=int(seed))
        self._update_keys(seeds)
        keys, state, report = self._jitted.reset_batch(self._keys, self._params)
        report = np.asarray(report)
        obs = self._jitted.layout.observation(report)
        if mask.all():
            self._keys, self._state, self._obs = keys, state, obs
        else:
            self._keys, self._state = _select(mask, (keys, state), (self._keys, self._state))
            self._obs = np.where(mask[:, None], obs, self._obs)
        return self._obs.copy(), _vector_info(self._jitted.layout.info(report, 0, mask), mask)

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env; ``ValueError`` for actions not numeric of ``(num_envs, dim)``."""
        if self._state is None:
            raise RuntimeError(f"{self.functional_env.env_id}: call reset() before step()")
        actions = self._actions(actions, self.action_space.shape)
        self._keys, self._state, report = self._jitted.step_batch(
            self._keys, self._state, actions, self._params
        )
        report = np.asarray(report)
        layout = self._jitted.layout
        reward, terminated, truncated = layout.outcome(report)
        self._obs = layout.observation(report)
        info = _vector_info(layout.info(report), np.ones(self.num_envs, bool))
        done = terminated | truncated
        if done.any():
            info["final_obs"] = _object_rows(layout, report, done)
            info["_final_obs"] = done.copy()
            info["final_info"] = _vector_info(layout.info(report, 1, done), done)
            info["_final_info"] = done.copy()
        return self._obs.copy(), reward, terminated, truncated, info

    def _seeds(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds given for num_envs={self.num_envs}")
        return seeds

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray:
        mask = (options or {}).get("reset_mask")
        if mask is None:
            return np.ones(self.num_envs, bool)
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.shape != (self.num_envs,) or not mask.any():
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) "
                f"with at least one True, got {mask!r}"
            )
        if self._state is None and not mask.all():
            raise RuntimeError("the first reset() must reset every sub-env")
        return mask

    def _update_keys(self, seeds: list[int | None]) -> None:
        """Restart the key chain of each seeded sub-env (all of them on the first reset)."""
        if self._keys is None:
            drawn = self.np_random.integers(2**32, size=self.num_envs)
            seeds = [int(d) if s is None else s for s, d in zip(seeds, drawn, strict=True)]
        seeded = np.array([s is not None for s in seeds])
        if not seeded.any():
            return
        keys = _seed_key_data([0 if s is None else s for s in seeds])
        self._keys = keys if seeded.all() else _select(seeded, keys, self._keys)


def _object_rows(layout: _Layout, report: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """An object array holding sub-env ``i``'s observation before any auto-reset where
    ``mask[i]``, else ``None``."""
    rows = np.full(len(mask), None, dtype=object)
    where = np.flatnonzero(mask)
    observations = layout.observation(report[where], 1)
    rows[where] = np.fromiter(observations, dtype=object, count=len(where))
    return rows


def _vector_info(info: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """Gymnasium's vector info: each key's values (already zero where ``mask`` is False, see
    ``_Layout.info``) and, as ``_key``, the mask."""
    out: dict[str, np.ndarray] = {}
    for key, values in info.items():
        out[key] = values
        out[f"_{key}"] = mask.copy()
    return out


__all__ = ["SEED_LIMIT", "SepsisGymEnv", "SepsisVectorEnv", "seed_key", "seed_keys"]
