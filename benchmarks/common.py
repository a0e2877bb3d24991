"""The benchmarks' harness: timed configurations, targets with verdicts, the table and the JSON."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from tqdm import tqdm

import sepsisim_jax
from sepsisim_jax.text_table import Column, text_table
from sepsisim_jax.training import PPOConfig, PPOPolicy, make_train

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    """Versions, devices and load that qualify the figures (no host paths)."""
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": list(os.getloadavg()),
        "jax": jax.__version__,
        "jaxlib": metadata.version("jaxlib"),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "float_dtype": str(jax.dtypes.canonicalize_dtype(jnp.float64)),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "sepsisim": _version("sepsisim"),
        "sepsisim_jax": sepsisim_jax.__version__,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def optional(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``-`` when it was not measured."""
    return "-" if value is None else format(value, spec)


def output_path(out: Path | None, name: str, quick: bool, directory: Path = RESULTS_DIR) -> Path:
    """``out`` if given, else ``directory/<name>.json``, or ``<name>_quick.json`` with
    ``--quick``: a smoke test never overwrites a full run's results."""
    if out is not None:
        return out
    return directory / (f"{name}_quick.json" if quick else f"{name}.json")


def initial_ppo_policy(config: PPOConfig, seed: int = 0) -> PPOPolicy:
    """``config``'s PPO policy before any update (its initialised network and statistics):
    what ``--timesteps 0`` stands for in smoke tests, without compiling a training run."""
    runner = jax.jit(make_train(config).init)(jax.random.key(seed))
    return PPOPolicy.create(config, runner.train_state.params, runner.obs_stats)


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Results written to {path}")


@dataclasses.dataclass
class Timed:
    """One measured configuration: ``run()`` performs ``steps`` env-steps and returns when done.

    ``labels`` name it in its table row; ``setup_s`` is its preparation (compilation or
    warm-up), never part of a throughput.
    """

    labels: dict[str, Any]
    steps: int
    run: Callable[[], object]
    setup_s: float | None = None
    run_s: list[float] = dataclasses.field(default_factory=list)

    @property
    def steps_per_s(self) -> float:
        """Env-steps of one run over the fastest run's wall time."""
        return self.steps / min(self.run_s)

    def row(self) -> dict[str, Any]:
        return self.labels | {
            "steps_per_repeat": self.steps,
            "setup_s": self.setup_s,
            "run_s": self.run_s,
            "steps_per_s": self.steps_per_s,
        }


def time_interleaved(jobs: Sequence[tuple[str, Callable[[], Timed]]], repeats: int) -> list[Timed]:
    """Prepare every ``(label, prepare)`` job, then ``repeats`` rounds that run each once.

    Interleaving the repeats spreads each configuration's runs over the whole measurement, so a
    slow phase of a shared machine hits all of them alike rather than one.
    """
    timed: list[Timed] = []
    with tqdm(total=len(jobs) * (1 + repeats), desc="configurations", unit="cfg") as bar:
        for label, prepare in jobs:
            bar.set_postfix_str(label)
            timed.append(prepare())
            bar.update()
        for round_ in range(repeats):
            for (label, _), config in zip(jobs, timed, strict=True):
                bar.set_postfix_str(f"round {round_ + 1} {label}")
                start = time.perf_counter()
                config.run()
                config.run_s.append(time.perf_counter() - start)
                bar.update()
    return timed


@dataclasses.dataclass(frozen=True)
class Target:
    """``value >= goal``, where the value is the worst (smallest) of ``values``, one per case
    measured (environment, configuration); without any case it is not evaluated, nor met."""

    name: str  # key in the JSON
    text: str  # what is compared, for the printed verdict
    values: dict[str, float]
    goal: float
    spec: str = ",.1f"  # format of the values and the goal, e.g. ".0%"
    unit: str = ""  # printed after each value, e.g. "x"

    @property
    def value(self) -> float | None:
        return min(self.values.values()) if self.values else None

    @property
    def met(self) -> bool:
        return self.value is not None and self.value >= self.goal

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluated": bool(self.values),
            "values": self.values,
            "value": self.value,
            "target": self.goal,
            "met": self.met,
        }

    def line(self) -> str:
        if self.value is None:
            return f"  {self.text}: not measured"
        each = ""
        if len(self.values) > 1:
            each = " (" + ", ".join(f"{k} {self._format(v)}" for k, v in self.values.items()) + ")"
        return (
            f"  {self.text}: {self._format(self.value)}{each}"
            f" (target >= {self._format(self.goal)}) -> {verdict(self.met)}"
        )

    def _format(self, value: float) -> str:
        return f"{value:{self.spec}}{self.unit}"


def report(
    path: Path,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    columns: Sequence[Column],
    targets: Sequence[Target],
    **extra: Any,
) -> dict[str, Any]:
    """Print the table and the verdicts; write and return the results.

    The JSON holds ``environment`` (the machine and ``settings``), ``rows``, ``targets`` (by
    name) and any ``extra`` entries.
    """
    print(text_table(rows, columns))
    print("Targets (the worst case decides):")
    for target in targets:
        print(target.line())
    results = {
        "environment": machine_info() | settings,
        "rows": rows,
        "targets": {target.name: target.to_json() for target in targets},
        **extra,
    }
    write_results(path, results)
    return results
