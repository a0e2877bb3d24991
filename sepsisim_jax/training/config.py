"""PPO hyperparameters: a frozen dataclass, validated on construction, never mutated."""

from __future__ import annotations

import dataclasses
from typing import Any

from sepsisim_jax import _checks
from sepsisim_jax.envs.registration import SEVERITIES, env_ids


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Everything that defines a PPO run; shapes and loop counts derive from it (static).

    One update collects ``num_steps`` steps from each of ``num_envs`` patients, then runs
    ``update_epochs`` passes of ``num_minibatches`` minibatches over them.
    """

    env_id: str = "SepsisManagement-v0"
    severity: str = "medium"
    patient_spread: float = 0.0  # virtual patients (0: the same patient every episode)
    total_timesteps: int = 2_000_000
    num_envs: int = 64
    num_steps: int = 72
    update_epochs: int = 4
    num_minibatches: int = 8
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1  # rewards are multiplied by this for learning only
    hidden_sizes: tuple[int, ...] = (64, 64)
    log_std_init: float = 0.0

    def __post_init__(self) -> None:
        if self.env_id not in env_ids():
            raise ValueError(f"unknown env_id {self.env_id!r}; valid ids: {list(env_ids())}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; valid: {list(SEVERITIES)}")
        for name in ("num_envs", "num_steps", "update_epochs", "num_minibatches"):
            _checks.positive_int(name, getattr(self, name))
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"total_timesteps={self.total_timesteps} is less than one update "
                f"(num_envs x num_steps = {self.batch_size})"
            )
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_envs x num_steps = {self.batch_size} is not divisible by "
                f"num_minibatches={self.num_minibatches}"
            )
        for name in ("learning_rate", "clip_eps", "max_grad_norm", "reward_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            _checks.number_in(name, getattr(self, name), 0.0, 1.0)
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes!r}")

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown PPOConfig fields {sorted(unknown)}")
        values = dict(values)
        if "hidden_sizes" in values:
            values["hidden_sizes"] = tuple(values["hidden_sizes"])
        return cls(**values)


def default_config(env_id: str, severity: str = "medium", **overrides: Any) -> PPOConfig:
    """The default PPO configuration for ``env_id`` (tuned on this simulator), with overrides."""
    return dataclasses.replace(PPOConfig(env_id=env_id, severity=severity), **overrides)
