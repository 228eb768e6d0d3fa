"""The `greenpath` command line.

Subcommands live in :mod:`greenpath.cli.commands`, one module each, listed in
:func:`build_parser`; each defines ``register(subparsers)`` adding its parser with
``set_defaults(func=...)``.  A command
returns an exit code; :class:`CommandError` (and the validation errors of scenarios,
the registry and the model) print one line naming what was wrong and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import warnings

from greenpath.cli.errors import CommandError


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

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def show(message, category, filename, lineno, file=None, line=None):
        # the project's own RuntimeWarnings (a damaged batch chunk redone, bands without a
        # posterior) are messages to the user too, not a source line to debug
        ours = issubclass(category, RuntimeWarning) and os.path.abspath(filename).startswith(package + os.sep)
        if issubclass(category, ScenarioWarning) or ours:
            print(f"greenpath {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


class _Stopped(KeyboardInterrupt):
    """SIGTERM received by the command's own process (raised where it was running)."""


def _stop_on_sigterm():
    """Make SIGTERM end the command like Ctrl-C: cleanup runs, one line is printed.

    Without it ``kill PID`` ended the command without a word (exit status -15).  A forked
    child (``calibrate --workers``' pool) inherits the handler and keeps the default
    action: it is stopped, not unwound.  Returns the handler to restore (None when not
    in the main thread, where signals cannot be handled).
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def handler(signum, frame):
        if os.getpid() != parent:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise _Stopped()

    return signal.signal(signal.SIGTERM, handler)


class _ReaderMayLeave:
    """``sys.stdout`` for a command whose output may be piped into ``head``.

    When the reader closes the pipe, printing stops quietly and the command goes on, so
    the files it was asked to write (``--out``, ``--iamc``, ...) are still written; a
    ``BrokenPipeError`` in the middle of a command used to end it with status 0 and
    some of its files missing.
    """

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def _reader_gone(self) -> None:
        self._gone = True
        with contextlib.suppress(OSError, ValueError):  # the interpreter's last flush goes nowhere
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="greenpath",
        description="Jiaozuo green low-carbon transition simulator (焦作市绿色低碳转型情景模拟)",
    )
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
    old_sigterm = _stop_on_sigterm()
    stdout = sys.stdout
    sys.stdout = _ReaderMayLeave(stdout)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: one line, no traceback
        name = "SIGTERM" if isinstance(exc, _Stopped) else "SIGINT (Ctrl-C)"
        print(f"greenpath {args.command}: interrupted by {name}", file=sys.stderr)
        return 128 + (15 if isinstance(exc, _Stopped) else 2)
    except _user_errors() as exc:
        print(f"greenpath {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    finally:
        sys.stdout.flush()  # while a closed pipe is still taken quietly
        sys.stdout = stdout
        if old_sigterm is not None:  # main() called in-process (tests, scripts) leaves it as it was
            import signal

            signal.signal(signal.SIGTERM, old_sigterm)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
