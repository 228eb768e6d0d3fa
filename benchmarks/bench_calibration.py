"""Benchmark of a full calibration: prints figures, asserts nothing.

    python benchmarks/bench_calibration.py [--maxiter 300] [--engine auto] [--workers 1] [--seeds 20240 1 2]

For each seed: wall time and number of model runs of a full `greenpath calibrate` (main fit,
out-of-sample refit, CO2 sensitivity) with the default budget, and the cost reached, so the
seeds' agreement (one optimum or several) is visible. Nothing is written to the calibration
file. Goal: under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    """Run the benchmark and print one line per seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=300)
    parser.add_argument("--popsize", type=int, default=12)
    parser.add_argument("--engine", default="auto", choices=("auto", "vector", "pysd"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[20240])
    args = parser.parse_args()

    t0 = time.perf_counter()
    from greenpath.calibration import fit as F

    print(f"import: {time.perf_counter() - t0:.2f} s; cores: {os.cpu_count()}")
    for seed in args.seeds:
        started = time.perf_counter()
        result = F.calibrate(seed=seed, maxiter=args.maxiter, popsize=args.popsize, engine=args.engine,
                             workers=args.workers)
        wall = time.perf_counter() - started
        meta = result.meta
        print(
            f"seed {seed}: engine {meta['engine']}, {len(result.space)} parameters, "
            f"full calibration {wall:.1f} s wall, {meta['n_model_runs']:,} model runs "
            f"({meta['n_model_runs'] / wall:,.0f} runs/s); main fit {meta['wall_time_main_fit_s']} s, "
            f"{meta['n_model_runs_main_fit']:,} runs, {meta['de_generations']} DE generations; "
            f"cost {meta['objective_cost']:.6g} (after DE {meta['objective_cost_de']:.6g}); "
            f"simulated to {meta['final_time']}"
        )
        verdicts = result.uncertainty.identification(list(result.space.names))
        identified = sum(v == "identified" for v in verdicts)
        pairs = len(result.uncertainty.pairs(list(result.space.names), data_only=True))
        print(f"    data alone identify {identified} of {len(verdicts)} parameters; {pairs} pairs not separately "
              "identified (|r| > 0.8)")
        first = ", ".join(f"{k}={v:.4g}" for k, v in list(result.values.items())[:4])
        print(f"    {first}, ...")


if __name__ == "__main__":
    main()
