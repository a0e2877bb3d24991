"""Gymnasium ``Env`` and ``VectorEnv`` over the jitted functional environments: one thin path.

``gym.make("sepsisim_jax/<Id>")`` gives :class:`SepsisGymEnv`, a drop-in for sepsisim 0.1.0's
``gym.make("sepsisim/<Id>")``; ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
gives :class:`SepsisVectorEnv`. Both run one jitted ``vmap`` of the functional env (the vector
env with same-step auto-reset, the single env as a batch of one without it); the state stays
on the device, the host checks actions and the env clips them, and each call's report is
copied to the host once. Keys: ``reset(seed=s)`` starts ``seed_key(s)``, split once per reset
and step (``key, subkey = jax.random.split(key)``); sub-env ``i`` of a vector env seeded ``s``
runs what a single env seeded ``s + i`` runs under the same actions.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from jax.flatten_util import ravel_pytree

from sepsisim_jax import _checks
from sepsisim_jax.adapters.seeding import SEED_LIMIT, seed_key, seed_keys
from sepsisim_jax.envs.base import SepsisEnv
from sepsisim_jax.envs.registration import make

_PYTHON = {"b": bool, "i": int, "u": int, "f": float}


class _Batch:
    """The jitted batch calls of one env configuration, shared by its adapters. Params and state
    are flat device vectors (a step call costs 48 us as pytrees, 23 us flat). Report rows:
    ``[obs, info]`` after the call, before an auto-reset (if any), reward, terminated, truncated."""

    def __init__(self, env: SepsisEnv, auto_reset: bool) -> None:
        self.env, self.auto_reset, self.obs_dim = env, auto_reset, len(env.observation_names)
        self.block = self.obs_dim + len(env.info_names)
        state = jax.eval_shape(env.reset, jax.random.key(0), env.default_params)[1]
        kinds = jax.eval_shape(env.info, state)
        self._unravel_state = ravel_pytree(jax.tree.map(jnp.zeros_like, state))[1]
        self.types = tuple(_PYTHON[kinds[k].dtype.kind] for k in env.info_names)
        self._unravel = ravel_pytree(self._canonical(env.default_params))[1]
        self.reset = jax.jit(jax.vmap(self._reset, in_axes=(0, None)))
        self.admit = jax.jit(jax.vmap(self._admit, in_axes=(0, None)))
        self.step = jax.jit(jax.vmap(self._step, in_axes=(0, 0, 0, None)))

    def _canonical(self, params: Any) -> Any:  # each leaf an array of its default's dtype
        return jax.tree.map(
            lambda d, v: jnp.asarray(v, jnp.asarray(d).dtype), self.env.default_params, params
        )

    def flatten(self, params: Any) -> jax.Array:  # the vector the jitted calls take
        return jax.device_put(ravel_pytree(self._canonical(params))[0])

    def _row(self, obs: jax.Array, info: dict[str, jax.Array]) -> list[jax.Array]:
        values = [obs] + [jnp.asarray(info[k])[None] for k in self.env.info_names]
        return [v.astype(self.env.dtype) for v in values]

    def _admit(self, subkey: jax.Array, params: jax.Array) -> tuple:
        params = self._unravel(params)
        obs, state = self.env.reset_env(jax.random.wrap_key_data(subkey), params)
        return ravel_pytree(state)[0], jnp.concatenate(self._row(obs, self.env.info(state)))

    def _reset(self, key: jax.Array, params: Any) -> tuple:
        key, subkey = jax.random.split(jax.random.wrap_key_data(key))
        return jax.random.key_data(key), *self._admit(jax.random.key_data(subkey), params)

    def _step(self, key: jax.Array, state: Any, action: jax.Array, params: jax.Array) -> tuple:
        env, params, state = self.env, self._unravel(params), self._unravel_state(state)
        key, subkey = jax.random.split(jax.random.wrap_key_data(key))
        if self.auto_reset:
            obs, state, reward, terminated, truncated, info = env.step(
                subkey, state, action, params
            )
            rows = self._row(obs, env.info(state)) + self._row(info["final_observation"], info)
        else:
            obs, state, reward, terminated, info = env.step_env(subkey, state, action, params)
            truncated = env.is_truncated(state, params)
            rows = self._row(obs, info)
        flags = jnp.stack([reward, terminated, truncated]).astype(env.dtype)
        report = jnp.concatenate([*rows, flags])
        return jax.random.key_data(key), jax.random.key_data(subkey), ravel_pytree(state)[0], report

    def observation(self, report: np.ndarray, block: int = 0) -> np.ndarray:
        return report[..., block * self.block :][..., : self.obs_dim].astype(np.float32)

    def info(self, report: np.ndarray, block: int = 0) -> dict[str, np.ndarray]:
        start = block * self.block + self.obs_dim
        names = self.env.info_names
        return {
            k: report[..., start + i].astype(t)
            for i, (k, t) in enumerate(zip(names, self.types, strict=True))
        }


# One set per configuration and float width (the state dtype follows jax_enable_x64).
_batch = functools.cache(lambda env, auto_reset, x64: _Batch(env, auto_reset))


class _Adapter:
    """Shared: env, device params, spaces, action check, pickling (jitted functions re-found)."""

    def _setup(self, env_id, auto_reset, limit, normalize_actions, render_mode, kwargs) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: these environments do not render")
        self.metadata = dict(type(self).metadata)  # vector wrappers write into it
        self.functional_env, self.params = env, params = make(env_id, **kwargs)
        if limit is not None:
            _checks.positive_int("max_episode_steps", limit)
            params = params.replace(max_steps_in_episode=min(limit, params.max_steps_in_episode))
        if any(np.ndim(leaf) for leaf in jax.tree.leaves(params)):
            raise ValueError("the Gymnasium adapters take scalar parameters (vmap for batches)")
        self.params, self._auto_reset, self._normalize = params, auto_reset, normalize_actions
        self._low, self._high = np.float64(env.action_low), np.float64(env.action_high)
        ones = np.ones_like(env.action_low)
        bounds = (-ones, ones) if normalize_actions else (env.action_low, env.action_high)
        self._action_space = spaces.Box(*bounds, dtype=np.float32)
        space = env.observation_space(params)
        self._obs_space = spaces.Box(*map(np.asarray, (space.low, space.high)), dtype=np.float32)
        self._keys = self._state = None
        self.__setstate__({})
        self._device_params = self._jit.flatten(params)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_jit"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._jit = _batch(self.functional_env, self._auto_reset, jax.config.jax_enable_x64)

    def _action(self, action: Any, shape: tuple[int, ...]) -> np.ndarray:
        """``action`` checked (``ValueError`` naming the shape), mapped if normalised."""
        expected = f"{self.functional_env.env_id} expects a numeric action of shape {shape}"
        try:
            array = np.asarray(action)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{expected}, got {type(action).__name__} {action!r}") from err
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{expected}, got dtype {array.dtype}")
        if array.shape != shape:
            raise ValueError(f"{expected}, got shape {array.shape}")
        if self._normalize:
            array = self._low + (array.astype(np.float64) + 1.0) * (self._high - self._low) / 2
            return array.astype(np.float32)
        dtype = np.dtype(self.functional_env.dtype)
        if array.dtype.kind != "f" or array.dtype.itemsize > dtype.itemsize:
            # Cast, saturating finite values: a huge action clips, it does not become inf.
            big = np.finfo(dtype).max
            finite = np.clip(array, -big, big, dtype=np.float64, casting="unsafe")
            array = np.where(np.isfinite(array), finite, array).astype(dtype)
        return array


class SepsisGymEnv(_Adapter, gymnasium.Env[np.ndarray, np.ndarray]):
    """One patient as a ``gymnasium.Env``: float32 observations, Python scalars otherwise.

    ``**kwargs`` go to ``sepsisim_jax.make`` (severity, solver, the reference's options ``dt``,
    ``antibiotic_given``, ``fluid_protocol``, parameters); ``normalize_actions`` takes actions
    in [-1, 1]. Stepping after an episode ended simulates the same patient on, as the
    reference does (warning once per episode); ``reset()`` admits the next patient.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self, env_id: str, normalize_actions: bool = False, render_mode: None = None, **kwargs: Any
    ) -> None:
        self._setup(env_id, False, None, normalize_actions, render_mode, kwargs)
        self.action_space, self.observation_space = self._action_space, self._obs_space
        self._end_key, self._warned = None, False  # subkey of the step that ended the episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Admit a patient; ``seed`` restarts the key chain (``options`` are not used)."""
        super().reset(seed=seed)
        if seed is None and self._end_key is not None:
            self._state, report = self._jit.admit(self._end_key, self._device_params)
        else:
            if seed is not None or self._keys is None:
                seed = int(self.np_random.integers(2**32)) if seed is None else seed
                self._keys = jax.random.key_data(seed_keys([seed]))
            self._keys, self._state, report = self._jit.reset(self._keys, self._device_params)
        self._end_key, self._warned = None, False
        return self._python(np.asarray(report)[0])[:2]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One hour; ``ValueError`` for an action that is not numeric of the action shape."""
        if self._state is None:
            raise RuntimeError(f"{self.functional_env.env_id}: call reset() before step()")
        if self._end_key is not None and not self._warned:
            self._warned = True
            message = "the episode ended; stepping on simulates the same patient (as sepsisim"
            warnings.warn(f"{message} does); reset() admits the next one", stacklevel=2)
        action = self._action(action, self.action_space.shape)[None]
        self._keys, subkeys, self._state, report = self._jit.step(
            self._keys, self._state, action, self._device_params
        )
        obs, info, reward, terminated, truncated = self._python(np.asarray(report)[0])
        if (terminated or truncated) and self._end_key is None:
            self._end_key = subkeys
        return obs, reward, terminated, truncated, info

    def _python(self, report: np.ndarray) -> tuple:
        values = report.tolist()
        names, types, start = self.functional_env.info_names, self._jit.types, self._jit.obs_dim
        info = {k: t(v) for k, t, v in zip(names, types, values[start:], strict=False)}
        reward, terminated, truncated = values[-3:]
        return self._jit.observation(report), info, reward, terminated != 0, truncated != 0


class SepsisVectorEnv(_Adapter, VectorEnv):
    """``num_envs`` patients in one jitted ``vmap`` call, in same-step auto-reset mode: an
    ended sub-env returns the next patient, with the ended episode's in ``info["final_obs"]``
    and ``info["final_info"]`` (masks ``_final_obs``, ``_final_info``), as ``SyncVectorEnv``.
    ``max_episode_steps`` cuts episodes earlier than ``max_steps_in_episode`` if smaller.
    """

    metadata: ClassVar[dict] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        env_id: str,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        normalize_actions: bool = False,
        render_mode: None = None,
        **kwargs: Any,
    ) -> None:
        _checks.positive_int("num_envs", num_envs)
        self._setup(env_id, True, max_episode_steps, normalize_actions, render_mode, kwargs)
        self.num_envs, self.single_action_space = num_envs, self._action_space
        self.single_observation_space = self._obs_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Admit every patient; ``seed`` gives sub-env ``i`` the seed ``seed + i``, or a list one
        seed (or ``None``) each; ``options`` are not used."""
        if isinstance(seed, int | np.integer):
            super().reset(seed=int(seed))
            seed = [int(seed) + i for i in range(self.num_envs)]
        seeds = [None] * self.num_envs if seed is None else list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds given for num_envs={self.num_envs}")
        if self._keys is None:  # unseeded sub-envs draw a seed on the first reset
            drawn = self.np_random.integers(2**32, size=self.num_envs).tolist()
            seeds = [d if s is None else s for s, d in zip(seeds, drawn, strict=True)]
        seeded = np.array([s is not None for s in seeds])
        if seeded.any():  # the others go on with their key chains
            fresh = jax.random.key_data(seed_keys([0 if s is None else s for s in seeds]))
            old = fresh if self._keys is None else self._keys
            self._keys = jnp.where(seeded[:, None], fresh, old)
        self._keys, self._state, report = self._jit.reset(self._keys, self._device_params)
        report = np.asarray(report)
        return self._jit.observation(report), _vector_info(self._jit.info(report))

    def step(self, actions: Any) -> tuple[np.ndarray, ...]:
        """Step every sub-env; ``ValueError`` for actions not numeric of ``(num_envs, dim)``."""
        if self._state is None:
            raise RuntimeError(f"{self.functional_env.env_id}: call reset() before step()")
        actions = self._action(actions, self.action_space.shape)
        self._keys, _, self._state, report = self._jit.step(
            self._keys, self._state, actions, self._device_params
        )
        report = np.asarray(report)
        reward, terminated, truncated = report[:, -3].astype(np.float64), *(report[:, -2:].T != 0)
        info = _vector_info(self._jit.info(report))
        done = terminated | truncated
        if done.any():
            info["final_obs"] = np.full(self.num_envs, None, dtype=object)
            ended = self._jit.observation(report[done], 1)
            for i, row in zip(np.flatnonzero(done), ended, strict=True):
                info["final_obs"][i] = row
            info["final_info"] = _vector_info(self._jit.info(report, 1), done)
            info["_final_obs"], info["_final_info"] = done.copy(), done.copy()
        return self._jit.observation(report), reward, terminated, truncated, info


def _vector_info(info: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict:
    """Gymnasium's vector info: values (zero where ``mask`` is False) and masks as ``_key``."""
    if mask is None:
        mask = np.ones(len(next(iter(info.values()))), bool)
    else:
        info = {k: np.where(mask, v, np.zeros_like(v)) for k, v in info.items()}
    return info | {f"_{k}": mask.copy() for k in info}


__all__ = ["SEED_LIMIT", "SepsisGymEnv", "SepsisVectorEnv", "seed_key", "seed_keys"]
