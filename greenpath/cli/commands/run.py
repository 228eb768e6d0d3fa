"""`greenpath run SCENARIO --out DIR`: one scenario, yearly results to CSV/XLSX/JSON."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``run`` subcommand to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser("run", help="run one scenario and write yearly results",
                       description="Run a scenario (a name in scenarios/ or a .toml path) "
                       "and write DIR/NAME.csv, .xlsx and .meta.json.")
    p.add_argument("scenario", help="scenario name (e.g. baseline) or path to a .toml file")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--columns", nargs="+", metavar="VAR", help="only these variables")
    p.add_argument("--final-time", type=float, default=None, help="last year (default 2035)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run one scenario, write its results and print their paths (and the summary).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``run`` arguments.

    Returns
    -------
    int
        The exit status, 0.
    """
    from greenpath import files as io
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.model import indicators
    from greenpath.model.mdl import FINAL_TIME
    from greenpath.scenarios import scenario as scenarios

    scenario = scenarios.load(args.scenario)
    model = JiaozuoModel(engine="scalar")  # PySD's results, ~100x faster per run
    result = model.run(**scenario.run_kwargs(), return_columns=args.columns,
                       final_time=FINAL_TIME if args.final_time is None else args.final_time)
    result.metadata["scenario_file"] = str(scenario.path) if scenario.path else ""
    result.metadata["scenario_chain"] = scenario.chain
    paths = io.write_result(result, args.out, scenario.name, overwrite=args.force)
    for path in paths:
        print(path)
    if args.columns is None:
        for key, value in indicators.summary(result.frame).items():
            print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    return 0
