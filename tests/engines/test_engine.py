"""The PySD engine: translation cache, fast lookups, clean state, isolation."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenpath.engines import pysd_engine as engine
from greenpath.engines.base import ModelError
from greenpath.engines.pysd_engine import JiaozuoModel
from greenpath.model import registry

LEVER_SET_A = {"industrial_coal_substitution_rate": 0.1, "wind_build_rate": 300.0,
               "small_coal_retirement_rate": 0.2}
LEVER_SET_B = {"backward_capacity_exit_rate": 0.05, "distributed_pv_build_rate": 400.0,
               "policy_start_year": 2024, "ccus_capacity": 1.0}


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Bit-identical frames (same columns, same values, NaN nowhere)."""
    assert list(a.columns) == list(b.columns)
    assert not a.isna().any().any()
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


@pytest.mark.parametrize("params", [{}, LEVER_SET_A, LEVER_SET_B])
def test_fast_lookups_match_stock_pysd(model, stock_model, params):
    fast = model.run(params)
    stock = stock_model.run(params)
    # 2 economy lookups, 5 recorded renewable additions, 5 recorded coal events by role
    assert model.lookups_accelerated == 12
    assert_same(fast.frame, stock.frame)


def test_time_varying_lever_matches_stock_pysd(model, stock_model):
    tv = {"wind_build_rate": ([2021, 2025, 2030], [50.0, 400.0, 100.0])}
    assert_same(model.run(time_varying=tv).frame, stock_model.run(time_varying=tv).frame)


def test_time_varying_lever_interpolates_over_calendar_years(model):
    # Distributed PV: its derived record ends in 2020, so the lever acts from 2021 (wind
    # follows the GEM record to 2024 in every scenario).
    cols = ["distributed_pv_construction_starts", "data_year"]
    tv = {"distributed_pv_build_rate": ([2021, 2025], [0.0, 400.0])}
    r = model.run(time_varying=tv, return_columns=cols, saveper=0.5)
    # Flows during (y-1, y] belong to data year y: at Time 2022.0 the data year is 2023,
    # half-way from 2021 to 2025 -> 200 MW/yr.
    assert r.frame.loc[2022.0, "data_year"] == 2023
    assert r.frame.loc[2022.0, "distributed_pv_construction_starts"] == pytest.approx(200.0)
    assert r.frame.loc[2022.5, "distributed_pv_construction_starts"] == pytest.approx(200.0)
    assert r.frame.loc[2019.0, "distributed_pv_construction_starts"] == pytest.approx(0.0)
    assert r.frame.loc[2030.0, "distributed_pv_construction_starts"] == pytest.approx(400.0)


def test_clean_state_between_runs(model):
    cols = ["co2_emissions", "renewable_capacity", "gdp", "total_coal_consumption"]
    first = model.run(LEVER_SET_A, return_columns=cols)
    model.run(LEVER_SET_B, time_varying={"ccus_capacity": ([2025, 2035], [0.5, 2.0])},
              final_time=2030, time_step=0.25, saveper=0.5)
    model.run({"coal_maximum_hours": 4600}, return_columns=["gdp"])
    again = model.run(LEVER_SET_A, return_columns=cols)
    assert_same(first.frame, again.frame)
    assert again.frame.index[-1] == 2035
    # and the defaults come back when nothing is passed
    assert_same(model.run(return_columns=cols).frame,
                JiaozuoModel().run(return_columns=cols).frame)


def test_threads_do_not_share_state():
    expected = {}
    base = JiaozuoModel()
    settings = [{"wind_build_rate": 50.0 * k, "industrial_coal_substitution_rate": 0.01 * k}
                for k in range(6)]
    for i, p in enumerate(settings):
        expected[i] = base.run(p, return_columns=["co2_emissions"]).frame
    got: dict[int, pd.DataFrame] = {}
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        m = engine.thread_local_model()
        try:
            for _ in range(3):
                for i in range(offset, len(settings), 2):
                    got[i] = m.run(settings[i], return_columns=["co2_emissions"]).frame
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in expected:
        assert_same(got[i], expected[i])


def _run_in_process(params: dict) -> np.ndarray:
    return JiaozuoModel().run(params, return_columns=["co2_emissions"]).frame.to_numpy()


def test_processes_do_not_share_state(model):
    settings = [LEVER_SET_A, LEVER_SET_B, {}]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_run_in_process, settings))
    for p, got in zip(settings, results, strict=True):
        np.testing.assert_array_equal(got, model.run(p, return_columns=["co2_emissions"]).frame.to_numpy())


def test_translation_is_cached_and_keyed_on_the_model(tmp_path):
    mdl = tmp_path / "m.mdl"
    shutil.copy(engine.MDL_PATH, mdl)
    first = engine.translate(mdl, cache=tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert engine.translate(mdl, cache=tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp
    mdl.write_text(mdl.read_text(encoding="utf-8").replace(
        "policy start year = 2021", "policy start year = 2022"), encoding="utf-8")
    second = engine.translate(mdl, cache=tmp_path / "cache")
    assert second != first
    assert second.is_file()


NOT_IMPLEMENTED_MDL = """{UTF-8}
x = 1
\t~\tDmnl
\t~\tInput.
\t|

y = NPV(x, 0.1, 0, 1)
\t~\tDmnl
\t~\tNet present value: not implemented by PySD.
\t|

FINAL TIME = 10
\t~\tYear
\t~\tEnd.
\t|

INITIAL TIME = 0
\t~\tYear
\t~\tStart.
\t|

SAVEPER = 1
\t~\tYear
\t~\tSave.
\t|

TIME STEP = 1
\t~\tYear
\t~\tStep.
\t|
"""


def test_translation_fails_on_not_implemented_warning(tmp_path):
    mdl = tmp_path / "bad.mdl"
    mdl.write_text(NOT_IMPLEMENTED_MDL, encoding="utf-8")
    with pytest.raises(ModelError, match="not implemented"):
        engine.translate(mdl, cache=tmp_path / "cache")


def test_the_shipped_model_translates_without_warnings(tmp_path):
    """PySD says nothing at all about the shipped model: no warning of any kind."""
    import warnings

    import pysd

    shutil.copy2(engine.MDL_PATH, tmp_path / engine.MDL_PATH.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pysd.read_vensim(str(tmp_path / engine.MDL_PATH.name), initialize=False)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught
                if "chardet" not in str(w.message)]  # chardet's own deprecation, on import
    assert not messages, messages
    engine.translate(engine.MDL_PATH, cache=tmp_path / "cache")


def test_bad_inputs_name_the_problem(model):
    with pytest.raises(registry.RegistryError, match=r"wind_build_rat.*did you mean 'wind_build_rate'"):
        model.run({"wind_build_rat": 10})
    with pytest.raises(registry.RegistryError, match=r"wind_build_rate = -5.*0.0 to 500.0"):
        model.run({"wind_build_rate": -5})
    with pytest.raises(ModelError, match="co2_emision"):
        model.run(return_columns=["co2_emision"])
    with pytest.raises(ModelError, match="time_step"):
        model.run(time_step=0.3)
    with pytest.raises(ModelError, match="final_time <= 2035"):
        model.run(final_time=2050)


@pytest.mark.parametrize("name", ["policy_active", "wind_capacity", "co2_emissions"])
def test_only_registry_parameters_can_be_set_even_unvalidated(model, name):
    """PySD would turn a stock or auxiliary into a constant that later runs keep."""
    before = model.run(return_columns=["co2_emissions", "wind_capacity"]).frame
    with pytest.raises(ModelError, match=f"{name!r} is not a model parameter"):
        model.run({name: 1.0}, validate=False)
    with pytest.raises(ModelError, match="not a model parameter"):
        model.run(time_varying={name: ([2021, 2030], [0.0, 1.0])}, validate=False)
    after = model.run(return_columns=["co2_emissions", "wind_capacity"]).frame
    assert after.equals(before)


def test_result_carries_units_and_metadata(model):
    r = model.run(LEVER_SET_A, scenario="a")
    assert r.units["co2_emissions"] == "MtCO2/Year"
    assert r.metadata["model_sha256"] == engine.model_hash()
    assert r.metadata["params"] == LEVER_SET_A
    effective = r.metadata["effective_params"]
    assert set(effective) == set(registry.load_registry())
    assert effective == {**registry.effective_defaults(), **LEVER_SET_A}
    started = datetime.fromisoformat(r.metadata["run_started_utc"])
    assert abs((datetime.now(UTC) - started).total_seconds()) < 600
    assert r.metadata["software"]["pysd"] == "3.14.3"
    long = r.long()
    assert set(long.columns) == {"scenario", "variable", "year", "value", "unit"}
    assert len(long) == r.frame.size


def test_alternating_run_structures_match_fresh_models(model):
    """Tables, no tables, tables, other columns ... on one model equal fresh models.

    The engine skips PySD's cache-type assignment for a structure it has seen; the
    cache types must then be those of that structure, not of the previous run.
    """
    cols = ["co2_emissions", "total_coal_consumption", "renewable_capacity"]
    tables = {"wind_build_rate": ([2021, 2025, 2030], [50.0, 400.0, 100.0]),
              "ccus_capacity": ([2025, 2035], [0.2, 1.5])}
    sequence = [
        {"time_varying": tables, "return_columns": cols},
        {"return_columns": cols},
        {"time_varying": tables, "return_columns": cols},
        {"time_varying": {"wind_build_rate": tables["wind_build_rate"]}},
        {"params": LEVER_SET_A, "return_columns": cols},
        {"time_varying": tables, "return_columns": cols},
    ]
    for kwargs in sequence:
        got = model.run(**kwargs).frame
        expected = JiaozuoModel().run(**kwargs).frame
        assert_same(got, expected)


def test_one_model_shared_by_threads_serialises_runs():
    """A model shared between threads (its lock) still gives each run its own levers, tables and columns."""
    shared = JiaozuoModel()
    fresh = JiaozuoModel()
    jobs = [
        {"params": LEVER_SET_A, "return_columns": ["co2_emissions"]},
        {"time_varying": {"wind_build_rate": ([2021, 2030], [0.0, 400.0])},
         "return_columns": ["co2_emissions", "renewable_capacity"]},
        {"params": LEVER_SET_B, "return_columns": ["total_coal_consumption"]},
    ]
    expected = [fresh.run(**job).frame for job in jobs]
    got: dict[tuple[int, int], pd.DataFrame] = {}
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for rep in range(4):
                for i in range(len(jobs)):
                    k = (i + t + rep) % len(jobs)
                    got[(t * 100 + rep, k)] = shared.run(**jobs[k]).frame
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(got) == 36
    for (_, k), frame in got.items():
        assert_same(frame, expected[k])


@given(xs=st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=2, max_size=12, unique=True),
       ys=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=12, max_size=12),
       x=st.floats(-2e4, 2e4, allow_nan=False), on_grid=st.booleans())
@settings(max_examples=300, deadline=None)
def test_scalar_interpolation_equals_numpy_bit_for_bit(xs, ys, x, on_grid):
    xs = sorted(xs)
    ys = ys[:len(xs)]
    if on_grid:
        x = xs[len(xs) // 2]
    expected = float(np.interp(x, xs, ys))
    assert engine._interp(float(x), xs, ys) == expected


def test_fast_caches_are_installed_and_outputs_equal_stock_pysd(model, stock_model):
    """The re-wrapped step cache and the own integration loop change no number."""
    assert type(model._model.cache).__name__ == "FastCache"
    assert model._model.cache.cached_funcs
    columns = ["co2_emissions", "total_coal_consumption", "renewable_capacity", "gdp"]
    for params in ({}, LEVER_SET_A, {"policy_start_year": 2027, "wind_build_rate": 400.0}):
        fast = model.run(params, return_columns=columns, saveper=0.5).frame
        stock = stock_model.run(params, return_columns=columns, saveper=0.5).frame
        pd.testing.assert_frame_equal(fast, stock, check_exact=True)
