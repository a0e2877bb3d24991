"""Each benchmark and validation script's ``--quick`` mode runs and writes JSON of its shape.

The scripts run in this process through their ``main(argv)`` (their directory on the path, as
running them puts it there), each writing into ``tmp_path``, never into the committed results;
the scaling and PPO speed scripts start processes of their own, as they do when run. The
figures they measure are not checked: a quick run is a smoke test.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS, VALIDATION = ROOT / "benchmarks", ROOT / "validation"

pytestmark = pytest.mark.slow

# Scripts whose smoke tests compile the same programs run on one worker, one after the other
# (--dist loadgroup): the later ones find those programs in the compilation cache.
# scaling.py's quick cohort, which cli_devices.py runs as a command on the same device counts:
SAME_COHORT = pytest.mark.xdist_group("benchmarks-cohort")
# The jitted PPO at ppo_common.QUICK_SIZES on SepsisManagement-v0:
SAME_QUICK_PPO = pytest.mark.xdist_group("benchmarks-quick-ppo")
# One update of the default PPO configuration on FluidResuscitation-v0:
SAME_FLUID_PPO = pytest.mark.xdist_group("benchmarks-fluid-ppo")


def script(name: str, monkeypatch: pytest.MonkeyPatch, directory: Path = BENCHMARKS) -> ModuleType:
    monkeypatch.syspath_prepend(str(directory))
    return importlib.import_module(name)


def quick(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    directory: Path = BENCHMARKS,
) -> dict[str, Any]:
    """Run ``name``'s ``main(["--quick", "--out", ...])``; the JSON it wrote, checked for the
    fields every results file has (the machine and its device)."""
    out = tmp_path / f"{name}.json"
    script(name, monkeypatch, directory).main(["--quick", "--out", str(out), *extra])
    results = json.loads(out.read_text())
    environment = results["environment"]
    assert environment["backend"] and environment["device"]
    assert environment["sepsisim_jax"]
    return results


def check_targets(targets: dict[str, Any], names: set[str]) -> None:
    assert set(targets) == names
    for target in targets.values():
        assert {"evaluated", "value", "target", "met"} <= set(target)


def test_throughput(tmp_path, monkeypatch):
    results = quick("throughput", tmp_path, monkeypatch)
    impls = {row["impl"] for row in results["rows"]}
    assert impls == {
        "reference",
        "reference-alone",
        "sepsisim_jax",
        "sepsisim_jax-alone",
        "ceiling-soa",
        "ceiling-vmap",
        "adapter-single",
        "adapter-vector",
    }
    assert all(row["steps_per_s"] > 0 and row["run_s"] for row in results["rows"])
    assert results["ceiling_check"]["passed"]
    names = {"vs_reference", "vs_ceiling", "alone_vs_reference", "v1_vs_v0"}
    check_targets(results["targets"], names | {"single_vs_reference", "vector_steps_per_s"})


def test_fused_ceiling(tmp_path, monkeypatch):
    results = quick("fused_ceiling", tmp_path, monkeypatch)
    impls = {row["impl"] for row in results["rows"]}
    assert impls == {"sepsisim_jax", "ceiling-soa", "ceiling-vmap"}
    check = results["ceiling_check"]
    assert check["passed"] and set(check["cases"]) == {"default", "no antibiotic"}
    check_targets(results["targets"], {"vs_ceiling"})
    assert results["targets"]["vs_ceiling"]["evaluated"]


def test_parity_at_bounds(tmp_path, monkeypatch):
    results = quick("parity_at_bounds", tmp_path, monkeypatch)
    assert [row["sequence"] for row in results["rows"]] == ["bang-bang", "held-max", "alternating"]
    assert results["steps"] == sum(row["steps"] for row in results["rows"]) > 0
    assert set(results["rates"]) == {"sofa", "reward", "terminated", "any"}


def test_counterfactual(tmp_path, monkeypatch):
    results = quick("counterfactual", tmp_path, monkeypatch)
    (row,) = results["rows"]
    assert row["env_id"] == "SepsisManagement-v0" and row["patients"] == 256
    assert (tmp_path / "counterfactual.png").exists()


def test_ope(tmp_path, monkeypatch):
    results = quick("ope", tmp_path, monkeypatch)
    estimators = set(script("ope", monkeypatch).ESTIMATORS)
    (row,) = results["rows"]
    assert row["pair"] == "nearby" and set(row["estimators"]) == estimators
    assert all(len(e["estimates"]) == 2 for e in row["estimators"].values())
    assert (tmp_path / "ope.png").exists()


def test_planning(tmp_path, monkeypatch):
    results = quick("planning", tmp_path, monkeypatch)
    (row,) = results["rows"]
    starts = {"planned (mid-range)", "planned (heuristic)", "planned (ppo)"}
    assert starts | {"heuristic", "ppo"} <= set(row)
    check_targets(results["targets"], {"vs_heuristic", "vs_ppo"})
    assert results["gradient_check"] is None  # a full run's
    assert [fit["env_id"] for fit in results["fits"]] == ["SepsisManagement-v0"]
    assert (tmp_path / "planning.png").exists()


@SAME_FLUID_PPO
def test_ppo_quality(tmp_path, monkeypatch):
    results = quick("ppo_quality", tmp_path, monkeypatch)
    (row,) = results["rows"]
    assert row["env_id"] == "FluidResuscitation-v0" and row["seeds"] == 1
    assert {"ppo", "heuristic", "random"} <= set(row)
    check_targets(results["targets"], {"vs_heuristic", "vs_paper"})


@SAME_COHORT
def test_scaling(tmp_path, monkeypatch):
    results = quick("scaling", tmp_path, monkeypatch)
    assert [row["devices"] for row in results["devices"]] == [1, 2]
    assert results["batch"] and all(row["steps_per_s"] > 0 for row in results["batch"])
    virtual = results["virtual_patients"]
    assert virtual["rows"] and {"goal_at_most", "worst", "met"} <= set(virtual["target"])
    assert [row["patients"] for row in results["evaluation"]] == [204, 2048]
    assert (tmp_path / "scaling.png").exists()


@SAME_QUICK_PPO
def test_ppo_speed_same(tmp_path, monkeypatch):
    results = quick("ppo_speed_same", tmp_path, monkeypatch)
    same = results["same_hyperparameters"]
    setups = [(r["processes"], r["seeds_per_process"]) for r in same["rows"]]
    assert setups == [(1, 1)] * 6
    assert results["headline"] == same["headline"]
    check_targets(results["targets"], {"same_hyperparameters_both_cores"})


@SAME_FLUID_PPO
def test_ppo_speed_reference(tmp_path, monkeypatch):
    results = quick("ppo_speed_reference", tmp_path, monkeypatch)
    rows = results["reference_hyperparameters"]["rows"]
    assert [r["impl"] for r in rows] == ["stable-baselines3", "sepsisim_jax"]
    target = results["targets"]["reference_hyperparameters_vs_sb3"]
    assert set(target["per_env"]) == {rows[0]["env_id"]}


@SAME_QUICK_PPO
def test_ppo_speed_long(tmp_path, monkeypatch):
    results = quick("ppo_speed_long", tmp_path, monkeypatch)
    assert results["long_run"]["timesteps"] == results["long_run"]["requested_timesteps"]
    assert results["targets"]["long_run"] == {"target_s": 180.0, "evaluated": False, "met": None}


@SAME_QUICK_PPO
def test_ppo_speed_profile(tmp_path, monkeypatch):
    results = quick("ppo_speed_profile", tmp_path, monkeypatch)
    profile = results["profile"]
    assert profile["seeds"] == [1] and len(profile["rows"]) == 13
    assert all(set(row["ms_per_update"]) == {"1"} for row in profile["rows"])


def test_calibration_v1(tmp_path, monkeypatch):
    figure = tmp_path / "antibiotic_delay.png"
    results = quick(
        "calibration_v1", tmp_path, monkeypatch, "--figure", str(figure), directory=VALIDATION
    )
    sections = ("antibiotic_delay", "bolus", "hypotension", "refractory", "fates", "survival")
    assert all(results[section] for section in sections)
    assert len(results["antibiotic_delay"]) == 3 and results["tier_fractions"]
    assert len(results["antibiotic_delay"][0]["survival_by_hour"]) == 13
    assert all({"section", "band", "value", "met"} <= set(t) for t in results["targets"])
    # Every target says what it is evidence of; replicates of one fact count once.
    kinds = {"clinical-independent", "clinical-by-construction", "self-consistency"}
    assert {t["kind"] for t in results["targets"]} <= kinds
    by_fact = {f["fact"]: f for f in results["facts"]}
    for fact in by_fact.values():
        replicates = [t for t in results["targets"] if t["fact"] == fact["fact"]]
        assert fact["replicates"] == len(replicates) > 0
        assert fact["met"] == all(t["met"] for t in replicates)
    assert sum(f["replicates"] for f in results["facts"]) == len(results["targets"])
    assert not figure.exists()  # the figure is a full run's


def test_the_adjusted_odds_ratio_recovers_a_known_effect_that_confounding_hides(monkeypatch):
    """The calibration's logistic fit, on data with a known odds ratio (1.5 per unit of x) and a
    confounder that raises both x and death: adjusted, the fit recovers 1.5 within its interval;
    unadjusted, it does not."""
    fit = script("calibration_sections", monkeypatch, VALIDATION).logistic_fit
    rng = np.random.default_rng(0)
    confounder = rng.integers(0, 2, 20_000)
    x = rng.normal(size=20_000) + confounder
    logit = -1.0 + np.log(1.5) * x + 2.0 * confounder
    died = rng.random(20_000) < 1.0 / (1.0 + np.exp(-logit))
    adjusted = fit(x, died, confounder[:, None])
    assert adjusted["ci_low"] < 1.5 < adjusted["ci_high"] and adjusted["n"] == 20_000
    assert fit(x, died)["ci_low"] > 1.5


def test_calibration_takes_parameter_overrides_only_with_their_own_output(monkeypatch):
    parse = script("calibration_v1", monkeypatch, VALIDATION).parse_args
    args = parse(["--set", "hypoperfusion_damage=0", "--out", "sensitivity.json"])
    assert args.overrides == {"hypoperfusion_damage": 0.0} and args.figure is None
    assert parse([]).overrides == {} and parse([]).figure.name == "antibiotic_delay.png"
    for bad in (["--set", "hypoperfusion_damage=0"], ["--set", "x", "--out", "o.json"]):
        with pytest.raises(SystemExit):
            parse(bad)


@SAME_COHORT
def test_cli_devices(tmp_path, monkeypatch):
    """Also the command line's relaunch on host devices: the script runs ``rollout --devices
    1`` and ``--devices 2`` as commands, checks that each says so and that the outcomes agree."""
    results = quick("cli_devices", tmp_path, monkeypatch)
    rows = results["rows"]
    assert [(r["name"], r["devices"]) for r in rows] == [("rollout", 1), ("rollout", 2)]
    assert all(len(r["seconds"]) == 1 and r["median_s"] > 0 for r in rows)
    check_targets(results["targets"], {"default_is_faster"})
