"""The `greenpath` command line.

Subcommands live in :mod:`greenpath.commands`; each module defines
``register(subparsers)`` adding its parser with ``set_defaults(func=...)``.  A command
returns an exit code; :class:`CommandError` (and the validation errors of scenarios,
the registry and the model) print one line naming what was wrong and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from greenpath import commands


class CommandError(Exception):
    """A user error: printed as one line, exit status 2."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from greenpath.model.engine import ModelError
    from greenpath.model.registry import RegistryError
    from greenpath.scenarios import ScenarioError

    # File-system errors name the path (an unwritable or misnamed --out folder).
    return (CommandError, ScenarioError, RegistryError, ModelError, FileNotFoundError,
            FileExistsError, PermissionError, NotADirectoryError, IsADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="greenpath",
        description="Jiaozuo green low-carbon transition simulator (焦作市绿色低碳转型情景模拟)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
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
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed
        sys.stderr.close()
        return 0
    except _user_errors() as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"greenpath {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
