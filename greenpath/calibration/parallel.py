"""The backtest on the second core: a forked process runs it while the main fit and posterior run here.

The backtest (:mod:`greenpath.calibration.backtest`) shares nothing with the main fit but
the inputs: its own fit on the data through 2015, its own posterior sample, its own
scoring, each seeded. So it can run at the same time in a child process (``fork``: the
child inherits the compiled vector model and the loaded history, nothing is re-read),
and its result is exactly the one a serial run gives (the seed drives everything; a test
compares them). Where ``fork`` is not available the backtest runs after the main steps,
in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import resource
import sys
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["BacktestJob", "can_fork", "start_backtest"]


def can_fork() -> bool:
    """Return True where a forked child can run the backtest (Linux, two or more cores)."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) >= 2


class BacktestJob:
    """A backtest running (or to run) somewhere; :meth:`result` waits for it."""

    def __init__(self, run: Callable[[], Any], parallel: bool):
        self._run = run
        self._process: Any = None
        self._conn: Any = None
        self.child_cpu_s = 0.0
        if parallel:
            ctx = multiprocessing.get_context("fork")
            receive, send = ctx.Pipe(duplex=False)
            self._process = ctx.Process(target=_child, args=(run, send), daemon=True)
            self._process.start()
            send.close()
            self._conn = receive

    def result(self) -> Any:
        """Wait for and return the :class:`~greenpath.calibration.backtest.BacktestResult` (or raise its error)."""
        if self._process is None:
            return self._run()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            status, payload = pickle.loads(self._conn.recv_bytes())
        except EOFError:
            status, payload = "crash", f"the backtest process ended with exit code {self._process.exitcode}"
        finally:
            self._process.join()
            self._conn.close()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.child_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if status == "ok":
            return payload
        if isinstance(payload, BaseException):
            raise payload
        raise RuntimeError(f"backtest failed in its process: {payload}")

    def cancel(self) -> None:
        """Stop the child (when the main fit failed)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _child(run: Callable[[], Any], conn: Any) -> None:
    try:
        out: tuple[str, Any] = ("ok", run())
    except BaseException as exc:  # report everything to the parent, which raises it
        out = ("error", exc) if _picklable(exc) else ("error", "".join(traceback.format_exception(exc)))
    conn.send_bytes(pickle.dumps(out))
    conn.close()


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    return True


def start_backtest(run: Callable[[], Any], parallel: bool | None = None) -> BacktestJob:
    """Start ``run`` (a closure running the backtest) in a forked child, or defer it.

    ``parallel`` None: fork where :func:`can_fork`; False: run it in this process when
    :meth:`BacktestJob.result` is called.
    """
    return BacktestJob(run, can_fork() if parallel is None else bool(parallel))
