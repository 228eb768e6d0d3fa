"""`greenpath calibrate`: fit the model to recorded history, write calibrated.toml and a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cutoff(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cutoff {text!r} is not a year (or 'none')") from None


def register(sub) -> None:
    """Add the ``calibrate`` subcommand."""
    from greenpath.calibration.posterior import DEFAULT_STEPS
    from greenpath.model.registry import CALIBRATED_PATH

    p = sub.add_parser(
        "calibrate", help="fit uncertain parameters to Jiaozuo's recorded history",
        description="Fit the registry's uncertain parameters to calibration/data/history.csv (differential "
        "evolution, then least-squares polish), write the calibrated parameter set and optionally a report "
        "(Markdown + PNG), the posterior sample (calibration/posterior.csv) and the 2016-22 backtest. An existing "
        "calibration or report is never replaced without --force.",
    )
    p.add_argument("--out", type=Path, default=CALIBRATED_PATH,
                   help="calibration file to write (or read with --report-only); default calibration/calibrated.toml")
    p.add_argument("--history", type=Path, default=None, help="history CSV (default: the packaged history.csv)")
    p.add_argument("--seed", type=int, default=20240, help="seed of differential evolution (default 20240)")
    p.add_argument("--maxiter", type=int, default=300,
                   help="differential-evolution generations per fit (budget; default 300; 0 = polish only)")
    p.add_argument("--popsize", type=int, default=12, help="DE population per parameter (default 12)")
    p.add_argument("--cutoff", type=_cutoff, default=None,
                   help="last year of an extra out-of-sample refit (default none: the backtest, fit through 2015 "
                   "and scored on 2016-22, is the out-of-sample test)")
    p.add_argument("--params", nargs="+", metavar="NAME", default=None,
                   help="registry uncertainties to fit (default: the built-in set of 23)")
    p.add_argument("--prior-weight", type=float, default=1.0,
                   help="weight of the prior penalty (default 1 = one series' worth; 0 = none)")
    p.add_argument("--sensitivity", action="store_true",
                   help="also refit with both CEADs regimes in level (the report's CO2-weighting sensitivity)")
    p.add_argument("--no-sensitivity", action="store_true", help="no sensitivity refit (the default; kept for scripts)")
    p.add_argument("--posterior-steps", type=int, default=DEFAULT_STEPS,
                   help=f"steps of the posterior MCMC (default {DEFAULT_STEPS}; 0 = no posterior sample, every band "
                   "then samples the projection uncertainties only, and says so)")
    p.add_argument("--no-backtest", action="store_true", help="skip the 2016-22 backtest")
    p.add_argument("--engine", choices=("auto", "vector", "pysd"), default="auto",
                   help="simulation engine (default: the NumPy vector engine, PySD if it cannot load)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--report", type=Path, metavar="DIR", default=None, help="write the report to DIR")
    p.add_argument("--report-only", action="store_true",
                   help="do not fit: rebuild the report in --report DIR from the existing calibration file")
    p.add_argument("--force", action="store_true", help="replace an existing calibration file / report")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def _previous(path: Path, say) -> dict:
    """Return what the report compares from the calibration file being replaced (``--force``).

    A damaged file (not UTF-8, not TOML, nested too deep, tables of the wrong type) is
    replaced like any other: the fit just made is never lost to it; the comparison is
    left out and the user told so.
    """
    from greenpath import tomlfile

    try:
        old = tomlfile.read(path, what="a calibration file")
        bounds = old.get("uncertainty", {}).get("at_bound", {})
        fitted = old.get("meta", {}).get("fitted", [])
        return {"previous_at_bound": sorted(bounds), "previous_fitted_count": len(fitted)}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        say(f"the calibration file being replaced is unreadable ({str(exc).splitlines()[0][:200]}); "
            "the report does not compare with it")
        return {}


def run(args: argparse.Namespace) -> int:
    """Run the command; user errors become :class:`greenpath.cli.errors.CommandError`."""
    from greenpath.calibration import report as R
    from greenpath.calibration.errors import CalibrationError
    from greenpath.calibration.history import HistoryError
    from greenpath.calibration.report_context import ReportError
    from greenpath.calibration.run import calibrate
    from greenpath.calibration.series import FIRST_YEAR
    from greenpath.calibration.store import write_calibration
    from greenpath.cli.errors import CommandError

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr)

    try:
        if args.report_only:
            if args.report is None:
                raise CommandError("--report-only needs --report DIR")
            for path in R.write_report(args.out, args.report, history_path=args.history, force=args.force,
                                       engine=args.engine):
                print(path)
            return 0
        if args.out.exists() and not args.force:
            raise CommandError(f"{args.out} exists; pass --force to replace the calibration")
        if args.report is not None and not args.force:
            existing = [n for n in R.REPORT_FILES if (args.report / n).exists()]
            if existing:
                raise CommandError(f"{args.report / existing[0]} exists; pass --force to replace the report")
        result = calibrate(
            args.history, names=args.params, seed=args.seed, maxiter=args.maxiter, popsize=args.popsize,
            cutoff=args.cutoff, prior_weight=args.prior_weight,
            sensitivity=args.sensitivity and not args.no_sensitivity, engine=args.engine, workers=args.workers,
            progress=say, posterior_steps=args.posterior_steps, backtest=not args.no_backtest,
        )
        if args.out.exists():  # the report's closing note compares the bounds before and after
            result.meta.update(_previous(args.out, say))
        path = write_calibration(result, args.out, force=args.force)
        print(path)
        meta = result.meta
        say(f"{len(result.space)} parameters, cost {meta['objective_cost']:.4g}, {meta['n_model_runs']:,} model "
            f"runs, {meta['wall_time_s']} s")
        say(f"  simulated {FIRST_YEAR}-{meta['final_time']} (the data's last year)")
        for key, row in result.statistics.iterrows():
            if row["role"] == "fitted":
                shape = f"  shape only (factor {row['factor']:.3g})" if row["factor"] == row["factor"] else ""
                say(f"  {key:32s} MAPE {row['mape_pct']:7.2f} %  R2 {row['r_squared']:7.3f}{shape}")
        if args.report is not None:
            for p in R.write_report(path, args.report, history_path=args.history, force=True, engine=args.engine):
                print(p)
        return 0
    except (HistoryError, CalibrationError, ReportError) as exc:
        raise CommandError(str(exc)) from None
