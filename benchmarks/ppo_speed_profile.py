"""PPO training speed, the profile: each stage of one update of sepsisim_jax's jitted PPO
(rollout: env steps, policy pass, value of ``final_observation``; GAE; minibatch epochs:
shuffles, gradient steps), jitted and timed alone, at one seed and at four seeds vmapped.

The configuration is the identical-hyperparameter comparison's (``ppo_speed_same.py``). Each
stage is vmapped over the seeds and jitted alone as a ``lax.scan`` over 10 updates' worth of
it (``--updates``); all are compiled first, then interleaved rounds call each once, and the
fastest call counts: milliseconds per update (of all the seeds). See ``README.md`` in this
directory. Usage: ``python benchmarks/ppo_speed_profile.py [--profile-seeds 1 4] [--quick]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from common import Timed, output_path, write_results
from ppo_common import environment, finish, positive, same_config
from tqdm import tqdm

from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import PPOConfig, init_seeds, make_train
from sepsisim_jax.training.networks import gaussian_log_prob, to_env_action
from sepsisim_jax.training.ppo import (
    UpdateParts,
    generalized_advantages,
    make_update_parts,
    permutation,
)

PROFILE_UPDATES = 10  # updates per timed call of a stage
PROFILE_REPEATS = 10  # interleaved rounds; the fastest call of each stage counts
PROFILE_SEEDS = (1, 4)
QUICK = {"profile_seeds": [1], "updates": 1, "repeats": 2}


def _repeat(body: Callable[[Any, Any], Any], n: int) -> Callable[[Any], Any]:
    """``n`` iterations of ``body(carry, i)`` in one ``lax.scan``; returns the last carry."""
    return lambda carry: jax.lax.scan(lambda c, i: (body(c, i), None), carry, jnp.arange(n))[0]


def profile_stages(
    parts: UpdateParts, config: PPOConfig, runner: Any, batch: Any, data: Any, updates: int
) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """Stage -> (function of one seed's carry, that carry): the stage as often as
    ``updates`` updates run it. Each stage's input depends on its loop carry, so that
    XLA cannot hoist the work out of the loop."""
    env, network, params = parts.env, parts.network, runner.train_state.params
    n_envs, n_epochs = config.num_envs, config.update_epochs
    steps = updates * config.num_steps
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    zero = jnp.zeros((n_envs, len(env.action_low)))
    action = to_env_action(zero, env.action_low, env.action_high)
    obs = runner.obs_stats.normalize(runner.obs)

    def env_steps(carry: Any, _: Any) -> Any:
        key, env_state = carry
        key, _, key_env = jax.random.split(key, 3)
        keys = jax.random.split(key_env, n_envs)
        _, env_state, *_ = step_envs(keys, env_state, action, parts.env_params)
        return key, env_state

    def policy_pass(carry: Any, _: Any) -> Any:
        key, obs = carry
        key, key_action = jax.random.split(key)
        mean, log_std, value = network.apply(params, obs)
        sample = mean + jnp.exp(log_std) * jax.random.normal(key_action, mean.shape)
        log_prob = gaussian_log_prob(sample, mean, log_std)
        return key, obs + 1e-6 * (value + log_prob)[:, None]

    def final_value(obs: jax.Array, _: Any) -> jax.Array:
        return obs + 1e-6 * network.apply(params, obs)[2][:, None]

    def gae(batch: Any, _: Any) -> Any:
        advantage, target = generalized_advantages(batch, config.gamma, config.gae_lambda)
        return batch.replace(reward=batch.reward + 1e-6 * (advantage + target))

    def learn(carry: Any, _: Any) -> Any:
        train_state, key = carry
        key, key_learn = jax.random.split(key)
        return parts.learn(train_state, key_learn, data)[0], key

    def shuffles(carry: Any, shuffle: Callable[[jax.Array, int], jax.Array]) -> Any:
        total, key = carry
        for _ in range(n_epochs):
            key, key_perm = jax.random.split(key)
            order = shuffle(key_perm, config.batch_size)
            total = total + sum(jnp.sum(x[order][0]) for x in jax.tree.leaves(data))
        return total, key

    minibatches = jax.tree.map(
        lambda x: x.reshape((config.num_minibatches, config.minibatch_size, *x.shape[1:])), data
    )

    def gradient_steps(train_state: Any, _: Any) -> Any:
        def epoch(state: Any, _: Any) -> Any:
            return jax.lax.scan(parts.gradient_step, state, minibatches)[0], None

        return jax.lax.scan(epoch, train_state, None, n_epochs)[0]

    key, total = runner.key, jnp.zeros(())
    return {
        "update": (_repeat(lambda r, _: parts.update(r, None)[0], updates), runner),
        "rollout": (_repeat(lambda r, _: parts.collect(r)[0], updates), runner),
        "env steps": (_repeat(env_steps, steps), (key, runner.env_state)),
        "policy pass": (_repeat(policy_pass, steps), (key, obs)),
        "final_observation value": (_repeat(final_value, steps), obs),
        "GAE": (_repeat(gae, updates), batch),
        "minibatch epochs": (_repeat(learn, updates), (runner.train_state, key)),
        "shuffles": (_repeat(lambda c, _: shuffles(c, permutation), updates), (total, key)),
        "gradient steps": (_repeat(gradient_steps, updates), runner.train_state),
        "shuffles, jax.random.permutation": (
            _repeat(lambda c, _: shuffles(c, jax.random.permutation), updates),
            (total, key),
        ),
    }


# (stage, depth, what it times), in table order. "rest of X" rows are derived: X less the rows
# below it; the last row is for information (what the shuffles cost before this benchmark's
# version of the trainer).
PROFILE_ROWS = (
    ("update", 0, "one whole update: trainer.run's loop body"),
    ("rollout", 1, "72 steps of 64 patients (parts.collect)"),
    ("env steps", 2, "vmapped env.step and its key splits, a fixed action"),
    ("policy pass", 2, "actor-critic on 64 obs, Gaussian action, log-prob"),
    ("final_observation value", 2, "critic on the 64 pre-reset obs"),
    ("rest of rollout", 2, "obs statistics, normalisation, bookkeeping"),
    ("GAE", 1, "generalized_advantages over 72 x 64 transitions"),
    ("minibatch epochs", 1, "parts.learn: 4 x (shuffle, 8 gradient steps)"),
    ("shuffles", 2, "4 permutations of 4,608 samples, the gathers"),
    ("gradient steps", 2, "32 x (loss, gradient, clipping, Adam)"),
    ("rest of minibatch epochs", 2, "minibatch reshapes, loop"),
    ("rest of update", 1, "flattening the batch, metrics"),
    ("shuffles, jax.random.permutation", 0, "information: the shuffles with JAX's permutation"),
)
REST = {
    "rest of rollout": ("rollout", ("env steps", "policy pass", "final_observation value")),
    "rest of minibatch epochs": ("minibatch epochs", ("shuffles", "gradient steps")),
    "rest of update": ("update", ("rollout", "GAE", "minibatch epochs")),
}


def profile(
    seed_counts: Sequence[int], repeats: int, updates: int, quick: bool = False
) -> dict[str, Any]:
    """Time each stage of one update of the jitted PPO (the headline's configuration), vmapped
    over each count of seeds: compile everything, then ``repeats`` interleaved rounds; the
    fastest call of each stage counts. Milliseconds per update (of all the seeds).
    ``quick``: at the sizes of ``ppo_common.QUICK_SIZES``."""
    config = same_config(updates, quick)
    parts, trainer = make_update_parts(config), make_train(config)

    def inputs(runner: Any) -> tuple[Any, Any]:
        _, (batch, _) = parts.collect(runner)
        advantage, target = generalized_advantages(batch, config.gamma, config.gae_lambda)
        flat = jax.tree.map(
            lambda x: x.reshape((config.batch_size, *x.shape[2:])), (batch, advantage, target)
        )
        return batch, flat

    jobs: list[tuple[tuple[int, str], Timed]] = []
    measured = [name for name, _, _ in PROFILE_ROWS if name not in REST]
    with tqdm(total=len(seed_counts) * len(measured), desc="profile: compile", unit="stage") as bar:
        for n_seeds in seed_counts:
            runner = init_seeds(trainer, jax.random.split(jax.random.key(0), n_seeds))
            batch, data = jax.jit(jax.vmap(inputs))(runner)
            for name in measured:

                def one(r: Any, b: Any, d: Any, name: str = name) -> Any:
                    fn, carry = profile_stages(parts, config, r, b, d, updates)[name]
                    return fn(carry)

                start = time.perf_counter()
                compiled = jax.jit(jax.vmap(one)).lower(runner, batch, data).compile()
                args = (runner, batch, data)
                jax.block_until_ready(compiled(*args))
                call = lambda c=compiled, a=args: jax.block_until_ready(c(*a))  # noqa: E731
                jobs.append(((n_seeds, name), Timed({}, 0, call, time.perf_counter() - start)))
                bar.update()
    for _ in tqdm(range(repeats), desc="profile: rounds", unit="round"):
        for _, t in jobs:
            start = time.perf_counter()
            t.run()
            t.run_s.append(time.perf_counter() - start)
    ms = {job: 1e3 * min(t.run_s) / updates for job, t in jobs}
    for n_seeds in seed_counts:
        for name, (whole, parts_of) in REST.items():
            ms[n_seeds, name] = ms[n_seeds, whole] - sum(ms[n_seeds, p] for p in parts_of)
    rows = []
    for name, depth, what in PROFILE_ROWS:
        per = {str(n): ms[n, name] for n in seed_counts}
        share = {str(n): ms[n, name] / ms[n, "update"] for n in seed_counts}
        rows.append(
            {
                "stage": name,
                "depth": depth,
                "what": what,
                "derived": name in REST,
                "ms_per_update": per,
                "share_of_update": share,
            }
        )
    return {
        "config": config.to_dict(),
        "seeds": list(seed_counts),
        "updates_per_call": updates,
        "repeats": repeats,
        "rows": rows,
    }


def format_profile(prof: dict[str, Any]) -> str:
    columns: list[Column] = [
        ("stage", "<34", lambda r: "  " * r["depth"] + r["stage"]),
    ]
    for n in prof["seeds"]:
        key = str(n)
        title = f"ms, {n} seed{'s' if n > 1 else ''}"
        columns.append((title, ">11", lambda r, k=key: f"{r['ms_per_update'][k]:.2f}"))
        columns.append(("%", ">4", lambda r, k=key: f"{100 * r['share_of_update'][k]:.0f}"))
    columns.append(("what", "<50", lambda r: r["what"]))
    return text_table(prof["rows"], columns)


def print_profile(prof: dict[str, Any]) -> None:
    print(
        f"Profile of one update of the jitted PPO (the headline's configuration): each stage "
        f"jitted and vmapped over the seeds, {prof['updates_per_call']} updates' worth per "
        f"call, fastest of {prof['repeats']} interleaved calls; ms per update of all the seeds, "
        "% of the whole update; 'rest of' rows are the difference"
    )
    print(format_profile(prof))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile-seeds",
        type=int,
        nargs="+",
        help=f"profile at these seed counts (default {' '.join(map(str, PROFILE_SEEDS))})",
    )
    parser.add_argument(
        "--updates", type=int, help=f"updates' worth per timed call (default {PROFILE_UPDATES})"
    )
    parser.add_argument(
        "--repeats", type=int, help=f"interleaved rounds (default {PROFILE_REPEATS})"
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one seed, one update per call, two rounds, the smoke test's sizes",
    )
    args = parser.parse_args(argv)
    defaults = {"profile_seeds": list(PROFILE_SEEDS), "updates": PROFILE_UPDATES}
    defaults["repeats"] = PROFILE_REPEATS
    for name, value in (QUICK if args.quick else defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    positive(parser, profile_seeds=args.profile_seeds, updates=args.updates, repeats=args.repeats)
    args.out = output_path(args.out, "ppo_speed_profile", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    info = environment({"profile_seeds": list(args.profile_seeds)})
    prof = profile(args.profile_seeds, args.repeats, args.updates, args.quick)
    finish(info)
    print_profile(prof)
    results = {"environment": info, "profile": prof}
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
