"""Benchmark of the ensemble API (greenpath.runners.ensemble) on the Jiaozuo model.

Prints:

* scenarios per second through ``run_many`` for N = 1, 100 and 10,000 runs
  (levers and uncertainties Latin-hypercube sampled, headline indicators
  returned) on the vector engine (1 and 2 worker processes), and on PySD --
  PySD is timed on ``--pysd-runs`` runs (default 20) and the rate
  *extrapolated* to 100 and 10,000 runs (it runs one scenario after another);
* the app's lever-to-bands time: ``bands()`` for 500 samples, warm (model
  loaded in the process) and cold (a fresh Python process: imports, loading
  the compiled model and the bands), without and with the plan's year tables;
* the time of a Sobol analysis (12 factors, N = 1024, i.e. 14,336 runs) and
  of the full two-stage analysis of ``greenpath sensitivity``;
* peak memory of this process (``resource.getrusage`` maxrss) after each part.

    python benchmarks/bench_ensemble.py [--repeat 3] [--pysd-runs 20] [--quick]

Timings are the best of ``--repeat`` repetitions (except the cold start and the
sensitivity analyses, run once).  ``--quick`` skips the sensitivity analyses.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from statistics import median

COLD_SNIPPET = """
import time
t0 = time.perf_counter()
from greenpath.runners import ensemble
from greenpath.scenarios import scenario as scenarios
if TABLES:
    plan = scenarios.load("plan_2021")
    kwargs = {"base_params": plan.params, "time_varying": plan.tables}
else:
    kwargs = {"base_params": {"wind_build_rate": 200.0, "carbon_price": 50.0}}
b = ensemble.bands(n=500, **kwargs)
print(time.perf_counter() - t0)
"""


def peak_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(repeat: int, func) -> float:
    """Smallest wall time of ``repeat`` calls of ``func``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pysd-runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="skip the sensitivity analyses")
    args = parser.parse_args(argv)

    from greenpath.model import indicators
    from greenpath.model import registry as reg
    from greenpath.runners import ensemble

    print(f"peak memory after imports: {peak_mib():.0f} MiB")
    started = time.perf_counter()
    ensemble.vector_model()
    print(f"loading the compiled vector model: {time.perf_counter() - started:.2f} s")
    names = [k for k, p in reg.load_registry().items() if p.kind != "constant" and p.max > p.min]
    columns = list(indicators.HEADLINE)
    samples = {n: ensemble.sample_parameters(names, n, seed=1) for n in (1, 100, 10_000)}

    print(f"\nrun_many, {len(names)} parameters varied, {len(columns)} columns returned, 2005-2035, dt 0.5")
    print(f"{'engine':28s} {'N':>7s} {'seconds':>9s} {'scenarios/s':>12s}")
    for workers in (1, 2):
        for n, sample in samples.items():
            seconds = best_of(args.repeat, lambda s=sample, w=workers: ensemble.run_many(
                s, columns, engine="vector", output="arrays", workers=w))
            print(f"{f'vector, {workers} worker(s)':28s} {n:7d} {seconds:9.4f} {n / seconds:12,.0f}")
    print(f"peak memory after the vector runs: {peak_mib():.0f} MiB")

    k = args.pysd_runs
    sample = ensemble.sample_parameters(names, k, seed=2)
    ensemble.run_many(sample.iloc[:1], columns, engine="pysd", output="arrays")  # load PySD first
    seconds = best_of(args.repeat, lambda: ensemble.run_many(sample, columns, engine="pysd", output="arrays"))
    per_run = seconds / k
    print(f"{'pysd (fast lookups)':28s} {k:7d} {seconds:9.4f} {k / seconds:12,.0f}  (measured)")
    for n in (1, 100, 10_000):
        print(f"{'pysd (fast lookups)':28s} {n:7d} {n * per_run:9.2f} {1 / per_run:12,.0f}  "
              f"(extrapolated from {k} runs: {per_run * 1000:.1f} ms per run)")
    print(f"peak memory after the PySD runs: {peak_mib():.0f} MiB")

    print("\nbands(), 500 samples of the projection uncertainties, headline indicators")
    warm = best_of(args.repeat, lambda: ensemble.bands({"wind_build_rate": 200.0, "carbon_price": 50.0}, n=500))
    print(f"  warm (model loaded in this process):            {warm:.3f} s")
    from greenpath.scenarios import scenario as scenarios

    plan = scenarios.load("plan_2021")
    ensemble.bands(plan.params, n=500, time_varying=plan.tables)  # compile/load the table variant
    warm_tables = best_of(args.repeat, lambda: ensemble.bands(plan.params, n=500, time_varying=plan.tables))
    print(f"  warm, plan_2021 with its year tables:           {warm_tables:.3f} s")
    for tables in (False, True):
        code = COLD_SNIPPET.replace("TABLES", str(tables))
        colds = []
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            colds.append(float(out.stdout.strip().splitlines()[-1]))
        label = "cold, fresh process, plan_2021 tables" if tables else "cold, fresh process (imports + load)"
        print(f"  {label + ':':48s} {median(colds):.3f} s (median of {len(colds)})")
    print(f"peak memory after the bands: {peak_mib():.0f} MiB")

    if not args.quick:
        from greenpath.runners import sensitivity as se

        print("\nsensitivity (vector engine)")
        ranges = se.factor_ranges("all")
        top = dict(list(ranges.items())[:12])
        evaluate = se.model_evaluator()
        started = time.perf_counter()
        sobol = se.sobol_indices(top, evaluate, n=1024, seed=1)
        seconds = time.perf_counter() - started
        print(f"  Sobol, 12 factors, N=1024 ({sobol.attrs['runs']:,} runs): {seconds:.2f} s")
        started = time.perf_counter()
        result = se.run_sensitivity()
        seconds = time.perf_counter() - started
        sets = len({tuple(f) for f in result.sobol_factors.values()})
        print(f"  greenpath sensitivity defaults (Morris r=20 on {result.meta['n_factors']} factors, then Sobol "
              f"on each outcome's 12 leaders, {sets} factor sets; {result.meta['runs']:,} runs): "
              f"{seconds:.2f} s")
        print(f"peak memory after the sensitivity analyses: {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
