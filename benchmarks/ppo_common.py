"""Helpers shared by the PPO speed benchmarks (``ppo_speed_*.py``).

stable-baselines3 and torch are imported only by the helpers that need them, so the scripts
that time the jitted PPO alone (the long run, the profile) run without them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from common import machine_info, optional
from tqdm import tqdm

from sepsisim_jax.text_table import Column
from sepsisim_jax.training import PPOConfig, default_config, train_ppo

SEVERITY = "medium"  # the reference's default, which its training uses
SAME_ENV = "SepsisManagement-v0"  # the identical-hyperparameter comparison and the profile
LONG_ENV = "SepsisManagement-v0"
JAX_SEED = 0

TIMING_COLUMNS: tuple[Column, ...] = (
    ("timesteps", ">9", lambda r: f"{r['timesteps']:,}"),
    ("compile s", ">9", lambda r: optional(r["compile_s"], ".1f")),
    ("train s", ">8", lambda r: f"{r['train_s']:.1f}"),
    ("env-steps/s", ">11", lambda r: f"{r['steps_per_s']:,.0f}"),
    ("with compile", ">12", lambda r: f"{r['steps_per_s_with_compile']:,.0f}"),
)


# The smallest update a smoke test runs: 4 patients for one 72-hour episode, one epoch of
# 2 minibatches (the default configuration's 64 patients, 4 epochs of 8).
QUICK_SIZES = {"num_envs": 4, "num_steps": 72, "update_epochs": 1, "num_minibatches": 2}


def same_config(updates: int, quick: bool = False) -> PPOConfig:
    """sepsisim_jax's default configuration on ``SAME_ENV`` for ``updates`` updates
    (``quick``: with the sizes of :data:`QUICK_SIZES`)."""
    sizes = QUICK_SIZES if quick else {}
    one_update = default_config(SAME_ENV, SEVERITY, **sizes).batch_size
    return default_config(SAME_ENV, SEVERITY, total_timesteps=updates * one_update, **sizes)


def timing_row(
    env_id: str,
    impl: str,
    timesteps: int,
    compile_s: float | None,
    train_s: float,
    hyperparameters: dict[str, Any],
) -> dict[str, Any]:
    """One training run: its timesteps, times and env-steps/s with and without compilation."""
    total_s = train_s + (compile_s or 0.0)
    return {
        "env_id": env_id,
        "impl": impl,
        "timesteps": timesteps,
        "compile_s": compile_s,
        "train_s": train_s,
        "total_s": total_s,
        "steps_per_s": timesteps / train_s,
        "steps_per_s_with_compile": timesteps / total_s,
        "hyperparameters": hyperparameters,
    }


def train_ours(
    env_id: str, timesteps: int, progress: bool = False, quick: bool = False
) -> dict[str, Any]:
    """Train sepsisim_jax's PPO (default config, one seed); compile and train timed apart
    (``quick``: with the sizes of :data:`QUICK_SIZES`).

    At least one update runs; the timesteps are whole updates (``num_envs x num_steps``).
    """
    sizes = QUICK_SIZES if quick else {}
    one_update = default_config(env_id, SEVERITY, **sizes).batch_size
    config = default_config(env_id, SEVERITY, total_timesteps=max(timesteps, one_update), **sizes)
    result = train_ppo(config, n_seeds=1, seed=JAX_SEED, progress=progress)
    steps = config.num_updates * config.batch_size
    compile_s, train_s = result.compile_seconds, result.train_seconds
    row = timing_row(env_id, "sepsisim_jax", steps, compile_s, train_s, config.to_dict())
    returns, survival = result.metrics["episode_return"][0], result.metrics["survival"][0]
    row["updates"] = config.num_updates
    row["first_update_return"] = float(returns[0])
    row["last_update_return"] = float(returns[-1])
    row["last_update_survival"] = float(survival[-1])
    return row


def environment(settings: dict[str, Any], sb3: bool = False) -> dict[str, Any]:
    """The machine (device included), the settings of the run and, for the scripts that run
    stable-baselines3, torch's thread settings and the versions of the reference's stack."""
    info = machine_info() | {"severity": SEVERITY, "jax_seed": JAX_SEED}
    if sb3:
        import gymnasium
        import torch
        from sepsisim.training.configs import SEED

        info |= {
            "torch": torch.__version__,
            "torch_interop_threads": torch.get_num_interop_threads(),
            "stable_baselines3": metadata.version("stable-baselines3"),
            "gymnasium": gymnasium.__version__,
            "sb3_seed": SEED,
        }
    return info | settings


def finish(info: dict[str, Any]) -> None:
    """Record the load average at the end of the run beside the one at its start."""
    info["load_avg_1_5_15_end"] = list(os.getloadavg())


def sb3_progress(bar: tqdm | None, label: str) -> Any:
    """A stable-baselines3 callback that shows the timesteps on ``bar`` once per rollout."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if bar is not None:
                bar.set_postfix_str(f"{label} {self.num_timesteps:,} steps")

    return Progress()


def positive(parser: Any, **values: int | Sequence[int]) -> None:
    """``parser.error`` unless every value (or every item of a sequence) is at least 1."""
    flat = [
        v for value in values.values() for v in (value if isinstance(value, Sequence) else [value])
    ]
    if min(flat) < 1:
        names = ", ".join("--" + name.replace("_", "-") for name in values)
        parser.error(f"{names} must be positive")
