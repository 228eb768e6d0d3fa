"""`greenpath costs SCENARIO`: net present cost, cost per tonne by lever group, air and health.

Against the baseline; see :mod:`greenpath.runners.costs` for the method.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

RATE_KEYS = {"social 8%": "costs_rate_social", "water projects 6%": "costs_rate_water",
             "real WACC 3.18%": "costs_rate_wacc"}


def register(sub) -> None:
    """Add the ``costs`` subcommand."""
    p = sub.add_parser(
        "costs", help="what a scenario costs and saves against the baseline, and the air it cleans",
        description="Net present cost of a scenario against the baseline (2021-2035, constant "
        "2021 CNY, 8% social discount rate with 6% and 3.18% for comparison), each lever "
        "group's cost per tonne of CO2 (Shapley values, the MAC curve), the SO2, NOx and "
        "PM2.5 reductions by sector and the premature deaths avoided, with P10-P90 from a "
        "Monte Carlo over the cost, price, emission-factor and health ranges.")
    p.add_argument("scenario", help="scenario name or path to a .toml file")
    p.add_argument("--baseline", default="baseline", help="reference scenario (default baseline)")
    p.add_argument("--samples", type=int, default=None,
                   help="Monte Carlo samples over the cost ranges (default 200; 0 = central only)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sample (default 19)")
    p.add_argument("--co2", choices=["including_imports", "territorial"],
                   default="including_imports",
                   help="CO2 boundary of the cost per tonne (default including imported electricity)")
    p.add_argument("--years", nargs="+", type=int, default=[2025, 2030, 2035],
                   help="years of the yearly tables (default 2025 2030 2035)")
    p.add_argument("--engine", choices=["auto", "vector", "pysd"], default="auto")
    p.add_argument("--lang", choices=["en", "zh"], default="en")
    p.add_argument("--csv", type=Path, default=None,
                   help="folder to write the tables into as CSV (refuses an existing folder)")
    p.set_defaults(func=run)


def _group_label(group: str, lang: str) -> str:
    from greenpath.cli.commands.wedges import _group_label as label

    return label(group, lang)


def _fmt(v: float, digits: int = 1) -> str:
    import math

    return "—" if v is None or not math.isfinite(v) else f"{v:,.{digits}f}"


def run(args: argparse.Namespace) -> int:
    """Compute and print the cost report."""
    from greenpath.cli.commands.wedges import _pad, _width
    from greenpath.cli.errors import CommandError
    from greenpath.i18n import t
    from greenpath.runners import costs

    if args.csv is not None and args.csv.exists():
        raise CommandError(f"{args.csv} exists; choose another folder name")
    samples = costs.DEFAULT_SAMPLES if args.samples is None else args.samples
    if samples < 0:
        raise CommandError(f"--samples {samples}: give 0 or more")
    bad = [y for y in args.years if not costs.FIRST_YEAR <= y <= costs.LAST_YEAR]
    if bad:
        raise CommandError(f"--years {bad}: allowed {costs.FIRST_YEAR} to {costs.LAST_YEAR}")
    try:
        rep = costs.analyse(args.scenario, baseline=args.baseline, samples=samples,
                            seed=costs.DEFAULT_SEED if args.seed is None else args.seed,
                            co2=args.co2, engine=args.engine)
    except (costs.CostError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    lang, a = args.lang, rep.attrs
    print(t("costs_heading", lang, scenario=a["scenario"], baseline=a["baseline"]))
    print()
    print(t("costs_npc_heading", lang, samples=samples))
    for _, r in rep.npc.iterrows():
        label = f"{r['rate'] * 100:.3g}% — {t(RATE_KEYS[r['rate_name']], lang)}"
        print(f"  {_pad(label, 58)}{_fmt(r['central']):>10}   "
              f"[{_fmt(r['p10'])} … {_fmt(r['p90'])}]")
    print()
    print(t("costs_groups_heading", lang))
    head = [t("costs_col_group", lang), t("costs_col_npc", lang), t("costs_col_co2", lang),
            t("costs_col_cpt", lang), t("costs_col_range", lang)]
    w0 = max(14, *(_width(_group_label(g, lang)) for g in rep.groups["group"]), _width(head[0])) + 2
    print("  " + _pad(head[0], w0) + "".join(f"{_pad(h, 18)}" for h in head[1:]))
    for _, r in rep.groups.iterrows():
        name = t("costs_total", lang) if r["group"] == "total" else _group_label(r["group"], lang)
        cpt = _fmt(r["cost_per_t"], 0) if r["cost_per_t"] == r["cost_per_t"] else t("costs_not_shown", lang)
        rng = (f"{_fmt(r['cost_per_t_p10'], 0)} … {_fmt(r['cost_per_t_p90'], 0)}"
               if r["cost_per_t"] == r["cost_per_t"] else "")
        print("  " + _pad(name, w0) + _pad(_fmt(r["npc"]), 18) + _pad(_fmt(r["co2_reduction_mt"], 2), 18)
              + _pad(cpt, 18) + rng)
    print()
    years = list(args.years)
    print(t("costs_yearly_heading", lang))
    _table(rep.yearly, [*costs.COST_PARTS, costs.COST_VARIABLE], years, lang)
    print()
    print(t("costs_payers_heading", lang))
    _table(rep.yearly, list(costs.PAYERS), years, lang)
    print()
    print(t("costs_pollutants_heading", lang))
    pol = rep.pollutants
    lw = 52
    print("  " + " " * lw + "".join(f"{y:>12d}" for y in years) + f"{t('costs_cumulative', lang):>18}")
    for p in costs.POLLUTANTS:
        cum = rep.health.set_index("measure").loc[f"{p}_reduction_2021_2035"]
        for sector in [*costs.SECTORS, "total"]:
            sub = pol[(pol["pollutant"] == p) & (pol["sector"] == sector)].set_index("year")
            label = f"{t('costs_pollutant_' + p, lang)}, {t('costs_sector_' + sector, lang)}"
            line = "  " + _pad(label, lw) + "".join(f"{_fmt(sub.loc[y, 'reduction'], 0):>12}" for y in years)
            line += f"{_fmt(sub['reduction'].sum(), 0):>18}"
            if sector == "total":
                line += f"   [{_fmt(cum['p10'], 0)} … {_fmt(cum['p90'], 0)}]"
            print(line)
    print()
    print(t("costs_health_heading", lang))
    h = rep.health.set_index("measure")
    for y in (2025, 2030, 2035):
        r = h.loc[f"deaths_avoided_{y}"]
        print(f"  {_pad(t('costs_deaths_year', lang, year=y), 24)}{_fmt(r['central'], 0):>10}   "
              f"[{_fmt(r['p10'], 0)} … {_fmt(r['p90'], 0)}]")
    r = h.loc["deaths_avoided_2021_2035"]
    print(f"  {_pad(t('costs_deaths_total', lang), 24)}{_fmt(r['central'], 0):>10}   "
          f"[{_fmt(r['p10'], 0)} … {_fmt(r['p90'], 0)}]")
    if len(rep.drivers):
        print()
        print(t("costs_drivers_heading", lang))
        for out, sub in rep.drivers.groupby("output", sort=False):
            if out.startswith("cost_per_t_"):
                name = t("costs_output_cost_per_t", lang,
                         group=_group_label(out.removeprefix("cost_per_t_"), lang))
            else:
                name = t(f"costs_output_{out}", lang)
            label_col = "label_zh" if lang == "zh" else "label_en"
            items = "; ".join(f"{r[label_col]} ({r['rho']:+.2f})" for _, r in sub.iterrows())
            print(f"  {name}: {items}")
    print()
    groups = ", ".join(_group_label(g, lang) for g in a["players"])
    print(t("costs_runs", lang, runs=a["runs"], coalitions=2 ** len(a["players"]), groups=groups,
            draws=a["samples"] + 1))
    print(t("costs_note", lang))
    if args.csv is not None:
        _write_csv(rep, args.csv)
        print(args.csv)
    return 0


def _table(yearly, items, years, lang) -> None:
    from greenpath.cli.commands.wedges import _pad
    from greenpath.i18n import t

    lw = 52
    print("  " + " " * lw + "".join(f"{y:>10d}" for y in years))
    for item in items:
        sub = yearly[yearly["item"] == item].set_index("year")
        print("  " + _pad(t(f"costs_item_{item}", lang), lw)
              + "".join(f"{_fmt(sub.loc[y, 'change'], 2):>10}" for y in years))


def _write_csv(rep, folder: Path) -> None:
    """Write every table of the report as CSV (UTF-8 with BOM for Excel)."""
    import tempfile

    from greenpath.files import atomic_write

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    for name in ("npc", "groups", "yearly", "group_yearly", "pollutants", "health", "drivers"):
        frame: pd.DataFrame = getattr(rep, name)

        def write(p: Path, f: pd.DataFrame = frame) -> None:
            f.to_csv(p, index=False, encoding="utf-8-sig")

        atomic_write(tmp / f"{name}.csv", write)
    mac = rep.mac_curve()
    atomic_write(tmp / "mac_curve.csv", lambda p: mac.to_csv(p, index=False, encoding="utf-8-sig"))
    tmp.rename(folder)
