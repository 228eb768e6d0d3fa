"""The fast lane of :mod:`greenpath.runners.batch`: a chunk's engine call, the overlapped writes, the worker count.

Three things keep a Monte Carlo batch near the vector engine's own speed (issue 18;
``benchmarks/bench_batch_profile.py`` prints where each chunk's time goes):

* :func:`run_year_major` runs a grid or Monte Carlo chunk on the vector engine, compiled
  for the batch's variables only (the equations they depend on: see
  :func:`greenpath.engines.vector_loader.vector_model`), and keeps
  its outputs in the engine's own layout, year-major (``(years, variables, runs)``).  A
  Parquet year column of a chunk (every variable's rows for one year, variable-major) is
  then one contiguous slice of that buffer: the results table is built without copying,
  where the earlier path copied the values three times (a transposed copy per variable in
  :func:`greenpath.runners.ensemble.run_many`, one into the chunk's cube, one per year column).
  The numbers are the engine's, bit for bit: only where they sit in memory changed.
* :class:`WritePipeline` writes chunk k (its tables, targets and three Parquet files) in
  a background thread while the calling thread computes chunk k+1.  Parquet encoding,
  compression and fsync release the GIL, so on two cores the write costs almost no wall
  time.  At most one chunk waits to be written, so memory stays flat in the number of
  runs, and a chunk counts as finished only once its files are renamed into place (the
  resume rules of :mod:`greenpath.runners.batch` are unchanged).
* :func:`choose_workers` picks the number of processes from the runs, the chunk size and
  the cores, with the break-even measured on this project's 2-core machine (see its
  docstring).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd


def run_year_major(frame: pd.DataFrame, columns: Sequence[str],
                   tables: dict | None) -> tuple[np.ndarray, np.ndarray, str]:
    """Run ``frame``'s rows on the vector engine; outputs year-major.

    The same inputs, checks and engine call as :func:`greenpath.runners.ensemble.run_many`
    with ``engine="vector"`` (the registry check of every column, the year tables, the
    vector backend at any size), without its transposed copies.

    Parameters
    ----------
    frame
        One row per run, one column per registry parameter.
    columns
        The model variables to keep.
    tables
        Year tables ``{name: (years, values)}`` shared by every run, or None.

    Returns
    -------
    values, years, model_sha256
        ``values`` has shape ``(years, len(columns), runs)``: ``values[t, j, i]`` is
        variable ``columns[j]`` of run ``i`` in ``years[t]``.

    Raises
    ------
    greenpath.runners.ensemble.EnsembleError
        A bad input (the batch then runs the chunk the general way, which records why
        per run); any error of the engine itself is raised as it is.
    """
    from greenpath.runners import ensemble

    frame = ensemble.validate_param_sets(frame)
    checked = ensemble.validate_tables(tables)
    both = sorted(set(checked) & set(frame.columns))
    if both:
        raise ensemble.EnsembleError(f"{both} given both as sampled values and as year tables")
    columns = ensemble._check_columns(list(columns), ensemble._output_names(ensemble.vector_model(checked)))
    # the model computing only what these columns depend on (compiled once per column set;
    # the columns' values are the full model's, bit for bit)
    vm = ensemble.vector_model(checked, outputs=columns)
    params = ensemble._vector_params(frame, checked)
    lookups = {ensemble._table_lookup(name): xy for name, xy in checked.items()}
    years = ensemble._years(vm.times())
    # The engine integrates into one (years, runs) buffer per column; here each buffer
    # is a view of the year-major result, so its rows are written in place (what
    # ``vm.simulate(..., backend="vector")`` does with buffers of its own, which then
    # had to be copied here: a tenth of the engine's CPU time).
    module = vm.module
    plan = module._plan(params, len(frame), lookups or None, None, None, None, None, columns)
    if list(plan["columns"]) != list(columns) or plan["n_saved"] != len(years):
        raise ensemble.EnsembleError(f"the engine returned columns {plan['columns']} and "
                                     f"{plan['n_saved']} years, not {columns} and {len(years)}")
    out = np.empty((len(years), len(columns), len(frame)))
    module._run_range(plan, [out[:, j, :] for j in range(len(columns))], 0, len(frame))
    return out, years, vm.source_sha256


class WritePipeline:
    """Write one chunk in a background thread while the caller computes the next.

    ``submit(k, write, *args)`` first waits for the chunk before (calling
    ``finished(k_before, its result)`` in the caller's thread), then starts
    ``write(*args)`` in the writer thread: at most one chunk is held beyond the one
    being computed.  :meth:`close` waits for the last write.  A write's exception is
    raised in the caller's thread, at the next :meth:`submit` or at :meth:`close`.
    """

    def __init__(self, finished: Callable[[int, Any], None]) -> None:
        self._finished = finished
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greenpath-write")
        self._pending: tuple[int, Future] | None = None

    def submit(self, k: int, write: Callable[..., Any], *args: Any) -> None:
        """Wait for the chunk before, then start writing chunk ``k`` with ``write(*args)``."""
        self.drain()
        self._pending = (k, self._pool.submit(write, *args))

    def drain(self) -> None:
        """Wait for the chunk being written and report it finished."""
        if self._pending is None:
            return
        k, future = self._pending
        self._pending = None
        self._finished(k, future.result())

    def close(self, wait_only: bool = False) -> None:
        """Wait for the last write; ``wait_only``: without reporting it or raising its error.

        ``wait_only`` is for leaving on an error or a signal: the chunk being written is
        completed (or its temporary file left for the next run to remove), never half
        renamed, and the original exception is what the caller sees.
        """
        try:
            if wait_only:
                if self._pending is not None:
                    self._pending[1].exception()  # waits; the error, if any, is not raised
                    self._pending = None
            else:
                self.drain()
        finally:
            self._pool.shutdown(wait=True)


# What a run and a worker's start cost, measured with benchmarks/bench_batch_profile.py
# (CPU seconds per stage) on the project's 2-core machine (README, "Speed"; CPU time,
# because the wall time of a loaded machine says more about the other processes):
# a worker process costs this many seconds before its first chunk (interpreter, imports,
# the compiled model: 1.0-1.3 s of CPU measured for the vector engine; PySD also
# translates and loads its model) ...
WORKER_START_SECONDS = {"vector": 1.5, "pysd": 4.0}
# ... and one run this many seconds of one core: (this process alone, where a thread
# writes chunk k while chunk k+1 computes, so the cost is the engine's side: sampling,
# engine, checks; a process that computes and writes its chunks: also targets, tables
# and Parquet).  Vector engine at chunks of 5,000: 50 us and 70 us per run.
RUN_SECONDS = {"vector": (50e-6, 70e-6), "pysd": (0.015, 0.015)}


def choose_workers(engine: str, runs: int, chunks: int, chunk_size: int | None = None,
                   cores: int | None = None) -> int:
    """Return the number of processes that should finish ``runs`` soonest (never slower than one).

    With ``c1`` the per-run cost of one process (writes overlapped in a thread), ``c``
    that of a process computing and writing, ``s`` a worker's start-up and ``m`` the
    runs of one chunk (:data:`RUN_SECONDS`, :data:`WORKER_START_SECONDS`), the
    estimates of the wall time are::

        one process:       T1 = runs * c1
        w processes:       Tw = max((runs * c + (w - 1) * s) / w, m * c)    vector engine
                           Tw = max(s + runs * c / w, m * c)                PySD

    (on the vector engine this process runs chunks too, while and after its ``w - 1``
    helpers start; a PySD batch gives every chunk to ``w`` workers).  ``w`` (at most the
    cores and the chunks) is chosen only when ``Tw`` is at most 90 % of ``T1``: the
    margin covers the error of the estimates, so the default is not slower than one
    process.  On two cores with chunks of 5,000 the vector engine's break-even is near
    50,000 runs; with the margin, 2 processes from 75,000; PySD's a few hundred.
    """
    cores = cores if cores is not None else (os.cpu_count() or 1)
    if runs < 1 or chunks < 2 or cores < 2:
        return 1
    kind = "pysd" if engine == "pysd" else "vector"
    c1, c = RUN_SECONDS[kind]
    start = WORKER_START_SECONDS[kind]
    m = min(chunk_size if chunk_size else -(-runs // chunks), runs)
    one = runs * c1
    best, best_time = 1, one
    for w in range(2, min(cores, chunks) + 1):
        spread = (runs * c + (w - 1) * start) / w if kind == "vector" else start + runs * c / w
        t = max(spread, m * c)
        if t <= 0.9 * one and t < best_time:
            best, best_time = w, t
    return best


def percentiles_of_rows(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.percentile(values, qs, axis=1)`` (linear), exactly, mostly without a full partition.

    Returns ``(len(qs), rows)``; ``values`` (rows, n) may be reordered in place.  The same
    order statistics and the same interpolation as numpy's default method, so the result is
    identical to :func:`greenpath.runners.batch._percentiles_inplace`; what changes is how the
    order statistics are found.  Partitioning a row of n values at the six ranks that
    three percentiles need was most of the summary's time (about 19 ns per value);
    here a sorted 1-in-64 subsample of the row brackets each rank by a value band wide
    enough (six standard errors of the subsample's rank, at least 8 subsample values
    either side) that the rank lies in it, two comparisons per value count the values
    below the band and pick the ones inside it, and only those few are partitioned.
    When a band misses its rank (or ties make it ambiguous) the row is partitioned whole
    as before: the answer is exact in every case, only the time differs.
    """
    rows, n = values.shape
    pos = np.asarray(qs, dtype=float) / 100 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    t = (pos - lo)[:, None]
    ranks = np.unique(np.concatenate([lo, hi]))
    if n < 4096:  # small: the whole partition is as cheap
        return _lerp(_order_stats_partition(values, ranks), ranks, lo, hi, t)
    out = np.empty((len(ranks), rows))
    step = 64
    has_nan = np.isnan(values.min(axis=1))  # NaN compares false: those rows the old way
    for i in range(rows):
        if has_nan[i]:
            out[:, i] = _order_stats_partition(values[i][None, :], ranks)[:, 0]
        else:
            out[:, i] = _order_stats_banded(values[i], ranks, step)
    return _lerp(out, ranks, lo, hi, t)


def _order_stats_partition(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    values.partition(ranks, axis=1)
    return values[:, ranks].T  # (ranks, rows)


def _lerp(stats: np.ndarray, ranks: np.ndarray, lo, hi, t) -> np.ndarray:
    where = {int(r): j for j, r in enumerate(ranks)}
    a = stats[[where[int(r)] for r in lo]]
    b = stats[[where[int(r)] for r in hi]]
    diff = b - a
    # numpy's _lerp: from below for t < 0.5, from above otherwise (exact at both ends)
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _order_stats_banded(x: np.ndarray, ranks: np.ndarray, step: int) -> np.ndarray:
    """Return the values of rank ``ranks`` (0-based, ascending) in ``x`` (1-D, not modified)."""
    n = len(x)
    sample = np.sort(x[::step])
    m = len(sample)
    got = np.empty(len(ranks))
    # one band per group of ranks whose sample positions are close (lo and hi of a q)
    groups: list[list[int]] = []
    for j, r in enumerate(ranks):
        if groups and r - ranks[groups[-1][-1]] <= 1:
            groups[-1].append(j)
        else:
            groups.append([j])
    for group in groups:
        r0, r1 = int(ranks[group[0]]), int(ranks[group[-1]])
        p0, p1 = r0 / max(n - 1, 1), r1 / max(n - 1, 1)
        spread0 = 6 * np.sqrt(m * p0 * (1 - p0)) + 8
        spread1 = 6 * np.sqrt(m * p1 * (1 - p1)) + 8
        a = int(np.floor(p0 * (m - 1) - spread0))
        b = int(np.ceil(p1 * (m - 1) + spread1))
        low = sample[a] if a >= 0 else -np.inf
        high = sample[b] if b < m else np.inf
        if not (low < high):
            return _order_stats_partition(x.copy()[None, :], ranks)[:, 0]
        above_low = x >= low
        below = n - int(np.count_nonzero(above_low))
        inside = x[above_low & (x <= high)]
        k0, k1 = r0 - below, r1 - below
        if k0 < 0 or k1 >= len(inside):
            return _order_stats_partition(x.copy()[None, :], ranks)[:, 0]
        local = [int(ranks[j]) - below for j in group]
        inside.partition(local)
        got[group] = inside[local]
    return got
