"""`greenpath table SCENARIO... --out FILE`: scenarios x variables x years side by side."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``table`` subcommand."""
    from greenpath.outputs.comparison import DEFAULT_VARIABLES, DEFAULT_YEARS

    p = sub.add_parser(
        "table", help="compare scenarios: variables x years with units and differences",
        description="Run each scenario and write one table: a row per variable and "
        "scenario, a column per year, with units, and with --vs the difference (in the "
        "variable's unit and in %) to a reference scenario. The table is printed and, "
        "with --out, written as .xlsx (sheets table and metadata) or .csv (UTF-8 with "
        "BOM, so Excel shows Chinese). Existing files are never replaced without --force.")
    p.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                   help="scenario names (e.g. baseline plan_2021) or paths to .toml files")
    p.add_argument("--variables", nargs="+", metavar="VAR", default=list(DEFAULT_VARIABLES),
                   help=f"model variables (default: {' '.join(DEFAULT_VARIABLES)}; "
                   "`greenpath vars` lists them)")
    p.add_argument("--years", nargs="+", type=int, default=list(DEFAULT_YEARS),
                   help="years (default: 2025 2030 2035)")
    p.add_argument("--vs", metavar="SCENARIO", default=None,
                   help="reference scenario for the differences (run too if not listed)")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of labels")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write the table to FILE.xlsx or FILE.csv")
    p.add_argument("--iamc", type=Path, default=None, metavar="FILE",
                   help="also write the scenarios' values in the IAMC template "
                   "(.csv or .xlsx, readable by pyam)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build, print and write the comparison table."""
    import pandas as pd

    from greenpath.cli.errors import CommandError
    from greenpath.files import OutputExistsError, atomic_write, metadata_rows
    from greenpath.outputs import comparison, iamc
    from greenpath.runners.report import ReportRunError, run_for_table

    for opt, path, allowed in (("--out", args.out, (".xlsx", ".csv")),
                               ("--iamc", args.iamc, (".xlsx", ".csv"))):
        if path is None:
            continue
        if path.suffix.lower() not in allowed:
            raise CommandError(f"{opt} {path}: the file name must end in "
                               f"{' or '.join(allowed)}")
        if path.exists() and not args.force:
            raise OutputExistsError(f"{path} exists; pass --force to replace it")
    names = list(args.scenarios)
    vs_name = None
    if args.vs is not None:
        from greenpath.scenarios import scenario as sc

        vs_name = sc.load(args.vs).name
        if vs_name not in [sc.load(n).name for n in names]:
            names.insert(0, args.vs)
    try:
        loaded, frames, units = run_for_table(names, args.variables)
        table = comparison.build(loaded, frames, units, args.variables, args.years,
                                 vs=vs_name, lang=args.lang)
    except (ReportRunError, comparison.ComparisonError) as exc:
        raise CommandError(str(exc)) from None
    print(comparison.format_text(table))
    meta = {
        "command": "greenpath table " + " ".join(args.scenarios),
        "reference": vs_name or "",
        "years": " ".join(map(str, args.years)),
        "variables": " ".join(args.variables),
        "scenario_files": {n: str(s.path.name) if s.path else "" for n, s in loaded.items()},
        "scenario_chains": {n: " > ".join(s.chain) for n, s in loaded.items()},
    }
    from greenpath.engines.pysd_engine import JiaozuoModel

    model = JiaozuoModel()
    meta.update({"model_sha256": model.hash, "calibration_sha256_12": model.calibration})
    meta_rows = pd.DataFrame(metadata_rows(meta), columns=["key", "value"])
    if args.out is not None:
        if args.out.suffix.lower() == ".csv":
            atomic_write(args.out, lambda tmp: table.to_csv(
                tmp, index=False, float_format="%.12g", encoding="utf-8-sig"),
                overwrite=args.force)
        else:
            def xlsx(tmp: Path) -> None:
                with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
                    table.to_excel(xw, sheet_name="table", index=False)
                    meta_rows.to_excel(xw, sheet_name="metadata", index=False)
            atomic_write(args.out, xlsx, overwrite=args.force)
        print(args.out)
    if args.iamc is not None:
        try:
            data = iamc.frame_to_iamc(frames, units, variables=args.variables, years=args.years)
        except iamc.IamcError as exc:
            raise CommandError(str(exc)) from None
        iamc.write_iamc(data, args.iamc, overwrite=args.force)
        print(args.iamc)
    return 0
