"""Benchmark of the single-scenario engine: prints figures, asserts nothing.

    python benchmarks/bench_model.py [--runs 50]

Cold translation (fresh process, empty cache), warm load (translation cached), the
median of N single-scenario runs through the API returning the headline outputs and
returning every variable, and the same model run through stock PySD (xarray lookups,
full parameter reset each run) in the same process, as a ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COLD = """
import time, sys
t0 = time.perf_counter()
from greenpath.model import engine
t1 = time.perf_counter()
engine.translate()
t2 = time.perf_counter()
engine.JiaozuoModel()
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "GREENPATH_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        imp, cold, load_after = (float(x) for x in out)
        out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        warm_translate, warm_load = float(out[1]), float(out[2])
    print(f"import greenpath.model.engine (incl. pysd): {imp:.2f} s")
    print(f"cold translation (parse .mdl + build .py):  {cold:.2f} s")
    print(f"warm: cache hit {warm_translate * 1000:.1f} ms, model load {warm_load * 1000:.0f} ms "
          f"(first load after translating: {load_after * 1000:.0f} ms)")

    from greenpath.model.engine import JiaozuoModel
    from greenpath.model.indicators import HEADLINE

    fast = JiaozuoModel()
    stock = JiaozuoModel(fast=False)
    levers = [{}, {"wind_build_rate": 300.0}, {"industrial_coal_substitution_rate": 0.1}]
    k = iter(range(10**9))

    def fast_headline():
        fast.run(levers[next(k) % 3], return_columns=HEADLINE)

    def fast_all():
        fast.run(levers[next(k) % 3])

    def stock_headline():
        stock.run(levers[next(k) % 3], return_columns=HEADLINE)

    fast_headline()
    stock_headline()
    n = args.runs
    t_head = median_ms(fast_headline, n)
    t_all = median_ms(fast_all, n)
    t_stock = median_ms(stock_headline, max(5, n // 5))
    print(f"variables in model: {len(fast.outputs)} saved, headline outputs: {len(HEADLINE)}")
    print(f"API run, headline outputs, median of {n}: {t_head:.1f} ms  (goal <= 25 ms)")
    print(f"API run, all {len(fast.outputs)} variables, median of {n}: {t_all:.1f} ms")
    print(f"stock PySD, same model, headline outputs, median of {max(5, n // 5)}: {t_stock:.0f} ms")
    print(f"speed-up vs stock PySD: {t_stock / t_head:.1f}x  (goal >= 20x)")


if __name__ == "__main__":
    main()
