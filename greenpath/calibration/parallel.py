"""The backtest on the second core: a forked process runs it while the main fit and posterior run here.

The backtest (:mod:`greenpath.calibration.backtest`) shares nothing with the main fit but
the inputs: its own fit on the data through 2015, its own posterior sample, its own
scoring, each seeded. So it can run at the same time in a child process (``fork``: the
child inherits the compiled vector model and the loaded history, nothing is re-read),
and its result is exactly the one a serial run gives (the seed drives everything; a test
compares them). Where ``fork`` is not available the backtest runs after the main steps,
in this process. The child is the one parallel layer's
(:class:`greenpath.engines.parallel.ForkedCall`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from greenpath.engines import parallel as _parallel

__all__ = ["can_fork", "start_backtest"]


def can_fork() -> bool:
    """Return True where a forked child can run the backtest (Linux, two or more cores)."""
    return _parallel.can_fork(min_cores=2)


def start_backtest(run: Callable[[], Any], parallel: bool | None = None) -> _parallel.ForkedCall:
    """Start ``run`` (a closure running the backtest) in a forked child, or defer it.

    ``parallel`` None: fork where :func:`can_fork`; False: run it in this process when
    :meth:`~greenpath.engines.parallel.ForkedCall.result` is called.  The call's
    ``result()`` returns the :class:`~greenpath.calibration.backtest.BacktestResult` (or
    raises its error), ``cancel()`` stops the child, ``child_cpu_s`` is the child's CPU.
    """
    fork = can_fork() if parallel is None else bool(parallel)
    return _parallel.ForkedCall(run, fork=fork, what="backtest")
