"""The ensemble API: engine equality, validation, sampling, bands, threads, batch chunks."""

from __future__ import annotations

import re
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenpath.engines import vector_loader as loader
from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH
from greenpath.runners import ensemble as en
from greenpath.runners.ensemble import EnsembleError
from greenpath.scenarios import scenario as scenarios

N_TABLES = 20


def _sampled_names() -> list[str]:
    return [k for k, p in reg.load_registry().items() if p.kind != "constant" and p.max > p.min]


def _assert_same(a: en.EnsembleArrays, b: en.EnsembleArrays, columns) -> None:
    """Equal to ``rtol=1e-9`` (absolute floor 1e-12), wider only for :func:`_ulp_cancellation_variables`."""
    np.testing.assert_array_equal(a.years, b.years)
    wide = _ulp_cancellation_variables()
    for column in columns:
        want = b.values[column]
        atol = ATOL
        if column in wide and want.size:
            atol = max(ATOL, 1e-9 * float(np.max(np.abs(want))))
        np.testing.assert_allclose(a.values[column], want, rtol=RTOL, atol=atol, err_msg=column)


def _fresh_pysd(*args, **kwargs) -> en.EnsembleArrays:
    """``run_many(..., engine="pysd")`` on a model no earlier test has run.

    The PySD path uses one model per thread; a new thread gets a new model, so
    the reference cannot inherit state from runs elsewhere in the test session
    (see the last test of this file).
    """
    out: list = []

    def work() -> None:
        try:
            out.append(en.run_many(*args, engine="pysd", output="arrays", **kwargs))
        except BaseException as exc:  # re-raised in the test's thread
            out.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# ---------------------------------------------------------------------------
# Engine equality
# ---------------------------------------------------------------------------

#: 100 hypothesis examples of 2 scenarios each: 200 real-model scenarios in total.
#: Two per example so the vector engine also sees different scenarios side by side
#: on its scenario axis; more would exceed hypothesis's input size per example
#: (a scenario draws about 200 floats).
EQUALITY_EXAMPLES = 100
EQUALITY_BATCH = 2
EQUALITY_TOTAL = EQUALITY_EXAMPLES * EQUALITY_BATCH
RTOL = 1e-9
ATOL = 1e-12
#: Year grids several scenarios of one batch may share (so one vector-engine call
#: carries per-scenario table values, ``y`` of shape (n, k)); other grids are drawn.
SHARED_GRIDS = ((2021.0, 2025.0, 2026.0), (2005.0, 2035.0), (2024.0,))
# ``^ TIME STEP`` or, with the dimensionless exponent, ``^ (TIME STEP / one year)``
_POWER_OF_TIME_STEP = re.compile(r"\^\s*\(?\s*TIME STEP\b", re.IGNORECASE)


def _ulp_cancellation_variables() -> set[str]:
    """Variables computed as ``((1 + x) ^ TIME STEP - 1) / TIME STEP`` (and alike).

    NumPy evaluates ``array ** 0.5`` as ``sqrt``, Python's float power as
    ``pow``; the two differ by one ulp in a small fraction of arguments.  When
    ``x`` is near zero the ``- 1`` cancels the leading digits and that ulp
    (2.2e-16 of 1) becomes a large *relative* difference of a value that is
    itself close to zero (e.g. 1e-10 growth: 1e-6 relative).  These variables
    get an absolute tolerance of 1e-9 times their largest magnitude in the
    batch; everything downstream of them integrates the ulp and stays within
    the plain relative tolerance.  Read from the .mdl, so a new equation of
    this form is covered without editing the test.
    """
    from greenpath.model.mdl import parse_mdl

    return {v.name for v in parse_mdl() if _POWER_OF_TIME_STEP.search(v.equation)}


def _table_sets() -> list[tuple[str, ...]]:
    """Which levers follow year tables: none, each of plan_2021's tabled levers, all of them."""
    names = tuple(sorted(scenarios.load("plan_2021").tables))
    return [(), *((n,) for n in names), names] if names else [()]


@st.composite
def _scenario(draw, names: list[str], table_sets, lookups: dict) -> tuple[dict, dict, dict]:
    """One scenario: every lever and uncertainty, maybe year tables, maybe changed lookups."""
    registry = reg.load_registry()
    params = {n: draw(st.floats(registry[n].min, registry[n].max)) for n in names}
    tables = {}
    for name in draw(st.sampled_from(table_sets)):
        years = draw(st.sampled_from(SHARED_GRIDS) | st.lists(
            st.integers(2005, 2035), min_size=1, max_size=4, unique=True).map(sorted))
        p = registry[name]
        values = draw(st.lists(st.floats(p.min, p.max), min_size=len(years), max_size=len(years)))
        tables[name] = ([float(y) for y in years], values)
        params.pop(name, None)
    changed = {}
    for name, (x, y) in lookups.items():
        if draw(st.booleans()):
            factors = draw(st.lists(st.floats(0.5, 1.5), min_size=len(x), max_size=len(x)))
            changed[name] = np.asarray(y, dtype=float) * np.asarray(factors)
    return params, tables, changed


class _PysdReference:
    """PySD runs (the project's engine) with year tables and per-run lookup tables.

    ``JiaozuoModel.run`` takes levers, uncertainties and year tables; the model's
    own graphical lookups are set on its PySD model (``set_components`` with a
    ``pandas.Series``, PySD's API for replacing a lookup's table) before each
    run, every lookup each time it differs from what the model holds, so no
    run inherits another's tables.
    """

    def __init__(self, defaults: dict[str, tuple]) -> None:
        from greenpath.engines.pysd_engine import JiaozuoModel

        self.model = JiaozuoModel()
        self.defaults = {k: (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
                         for k, (x, y) in defaults.items()}
        self.held = {k: y for k, (_, y) in self.defaults.items()}

    def run(self, params, tables, lookups, columns) -> np.ndarray:
        import warnings

        for name, (x, y0) in self.defaults.items():
            y = lookups.get(name, y0)
            if not np.array_equal(self.held[name], y):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.model._model.set_components({name: pd.Series(y, index=x)})
                self.held[name] = y
        frame = self.model.run(params=params, time_varying=tables or None, return_columns=columns).frame
        return frame[columns].to_numpy(dtype=float)  # years x columns


def _vector_batch(batch, columns: list[str], default_lookups: dict, model_sha256: str) -> np.ndarray:
    """Run the batch on the vector engine: one call per table structure; (runs, years, columns).

    ``model_sha256`` is the hash of the model PySD runs: an engine compiled from
    another version of the .mdl (edited during the test) is an error, not a mismatch.
    """
    defaults = reg.effective_defaults()
    groups: dict[tuple, list[int]] = {}
    for i, (_, tables, _) in enumerate(batch):
        key = tuple(sorted((name, tuple(xs)) for name, (xs, _) in tables.items()))
        groups.setdefault(key, []).append(i)
    out: np.ndarray | None = None
    for key, members in groups.items():
        names = [name for name, _ in key]
        vm = en.vector_model(names)
        assert vm.source_sha256 == model_sha256, "model/jiaozuo.mdl changed during the test"
        params = {k: np.full(len(members), v) for k, v in defaults.items() if k not in names}
        for j, i in enumerate(members):
            for k, v in batch[i][0].items():
                params[k][j] = v
        lookups = {
            name: (np.asarray(x, dtype=float),
                   np.stack([batch[i][2].get(name, np.asarray(y, dtype=float)) for i in members]))
            for name, (x, y) in default_lookups.items()
        }
        for name, xs in key:
            lookups[en._table_lookup(name)] = (np.asarray(xs), np.stack([batch[i][1][name][1] for i in members]))
        raw = vm.simulate(params, len(members), lookups, return_columns=columns)
        if out is None:
            out = np.empty((len(batch), len(vm.times()), len(columns)))
        out[members] = np.stack([raw[c] for c in columns], axis=-1)
    return out  # type: ignore[return-value]


def test_vector_equals_pysd_property_based():
    """200 real-model scenarios (hypothesis): levers, uncertainties, year tables and lookups.

    Every lever and uncertainty is drawn across its registry range (hypothesis
    favours the range ends and awkward floats); a scenario may put some levers
    on year tables (per-scenario years and values) and change any of the
    model's lookup tables.  Every saved variable (stocks, auxiliaries and the
    tabled levers themselves) of every year must agree to ``rtol=1e-9`` with a
    1e-12 absolute floor; only :func:`_ulp_cancellation_variables` get more.
    """
    names = _sampled_names()
    table_sets = _table_sets()
    default_lookups = dict(en.vector_model().lookups)
    reference = _PysdReference(default_lookups)
    columns = [*reference.model.outputs, *sorted({n for s in table_sets for n in s})]
    wide = _ulp_cancellation_variables() & set(columns)
    assert wide, "expected equations of the form (1 + x) ^ (TIME STEP / one year) in the model"
    checked: list[int] = []
    final_co2: list[float] = []
    co2 = columns.index("co2_emissions")

    @settings(max_examples=EQUALITY_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example])
    @given(batch=st.lists(_scenario(names, table_sets, default_lookups),
                          min_size=EQUALITY_BATCH, max_size=EQUALITY_BATCH))
    def check(batch) -> None:
        vector = _vector_batch(batch, columns, default_lookups, reference.model.hash)
        pysd = np.stack([reference.run(p, t, lk, columns) for p, t, lk in batch])
        for j, column in enumerate(columns):
            want = pysd[:, :, j]
            atol = max(ATOL, 1e-9 * float(np.max(np.abs(want)))) if column in wide else ATOL
            np.testing.assert_allclose(vector[:, :, j], want, rtol=RTOL, atol=atol, err_msg=column)
        checked.append(len(batch))
        final_co2.extend(vector[:, -1, co2])

    check()
    assert sum(checked) >= EQUALITY_TOTAL
    # The draws really move the outputs (an engine ignoring inputs would fail above
    # only if the runs differ from each other).
    assert np.ptp(final_co2) > 1.0


def test_vector_table_variant_equals_pysd(model):
    """Year tables (the plan's phased levers) through the generated variant vs PySD."""
    plan = scenarios.load("plan_2021")
    assert plan.tables, "plan_2021 is expected to hold year tables"
    names = [k for k in _sampled_names() if k not in plan.tables]
    sample = en.sample_parameters(names, N_TABLES, seed=11)
    columns = model.outputs
    vector = en.run_many(sample, columns, engine="vector", time_varying=plan.tables, output="arrays")
    pysd = _fresh_pysd(sample, columns, time_varying=plan.tables)
    _assert_same(vector, pysd, columns)
    # the table matters: the same runs with the tables' first values held constant differ
    flat = sample.assign(**{k: v[1][0] for k, v in plan.tables.items()})
    held = en.run_many(flat, ["co2_emissions"], engine="vector", output="arrays")
    assert not np.array_equal(held.values["co2_emissions"], vector.values["co2_emissions"])


def test_scenario_run_equals_single_pysd_run(stock_model):
    plan = scenarios.load("plan_2021")
    ds = en.run_many(pd.DataFrame([plan.params]), ["co2_emissions", "gdp"], time_varying=plan.tables,
                     engine="vector")
    ref = stock_model.run(**plan.run_kwargs(), return_columns=["co2_emissions", "gdp"]).frame
    np.testing.assert_allclose(ds["co2_emissions"].values[0], ref["co2_emissions"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ds["gdp"].values[0], ref["gdp"].to_numpy(), rtol=1e-12)


def test_defaults_fill_missing_columns(model):
    ds = en.run_many({"carbon_price": [100.0, 0.0]}, ["co2_emissions"])
    default = model.run(return_columns=["co2_emissions"]).frame["co2_emissions"].to_numpy()
    np.testing.assert_allclose(ds["co2_emissions"].values[1], default, rtol=1e-12)
    assert not np.allclose(ds["co2_emissions"].values[0], default)


# ---------------------------------------------------------------------------
# Engine choice, outputs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine", "n", "tables", "expected"),
    [
        ("auto", 1, False, "vector"),
        ("auto", 10_000, False, "vector"),
        ("auto", 1, True, "pysd"),
        ("auto", en.AUTO_PYSD_MAX_RUNS, True, "pysd"),
        ("auto", en.AUTO_PYSD_MAX_RUNS + 1, True, "vector"),
        ("pysd", 500, False, "pysd"),
        ("vector", 1, True, "vector"),
    ],
)
def test_choose_engine(engine, n, tables, expected):
    assert en.choose_engine(engine, n, tables) == expected


def test_auto_engine_is_recorded():
    plan = scenarios.load("plan_2021")
    ds = en.run_many({}, ["gdp"], time_varying=plan.tables)
    assert ds.attrs["engine"] == "pysd"
    ds = en.run_many({"wind_build_rate": np.linspace(0, 500, 8)}, ["gdp"], time_varying=plan.tables)
    assert ds.attrs["engine"] == "vector"


def test_dataset_layout():
    frame = pd.DataFrame({"wind_build_rate": [10.0, 20.0, 30.0]}, index=pd.Index(["a", "b", "c"], name="run_id"))
    ds = en.run_many(frame, ["co2_emissions", "renewable_capacity"])
    assert ds["co2_emissions"].dims == ("run", "year")
    assert list(ds["run"].values) == ["a", "b", "c"]
    assert ds["year"].values[0] == 2005
    assert ds["year"].values[-1] == 2035
    assert ds["co2_emissions"].attrs["units"] == "MtCO2/Year"
    assert ds.attrs["n_runs"] == 3
    assert len(ds.attrs["model_sha256"]) == 64
    arrays = en.run_many(frame, None, output="arrays")
    assert list(arrays.values) == indicators.HEADLINE
    assert arrays.frame(1).index.name == "year"


# ---------------------------------------------------------------------------
# Validation: every error names what is wrong and what is allowed
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param_sets", "message"),
    [
        ({"wind_buildrate": [1.0]}, r"unknown parameter 'wind_buildrate' \(did you mean 'wind_build_rate'\?\)"),
        ({"wind_build_rate": [1.0, 600.0]}, r"row 1: 600.0 is outside the allowed range 0.0 to 500.0 MW/Year"),
        ({"wind_build_rate": [np.nan]}, r"'wind_build_rate'.*row 0: nan is outside the allowed range"),
        ({"wind_build_rate": ["many"]}, r"'many' is not a number; allowed 0.0 to 500.0 MW/Year"),
        ({"wind_build_rate": [1.0, 2.0], "carbon_price": [1.0]}, r"arrays of different lengths"),
        ({"wind_build_rate": np.ones((2, 2))}, r"expected a scalar or a 1-D array"),
        ({"coal_emission_factor": [3.0]}, r"outside the allowed range 2.7058 to 2.7058"),
        ("wind_build_rate", r"expected a pandas DataFrame or a dict of arrays"),
        (pd.DataFrame({"wind_build_rate": []}), r"no runs"),
    ],
)
def test_bad_param_sets(param_sets, message):
    with pytest.raises(EnsembleError, match=message):
        en.run_many(param_sets, ["gdp"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"return_columns": ["co2_emisions"]}, r"unknown variable 'co2_emisions' \(did you mean 'co2_emissions'\?\)"),
        ({"return_columns": "gdp"}, r"a list of variable names, not a string"),
        ({"engine": "fast"}, r"engine 'fast' is not one of auto, vector, pysd"),
        ({"output": "frame"}, r"output 'frame' is not one of"),
        ({"time_varying": {"wind_build_rate": ([2021, 2040], [1, 2])}}, r"years \[2021.0, 2040.0\] must lie in 2005"),
        ({"time_varying": {"wind_build_rate": ([2021, 2025], [1, 900])}}, r"900.*outside the allowed range 0.0 to 500"),
        ({"time_varying": {"wind_build_rate": ([2021, 2021], [1, 2])}}, r"repeated years"),
        ({"time_varying": {"wind_build_rate": 5}}, r"expected \(years, values\)"),
        ({"time_varying": {"carbon_price": ([2021], [1.0])}}, r"given both as param_sets columns and as time_varying"),
    ],
)
def test_bad_run_arguments(kwargs, message):
    kwargs = {"return_columns": ["gdp"], **kwargs}
    with pytest.raises(EnsembleError, match=message):
        en.run_many({"carbon_price": [0.0, 10.0]}, **kwargs)


def test_unknown_column_refused_by_pysd_engine_too():
    with pytest.raises(EnsembleError, match="unknown variable 'gdpp'"):
        en.run_many({}, ["gdpp"], engine="pysd")


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


def test_lhs_is_stratified_bounded_and_seeded():
    names = ["wind_build_rate", "carbon_price", "gdp_growth_2023_to_2030"]
    n = 50
    sample = en.sample_parameters(names, n, seed=3)
    assert list(sample.columns) == names
    for name in names:
        p = reg.lookup(name)
        u = (sample[name].to_numpy() - p.min) / (p.max - p.min)
        assert u.min() >= 0
        assert u.max() <= 1
        # Latin hypercube: exactly one point in each of the n equal strata
        strata = np.minimum(np.floor(u * n).astype(int), n - 1)
        assert sorted(strata) == list(range(n))
    pd.testing.assert_frame_equal(sample, en.sample_parameters(names, n, seed=3))
    assert not sample.equals(en.sample_parameters(names, n, seed=4))
    rnd = en.sample_parameters(names, n, seed=3, method="random")
    assert not rnd.equals(sample)
    sub = en.sample_parameters({"wind_build_rate": (100.0, 200.0)}, 20, seed=1)
    assert sub["wind_build_rate"].between(100.0, 200.0).all()


@pytest.mark.parametrize(("n", "d", "seed"), [(1, 1, 0), (7, 3, 1), (500, 25, 20211202)])
def test_latin_hypercube_equals_scipy(n, d, seed):
    from scipy.stats import qmc

    ours = en.latin_hypercube(n, d, np.random.default_rng(seed))
    theirs = qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(n)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("n", "d", "block"), [(1, 1, 7), (100, 5, 7), (1000, 38, 64)])
def test_latin_hypercube_written_to_a_file_is_the_same_sample(tmp_path, n, d, block):
    """The batch's out-of-core form: same draws, any block size, any row range read back."""
    whole = en.latin_hypercube(n, d, np.random.default_rng(9))
    path = en.latin_hypercube(n, d, np.random.default_rng(9), store=tmp_path / "s.bin", block=block)
    np.testing.assert_array_equal(en.read_latin_hypercube(path, n, d, 0, n), whole)
    np.testing.assert_array_equal(en.read_latin_hypercube(path, n, d, n // 3, n // 2 + 1),
                                  whole[n // 3:n // 2 + 1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((["wind_build_rate"], 0), r"n = 0: the number of samples must be a positive integer"),
        ((["wind_build_rate"], 5, 1, "sobol"), r"method 'sobol' is not one of lhs, random"),
        (({"wind_build_rate": (0.0, 900.0)}, 5), r"range 0.0 to 900.0 must lie within the registry range 0.0 to 500.0"),
        ((["no_such_lever"], 5), r"unknown parameter 'no_such_lever'"),
        (([], 5), r"no parameters to sample"),
    ],
)
def test_bad_samples(args, message):
    with pytest.raises(EnsembleError, match=message):
        en.sample_parameters(*args)


def test_sample_uncertainties_sets():
    every = en.sample_uncertainties(4, seed=1)
    assert set(every.columns) == {k for k, p in reg.uncertainties().items() if p.max > p.min}
    proj = en.sample_uncertainties(4, seed=1, names="projection")
    assert list(proj.columns) == en.projection_uncertainties()
    with pytest.raises(EnsembleError, match="'wind_build_rate' is a lever, not an uncertainty"):
        en.sample_uncertainties(4, names=["wind_build_rate"])
    with pytest.raises(EnsembleError, match="give 'all', 'projection' or a list"):
        en.sample_uncertainties(4, names="some")


def test_projection_uncertainties_are_checked_across_the_posterior():
    """The coal-switching shares are not projection uncertainties.

    They are inert while the calibrated autonomous switching is 0 (its point value, at the
    bound) but move the history at posterior draws where it is not.
    """
    from greenpath.calibration import posterior

    draws, _ = posterior.draw_rows(en.PROJECTION_CHECK_DRAWS, en.DEFAULT_SEED)
    assert draws is not None
    assert (draws["autonomous_coal_switching"] > 0).any()
    proj = en.projection_uncertainties()
    assert "switch_to_electricity_share" not in proj
    assert "gas_substitution_ratio" not in proj


def test_projection_uncertainties_leave_history_unchanged():
    proj = en.projection_uncertainties()
    assert "gdp_growth_2023_to_2030" in proj
    assert "grid_emission_factor_change" in proj
    assert "initial_gdp" not in proj  # moves the whole history
    sample = en.sample_uncertainties(30, seed=5, names=proj)
    runs = en.run_many(sample, indicators.HEADLINE, output="arrays")
    history = runs.years <= indicators.BASE_YEAR
    for name, arr in runs.values.items():
        assert np.all(arr[:, history] == arr[0, history]), name
    assert np.ptp(runs.values["co2_emissions"][:, -1]) > 0


# ---------------------------------------------------------------------------
# Bands
# ---------------------------------------------------------------------------


def test_bands_ordered_seeded_and_contain_default(model):
    columns = list(indicators.HEADLINE)
    b = en.bands({}, n=300, seed=42, columns=columns)
    assert b.columns.names == ["variable", "percentile"]
    assert b.index.name == "year"
    assert list(b.columns.get_level_values("percentile").unique()) == [10, 50, 90]
    p10, p50, p90 = (b.xs(p, axis=1, level="percentile") for p in (10, 50, 90))
    assert (p10 <= p50).all().all()
    assert (p50 <= p90).all().all()
    # up to the base year only the calibration's posterior draws spread the runs (the
    # projection uncertainties leave the history unchanged, at the point calibration and
    # across the posterior): the history percentiles are exactly those of the draws alone
    hist = b.index <= indicators.BASE_YEAR
    from greenpath.calibration import posterior

    draws, _ = posterior.draw_rows(300, 42)
    assert draws is not None
    assert b.attrs["posterior"] == list(draws.columns)
    alone = en.run_many(draws, columns, output="arrays")
    for p in (10, 50, 90):
        want = np.percentile(np.stack([alone.values[c] for c in columns], axis=2), p, axis=0)[alone.years <= 2020]
        np.testing.assert_allclose(b.xs(p, axis=1, level="percentile")[columns][hist].to_numpy(), want,
                                   rtol=1e-12, err_msg=f"P{p}")
    assert (p90.loc[2015, "co2_emissions"] - p10.loc[2015, "co2_emissions"]) > 0.0
    # The default run lies inside P10-P90 in most projection years for most variables.
    # Not for all: a default at the edge of its registry range (renewable_construction_time
    # = 1 year, the minimum) puts every sampled run on one side of it, so the default
    # renewable capacities sit above their P90.
    default = model.run(return_columns=columns).frame
    inside = (default[columns] >= p10[columns] - 1e-12) & (default[columns] <= p90[columns] + 1e-12)
    projection = inside[inside.index > indicators.BASE_YEAR]
    per_variable = projection.mean()
    assert (per_variable >= 0.5).sum() >= 0.7 * len(columns), per_variable.to_dict()
    # projections do spread
    assert (p90.loc[2035, "co2_emissions"] - p10.loc[2035, "co2_emissions"]) > 1.0
    # a fixed seed gives identical percentiles; another seed does not
    pd.testing.assert_frame_equal(b, en.bands({}, n=300, seed=42, columns=columns))
    assert not b.equals(en.bands({}, n=300, seed=43, columns=columns))


def test_bands_hold_given_settings_and_tables():
    plan = scenarios.load("plan_2021")
    given = {**plan.params, "gdp_growth_2023_to_2030": 0.03}
    b = en.bands(given, n=50, seed=1, columns=["co2_emissions"], time_varying=plan.tables,
                 percentiles=(5, 50, 95))
    assert "gdp_growth_2023_to_2030" not in b.attrs["sampled"]
    assert b.attrs["sampled"]
    assert list(b.columns.get_level_values("percentile")) == [5, 50, 95]
    base = en.bands({}, n=50, seed=1, columns=["co2_emissions"])
    assert b[("co2_emissions", 50)].loc[2030] < base[("co2_emissions", 50)].loc[2030]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percentiles": (90, 10)}, "strictly increasing"),
        ({"percentiles": (10, 150)}, "numbers in 0 to 100"),
        ({"base_params": {"wind_build_rate": 1e6}}, r"base_params\['wind_build_rate'\].*outside the allowed range"),
        ({"uncertainties": ["carbon_price"]}, "is a lever, not an uncertainty"),
    ],
)
def test_bad_bands(kwargs, message):
    kwargs = {"base_params": {}, "n": 10, **kwargs}
    with pytest.raises(EnsembleError, match=message):
        en.bands(**kwargs)


# ---------------------------------------------------------------------------
# One model per process; threads
# ---------------------------------------------------------------------------


def test_vector_model_is_cached_per_process():
    assert en.vector_model() is en.vector_model()
    assert en.vector_model(["carbon_price"]) is en.vector_model({"carbon_price"})
    assert en.vector_model(["carbon_price"]) is not en.vector_model()


def test_threads_get_the_serial_results():
    samples = [en.sample_parameters(["wind_build_rate", "gdp_growth_2023_to_2030"], 64, seed=s) for s in range(8)]
    serial = [en.run_many(s, ["co2_emissions"], output="arrays").values["co2_emissions"] for s in samples]
    results: list = [None] * len(samples)
    errors: list = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                out = en.run_many(samples[i], ["co2_emissions"], output="arrays").values["co2_emissions"]
                if results[i] is not None and not np.array_equal(results[i], out):
                    raise AssertionError("a thread's result changed between calls")
                results[i] = out
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(samples))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for got, want in zip(results, serial, strict=True):
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# Batch chunks
# ---------------------------------------------------------------------------


def test_run_specs_groups_year_tables(stock_model):
    """Runs with and without tables, shared and per-run table values, vs stock PySD run by run."""
    plan = scenarios.load("plan_2021")
    other = {**plan.tables, "backward_capacity_exit_rate": ([2021, 2025, 2026], [0.05, 0.05, 0.0])}
    shifted = {"green_industry_growth_boost": ([2022, 2030], [0.1, 0.0])}
    specs = [
        {"scenario": "plan", "run_id": 0, "params": dict(plan.params), "tables": plan.tables},
        {"scenario": "none", "run_id": 1, "params": {"carbon_price": 80.0}},
        {"scenario": "plan", "run_id": 2, "params": {**plan.params, "carbon_price": 80.0}, "tables": plan.tables},
        {"scenario": "other", "run_id": 3, "params": dict(plan.params), "tables": other},
        {"scenario": "shifted", "run_id": 4, "params": {}, "tables": shifted},
    ]
    columns = ["co2_emissions", "backward_capacity_exit_rate", "green_industry_growth_boost"]
    cube, years, got_columns = en.run_specs(specs, columns)
    assert got_columns == columns
    assert cube.shape == (5, 31, 3)
    for i, spec in enumerate(specs):
        ref = stock_model.run(params=spec["params"], time_varying=spec.get("tables"), return_columns=columns).frame
        np.testing.assert_allclose(cube[i], ref[columns].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=str(i))
    np.testing.assert_array_equal(years, np.arange(2005, 2036))


def test_run_specs_refusals():
    with pytest.raises(EnsembleError, match=r"run spec 0: missing 'params'"):
        en.run_specs([{"scenario": "a", "run_id": 0}])
    with pytest.raises(EnsembleError, match=r"years \[2021.0, 2050.0\] must lie in 2005 to 2035 \(run 0\)"):
        en.run_specs([{"scenario": "a", "run_id": 0, "params": {},
                       "tables": {"carbon_price": ([2021, 2050], [1.0, 2.0])}}])
    with pytest.raises(EnsembleError, match="outside the allowed range"):
        en.run_specs([{"scenario": "a", "run_id": 0, "params": {"carbon_price": -1.0}}])


def test_pysd_path_does_not_depend_on_the_previous_run():
    """Tables, no tables, tables on one model: the engine once kept stale PySD cache types."""
    plan = scenarios.load("plan_2021")
    frame = pd.DataFrame([plan.params])
    out: dict = {}

    def sequence() -> None:  # in a new thread: a model with no history
        kwargs = {"engine": "pysd", "output": "arrays"}
        out["first"] = en.run_many(frame, ["co2_emissions"], time_varying=plan.tables, **kwargs)
        en.run_many({"carbon_price": [10.0]}, ["co2_emissions"], **kwargs)
        out["again"] = en.run_many(frame, ["co2_emissions"], time_varying=plan.tables, **kwargs)

    thread = threading.Thread(target=sequence)
    thread.start()
    thread.join()
    np.testing.assert_array_equal(out["first"].values["co2_emissions"], out["again"].values["co2_emissions"])


# ---------------------------------------------------------------------------
# engine="auto" falls back to PySD; results carry the hash of the compiled model
# ---------------------------------------------------------------------------


@pytest.fixture
def fresh_vector_cache(monkeypatch, tmp_path):
    """No compiled vector model in memory or on disk: the next use generates one."""
    monkeypatch.setattr(loader, "_MODELS", {})
    monkeypatch.setattr(loader, "cache_root", lambda: tmp_path / "cache")
    return tmp_path


def test_auto_falls_back_to_pysd_when_generation_refuses_the_model(monkeypatch, fresh_vector_cache):
    import greenpath.engines.vector as vector

    def refuse(mdl_path):
        raise vector.UnsupportedConstructError("coal price", "the function GET XLS DATA")

    monkeypatch.setattr(vector, "generate", refuse)
    plan = scenarios.load("plan_2021")
    sample = en.sample_parameters(["wind_build_rate", "gdp_growth_2023_to_2030"], 6, seed=2)
    columns = ["co2_emissions", "gdp", "total_coal_consumption"]
    with pytest.warns(RuntimeWarning, match=r"vector engine unavailable \(UnsupportedConstructError: variable "
                      r"'coal price' uses the function GET XLS DATA.*running the 6 runs on PySD"):
        ds = en.run_many(sample, columns, engine="auto", time_varying=plan.tables)
    reference = _fresh_pysd(sample, columns, time_varying=plan.tables)
    for c in columns:
        np.testing.assert_array_equal(ds[c].values, reference.values[c])
    assert ds.attrs["engine"] == "pysd"
    assert "GET XLS DATA" in ds.attrs["engine_fallback"]
    # without tables too, and bands (which now run on "auto") still work
    with pytest.warns(RuntimeWarning, match="vector engine unavailable"):
        arrays = en.run_many(sample, columns, output="arrays")
    assert arrays.engine == "pysd"
    with pytest.warns(RuntimeWarning, match="vector engine unavailable"):
        b = en.bands({}, n=5, seed=1, columns=["co2_emissions"], uncertainties=["gdp_growth_2023_to_2030"])
    assert b.shape == (31, 3)
    # "vector" asked for explicitly raises the refusal; input errors are never hidden by a fallback
    with pytest.raises(vector.UnsupportedConstructError, match="coal price"):
        en.run_many(sample, columns, engine="vector")
    with pytest.raises(EnsembleError, match="outside the allowed range"):
        en.run_many({"wind_build_rate": [900.0]}, columns, engine="auto")


def test_auto_falls_back_when_a_tabled_lever_is_not_a_constant(monkeypatch, fresh_vector_cache):
    """The table variant needs ``lever = <number>`` in the .mdl (a MAX(0, ...) guard breaks it)."""
    text = MDL_PATH.read_text(encoding="utf-8")
    vensim = reg.lookup("carbon_price").vensim_name
    guarded, count = re.subn(rf"^({re.escape(vensim)}\s*=\s*)([-+0-9.eE]+)\s*$", r"\1MAX(0, \2)", text,
                             flags=re.MULTILINE | re.IGNORECASE)
    assert count == 1
    copy = fresh_vector_cache / MDL_PATH.name
    copy.write_text(guarded, encoding="utf-8")
    monkeypatch.setattr(loader, "MDL_PATH", copy)
    with pytest.warns(RuntimeWarning, match=r"UnsupportedConstructError: variable 'carbon price' uses a year table"):
        ds = en.run_many({"wind_build_rate": np.linspace(0, 500, 6)}, ["co2_emissions"],
                         time_varying={"carbon_price": ([2021, 2030], [0.0, 100.0])})
    assert ds.attrs["engine"] == "pysd"


def test_vector_model_is_rebuilt_when_the_mdl_changes(monkeypatch, fresh_vector_cache):
    import hashlib

    copy = fresh_vector_cache / MDL_PATH.name
    copy.write_bytes(MDL_PATH.read_bytes())
    monkeypatch.setattr(loader, "MDL_PATH", copy)
    first = en.vector_model()
    tabled = en.vector_model(["carbon_price"])
    sha1 = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert first.source_sha256 == first.mdl_sha256 == sha1
    assert tabled.source_sha256 == sha1  # the variant is labelled with the model it came from
    assert tabled.mdl_sha256 != sha1
    assert en.vector_model() is first  # cached while the file is unchanged
    ds = en.run_many({"carbon_price": [10.0, 20.0]}, ["co2_emissions"], engine="vector")
    assert ds.attrs["model_sha256"] == sha1

    copy.write_text(copy.read_text(encoding="utf-8").replace(
        "{UTF-8}", "{UTF-8}\n{ edited: the cached engine must not survive this }", 1), encoding="utf-8")
    sha2 = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert sha2 != sha1
    second = en.vector_model()
    assert second is not first
    assert second.source_sha256 == second.mdl_sha256 == sha2
    assert second.regenerated
    assert second.generated_path != first.generated_path
    assert en.vector_model(["carbon_price"]).source_sha256 == sha2
    ds = en.run_many({"carbon_price": [10.0, 20.0]}, ["co2_emissions"], engine="vector")
    assert ds.attrs["model_sha256"] == sha2
    cube, _, _ = en.run_specs([{"params": {}}], ["co2_emissions"], info=(info := {}))
    assert info["model_sha256"] == sha2


def test_pysd_results_carry_the_hash_of_the_translated_model():
    from greenpath.engines.pysd_engine import thread_local_model

    ds = en.run_many({"carbon_price": [5.0]}, ["gdp"], engine="pysd")
    assert ds.attrs["model_sha256"] == thread_local_model().hash
