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
        "margin (positive = met with room; for targets in % the margin is in percentage "
        "points), whether the baseline already meets it, the CO2 peak year and value, and "
        "cumulative CO2 2021-2035. Targets come from targets/jiaozuo_targets.toml unless --file is "
        "given.")
    p.add_argument("scenario", help="scenario name (e.g. plan_2021) or path to a .toml file")
    p.add_argument("--file", type=Path, default=None, help="targets file (TOML)")
    p.add_argument("--set", dest="sets", action="append", metavar="NAME",
                   help="only targets without a set plus this set (repeatable), e.g. "
                   "seed_2021 or fyp14_energy; default all")
    p.add_argument("--lang", choices=["en", "zh"], default="en", help="label language")
    p.add_argument("--baseline", default="baseline", metavar="SCENARIO",
                   help="reference for the 'already met in baseline' flag (default baseline)")
    p.add_argument("--samples", type=int, default=500, metavar="N",
                   help="runs behind the chance of meeting each target (projection uncertainties and the "
                   "calibration's posterior, as the app's bands; default 500; 0 = no chance column)")
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


def _fmt_margin(margin: float, unit: str, met: bool, comparison: str, lang: str) -> str:
    """Return a signed margin; a margin of percentages is in percentage points.

    A margin that rounds to zero keeps enough digits to show its sign; exactly zero
    against a strict comparison (value equal to the target, which it must pass) is
    said in words instead of "+0.00".
    """
    from greenpath.i18n import t

    if margin == 0 and not met:
        return t("targets_margin_equal_strict", lang, comparison=comparison)
    if unit == "%":
        digits = f"{margin:+.2f}" if margin == 0 or abs(margin) >= 0.005 else f"{margin:+.2g}"
        return f"{digits} {t('targets_unit_pp', lang)}"
    if unit not in ("year",) and margin != 0 and abs(margin) < 0.05:
        return f"{margin:+.2g} {unit}"
    return _fmt(margin, unit, sign=True)


def _width(text: str) -> int:
    """Columns a string takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def run(args: argparse.Namespace) -> int:
    """Run the scenario and print the target check."""
    from greenpath.cli.errors import CommandError
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.i18n import t
    from greenpath.scenarios import scenario as scenarios
    from greenpath.scenarios import targets

    scenario = scenarios.load(args.scenario)
    if args.csv is not None and args.csv.exists():
        raise CommandError(f"{args.csv} exists; choose another file name")
    try:
        loaded = targets.load(args.file or targets.DEFAULT_TARGETS)
        chosen = targets.select(loaded, args.sets)
    except targets.TargetError as exc:
        raise CommandError(str(exc)) from None
    columns = sorted({*targets.required_variables(chosen), "co2_emissions"})
    model = JiaozuoModel()
    result = model.run(**scenario.run_kwargs(), return_columns=columns)
    table = targets.evaluate(result, chosen)
    reference = scenarios.load(args.baseline)
    if reference.name == scenario.name:
        base_met = table["met"]
    else:
        base_met = targets.evaluate(
            model.run(**reference.run_kwargs(), return_columns=columns), chosen)["met"]
    table["met_in_baseline"] = base_met.to_numpy(dtype=bool)
    table["margin_unit"] = ["pp" if u == "%" else u for u in table["unit"]]
    if args.samples < 0:
        raise CommandError(f"--samples {args.samples}: allowed a whole number >= 0 (0 = no chance column)")
    chances = None
    if args.samples:
        from greenpath.runners import chance as ch

        kw = scenario.run_kwargs()
        chances = ch.chance(kw["params"], chosen, n=args.samples, time_varying=kw["time_varying"] or None)
        table["chance"] = table["id"].map(chances["chance"]).to_numpy(dtype=float)
    lang = args.lang
    label = "label_zh" if lang == "zh" else "label_en"
    file_name = (args.file or targets.DEFAULT_TARGETS).name
    print(t("targets_heading", lang, scenario=scenario.name, file=file_name))
    width = max(_width(s) for s in table[label]) if len(table) else 0
    status_w = max(7, _width(t("targets_met", lang)), _width(t("targets_missed", lang)))
    for row in table.itertuples(index=False):
        status = t("targets_met", lang) if row.met else t("targets_missed", lang)
        value = _fmt(row.value, row.unit)
        goal = f"{row.comparison} {_fmt(row.target, row.unit)}"
        margin = _fmt_margin(row.margin, row.unit, row.met, row.comparison, lang)
        flag = ""
        if row.met_in_baseline and reference.name != scenario.name:
            flag = "  " + t("targets_met_in_baseline", lang, baseline=reference.name)
        odds = ""
        if chances is not None:
            from greenpath.runners.chance import format_chance

            odds = f"  {t('targets_chance', lang)} {format_chance(row.chance):>5s}"
        print(f"  {_pad(status, status_w)} {_pad(getattr(row, label), width)}  {value:>14s}  "
              f"{goal:>14s}  {t('targets_margin', lang)} {margin}{odds}{flag}")
    print(t("targets_summary", lang, met=int(table["met"].sum()), total=len(table)))
    if chances is not None:
        a = chances.attrs
        print(t("targets_chance_note", lang, n=a["n"], k=len(a["sampled"]), m=len(a["posterior"]),
                source=a["posterior_source"]))
    if reference.name != scenario.name and table["met_in_baseline"].any():
        print(t("targets_baseline_summary", lang, n=int(table["met_in_baseline"].sum()),
                baseline=reference.name))
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
        from greenpath.files import atomic_write

        atomic_write(args.csv, lambda tmp: table.to_csv(tmp, index=False, encoding="utf-8-sig"))
        print(args.csv)
    return 0
