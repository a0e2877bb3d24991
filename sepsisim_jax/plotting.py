"""Figures (matplotlib). Functions take arrays or results and return the figure.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot: nothing is shown or
saved implicitly, no global backend state is touched, and notebooks still display them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure


def learning_curve(
    env_steps: np.ndarray,
    returns: np.ndarray,
    baselines: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """Mean episode return against env-steps: one line per seed, their mean, baselines flat.

    Args:
        env_steps: ``(n_updates,)`` env-steps collected after each update.
        returns: ``(n_seeds, n_updates)`` mean return of the episodes ended in each update
            (NaN where none ended).
        baselines: horizontal reference lines, e.g. ``{"heuristic": 61.2, "random": 44.1}``.
    """
    returns = np.atleast_2d(np.asarray(returns, dtype=float))
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for i, seed_returns in enumerate(returns):
        ax.plot(
            env_steps,
            seed_returns,
            color="tab:blue",
            alpha=0.3,
            lw=1,
            label="PPO, each seed" if i == 0 else None,
        )
    if len(returns) > 1:
        ax.plot(
            env_steps,
            np.nanmean(returns, axis=0),
            color="tab:blue",
            lw=2,
            label="PPO, mean over seeds",
        )
    colours = iter(["tab:orange", "tab:green", "tab:red", "tab:purple"])
    for name, value in (baselines or {}).items():
        ax.axhline(value, ls="--", color=next(colours), label=name)
    ax.set_xlabel("env-steps")
    ax.set_ylabel("mean episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig
