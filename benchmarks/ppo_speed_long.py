"""PPO training speed, the long run: sepsisim_jax's jitted PPO for 5,000,000 timesteps on
SepsisManagement-v0, compilation included (target: under 180 s).

Default configuration, one seed; compilation and training are timed apart and summed. The
target is evaluated only for 5,000,000 timesteps or more, so not with ``--quick`` (one
update at the sizes of ``ppo_common.QUICK_SIZES``). See ``README.md`` in this directory for
the JSON schema. Usage: ``python benchmarks/ppo_speed_long.py [--timesteps 5000000] [--quick]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import output_path, verdict, write_results
from ppo_common import LONG_ENV, environment, finish, positive, train_ours

LONG_TIMESTEPS = 5_000_000
QUICK_TIMESTEPS = 288  # one update at the smoke test's sizes (ppo_common.QUICK_SIZES)
TARGET_LONG_S = 180.0  # compile + train seconds of the LONG_TIMESTEPS run


def verdicts(long_run: dict[str, Any]) -> dict[str, Any]:
    """The wall time against the target, evaluated for ``LONG_TIMESTEPS`` or more."""
    out: dict[str, Any] = {"target_s": TARGET_LONG_S, "evaluated": False, "met": None}
    if long_run["requested_timesteps"] >= LONG_TIMESTEPS:
        out.update(evaluated=True, met=long_run["total_s"] < TARGET_LONG_S)
    return {"long_run": out}


def print_long_run(long_run: dict[str, Any], target: dict[str, Any]) -> None:
    print(
        f"Long run: {long_run['env_id']}, {long_run['timesteps']:,} timesteps "
        f"({long_run['updates']} updates), compile {long_run['compile_s']:.1f} s + "
        f"train {long_run['train_s']:.1f} s = {long_run['total_s']:.1f} s "
        f"({long_run['steps_per_s']:,.0f} env-steps/s training)"
    )
    print(
        f"  mean training return: first update {long_run['first_update_return']:.1f}, "
        f"last update {long_run['last_update_return']:.1f} "
        f"(survival {long_run['last_update_survival']:.2f})"
    )
    long_verdict = target["long_run"]
    if long_verdict["evaluated"]:
        print(
            f"  target: {LONG_TIMESTEPS:,} timesteps in < {TARGET_LONG_S:.0f} s including "
            f"compilation -> {verdict(long_verdict['met'])}"
        )
    else:
        print(f"  target not evaluated: it is for {LONG_TIMESTEPS:,} timesteps")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--timesteps",
        type=int,
        help=f"timesteps of the run (default {LONG_TIMESTEPS:,}, one update with --quick)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--quick", action="store_true", help="one update: a smoke test")
    args = parser.parse_args(argv)
    if args.timesteps is None:
        args.timesteps = QUICK_TIMESTEPS if args.quick else LONG_TIMESTEPS
    positive(parser, timesteps=args.timesteps)
    args.out = output_path(args.out, "ppo_speed_long", args.quick)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    info = environment({"env_id": LONG_ENV, "long_timesteps": args.timesteps})
    long_run = train_ours(LONG_ENV, args.timesteps, progress=True, quick=args.quick)
    long_run["requested_timesteps"] = args.timesteps
    finish(info)
    target = verdicts(long_run)
    print_long_run(long_run, target)
    results = {"environment": info, "long_run": long_run, "targets": target}
    write_results(args.out, results)
    return results


if __name__ == "__main__":
    main()
