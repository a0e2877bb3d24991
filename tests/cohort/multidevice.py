"""Runs in a subprocess for the multi-device tests: several forced host devices, or one process
of a two-process ``jax.distributed`` run. ``python -m tests.cohort.multidevice sharded OUT``,
``... ppo OUT`` or ``... distributed PROCESS_ID PORT OUT``; results go to ``OUT`` (npz)."""

from __future__ import annotations

import sys

import jax
import numpy as np

ENV_ID = "SepsisManagement-v0"
N_ROLLOUT = 101  # odd: the padding rule is exercised on two devices
N_TRAJECTORIES = 33
N_SUMMARY = 1000
CHUNK = 200  # padded to 208 patients on one device, to 224 (112 on each) on two


def _cohort():
    """The cohort (hard: some die): env, params, policy, key."""
    import sepsisim_jax
    from sepsisim_jax.policies import random_policy

    env, params = sepsisim_jax.make(ENV_ID, severity="hard")
    return env, params, random_policy(env), jax.random.key(11)


def per_patient_results() -> dict[str, np.ndarray]:
    """The cohort's per-patient outcomes and trajectories."""
    from sepsisim_jax.cohort.rollout import rollout_episodes, trajectories
    from sepsisim_jax.cohort.sharding import to_host

    env, params, policy, key = _cohort()
    stats = to_host(rollout_episodes(env, params, policy, key, N_ROLLOUT, chunk_size=64))
    out = {f"stats_{k}": v for k, v in vars(stats).items()}
    traj = to_host(trajectories(env, params, policy, key, N_TRAJECTORIES, n_steps=12))
    return out | {"obs": traj.obs, "reward": traj.reward, "terminated": traj.terminated}


def summary_results() -> dict[str, np.ndarray]:
    """The cohort's chunked summary, the devices and the chunk size it ran on."""
    from sepsisim_jax.cohort.summary import cohort_summary

    env, params, policy, key = _cohort()
    summary = cohort_summary(env, params, policy, key, N_SUMMARY, chunk_size=CHUNK, progress=False)
    out = {}
    for g, group in enumerate(summary.groups):
        out[f"group{g}_patients"] = np.array(group.patients)
        for name in ("mean", "sd"):
            out[f"group{g}_{name}"] = np.array(list(getattr(group, name).values()))
        out[f"group{g}_quantiles"] = np.array([list(t.values()) for t in group.quantiles.values()])
    out["devices"] = np.array(summary.devices)
    out["padded_chunk"] = np.array(summary.chunk_size)
    return out


def ppo_results() -> dict[str, np.ndarray]:
    """One seed of PPO (two updates of 8 patients): its metrics and trained weights, and where
    the runner's leaves live for one seed and for two."""
    from sepsisim_jax.training import default_config, train_ppo
    from sepsisim_jax.training.run import init_seeds, runner_sharding

    config = default_config("FluidResuscitation-v0", total_timesteps=2 * 8 * 72, num_envs=8)
    result = train_ppo(config, n_seeds=1, progress=False)
    out = {f"metric_{k}": v for k, v in result.metrics.items()}
    leaves = jax.tree.leaves(result.runner.train_state.params)
    out |= {f"weights_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    runner = init_seeds(result.trainer, jax.random.split(jax.random.key(0), 2))
    for n_seeds, num_envs in ((1, 8), (2, 8), (1, 7)):
        try:
            spec = runner_sharding(runner, n_seeds, num_envs).obs.spec
            out[f"spec_{n_seeds}_{num_envs}"] = np.array(str(spec))
        except (AttributeError, ValueError) as error:
            out[f"spec_{n_seeds}_{num_envs}"] = np.array(str(error))
    return out


def sharded(path: str) -> None:
    np.savez(path, **per_patient_results(), **summary_results())


def distributed(process_id: int, port: int, path: str) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id
    )
    assert jax.process_count() == 2 and jax.device_count() == 2
    results = summary_results()
    if process_id == 0:
        np.savez(path, **results)
    jax.distributed.shutdown()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "sharded":
        sharded(*args)
    elif mode == "ppo":
        np.savez(args[0], **ppo_results())
    else:
        distributed(int(args[0]), int(args[1]), args[2])
