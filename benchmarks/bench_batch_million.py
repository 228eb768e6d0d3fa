"""Benchmark: the default Monte Carlo batch at 10 thousand to 1 million runs.

``greenpath batch --monte-carlo N --seed S`` as a user types it (vector engine, the
projection uncertainties, the default targets evaluated, the default variables,
default chunk size; Parquet datasets and the summary written, no ``--csv``), each N in a
fresh process.  Prints, per N:

* ``run s``: wall time from the start of ``run_batch`` to the last chunk written
  (the sample file, the summary's pilot, then per chunk sampling, engine, targets,
  tables, Parquet and the chunk's part of the summary);
* ``total s``: wall time of the whole ``run_batch`` call (``run s`` plus the end of the
  summary: percentiles per variable and year assembled from the chunks' parts, target
  shares, CSV and XLSX);
* ``runs/s``: N / ``total s`` (end to end);
* ``peak MiB``: the largest resident set size of the batch process
  (``ru_maxrss``) and of its largest worker process (``RUSAGE_CHILDREN``), i.e. the
  memory a machine needs for the batch: it should not grow with N;
* ``sum MiB``: ``peak MiB`` plus ``worker MiB`` times the number of worker processes
  (``workers - 1``: the batch process runs chunks beside them) (an upper
  bound of the memory the batch needs at once: the peaks need not coincide, and shared
  library pages are counted in every process);
* ``CPU us/run``: CPU time (user + system) of the batch process and its workers per run,
  which depends less on what else the machine runs than the wall time; ``2 cores`` =
  the runs per second two idle cores would give at that CPU cost (2e6 / ``CPU us/run``);
* ``output MiB`` and ``B/run``: bytes of every file the batch wrote.

No assertion: the figures are for reading.  Other processes on the machine slow every
case; the load average is printed at the end.

Usage::

    python benchmarks/bench_batch_million.py                   # 10k, 100k, 1M
    python benchmarks/bench_batch_million.py --runs 10000 100000
    python benchmarks/bench_batch_million.py --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _case(runs: int, seed: int, workers: int | None, out: Path) -> dict:
    from greenpath.runners import batch

    spec = batch.monte_carlo_batch(runs, seed)
    marks: dict[str, float] = {}
    real_summary = batch._write_summary  # what run_batch calls once the runs are written

    def timed_summary(*args, **kwargs):
        marks["summary"] = time.perf_counter()
        return real_summary(*args, **kwargs)

    batch._write_summary = timed_summary
    started = time.perf_counter()
    summary = batch.run_batch(spec, out, workers=workers, progress=False)
    total = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"cpu_seconds": cpu, "runs": summary.n_runs, "ok": summary.n_ok, "run_seconds": marks["summary"] - started,
            "seconds": total, "peak_mib": me.ru_maxrss / 1024,
            "worker_peak_mib": kids.ru_maxrss / 1024, "output_bytes": size,
            "chunks": summary.n_chunks, "chunk_size": spec.chunk_size,
            "workers": workers or batch.default_workers(spec.engine, runs, summary.n_chunks),
            "targets": len(spec.targets), "variables": len(spec.variables),
            "sampled": len(spec.definition["uncertainties"])}


def main() -> None:
    """Run each size in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: the batch default)")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.seed, args.workers, args.out)))
        return
    rows = []
    for n in args.runs:
        tmp = Path(tempfile.mkdtemp(prefix="bench-million-"))
        try:
            cmd = [sys.executable, __file__, "--case", str(n), "--seed", str(args.seed),
                   "--out", str(tmp / "out")]
            if args.workers:
                cmd += ["--workers", str(args.workers)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    first = rows[0]
    print(f"Default Monte Carlo batch (vector engine, {first['sampled']} projection "
          f"uncertainties, {first['variables']} variables x 31 years, {first['targets']} "
          f"targets evaluated, chunks of {first['chunk_size']}), {os.cpu_count()} cores")
    print(f"{'runs':>9s} {'workers':>7s} {'chunks':>6s} {'run s':>7s} {'total s':>8s} "
          f"{'runs/s':>8s} {'peak MiB':>9s} {'worker MiB':>10s} {'sum MiB':>8s} "
          f"{'CPU us/run':>10s} {'2 cores':>8s} {'output MiB':>10s} {'B/run':>6s}")
    for r in rows:
        # worker processes: on the vector engine this process runs chunks beside
        # workers - 1 helper processes
        workers = r["workers"] - 1 if r["worker_peak_mib"] else 0
        cpu_us = 1e6 * r["cpu_seconds"] / r["runs"]
        print(f"{r['runs']:9d} {r['workers']:7d} {r['chunks']:6d} {r['run_seconds']:7.1f} "
              f"{r['seconds']:8.1f} {r['runs'] / r['seconds']:8.0f} {r['peak_mib']:9.0f} "
              f"{r['worker_peak_mib']:10.0f} "
              f"{r['peak_mib'] + workers * r['worker_peak_mib']:8.0f} {cpu_us:10.1f} "
              f"{2e6 / cpu_us:8.0f} {r['output_bytes'] / 2**20:10.0f} "
              f"{r['output_bytes'] / r['runs']:6.0f}")
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
          "(other processes on the machine slow every case)")
    print("run s = sample file, summary pilot, then sampling, engine, targets, Parquet and "
          "summary part of every chunk; total s = run s + the end of the summary (percentiles, "
          "target shares, CSV, XLSX); runs/s = runs / total s; peak MiB "
          "= largest resident set of the batch process, worker MiB = of its largest worker "
          "(0: no worker processes), sum MiB = peak + (workers - 1) x worker; CPU us/run = CPU "
          "time of all its processes per run (start-up included), 2 cores = 2e6 / CPU us/run; "
          "output = every file the batch wrote.")


if __name__ == "__main__":
    main()
