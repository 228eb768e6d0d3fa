"""`greenpath discover --out DIR`: PRIM scenario discovery of lever ranges for a CO2 peak.

The lever ranges that keep CO2 peaking by a given year (default 2030).

Writes ``prim_box.csv``, ``prim_trajectory.csv``, ``prim_tradeoff.png`` and
``discover.meta.json`` into ``DIR`` (never replacing files without ``--force``)
and prints the chosen box.  Method, box-choice rule and outputs:
:mod:`greenpath.runners.discovery`.

``--levers`` takes lever names and/or registry lever groups (``industry``,
``energy_supply``, ...), comma-separated; levers not listed stay at the
scenario's settings.  Sampling every lever across its registry range makes
almost every run peak by 2030 in the current model, so the default experiment
mostly confirms that; one group at a time (``--levers energy_supply``) or a
stricter ``--peak-by 2025`` separates more.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: Share of cases of interest beyond which (or below 1 minus which) the box says little.
NEAR_ALL = 0.95


def register(sub) -> None:
    """Add the ``discover`` subcommand."""
    p = sub.add_parser(
        "discover", help="scenario discovery (PRIM): lever ranges that keep CO2 peaking by 2030",
        description="Latin-hypercube sample of the levers (and uncertainties), then PRIM (Friedman & Fisher "
        "peeling, alpha 0.05; the densest box with coverage >= 0.8; pasting) on the levers for the runs whose "
        "CO2 peaks by --peak-by. Runs on the vector engine (PySD if the vector engine refuses the model).")
    p.add_argument("--scenario", default=None, help="scenario holding what is not sampled (default: model "
                   "defaults)")
    p.add_argument("--n", type=int, default=4000, help="number of runs (default 4000)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default 20211202, greenpath.runners.ensemble.DEFAULT_SEED)")
    p.add_argument("--peak-by", type=int, default=2030,
                   help="a run counts when its CO2 peak year is <= this year (default 2030, as the targets file)")
    p.add_argument("--levers", default=None,
                   help="comma-separated lever names and/or lever groups (e.g. energy_supply); default all levers")
    p.add_argument("--uncertainties", default="projection",
                   help="sampled too: projection (default; those leaving 2005-2020 unchanged), all, none, or a "
                   "comma-separated list")
    p.add_argument("--alpha", type=float, default=None, help="peel share (default 0.05)")
    p.add_argument("--min-coverage", type=float, default=None,
                   help="the chosen box is the densest with at least this coverage (default 0.8)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def _levers(text: str | None) -> list[str] | None:
    from greenpath.cli.errors import CommandError
    from greenpath.model import registry as reg

    if text is None:
        return None
    levers = reg.levers()
    groups: dict[str, list[str]] = {}
    for name, p in levers.items():
        groups.setdefault(p.group.replace(" ", "_"), []).append(name)
    out: list[str] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        key = item.replace(" ", "_")
        if key in groups:
            out += [n for n in groups[key] if levers[n].max > levers[n].min]
        elif item in levers:
            out.append(item)
        else:
            raise CommandError(
                f"--levers: {item!r} is neither a lever nor a lever group"
                f"{reg.suggest(item, [*levers, *groups])}; groups: {', '.join(sorted(groups))}"
            )
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    """Run the experiment and PRIM, write the files, print the box."""
    from greenpath.cli.errors import CommandError
    from greenpath.files import atomic_write_all
    from greenpath.runners import discovery as dc
    from greenpath.runners.ensemble import DEFAULT_SEED, EnsembleError

    if args.n < 10:
        raise CommandError(f"--n {args.n}: PRIM needs at least 10 runs (thousands are usual)")
    levers = _levers(args.levers)
    out: Path = args.out
    targets = [out / "prim_box.csv", out / "prim_trajectory.csv", out / "prim_tradeoff.png",
               out / "discover.meta.json"]
    if not args.force:
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            raise CommandError(f"{', '.join(existing)} exist(s); pass --force to replace")
    unc = args.uncertainties
    if unc not in ("projection", "all", "none"):
        unc = [t.strip() for t in unc.split(",") if t.strip()]
    try:
        result = dc.discover(
            scenario=args.scenario, n=args.n, seed=DEFAULT_SEED if args.seed is None else args.seed,
            peak_by=args.peak_by, levers=levers, uncertainties=unc,
            alpha=dc.PEEL_ALPHA if args.alpha is None else args.alpha,
            min_coverage=dc.MIN_COVERAGE if args.min_coverage is None else args.min_coverage,
        )
    except EnsembleError as exc:
        raise CommandError(str(exc)) from None
    meta = result.meta
    footer = (f"scenario {meta['scenario']} | {meta['n']} runs, seed {meta['seed']} | {len(meta['levers'])} levers, "
              f"{len(meta['uncertainties'])} uncertainties | alpha {meta['alpha']:g} | model "
              f"{meta['model_sha256'][:12]}")
    fig = dc.tradeoff_chart(result.prim, footer, title=f"PRIM: runs whose CO2 peaks by {meta['peak_by']} "
                            f"({meta['share_of_interest']:.0%} of all runs)")
    atomic_write_all([  # all or none: a full disk leaves no partial set
        (targets[0], lambda tmp: result.box_table.to_csv(tmp, index=False, float_format="%.6g")),
        (targets[1], lambda tmp: result.prim.trajectory.to_csv(tmp, index=False, float_format="%.6g")),
        (targets[2], lambda tmp: fig.savefig(tmp, format="png")),
        (targets[3], lambda tmp: tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")),
    ], overwrite=True)
    _print(result)
    for t in targets:
        print(t)
    return 0


def _print(result) -> None:
    meta = result.meta
    share = meta["share_of_interest"]
    print(f"{meta['case_of_interest']}: {share:.1%} of {meta['n']} runs "
          f"(scenario {meta['scenario']}, {meta['seconds']:.1f} s)")
    if share >= NEAR_ALL or share <= 1 - NEAR_ALL:
        which = "almost every" if share >= NEAR_ALL else "almost no"
        print(f"note: {which} sampled lever combination meets it, so the box can say little; try a "
              "stricter/looser --peak-by or one lever group at a time (--levers energy_supply)")
    print(f"chosen box: {meta['rule']}")
    print(f"  coverage {meta['coverage']:.3f}  density {meta['density']:.3f}  mass {meta['mass']:.3f}  "
          f"(step {meta['chosen_step']} of {len(result.prim.trajectory) - 1})")
    table = result.box_table
    restricted = table[table["restricted"]]
    if restricted.empty:
        print("  no lever restricted: the whole sampled range qualifies")
        return
    print(f"  {'lever':36s} {'box min':>10s} {'box max':>10s} {'registry':>21s} {'unit':>10s} "
          f"{'density w/o':>12s}")
    for r in restricted.itertuples(index=False):
        registry = f"{r.registry_min:g} to {r.registry_max:g}"
        print(f"  {r.lever:36s} {r.box_min:10.4g} {r.box_max:10.4g} {registry:>21s} {r.unit:>10s} "
              f"{r.density_without:12.3f}")
