"""Benchmark `greenpath batch`: one process, all cores, a local Dask cluster, vector engine.

A Monte Carlo batch runs on PySD on one process, on all cores and on a local Dask
cluster, and on the vector engine (``--engine auto``, the default of ``greenpath
batch``).  The sample is the batch default, the projection uncertainties (those that
leave the calibrated 2005-2020 history unchanged); ``--uncertainty all`` samples every
uncertainty, as the batch default did before.
Prints runs per second, the speed-up against one process and the peak memory (resident
set size) of the batch process and of its worker processes.  Each case runs in a fresh
Python process so the memory figures do not mix.  No assertion: the figures are for
reading.

Usage::

    python benchmarks/bench_batch.py              # 1000 runs, every case
    python benchmarks/bench_batch.py --runs 200 --cases one all
    python benchmarks/bench_batch.py --uncertainty all
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

CASES = ("one", "all", "dask", "vector")


def _case(name: str, runs: int, chunk_size: int, seed: int, uncertainty: str) -> dict:
    """Run one case in this process and return its figures."""
    from greenpath import batch

    cores = os.cpu_count() or 1
    engine = "auto" if name == "vector" else "pysd"
    spec = batch.monte_carlo_batch(runs, seed, engine=engine, uncertainties=uncertainty,
                                   chunk_size=chunk_size if engine == "pysd" else None)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        started = time.perf_counter()
        if name == "dask":
            from distributed import LocalCluster

            with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster:
                cluster_ready = time.perf_counter()
                summary = batch.run_batch(spec, Path(tmp) / "out",
                                          scheduler=cluster.scheduler_address, progress=False)
                batch_done = time.perf_counter()
            setup = cluster_ready - started
            seconds = batch_done - cluster_ready
        else:
            workers = cores if name == "all" else 1
            summary = batch.run_batch(spec, Path(tmp) / "out", workers=workers, progress=False)
            setup = 0.0
            seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in summary.paths)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    self_kib, children_kib = me.ru_maxrss, kids.ru_maxrss
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return {"case": name, "runs": summary.n_runs, "ok": summary.n_ok,
            "failed": summary.n_failed, "seconds": seconds, "setup_seconds": setup,
            "workers": 1 if name in ("one", "vector") else cores,
            "peak_rss_mib": self_kib / 1024, "peak_child_rss_mib": children_kib / 1024,
            "output_mib": size / 2**20, "cpu_seconds": cpu,
            "sampled": len(spec.definition["uncertainties"])}


def batch_defaults() -> int:
    """Default chunk size of the vector engine."""
    from greenpath.batch import DEFAULT_VECTOR_CHUNK_SIZE

    return DEFAULT_VECTOR_CHUNK_SIZE


def main() -> None:
    """Run every case in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=25)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--uncertainty", choices=["projection", "all"], default="projection",
                        help="what the Monte Carlo samples (default: the batch default, "
                        "projection)")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.runs, args.chunk_size, args.seed,
                               args.uncertainty)))
        return
    print(f"Monte Carlo batch of {args.runs} runs ({args.uncertainty} uncertainties, Latin "
          f"hypercube, targets evaluated; chunks of {args.chunk_size} on PySD, "
          f"{batch_defaults()} on the vector engine), {os.cpu_count()} cores")
    rows = []
    for case in args.cases:
        out = subprocess.run([sys.executable, __file__, "--case", case, "--runs",
                              str(args.runs), "--chunk-size", str(args.chunk_size),
                              "--seed", str(args.seed), "--uncertainty", args.uncertainty],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = next((r for r in rows if r["case"] == "one"), None)
    header = (f"{'case':8s} {'workers':>7s} {'ok':>6s} {'failed':>6s} {'seconds':>8s} "
              f"{'runs/s':>8s} {'speed-up':>8s} {'peak MiB':>9s} {'workers MiB':>12s} "
              f"{'setup s':>8s} {'CPU ms/run':>10s}")
    print(header)
    for r in rows:
        rate = r["runs"] / r["seconds"]
        speed = (base["seconds"] / r["seconds"]) if base else float("nan")
        print(f"{r['case']:8s} {r['workers']:7d} {r['ok']:6d} {r['failed']:6d} "
              f"{r['seconds']:8.2f} {rate:8.1f} {speed:8.2f} {r['peak_rss_mib']:9.0f} "
              f"{r['peak_child_rss_mib']:12.0f} {r['setup_seconds']:8.2f} "
              f"{1000 * r['cpu_seconds'] / r['runs']:10.1f}")
    load = os.getloadavg()
    print(f"load average (1, 5, 15 min) at the end: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
          "(other processes on the machine slow every case)")
    print(f"output per batch: {rows[0]['output_mib']:.1f} MiB (Parquet + CSV, four tables); "
          f"{rows[0]['sampled']} uncertainties sampled")
    print("one = in-process PySD; all = process pool, one model per worker; dask = local "
          "Dask cluster (cluster start-up in 'setup s', not in the rate); vector = NumPy "
          "engine in-process (--engine auto, the batch default). 'workers MiB' is the "
          "largest worker process. 'CPU ms/run' is the CPU time of the case's processes "
          "(start-up included) per run: it does not depend on what else the machine runs.")


if __name__ == "__main__":
    main()
