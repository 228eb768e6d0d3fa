"""The vector engine compiled for a set of outputs: only their dependency cone, the same values.

A model compiled with ``outputs`` (``vector_model(..., outputs=...)``) integrates only the
equations and stateful objects those outputs depend on. The requested columns must be
bit for bit the full model's: on every shipped scenario (year tables included) and on a
random sample of the batch's uncertainties, for the batch's columns and for random
smaller sets of variables (other cones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.engines import vector_loader
from greenpath.runners import batch, ensemble
from greenpath.scenarios import scenario as sc
from greenpath.scenarios import targets as tg


def _batch_columns() -> list[str]:
    return batch.default_variables(tg.load())


def _run(vm, params: dict, n: int, lookups: dict | None, columns: list[str]) -> dict[str, np.ndarray]:
    return vm.simulate(params, n, lookups or None, return_columns=columns, backend="vector")


def _assert_same(full: dict, part: dict, columns: list[str], where: str) -> None:
    assert list(part) == list(columns)
    for column in columns:
        # equal bits, NaN in the same places (a failed run must fail the same way)
        assert full[column].shape == part[column].shape, (where, column)
        assert np.array_equal(full[column], part[column], equal_nan=True), (where, column)


def _scenario_inputs(name: str) -> tuple[list[str], dict, dict]:
    scenario = sc.load(name)
    tables = ensemble.validate_tables(scenario.tables)
    frame = pd.DataFrame([{k: float(v) for k, v in scenario.params.items() if k not in tables}])
    params = ensemble._vector_params(frame, tables)
    lookups = {ensemble._table_lookup(k): xy for k, xy in tables.items()}
    return sorted(tables), params, lookups


@pytest.mark.parametrize("name", sc.available())
def test_batch_columns_are_the_full_models_on_every_shipped_scenario(name):
    columns = _batch_columns()
    tabled, params, lookups = _scenario_inputs(name)
    full = vector_loader.vector_model(tabled)
    part = vector_loader.vector_model(tabled, outputs=columns)
    assert part is not full
    assert part.module.OUTPUTS is not None
    assert full.module.OUTPUTS is None
    _assert_same(_run(full, params, 1, lookups, columns), _run(part, params, 1, lookups, columns),
                 columns, name)


def _sample(runs: int, seed: int) -> dict[str, np.ndarray]:
    spec = batch.monte_carlo_batch(runs, seed)
    names, lows, highs = batch._bounds(spec.definition)
    values = batch._scale(ensemble.latin_hypercube(runs, len(names), np.random.default_rng(seed)),
                          lows, highs)
    frame = pd.DataFrame({name: values[:, j] for j, name in enumerate(names)})
    return ensemble._vector_params(frame, ())


def test_batch_columns_are_the_full_models_on_a_random_sample():
    columns = _batch_columns()
    params = _sample(300, 11)
    full = vector_loader.vector_model()
    part = vector_loader.vector_model(outputs=columns)
    _assert_same(_run(full, params, 300, None, columns), _run(part, params, 300, None, columns),
                 columns, "Monte Carlo sample")


def test_random_output_sets_are_the_full_models():
    full = vector_loader.vector_model()
    module = full.module
    everything = sorted(set(ensemble._output_names(full)))
    params = _sample(40, 5)
    rng = np.random.default_rng(18)
    for size in (1, 3, 12):
        columns = sorted(rng.choice(everything, size=size, replace=False).tolist())
        part = vector_loader.vector_model(outputs=columns)
        assert set(columns) <= set(part.module.OUTPUTS)
        assert len(part.module.OUTPUTS) <= len(module._DYNAMIC_OUTPUTS + module._STATIC_OUTPUTS)
        _assert_same(_run(full, params, 40, None, columns), _run(part, params, 40, None, columns),
                     columns, f"outputs {columns}")


def test_a_small_output_set_leaves_out_what_it_does_not_need():
    part = vector_loader.vector_model(outputs=["gdp"])
    computed = set(part.module.OUTPUTS)
    assert "gdp" in computed
    assert "co2_emissions" not in computed  # downstream of the economy, not needed by GDP
    assert "total_energy_system_cost" not in computed
    full = vector_loader.vector_model()
    assert part.generated_path != full.generated_path
    # the same set given by Vensim name and in another order is the same compiled model
    vensim = next(m["name"] for m in full.variables if m["py_name"] == "gdp")
    assert vector_loader.vector_model(outputs=[vensim]) is part


def test_a_variable_outside_the_cone_is_refused_by_the_vector_backend_only():
    part = vector_loader.vector_model(outputs=["gdp"])
    with pytest.raises(KeyError, match="co2_emissions"):
        part.simulate(None, 2, return_columns=["co2_emissions"], backend="vector")
    # the scalar backend is the whole model: it still answers, with the full model's value
    full = vector_loader.vector_model()
    one = part.simulate(None, 1, return_columns=["co2_emissions"], backend="scalar")
    assert np.array_equal(one["co2_emissions"],
                          full.simulate(None, 1, return_columns=["co2_emissions"],
                                        backend="scalar")["co2_emissions"])


def test_unknown_outputs_are_refused_with_their_names():
    with pytest.raises(KeyError, match="no_such_variable"):
        vector_loader.vector_model(outputs=["gdp", "no_such_variable"])
    with pytest.raises(TypeError, match="not a string"):
        vector_loader.vector_model(outputs="gdp")
