"""The engines a calibration runs: the NumPy vector engine, or PySD as the fallback.

Both take a batch of parameter sets (other parameters at their registry defaults, never
an earlier calibration) and return the model outputs of the fit
(:data:`greenpath.calibration.series.OUTPUT_COLUMNS`) over the simulated years;
:func:`make_simulator` picks one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from greenpath.calibration.errors import CalibrationError
from greenpath.calibration.series import FIRST_YEAR, MODEL_FINAL_TIME, OUTPUT_COLUMNS
from greenpath.engines.parallel import WorkerPool
from greenpath.model import registry as reg
from greenpath.model.mdl import TIME_STEP

__all__ = [
    "PysdSimulator",
    "VectorSimulator",
    "make_simulator",
]


def _final_time(final_time: int | None) -> int:
    """Return a simulator's last year: ``final_time`` checked against the model's years."""
    if final_time is None:
        return MODEL_FINAL_TIME
    final_time = int(final_time)
    if not FIRST_YEAR < final_time <= MODEL_FINAL_TIME:
        raise CalibrationError(
            f"final time {final_time} is not allowed; allowed: a year {FIRST_YEAR + 1}-{MODEL_FINAL_TIME} "
            "(the model's INITIAL and FINAL TIME)"
        )
    return final_time


def _base_params() -> dict[str, float]:
    """Registry defaults (the prior): a fit never starts from an earlier calibration."""
    return reg.defaults()


class VectorSimulator:
    """The NumPy vector engine (:mod:`greenpath.engines.vector`): a whole batch in one pass.

    Parameters
    ----------
    workers : int
        Processes the engine splits a large batch over (1 = in-process).
    final_time : int, optional
        Last simulated year (default: the model's FINAL TIME; a calibration passes
        :func:`greenpath.calibration.series.fit_final_time` of its series).
    """

    name = "vector"

    def __init__(self, workers: int = 1, final_time: int | None = None):
        from greenpath.engines.vector_loader import vector_model

        self._model = vector_model()  # the process's compiled model, shared with ensembles
        # the fit's outputs alone: the model compiled for their dependency cone (the equations
        # they need, values bit for bit the full model's), about a quarter less CPU a call;
        # every other set of columns (rare calls) runs on the full model
        self._cone = vector_model(outputs=OUTPUT_COLUMNS)
        self.workers = workers
        self.final_time = _final_time(final_time)
        self.base = _base_params()
        self.n_runs = 0
        self.years = np.arange(FIRST_YEAR, self.final_time + 1)

    def simulate(self, params: Mapping[str, np.ndarray], n: int,
                 columns: Sequence[str] = OUTPUT_COLUMNS) -> dict[str, np.ndarray]:
        """Run ``n`` parameter sets; other parameters at their registry defaults.

        ``columns`` names the model outputs returned (default :data:`greenpath.calibration.series.OUTPUT_COLUMNS`).
        """
        full: dict[str, Any] = dict(self.base)
        full.update(params)
        model = self._cone if tuple(columns) == OUTPUT_COLUMNS else self._model
        out = model.simulate(
            full, n=n, return_columns=list(columns), time_step=TIME_STEP, saveper=1.0,
            final_time=float(self.final_time), initial_time=float(FIRST_YEAR),
            workers=self.workers if n >= 512 else 1,
        )
        self.n_runs += n
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _pysd_run_many(args: tuple[list[dict[str, float]], int, tuple[str, ...]]) -> np.ndarray:
    """Run one chunk in a worker of the parallel layer, on the PySD model it loaded at its start."""
    from greenpath.engines.pysd_engine import thread_local_model

    batch, final_time, columns = args
    return _run_pysd_batch(thread_local_model(), batch, final_time, columns)


def _run_pysd_batch(model: Any, batch: list[dict[str, float]], final_time: int,
                    columns: Sequence[str] = OUTPUT_COLUMNS) -> np.ndarray:
    """(len(batch), n_outputs, T) array from single PySD runs."""
    rows = []
    for params in batch:
        frame = model.run(
            params=params, return_columns=list(columns), final_time=final_time,
            time_step=TIME_STEP, saveper=1.0, validate=False,
        ).frame
        rows.append(frame[list(columns)].to_numpy().T)
    return np.stack(rows)


class PysdSimulator:
    """PySD engine (:class:`greenpath.engines.pysd_engine.JiaozuoModel`), one run per set.

    Parameters
    ----------
    workers : int
        With more than one, batches are split over that many processes, each loading
        its own model (PySD models cannot be pickled or shared).
    final_time : int, optional
        Last simulated year (default: the model's FINAL TIME).
    """

    name = "pysd"

    def __init__(self, workers: int = 1, final_time: int | None = None):
        from greenpath.engines.pysd_engine import JiaozuoModel

        self.final_time = _final_time(final_time)
        self.years = np.arange(FIRST_YEAR, self.final_time + 1)
        self.base = _base_params()
        self.n_runs = 0
        self.workers = max(1, int(workers))
        self._model = JiaozuoModel() if self.workers == 1 else None
        self._pool: WorkerPool | None = None
        if self.workers > 1:
            # the one parallel layer: fork on Linux (workers need not re-import the caller's
            # __main__), each worker loading its own PySD model once (they cannot be shared)
            self._pool = WorkerPool(self.workers, engine="pysd")

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown order varies
        """Stop the worker processes (if any), ignoring errors at teardown."""
        with contextlib.suppress(Exception):  # best effort at teardown
            self.close()

    def simulate(self, params: Mapping[str, np.ndarray], n: int,
                 columns: Sequence[str] = OUTPUT_COLUMNS) -> dict[str, np.ndarray]:
        """Run ``n`` parameter sets one by one (or in the worker pool); ``columns`` as returned."""
        columns = tuple(columns)
        batch = []
        for i in range(n):
            p = dict(self.base)
            p.update({k: float(np.broadcast_to(v, (n,))[i]) for k, v in params.items()})
            batch.append(p)
        if self._pool is not None:
            chunks = [batch[i :: self.workers] for i in range(self.workers)]
            parts = self._pool.map(_pysd_run_many, [(c, self.final_time, columns) for c in chunks if c])
            arr = np.empty((n, len(columns), len(self.years)))
            for w, part in enumerate(parts):
                arr[w :: self.workers] = part
        else:
            arr = _run_pysd_batch(self._model, batch, self.final_time, columns)
        self.n_runs += n
        return {c: arr[:, i, :] for i, c in enumerate(columns)}


def make_simulator(engine: str = "auto", workers: int = 1,
                   final_time: int | None = None) -> VectorSimulator | PysdSimulator:
    """Return the vector engine when it loads (``auto``/``vector``), else PySD.

    Parameters
    ----------
    engine : {"auto", "vector", "pysd"}
        Which engine to use.
    workers : int
        Worker processes (vector engine: for large batches; PySD: a process pool).
    final_time : int, optional
        Last simulated year (default: the model's FINAL TIME).
    """
    if engine not in ("auto", "vector", "pysd"):
        raise CalibrationError(f"engine {engine!r} is not known; allowed: auto, vector, pysd")
    final_time = _final_time(final_time)
    if engine in ("auto", "vector"):
        try:
            return VectorSimulator(workers=workers, final_time=final_time)
        except Exception as exc:  # the vector engine refuses some constructs
            if engine == "vector":
                raise CalibrationError(f"the vector engine cannot run the model: {exc}") from exc
    return PysdSimulator(workers=workers, final_time=final_time)
