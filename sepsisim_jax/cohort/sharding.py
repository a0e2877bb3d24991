"""The patient axis over every device: one ``Mesh`` axis, ``NamedSharding``, no scheme of our own.

With one device nothing here changes a computation. With more (``jax.devices()``: the GPUs of
a machine, forced host devices, or every device of every process after
``jax.distributed.initialize``) the patients of a batch are split evenly over them along the
mesh axis ``"patients"``, and XLA partitions the vmapped computation. Patients never interact,
so a patient's outcome is the same on any number of devices.

Padding rule: the cohort functions round every batch of patients up to a multiple of
:data:`LANES` patients per device (:func:`padded_width`) and drop the extra patients' outcomes.
The multiple of the device count lets the batch split evenly; the lanes keep every patient in
the vectorised body of XLA's CPU loops, whose scalar remainder (an odd last patient) rounds
transcendental functions differently (measured: the last of 33 patients differed from the
same patient in a batch of 34 by 1 ulp). So a patient's outcome is the same bit for bit
whatever the batch, chunk or device count. A caller who shards a batch of their own with
:func:`constrain_patients` gets a ``ValueError`` if it does not divide by the device count.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

PATIENT_AXIS = "patients"
LANES = 16  # patients per device that a batch is padded to a multiple of


def patient_mesh() -> Mesh | None:
    """A one-axis mesh over ``jax.devices()``, or ``None`` when there is only one device."""
    devices = jax.devices()
    return Mesh(np.array(devices), (PATIENT_AXIS,)) if len(devices) > 1 else None


def patient_sharding(mesh: Mesh, leading: int = 0) -> NamedSharding:
    """Arrays split over ``mesh`` along axis ``leading`` (the patient axis)."""
    return NamedSharding(mesh, PartitionSpec(*([None] * leading), PATIENT_AXIS))


def padded_width(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`LANES` times the device count."""
    multiple = LANES * jax.device_count()
    return -(-n // multiple) * multiple


def check_divisible(n: int, what: str) -> None:
    """Raise ``ValueError`` unless ``n`` divides by the device count."""
    devices = jax.device_count()
    if n % devices:
        raise ValueError(
            f"{what} = {n} does not divide by the {devices} devices it is sharded over; "
            f"use a multiple of {devices}"
        )


def constrain_patients(x: Any, leading: int = 0) -> Any:
    """Inside ``jit``: shard the leaves of ``x`` over the devices along axis ``leading``
    (a no-op on one device). Their length there must divide by the device count."""
    mesh = patient_mesh()
    if mesh is None:
        return x
    for leaf in jax.tree.leaves(x):
        check_divisible(leaf.shape[leading], "the patient axis")
    return jax.lax.with_sharding_constraint(x, patient_sharding(mesh, leading))


def patient_range(first: int, n: int) -> jax.Array:
    """Indices ``first .. first + n - 1`` (int32), sharded over the devices when there are
    several (each process supplies only its own devices' part, as multi-process JAX needs)."""
    mesh = patient_mesh()
    if mesh is None:
        return jax.numpy.arange(first, first + n, dtype=np.int32)
    check_divisible(n, "the number of patients")
    return jax.make_array_from_callback(
        (n,),
        patient_sharding(mesh),
        lambda index: np.arange(first, first + n, dtype=np.int32)[index],
    )


def to_host(tree: Any) -> Any:
    """Every leaf as a whole numpy array on this process, gathered from all processes if the
    run spans several (``jax.distributed``)."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)
