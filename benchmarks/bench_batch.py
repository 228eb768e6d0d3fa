"""Benchmark `greenpath batch`: processes, local Dask clusters, PySD and the vector engine.

A Monte Carlo batch runs in several set-ups, each in a fresh Python process so the
memory figures do not mix:

* PySD (``--engine pysd``, ``--runs`` runs, chunks of ``--chunk-size``): ``one`` (in
  this process), ``all`` (a process pool on every core), ``dask`` (a local Dask cluster,
  one worker process per core) and ``pysd-default`` (the default worker count);
* the vector engine (``--engine auto``, the batch default, ``--vector-runs`` runs,
  default chunk size): ``vector`` (in this process), ``vector-pool`` (a pool on every
  core), ``vector-default`` (the default worker count), ``dask1``, ``dask2``, ``dask4``
  (a ``LocalCluster`` of 1, 2 and 4 worker processes; on a 2-core machine the 4-worker
  figure shows the overhead, not a speed-up).

The sample is the batch default, the projection uncertainties; targets are evaluated,
results go to the Parquet datasets and the summary is written (no ``--csv``).
Prints, per case: runs per second (``runs / seconds``; seconds = the ``run_batch`` call,
summary included, cluster start-up excluded and shown as ``setup s``), the speed-up
against the first case of the same engine, runs per second per worker, the peak
resident memory of the batch process and of its largest worker, and the CPU time per
run.  No assertion: the figures are for reading.

Usage::

    python benchmarks/bench_batch.py                        # every case
    python benchmarks/bench_batch.py --cases vector vector-default dask1 dask2 dask4
    python benchmarks/bench_batch.py --runs 500 --cases one pysd-default
    python benchmarks/bench_batch.py --vector-runs 500 --cases vector vector-default
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# case -> (engine, how: "inproc" | "pool" | "default" | "dask", workers (None: cores))
SETUPS = {
    "one": ("pysd", "inproc", 1), "all": ("pysd", "pool", None), "dask": ("pysd", "dask", None),
    "pysd-default": ("pysd", "default", None),
    "vector": ("auto", "inproc", 1), "vector-pool": ("auto", "pool", None),
    "vector-default": ("auto", "default", None),
    "dask1": ("auto", "dask", 1), "dask2": ("auto", "dask", 2), "dask4": ("auto", "dask", 4),
}
CASES = tuple(SETUPS)


def _case(name: str, runs: int, chunk_size: int, seed: int, uncertainty: str) -> dict:
    """Run one case in this process and return its figures."""
    from greenpath.runners import batch

    cores = os.cpu_count() or 1
    engine, how, workers = SETUPS[name]
    workers = workers or cores
    spec = batch.monte_carlo_batch(runs, seed, engine=engine, uncertainties=uncertainty,
                                   chunk_size=chunk_size if engine == "pysd" else None)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        started = time.perf_counter()
        if how == "dask":
            from distributed import LocalCluster

            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster:
                cluster_ready = time.perf_counter()
                summary = batch.run_batch(spec, Path(tmp) / "out",
                                          scheduler=cluster.scheduler_address, progress=False)
                batch_done = time.perf_counter()
            setup = cluster_ready - started
            seconds = batch_done - cluster_ready
        else:
            if how == "default":
                workers = batch.default_workers(engine, runs, -(-runs // spec.chunk_size))
            summary = batch.run_batch(spec, Path(tmp) / "out",
                                      workers=None if how == "default" else workers,
                                      progress=False)
            setup = 0.0
            seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in (Path(tmp) / "out").rglob("*") if p.is_file())
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"case": name, "engine": engine, "runs": summary.n_runs, "ok": summary.n_ok,
            "failed": summary.n_failed, "seconds": seconds, "setup_seconds": setup,
            "workers": workers, "peak_rss_mib": me.ru_maxrss / 1024,
            "peak_child_rss_mib": kids.ru_maxrss / 1024, "output_mib": size / 2**20,
            "cpu_seconds": cpu, "sampled": len(spec.definition["uncertainties"]),
            "chunk_size": spec.chunk_size}


def batch_defaults() -> int:
    """Default chunk size of the vector engine."""
    from greenpath.runners.batch import DEFAULT_VECTOR_CHUNK_SIZE

    return DEFAULT_VECTOR_CHUNK_SIZE


def main() -> None:
    """Run every case in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs of the PySD cases")
    parser.add_argument("--vector-runs", type=int, default=200_000,
                        help="runs of the vector-engine cases")
    parser.add_argument("--chunk-size", type=int, default=25, help="chunk size on PySD")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--uncertainty", choices=["projection", "all"], default="projection",
                        help="what the Monte Carlo samples (default: the batch default, "
                        "projection)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--case-runs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.case_runs, args.chunk_size, args.seed,
                               args.uncertainty)))
        return
    print(f"Monte Carlo batch ({args.uncertainty} uncertainties, Latin hypercube, targets "
          f"evaluated, summary written): {args.runs} runs on PySD (chunks of "
          f"{args.chunk_size}), {args.vector_runs} on the vector engine (chunks of "
          f"{batch_defaults()}); {os.cpu_count()} cores")
    rows = []
    for case in args.cases:
        runs = args.runs if SETUPS[case][0] == "pysd" else args.vector_runs
        out = subprocess.run([sys.executable, __file__, "--case", case, "--case-runs",
                              str(runs), "--chunk-size", str(args.chunk_size),
                              "--seed", str(args.seed), "--uncertainty", args.uncertainty],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    header = (f"{'case':15s} {'runs':>7s} {'workers':>7s} {'failed':>6s} {'seconds':>8s} "
              f"{'runs/s':>8s} {'speed-up':>8s} {'/worker':>8s} {'peak MiB':>9s} "
              f"{'worker MiB':>10s} {'setup s':>8s} {'CPU ms/run':>10s}")
    print(header)
    first: dict[str, dict] = {}
    for r in rows:
        base = first.setdefault(r["engine"], r)
        rate = r["runs"] / r["seconds"]
        speed = rate / (base["runs"] / base["seconds"])
        print(f"{r['case']:15s} {r['runs']:7d} {r['workers']:7d} {r['failed']:6d} "
              f"{r['seconds']:8.2f} {rate:8.0f} {speed:8.2f} {rate / r['workers']:8.0f} "
              f"{r['peak_rss_mib']:9.0f} {r['peak_child_rss_mib']:10.0f} "
              f"{r['setup_seconds']:8.2f} {1000 * r['cpu_seconds'] / r['runs']:10.3f}")
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
          "(other processes on the machine slow every case)")
    print(f"{rows[0]['sampled']} uncertainties sampled. one/vector = in this process; all/"
          "vector-pool = process pool on every core; *-default = the default worker count; "
          "dask, daskN = local Dask cluster of one worker process per core / N processes "
          "(cluster start-up in 'setup s', not in the rate). speed-up = against the first case "
          "of the same engine; /worker = runs/s per worker process. 'worker MiB' is the "
          "largest worker process (pool workers; Dask workers are not children of this "
          "process's rusage until the cluster closes). 'CPU ms/run' is the CPU time of the "
          "case's processes (start-up included) per run.")


if __name__ == "__main__":
    main()
