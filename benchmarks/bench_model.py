"""Benchmark of the single-scenario engine: prints figures, asserts nothing.

    python benchmarks/bench_model.py [--runs 50]

Cold translation (fresh process, empty cache), warm load (translation cached), the
median of N single-scenario runs through the API returning the headline outputs and
returning every variable, and the same model run through stock PySD in the same
process, as a ratio.  Stock PySD is ``pysd.load`` of the same translation and
``run(params=<every registry parameter>, ...)`` on each run: passing every parameter
is what a clean state needs with stock PySD (its settings persist between runs).  The
median of CPU time is printed beside wall time, as the figure least moved by other
load on the machine.
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
from greenpath.engines import pysd_engine as engine
t1 = time.perf_counter()
engine.translate()
t2 = time.perf_counter()
engine.JiaozuoModel()
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def median_ms(fn, n: int) -> tuple[float, float]:
    """Return the median wall and CPU milliseconds of ``n`` calls of ``fn``."""
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def main() -> None:
    """Run the benchmark described above and print its figures (``--runs``: N)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
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

    import warnings

    import numpy as np
    import pysd

    from greenpath.engines import pysd_engine as engine
    from greenpath.model import registry
    from greenpath.model.indicators import HEADLINE

    fast = engine.JiaozuoModel()
    hybrid = engine.JiaozuoModel(fast=False)  # stock lookups and integration, our state handling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stock = pysd.load(str(engine.translate()))
    real = dict(zip(stock.doc["Py Name"], stock.doc["Real Name"], strict=True))
    everything = registry.effective_defaults()
    stamps = np.arange(engine.INITIAL_TIME, engine.FINAL_TIME + 0.5, 1.0)
    levers = [{}, {"wind_build_rate": 300.0}, {"industrial_coal_substitution_rate": 0.1}]
    k = iter(range(10**9))

    def fast_headline():
        fast.run(levers[next(k) % 3], return_columns=HEADLINE)

    every_model = engine.JiaozuoModel()  # its own model: alternating structures on one costs a cache switch

    def fast_all():
        every_model.run(levers[next(k) % 3])

    def hybrid_headline():
        hybrid.run(levers[next(k) % 3], return_columns=HEADLINE)

    def stock_headline():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stock.run(params={**everything, **levers[next(k) % 3]},
                      return_columns=[real[c] for c in HEADLINE], final_time=engine.FINAL_TIME,
                      time_step=engine.TIME_STEP, saveper=engine.SAVEPER, return_timestamps=stamps)

    for fn in (fast_headline, fast_all, hybrid_headline, stock_headline):
        fn()
    n = args.runs
    m = max(5, n // 5)
    # Interleaved, so that the engines see the same machine: the ratio is not moved by
    # a slow minute that only one of them ran in.
    samples: dict[str, list[tuple[float, float]]] = {"fast": [], "all": [], "hybrid": [], "stock": []}
    for i in range(n):
        samples["fast"].append(median_ms(fast_headline, 1))
        samples["all"].append(median_ms(fast_all, 1))
        if i % (n // m) == 0:
            samples["hybrid"].append(median_ms(hybrid_headline, 1))
            samples["stock"].append(median_ms(stock_headline, 1))

    def med(key: str) -> tuple[float, float]:
        return (statistics.median(w for w, _ in samples[key]),
                statistics.median(c for _, c in samples[key]))

    (head, head_cpu), (every, every_cpu), (hyb, hyb_cpu), (st, st_cpu) = (
        med("fast"), med("all"), med("hybrid"), med("stock"))
    m = len(samples["stock"])
    print(f"variables in model: {len(fast.outputs)} saved, headline outputs: {len(HEADLINE)}")
    print(f"API run, headline outputs, median of {n}: {head:.1f} ms wall, {head_cpu:.1f} ms CPU"
          "  (goal <= 25 ms)")
    print(f"API run, all {len(fast.outputs)} variables, median of {n}: {every:.1f} ms wall, "
          f"{every_cpu:.1f} ms CPU")
    print(f"stock PySD, every parameter passed, headline outputs, median of {m}: {st:.0f} ms wall, "
          f"{st_cpu:.0f} ms CPU")
    print(f"stock PySD lookups and integration with our state handling, median of {m}: "
          f"{hyb:.0f} ms wall, {hyb_cpu:.0f} ms CPU")
    print(f"speed-up vs stock PySD: {st / head:.1f}x wall, {st_cpu / head_cpu:.1f}x CPU  (goal >= 20x)")


if __name__ == "__main__":
    main()
