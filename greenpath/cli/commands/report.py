"""`greenpath report SCENARIO [SCENARIO ...] --out DIR`: charts, data and decks for meetings."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``report`` subcommand to the CLI."""
    p = sub.add_parser(
        "report", help="charts (PNG, SVG), their data (XLSX) and a slide deck (PPTX)",
        description="Run one to six scenarios and write into DIR: every chart as PNG and "
        "SVG, report_data.xlsx with the numbers behind each chart, and report_<lang>.pptx "
        "(16:9: title, key numbers per scenario, one chart per slide, lever settings that differ from the baseline, "
        "targets met or missed). Existing files are never replaced without --force.")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                   help="scenario names (e.g. baseline plan_2021) or paths to .toml files")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--lang", choices=("en", "zh", "both"), default="both",
                   help="language of charts and deck (default: both)")
    p.add_argument("--presentation", action="store_true",
                   help="large fonts and 1920x1080 charts for projectors")
    p.add_argument("--targets", type=Path, default=None, metavar="FILE",
                   help="targets TOML to check and draw (default: the shipped file)")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="only targets without a set plus this set (repeatable), e.g. seed_2021 "
                   "(1 GW renewables) or fyp14_energy (2.5 GW); default all")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report; print each file written, then any notes."""
    from greenpath.cli.errors import CommandError
    from greenpath.outputs.deck import ReportError, build_report
    from greenpath.runners.wedges import compute as wedges
    from greenpath.scenarios.targets import TargetError

    if args.out.exists() and not args.out.is_dir():
        raise CommandError(f"--out {args.out} is a file, not a folder")
    if args.targets is not None and not args.targets.is_file():
        raise CommandError(f"--targets {args.targets}: no such file")
    try:
        report = build_report(args.scenarios, args.out, lang=args.lang,
                              presentation=args.presentation, force=args.force,
                              targets_file=args.targets, sets=args.sets, log=print,
                              wedges=wedges)
    except (ReportError, TargetError) as exc:
        raise CommandError(str(exc)) from None
    for note in dict.fromkeys(report.notes["en"]):
        print(f"note: {note}")
    return 0
