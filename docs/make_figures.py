"""Regenerate the README's figures: ``python docs/make_figures.py`` (about a minute on a CPU).

Writes ``trajectory.png`` (one medium patient under the clinical heuristic) and ``cohort.png``
(random vs heuristic over a cohort of hard patients) of SepsisManagement-v0 to ``--out``, and
``reynolds_fates.png`` (the three curated fates of the published Reynolds et al. 2006 model).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

import sepsisim_jax
from sepsisim_jax import plotting
from sepsisim_jax.cohort.rollout import clinical_course
from sepsisim_jax.physiology import reynolds2006
from sepsisim_jax.physiology.solver import SolverConfig, make_integrator
from sepsisim_jax.policies import POLICIES, heuristic_policy

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


# Reynolds et al. (2006): (state field, axis label) of each panel, and the colour of each fate.
REYNOLDS_PANELS: tuple[tuple[str, str], ...] = (
    ("pathogen", "pathogen $P$ ($10^6$ cells/cc)"),
    ("phagocytes", "activated phagocytes $N^*$\n(normalised units)"),
    ("damage", "tissue damage $D$\n(normalised units)"),
    ("anti_inflammatory", "anti-inflammation $C_A$\n(normalised units)"),
)
REYNOLDS_COLOURS = {"health": "tab:green", "aseptic death": "tab:orange", "septic death": "tab:red"}
REYNOLDS_HOURS = 1000.0
REYNOLDS_DT = 0.25  # h: fine enough that the first hours read smoothly on the log time axis


def reynolds_courses(
    hours: float = REYNOLDS_HOURS, dt: float = REYNOLDS_DT
) -> tuple[np.ndarray, dict[str, reynolds2006.ReynoldsState]]:
    """Times (h) and the course of each curated scenario, from the package's default solver."""
    integrate = make_integrator(SolverConfig(), reynolds2006.vector_field)
    growth, inoculum = jnp.asarray(list(reynolds2006.SCENARIOS.values()), jnp.float32).T
    step_dt, kill = jnp.asarray(dt, jnp.float32), jnp.zeros((), jnp.float32)

    def course(k_pg, p0):
        params = reynolds2006.ReynoldsParams().replace(k_pg=k_pg)
        y0 = reynolds2006.initial_state(params, p0, jnp.float32)

        def step(y, _):
            y = reynolds2006.clip_state(integrate(y, params, kill, step_dt))
            return y, y

        _, ys = jax.lax.scan(step, y0, length=round(hours / dt))
        return jax.tree.map(lambda first, rest: jnp.concatenate([first[None], rest]), y0, ys)

    states = jax.jit(jax.vmap(course))(growth, inoculum)
    times = dt * np.arange(round(hours / dt) + 1)
    return times, {
        name: jax.tree.map(lambda leaf, i=i: np.asarray(leaf[i]), states)
        for i, name in enumerate(reynolds2006.SCENARIOS)
    }


def reynolds_fates() -> Figure:
    """P, N*, D and C_A of the three curated scenarios of BIOMD0000000714 against time."""
    times, courses = reynolds_courses()
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    published = reynolds2006.ReynoldsParams()
    rest = published.s_c / published.mu_c
    for ax, (field, label) in zip(axes, REYNOLDS_PANELS, strict=True):
        for name, states in courses.items():
            k_pg, p0 = reynolds2006.SCENARIOS[name]
            ax.plot(
                times[1:],
                getattr(states, field)[1:],
                color=REYNOLDS_COLOURS[name],
                lw=2,
                label=f"{name} ($k_{{pg}}$ = {k_pg:g}/h, $P_0$ = {p0:g})",
            )
        if field == "anti_inflammatory":
            ax.axhline(rest, color="grey", ls="--", lw=1, label="resting $C_A = s_c / \\mu_c$")
        ax.set_xscale("log")
        ax.set_xlim(times[1], times[-1])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda hours, _: f"{hours:g}"))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[2:]:
        ax.set_xlabel("hours since infection (log scale)")
    fig.legend(handles=axes[3].get_lines(), loc="outside lower center", ncols=2)
    fig.suptitle(
        "Reduced acute inflammatory response model, Reynolds et al. (2006), J Theor Biol "
        "242:220-236\nthe three curated fates of BIOMD0000000714 (the package's default rk4 solver)"
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    parser.add_argument("--patients", type=int, default=10_000, help="cohort size per policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.patients < 1:
        parser.error(f"--patients must be >= 1, got {args.patients}")
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = {**figures(args.patients, args.seed), "reynolds_fates.png": reynolds_fates()}
    for name, figure in drawn.items():
        figure.savefig(args.out / name, dpi=DPI)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
