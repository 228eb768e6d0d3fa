"""`greenpath targets SCENARIO`: each target met or missed with its margin.

Also prints the CO2 peak and cumulative CO2 2021-2035.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``targets`` subcommand."""
    p = sub.add_parser(
        "targets", help="check a scenario against the plan's targets",
        description="Run a scenario and print every target met or missed with its signed "
        "margin (positive = met with room), the CO2 peak year and value, and cumulative "
        "CO2 2021-2035. Targets come from targets/jiaozuo_targets.toml unless --file is "
        "given.")
    p.add_argument("scenario", help="scenario name (e.g. plan_2021) or path to a .toml file")
    p.add_argument("--file", type=Path, default=None, help="targets file (TOML)")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="only targets without a set plus this set (repeatable), e.g. "
                   "seed_2021 or fyp14_energy; default all")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="label language")
    p.add_argument("--csv", type=Path, default=None,
                   help="also write the table to this CSV file (refuses to replace one)")
    p.set_defaults(func=run)


# A rise after the post-peak minimum larger than this is reported: the "peak" is then
# a drop followed by renewed growth, not a lasting decline.
REBOUND_NOTE_PCT = 1.0


def _fmt(value: float, unit: str, sign: bool = False) -> str:
    plus = "+" if sign else ""
    if unit == "year":
        return f"{value:{plus}.0f}"
    if unit == "%":
        return f"{value:{plus}.2f} %"
    return f"{value:{plus},.1f} {unit}"


def run(args: argparse.Namespace) -> int:
    """Run the scenario and print the target check."""
    from greenpath import scenarios, targets
    from greenpath.cli import CommandError
    from greenpath.i18n import t
    from greenpath.model.engine import JiaozuoModel

    scenario = scenarios.load(args.scenario)
    if args.csv is not None and args.csv.exists():
        raise CommandError(f"{args.csv} exists; choose another file name")
    try:
        loaded = targets.load(args.file or targets.DEFAULT_TARGETS)
        chosen = targets.select(loaded, args.sets)
    except targets.TargetError as exc:
        raise CommandError(str(exc)) from None
    columns = sorted({*targets.required_variables(chosen), "co2_emissions"})
    result = JiaozuoModel().run(**scenario.run_kwargs(), return_columns=columns)
    table = targets.evaluate(result, chosen)
    lang = args.lang
    label = "label_zh" if lang == "zh" else "label_en"
    file_name = (args.file or targets.DEFAULT_TARGETS).name
    print(t("targets_heading", lang, scenario=scenario.name, file=file_name))
    width = max(len(s) for s in table[label]) if len(table) else 0
    for row in table.itertuples(index=False):
        status = t("targets_met", lang) if row.met else t("targets_missed", lang)
        value = _fmt(row.value, row.unit)
        goal = f"{row.comparison} {_fmt(row.target, row.unit)}"
        margin = _fmt(row.margin, row.unit, sign=True)
        print(f"  {status:7s} {getattr(row, label):{width}s}  {value:>14s}  {goal:>14s}  "
              f"{t('targets_margin', lang)} {margin}")
    print(t("targets_summary", lang, met=int(table["met"].sum()), total=len(table)))
    head = targets.headline(result)
    line = t("targets_peak", lang, year=head["peak_year"], value=head["peak_value"])
    if head["still_rising"]:
        line += " " + t("targets_still_rising", lang, year=head["peak_year"])
    print(line)
    if head["rebound_pct"] > REBOUND_NOTE_PCT:  # zero unless the low comes before the end
        print(t("targets_rebound", lang, low_year=head["low_year"], low=head["low_value"],
                last_year=head["last_year"], last=head["last_value"], pct=head["rebound_pct"]))
    print(t("targets_cumulative", lang, value=head["cumulative_2021_2035"]))
    if args.csv is not None:
        from greenpath.io import atomic_write

        atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False))
        print(args.csv)
    return 0
