"""The fast lane of the batch (issue 18).

Year-major engine outputs, overlapped writes, chunks run beside helper processes, banded
exact percentiles, the default worker count.

Each test checks a behaviour against an independent reference (numpy's percentile, the
ensemble's own ``run_many``, a serial loop), not against numbers copied from a run.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from greenpath.runners import batch as B
from greenpath.runners import batch_stream as S
from greenpath.runners import ensemble

FEW = ["co2_emissions", "total_coal_consumption", "renewable_capacity"]


# ---------------------------------------------------------------- percentiles
def _cases(rng):
    ties = rng.integers(0, 5, size=(6, 50_000)).astype(float)  # heavy ties at every rank
    sorted_rows = np.sort(rng.normal(size=(3, 30_000)), axis=1)  # the worst order for a stride
    one_value = np.repeat(rng.normal(size=(3, 1)), 9_000, axis=1)
    mostly_zero = np.concatenate([np.zeros((2, 9_000)), rng.normal(size=(2, 1_000))], axis=1)
    infinite = rng.normal(size=(2, 20_000))
    infinite[0, :10], infinite[1, :10] = np.inf, -np.inf
    return [rng.normal(size=(20, 100_000)), rng.lognormal(size=(5, 10_001)), ties, sorted_rows,
            one_value, mostly_zero, infinite, rng.normal(size=(3, 100))]


@pytest.mark.parametrize("qs", [[10.0, 50.0, 90.0], [5.0, 50.0, 95.0], [0.0, 100.0],
                                [1.0, 2.5, 99.9], [50.0]])
def test_banded_percentiles_equal_numpy_exactly(qs):
    rng = np.random.default_rng(18)
    for values in _cases(rng):
        with np.errstate(invalid="ignore"):  # inf - inf where a rank pair spans both
            got = S.percentiles_of_rows(values.copy(), qs)
            ref = np.percentile(values, qs, axis=1)
            before = B._percentiles_inplace(values.copy(), qs)
        assert got.shape == (len(qs), len(values))
        assert np.array_equal(got, ref, equal_nan=True), (qs, values.shape)
        # and the summary's own function (what the summary computed before)
        assert np.array_equal(got, before, equal_nan=True)


def test_a_band_that_misses_its_rank_falls_back_to_the_whole_partition(monkeypatch):
    """A subsample unlike the row (here: a stride that sees only one half) still gives numpy's answer."""
    rng = np.random.default_rng(3)
    row = np.concatenate([rng.normal(0, 1, 32), rng.normal(100, 1, 32)] * 200)  # period 64
    calls = []
    real = S._order_stats_partition

    def spy(values, ranks):
        calls.append(values.shape)
        return real(values, ranks)

    monkeypatch.setattr(S, "_order_stats_partition", spy)
    got = S.percentiles_of_rows(row[None, :].copy(), [10.0, 50.0, 90.0])
    assert calls, "the stride-64 subsample sees one half only: the band must miss"
    assert np.array_equal(got, np.percentile(row[None, :], [10.0, 50.0, 90.0], axis=1))


# ---------------------------------------------------------------- the engine call
def test_year_major_outputs_are_the_ensembles_numbers_bit_for_bit():
    spec = B.monte_carlo_batch(300, 5)
    d = spec.definition
    names, lows, highs = B._bounds(d)
    values = B._scale(ensemble.latin_hypercube(300, len(names), np.random.default_rng(5)),
                      lows, highs)
    frame = {k: np.full(300, float(v)) for k, v in d["base"]["params"].items() if k not in names}
    frame.update({name: values[:, j] for j, name in enumerate(names)})
    frame = pd.DataFrame(frame)
    cube, years, sha = S.run_year_major(frame, FEW, None)
    ref = ensemble.run_many(frame, FEW, engine="vector", output="arrays")
    assert cube.shape == (len(ref.years), len(FEW), 300)
    assert list(years) == list(ref.years)
    assert sha == ref.model_sha256
    for j, c in enumerate(FEW):
        assert np.array_equal(cube[:, j, :], ref.values[c].T), c
    # a year's values of every variable (a Parquet year column) are one contiguous block
    assert all(cube[t].flags.c_contiguous for t in range(len(years)))


def test_year_major_refuses_a_bad_value_like_the_ensemble():
    frame = pd.DataFrame({"wind_build_rate": [-5.0, 10.0]})
    with pytest.raises(ensemble.EnsembleError, match="wind_build_rate"):
        S.run_year_major(frame, FEW, None)


# ---------------------------------------------------------------- overlapped writes
def test_write_pipeline_keeps_one_write_in_flight_and_reports_in_order():
    finished, running, most = [], [], [0]
    lock = threading.Lock()

    def write(k):
        with lock:
            running.append(k)
            most[0] = max(most[0], len(running))
        time.sleep(0.01)
        with lock:
            running.remove(k)
        return {"k": k}

    pipe = S.WritePipeline(lambda k, r: finished.append((k, r["k"], threading.current_thread())))
    for k in range(5):
        pipe.submit(k, write, k)
    pipe.close()
    assert [(k, r) for k, r, _ in finished] == [(k, k) for k in range(5)]
    assert {t for _, _, t in finished} == {threading.main_thread()}  # reported in the caller
    assert most[0] == 1


def test_write_pipeline_raises_a_write_error_and_close_on_error_only_waits():
    def bad(k):
        raise OSError(f"disk full at chunk {k}")

    pipe = S.WritePipeline(lambda k, r: None)
    pipe.submit(0, bad, 0)
    with pytest.raises(OSError, match="disk full at chunk 0"):
        pipe.submit(1, lambda: None)
    pipe.close()
    quiet = S.WritePipeline(lambda k, r: pytest.fail("must not report"))
    quiet.submit(0, bad, 0)
    quiet.close(wait_only=True)  # no exception: the caller's own error is what counts


def test_helper_processes_give_the_in_process_result(tmp_path):
    spec = B.monte_carlo_batch(30, 12, variables=FEW, chunk_size=5)
    B.run_batch(spec, tmp_path / "one", workers=1, progress=False)
    B.run_batch(spec, tmp_path / "three", workers=3, progress=False)
    one, three = B.read(tmp_path / "one"), B.read(tmp_path / "three")
    for name in ("results", "targets"):
        pd.testing.assert_frame_equal(one[name], three[name])
    pd.testing.assert_frame_equal(one["runs"].drop(columns=["run_seconds"]),
                                  three["runs"].drop(columns=["run_seconds"]))
    assert (tmp_path / "one" / "summary.csv").read_bytes() == \
        (tmp_path / "three" / "summary.csv").read_bytes()


# ---------------------------------------------------------------- worker count
def _estimate(engine, runs, w, chunk):
    kind = "pysd" if engine == "pysd" else "vector"
    c1, c = S.RUN_SECONDS[kind]
    s = S.WORKER_START_SECONDS[kind]
    if w == 1:
        return runs * c1
    spread = (runs * c + (w - 1) * s) / w if kind == "vector" else s + runs * c / w
    return max(spread, chunk * c)


@pytest.mark.parametrize("engine", ["vector", "auto", "pysd"])
def test_default_workers_follow_the_cost_model_and_never_lose_to_one(engine):
    chunk = 5000 if engine != "pysd" else 25
    for runs in [1, 10, 500, 5_000, 20_000, 50_000, 100_000, 300_000, 1_000_000]:
        chunks = -(-runs // chunk)
        for cores in (1, 2, 4, 8):
            w = S.choose_workers(engine, runs, chunks, chunk, cores=cores)
            assert 1 <= w <= max(1, min(cores, chunks))
            if w > 1:  # chosen only when estimated clearly faster than one process
                assert _estimate(engine, runs, w, chunk) <= 0.9 * _estimate(engine, runs, 1, chunk)
            if cores == 1 or chunks == 1:
                assert w == 1


def test_default_workers_break_even_on_two_cores():
    """One process for small batches, two from the measured break-even on (vector engine)."""
    c1, c = S.RUN_SECONDS["vector"]
    s = S.WORKER_START_SECONDS["vector"]
    # 2 processes: (N c + s) / 2 <= 0.9 N c1  <=>  N >= s / (1.8 c1 - c)
    even = s / (1.8 * c1 - c)
    below, above = int(even * 0.9), int(even * 1.1) + 5000
    assert S.choose_workers("vector", below, -(-below // 5000), 5000, cores=2) == 1
    assert S.choose_workers("vector", above, -(-above // 5000), 5000, cores=2) == 2
    assert S.choose_workers("vector", 1_000_000, 200, 5000, cores=2) == 2
    # a batch of one chunk cannot be shared
    assert S.choose_workers("vector", 5000, 1, 5000, cores=2) == 1
    # more cores pay at a million runs
    assert S.choose_workers("vector", 1_000_000, 200, 5000, cores=8) > 2
    # batch.default_workers is this choice on this machine's cores
    assert B.default_workers("vector", 1_000_000, 200, 5000) == S.choose_workers(
        "vector", 1_000_000, 200, 5000)
