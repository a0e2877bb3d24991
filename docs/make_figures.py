"""Regenerate the README's figures: ``python docs/make_figures.py`` (about a minute on a CPU).

Writes ``trajectory.png`` (one medium patient under the clinical heuristic) and ``cohort.png``
(random vs heuristic over a cohort of hard patients) of SepsisManagement-v0 to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
from matplotlib.figure import Figure

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.policies import POLICIES, heuristic_policy
from sepsisim_jax.rollout import clinical_course

ENV_ID = "SepsisManagement-v0"
DPI = 80


def figures(patients: int, seed: int = 0) -> dict[str, Figure]:
    """The README's figures by file name, from the patients of ``jax.random.key(seed)``."""
    key = jax.random.key(seed)
    env, params = sepsisim_jax.make(ENV_ID, severity="medium")
    course = clinical_course(env, params, heuristic_policy(env), key, n_patients=1)
    trajectory = plotting.patient_trajectory(course, 0, title=f"{ENV_ID}, medium, heuristic")

    env, params = sepsisim_jax.make(ENV_ID, severity="hard")
    courses = {
        name: clinical_course(env, params, make(env), key, patients)
        for name, make in POLICIES.items()
    }
    cohort = plotting.cohort(courses, title=f"{ENV_ID}, hard, {patients:,} patients each")
    return {"trajectory.png": trajectory, "cohort.png": cohort}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    parser.add_argument("--patients", type=int, default=10_000, help="cohort size per policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.patients < 1:
        parser.error(f"--patients must be >= 1, got {args.patients}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, figure in figures(args.patients, args.seed).items():
        figure.savefig(args.out / name, dpi=DPI)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
