"""The command line: a small cohort end to end, and clear errors for bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sepsisim_jax.cli import main


def test_rollout_prints_a_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "rollout.json"
    code = main(["rollout", "--patients", "32", "--env", "SepsisManagement-v0", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "SepsisManagement-v0" in printed and "heuristic" in printed and "random" in printed
    rows = json.loads(out.read_text())
    assert [row["policy"] for row in rows] == ["random", "heuristic"]
    assert rows[1]["survival"] == 1.0 and rows[0]["env_steps_per_s"] > 0


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


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "sepsisim_jax", "rollout", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "--patients" in result.stdout
