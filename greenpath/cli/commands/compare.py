"""`greenpath compare`: compare two model versions, or the model with its reference results."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    """Add the ``compare`` subcommand to ``sub`` (the top-level parser's subparsers)."""
    p = sub.add_parser(
        "compare", help="compare two model versions (git revisions or folders) or the model with its reference",
        description="Compare two versions of the model over the shipped scenarios and a seeded sample: every "
        "output and year, colour-coded at three thresholds, summarised per scenario and variable (biggest first), "
        "with a trace to where the versions first diverge. A version is a git revision (e.g. HEAD~3) or a folder "
        "holding model/jiaozuo.mdl, model/parameters.csv and calibration/calibrated.toml; B defaults to the "
        "installed model. --against reference compares the installed model with model/reference/.")
    p.add_argument("a", nargs="?", help="version A (git revision or folder)")
    p.add_argument("b", nargs="?", help="version B (default: the installed model)")
    p.add_argument("--against", choices=["reference"], help="compare with the committed reference results")
    p.add_argument("--update-reference", action="store_true",
                   help="rewrite model/reference/*.csv from the installed model (the 'this change is intended')")
    p.add_argument("--scenarios", nargs="+", metavar="NAME", help="shipped scenarios (default: all)")
    p.add_argument("--sample", type=int, default=10, help="sampled settings added (default 10)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sample")
    p.add_argument("--thresholds", type=float, nargs=3, default=[1, 5, 10], metavar=("T1", "T2", "T3"),
                   help="colour thresholds in percent (default 1 5 10)")
    p.add_argument("--columns", nargs="+", metavar="VAR", help="only these outputs (default: all both have)")
    p.add_argument("--fail-above", type=float, default=None, metavar="PCT",
                   help="exit 1 when a headline output differs by more than PCT percent (default: never for two "
                   "versions; 0.0001 with --against reference)")
    p.add_argument("--repo", type=Path, default=None, help="git repository of the revisions (default: this one)")
    p.add_argument("--out", type=Path, default=None, help="write compare.html, compare.csv and summary.txt here")
    p.add_argument("--force", action="store_true", help="replace existing report files in --out")
    p.set_defaults(func=run)


def _version(spec: str, repo: Path | None):
    from greenpath.runners.versions import ModelVersion

    path = Path(spec)
    if path.is_dir():
        return ModelVersion(path, spec)
    return ModelVersion.from_git(spec, repo)


def run(args: argparse.Namespace) -> int:
    """Compare, print the summary, write the report; 1 when ``--fail-above`` is exceeded.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``compare`` arguments.

    Returns
    -------
    int
        0, or 1 when a headline output moved beyond ``--fail-above``.
    """
    from greenpath.cli.errors import CommandError
    from greenpath.model import indicators
    from greenpath.runners import compare as cmp
    from greenpath.runners.versions import ModelVersion, VersionError

    if args.out and not args.force:
        existing = [n for n in ("compare.html", "compare.csv", "summary.txt") if (args.out / n).exists()]
        if existing:
            raise CommandError(f"{args.out}: {', '.join(existing)} exist; use --force to replace them")
    if args.sample < 0:
        raise CommandError(f"--sample {args.sample}: allowed a whole number >= 0")
    thresholds = [t / 100 for t in args.thresholds]
    try:
        if args.update_reference:
            if args.a or args.against:
                raise CommandError("--update-reference takes no versions and no --against")
            for path in cmp.write_reference():
                print(path)
            return 0
        if args.against == "reference":
            if args.a and args.b:
                raise CommandError("--against reference compares one version with the reference: give at most one")
            b = _version(args.a, args.repo) if args.a else ModelVersion.current()
            result = cmp.compare_reference(b, thresholds=thresholds)
            fail_above = 0.0001 if args.fail_above is None else args.fail_above
        else:
            if not args.a:
                raise CommandError("give version A (a git revision or a folder), or --against reference")
            a = _version(args.a, args.repo)
            b = _version(args.b, args.repo) if args.b else ModelVersion.current()
            result = cmp.compare(a, b, args.scenarios, args.sample,
                                 args.seed if args.seed is not None else cmp.DEFAULT_SEED, thresholds, args.columns)
            fail_above = args.fail_above
    except (cmp.CompareError, VersionError) as exc:
        raise CommandError(str(exc)) from None
    print(result.text())
    if args.out:
        for path in result.write(args.out, overwrite=args.force):
            print(path)
    if fail_above is not None:
        over = result.exceeding(fail_above / 100, indicators.HEADLINE)
        if len(over):
            worst = over.iloc[0]
            print(f"FAIL: {len(over)} headline outputs moved by more than {fail_above:g}% (largest "
                  f"{worst['variable']}: {100 * worst['max_relative_difference']:.4g}% in {worst['scenario']} "
                  f"{worst['year']})" + (
                      "; if the change is intended, run `greenpath compare --update-reference` and commit "
                      "model/reference/ with it" if args.against else ""))
            return 1
    return 0
