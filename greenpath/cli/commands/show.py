"""`greenpath show SCENARIO`: the resolved levers, with units and where each value comes from."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``show`` subcommand."""
    p = sub.add_parser(
        "show", help="show a scenario's resolved levers after inheritance",
        description="Print every lever (and with --all every uncertainty) of a scenario "
        "after its extends chain is resolved: value or year table, unit, the baseline "
        "value, and the file that sets it (a scenario file of the chain, the calibration, "
        "or the registry default).")
    p.add_argument("scenario", help="scenario name (e.g. plan_2021) or path to a .toml file")
    p.add_argument("--all", action="store_true",
                   help="also list uncertainties, and levers the scenario leaves at default")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="label language")
    p.add_argument("--csv", type=Path, default=None,
                   help="also write the table to this CSV (UTF-8 with BOM; refuses to "
                   "replace a file)")
    p.set_defaults(func=run)


def _text(value) -> str:
    if isinstance(value, tuple):
        years, values = value
        return "{ " + ", ".join(f"{int(y)} = {v:g}" for y, v in zip(years, values, strict=True)) + " }"
    return f"{float(value):g}"


def resolved_settings(scenario) -> list[dict]:
    """Return one row per set or default parameter: value, unit, baseline, source file.

    Parameters
    ----------
    scenario
        A loaded :class:`~greenpath.scenarios.scenario.Scenario`.

    Returns
    -------
    list of dict
        Keys ``name, kind, group, label_en, label_zh, value, unit, baseline, source``;
        ``source`` is the file of the chain that sets the value last (the child wins),
        ``calibration/calibrated.toml`` or ``model/parameters.csv``.
    """
    from greenpath.model import registry as reg
    from greenpath.scenarios import scenario as sc

    registry = reg.load_registry()
    calibrated = reg.calibrated()
    defaults = reg.effective_defaults()
    owner: dict[str, str] = {}
    for name, path in zip(scenario.chain, scenario.chain_paths, strict=True):
        if path is None:
            own = set(scenario.own_params) | set(scenario.own_tables) if name == scenario.name \
                else set()
            label = "(not saved)"
        else:
            loaded = sc.load(path)
            own = set(loaded.own_params) | set(loaded.own_tables)
            label = Path(path).name
        for key in own:
            owner[key] = label
    settings = scenario.settings()
    rows = []
    for name, p in registry.items():
        if p.kind not in ("lever", "uncertainty"):
            continue
        if name in owner:
            source = owner[name]
        elif name in calibrated:
            source = "calibration/calibrated.toml"
        else:
            source = "model/parameters.csv"
        rows.append({
            "name": name, "kind": p.kind, "group": p.group, "label_en": p.label_en,
            "label_zh": p.label_zh, "value": settings.get(name, defaults[name]),
            "unit": p.unit, "baseline": defaults[name], "source": source,
            "set_by_scenario": name in owner,
        })
    return rows


def run(args: argparse.Namespace) -> int:
    """Print the resolved settings of a scenario."""
    import pandas as pd

    from greenpath.cli.errors import CommandError
    from greenpath.scenarios import scenario as sc

    if args.csv is not None and args.csv.exists():
        raise CommandError(f"{args.csv} exists; choose another file name")
    scenario = sc.load(args.scenario)
    rows = [r for r in resolved_settings(scenario)
            if args.all or (r["kind"] == "lever" and r["set_by_scenario"])]
    title = scenario.title_zh if args.lang == "zh" else scenario.title_en
    print(f"{scenario.name}: {title}" if title else scenario.name)
    print("  chain: " + " > ".join(
        f"{n} ({Path(p).name})" if p else n
        for n, p in zip(scenario.chain, scenario.chain_paths, strict=True)))
    if not rows:
        print("  (no lever differs from the model defaults; --all lists them all)")
    label_key = "label_zh" if args.lang == "zh" else "label_en"
    header = ("name", "value", "unit", "baseline", "source", "label")
    table = [[r["name"], _text(r["value"]), r["unit"], _text(r["baseline"]), r["source"],
              r[label_key]] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(header)]
    if table:
        print("  " + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for t in table:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip())
    if args.csv is not None:
        from greenpath.files import atomic_write

        frame = pd.DataFrame([{**r, "value": _text(r["value"]), "baseline": _text(r["baseline"])}
                              for r in rows])
        atomic_write(args.csv, lambda tmp: frame.to_csv(tmp, index=False, encoding="utf-8-sig"))
        print(args.csv)
    return 0
