"""The one parallel layer (:mod:`greenpath.engines.parallel`).

Every test compares what runs in other processes with the same work done here, one
task after the other, and checks that a worker's error reaches the caller.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from greenpath.engines import parallel as P

needs_fork = pytest.mark.skipif(not P.can_fork(), reason="fork is Linux only")


def _square(task: dict, offset: int) -> dict:
    """Square the task's index (module level, so it pickles to spawned workers); task 3 fails."""
    if task["k"] == 3:
        raise ValueError(f"bad task {task['k']}")
    return {"value": task["k"] ** 2 + offset, "pid": os.getpid()}


@pytest.mark.parametrize("start", ["spawn", "fork"])
@pytest.mark.parametrize("run_here", [False, True])
def test_run_chunks_on_processes_gives_the_serial_results_and_records_errors(start, run_here):
    if start == "fork" and not P.can_fork():
        pytest.skip("fork is Linux only")
    results: dict[str, dict[int, int]] = {}
    errors: dict[str, list[str]] = {}
    pids: set[int] = set()
    for how, workers in (("serial", 1), ("pool", 2)):
        got: dict[int, int] = {}
        errs: list[str] = []

        def finished(k, result, got=got, how=how):
            assert threading.current_thread() is threading.main_thread()
            got[k] = result["value"]
            if how == "pool":
                pids.add(result["pid"])

        P.run_chunks(_square, ({"k": k} for k in range(8)), 8, args=(10,), finished=finished,
                     errors=errs, workers=workers, start=start, run_here=run_here)
        results[how], errors[how] = got, errs
    assert results["pool"] == results["serial"] == {k: k * k + 10 for k in range(8) if k != 3}
    assert errors["pool"] == errors["serial"] == ["chunk 3: ValueError: bad task 3"]
    assert pids - {os.getpid()}, "no task ran in another process"


def _cube(x: int) -> tuple[int, int]:
    """Return ``x`` cubed and this process's id; 5 fails."""
    if x == 5:
        raise ArithmeticError("no cube for 5")
    return x ** 3, os.getpid()


@pytest.mark.parametrize("start", ["spawn", None])
def test_worker_pool_maps_in_order_across_calls_and_raises_the_first_error(start):
    with P.WorkerPool(2, start=start) as pool:
        first = pool.map(_cube, range(5))
        second = pool.map(_cube, [9, 8, 7])
        with pytest.raises(ArithmeticError, match="no cube for 5"):
            pool.map(_cube, range(8))
    assert [v for v, _ in first] == [x ** 3 for x in range(5)]
    assert [v for v, _ in second] == [729, 512, 343]
    assert {pid for _, pid in first + second} - {os.getpid()}
    with pytest.raises(ValueError, match="closed"):
        pool.map(_cube, [1])


def test_run_chunks_rejects_an_unknown_start_method():
    with pytest.raises(ValueError, match="'spawn' or 'fork'"):
        P.run_chunks(_square, [{"k": 0}], 1, args=(0,), finished=lambda k, r: None, errors=[],
                     start="forkserver")


@pytest.mark.parametrize(("text", "expected"), [("local:3", 3), ("tcp://10.0.0.5:8786", None)])
def test_parse_scheduler(text, expected):
    assert P.parse_scheduler(text) == expected


@pytest.mark.parametrize("text", ["local:0", "local:two"])
def test_parse_scheduler_names_the_bad_value(text):
    with pytest.raises(P.ParallelError, match=f"--scheduler '{text}': write local:N"):
        P.parse_scheduler(text)


@needs_fork
def test_forked_call_returns_what_a_call_here_returns_and_raises_its_error():
    def work():
        return {"draw": float(np.random.default_rng(3).random()), "pid": os.getpid()}

    here = P.ForkedCall(work, fork=False).result()
    child = P.ForkedCall(work)
    there = child.result()
    assert there["draw"] == here["draw"]
    assert there["pid"] != os.getpid()

    def fails():
        raise KeyError("history row 7")

    with pytest.raises(KeyError, match="history row 7"):
        P.ForkedCall(fails).result()


@needs_fork
def test_forked_call_reports_a_child_that_dies_and_an_error_that_does_not_pickle():
    with pytest.raises(RuntimeError, match="the work failed in its process: it ended with exit status 7"):
        P.ForkedCall(lambda: os._exit(7)).result()

    class Local(Exception):  # defined in a function: cannot be pickled
        pass

    def fails():
        raise Local("no pickle")

    with pytest.raises(RuntimeError, match="Local: no pickle"):
        P.ForkedCall(fails).result()


@needs_fork
def test_forked_call_is_cancelled():
    job = P.ForkedCall(lambda: time.sleep(60))
    pid = job._pid
    assert pid is not None
    job.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # stopped and reaped, not left running for a minute


@needs_fork
def test_fork_ranges_fills_shared_memory_like_one_range_and_raises_a_child_error():
    import mmap

    n = 1001
    memory = mmap.mmap(-1, n * 8, flags=mmap.MAP_SHARED)
    shared = np.frombuffer(memory, dtype=float, count=n)

    def fill(lo, hi):
        shared[lo:hi] = np.sqrt(np.arange(lo, hi))

    P.fork_ranges(fill, n, 3)
    assert np.array_equal(shared, np.sqrt(np.arange(n)))

    def fails(lo, hi):
        if lo > 0:
            raise ArithmeticError(f"range {lo}-{hi}")

    with pytest.raises(ArithmeticError, match="range 500-1000"):
        P.fork_ranges(fails, 1000, 2)


def test_run_with_helpers_runs_every_chunk_once_and_records_failures():
    tasks = [{"k": k} for k in range(40)]
    finished: dict[int, str] = {}
    errors: list[str] = []
    threads = set()

    def here(task):
        threads.add(threading.current_thread())
        time.sleep(0.001)
        if task["k"] in (7, 8):
            raise ValueError("broken here")
        return "here"

    def submit(task):
        f: Future = Future()
        if task["k"] in (7, 8):
            f.set_exception(RuntimeError("broken in a helper"))
            return f
        time.sleep(0.002)
        f.set_result("helper")
        return f

    def on_finished(k, result):
        assert threading.current_thread() is threading.main_thread()
        assert k not in finished
        finished[k] = result

    P.run_with_helpers(submit, here, iter(tasks), 2, on_finished, errors)
    assert set(finished) == set(range(40)) - {7, 8}
    assert len(errors) == 2
    assert {e.split(":")[0] for e in errors} == {"chunk 7", "chunk 8"}
    assert all(e.endswith(("ValueError: broken here", "RuntimeError: broken in a helper"))
               for e in errors)
    assert set(finished.values()) == {"here", "helper"}  # both sides ran chunks
    assert threads == {threading.main_thread()}
