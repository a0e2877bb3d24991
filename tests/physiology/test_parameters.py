"""Every parameter declares default, range, unit and source; out-of-range values are refused."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sepsisim_jax
from sepsisim_jax.physiology import (
    CardiovascularParams,
    InflammationParams,
    LactateParams,
    param_specs,
    replace_params,
    validate_params,
)

ALL_PARAMS = [sepsisim_jax.make(env_id)[1] for env_id in sepsisim_jax.ENV_IDS]


@pytest.mark.parametrize("params", ALL_PARAMS, ids=sepsisim_jax.ENV_IDS)
def test_every_float_parameter_has_a_spec_with_default_in_range(params):
    specs = param_specs(params)
    leaves = jax.tree_util.tree_leaves_with_path(params)
    names = {path[-1].name for path, _ in leaves}
    assert names - set(specs) == {"max_steps_in_episode"}
    for name, spec in specs.items():
        assert spec.low <= spec.default <= spec.high, name
        assert spec.unit and spec.source, name
    validate_params(params)


@pytest.mark.parametrize(
    ("ours", "module"),
    [
        (InflammationParams(), "inflammation"),
        (CardiovascularParams(), "cardiovascular"),
        (LactateParams(), "lactate"),
    ],
)
def test_ranges_and_units_are_the_references(ours, module):
    import importlib

    table = importlib.import_module(f"sepsisim.models.{module}").PARAMETER_RANGES
    for field in dataclasses.fields(ours):
        spec = field.metadata["spec"]
        ref = table[field.name]
        assert (spec.default, spec.low, spec.high) == (ref["default"], ref["min"], ref["max"])
        assert spec.unit == ref["unit"].replace("normalized", "normalised")


@pytest.mark.parametrize(
    ("name", "value"), [("k_growth", 0.05), ("k_growth", 1.5), ("map_noise_sd", np.nan)]
)
def test_out_of_range_raises_naming_parameter_value_and_range(name, value):
    with pytest.raises(ValueError, match=rf"{name}=\S+ is outside its range \[") as error:
        sepsisim_jax.make("SepsisManagement-v0", **{name: value})
    assert str(value if not np.isnan(value) else "nan") in str(error.value)


def test_batched_parameters_are_checked_elementwise():
    params = sepsisim_jax.make("FluidResuscitation-v0")[1]
    good = replace_params(params, k_growth=jnp.array([0.2, 0.5, 0.9]))
    validate_params(good)
    with pytest.raises(ValueError, match=r"k_growth=1.2"):
        replace_params(params, k_growth=jnp.array([0.2, 1.2]))


def test_validation_skips_tracers_inside_jit():
    params = sepsisim_jax.make("FluidResuscitation-v0")[1]

    @jax.jit
    def scale(p):
        validate_params(p)
        return p.patient.dt * 2

    assert float(scale(params)) == 2.0


def test_unknown_parameter_name_lists_the_valid_ones():
    params = sepsisim_jax.make("VasopressorTitration-v0")[1]
    with pytest.raises(TypeError, match="fluid_protocol_ml"):
        replace_params(params, fluid_protocol=100.0)
    assert float(replace_params(params, fluid_protocol_ml=100.0).fluid_protocol_ml) == 100.0
