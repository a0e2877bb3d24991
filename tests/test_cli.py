"""The command line: its tables hold the library's numbers, and bad arguments fail clearly."""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax import cli
from sepsisim_jax.cli import RELAUNCHED, main, relaunch_on_host_devices
from sepsisim_jax.cohort.rollout import rollout_episodes, summarize
from sepsisim_jax.policies import POLICIES
from sepsisim_jax.training import PPOConfig, evaluate, held_out_key, load_checkpoint

ENV_ID = "SepsisManagement-v0"
PATIENTS = 32


def test_rollout_rows_are_the_rollout_episodes_results_for_the_same_key(tmp_path, capsys):
    out = tmp_path / "rollout.json"
    args = ["rollout", "--patients", str(PATIENTS), "--env", ENV_ID, "--seed", "3"]
    assert main([*args, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [row["policy"] for row in rows] == list(POLICIES)
    env, params = sepsisim_jax.make(ENV_ID, severity="medium")
    for row in rows:
        policy = POLICIES[row["policy"]](env)
        episodes = rollout_episodes(env, params, policy, jax.random.key(3), PATIENTS, 72)
        stats = summarize(episodes)
        np.testing.assert_allclose([row[k] for k in stats], list(stats.values()), rtol=1e-5)
        assert row["env"] == ENV_ID and row["patients"] == PATIENTS
        median = np.quantile(np.asarray(episodes.returns), 0.5, method="inverted_cdf")
        assert row["quantiles"]["returns"]["0.5"] == median
        stats = {k: row[k] for k in stats}
        cell = f"{stats['mean_return']:.1f} ± {stats['sd_return']:.1f}"
        assert any(row["policy"] in line and cell in line for line in printed.splitlines())


def test_rollout_by_parameter_prints_each_bin_and_needs_virtual_patients(capsys):
    args = ["rollout", "--env", "FluidResuscitation-v1", "--policy", "heuristic"]
    args += ["--patients", "64", "--chunk-size", "32", "--by-parameter", "k_pm"]
    assert main([*args, "--spread", "0.2", "--bins", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("FluidResuscitation-v1 medium heuristic") == 2  # one line per bin
    assert printed.count("k_pm [") == 2 and "quantiles exact" in printed
    with pytest.raises(SystemExit, match=r"rollout: error: .* need virtual patients"):
        main(args)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """``sepsisim-jax train``: two seeds, two updates each, on a few patients."""
    out = tmp_path_factory.mktemp("run")
    args = ["train", "--env", ENV_ID, "--timesteps", str(2 * 8 * 72), "--num-envs", "8"]
    assert main([*args, "--seeds", "2", "--eval-patients", str(PATIENTS), "--out", str(out)]) == 0
    return out


def test_train_saves_the_best_seed_and_evaluate_reproduces_it(trained_run, tmp_path):
    """``train``, then ``evaluate`` on its checkpoint: one test, so that the training runs once
    (a module fixture shared by two tests ran on each of two workers)."""
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert (trained_run / "learning_curve.png").stat().st_size > 0
    rows = metrics["evaluation"]["rows"]
    best = metrics["saved_seed"]
    names = ["PPO seed 0", "PPO seed 1", *POLICIES]
    names[best] += " (saved)"
    assert [row["policy"] for row in rows] == names
    policy = load_checkpoint(trained_run)
    assert policy.config == PPOConfig.from_dict(metrics["config"])
    env, params = sepsisim_jax.make(ENV_ID, severity="medium")
    saved = evaluate(policy, env, params, held_out_key(0), PATIENTS)
    assert rows[best] == {"policy": names[best], **saved}
    heuristic = evaluate(POLICIES["heuristic"](env), env, params, held_out_key(0), PATIENTS)
    assert rows[-1] == {"policy": "heuristic", **heuristic}

    # ``evaluate`` on the checkpoint reproduces the saved policy's return.
    out = tmp_path / "evaluate.json"
    args = ["evaluate", "--checkpoint", str(trained_run), "--eval-patients", str(PATIENTS)]
    assert main([*args, "--json", str(out)]) == 0
    evaluated = json.loads(out.read_text())
    assert [row["policy"] for row in evaluated] == ["PPO", *POLICIES]
    assert evaluated[0] | {"policy": None} == rows[best] | {"policy": None}
    assert evaluated[1:] == rows[2:]  # the same held-out patients for the baselines


def test_a_missing_checkpoint_or_an_invalid_config_exits_with_the_reason(tmp_path):
    with pytest.raises(SystemExit, match="sepsisim-jax evaluate: error: no checkpoint"):
        main(["evaluate", "--checkpoint", str(tmp_path / "nothing")])
    with pytest.raises(SystemExit, match=r"sepsisim-jax train: error: .* less than one update"):
        main(["train", "--timesteps", "10", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollout", "--patients", "0"], "must be a positive integer"),
        (["rollout", "--severity", "extreme"], "invalid choice: 'extreme'"),
        (["rollout", "--env", "CartPole-v1"], "invalid choice: 'CartPole-v1'"),
        ([], "required: command"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_rollout_help_lists_its_options(capsys):
    """In this process; ``python -m sepsisim_jax`` itself runs in the relaunch test below."""
    with pytest.raises(SystemExit) as exit_info:
        main(["rollout", "--help"])
    assert exit_info.value.code == 0 and "--patients" in capsys.readouterr().out


def test_the_users_xla_flags_decide_the_devices(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda *args: calls.append(args))
    monkeypatch.delenv(RELAUNCHED, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    relaunch_on_host_devices(["rollout"], 3)
    assert calls == []
    monkeypatch.delenv("XLA_FLAGS")
    relaunch_on_host_devices(["rollout", "--devices", "3"], 3)
    ((_, command, env),) = calls
    assert command[1:] == ["-m", "sepsisim_jax", "rollout", "--devices", "3"]
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3" and env[RELAUNCHED]


class _Relaunched(Exception):
    """Raised where the command would replace this process with a relaunched one."""


class _Ran(Exception):
    """Raised where the command would start its work in this process."""


@pytest.mark.parametrize(
    ("argv", "relaunches"),
    [
        (["train"], True),
        (["rollout"], False),
        (["evaluate", "--checkpoint", "x"], False),
        (["rollout", "--devices", "2"], True),
        (["evaluate", "--checkpoint", "x", "--devices", "2"], True),
    ],
)
def test_only_train_splits_the_cpu_unless_devices_are_given(monkeypatch, argv, relaunches):
    """Run as a command, ``train`` relaunches on host devices by default, ``rollout`` and
    ``evaluate`` only with ``--devices`` (where benchmarks/cli_devices.py measured a gain)."""

    def relaunch(args, requested):
        raise _Relaunched(args, requested)

    def run(args):
        raise _Ran

    monkeypatch.setattr(cli, "relaunch_on_host_devices", relaunch)
    for name in ("run_train", "run_evaluate", "run_rollouts"):
        monkeypatch.setattr(cli, name, run)
    monkeypatch.setattr(sys, "argv", ["sepsisim-jax", *argv])
    with pytest.raises(_Relaunched if relaunches else _Ran):
        cli.main()
