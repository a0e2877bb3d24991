"""Regenerate the README's figures: ``python docs/make_figures.py`` (about a minute on a CPU).

Writes ``trajectory.png`` (one patient under the clinical heuristic) and ``cohort.png``
(random vs heuristic over a cohort of hard patients) of SepsisManagement-v0 to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.policies import POLICIES, heuristic_policy
from sepsisim_jax.rollout import clinical_course

ENV_ID = "SepsisManagement-v0"
FIGURES = ("trajectory.png", "cohort.png")
DPI = 80


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    parser.add_argument("--patients", type=int, default=10_000, help="cohort size per policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.patients < 1:
        parser.error(f"--patients must be >= 1, got {args.patients}")
    args.out.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(args.seed)

    env, params = sepsisim_jax.make(ENV_ID, severity="medium")
    course = clinical_course(env, params, heuristic_policy(env), key, n_patients=1)
    figure = plotting.patient_trajectory(course, 0, title=f"{ENV_ID}, medium, heuristic")
    figure.savefig(args.out / FIGURES[0], dpi=DPI)

    env, params = sepsisim_jax.make(ENV_ID, severity="hard")
    courses = {
        name: clinical_course(env, params, make(env), key, args.patients)
        for name, make in POLICIES.items()
    }
    figure = plotting.cohort(courses, title=f"{ENV_ID}, hard, {args.patients:,} patients each")
    figure.savefig(args.out / FIGURES[1], dpi=DPI)
    survival = {name: 1.0 - float(np.mean(c.died)) for name, c in courses.items()}
    print(f"wrote {', '.join(str(args.out / f) for f in FIGURES)}; survival {survival}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
