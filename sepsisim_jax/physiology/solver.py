"""Integration of a patient model's ODE over one environment step.

``make_integrator(config, vector_field)`` builds the integrator of any elementwise vector field
``f(t, y, (params, drive))``: the v0 inflammation model and the v1 coupled model use the same
machinery.

Two solvers, chosen by the static :class:`SolverConfig`:

- ``"rk4"`` (default): the classical fourth-order Runge-Kutta method (Kutta 1901) at a fixed
  step ``dt / substeps``, written out in a ``lax.fori_loop``. diffrax's general solver loop
  (step-size controller, dense output, event and error checks) does nothing a fixed step
  needs; written out, rollouts trace, compile and run faster (CHANGELOG.md gives the
  measurement and the float32 bits it moved).
  Under a user's ``vmap`` the whole batch is integrated as *one*
  struct-of-arrays state by a ``jax.custom_batching.custom_vmap`` rule: the vector field is
  elementwise, so this gives each patient exactly the arithmetic it would get alone while
  avoiding the batching of a loop per patient.
- ``"dopri5"``: adaptive Dormand-Prince 5(4), the method behind scipy's ``RK45`` that the
  reference calls, with its tolerances (rtol 1e-6, atol 1e-9, largest step ``dt / 2``).
  Step sizes are chosen per patient (plain ``vmap``), so results do not depend on the batch.

Reverse-mode gradients flow through a ``custom_vjp`` whose backward pass differentiates the
plain (unbatched) solve. Forward-mode (``jax.jvp``) is not supported.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from sepsisim_jax import _checks

SolverName = Literal["rk4", "dopri5"]
SOLVERS: tuple[str, ...] = ("rk4", "dopri5")


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """Static (hashable) choice of ODE solver; it sets loop counts, so it is never traced.

    Attributes:
        name: ``"rk4"`` (fixed step, default) or ``"dopri5"`` (adaptive, as the reference).
        substeps: fixed steps per environment step for ``"rk4"``.
        rtol: relative tolerance of the adaptive controller for ``"dopri5"``.
        atol: its absolute tolerance.
        max_steps: step budget of the adaptive solver; a patient that exceeds it keeps the
            last accepted state (``throw=False``) rather than failing the whole batch.
    """

    name: SolverName = "rk4"
    substeps: int = 2
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int = 4096

    def __post_init__(self) -> None:
        if self.name not in SOLVERS:
            raise ValueError(f"unknown solver {self.name!r}; valid solvers: {SOLVERS}")
        _checks.positive_int("substeps", self.substeps)
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"rtol and atol must be > 0, got {self.rtol}, {self.atol}")
        _checks.positive_int("max_steps", self.max_steps)


VectorField = Callable[[jax.Array, Any, tuple[Any, Any]], Any]
Integrator = Callable[[Any, Any, Any, jax.Array], Any]


def _solve(
    config: SolverConfig,
    vector_field: VectorField,
    y0: Any,
    params: Any,
    drive: Any,
    dt: jax.Array,
) -> Any:
    """The state at t = dt from ``y0`` at t = 0; ``y0`` leaves may hold a whole batch."""
    if config.name == "rk4":
        return _rk4(vector_field, y0, (params, drive), dt, config.substeps)
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Dopri5(),
        t0=jnp.zeros_like(dt),
        t1=dt,
        dt0=None,
        y0=y0,
        args=(params, drive),
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=config.rtol, atol=config.atol, dtmax=dt / 2),
        max_steps=config.max_steps,
        throw=False,
    )
    return jax.tree.map(lambda leaf: leaf[-1], solution.ys)


def _rk4(vector_field: VectorField, y0: Any, args: Any, dt: jax.Array, substeps: int) -> Any:
    """``substeps`` classical Runge-Kutta steps of size ``h = dt / substeps`` (Kutta 1901):
    ``y + h/6 (k1 + 2 k2 + 2 k3 + k4)`` with the stages at ``t``, ``t + h/2`` (twice), ``t + h``."""
    h = dt / substeps
    tree = jax.tree.map

    def step(i: jax.Array, y: Any) -> Any:
        t = i * h
        k1 = vector_field(t, y, args)
        k2 = vector_field(t + h / 2, tree(lambda y, k: y + h / 2 * k, y, k1), args)
        k3 = vector_field(t + h / 2, tree(lambda y, k: y + h / 2 * k, y, k2), args)
        k4 = vector_field(t + h, tree(lambda y, k: y + h * k, y, k3), args)
        return tree(lambda y, a, b, c, d: y + h / 6 * (a + 2 * b + 2 * c + d), y, k1, k2, k3, k4)

    return jax.lax.fori_loop(0, substeps, step, y0)


def _align_batch(axis_size: int, in_batched: tuple, args: tuple) -> tuple:
    """Make batched leaves broadcast elementwise against each other and the unbatched ones.

    A batched leaf of per-example shape ``s`` gets singleton axes after its batch axis so
    that its rank matches the widest per-example rank; state leaves are then broadcast to the
    full batched shape so the solver carries one array per state variable.
    """
    flags, _ = jax.tree.flatten(in_batched)
    leaves, treedef = jax.tree.flatten(args)
    pairs = list(zip(leaves, flags, strict=True))
    cores = [leaf.shape[1:] if b else jnp.shape(leaf) for leaf, b in pairs]
    core = np.broadcast_shapes(*cores)
    aligned = [
        jnp.reshape(leaf, (axis_size,) + (1,) * (len(core) - len(c)) + c) if b else leaf
        for (leaf, b), c in zip(pairs, cores, strict=True)
    ]
    y0, params, drive, dt = jax.tree.unflatten(treedef, aligned)
    y0 = jax.tree.map(lambda leaf: jnp.broadcast_to(leaf, (axis_size, *core)), y0)
    return y0, params, drive, dt


@functools.cache
def make_integrator(config: SolverConfig, vector_field: VectorField) -> Integrator:
    """``integrate(y0, params, drive, dt) -> y1`` of ``vector_field`` for ``config``, built once.

    ``drive`` holds the inputs held constant over the step (treatment rates); the vector field
    receives ``args = (params, drive)`` and must act elementwise on every leaf.
    """
    solve = functools.partial(_solve, config, vector_field)

    @jax.custom_batching.custom_vmap
    def batched_solve(y0, params, drive, dt):
        return solve(y0, params, drive, dt)

    @batched_solve.def_vmap
    def _batch_rule(axis_size, in_batched, y0, params, drive, dt):
        dt_batched = in_batched[3]
        if config.name != "rk4" or dt_batched:
            # Adaptive steps, or a different time grid per patient: plain vmap of diffrax.
            in_axes = jax.tree.map(lambda b: 0 if b else None, in_batched)
            out = jax.vmap(solve, in_axes=in_axes)(y0, params, drive, dt)
        else:
            # Recurse into the custom_vmap function so that nested vmaps also take this path.
            out = batched_solve(*_align_batch(axis_size, in_batched, (y0, params, drive, dt)))
        return out, jax.tree.map(lambda _: True, out)

    @jax.custom_vjp
    def integrate(y0, params, drive, dt):
        return batched_solve(y0, params, drive, dt)

    def integrate_fwd(y0, params, drive, dt):
        return batched_solve(y0, params, drive, dt), (y0, params, drive, dt)

    def integrate_bwd(residuals, cotangent):
        _, pullback = jax.vjp(solve, *residuals)
        return pullback(cotangent)

    integrate.defvjp(integrate_fwd, integrate_bwd)
    return integrate
