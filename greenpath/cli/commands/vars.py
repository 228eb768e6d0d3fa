"""`greenpath vars`: list model variables with units (and lever ranges)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add the ``vars`` subcommand to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser("vars", help="list model variables with units")
    p.add_argument("--kind", choices=["stock", "auxiliary", "lookup", "lever", "uncertainty",
                                      "constant"], help="only this kind")
    p.add_argument("--grep", help="only names containing this text")
    p.add_argument("--equations", action="store_true", help="also print equations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the model variables the filters in ``args`` select, one per line.

    Each line: name, kind, unit (with the registry's range, if any), for registry
    parameters ``baseline <value>`` (the value every run uses unless a scenario sets
    it: the calibrated value where one exists, else the registry default) and the
    comment, tab-separated; with ``--equations`` the equation follows.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``vars`` arguments.

    Returns
    -------
    int
        The exit status, 0.
    """
    from greenpath.model.mdl import parse_mdl
    from greenpath.model.registry import effective_defaults, load_registry

    registry = load_registry()
    baseline = effective_defaults()
    for v in parse_mdl():
        p = registry.get(v.name)
        kind = p.kind if p else v.kind
        if args.kind and kind != args.kind:
            continue
        if args.grep and args.grep.lower() not in v.name:
            continue
        rng = f" [{p.min:g}..{p.max:g}]" if p else ""
        base = f"\tbaseline {baseline[v.name]:g}" if p and v.name in baseline else ""
        print(f"{v.name}\t{kind}\t{v.unit}{rng}{base}\t{v.comment}")
        if args.equations:
            print(f"    = {v.equation}")
    return 0
