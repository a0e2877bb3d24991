"""Shared fixtures: the reference simulator with its randomness switched off; one XLA
compilation cache for every process of a test run."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from tests.midpoint import MidpointGenerator

# Catch accidental rank promotion (a (3,) action meeting a (3, 1) array, say) as an error.
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--golden",
        choices=("core", "all"),
        default="core",
        help="tests/test_golden.py: its core cases (default) or all (before a refactor lands)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Most of the suite's time is XLA compiling; JAX's persistent compilation cache under the
    pytest cache keeps the programs for every worker, notebook kernel and subprocess of this
    run and of later runs (kernels and subprocesses read it from the environment)."""
    if getattr(config, "cache", None) is None:  # -p no:cacheprovider
        return
    settings = {
        "jax_compilation_cache_dir": str(config.cache.mkdir("jax-compilation-cache")),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)


@pytest.fixture
def noiseless_reference(monkeypatch: pytest.MonkeyPatch):
    """Factory of reference envs (unwrapped) whose random draws are replaced by their centres."""
    import gymnasium as gym
    import sepsisim  # noqa: F401  (registers the reference ids)

    monkeypatch.setattr(np.random, "default_rng", MidpointGenerator)

    def make_reference(env_id: str, severity: str, **options):
        return gym.make(f"sepsisim/{env_id}", severity=severity, **options).unwrapped

    return make_reference


NOISELESS = {"map_noise_sd": 0.0, "urine_noise_sd": 0.0, "admission_jitter": 0.0}


# The longest checks (the notebooks in fast mode, the README's examples: 40-80 s each on two
# cores) go first, then the other slow ones: started last, one of them left the other workers
# idle at the end of the run.
LONGEST = ("tests/test_notebooks.py::test_notebook_runs", "tests/test_readme.py::test_quick_start")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(LONGEST):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: collection order within each rank
