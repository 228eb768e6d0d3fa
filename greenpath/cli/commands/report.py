"""`greenpath report SCENARIO [SCENARIO ...] --out DIR`: charts, data and decks for meetings."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from greenpath.outputs.deck import Report


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


def build_report(scenario_names: Sequence[str], out_dir: str | Path, *, lang: str = "both",
                 presentation: bool = False, force: bool = False, model: Any = None,
                 targets_file: Any = None, sets: Sequence[str] | None = None,
                 log: Callable[[str], None] | None = None,
                 wedges: Callable[..., Any] | None = None) -> Report:
    """Check the request, run the scenarios, write charts (PNG, SVG), data (XLSX) and decks (PPTX).

    The deck checks the request and lists the files
    (:func:`greenpath.outputs.deck.prepare_report`: a bad scenario, target set or an
    existing file is refused before anything runs), the runner runs what the pack draws
    (:func:`greenpath.runners.report.run_report`) and the deck writes it
    (:func:`greenpath.outputs.deck.write_report`).  ``wedges``: the wedge attribution
    (:func:`greenpath.runners.wedges.compute`), or None to leave the wedge charts out
    with a note; ``model``: a loaded :class:`~greenpath.engines.pysd_engine.JiaozuoModel`
    to reuse.  The other arguments as in those functions.

    Returns
    -------
    greenpath.outputs.deck.Report
    """
    from greenpath.outputs import deck
    from greenpath.runners.report import run_report

    plan = deck.prepare_report(scenario_names, out_dir, lang=lang, force=force,
                               targets_file=targets_file, sets=sets, wedges=wedges is not None)
    # plan.targets_file already holds only the chosen sets
    done = run_report(plan.scenarios, model=model, targets_file=plan.targets_file,
                      wedges=wedges if plan.wedge_variables else None,
                      wedge_variables=plan.wedge_variables)
    return deck.write_report(plan, done, presentation=presentation, log=log)


def run(args: argparse.Namespace) -> int:
    """Build the report; print each file written, then any notes."""
    from greenpath.cli.errors import CommandError
    from greenpath.outputs.deck import ReportError
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
