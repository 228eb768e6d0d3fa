"""The one parallel layer: run a function over chunks on local processes or a Dask scheduler.

Every part that spreads model runs over processes goes through this module:

* :func:`run_chunks` runs ``work(task, *args)`` for every task of an iterable on
  ``workers`` local processes (a ``spawn`` or ``fork`` process pool whose workers load
  the compiled engine once, :func:`init_worker`), on a Dask scheduler (``tcp://HOST:PORT``
  or ``local:N``), or here, one after the other; ``finished(k, result)`` is always called
  in the calling thread and a task's error is recorded as ``"chunk k: Type: message"``
  while the others carry on (the batch, :mod:`greenpath.runners.batch`).
* :func:`fork_ranges` splits ``0..n`` into ranges and integrates the first here and
  every other in a forked child (the vector engine writes into shared memory:
  ``VectorModel.simulate(workers=...)``, used by the ensembles, the model checks and the
  version comparison).
* :class:`ForkedCall` runs one function in a forked child while this process carries on
  (the calibration's backtest, :mod:`greenpath.calibration.parallel`).
* :class:`WorkerPool` keeps N processes, each with its engine loaded once, for a caller
  that maps many small batches in order (the calibration's PySD simulator,
  :mod:`greenpath.calibration.simulators`).

The three share how a child's error comes back (pickled, raised here as it was; a
child that cannot pickle its error sends the formatted traceback) and the start-method
choice (:func:`can_fork`).  The layer lives with the engines because every part that
runs the model may import the engines (runners, calibration, faces) while the engines
may import nothing above them: the vector engine's own split can use it too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import queue
import resource
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "ForkedCall", "ParallelError", "WorkerPool", "can_fork", "fork_ranges", "init_worker",
    "parse_scheduler", "run_chunks", "run_with_helpers", "submit_bounded",
]

#: ``finished(k, result)``: called in the caller's thread when task ``k`` is done.
Finished = Callable[[int, Any], None]


class ParallelError(RuntimeError):
    """A scheduler that cannot be used as given, or one that cannot be reached."""


def can_fork(min_cores: int = 1) -> bool:
    """Return True where a forked child can run (Linux) and there are ``min_cores`` cores."""
    return sys.platform.startswith("linux") and (os.cpu_count() or 1) >= min_cores


# ---------------------------------------------------------------------- one forked child
def _error_payload(exc: BaseException) -> bytes:
    """Pickle ``exc`` for the parent; its formatted traceback when it cannot be pickled."""
    try:
        return pickle.dumps(("error", exc))
    except Exception:  # noqa: BLE001 - any pickling failure: send the text instead
        return pickle.dumps(("error", "".join(traceback.format_exception(exc))))


def _raise_payload(status: str, payload: Any, what: str) -> Any:
    if status == "ok":
        return payload
    if isinstance(payload, BaseException):
        raise payload
    raise RuntimeError(f"{what} failed in its process: {payload}")


class ForkedCall:
    """``fn()`` running in a forked child (or, with ``fork=False``, later in this process).

    The child inherits everything loaded here (the compiled model, the data read), so
    nothing is loaded again; its return value (or its error) comes back pickled through
    a pipe.  :meth:`result` waits and returns it (or raises the child's error);
    :meth:`cancel` stops the child.  ``child_cpu_s`` holds the child's CPU seconds
    once :meth:`result` returned.

    Parameters
    ----------
    fn
        What to run; its result must pickle.
    fork
        False: no child; :meth:`result` calls ``fn`` here.
    what
        Named in the error when the child ends without a Python exception.
    """

    def __init__(self, fn: Callable[[], Any], fork: bool = True, what: str = "the work") -> None:
        self._fn = fn
        self._what = what
        self._pid: int | None = None
        self._read: int | None = None
        self.child_cpu_s = 0.0
        if fork:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                status = 0
                try:
                    os.close(read_fd)
                    try:
                        payload = pickle.dumps(("ok", fn()))
                    except BaseException as exc:  # noqa: BLE001 - reported to the parent
                        status = 1
                        payload = _error_payload(exc)
                    with os.fdopen(write_fd, "wb") as pipe:
                        pipe.write(payload)
                finally:
                    os._exit(status)
            os.close(write_fd)
            self._pid, self._read = pid, read_fd

    def result(self) -> Any:
        """Wait for ``fn``'s result and return it, or raise its error."""
        if self._pid is None:
            return self._fn()
        assert self._read is not None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            with os.fdopen(self._read, "rb") as pipe:
                data = pipe.read()  # read before waiting: a large result fills the pipe
        finally:
            self._read = None
            _, code = os.waitpid(self._pid, 0)
            self._pid = None
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.child_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if not data:
            raise RuntimeError(f"{self._what} failed in its process: it ended with "
                               f"{_exit_text(code)} and no result")
        status, payload = pickle.loads(data)
        return _raise_payload(status, payload, self._what)

    def cancel(self) -> None:
        """Stop the child (if it still runs) and reap it."""
        if self._pid is None:
            return
        import signal

        if self._read is not None:
            os.close(self._read)  # a child still writing gets EPIPE and leaves
            self._read = None
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.kill(self._pid, signal.SIGTERM)
        os.waitpid(self._pid, 0)
        self._pid = None


def _exit_text(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"signal {os.WTERMSIG(code)}"
    return f"exit status {os.WEXITSTATUS(code)}"


def fork_ranges(run_range: Callable[[int, int], None], n: int, workers: int) -> None:
    """Run ``run_range(lo, hi)`` over ``workers`` ranges of ``0..n``: the first here, the others forked.

    For work that writes its results into memory shared with the children (an
    anonymous ``MAP_SHARED`` mapping): the children's return values are not kept.  The
    first error (here, or of the first child that failed) is raised once every child
    has ended.
    """
    bounds = [round(i * n / workers) for i in range(workers + 1)]
    children = [ForkedCall(functools.partial(run_range, lo, hi), what="a vector engine worker")
                for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
    error: BaseException | None = None
    try:
        run_range(bounds[0], bounds[1])
    except BaseException as exc:  # noqa: BLE001 - raised once the children are reaped
        error = exc
    for child in children:
        try:
            child.result()
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
    if error is not None:
        raise error


# ---------------------------------------------------------------------- process pools
def init_worker(engine: str = "pysd") -> None:
    """Worker start: load the engine's compiled model once, before the first chunk; leave Ctrl-C to the parent.

    ``engine`` ``"vector"``/``"auto"``: the vector engine's compiled model (``"auto"``
    falls back to PySD's when it does not load); ``"pysd"``: this thread's PySD model.
    An error is not raised here: the first chunk reports it (or falls back) itself.
    """
    import signal

    # Ctrl-C reaches the whole process group: the parent stops the workers and says so once
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if engine != "pysd":
        try:
            from greenpath.engines import vector_loader

            vector_loader.vector_model()
            return
        except Exception:  # noqa: BLE001 - the chunk reports it (or falls back) itself
            if engine == "vector":
                return
    from greenpath.engines.pysd_engine import thread_local_model

    thread_local_model()


def parse_scheduler(scheduler: str) -> int | None:
    """``local:N`` -> N (a local Dask cluster of N processes to start); an address -> None.

    Raises :class:`ParallelError` on ``local:`` with no whole number of 1 or more.
    """
    if not scheduler.startswith("local"):
        return None
    _, _, n = scheduler.partition(":")
    try:
        workers = int(n) if n else (os.cpu_count() or 1)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ParallelError(f"--scheduler {scheduler!r}: write local:N with N >= 1 worker "
                            "processes (e.g. local:2), or a scheduler address tcp://HOST:PORT")
    return workers


def submit_bounded(submit: Callable[[Any], Any], tasks: Iterable[dict], n_tasks: int,
                   in_flight: int, wait_any: Callable[[list], Iterable], finished: Finished,
                   errors: list[str]) -> None:
    """Keep at most ``in_flight`` tasks submitted (each holds its chunk's input): memory flat in N.

    ``submit(task)`` returns a future; ``wait_any(futures)`` the ones done.  Tasks are
    dicts with their index under ``"k"``.
    """
    pending: dict = {}
    it = iter(tasks)
    exhausted = False
    done_count = 0
    while done_count < n_tasks:
        while not exhausted and len(pending) < in_flight:
            task = next(it, None)
            if task is None:
                exhausted = True
                break
            pending[submit(task)] = task["k"]
        if not pending:
            break
        for future in wait_any(list(pending)):
            k = pending.pop(future)
            done_count += 1
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded; the others carry on
                errors.append(f"chunk {k}: {type(exc).__name__}: {exc}")
                continue
            finished(k, result)


def run_with_helpers(submit: Callable[[dict], Any], run_here: Callable[[dict], Any],
                     tasks: Iterable[dict], helpers: int, finished: Finished,
                     errors: list[str]) -> None:
    """Run chunks in this process and in ``helpers`` worker processes, one chunk each at a time.

    This process takes the next chunk, runs it (``run_here(task)``) and takes another; a
    feeder thread per helper process does the same through ``submit(task)`` (a future),
    so a helper is given its next chunk as soon as it returns one and never waits for
    this process, and at the end no helper holds a queue of chunks while the others are
    idle (the last chunk is the only imbalance).  Only as many chunks as processes are in
    flight, so memory stays flat in the number of chunks.  ``finished(k, result)`` is
    always called in this thread; a chunk's error is recorded in ``errors`` and the
    others carry on (as in :func:`submit_bounded`).  On a signal or any exception raised
    here, the feeders stop taking chunks and the exception propagates (the caller stops
    the pool).
    """
    lock = threading.Lock()
    stop = threading.Event()
    chunks = iter(tasks)
    done: queue.SimpleQueue = queue.SimpleQueue()

    def take() -> dict | None:
        with lock:
            return None if stop.is_set() else next(chunks, None)

    def feed() -> None:
        while True:
            task = take()
            if task is None:
                return
            try:
                done.put((task["k"], submit(task).result(), None))
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                done.put((task["k"], None, exc))

    def drain() -> None:
        while True:
            try:
                k, result, exc = done.get_nowait()
            except queue.Empty:
                return
            if exc is not None:
                errors.append(f"chunk {k}: {type(exc).__name__}: {exc}")
            else:
                finished(k, result)

    feeders = [threading.Thread(target=feed, name=f"greenpath-feed-{i}", daemon=True)
               for i in range(helpers)]
    try:
        for t in feeders:
            t.start()
        while True:
            drain()
            task = take()
            if task is None:
                break
            try:
                result = run_here(task)
            except Exception as exc:  # noqa: BLE001 - recorded; the others carry on
                errors.append(f"chunk {task['k']}: {type(exc).__name__}: {exc}")
                continue
            finished(task["k"], result)
        for t in feeders:
            while t.is_alive():
                t.join(0.05)
                drain()
        drain()
    except BaseException:
        stop.set()
        raise


def _stop_pool(pool: Any) -> None:
    """Stop a process pool now: cancel what waits, end the workers, reap them."""
    processes = list(getattr(pool, "_processes", {}).values())
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=10)
        if p.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
            p.kill()
            p.join(timeout=5)
    # The pool's manager thread closes its wake-up pipe when it sees the workers gone;
    # wait for it, or the interpreter's exit hook can write to that pipe while it closes
    # and print "Exception ignored ... Bad file descriptor" under the command's one line.
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:
        manager.join(timeout=10)


class WorkerPool:
    """A pool of ``workers`` local processes kept between calls, each loading the engine once.

    For a caller that maps many small batches (a fit's population, step after step):
    :meth:`map` returns ``[fn(item) for item in items]`` in order, computed in the
    workers; the first error is raised here; on an interrupt the workers are stopped.
    Use it as a context manager, or call :meth:`close`.

    Parameters
    ----------
    workers
        Processes (at least 1).
    start
        ``"fork"`` (Linux: workers inherit what is loaded here and need not import the
        caller's ``__main__``) or ``"spawn"``; None: fork where :func:`can_fork`.
    engine
        The engine whose model each worker loads at its start (:func:`init_worker`);
        the work reaches it through the engine's own per-process accessor (e.g.
        :func:`greenpath.engines.pysd_engine.thread_local_model`).  None: no initializer.
    """

    def __init__(self, workers: int, start: str | None = None, engine: str | None = None) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = start or ("fork" if can_fork() else "spawn")
        if method not in ("spawn", "fork"):
            raise ValueError(f"start must be 'spawn' or 'fork', got {method!r}")
        self.workers = max(1, int(workers))
        context = multiprocessing.get_context(method)
        self._pool: Any = (
            ProcessPoolExecutor(max_workers=self.workers, mp_context=context) if engine is None
            else ProcessPoolExecutor(max_workers=self.workers, mp_context=context,
                                     initializer=init_worker, initargs=(engine,)))

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """Return ``[fn(item) for item in items]``, computed in the workers, in order."""
        if self._pool is None:
            raise ValueError("the worker pool is closed")
        try:
            return list(self._pool.map(fn, items))
        except BaseException as exc:
            if not isinstance(exc, Exception):  # an interrupt: stop the workers now
                _stop_pool(self._pool)
                self._pool = None
            raise

    def close(self) -> None:
        """Stop the workers after their current work (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> WorkerPool:
        """Return the pool itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the pool."""
        self.close()


def _run_local(work: Callable[..., Any], tasks: Iterable[dict], args: Sequence[Any],
               workers: int, run_here: bool, start: str, engine: str | None,
               finished: Finished, errors: list[str]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context(start)
    size = workers - 1 if run_here else workers
    pool = (ProcessPoolExecutor(max_workers=size, mp_context=context) if engine is None else
            ProcessPoolExecutor(max_workers=size, mp_context=context, initializer=init_worker,
                                initargs=(engine,)))
    try:
        if run_here:
            run_with_helpers(lambda task: pool.submit(work, task, *args),
                             lambda task: work(task, *args), tasks, workers - 1,
                             finished, errors)
        else:
            submit_bounded(lambda task: pool.submit(work, task, *args), tasks, 1 << 62,
                           2 * workers, lambda fs: wait(fs, return_when=FIRST_COMPLETED).done,
                           finished, errors)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _run_dask(work: Callable[..., Any], tasks: Iterable[dict], n_tasks: int,
              args: Sequence[Any], scheduler: str, connect_timeout: float, label: str,
              finished: Finished, errors: list[str]) -> None:
    from distributed import Client, LocalCluster, wait

    local = parse_scheduler(scheduler)
    cluster = None
    try:
        if local is not None:
            cluster = LocalCluster(n_workers=local, threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1")
            client = Client(cluster, timeout=f"{connect_timeout}s")
        else:
            client = Client(scheduler, timeout=f"{connect_timeout}s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise ParallelError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        tag = uuid.uuid4().hex[:8]

        def submit(task: dict) -> Any:
            return client.submit(work, task, *args, pure=False,
                                 key=f"greenpath-chunk-{label}-{task['k']}-{tag}")

        def wait_any(futures: list) -> Iterable:
            return wait(futures, return_when="FIRST_COMPLETED").done

        submit_bounded(submit, tasks, n_tasks, 2 * n_workers, wait_any, finished, errors)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_chunks(work: Callable[..., Any], tasks: Iterable[dict], n_tasks: int, *,
               args: Sequence[Any] = (), finished: Finished, errors: list[str],
               workers: int = 1, scheduler: str | None = None, run_here: bool = False,
               start: str = "spawn", engine: str | None = None,
               connect_timeout: float = 20.0, label: str = "") -> None:
    """Run ``work(task, *args)`` for every task: here, on local processes or on a Dask scheduler.

    Parameters
    ----------
    work
        A module-level function (it is pickled to the workers); its result is handed to
        ``finished``.
    tasks
        Dicts with the task's index under ``"k"``; consumed lazily (only as many are
        held as are in flight).
    n_tasks
        How many ``tasks`` yields.
    args
        Passed to every call after the task.
    finished
        ``finished(k, result)``, always called in this thread.
    errors
        Gets ``"chunk k: Type: message"`` per task that raised; the others carry on.
    workers
        Local processes; 1 (or ``n_tasks`` below 2) runs every task here, in order.
    scheduler
        A Dask scheduler address (``tcp://HOST:PORT``) or ``local:N`` (a local cluster
        of N processes for this call); ``workers`` is then ignored.
    run_here
        With local processes: this process runs tasks too, beside ``workers - 1``
        helpers (when the compiled model is warm here already).
    start
        ``"spawn"`` (workers start from a clean interpreter: no inherited threads or
        model) or ``"fork"`` (Linux: the workers inherit what is loaded here).
    engine
        The engine whose compiled model each local worker loads once at its start
        (:func:`init_worker`); None: no initializer.
    connect_timeout
        Seconds to wait for the Dask scheduler.
    label
        Part of the Dask task keys (e.g. a spec hash), so they name what they run.

    Raises
    ------
    ParallelError
        The scheduler is malformed or cannot be reached.
    """
    if start not in ("spawn", "fork"):
        raise ValueError(f"start must be 'spawn' or 'fork', got {start!r}")
    if n_tasks < 1:
        return
    if scheduler:
        _run_dask(work, tasks, n_tasks, args, scheduler, connect_timeout, label, finished, errors)
    elif workers > 1 and n_tasks > 1:
        _run_local(work, tasks, args, min(workers, n_tasks), run_here, start, engine,
                   finished, errors)
    else:
        for task in tasks:
            try:
                result = work(task, *args)
            except Exception as exc:  # noqa: BLE001 - recorded; the others carry on
                errors.append(f"chunk {task['k']}: {type(exc).__name__}: {exc}")
                continue
            finished(task["k"], result)

