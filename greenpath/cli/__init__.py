"""The `greenpath` command line.

Subcommands live in :mod:`greenpath.cli.commands`, one module each, listed in
:func:`build_parser`; each defines ``register(subparsers)`` adding its parser with
``set_defaults(func=...)``.  A command
returns an exit code; :class:`CommandError` (and the validation errors of scenarios,
the registry and the model) print one line naming what was wrong and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from greenpath.engines.base import ModelError
    from greenpath.model.registry import RegistryError
    from greenpath.scenarios.scenario import ScenarioError

    # File-system errors name the path: an unwritable, read-only (EROFS) or full (ENOSPC)
    # output or cache folder, a misnamed --out; every OSError, not a few subclasses.
    return (CommandError, ScenarioError, RegistryError, ModelError, OSError)


def _message(exc: BaseException) -> str:
    """One line saying what went wrong, in the user's terms."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        if isinstance(exc, FileExistsError) and where and os.path.isfile(where):
            return f"{where} is a file, not a folder"  # an output folder that is a file
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _warning_printer(command: str):
    """Print a warning the user should act on as one line ``greenpath CMD: warning: ...``."""
    from greenpath.scenarios.scenario import ScenarioWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ScenarioWarning):
            print(f"greenpath {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="greenpath",
        description="Jiaozuo green low-carbon transition simulator (焦作市绿色低碳转型情景模拟)",
    )
    # Imported here, not at the top: the commands import CommandError from this module.
    from greenpath.cli.commands import (
        batch,
        calibrate,
        check,
        compare,
        costs,
        discover,
        report,
        run,
        sensitivity,
        show,
        table,
        targets,
        vars,
        wedges,
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (batch, calibrate, check, compare, costs, discover, report, run, sensitivity,
                   show, table, targets, vars, wedges):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `greenpath` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed
        sys.stderr.close()
        return 0
    except _user_errors() as exc:
        print(f"greenpath {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
