"""Benchmark of the cost analysis (`greenpath costs`): prints figures, asserts nothing.

    python benchmarks/bench_costs.py [--scenario plan_2021] [--samples 0 40 200] [--repeat 3]

For each sample count N prints the wall time of ``greenpath.runners.costs.analyse`` (the
(N + 1) x 2^n coalition runs on the vector engine plus the Shapley split and the
statistics), the number of model runs, and runs per second, median of ``--repeat``
calls in one process after one warm-up call (the engine is compiled and cached then).
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="plan_2021")
    parser.add_argument("--samples", nargs="+", type=int, default=[0, 40, 200])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from greenpath.runners import costs

    costs.analyse(args.scenario, samples=0)  # warm-up: engine compiled, scenarios loaded
    print(f"greenpath.runners.costs.analyse({args.scenario!r}), median of {args.repeat}:")
    for n in args.samples:
        times, runs = [], 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            rep = costs.analyse(args.scenario, samples=n)
            times.append(time.perf_counter() - start)
            runs = rep.attrs["runs"]
        med = statistics.median(times)
        print(f"  samples {n:>4d}: {med:7.2f} s  {runs:>6d} runs  {runs / med:8.0f} runs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
