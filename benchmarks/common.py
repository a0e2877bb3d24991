"""What the benchmark scripts share: machine facts for the JSON, verdict words, writing results."""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

import sepsisim_jax

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


def write_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"Results written to {path}")
