"""`greenpath check`: run the model checks of ``model/checks.toml``."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``check`` subcommand to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser(
        "check", help="check the model against the rules of model/checks.toml",
        description="Run every rule of model/checks.toml over the shipped scenarios and a seeded sample of "
        "lever and uncertainty settings across the registry ranges (vector engine). Prints every failing "
        "rule with its smallest counterexamples; exits 1 when a rule fails (known issues do not fail).")
    p.add_argument("--rules", type=Path, default=None, help="rule file (default model/checks.toml)")
    p.add_argument("--samples", type=int, default=None,
                   help="sampled settings (default: [settings] samples of the rule file, 5000)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sample (default: the rule file's)")
    p.add_argument("--model", default=None, metavar="DIR_OR_REV",
                   help="check another model version: a folder with model/jiaozuo.mdl, model/parameters.csv "
                   "and optionally calibration/calibrated.toml, or a git revision (default: the installed model)")
    p.add_argument("--rule", dest="only", action="append", metavar="ID", help="only this rule (repeatable)")
    p.add_argument("--report", type=Path, default=None, metavar="DIR",
                   help="write check.md, check.html and violations.csv to DIR")
    p.add_argument("--force", action="store_true", help="replace the report files in --report DIR")
    p.add_argument("--show", type=int, default=5, help="violations printed per rule (default 5)")
    p.add_argument("--no-shrink", action="store_true", help="do not shrink the smallest counterexample")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check, print the report; 1 if a rule failed.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``check`` arguments.

    Returns
    -------
    int
        0 when every rule holds (or fails only as a known issue), 1 otherwise.
    """
    from greenpath.cli.errors import CommandError
    from greenpath.runners.checks import CheckError, run_check
    from greenpath.runners.versions import ModelVersion, VersionError

    if args.report and not args.force:
        existing = [n for n in ("check.md", "check.html", "violations.csv") if (args.report / n).exists()]
        if existing:
            raise CommandError(f"{args.report}: {', '.join(existing)} exist; use --force to replace them")
    if args.samples is not None and args.samples < 0:
        raise CommandError(f"--samples {args.samples}: allowed a whole number >= 0")
    try:
        if args.model is None:
            version = ModelVersion.current()
        elif Path(args.model).is_dir():
            version = ModelVersion(args.model, args.model)
        else:
            version = ModelVersion.from_git(args.model)
        report = run_check(version, args.rules, args.samples, args.seed, shrink=not args.no_shrink,
                           only=args.only)
    except (CheckError, VersionError) as exc:
        raise CommandError(str(exc)) from None
    print(report.text(shown=args.show))
    if args.report:
        for path in report.write(args.report, overwrite=args.force):
            print(path)
    return 1 if report.failed else 0
