"""Benchmark of a full calibration: prints figures, asserts nothing.

    python benchmarks/bench_calibration.py [--maxiter 300] [--engine auto] [--workers 1] [--seeds 20240 1 2]

For each seed: wall time and number of model runs of a full `greenpath calibrate` as the
command runs it by default (main fit, posterior sample, backtest: fit through 2015, its
posterior, the 2016-22 scoring), and the cost reached, so the seeds' agreement (one optimum
or several) is visible; `--refits` adds the 2012 out-of-sample refit and the CO2 sensitivity.
Nothing is written to the calibration file. Goal (issue 15): under 60 s wall time on 2 cores.

Figures: "wall" = time.perf_counter() around calibrate(); "cpu" = time.process_time() of
this process over the same span (CPU seconds of all its threads: on a machine shared with
other jobs, wall time grows with the load while cpu does not), "cpu incl. backtest process" adds
the CPU seconds of the forked backtest process (resource.getrusage RUSAGE_CHILDREN); "load" =
the 1-minute load average before and after; "posterior" and "backtest"
= the wall time of those steps as calibrate() records them; "runs/s" = model runs / wall.
Determinism: with two or more seeds given twice (`--seeds 1 1`) the lines must agree.
"""

from __future__ import annotations

import argparse
import os
import resource
import time


def main() -> None:
    """Run the benchmark and print one line per seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=300)
    parser.add_argument("--popsize", type=int, default=12)
    parser.add_argument("--engine", default="auto", choices=("auto", "vector", "pysd"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[20240])
    parser.add_argument("--refits", action="store_true", help="also the 2012 refit and the CO2 sensitivity")
    args = parser.parse_args()

    t0 = time.perf_counter()
    from greenpath.calibration import posterior as P
    from greenpath.calibration.run import DEFAULT_CUTOFF, calibrate

    print(f"import: {time.perf_counter() - t0:.2f} s; cores: {os.cpu_count()}")
    for seed in args.seeds:
        load0 = os.getloadavg()[0]
        child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started, cpu0 = time.perf_counter(), time.process_time()
        result = calibrate(seed=seed, maxiter=args.maxiter, popsize=args.popsize, engine=args.engine,
                           workers=args.workers, cutoff=DEFAULT_CUTOFF if args.refits else None,
                           sensitivity=args.refits, backtest=True, posterior_steps=P.DEFAULT_STEPS)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
        meta = result.meta
        print(
            f"seed {seed}: engine {meta['engine']}, {len(result.space)} parameters, "
            f"full calibration {wall:.1f} s wall, {cpu:.1f} s cpu ({cpu + child:.1f} s cpu incl. backtest process; "
            f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}), {meta['n_model_runs']:,} model runs "
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
        post, back = result.posterior.diagnostics(), result.backtest
        print(f"    posterior {post['wall_time_s']} s: acceptance {post['acceptance_mean']:.3f}, max tau "
              f"{post['tau_max']:.1f} steps, max R-hat {post['rhat_max']:.3f}, {post['n_draws']} draws, first draw "
              f"{result.posterior.draws[0, 0]:.10g}")
        print(f"    backtest {back.seconds:.1f} s: P10-P90 coverage {back.coverage:.3f} (parameters only), "
              f"{back.coverage_predictive:.3f} (predictive) of {int(back.scores['n'].sum())} points")
        first = ", ".join(f"{k}={v:.4g}" for k, v in list(result.values.items())[:4])
        print(f"    {first}, ...")


if __name__ == "__main__":
    main()
