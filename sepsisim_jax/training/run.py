"""Training runs: several seeds in one vmapped call, in jitted chunks with a progress bar."""

from __future__ import annotations

import dataclasses
import functools
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from sepsisim_jax.cohort.sharding import patient_mesh, patient_sharding
from sepsisim_jax.training.config import PPOConfig
from sepsisim_jax.training.policy import PPOPolicy
from sepsisim_jax.training.ppo import RunnerState, Trainer, UpdateMetrics, make_train


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """Trained runner states (leading axis: seed) and per-update metrics ``(seeds, updates)``."""

    config: PPOConfig
    trainer: Trainer
    runner: RunnerState
    metrics: dict[str, np.ndarray]
    compile_seconds: float
    train_seconds: float

    @property
    def env_steps(self) -> np.ndarray:
        """Env-steps collected (per seed) after each update."""
        n = self.metrics["episode_return"].shape[-1]
        return (np.arange(n) + 1) * self.config.batch_size

    @property
    def policies(self) -> list[PPOPolicy]:
        """The deterministic policy of each seed."""
        n_seeds = self.runner.key.shape[0]
        return [self._seed_policy(i) for i in range(n_seeds)]

    @property
    def policy(self) -> PPOPolicy:
        """The best seed's policy (see :meth:`best_seed`)."""
        return self._seed_policy(self.best_seed())

    def _seed_policy(self, seed_index: int) -> PPOPolicy:
        trained = (self.runner.train_state.params, self.runner.obs_stats)
        net_params, obs_stats = jax.tree.map(lambda x: x[seed_index], trained)
        return PPOPolicy.create(self.config, net_params, obs_stats)

    def best_seed(self) -> int:
        """Seed whose last tenth of updates has the highest mean training return."""
        returns = self.metrics["episode_return"]
        tail = max(1, returns.shape[1] // 10)
        return int(np.nanargmax(np.nanmean(returns[:, -tail:], axis=1)))


def train_ppo(
    config: PPOConfig, n_seeds: int = 1, seed: int = 0, chunks: int = 20, progress: bool = True
) -> TrainingResult:
    """Train ``n_seeds`` seeds of ``config`` at once; the bar shows the current mean return.

    The updates run in about ``chunks`` equal jitted pieces (one compilation); the result
    equals one uninterrupted ``trainer.train`` per seed. With several devices the work is
    spread over them (:func:`runner_sharding`). Training the same config again in this
    process reuses the compiled program (``compile_seconds`` is then near zero).
    """
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    trainer, run = _trainer_and_run(config)
    keys = jax.random.split(jax.random.key(seed), n_seeds)
    n_updates = config.num_updates
    chunk = _chunk_size(n_updates, chunks)

    start = time.perf_counter()
    runner = init_seeds(trainer, keys)
    runner = jax.device_put(runner, runner_sharding(runner, n_seeds, config.num_envs))
    compiled = run.lower(runner, chunk).compile()
    compile_seconds = time.perf_counter() - start

    pieces: list[UpdateMetrics] = []
    start = time.perf_counter()
    with tqdm(
        total=n_updates * config.batch_size * n_seeds,
        unit="step",
        unit_scale=True,
        desc=f"PPO {config.env_id} {config.severity}",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        done = 0
        while done < n_updates:
            runner, metrics = compiled(runner)
            pieces.append(metrics)
            done += chunk
            latest = np.asarray(metrics.episode_return)[:, -1]
            bar.set_postfix(mean_return=f"{np.nanmean(latest):.1f}")
            bar.update(chunk * config.batch_size * n_seeds)
    jax.block_until_ready(runner)
    train_seconds = time.perf_counter() - start
    merged = {
        field.name: np.concatenate([np.asarray(getattr(m, field.name)) for m in pieces], axis=1)
        for field in dataclasses.fields(UpdateMetrics)
    }
    return TrainingResult(config, trainer, runner, merged, compile_seconds, train_seconds)


@functools.lru_cache(maxsize=16)
def _trainer_and_run(config: PPOConfig) -> tuple[Trainer, Any]:
    """The trainer of ``config`` and its jitted, seed-vmapped ``run``, built once per config, so
    that training the same config again reuses the compiled program."""
    trainer = make_train(config)
    return trainer, jax.jit(jax.vmap(trainer.run, in_axes=(0, None)), static_argnums=1)


def init_seeds(trainer: Trainer, keys: jax.Array) -> RunnerState:
    """Runner states for each key, stacked on a leading seed axis, ready for ``vmap(run)``.

    Seeds are initialised one by one: with jaxlib 0.10.2 on CPU, executing a jitted ``vmap``
    of the initialisation (a vmapped reset beside the network's orthogonal init) sometimes
    never returns (see README, known issues).
    """
    init = jax.jit(trainer.init)
    runner = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[init(k) for k in keys])
    return jax.block_until_ready(runner)


def runner_sharding(runner: RunnerState, n_seeds: int, num_envs: int) -> Any:
    """Where each leaf of the seed-stacked ``runner`` lives when there are several devices.

    Seeds are split over the devices when their number divides by the device count (each
    device trains whole seeds, no communication); otherwise each seed's patients are (the
    environment state, observations and running returns split along the patient axis, the
    network and optimiser state replicated), and XLA averages the gradient of each minibatch
    over the devices that hold its samples. Neither dividing is a ``ValueError``.
    With one device, everything stays where it is.
    """
    mesh = patient_mesh()
    if mesh is None:
        return jax.tree.map(lambda x: x.sharding, runner)
    if n_seeds % mesh.size == 0:
        return jax.tree.map(lambda _: patient_sharding(mesh, 0), runner)
    if num_envs % mesh.size:
        raise ValueError(
            f"neither the {n_seeds} seed(s) nor the {num_envs} patients per rollout divide by "
            f"the {mesh.size} devices; choose a multiple of {mesh.size} for one of them"
        )
    replicated = NamedSharding(mesh, PartitionSpec())
    per_patient = patient_sharding(mesh, 1)
    shardings = jax.tree.map(lambda _: replicated, runner)
    return shardings.replace(
        env_state=jax.tree.map(lambda _: per_patient, runner.env_state),
        obs=per_patient,
        episode_return=per_patient,
    )


def _chunk_size(n_updates: int, chunks: int) -> int:
    """The largest divisor of ``n_updates`` that gives at least ``chunks`` pieces (if possible)."""
    target = max(1, n_updates // max(1, chunks))
    return max(d for d in range(1, target + 1) if n_updates % d == 0)


def held_out_key(seed: int) -> jax.Array:
    """Evaluation patients: a key independent of the training keys split from ``key(seed)``."""
    return jax.random.fold_in(jax.random.key(seed), 0x5E751)
