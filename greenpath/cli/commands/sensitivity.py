"""`greenpath sensitivity --out DIR`: Morris screening and Sobol indices of any outcomes.

Writes into ``DIR``: ``sensitivity.csv`` (one row per outcome and factor: Morris
``mu_star`` with its 95 % interval, ``sigma``, ``mu``; Sobol ``S1``/``ST`` with
95 % intervals; ranks), ``morris.png`` and/or ``sobol.png`` (bar charts) and
``sensitivity.meta.json`` (arguments, runs, seconds, model and calibration
hashes).  Existing files are never replaced without ``--force``.  The method
is described in :mod:`greenpath.runners.sensitivity`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SHOW_PER_OUTCOME = 8


def register(sub) -> None:
    """Add the ``sensitivity`` subcommand."""
    p = sub.add_parser(
        "sensitivity", help="global sensitivity analysis (Morris, Sobol) of any outcome",
        description="Morris screening of every lever and uncertainty (registry ranges), then first- and "
        "total-order Sobol indices with 95% confidence intervals on each outcome's most influential factors, "
        "for the outcomes given with --outcome (default: coal use 2025 vs 2020, energy intensity 2025 vs "
        "2020, CO2 peak year, cumulative CO2 2021-2035). With --scenario, the start year and the "
        "scenario's own levers are held. Runs on the vector engine (PySD if the vector engine refuses "
        "the model).")
    p.add_argument("--scenario", default=None,
                   help="scenario holding the factors that are not varied (default: model defaults)")
    p.add_argument("--method", choices=["morris", "sobol", "both"], default="both",
                   help="morris: screening only; sobol: Sobol on every factor; both (default): Sobol on "
                   "the --top factors of the Morris screening")
    p.add_argument("--n", type=int, default=1024,
                   help="Sobol base samples, a power of 2 (default 1024; runs = N x (factors + 2))")
    p.add_argument("--trajectories", type=int, default=20,
                   help="Morris trajectories (default 20; runs = trajectories x (factors + 1))")
    p.add_argument("--top", type=int, default=12, help="factors passed from Morris to Sobol (default 12)")
    p.add_argument("--factors", default="all",
                   help="all (levers and uncertainties, default), levers, uncertainties, projection "
                   "(levers and the uncertainties that leave 2005-2020 unchanged) or a comma-separated list")
    p.add_argument("--exclude", default="",
                   help="comma-separated factors held at the scenario's setting (e.g. policy_start_year)")
    p.add_argument("--outcome", dest="outcomes", action="append", metavar="SPEC",
                   help="outcome to analyse (repeatable): coal_change_2025, "
                   "energy_intensity_change_2025, co2_peak_year, co2_cumulative_2021_2035, or "
                   "VAR@YEAR (co2_emissions@2035), cumulative:VAR:Y1-Y2 "
                   "(cumulative:co2_emissions:2021-2035), change:VAR@YEAR (vs 2020), "
                   "peak_year:VAR; default the four named ones")
    p.add_argument("--vary-start-year", action="store_true",
                   help="with --scenario, also vary policy_start_year (held by default: the plan "
                   "is under way)")
    p.add_argument("--vary-scenario-levers", action="store_true",
                   help="with --scenario, also vary the levers the scenario sets (held by default)")
    p.add_argument("--lang", choices=("en", "zh"), default="en",
                   help="language of labels, charts and the reading guide")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default 20211202, greenpath.runners.ensemble.DEFAULT_SEED)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def _factors(text: str) -> str | list[str]:
    from greenpath.runners.sensitivity import FACTOR_SETS

    if text in FACTOR_SETS:
        return text
    return [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    """Run the analysis, write the files, print the most influential factors."""
    from greenpath.cli.errors import CommandError
    from greenpath.files import atomic_write_all
    from greenpath.runners import sensitivity as se
    from greenpath.runners.ensemble import DEFAULT_SEED, EnsembleError

    seed = DEFAULT_SEED if args.seed is None else args.seed

    if args.n < 2 or args.n & (args.n - 1):
        raise CommandError(f"--n {args.n}: Sobol base samples must be a power of 2 (e.g. 512, 1024, 2048)")
    if args.trajectories < 2:
        raise CommandError(f"--trajectories {args.trajectories}: Morris needs at least 2")
    if args.top < 1:
        raise CommandError(f"--top {args.top}: pass at least one factor to Sobol")
    out: Path = args.out
    targets = [out / "sensitivity.csv", out / "sensitivity.meta.json"]
    if args.method in ("morris", "both"):
        targets.append(out / "morris.png")
    if args.method in ("sobol", "both"):
        targets.append(out / "sobol.png")
    if not args.force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise CommandError(f"{', '.join(existing)} exist(s); pass --force to replace")
    try:
        result = se.run_sensitivity(scenario=args.scenario, method=args.method, n=args.n,
                                    trajectories=args.trajectories, top=args.top, seed=seed,
                                    factors=_factors(args.factors),
                                    exclude=[t.strip() for t in args.exclude.split(",") if t.strip()],
                                    outcomes=args.outcomes, vary_start_year=args.vary_start_year,
                                    vary_scenario_levers=args.vary_scenario_levers)
    except EnsembleError as exc:
        raise CommandError(str(exc)) from None
    meta = result.meta
    meta["reading_guide"] = se.reading_guide(args.lang)
    dropped = [*meta["excluded"], *meta["held"]]
    if len(dropped) > 3:  # the footer is one line: the names are in sensitivity.meta.json
        excluded = f" minus {len(dropped)} held or excluded"
    else:
        excluded = f" minus {', '.join(dropped)}" if dropped else ""
    footer = (f"scenario {meta['scenario']} | factors {meta['factors']}{excluded} ({meta['n_factors']}) | "
              f"seed {meta['seed']}"
              f" | {meta['runs']} runs | model {meta['model_sha256'][:12]}"
              + (f" | calibration {meta['calibration_sha256_12']}" if meta["calibration_sha256_12"] else ""))
    files = [
        (targets[0], lambda tmp: result.table.to_csv(tmp, index=False, float_format="%.6g",
                                                     encoding="utf-8-sig")),
        (targets[1], lambda tmp: tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False),
                                                encoding="utf-8")),
    ]
    if result.morris is not None:
        morris = se.morris_chart(result.morris, footer + f" | r={args.trajectories}",
                                 outcomes=result.outcomes, lang=args.lang)
        files.append((out / "morris.png", lambda tmp: morris.savefig(tmp, format="png")))
    if result.sobol is not None:
        sobol = se.sobol_chart(result.sobol, footer + f" | N={args.n}", outcomes=result.outcomes,
                               lang=args.lang)
        files.append((out / "sobol.png", lambda tmp: sobol.savefig(tmp, format="png")))
    atomic_write_all(files, overwrite=True)  # all or none: a full disk leaves no partial set
    _print(result, args.lang)
    for t in targets:
        print(t)
    return 0


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _print(result, lang: str = "en") -> None:
    from greenpath.i18n import t
    from greenpath.runners.sensitivity import factor_label, reading_guide

    table = result.table
    meta = result.meta
    print(t("sens_heading", lang, outcomes=len(result.outcomes), factors=meta["n_factors"],
            scenario=meta["scenario"], runs=meta["runs"], seconds=meta["seconds"]))
    if meta["held"]:
        print(t("sens_held", lang, names=", ".join(meta["held"])))
        print("  " + t("sens_held_reason", lang))
    for name, o in result.outcomes.items():
        rows = table[table["outcome"] == name].head(SHOW_PER_OUTCOME)
        print(f"\n{o.text(lang)} [{o.unit}]")
        labels = [f"{factor_label(f, lang)} ({f})" if factor_label(f, lang) != f else f
                  for f in rows["factor"]]
        width = max([42, *(_width(x) for x in labels)])
        head = t("sens_col_factor", lang)
        print(f"  {head}{' ' * (width - _width(head))} {'mu*':>10s} {'±95%':>9s} {'sigma':>9s} "
              f"{'S1':>6s} {'±95%':>6s} {'ST':>6s} {'±95%':>6s}")
        for label, r in zip(labels, rows.itertuples(index=False), strict=True):
            print(f"  {label}{' ' * (width - _width(label))} {_num(r.mu_star, 10)} "
                  f"{_num(r.mu_star_conf, 9)} {_num(r.sigma, 9)} "
                  f"{_num(r.S1, 6, 2)} {_num(r.S1_conf, 6, 2)} {_num(r.ST, 6, 2)} {_num(r.ST_conf, 6, 2)}"
                  + (f"  ({r.note})" if r.note else ""))
    print()
    print(reading_guide(lang))


def _num(value: float, width: int, digits: int | None = None) -> str:
    if value != value:  # NaN
        return f"{'-':>{width}s}"
    if digits is not None:
        return f"{value:{width}.{digits}f}"
    return f"{value:{width}.4g}"
