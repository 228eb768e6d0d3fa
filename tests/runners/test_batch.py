"""Batch runs.

Spec checks, sampling, failures recorded, output format, refusal of mixed specs,
resume after SIGKILL, process pool / Dask / vector engine equal to in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.engines.pysd_engine import JiaozuoModel
from greenpath.model import registry as reg
from greenpath.model.mdl import model_hash
from greenpath.runners import batch as B
from greenpath.scenarios import scenario as scenarios

FEW = ["co2_emissions", "total_coal_consumption", "renewable_capacity"]


def tables(out) -> dict[str, pd.DataFrame]:
    return B.read(out)


def results_bytes(out) -> bytes:
    """Return the results dataset's files, as stored."""
    return b"".join(p.read_bytes() for p in sorted((out / "results").glob("*.parquet")))


def assert_same_batch(a, b) -> None:
    """Identical results and targets; identical runs apart from the timings."""
    ta, tb = tables(a), tables(b)
    pd.testing.assert_frame_equal(ta["results"], tb["results"])
    pd.testing.assert_frame_equal(ta["targets"], tb["targets"])
    pd.testing.assert_frame_equal(ta["runs"].drop(columns="run_seconds"),
                                  tb["runs"].drop(columns="run_seconds"))


# ---------------------------------------------------------------- defining batches
@pytest.mark.parametrize(("call", "message"), [
    (lambda: B.parse_grid(["wind_build_rat=1,2"]), "did you mean 'wind_build_rate'"),
    (lambda: B.parse_grid(["wind_build_rate=100,900"]),
     "wind_build_rate = 900.0 is outside the allowed range 0 to 500 MW/Year"),
    (lambda: B.parse_grid(["coal_emission_factor=2"]), "is a constant and cannot be varied"),
    (lambda: B.parse_grid(["wind_build_rate"]), "write NAME=V1,V2"),
    (lambda: B.parse_grid(["wind_build_rate=1,fast"]), "'fast' is not a number"),
    (lambda: B.parse_grid(["wind_build_rate=1", "wind_build_rate=2"]), "given twice"),
    (lambda: B.monte_carlo_batch(10, 1, uncertainties=["gdp_growth_2023_to_2031"]),
     "did you mean 'gdp_growth_2023_to_2030'"),
    (lambda: B.monte_carlo_batch(0, 1), "whole number >= 1"),
    (lambda: B.monte_carlo_batch(5, -1), "--seed -1"),
    (lambda: B.scenario_batch(["baseline"], variables=["co2_emisions"]),
     "did you mean 'co2_emissions'"),
    (lambda: B.scenario_batch(["baseline"], engine="numba"), "engine 'numba' not one of"),
    (lambda: B.scenario_batch(["baseline"], chunk_size=0), "chunk size 0"),
    (lambda: B.scenario_batch(["baseline", "baseline"]), "two scenarios are named 'baseline'"),
    (lambda: B.scenario_batch(["baseline"], sets=["seed"]), "did you mean 'seed_2021'"),
])
def test_bad_batch_definitions_say_what_is_allowed(call, message):
    with pytest.raises((B.BatchError, scenarios.ScenarioError)) as info:
        call()
    assert message in str(info.value)


def test_grid_is_the_full_product_first_name_slowest():
    spec = B.grid_batch([("wind_build_rate", [100, 200]), ("ccus_capacity", [0, 0.5, 1])],
                        "plan_2021", use_targets=False)
    runs = spec.runs()
    assert [r.varied for r in runs[:4]] == [
        {"wind_build_rate": 100.0, "ccus_capacity": 0.0},
        {"wind_build_rate": 100.0, "ccus_capacity": 0.5},
        {"wind_build_rate": 100.0, "ccus_capacity": 1.0},
        {"wind_build_rate": 200.0, "ccus_capacity": 0.0}]
    assert len(runs) == 6
    plan = scenarios.load("plan_2021")
    assert runs[0].params == {**plan.params, **runs[0].varied}
    assert runs[0].tables == plan.tables
    assert {r.scenario for r in runs} == {"plan_2021"}


def test_monte_carlo_is_a_seeded_latin_hypercube():
    names = ["gdp_growth_2023_to_2030", "capacity_utilisation", "coal_maximum_hours"]
    spec = B.monte_carlo_batch(10, 7, uncertainties=names, use_targets=False)
    a = spec.runs()
    b = B.monte_carlo_batch(10, 7, uncertainties=names, use_targets=False).runs()
    c = B.monte_carlo_batch(10, 8, uncertainties=names, use_targets=False).runs()
    assert [r.varied for r in a] == [r.varied for r in b]
    assert [r.varied for r in a] != [r.varied for r in c]
    pool = reg.uncertainties()
    for name in names:
        lo, hi = pool[name].min, pool[name].max
        values = np.array([r.varied[name] for r in a])
        # one sample in each of the 10 equal-probability strata of the range
        strata = np.floor((values - lo) / (hi - lo) * 10).astype(int)
        assert sorted(strata) == list(range(10))
    # the other calibrated parameters take posterior draws (coal_maximum_hours is sampled here)
    posterior = spec.definition["posterior"]["names"]
    assert "coal_maximum_hours" not in posterior
    assert set(a[0].varied) == set(names) | set(posterior)


def test_monte_carlo_samples_projection_uncertainties_by_default():
    """By default only the uncertainties that leave the calibrated history alone; 'all' opts in."""
    from greenpath.runners import ensemble

    spec = B.monte_carlo_batch(3, 1, use_targets=False)
    projection = ensemble.projection_uncertainties()
    posterior = spec.definition["posterior"]["names"]  # the calibrated parameters: posterior draws
    assert posterior
    assert not set(posterior) & set(projection)
    assert list(spec.runs()[0].varied) == projection + posterior
    assert spec.definition["uncertainty_set"] == "projection"
    assert "initial_gdp" not in projection
    assert "gdp_growth_2017" not in projection
    every = {n for n, p in reg.uncertainties().items() if p.max > p.min}
    assert set(projection) < every
    for given in ("all", ["all"]):
        spec = B.monte_carlo_batch(3, 1, uncertainties=given, use_targets=False)
        assert set(spec.runs()[0].varied) == every
        assert spec.definition["uncertainty_set"] == "all"
    named = B.monte_carlo_batch(3, 1, uncertainties=["initial_gdp"], use_targets=False)
    assert list(named.runs()[0].varied) == ["initial_gdp", *(n for n in posterior if n != "initial_gdp")]
    assert named.definition["uncertainty_set"] == "given"
    with pytest.raises(B.BatchError, match="--uncertainty all stands alone"):
        B.monte_carlo_batch(3, 1, uncertainties=["all", "initial_gdp"])


def test_every_monte_carlo_run_reproduces_the_history_of_its_posterior_draw(tmp_path):
    """Default sample on the plan (policy start 2021).

    2005-2020 of every run equals the run of its calibrated parameters (its posterior
    draw) alone: the projection uncertainties and the plan's levers leave the history
    unchanged; the sample spreads the projection; 'all' samples the calibrated ones
    across their whole ranges instead.
    """
    from greenpath.runners import ensemble

    plan = scenarios.load("plan_2021")
    assert plan.params.get("policy_start_year", reg.lookup("policy_start_year").default) == 2021
    columns = list(dict.fromkeys([*FEW, "gdp", "total_energy_consumption", "energy_intensity"]))
    spec = B.monte_carlo_batch(40, 4, "plan_2021", variables=columns, use_targets=False)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    res = tables(tmp_path)["results"]
    assert res["run_id"].nunique() == 40
    posterior = spec.definition["posterior"]["names"]
    assert posterior
    draws = pd.DataFrame([{n: r.varied[n] for n in posterior} for r in spec.runs()])
    alone = ensemble.run_many(draws, columns, engine="vector", output="arrays")
    history = res[res["year"] <= 2020]
    for variable in columns:
        cube = history[history.variable == variable].pivot(index="run_id", columns="year", values="value")
        np.testing.assert_allclose(cube.to_numpy(), alone.values[variable][:, alone.years <= 2020],
                                   rtol=1e-9, atol=1e-12, err_msg=variable)
    co2 = res[res.variable == "co2_emissions"].pivot(index="run_id", columns="year", values="value")
    assert co2[2035].max() - co2[2035].min() > 1.0  # the projection does spread
    # Sampling every uncertainty moves the recorded history (what the default avoids).
    every = B.monte_carlo_batch(20, 4, "plan_2021", uncertainties="all").runs()
    moved = ensemble.run_many(pd.DataFrame([r.varied for r in every]), ["co2_emissions"],
                              engine="vector", output="arrays")
    assert np.ptp(moved.values["co2_emissions"][:, moved.years == 2020]) > 1.0


# ---------------------------------------------------------------- running
@pytest.mark.parametrize("engine", ["pysd", "auto"])
def test_scenario_batch_equals_direct_runs(tmp_path, engine):
    spec = B.scenario_batch(["baseline", "plan_2021"], variables=FEW, chunk_size=1, engine=engine)
    summary = B.run_batch(spec, tmp_path / "out", workers=1, progress=False)
    assert (summary.n_runs, summary.n_ok, summary.n_failed, summary.n_chunks) == (2, 2, 0, 2)
    res = tables(tmp_path / "out")["results"]
    assert list(res.columns) == B.RESULT_COLUMNS
    runs = tables(tmp_path / "out")["runs"]
    assert set(runs["engine"]) == {"pysd" if engine == "pysd" else "vector"}
    direct = JiaozuoModel().run(**scenarios.load("plan_2021").run_kwargs()).frame
    assert set(runs["model_sha256"]) == {model_hash()}
    got = res[(res.scenario == "plan_2021") & (res.variable == "co2_emissions")]
    if engine == "pysd":
        np.testing.assert_array_equal(got["value"].to_numpy(), direct["co2_emissions"].to_numpy())
    else:  # the vector engine equals PySD to rounding
        np.testing.assert_allclose(got["value"].to_numpy(), direct["co2_emissions"].to_numpy(),
                                   rtol=1e-9, atol=1e-12)
    assert list(got["year"]) == list(range(2005, 2036))
    assert set(res.loc[res.variable == "co2_emissions", "unit"]) == {"MtCO2/Year"}
    # The target variables are always kept, and targets are evaluated for every run.
    assert "energy_intensity" in set(res.variable)
    tgt = tables(tmp_path / "out")["targets"]
    assert len(tgt) == 2 * len(spec.targets)


def test_csv_and_parquet_hold_the_same_table(tmp_path):
    spec = B.scenario_batch(["baseline"], variables=FEW, use_targets=False)
    B.run_batch(spec, tmp_path, workers=1, progress=False, csv=True)
    parquet = B.read(tmp_path)
    for name in B.TABLES:
        pq = parquet[name]
        csv = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False)
        assert list(csv.columns) == list(pq.columns)
        assert len(csv) == len(pq)
    pq = parquet["results"]
    csv = pd.read_csv(tmp_path / "results.csv")
    np.testing.assert_array_equal(csv["value"].to_numpy(), pq["value"].to_numpy())


def test_failed_runs_are_recorded_and_do_not_stop_others(tmp_path):
    specs = [B.RunSpec(0, "a", {"wind_build_rate": 200.0}),
             B.RunSpec(1, "bad", {"wind_build_rate": 1e9}),
             B.RunSpec(2, "c", {"ccus_capacity": 1.0})]
    spec = B.runs_batch(specs, variables=FEW, chunk_size=2)
    summary = B.run_batch(spec, tmp_path, workers=1, progress=False)
    assert (summary.n_ok, summary.n_failed) == (2, 1)
    t = tables(tmp_path)
    runs = t["runs"].set_index("run_id")
    assert list(runs["status"]) == ["ok", "failed", "ok"]
    assert "wind_build_rate" in runs.loc[1, "error"]
    assert "outside the allowed range" in runs.loc[1, "error"]
    assert runs.loc[0, "error"] == ""
    assert set(t["results"]["run_id"]) == {0, 2}
    assert set(t["targets"]["run_id"]) == {0, 2}


def test_nan_run_is_recorded_as_failed(tmp_path, monkeypatch):
    from greenpath.engines import pysd_engine

    real = pysd_engine.thread_local_model()

    class NanOnRequest:
        """The real model, but CO2 turns NaN from 2030 when ccus_capacity is 2.5."""

        def run(self, params=None, **kw):
            result = real.run(params, **kw)
            if (params or {}).get("ccus_capacity") == 2.5:
                result.frame.loc[2030:, "co2_emissions"] = np.nan
            return result

    monkeypatch.setattr(pysd_engine, "thread_local_model", lambda: NanOnRequest())
    specs = [B.RunSpec(0, "a", {}), B.RunSpec(1, "nan", {"ccus_capacity": 2.5}),
             B.RunSpec(2, "b", {"ccus_capacity": 1.0})]
    # Mocked: no lever or uncertainty setting within (or at the edges of) the registry
    # ranges makes the model produce NaN (30,000 corner and random draws checked); the
    # real failing inputs are tested below.
    B.run_batch(B.runs_batch(specs, variables=FEW, engine="pysd"), tmp_path, workers=1,
                progress=False)
    runs = tables(tmp_path)["runs"].set_index("run_id")
    assert list(runs["status"]) == ["ok", "failed", "ok"]
    assert runs.loc[1, "error"] == "non-finite values (NaN or inf) from 2030 in co2_emissions"


def test_nan_run_on_the_vector_engine_is_recorded_as_failed(tmp_path, monkeypatch):
    """The default engine's path: a NaN from run_specs fails that run only (mocked, as above)."""
    from greenpath.runners import ensemble

    real = ensemble.run_specs

    def nan_on_request(specs, columns, **kw):
        cube, years, cols = real(specs, columns, **kw)
        for i, spec in enumerate(specs):
            if spec.params.get("ccus_capacity") == 2.5:
                cube[i, years >= 2030, cols.index("co2_emissions")] = np.nan
        return cube, years, cols

    monkeypatch.setattr(ensemble, "run_specs", nan_on_request)
    specs = [B.RunSpec(0, "a", {}), B.RunSpec(1, "nan", {"ccus_capacity": 2.5}),
             B.RunSpec(2, "b", {"ccus_capacity": 1.0})]
    B.run_batch(B.runs_batch(specs, variables=FEW), tmp_path, workers=1, progress=False)
    runs = tables(tmp_path)["runs"].set_index("run_id")
    assert list(runs["status"]) == ["ok", "failed", "ok"]
    assert list(runs["engine"]) == ["vector"] * 3
    assert runs.loc[1, "error"] == "non-finite values (NaN or inf) from 2030 in co2_emissions"


def test_alternating_run_structures_give_fresh_model_results(tmp_path):
    """Runs with and without year tables, interleaved, equal runs on fresh models."""
    names = ["plan_2021", "only_energy", "plan_2021_delayed", "baseline", "plan_2021"]
    specs = []
    for i, name in enumerate(names):
        s = scenarios.load(name)
        specs.append(B.RunSpec(i, f"{name}-{i}", s.params, s.tables))
    chunk = B.run_chunk(specs, FEW, engine="pysd")
    for i, name in enumerate(names):
        fresh = JiaozuoModel().run(**scenarios.load(name).run_kwargs(), return_columns=FEW)
        got = chunk.results[(chunk.results.run_id == i) & (chunk.results.variable == "co2_emissions")]
        np.testing.assert_array_equal(got["value"].to_numpy(),
                                      fresh.frame["co2_emissions"].to_numpy(), err_msg=name)


def test_vector_engine_equals_pysd_with_and_without_year_tables(tmp_path):
    names = ["gdp_growth_2023_to_2030", "coal_maximum_hours", "industrial_capacity_lifetime"]
    common = {"uncertainties": names, "variables": FEW, "chunk_size": 10}
    pysd = B.monte_carlo_batch(20, 5, "plan_2021", engine="pysd", **common)
    vec = B.monte_carlo_batch(20, 5, "plan_2021", engine="vector", **common)
    # plan_2021 has year tables: the vector engine runs them through its table variant.
    B.run_batch(pysd, tmp_path / "p", workers=1, progress=False)
    B.run_batch(vec, tmp_path / "v", workers=1, progress=False)
    a, b = tables(tmp_path / "p"), tables(tmp_path / "v")
    assert set(b["runs"]["engine"]) == {"vector"}
    np.testing.assert_allclose(b["results"]["value"], a["results"]["value"], rtol=1e-9, atol=1e-12)
    flat = B.monte_carlo_batch(20, 5, "only_energy", engine="pysd", **common)
    flat_v = B.monte_carlo_batch(20, 5, "only_energy", engine="vector", **common)
    B.run_batch(flat, tmp_path / "fp", workers=1, progress=False)
    B.run_batch(flat_v, tmp_path / "fv", workers=1, progress=False)
    a, b = tables(tmp_path / "fp"), tables(tmp_path / "fv")
    assert (b["runs"]["status"] == "ok").all()
    np.testing.assert_allclose(b["results"]["value"], a["results"]["value"], rtol=1e-12,
                               atol=1e-9)
    pd.testing.assert_frame_equal(a["targets"].drop(columns=["value", "margin"]),
                                  b["targets"].drop(columns=["value", "margin"]))


@pytest.mark.parametrize("engine", ["pysd", "auto"])
def test_process_pool_equals_in_process(tmp_path, engine):
    spec = B.monte_carlo_batch(12, 11, variables=FEW, chunk_size=3, engine=engine)
    B.run_batch(spec, tmp_path / "one", workers=1, progress=False)
    B.run_batch(spec, tmp_path / "two", workers=2, progress=False)
    assert_same_batch(tmp_path / "one", tmp_path / "two")


def test_dask_local_cluster_equals_process_pool(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = B.monte_carlo_batch(12, 13, variables=FEW, chunk_size=3)
    B.run_batch(spec, tmp_path / "pool", workers=2, progress=False)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        summary = B.run_batch(spec, tmp_path / "dask", scheduler=cluster.scheduler_address,
                              progress=False)
    assert summary.n_ok == 12
    assert_same_batch(tmp_path / "pool", tmp_path / "dask")


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    spec = B.scenario_batch(["baseline"], variables=FEW, use_targets=False)
    with pytest.raises(B.BatchError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        B.run_batch(spec, tmp_path, scheduler="tcp://127.0.0.1:9", progress=False,
                    connect_timeout=1.0)


# ---------------------------------------------------------------- the output folder
def test_different_spec_is_refused_unless_forced(tmp_path):
    first = B.scenario_batch(["baseline"], variables=FEW, use_targets=False)
    second = B.scenario_batch(["plan_2021"], variables=FEW, use_targets=False)
    B.run_batch(first, tmp_path, workers=1, progress=False, csv=True)
    before = (tmp_path / "results.csv").read_text(encoding="utf-8")
    with pytest.raises(B.BatchError, match="holds a different batch .*definition.*--force"):
        B.run_batch(second, tmp_path, workers=1, progress=False)
    assert (tmp_path / "results.csv").read_text(encoding="utf-8") == before
    B.run_batch(second, tmp_path, workers=1, progress=False, force=True)
    assert set(tables(tmp_path)["results"]["scenario"]) == {"plan_2021"}


def test_foreign_folder_is_refused_and_its_files_kept(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    spec = B.scenario_batch(["baseline"], variables=FEW, use_targets=False)
    with pytest.raises(B.BatchError, match="not a batch folder .*--force"):
        B.run_batch(spec, tmp_path, workers=1, progress=False)
    B.run_batch(spec, tmp_path, workers=1, progress=False, force=True)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_finished_batch_is_not_rerun(tmp_path):
    spec = B.scenario_batch(["baseline", "plan_2021"], variables=FEW, chunk_size=1)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    first = results_bytes(tmp_path)
    again = B.run_batch(spec, tmp_path, workers=1, progress=False)
    assert (again.chunks_skipped, again.runs_executed) == (2, 0)
    assert results_bytes(tmp_path) == first
    manifest = json.loads((tmp_path / B.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["status"] == "complete"
    assert manifest["spec_hash"] == spec.hash()


def test_read_refuses_an_unfinished_batch(tmp_path):
    with pytest.raises(B.BatchError, match="not a batch folder"):
        B.read(tmp_path)


def test_resume_after_sigkill_gives_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed"
    # On PySD: the vector engine would finish 120 runs before the batch could be killed.
    cmd = [sys.executable, "-m", "greenpath.cli", "batch", "--monte-carlo", "120", "--seed",
           "3", "--chunk-size", "4", "--workers", "2", "--quiet", "--engine", "pysd",
           "--variables", *FEW, "--csv", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    chunks = out / B.CHUNK_DIR
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if chunks.is_dir() and len([p for p in chunks.iterdir()
                                        if p.name.startswith("c")]) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the batch finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its worker processes
    finally:
        proc.wait(timeout=30)
    done = [p for p in chunks.iterdir() if p.name.startswith("c")]
    assert 3 <= len(done) < 30
    assert json.loads((out / B.MANIFEST).read_text(encoding="utf-8"))["status"] == "running"
    assert not (out / "summary.csv").exists()

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed:" in resumed.stdout

    spec = B.monte_carlo_batch(120, 3, variables=FEW, chunk_size=4, engine="pysd")
    B.run_batch(spec, tmp_path / "clean", workers=1, progress=False, csv=True)
    assert_same_batch(out, tmp_path / "clean")
    assert (out / "results.csv").read_bytes() == (tmp_path / "clean" / "results.csv").read_bytes()
    assert not list(chunks.glob(".tmp-*"))


# ---------------------------------------------------------------- command
def test_batch_command(tmp_path, capsys):
    out = tmp_path / "grid"
    code = main(["batch", "--grid", "wind_build_rate=100,300", "--base", "plan_2021",
                 "--out", str(out), "--workers", "1", "--quiet", "--variables", *FEW])
    assert code == 0
    text = capsys.readouterr().out
    assert "2 runs: 2 ok, 0 failed" in text
    runs = B.read(out)["runs"]
    assert list(runs["wind_build_rate"]) == [100.0, 300.0]


@pytest.mark.parametrize(("argv", "message"), [
    (["baseline", "--grid", "wind_build_rate=1"], "exactly one of"),
    ([], "exactly one of"),
    (["--monte-carlo", "5"], "needs --seed"),
    (["baseline", "--base", "plan_2021"], "--base is for --grid or --monte-carlo"),
    (["--grid", "wind_build_rate=1", "--uncertainty", "gdp_growth_2020"],
     "--uncertainty only applies"),
])
def test_batch_command_errors(tmp_path, capsys, argv, message):
    assert main(["batch", *argv, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------- engines
def test_batch_defaults_to_auto_and_its_help_says_so(capsys):
    assert B.scenario_batch(["baseline"], use_targets=False).engine == "auto"
    assert B.monte_carlo_batch(2, 1, use_targets=False).chunk_size == B.DEFAULT_VECTOR_CHUNK_SIZE
    assert B.scenario_batch(["baseline"], engine="pysd", use_targets=False).chunk_size == \
        B.DEFAULT_CHUNK_SIZE
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "auto (default)" in text
    assert "year tables included" in text
    assert "runs without year tables" not in text  # the old, wrong limitation
    assert "'all' for every uncertainty" in text


def test_auto_falls_back_to_pysd_when_the_vector_engine_refuses(monkeypatch):
    """A refusal of the model (as vector.generate raises it) -> warning, PySD results."""
    from greenpath.engines.vector import UnsupportedConstructError
    from greenpath.runners import ensemble

    plan = scenarios.load("plan_2021")
    specs = [B.RunSpec(0, "plan", plan.params, plan.tables),
             B.RunSpec(1, "flat", {"carbon_price": 50.0})]
    reference = B.run_chunk(specs, FEW, engine="pysd", targets=[])

    def refuse(*args, **kwargs):
        raise UnsupportedConstructError("some variable", "the function FANCY")

    monkeypatch.setattr(ensemble, "vector_model", refuse)
    with pytest.warns(RuntimeWarning, match=r"vector engine unavailable \(UnsupportedConstructError: "
                      r"variable 'some variable' uses the function FANCY"):
        chunk = B.run_chunk(specs, FEW, engine="auto", targets=[])
    pd.testing.assert_frame_equal(chunk.results, reference.results)
    assert list(chunk.runs["engine"]) == ["pysd", "pysd"]
    assert (chunk.runs["status"] == "ok").all()
    # engine="vector" does not fall back: every run fails with the reason
    failed = B.run_chunk(specs, FEW, engine="vector", targets=[])
    assert list(failed.runs["status"]) == ["failed", "failed"]
    assert failed.runs["error"].str.contains("vector engine: UnsupportedConstructError").all()


# ---------------------------------------------------------------- failing runs, real inputs
def test_bad_year_tables_fail_their_runs_on_both_engines(tmp_path):
    """Real inputs the engines reject at run time (runs_batch does not pre-validate)."""
    specs = [B.RunSpec(0, "ok", {"wind_build_rate": 200.0}),
             B.RunSpec(1, "ragged", {}, {"wind_build_rate": ([2021.0, 2025.0], [100.0])}),
             B.RunSpec(2, "empty", {}, {"carbon_price": ([], [])}),
             B.RunSpec(3, "too high", {}, {"carbon_price": ([2021.0], [1e9])}),
             B.RunSpec(4, "ok too", {"ccus_capacity": 1.0})]
    for engine in ("pysd", "auto"):
        out = tmp_path / engine
        summary = B.run_batch(B.runs_batch(specs, variables=FEW, engine=engine), out, workers=1,
                              progress=False)
        assert (summary.n_ok, summary.n_failed) == (2, 3), engine
        runs = tables(out)["runs"].set_index("run_id")
        assert list(runs["status"]) == ["ok", "failed", "failed", "failed", "ok"], engine
        assert runs.loc[[1, 2, 3], "error"].str.len().gt(0).all()
        assert "outside the allowed range" in runs.loc[3, "error"]
        assert set(tables(out)["results"]["run_id"]) == {0, 4}


# ---------------------------------------------------------------- scenario metadata
def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_scenarios_table_of_a_scenario_batch(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[scenario]\nname = "mine"\nextends = "plan_2021"\ntitle_en = "Mine"\n'
                    'title_zh = "我的"\n\n[levers]\ncarbon_price = 60\n', encoding="utf-8")
    spec = B.scenario_batch(["baseline", "plan_2021_delayed", user], variables=FEW,
                            use_targets=False)
    B.run_batch(spec, tmp_path / "out", workers=1, progress=False)
    table = tables(tmp_path / "out")["scenarios"]
    assert list(table.columns) == B.SCENARIO_COLUMNS
    rows = table.set_index("scenario")
    assert list(rows.index) == ["baseline", "plan_2021_delayed", "mine"]
    shipped = scenarios.SCENARIO_DIR
    delayed = rows.loc["plan_2021_delayed"]
    loaded = scenarios.load("plan_2021_delayed")
    assert (delayed["title_en"], delayed["title_zh"]) == (loaded.title_en, loaded.title_zh)
    assert delayed["title_zh"]  # bilingual titles come through
    assert delayed["extends"] == "plan_2021"
    assert delayed["extends_chain"] == "baseline > plan_2021 > plan_2021_delayed"
    assert delayed["source_file"] == "scenarios/plan_2021_delayed.toml"
    assert delayed["source_sha256"] == _sha(shipped / "plan_2021_delayed.toml")
    assert json.loads(delayed["chain_sha256"]) == {
        n: _sha(shipped / f"{n}.toml") for n in ("baseline", "plan_2021", "plan_2021_delayed")}
    mine = rows.loc["mine"]
    assert mine["source_file"] == str(user.resolve())
    assert mine["source_sha256"] == _sha(user)
    assert mine["extends_chain"] == "baseline > plan_2021 > mine"
    assert (mine["title_en"], mine["title_zh"]) == ("Mine", "我的")
    assert rows.loc["baseline", "extends"] == ""
    assert set(table["mode"]) == {"scenarios"}
    assert table["seed"].isna().all()
    assert list(table["n_runs"]) == [1, 1, 1]
    assert list(table["first_run_id"]) == [0, 1, 2]
    manifest = json.loads((tmp_path / "out" / B.MANIFEST).read_text(encoding="utf-8"))
    assert set(table["model_sha256"]) == {model_hash()} == {manifest["spec"]["model_sha256"]}
    assert set(table["calibration_sha256_12"]) == {reg.calibration_id()}
    assert set(table["spec_sha256"]) == {manifest["spec_hash"]}
    csv = pd.read_csv(tmp_path / "out" / "scenarios.csv", keep_default_na=False)
    assert list(csv["scenario"]) == list(table["scenario"])
    assert list(csv["title_zh"]) == list(table["title_zh"])


def test_scenarios_table_of_monte_carlo_grid_and_runs_batches(tmp_path):
    from greenpath.runners import ensemble

    mc = B.monte_carlo_batch(6, 42, "plan_2021", variables=FEW, use_targets=False)
    B.run_batch(mc, tmp_path / "mc", workers=1, progress=False)
    row = tables(tmp_path / "mc")["scenarios"].iloc[0]
    assert (row["scenario"], row["mode"], row["base_scenario"]) == ("plan_2021", "monte_carlo",
                                                                     "plan_2021")
    assert row["seed"] == 42
    assert json.loads(row["sampled"]) == ensemble.projection_uncertainties()
    assert row["uncertainty_set"] == "projection"
    assert (row["n_runs"], row["first_run_id"], row["last_run_id"]) == (6, 0, 5)
    assert row["extends_chain"] == "baseline > plan_2021"
    assert row["source_sha256"] == _sha(scenarios.SCENARIO_DIR / "plan_2021.toml")
    grid = B.grid_batch({"wind_build_rate": [100, 200]}, "baseline", variables=FEW,
                        use_targets=False)
    assert B.scenarios_table(grid).iloc[0]["sampled"] == '["wind_build_rate"]'
    assert pd.isna(B.scenarios_table(grid).iloc[0]["seed"])
    runs = B.runs_batch([B.RunSpec(0, "x", {}), B.RunSpec(1, "y", {}), B.RunSpec(2, "x", {})],
                        variables=FEW, use_targets=False)
    table = B.scenarios_table(runs)
    assert list(table["scenario"]) == ["x", "y"]
    assert list(table["n_runs"]) == [2, 1]
    assert (table["source_file"] == "").all()


# ---------------------------------------------------------------- at scale: layout, summary
def test_results_are_a_wide_dataset_one_file_per_chunk_read_lazily_with_filters(tmp_path):
    import pyarrow.parquet as pq

    spec = B.monte_carlo_batch(30, 2, variables=FEW, chunk_size=10, use_targets=False)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    files = sorted((tmp_path / "results").glob("*.parquet"))
    assert [f.name for f in files] == ["c000000.parquet", "c000001.parquet", "c000002.parquet"]
    meta = pq.read_metadata(files[1])
    assert meta.schema.names == ["run_id", "scenario", "variable", "unit",
                                 *[str(y) for y in range(2005, 2036)]]
    assert (meta.num_rows, meta.num_row_groups) == (30, 3)  # 10 runs x 3 variables, one group each
    long = B.read(tmp_path)["results"]
    got = B.read_results(tmp_path, variables=["co2_emissions"], years=[2030, 2035],
                         runs=range(5, 15))
    assert list(got.columns) == ["run_id", "scenario", "variable", "unit", "2030", "2035"]
    assert list(got["run_id"]) == list(range(5, 15))
    want = long[(long.variable == "co2_emissions") & long.run_id.between(5, 14)
                & long.year.isin([2030, 2035])].pivot(index="run_id", columns="year", values="value")
    np.testing.assert_array_equal(got[["2030", "2035"]].to_numpy(), want.to_numpy())
    pd.testing.assert_frame_equal(B.read_results(tmp_path, long=True), long)
    assert len(B.to_dask(tmp_path).compute()) == 90
    with pytest.raises(B.BatchError, match="years 2040 are not in the batch"):
        B.read_results(tmp_path, years=[2040])


def test_any_chunking_and_worker_count_give_identical_results(tmp_path):
    a = B.monte_carlo_batch(45, 17, variables=FEW, chunk_size=7)
    b = B.monte_carlo_batch(45, 17, variables=FEW, chunk_size=20)
    B.run_batch(a, tmp_path / "a", workers=1, progress=False)
    B.run_batch(b, tmp_path / "b", workers=2, progress=False)
    assert_same_batch(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "summary.csv").read_bytes() == \
        (tmp_path / "b" / "summary.csv").read_bytes()
    # the same sample as the spec's runs (the chunks read it by row range from the file)
    runs = B.read(tmp_path / "a")["runs"]
    names = [u[0] for u in a.definition["uncertainties"]]
    np.testing.assert_array_equal(runs[names].to_numpy(),
                                  np.array([[r.varied[n] for n in names] for r in a.runs()]))
    assert (runs["parameters"] == "").all()  # grid / Monte Carlo: the values are the columns


def test_summary_percentiles_and_target_shares_as_csv_with_bom_and_xlsx(tmp_path):
    spec = B.monte_carlo_batch(40, 5, "plan_2021", chunk_size=15)
    B.run_batch(spec, tmp_path, workers=1, progress=False, percentiles=[5, 50, 95])
    raw = (tmp_path / "summary.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())
    summary = pd.read_csv(tmp_path / "summary.csv", encoding="utf-8-sig")
    assert list(summary.columns) == ["scenario", "variable", "unit", "year", "n_runs", "mean",
                                     "p5", "p50", "p95"]
    res = B.read(tmp_path)["results"]
    co2 = res[res.variable == "co2_emissions"].pivot(index="run_id", columns="year", values="value")
    row = summary[(summary.variable == "co2_emissions") & (summary.year == 2030)].iloc[0]
    assert row["unit"] == "MtCO2/Year"
    assert row["n_runs"] == 40
    np.testing.assert_allclose([row["p5"], row["p50"], row["p95"]],
                               np.percentile(co2[2030], [5, 50, 95]), rtol=1e-12)
    assert row["p5"] < row["p95"]
    assert len(summary) == len(spec.variables) * 31
    shares = pd.read_csv(tmp_path / "summary_targets.csv", encoding="utf-8-sig")
    tgt = B.read(tmp_path)["targets"]
    assert list(shares["id"]) == [t.id for t in spec.targets]
    for _, s in shares.iterrows():
        met = tgt.loc[tgt["id"] == s["id"], "met"]
        assert (s["n_runs"], s["n_met"]) == (40, int(met.sum()))
        assert s["share_met"] == pytest.approx(met.mean())
    assert shares["label_zh"].str.contains("年").all()  # Chinese labels, readable through the BOM
    book = pd.read_excel(tmp_path / "summary.xlsx", sheet_name=None, engine="openpyxl")
    assert set(book) == {"percentiles", "targets", "about"}
    assert len(book["percentiles"]) == len(summary)
    about = dict(zip(book["about"]["key"], book["about"]["value"], strict=True))
    assert about["percentiles"] == "p5, p50, p95"
    assert str(about["seed"]) == "5"


def test_full_csv_only_on_request(tmp_path):
    spec = B.scenario_batch(["baseline"], variables=FEW, use_targets=False)
    summary = B.run_batch(spec, tmp_path, workers=1, progress=False)
    assert not list(tmp_path.glob("results.csv"))
    assert not list(tmp_path.glob("runs.csv"))
    assert (tmp_path / "summary.csv").is_file()
    assert tmp_path / "summary.xlsx" in summary.paths


def test_default_worker_count_is_one_unless_more_pay_off(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert B.default_workers("auto", 500, 2) == 1  # the case that was 2x slower with 2
    assert B.default_workers("auto", 10000, 1) == 1
    assert B.default_workers("pysd", 20, 4) == 1
    assert B.default_workers("pysd", 2000, 80) == 2
    assert B.default_workers("vector", 1_000_000, 100) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert B.default_workers("pysd", 2000, 80) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["--percentiles", "10", "120"], "percentile 120.0 is outside 0 to 100"),
    (["--scheduler", "local:zero"], "write local:N with N >= 1"),
])
def test_batch_command_checks_percentiles_and_local_scheduler(tmp_path, capsys, argv, message):
    assert main(["batch", "--monte-carlo", "3", "--seed", "1", *argv,
                 "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_scheduler_local_starts_a_dask_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    argv = ["batch", "--monte-carlo", "12", "--seed", "8", "--chunk-size", "4", "--quiet",
            "--variables", *FEW]
    assert main([*argv, "--scheduler", "local:2", "--out", str(tmp_path / "dask")]) == 0
    assert main([*argv, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert "12 runs: 12 ok" in capsys.readouterr().out
    assert_same_batch(tmp_path / "dask", tmp_path / "one")


# ---------------------------------------------------------------- hardening (issue 9)
def test_damaged_chunk_is_detected_and_redone_on_resume(tmp_path):
    spec = B.monte_carlo_batch(9, 4, variables=FEW, chunk_size=3)
    B.run_batch(spec, tmp_path / "clean", workers=1, progress=False)
    B.run_batch(spec, tmp_path / "hurt", workers=1, progress=False)
    for name in ("results", "runs"):
        path = tmp_path / "hurt" / name / "c000001.parquet"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
        with pytest.warns(RuntimeWarning, match="chunk 1 .* is damaged .*running it again"):
            again = B.run_batch(spec, tmp_path / "hurt", workers=1, progress=False)
        assert (again.chunks_skipped, again.runs_executed) == (2, 3)
        assert_same_batch(tmp_path / "clean", tmp_path / "hurt")


def test_chunk_files_are_fsynced_before_they_are_renamed(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    spec = B.monte_carlo_batch(4, 4, variables=FEW, chunk_size=2)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    renamed = [src for kind, src in events if kind == "replace" and "/.tmp-c0000" in src]
    assert len(renamed) >= 6  # 2 chunks x 3 files
    for src in renamed:
        at = events.index(("replace", src))
        assert ("fsync", src) in events[:at], src


def test_batch_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        spec = B.monte_carlo_batch(4, 4, variables=FEW, chunk_size=2)
        B.run_batch(spec, tmp_path / "out", workers=1, progress=False, csv=True)
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777
             for p in (tmp_path / "out").rglob("*")}
    assert modes["out/results"] == 0o755
    assert modes["out/runs/c000000.parquet"] == 0o644
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {0o644}
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {0o755}


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_signal_stops_the_workers_keeps_chunks_and_says_how_to_resume(tmp_path, signame):
    psutil = pytest.importorskip("psutil")
    sig = getattr(signal, signame)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "greenpath.cli", "batch", "--monte-carlo", "400", "--seed",
           "3", "--chunk-size", "4", "--workers", "2", "--quiet", "--engine", "pysd",
           "--variables", *FEW, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    chunks = out / B.CHUNK_DIR
    deadline = time.monotonic() + 120
    kids = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if chunks.is_dir() and len(list(chunks.glob("c*.parquet"))) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the batch finished before it could be stopped"
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert len(kids) >= 3  # two workers and the resource tracker
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole process group
        else:
            os.kill(proc.pid, sig)  # `kill PID`: the batch process only
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 128 + sig
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"interrupted by {signame}" in lines[0]
    assert "run the same command again to resume" in lines[0]
    _, alive = psutil.wait_procs(kids, timeout=15)
    assert not alive, [p.cmdline() for p in alive]
    assert len(list(chunks.glob("c*.parquet"))) >= 2
    assert json.loads((out / B.MANIFEST).read_text(encoding="utf-8"))["status"] == "running"


def test_a_chunk_whose_runs_all_fail_is_recorded_and_summarised(tmp_path):
    specs = [B.RunSpec(0, "a", {"wind_build_rate": 200.0}),
             B.RunSpec(1, "bad", {"wind_build_rate": 1e9}),
             B.RunSpec(2, "bad too", {"wind_build_rate": -5.0})]
    spec = B.runs_batch(specs, variables=FEW, chunk_size=1)
    summary = B.run_batch(spec, tmp_path, workers=1, progress=False)
    assert (summary.n_ok, summary.n_failed) == (1, 2)
    shares = pd.read_csv(tmp_path / "summary_targets.csv", encoding="utf-8-sig")
    assert set(shares["scenario"]) == {"a"}
    assert (shares["n_runs"] == 1).all()
    pct = pd.read_csv(tmp_path / "summary.csv", encoding="utf-8-sig")
    assert set(pct["scenario"]) == {"a"}
    assert len(pct) == len(spec.variables) * 31


# ---------------------------------------------------------------- IAMC output
def read_iamc(path) -> pd.DataFrame:
    """Read an IAMC CSV as pyam does: the five index columns, then one column per year."""
    raw = path.read_bytes()
    assert not raw.startswith("\ufeff".encode())  # a BOM would rename the first column
    table = pd.read_csv(path)
    assert list(table.columns[:5]) == ["Model", "Scenario", "Region", "Variable", "Unit"]
    years = list(table.columns[5:])
    assert years == [str(y) for y in range(2005, 2036)]
    assert not table.duplicated(subset=["Model", "Scenario", "Region", "Variable", "Unit"]).any()
    assert (table["Region"] == "Jiaozuo").all()
    assert table["Model"].str.startswith("greenpath").all()
    assert (table["Unit"].astype(str).str.len() > 0).all()
    return table


def test_monte_carlo_batch_writes_its_percentiles_in_the_iamc_template(tmp_path):
    spec = B.monte_carlo_batch(30, 3, "plan_2021", chunk_size=12, variables=FEW)
    summary = B.run_batch(spec, tmp_path, workers=1, progress=False, percentiles=[10, 50, 90])
    assert tmp_path / "iamc.csv" in summary.paths
    table = read_iamc(tmp_path / "iamc.csv")
    assert set(table["Scenario"]) == {"plan_2021"}
    assert set(table["Variable"]) == {f"{v}|{s}" for v in spec.variables
                                      for s in ("Mean", "P10", "P50", "P90")}
    pct = pd.read_csv(tmp_path / "summary.csv", encoding="utf-8-sig")
    co2 = pct[pct.variable == "co2_emissions"].set_index("year")
    for stat, col in (("P10", "p10"), ("P50", "p50"), ("P90", "p90"), ("Mean", "mean")):
        row = table[table["Variable"] == f"co2_emissions|{stat}"].iloc[0]
        assert row["Unit"] == "MtCO2/Year"
        np.testing.assert_allclose(row[[str(y) for y in range(2005, 2036)]].to_numpy(float),
                                   co2[col].loc[list(range(2005, 2036))].to_numpy(), rtol=1e-11)
    p10 = table[table["Variable"] == "co2_emissions|P10"].iloc[0]
    p90 = table[table["Variable"] == "co2_emissions|P90"].iloc[0]
    assert p10["2035"] < p90["2035"]  # the runs differ: the percentiles are not one number


def test_grid_and_scenario_batches_write_every_run_in_the_iamc_template(tmp_path):
    spec = B.grid_batch(B.parse_grid(["wind_build_rate=100,300"]), "plan_2021",
                        variables=FEW, chunk_size=1)
    B.run_batch(spec, tmp_path / "grid", workers=1, progress=False)
    table = read_iamc(tmp_path / "grid" / "iamc.csv")
    assert sorted(set(table["Scenario"])) == ["plan_2021|run 0", "plan_2021|run 1"]
    res = B.read(tmp_path / "grid")["results"]
    for run in (0, 1):
        want = res[(res.run_id == run) & (res.variable == "renewable_capacity")]
        row = table[(table["Scenario"] == f"plan_2021|run {run}")
                    & (table["Variable"] == "renewable_capacity")].iloc[0]
        np.testing.assert_allclose(row[[str(y) for y in want["year"]]].to_numpy(float),
                                   want["value"].to_numpy(), rtol=1e-11)
    a = table[table["Scenario"] == "plan_2021|run 0"].set_index("Variable")
    b = table[table["Scenario"] == "plan_2021|run 1"].set_index("Variable")
    assert a.loc["renewable_capacity", "2030"] < b.loc["renewable_capacity", "2030"]

    spec = B.scenario_batch(["baseline", "plan_2021"], variables=FEW, use_targets=False)
    B.run_batch(spec, tmp_path / "list", workers=1, progress=False)
    table = read_iamc(tmp_path / "list" / "iamc.csv")
    assert list(dict.fromkeys(table["Scenario"])) == ["baseline", "plan_2021"]
    assert len(table) == 2 * len(FEW)
