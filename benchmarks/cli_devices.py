"""Where does splitting a CPU into host devices pay for the command line?

On a CPU, JAX runs one device's loop on one core; ``sepsisim-jax rollout``, ``train`` and
``evaluate`` can split a CPU into ``--devices N`` host devices, in a fresh process. This script
runs each command as a user runs it (``python -m sepsisim_jax ...``) with ``--devices 1`` and
with ``--devices N`` (default: the cores), the two interleaved over ``--repeats`` rounds so
that a slow phase of a shared machine hits both alike, and reports the median wall time of the
whole command (start-up, compilation and run: what the user waits for) and the speed-up over
one device. The commands' outcomes are the same on any number of devices
(``tests/cohort/test_multidevice.py``).

Target: for each command, its default (``sepsisim_jax.cli.EVERY_CORE_BY_DEFAULT`` lists the
commands that split by default) is the faster of the two. On a GPU machine the commands split
nothing (the flag is for CPUs), so the script says so and measures nothing.

Usage: ``python benchmarks/cli_devices.py [--devices N] [--repeats 3] [--commands ...]
[--quick] [--out FILE]``; ``--quick`` is a smoke test: one rollout of 2,048 patients of
FluidResuscitation-v0 under the random policy on both device counts, one round.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
from common import Target, output_path, report
from tqdm import tqdm

from sepsisim_jax.cli import EVERY_CORE_BY_DEFAULT, RELAUNCHED, host_cores
from sepsisim_jax.text_table import Column

ENV_ID = "SepsisManagement-v0"
LARGE_COHORT = 262_144  # scaling.py's cohort, where two devices ran 1.55x faster
REPEATS = 3
# The smoke test's rollout: the cohort of ``scaling.py --quick`` (its env, policy, patients and
# chunks), so that a test run compiles these programs once for both scripts.
QUICK_ENV = "FluidResuscitation-v0"
QUICK_ROLLOUT = ["rollout", "--env", QUICK_ENV, "--policy", "random"]
QUICK_ROLLOUT += ["--patients", "2048", "--chunk-size", "1024"]


def commands(quick: bool, checkpoint: Path) -> dict[str, list[str]]:
    """The measured command lines (without ``--devices``): each command at its defaults (the
    rollout of every id and baseline, 10,000 patients each; four PPO seeds of 2,000,000
    timesteps; 1,000 evaluation patients) and a rollout of ``LARGE_COHORT`` patients on one id;
    with ``quick``, the rollout of :data:`QUICK_ROLLOUT` alone."""
    if quick:
        return {"rollout": QUICK_ROLLOUT}
    return {
        "rollout": ["rollout"],
        "large rollout": ["rollout", "--env", ENV_ID, "--patients", str(LARGE_COHORT)],
        "train": ["train", "--out", str(checkpoint)],
        "evaluate": ["evaluate", "--checkpoint", str(checkpoint)],
    }


def run_command(argv: list[str], devices: int) -> tuple[float, str]:
    """Wall seconds and printed output of ``python -m sepsisim_jax *argv --devices devices`` in
    a fresh process (without the caller's ``XLA_FLAGS``, which would override ``--devices``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", RELAUNCHED)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "sepsisim_jax", *argv, "--devices", str(devices)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} --devices {devices} failed:\n{done.stderr}")
    expected = f"on {devices} cpu device(s)"
    if expected not in done.stdout:
        raise RuntimeError(f"{' '.join(argv)} did not report running {expected}:\n{done.stdout}")
    return seconds, done.stdout


def outcomes(printed: str) -> list[str]:
    """The outcomes (``mean ± sd``, ``mean ± se``) a rollout or an evaluation printed."""
    return re.findall(r"-?[\d.,]+ ± [\d.,]+", printed)


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--devices", type=int, default=host_cores(), help="the default's device count"
    )
    parser.add_argument("--repeats", type=int, help=f"rounds (default {REPEATS}; 1 with --quick)")
    parser.add_argument(
        "--commands",
        nargs="+",
        choices=["rollout", "large rollout", "train", "evaluate"],
        help="measure only these (evaluate needs train)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: a 2,048-patient rollout, one round"
    )
    parser.add_argument("--out", type=Path, help="JSON results file")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else REPEATS)
    if args.devices < 2 or args.repeats < 1:
        parser.error(
            f"--devices must be >= 2 and --repeats >= 1, got {args.devices}, {args.repeats}"
        )
    if jax.default_backend() != "cpu":
        print(f"The backend is {jax.default_backend()}: the commands split only a CPU.")
        return None
    out = output_path(args.out, "cli_devices", args.quick)
    counts = (1, args.devices)
    with tempfile.TemporaryDirectory() as tmp:
        lines = commands(args.quick, Path(tmp) / "ppo")
        if args.commands:
            if "evaluate" in args.commands and "train" not in args.commands:
                parser.error("evaluate reads the checkpoint train writes: give both")
            lines = {name: line for name, line in lines.items() if name in args.commands}
        # evaluate reads train's checkpoint: each round runs the commands in this order
        seconds: dict[tuple[str, int], list[float]] = {(c, d): [] for c in lines for d in counts}
        printed: dict[tuple[str, int], str] = {}
        with tqdm(total=len(seconds) * args.repeats, desc="commands", unit="run") as bar:
            for _ in range(args.repeats):
                for name, line in lines.items():
                    for devices in counts:
                        bar.set_postfix_str(f"{name} --devices {devices}")
                        elapsed, printed[name, devices] = run_command(line, devices)
                        seconds[name, devices].append(elapsed)
                        bar.update()
    # The same patients on every device count (the key scheme): the same outcomes, so the
    # times compare the same work. Training differs by float reassociation across devices.
    for name in lines:
        if name != "train":
            one, split = (outcomes(printed[name, d]) for d in counts)
            if not one or one != split:
                raise RuntimeError(
                    f"{name}: outcomes differ between device counts:\n{one}\n{split}"
                )
    rows = []
    hidden = ("--out", "--checkpoint")  # and the temporary checkpoint's path
    for name, line in lines.items():
        one = statistics.median(seconds[name, 1])
        for devices in counts:
            median = statistics.median(seconds[name, devices])
            rows.append(
                {
                    "name": name,
                    "command": " ".join(a for a in line if a not in hidden and tmp not in a),
                    "devices": devices,
                    "seconds": seconds[name, devices],
                    "median_s": median,
                    "speedup": one / median,
                }
            )
    columns: tuple[Column, ...] = (
        ("command", "<52", lambda r: r["command"]),
        ("devices", ">7", lambda r: str(r["devices"])),
        ("median s", ">9", lambda r: f"{r['median_s']:.1f}"),
        ("x 1 device", ">10", lambda r: f"{r['speedup']:.2f}"),
    )
    advantage = {}  # the other device count's median time over the default's
    for name, line in lines.items():
        splits = line[0] in EVERY_CORE_BY_DEFAULT
        default, other = (args.devices, 1) if splits else (1, args.devices)
        times = {d: statistics.median(seconds[name, d]) for d in counts}
        advantage[name] = times[other] / times[default]
    target = Target(
        "default_is_faster",
        "each command's default device count against the other: the other's time over "
        "the default's",
        advantage,
        1.0,
        spec=".2f",
        unit="x",
    )
    settings = {
        "settings": vars(args) | {"out": out.name},
        "env_id": QUICK_ENV if args.quick else ENV_ID,
    }
    return report(out, settings, rows, columns, [target])


if __name__ == "__main__":
    main()
