"""stable-baselines3 ``VecEnv`` over the jitted Gymnasium vector env (the ``sb3`` extra).

SB3 takes its own ``VecEnv``, not a Gymnasium ``VectorEnv``. :class:`SepsisVecEnv` speaks SB3's
protocol over :class:`~sepsisim_jax.adapters.gymnasium.SepsisVectorEnv`, so PPO, A2C, SAC or TD3
step all ``num_envs`` patients in one jitted call::

    from stable_baselines3 import PPO
    from sepsisim_jax.adapters.sb3 import make_sb3_vec_env

    env = make_sb3_vec_env("SepsisManagement-v0", num_envs=64, normalize_actions=True)
    model = PPO("MlpPolicy", env).learn(10_000)

It returns what a ``DummyVecEnv`` of ``gym.make("sepsisim_jax/<Id>")`` envs seeded ``seed + i``
returns under the same actions: an ended sub-env gives the next patient's observation, the
ended episode's in ``infos[i]["terminal_observation"]`` and its info keys, and
``infos[i]["TimeLimit.truncated"]`` when the time limit, not death, ended it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import Wrapper, spaces
from gymnasium.vector import AutoresetMode, VectorEnv

try:
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import (
        VecEnvIndices,
        VecEnvObs,
        VecEnvStepReturn,
    )
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'sepsisim_jax.adapters.sb3 needs stable-baselines3: pip install "sepsisim-jax[sb3]"'
    ) from err

from sepsisim_jax.adapters.gymnasium import SepsisVectorEnv

# Keys of the vector env's info that are not per-patient values.
_FINAL_KEYS = ("final_obs", "final_info")


class SepsisVecEnv(VecEnv):
    """SB3 ``VecEnv`` over a same-step auto-reset Gymnasium vector env (a ``SepsisVectorEnv``).

    The sub-envs are rows of one jitted batch, not separate objects: ``get_attr`` reads the
    vector env's attribute (a sub-env's spaces for ``observation_space``/``action_space``),
    ``set_attr`` and ``env_method`` raise ``NotImplementedError``, and no sub-env is wrapped.
    Reset options are not used by these envs and are ignored.
    """

    def __init__(self, vector_env: VectorEnv) -> None:
        mode = vector_env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SepsisVecEnv needs a same-step auto-reset vector env, got {mode}")
        obs_space, action_space = vector_env.single_observation_space, vector_env.action_space
        if not isinstance(obs_space, spaces.Box) or not isinstance(action_space, spaces.Box):
            raise ValueError("SepsisVecEnv needs Box observation and action spaces")
        self.vector_env = vector_env
        self._actions: np.ndarray | None = None
        super().__init__(vector_env.num_envs, obs_space, vector_env.single_action_space)

    def reset(self) -> VecEnvObs:
        """Admit every patient, with the seeds of the last ``seed()`` call if any (used once)."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.vector_env.reset(seed=seeds)
        self.reset_infos = _split_info(info, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        self._actions = None
        return np.asarray(obs, dtype=np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        """Keep ``actions`` (shape ``(num_envs, *action_shape)``) for :meth:`step_wait`."""
        shape = (self.num_envs, *self.action_space.shape)
        actions = np.asarray(actions)
        if actions.shape != shape:
            raise ValueError(f"expected actions of shape {shape}, got shape {actions.shape}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """One jitted step of every patient; ended ones are already re-admitted."""
        if self._actions is None:
            raise RuntimeError("call step_async(actions) (after reset()) before step_wait()")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, info = self.vector_env.step(actions)
        dones = np.logical_or(terminated, truncated)
        infos = _split_info(info, self.num_envs)
        if dones.any():
            ended = _split_info(info["final_info"], self.num_envs)
            for i in np.flatnonzero(dones):
                self.reset_infos[i] = infos[i]
                infos[i] = ended[i]
                infos[i]["terminal_observation"] = np.asarray(
                    info["final_obs"][i], dtype=np.float32
                )
        cut = np.logical_and(truncated, np.logical_not(terminated)).tolist()
        for i, value in enumerate(cut):
            infos[i]["TimeLimit.truncated"] = value
        return (
            np.asarray(obs, dtype=np.float32),
            np.asarray(reward, dtype=np.float32),
            dones.astype(bool),
            infos,
        )

    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's ``attr_name`` once per index (``AttributeError`` if it has none)."""
        single = {"observation_space": "single_observation_space"}
        single["action_space"] = "single_action_space"
        value = getattr(self.vector_env, single.get(attr_name, attr_name))
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise NotImplementedError(
            f"cannot set {attr_name!r}: the sub-envs are rows of one jitted batch; "
            "make a new env with other arguments instead"
        )

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        raise NotImplementedError(
            f"cannot call {method_name!r} per sub-env: the sub-envs are rows of one jitted "
            "batch; call it on .vector_env instead"
        )

    def env_is_wrapped(
        self, wrapper_class: type[Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Always ``False``: the sub-envs are no Gymnasium envs, so no wrapper wraps them."""
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        chosen = list(self._get_indices(indices))
        if any(not 0 <= i < self.num_envs for i in chosen):
            raise IndexError(f"sub-env indices {chosen} out of range for {self.num_envs} envs")
        return chosen


def make_sb3_vec_env(
    env_id: str, num_envs: int = 1, seed: int | None = None, **kwargs: Any
) -> SepsisVecEnv:
    """``SepsisVecEnv(SepsisVectorEnv(env_id, num_envs, **kwargs))``, ``seed``-ed (sub-env ``i``
    gets ``seed + i`` at the first reset) if given. ``kwargs``: severity, solver,
    ``max_episode_steps``, ``normalize_actions`` (actions in [-1, 1]) and parameters."""
    env = SepsisVecEnv(SepsisVectorEnv(env_id, num_envs=num_envs, **kwargs))
    if seed is not None:
        env.seed(seed)
    return env


def _split_info(info: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """A Gymnasium vector info as one dict of Python scalars per sub-env (masked-out keys
    left out, as are the masks and the final observation and info)."""
    keys = [k for k in info if not k.startswith("_") and k not in _FINAL_KEYS]
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key in keys:
        values, mask = np.asarray(info[key]).tolist(), info.get(f"_{key}")
        present = [True] * num_envs if mask is None else np.asarray(mask).tolist()
        for row, value, keep in zip(out, values, present, strict=True):
            if keep:
                row[key] = value
    return out


__all__ = ["SepsisVecEnv", "make_sb3_vec_env"]
