"""`greenpath wedges SCENARIO`: each lever group's share of the CO2 and coal reduction.

Shapley values by default, against the baseline; they add up exactly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_VARIABLES = ("co2_emissions", "co2_including_imports", "total_coal_consumption")


def register(sub) -> None:
    """Add the ``wedges`` subcommand."""
    p = sub.add_parser(
        "wedges", help="attribute a scenario's CO2 and coal reduction to lever groups",
        description="Split the reduction of a scenario against the baseline among the lever "
        "groups. Shapley values (default) average each group's effect over every order of "
        "switching the groups on (2^n runs) and add up exactly to the total; --method "
        "sequential switches groups on in --order. Positive = lowers the variable.")
    p.add_argument("scenario", help="scenario name or path to a .toml file")
    p.add_argument("--baseline", default="baseline", help="reference scenario (default baseline)")
    p.add_argument("--variable", dest="variables", action="append", metavar="VAR",
                   help="variable to attribute (repeatable; default co2_emissions, co2_including_imports and "
                   "total_coal_consumption)")
    p.add_argument("--method", choices=["shapley", "sequential"], default="shapley")
    p.add_argument("--order", help="comma-separated group order for --method sequential")
    p.add_argument("--years", nargs="+", type=int, default=[2025, 2030, 2035],
                   help="years to show (default 2025 2030 2035)")
    p.add_argument("--engine", choices=["auto", "vector", "pysd"], default="auto",
                   help="auto (default: the vector engine, PySD if it fails), vector, or pysd "
                   "(the reference, one run at a time)")
    p.add_argument("--lang", choices=["en", "zh"], default="en")
    p.add_argument("--csv", type=Path, default=None,
                   help="write variable, year, group, contribution, unit to this CSV (refuses "
                   "to replace a file)")
    p.set_defaults(func=run)


def _group_label(group: str, lang: str) -> str:
    from greenpath.i18n import TranslationError, t

    for key in (f"chart_group_{group.replace(' ', '_')}", f"wedges_group_{group}"):
        try:
            return t(key, lang)
        except TranslationError:
            continue
    return group


def _width(text: str) -> int:
    """Columns a string takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def run(args: argparse.Namespace) -> int:
    """Compute and print the wedges."""
    from greenpath.cli.errors import CommandError
    from greenpath.i18n import t
    from greenpath.runners import wedges

    if args.csv is not None and args.csv.exists():
        raise CommandError(f"{args.csv} exists; choose another file name")
    order = [g.strip() for g in args.order.split(",")] if args.order else None
    variables = args.variables or list(DEFAULT_VARIABLES)
    try:
        table = wedges.compute_many(args.scenario, variables, baseline=args.baseline,
                                    method=args.method, order=order, engine=args.engine)
    except wedges.WedgeError as exc:
        raise CommandError(str(exc)) from None
    lang = args.lang
    years = [y for y in args.years if y in set(table["year"])]
    bad = sorted(set(args.years) - set(years))
    if bad:
        raise CommandError(f"--years {bad}: outside the simulated years "
                           f"{table['year'].min()}-{table['year'].max()}")
    attrs = table.attrs
    for var in variables:
        sub = table[table["variable"] == var]
        wide = sub.pivot(index="group", columns="year", values="contribution")
        wide = wide.loc[list(dict.fromkeys(sub["group"]))]
        total = sub.groupby("year")["contribution"].sum()
        from greenpath.outputs.comparison import variable_label

        print(t("wedges_heading", lang, variable=f"{variable_label(var, lang)} ({var})",
                scenario=attrs["scenario"],
                baseline=attrs["baseline"], unit=attrs["units"][var], method=args.method))
        label_w = max(12, *(_width(_group_label(g, lang)) for g in wide.index))
        cum_label = t("wedges_cumulative", lang)
        print(f"  {'':{label_w}s}" + "".join(f"{y:>11d}" for y in years)
              + " " * max(2, 18 - _width(cum_label)) + cum_label)
        for group, row in wide.iterrows():
            cum = row.loc[2021:2035].sum()
            print(f"  {_pad(_group_label(group, lang), label_w)}"
                  + "".join(f"{row[y]:>11.3f}" for y in years) + f"  {cum:>16.2f}")
        print(f"  {_pad(t('wedges_total', lang), label_w)}"
              + "".join(f"{total[y]:>11.3f}" for y in years)
              + f"  {total.loc[2021:2035].sum():>16.2f}")
        print()
    # Each group by its one name (the charts' and the app's), with the key that --order,
    # the registry and the only_<key> scenarios use.
    changed = ", ".join(f"{_group_label(g, lang)} ({g})" for g in attrs["players"])
    print(t("wedges_runs", lang, runs=attrs["runs"], groups=changed or t("wedges_none", lang)))
    if args.csv is not None:
        from greenpath.files import atomic_write

        long = table.assign(unit=table["variable"].map(attrs["units"]))
        atomic_write(args.csv, lambda tmp: long.to_csv(tmp, index=False))
        print(args.csv)
    return 0
