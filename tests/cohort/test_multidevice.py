"""The patient axis over two devices, and over two processes through ``jax.distributed``:
the same keys give bit-identical outcomes and the same summaries as one device."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from tests.cohort.multidevice import per_patient_results, ppo_results, summary_results

pytestmark = pytest.mark.slow  # subprocesses that compile for two devices: 15-35 s each

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def one_device_summary() -> dict[str, np.ndarray]:
    assert jax.device_count() == 1
    return summary_results()


@pytest.fixture(scope="module")
def one_device(one_device_summary) -> dict[str, np.ndarray]:
    return one_device_summary | per_patient_results()


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | (env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cohort.multidevice", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Every result ``got`` holds (the summary at least) equals the one-device result."""
    assert "group0_mean" in got
    for name in set(got) - {"devices", "padded_chunk"}:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_two_devices_give_bit_identical_outcomes_and_summaries(one_device, tmp_path):
    out = tmp_path / "sharded.npz"
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    process = _run(["sharded", str(out)], flags)
    log, _ = process.communicate(timeout=600)
    assert process.returncode == 0, log
    got = dict(np.load(out))
    assert got["devices"] == 2 and {"stats_returns", "obs"} <= set(got)
    _assert_same(got, one_device)
    assert one_device["padded_chunk"] == 208  # a chunk of 200 padded to 13 x 16 patients
    assert got["padded_chunk"] == 224  # ... and to 7 x 16 patients on each of two devices


def test_ppo_on_two_devices_trains_as_on_one(tmp_path):
    """One seed: its patients split over the devices, gradients averaged by XLA; the result is
    that of one device up to float reassociation. Two seeds: one per device."""
    out = tmp_path / "ppo.npz"
    process = _run(["ppo", str(out)], {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    log, _ = process.communicate(timeout=600)
    assert process.returncode == 0, log
    got, expected = dict(np.load(out)), ppo_results()
    for name, value in expected.items():
        if name.startswith(("metric_", "weights_")):
            np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    assert str(got["spec_1_8"]) == "P(None, 'patients')"
    assert str(got["spec_2_8"]) == "P('patients',)"
    assert "neither the 1 seed(s) nor the 7 patients per rollout divide" in str(got["spec_1_7"])


def test_two_processes_give_the_summary_of_one(one_device_summary, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "distributed.npz"
    processes = [_run(["distributed", str(i), str(port), str(out)]) for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert all(p.returncode == 0 for p in processes), logs
    got = dict(np.load(out))
    assert got["devices"] == 2
    _assert_same(got, one_device_summary)
