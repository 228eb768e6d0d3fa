"""Benchmark: where a Monte Carlo batch's time goes, per chunk and stage.

Runs ``greenpath batch --monte-carlo N --seed S`` (the default spec: vector engine, the
projection uncertainties, default variables and targets, chunks of 5,000) in this
process with ``workers=1`` and times each stage of every chunk by wrapping the batch's
own functions (no copy of their code):

* ``sampling``: the chunk's Latin-hypercube rows read back from the sample file and
  scaled to the registry ranges (``greenpath.runners.batch._tasks``);
* ``engine``: the vector engine call (``batch_stream.run_year_major``: registry checks,
  the compiled model, the year-major copy of its outputs);
* ``chunk``: the rest of ``_run_values_chunk`` (the parameter frame, non-finite check);
* ``targets``: ``targets.evaluate_arrays`` over the chunk;
* ``tables``: the Arrow tables (``_tables`` minus the targets);
* ``parquet``: encoding, compressing, fsync and rename of the three files
  (``_write_parquet``);
* ``summary part``: the chunk's part of the Monte Carlo summary (band counts and values,
  block sums: ``batch_summary.write_part``), written with the chunk;
* ``pilot``: the runs that set the summary's bands (``_summary_plan``), once per batch;
* ``summary``: the end of the batch (percentiles per variable and year, target shares,
  CSV, XLSX: ``_write_summary``) and ``iamc`` (``write_batch_iamc``), once per batch;
* ``sample file``: the Latin hypercube written before the first chunk, once per batch.

For each stage it prints the seconds of the whole batch, ms per chunk and us per run;
stages of a chunk are CPU time of the thread that ran them (the writer thread runs
``targets``, ``tables`` and ``parquet`` while the main thread computes the next chunk),
the once-per-batch stages wall time.  It then prints the wall time of the whole
``run_batch`` call, runs/s end to end, and the engine alone (``engine runs/s`` = N /
sum of the engine stage), measured in the same process at the same time: the ceiling
the batch approaches on one core; ``engine alone, wall`` runs the same chunks through the
engine only (no targets, tables, files or summary) and times its wall clock, the fair
comparison on a loaded machine.  ``--workers 2`` times the same batch with two
processes (wall time and runs/s only: the stages then run in the workers).

No assertion: the figures are for reading; the load average is printed.

Usage::

    python benchmarks/bench_batch_profile.py                  # 100k runs
    python benchmarks/bench_batch_profile.py --runs 20000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path


def _profile(runs: int, seed: int, out: Path) -> dict:
    from greenpath.runners import batch, batch_stream
    from greenpath.scenarios import targets as tg

    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = {}
    local = threading.local()

    def timed(owner, name: str, stage: str, once: bool = False):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            outer = getattr(local, "stage", None)
            local.stage = stage
            t0, w0 = time.thread_time(), time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent = time.thread_time() - t0
                cpu[stage] += spent
                if outer is not None:  # a nested stage: not counted twice
                    cpu[outer] -= spent
                local.stage = outer
                if once:
                    wall[stage] = wall.get(stage, 0.0) + time.perf_counter() - w0

        setattr(owner, name, wrapper)
        return real

    def timed_generator(owner, name: str, stage: str):
        real = getattr(owner, name)

        def wrapper(*args, **kwargs):
            it = real(*args, **kwargs)
            while True:
                t0 = time.thread_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    cpu[stage] += time.thread_time() - t0
                yield item

        setattr(owner, name, wrapper)

    timed_generator(batch, "_tasks", "sampling")
    timed(batch, "_run_values_chunk", "chunk")
    timed(batch_stream, "run_year_major", "engine")
    timed(tg, "evaluate_arrays", "targets")
    timed(batch, "_tables", "tables")
    timed(batch, "_write_parquet", "parquet")
    from greenpath.runners import batch_summary
    timed(batch_summary, "write_part", "summary part")
    timed(batch, "_summary_plan", "pilot", once=True)
    timed(batch, "_write_summary", "summary", once=True)
    timed(batch, "write_batch_iamc", "iamc", once=True)
    from greenpath.runners import ensemble
    real_lhs = ensemble.latin_hypercube

    def lhs(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real_lhs(*args, **kwargs)
        finally:
            wall["sample file"] = wall.get("sample file", 0.0) + time.perf_counter() - t0

    ensemble.latin_hypercube = lhs
    spec = batch.monte_carlo_batch(runs, seed)
    started = time.perf_counter()
    summary = batch.run_batch(spec, out, workers=1, progress=False)
    total = time.perf_counter() - started
    return {"cpu": dict(cpu), "wall": wall, "total": total, "runs": summary.n_runs,
            "chunks": summary.n_chunks, "chunk_size": spec.chunk_size}


def _engine_alone(runs: int, seed: int) -> float:
    """Wall seconds of the vector engine alone on the batch's chunks (same sample, same calls)."""
    import numpy as np
    import pandas as pd

    from greenpath.runners import batch, batch_stream, ensemble

    spec = batch.monte_carlo_batch(runs, seed)
    d = spec.definition
    names, lows, highs = batch._bounds(d)
    sample = batch._scale(ensemble.latin_hypercube(runs, len(names), np.random.default_rng(seed)),
                          lows, highs)
    base = {k: float(v) for k, v in d["base"]["params"].items() if k not in names}
    tables = batch._base_tables(d["base"], names) or None
    spent = 0.0
    for start in range(0, runs, spec.chunk_size):
        values = sample[start:start + spec.chunk_size]
        frame = {k: np.full(len(values), v) for k, v in base.items()}
        frame.update({name: values[:, j] for j, name in enumerate(names)})
        frame = pd.DataFrame(frame)
        t0 = time.perf_counter()
        with np.errstate(all="ignore"):
            batch_stream.run_year_major(frame, spec.variables, tables)
        spent += time.perf_counter() - t0
    return spent


def _plain(runs: int, seed: int, workers: int, out: Path) -> float:
    from greenpath.runners import batch

    spec = batch.monte_carlo_batch(runs, seed)
    started = time.perf_counter()
    batch.run_batch(spec, out, workers=workers, progress=False)
    return time.perf_counter() - started


def main() -> None:
    """Profile one batch and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--workers", type=int, default=None,
                        help="also time the batch with this many processes")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        _plain(5000, args.seed + 1, 1, tmp / "warm")  # the compiled model and imports, once
        r = _profile(args.runs, args.seed, tmp / "out")
        other = _plain(args.runs, args.seed, args.workers, tmp / "w") if args.workers else None
        engine_wall = _engine_alone(args.runs, args.seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n, chunks = r["runs"], r["chunks"]
    print(f"Monte Carlo batch of {n} runs, chunks of {r['chunk_size']} ({chunks} chunks), "
          f"one process, {os.cpu_count()} cores")
    print(f"{'stage':<12s} {'s':>7s} {'ms/chunk':>9s} {'us/run':>7s}  thread")
    where = {"sampling": "main", "chunk": "main", "engine": "main", "targets": "writer",
             "tables": "writer", "parquet": "writer", "summary part": "writer"}
    for stage in ("sampling", "engine", "chunk", "targets", "tables", "parquet", "summary part"):
        s = r["cpu"].get(stage, 0.0)
        print(f"{stage:<12s} {s:7.2f} {1e3 * s / chunks:9.1f} {1e6 * s / n:7.1f}  {where[stage]} "
              "(CPU)")
    for stage in ("sample file", "pilot", "summary", "iamc"):
        s = r["wall"].get(stage, 0.0)
        print(f"{stage:<12s} {s:7.2f} {'':>9s} {1e6 * s / n:7.1f}  main (wall, once)")
    engine = r["cpu"].get("engine", float("nan"))
    print(f"run_batch wall {r['total']:.2f} s: {n / r['total']:.0f} runs/s end to end; engine "
          f"alone {n / engine:.0f} runs/s (N / engine CPU s)")
    print(f"engine alone, wall: {engine_wall:.2f} s for the same {n} runs in chunks of "
          f"{r['chunk_size']} ({n / engine_wall:.0f} runs/s on one core, same conditions)")
    if other is not None:
        print(f"--workers {args.workers}: run_batch wall {other:.2f} s: {n / other:.0f} runs/s "
              "end to end")
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}")


if __name__ == "__main__":
    main()
