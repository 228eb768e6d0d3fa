r"""`greenpath batch`: many runs into one resumable output folder.

Examples::

    greenpath batch baseline plan_2021 plan_14th_fyp --out out/plans
    greenpath batch --grid wind_build_rate=100,200,300 --grid ccus_capacity=0,1 \
        --base plan_2021 --out out/grid
    greenpath batch --monte-carlo 1000 --seed 42 --base plan_2021 --out out/mc
    greenpath batch --monte-carlo 1000 --seed 42 --uncertainty all --out out/mc-all
    greenpath batch --monte-carlo 1000000 --seed 42 --out out/mc-1m
    greenpath batch --monte-carlo 1000 --seed 42 --percentiles 5 50 95 --csv --out out/mc
    greenpath batch --monte-carlo 100000 --seed 42 --scheduler local:2 --out out/mc
    greenpath batch --monte-carlo 1000 --seed 42 --scheduler tcp://10.0.0.5:8786 --out /shared/mc

Run the same command again to resume an interrupted batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``batch`` subcommand."""
    p = sub.add_parser(
        "batch", help="run a list of scenarios, a lever grid or a Monte Carlo ensemble",
        description="Run many scenarios into one output folder: results (Parquet dataset, one "
        "row per run and variable, one column per year), runs (status, errors, engine), "
        "targets, scenarios (titles, extends chain, source files and their SHA-256, seed, "
        "model and calibration) and a summary (percentiles per variable and year, share of "
        "runs meeting each target; CSV and XLSX). Give scenario names, or --grid, or "
        "--monte-carlo. Chunks are written as they finish; running the same command again "
        "resumes an interrupted batch (also after Ctrl-C or SIGTERM).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples::", 1)[1].split("Run the same", 1)[0])
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenario names or .toml files, each run once")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--grid", action="append", metavar="NAME=V1,V2,...", default=[],
                   help="a lever (or uncertainty) and its values; repeat for a full grid")
    p.add_argument("--monte-carlo", type=int, metavar="N",
                   help="N Latin-hypercube samples of the registry's uncertainty ranges "
                   "(see --uncertainty)")
    p.add_argument("--seed", type=int, help="random seed of the Monte Carlo sample (required)")
    p.add_argument("--uncertainty", action="append", metavar="NAME",
                   help="what --monte-carlo samples: by default the projection uncertainties "
                   "(those that leave the calibrated 2005-2020 history unchanged, so every run "
                   "shares the recorded 2020 base); 'all' for every uncertainty including the "
                   "calibrated-history ones (initial GDP, 2017 growth, initial shares, ...); or "
                   "one or more names (repeatable)")
    p.add_argument("--base", default=None,
                   help="scenario the grid or sample starts from (default baseline)")
    p.add_argument("--variables", nargs="+", metavar="VAR",
                   help="variables to keep (default: headline indicators and what the "
                   "targets need)")
    p.add_argument("--targets", type=Path, default=None, help="targets file (TOML)")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="only targets without a set plus this set (repeatable)")
    p.add_argument("--no-targets", action="store_true", help="do not evaluate targets")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default: as many as pay off, never slower than 1; "
                   "1 = this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (its workers "
                   "write into --out, which must be the same path on every machine), or "
                   "local:N to start a local Dask cluster of N processes for this batch")
    p.add_argument("--csv", action="store_true",
                   help="also write the full results, runs and targets as CSV (large: the "
                   "Parquet datasets and the summary are always written)")
    p.add_argument("--percentiles", nargs="+", type=float, metavar="P", default=None,
                   help="percentiles of the summary (default 10 50 90)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="runs per saved chunk (default 5000 with auto or vector, 25 with pysd)")
    p.add_argument("--engine", choices=["auto", "vector", "pysd"], default="auto",
                   help="auto (default): the NumPy vector engine compiled from the same .mdl, "
                   "year tables included, falling back to PySD with a warning if it refuses "
                   "the model or fails; vector: the vector engine only (its failure fails the "
                   "runs); pysd: the reference, one run at a time")
    p.add_argument("--force", action="store_true",
                   help="discard a different batch in --out (its own files only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the spec from the arguments, run or resume it, print a summary."""
    from greenpath.cli.errors import CommandError
    from greenpath.runners import batch

    modes = [bool(args.scenarios), bool(args.grid), args.monte_carlo is not None]
    if sum(modes) != 1:
        raise CommandError("give exactly one of: scenario names, --grid NAME=V1,V2 "
                           "(repeatable), or --monte-carlo N --seed S")
    if args.base and args.scenarios:
        raise CommandError("--base is for --grid or --monte-carlo; scenario names run as "
                           "they are")
    if args.uncertainty and args.monte_carlo is None:
        raise CommandError("--uncertainty only applies to --monte-carlo")
    if args.monte_carlo is not None and args.seed is None:
        raise CommandError("--monte-carlo needs --seed S (any whole number) so the sample "
                           "can be reproduced and resumed")
    if args.workers is not None and args.workers < 1:
        raise CommandError(f"--workers {args.workers}: must be 1 or more")
    common = {
        "variables": args.variables, "engine": args.engine,
        "targets": args.targets, "sets": args.sets, "use_targets": not args.no_targets,
    }
    if args.chunk_size is not None:
        common["chunk_size"] = args.chunk_size
    try:
        percentiles = batch.DEFAULT_PERCENTILES if args.percentiles is None else args.percentiles
        batch._check_percentiles(percentiles)
        if args.scheduler:
            batch._parse_scheduler(args.scheduler)
        if args.scenarios:
            spec = batch.scenario_batch(args.scenarios, **common)
        elif args.grid:
            spec = batch.grid_batch(batch.parse_grid(args.grid), args.base or "baseline",
                                    **common)
        else:
            spec = batch.monte_carlo_batch(args.monte_carlo, args.seed, args.base or "baseline",
                                           uncertainties=args.uncertainty, **common)
        with batch.handle_signals():
            summary = batch.run_batch(spec, args.out, workers=args.workers,
                                      scheduler=args.scheduler, force=args.force,
                                      progress=not args.quiet, csv=args.csv,
                                      percentiles=percentiles)
    except batch.BatchInterrupted as exc:
        print(f"greenpath batch: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except batch.BatchError as exc:
        raise CommandError(str(exc)) from None
    if summary.chunks_skipped:
        print(f"resumed: {summary.chunks_skipped} of {summary.n_chunks} chunks were already done")
    print(f"{summary.n_runs} runs: {summary.n_ok} ok, {summary.n_failed} failed; "
          f"{summary.runs_executed} run now in {summary.seconds:.1f} s "
          f"({summary.runs_per_second:.1f} runs/s)")
    for path in summary.paths:
        print(path)
    if summary.n_failed:
        where = summary.out_dir / ("runs.csv" if args.csv else "runs")
        print(f"failed runs and their errors: {where} (status = failed)")
    return 0
