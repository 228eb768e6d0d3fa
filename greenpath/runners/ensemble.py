"""Ensembles of model runs: one API over the vector engine and PySD.

Many runs of the Jiaozuo model (Monte Carlo, sensitivity analysis, scenario
discovery, the app's uncertainty bands, batch chunks) go through
:func:`run_many`, which validates every input against the parameter registry
and picks an engine:

* the **vector engine** (:mod:`greenpath.engines.vector`, NumPy, all runs in one pass,
  equal to PySD to rounding: bit for bit almost everywhere, one ulp apart where
  NumPy evaluates ``x ** 0.5`` as ``sqrt`` and Python as ``pow``) -- 10,000 runs
  in about a third of a second;
* **PySD** (:class:`greenpath.engines.pysd_engine.JiaozuoModel`, one run after the
  other, about 20-30 ms each) -- the reference implementation.

Time-varying lever tables
-------------------------
PySD's engine lets a lever follow a year table (``time_varying={name: (years,
values)}``; the model interpolates linearly in ``data year`` and holds the end
values flat).  The vector engine varies constants only, so for a run with
tables this module derives a variant of ``model/jiaozuo.mdl`` in which each
tabled lever ``X = value`` becomes ``X = X year table(data year)`` plus a
lookup ``X year table`` -- the very interpolation PySD's engine performs
(``numpy.interp`` of ``data year`` over the table) -- and compiles that
variant once per set of tabled names (cached on disk under
:func:`greenpath.engines.pysd_engine.cache_root`).  The table values are passed as
lookup data, so changing them never regenerates anything.  The tests check
the variant against PySD run by run.

Engine choice (``engine="auto"``): the vector engine, except for a handful of
runs (at most :data:`AUTO_PYSD_MAX_RUNS`) with year tables, where PySD is
cheaper than compiling a table variant the first time.  When the vector engine
refuses the model (:class:`~greenpath.engines.vector.UnsupportedConstructError`: a
construct it does not implement, or a tabled lever that is no longer a plain
constant) or fails while running, ``auto`` warns (``RuntimeWarning`` with the
reason) and runs PySD; the result's ``engine`` and ``engine_fallback`` say so.
:func:`bands`, :func:`projection_uncertainties`, the sensitivity analysis, the
scenario discovery, the wedges and ``greenpath batch`` all use ``auto``.

Model version
-------------
Results carry the SHA-256 of the ``.mdl`` their engine was built from
(``model_sha256``), not the hash of the file on disk at the time of the call.
:func:`vector_model` compares the two on every call and recompiles when the
``.mdl`` has changed, so a long-lived process never serves an old model.

Uncertainty sampling and bands
------------------------------
:func:`sample_parameters` / :func:`sample_uncertainties` draw seeded Latin
hypercube (``scipy.stats.qmc.LatinHypercube``'s algorithm, bit-identical, without
importing SciPy) or plain random samples across
the registry's ``[min, max]`` ranges.  :func:`bands` holds the levers at given
settings, samples uncertainties and returns P10/P50/P90 (or other percentiles)
per year -- the app's shaded bands.  By default it samples the *projection
uncertainties* (:func:`projection_uncertainties`): the uncertainties whose
whole registry range leaves the recorded history 2005-2020 of every headline
indicator unchanged (GDP growth after the last recorded year, the grid
emission-factor path, population, adjustment times, ...).  The others (initial
shares and intensities, history capacity factors, ...) are pinned by the
calibration to the recorded history; sampling them across their full prior
ranges would draw bands that disagree with the history the plan's 2020 base
comes from.  Pass ``uncertainties="all"`` (or a list of names) to sample
them anyway.

Threads and processes
---------------------
One :class:`~greenpath.engines.vector.VectorModel` per process and per set of tabled
names (:func:`vector_model`), created on first use under a lock and rebuilt
when the .mdl changes.  The generated module keeps no mutable state between
calls: its module-level
tables (``CONSTANTS``, ``LOOKUPS``, ``VARIABLES``) are only read, every call
builds its own arrays, and NumPy's error state set around the integration is
a context variable (thread-local) in NumPy 2, so calls from several threads
(Streamlit) are safe without a lock; the tests run threads against a serial
reference.  ``workers > 1`` forks processes: do not use it from a threaded
server.  The PySD path uses one model per thread
(:func:`greenpath.engines.pysd_engine.thread_local_model`).

Public API
----------
``run_many(param_sets, return_columns=None, engine="auto", time_varying=None,
*, output="dataset", workers=1) -> xarray.Dataset | EnsembleArrays``
``sample_parameters(names, n, seed, method="lhs") -> DataFrame``
``sample_uncertainties(n, seed, names=None, method="lhs") -> DataFrame``
``projection_uncertainties() -> list[str]``
``bands(base_params, n=500, seed=DEFAULT_SEED, columns=None, percentiles=(10, 50, 90),
time_varying=None, uncertainties=None) -> DataFrame``
``vector_model(table_names=()) -> VectorModel``
``run_specs(specs, return_columns=None, workers=1, info=None) -> (cube, years,
columns)`` (batch run specs, year tables included, grouped into vector-engine
calls)
``validate_param_sets(param_sets) -> DataFrame``
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import pandas as pd

from greenpath.engines.base import ENGINES
from greenpath.engines.vector_loader import (
    _mdl_sha256,
    _table_lookup,
    vector_model,
)
from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH
from greenpath.scenarios.settings import Table

__all__ = [
    "AUTO_PYSD_MAX_RUNS",
    "DEFAULT_SEED",
    "ENGINES",
    "EnsembleArrays",
    "EnsembleError",
    "bands",
    "choose_engine",
    "latin_hypercube",
    "read_latin_hypercube",
    "projection_uncertainties",
    "run_many",
    "run_specs",
    "sample_parameters",
    "sample_uncertainties",
    "validate_param_sets",
    "validate_tables",
    "vector_model",
]

#: With year tables and at most this many runs, ``engine="auto"`` uses PySD.
AUTO_PYSD_MAX_RUNS = 4
#: Default seed of samples and bands (the seed plan's date).
DEFAULT_SEED = 20211202
SAMPLING_METHODS = ("lhs", "random")


class EnsembleError(ValueError):
    """Bad input to an ensemble (unknown name, value out of range, bad shape)."""


# ---------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------

def choose_engine(engine: str, n: int, has_tables: bool) -> str:
    """Resolve ``engine`` (``auto``/``vector``/``pysd``) for ``n`` runs.

    ``auto`` gives ``pysd`` only for at most :data:`AUTO_PYSD_MAX_RUNS` runs
    with year tables, ``vector`` otherwise.
    """
    if engine not in ENGINES:
        raise EnsembleError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    return "pysd" if has_tables and n <= AUTO_PYSD_MAX_RUNS else "vector"


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _check_name(name: object, where: str) -> reg.Parameter:
    registry = reg.load_registry()
    if not isinstance(name, str) or name not in registry:
        raise EnsembleError(
            f"{where}: unknown parameter {name!r}{reg.suggest(str(name), registry)}; "
            "allowed: the names in model/parameters.csv (`greenpath vars --kind lever` lists them)"
        )
    return registry[name]


def validate_param_sets(
    param_sets: pd.DataFrame | Mapping[str, Any], where: str = "param_sets"
) -> pd.DataFrame:
    """Check an ensemble's inputs against the registry; return them as a float DataFrame.

    Parameters
    ----------
    param_sets
        A DataFrame (rows = runs, columns = registry names) or a mapping
        ``name -> scalar or 1-D array`` (scalars apply to every run; all arrays
        must have the same length).
    where
        Prefix of error messages.

    Returns
    -------
    pandas.DataFrame
        One row per run, float columns; the DataFrame's index is kept.

    Raises
    ------
    EnsembleError
        Naming the column, the first offending row and value and the allowed range.
    """
    if isinstance(param_sets, pd.DataFrame):
        frame = param_sets
    elif isinstance(param_sets, Mapping):
        lengths = {k: np.shape(v)[0] for k, v in param_sets.items() if np.ndim(v) >= 1}
        for k, v in param_sets.items():
            if np.ndim(v) > 1:
                raise EnsembleError(f"{where}[{k!r}]: expected a scalar or a 1-D array, got shape {np.shape(v)}")
        if len(set(lengths.values())) > 1:
            raise EnsembleError(f"{where}: arrays of different lengths {lengths}; every run needs one value")
        n = next(iter(lengths.values()), 1)
        if n == 0:
            raise EnsembleError(f"{where}: no runs (arrays of length 0)")
        frame = pd.DataFrame({k: np.broadcast_to(np.asarray(v, dtype=object), (n,)) for k, v in param_sets.items()},
                             index=pd.RangeIndex(n))
    else:
        raise EnsembleError(
            f"{where}: expected a pandas DataFrame or a dict of arrays, got {type(param_sets).__name__}"
        )
    if len(frame) == 0:
        raise EnsembleError(f"{where}: no runs (0 rows)")
    if frame.columns.duplicated().any():
        dup = list(frame.columns[frame.columns.duplicated()])
        raise EnsembleError(f"{where}: duplicate columns {dup}")
    out = {}
    for column in frame.columns:
        p = _check_name(column, where)
        try:
            values = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=float)
        except (TypeError, ValueError):
            bad = next(v for v in frame[column] if not _is_number(v))
            raise EnsembleError(
                f"{where}[{column!r}]: {bad!r} is not a number; allowed {p.min} to {p.max} {p.unit}"
            ) from None
        bad_mask = ~np.isfinite(values) | (values < p.min) | (values > p.max)
        if bad_mask.any():
            i = int(np.argmax(bad_mask))
            raise EnsembleError(
                f"{where}[{column!r}] row {frame.index[i]!r}: {float(values[i])!r} is outside the allowed range "
                f"{p.min} to {p.max} {p.unit} ({int(bad_mask.sum())} of {len(values)} runs out of range)"
            )
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def validate_tables(time_varying: Mapping[str, Table] | None, where: str = "time_varying") -> dict[str, tuple]:
    """Check year tables ``{name: (years, values)}``; return them sorted by year as arrays.

    Years must lie in 2005-2035 without repeats; values in the registry range.
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, table in (time_varying or {}).items():
        p = _check_name(name, where)
        try:
            years, values = table
            xs = np.asarray(list(years), dtype=float)
            ys = np.asarray(list(values), dtype=float)
        except (TypeError, ValueError):
            raise EnsembleError(
                f"{where}[{name!r}]: expected (years, values), two sequences of numbers"
            ) from None
        if xs.ndim != 1 or xs.shape != ys.shape or xs.size == 0:
            raise EnsembleError(
                f"{where}[{name!r}]: years and values must be 1-D of equal, non-zero length "
                f"(got {xs.shape} and {ys.shape})"
            )
        if not np.all(np.isfinite(xs)) or xs.min() < 2005 or xs.max() > 2035:
            raise EnsembleError(f"{where}[{name!r}]: years {xs.tolist()} must lie in 2005 to 2035")
        if np.unique(xs).size != xs.size:
            raise EnsembleError(f"{where}[{name!r}]: repeated years {xs.tolist()}")
        for value in ys:
            try:
                p.check(value, f"{where}[{name!r}]")
            except reg.RegistryError as exc:
                raise EnsembleError(str(exc)) from None
        order = np.argsort(xs, kind="stable")
        out[name] = (xs[order], ys[order])
    return out


def _check_columns(columns: Sequence[str] | None, known: Iterable[str]) -> list[str]:
    if columns is None:
        return list(indicators.HEADLINE)
    if isinstance(columns, str):
        raise EnsembleError("return_columns must be a list of variable names, not a string")
    known = set(known)
    for name in columns:
        if name not in known:
            raise EnsembleError(
                f"return_columns: unknown variable {name!r}{reg.suggest(str(name), known)}; "
                "`greenpath vars` lists them"
            )
    if len(set(columns)) != len(columns):
        raise EnsembleError(f"return_columns: repeated names in {list(columns)}")
    return list(columns)


def _output_names(vm: Any) -> set[str]:
    return {m["py_name"] for m in vm.variables if m["kind"] not in ("lookup", "control", "time")}


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


@dataclass
class EnsembleArrays:
    """Results of ``n`` runs as plain arrays.

    Attributes
    ----------
    values
        ``variable -> array (n, len(years))``.
    years
        Saved years (int).
    runs
        The run labels (the index of the input DataFrame).
    engine
        ``"vector"`` or ``"pysd"`` (the engine that ran them).
    units
        ``variable -> unit`` as written in the .mdl.
    model_sha256
        SHA-256 of the ``.mdl`` the engine was compiled (vector) or translated
        (PySD) from -- not of the file on disk now, which may have changed since.
    fallback
        Why ``engine="auto"`` ran PySD instead of the vector engine ("" if it
        did not fall back).
    """

    values: dict[str, np.ndarray]
    years: np.ndarray
    runs: pd.Index
    engine: str
    units: dict[str, str] = field(default_factory=dict)
    model_sha256: str = ""
    fallback: str = ""

    def to_dataset(self) -> Any:
        """Return the same results as an ``xarray.Dataset`` with dims ``(run, year)``."""
        import xarray as xr

        from greenpath.model.mdl import model_hash

        ds = xr.Dataset(coords={"run": np.asarray(self.runs), "year": self.years})
        for name, arr in self.values.items():
            ds[name] = xr.DataArray(arr, dims=("run", "year"), attrs={"units": self.units.get(name, "")})
        ds.attrs.update({
            "engine": self.engine,
            "model": MDL_PATH.name,
            "model_sha256": self.model_sha256 or model_hash(MDL_PATH),
            "calibration_sha256_12": reg.calibration_id(),
            "n_runs": len(self.runs),
        })
        if self.fallback:
            ds.attrs["engine_fallback"] = self.fallback
        return ds

    def frame(self, run: int = 0) -> pd.DataFrame:
        """One run as a years x variables DataFrame (index ``year``), as RunResult.frame."""
        data = {name: arr[run] for name, arr in self.values.items()}
        return pd.DataFrame(data, index=pd.Index(self.years, name="year"))


def run_many(
    param_sets: pd.DataFrame | Mapping[str, Any],
    return_columns: Sequence[str] | None = None,
    engine: Literal["auto", "vector", "pysd"] = "auto",
    time_varying: Mapping[str, Table] | None = None,
    *,
    output: Literal["dataset", "arrays"] = "dataset",
    workers: int = 1,
) -> Any:
    """Run an ensemble of constant-parameter variations of the model.

    Parameters
    ----------
    param_sets
        Rows = runs, columns = registry parameter names (a DataFrame), or a
        mapping ``name -> scalar or (n,) array``.  Parameters not given take
        their effective defaults (registry defaults overlaid by the calibration).
    return_columns
        Python names of model variables to return (default
        :data:`greenpath.model.indicators.HEADLINE`).
    engine
        ``"auto"`` (see :func:`choose_engine`; when the vector engine refuses
        the model or fails, a ``RuntimeWarning`` says why and the runs go to
        PySD), ``"vector"`` (its errors are raised) or ``"pysd"``.
    time_varying
        Year tables ``{name: (years, values)}`` shared by every run (a lever
        follows the table instead of a constant).  A name may not also be a
        column of ``param_sets``.
    output
        ``"dataset"`` for an ``xarray.Dataset`` (dims ``run`` x ``year``, units
        in each variable's attrs, engine and model hash in the dataset's attrs)
        or ``"arrays"`` for :class:`EnsembleArrays`.
    workers
        Processes of the vector engine (forked; not from a threaded server).

    Returns
    -------
    xarray.Dataset or EnsembleArrays

    Raises
    ------
    EnsembleError
        On an unknown or out-of-range parameter, a bad table, an unknown
        output variable, an unknown engine or output kind.
    """
    if output not in ("dataset", "arrays"):
        raise EnsembleError(f"output {output!r} is not one of 'dataset', 'arrays'")
    frame = validate_param_sets(param_sets)
    tables = validate_tables(time_varying)
    both = sorted(set(tables) & set(frame.columns))
    if both:
        raise EnsembleError(
            f"{both} given both as param_sets columns and as time_varying tables; give each once"
        )
    chosen = choose_engine(engine, len(frame), bool(tables))
    if chosen == "vector":
        try:
            result = _run_vector(frame, return_columns, tables, workers)
        except EnsembleError:
            raise  # a bad input, not an engine failure: PySD would refuse it too
        except Exception as exc:
            if engine != "auto":
                raise
            reason = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"vector engine unavailable ({reason}); running the {len(frame)} runs on PySD instead",
                RuntimeWarning, stacklevel=2,
            )
            result = _run_pysd(frame, return_columns, tables)
            result.fallback = reason
    else:
        result = _run_pysd(frame, return_columns, tables)
    return result.to_dataset() if output == "dataset" else result


def _vector_params(frame: pd.DataFrame, table_names: Iterable[str]) -> dict[str, Any]:
    """Every registry parameter for the vector engine: effective defaults, then the frame's columns."""
    skip = set(table_names)
    params: dict[str, Any] = {k: v for k, v in reg.effective_defaults().items() if k not in skip}
    for column in frame.columns:
        params[column] = frame[column].to_numpy(dtype=float)
    return params


def _run_vector(frame: pd.DataFrame, return_columns, tables, workers: int) -> EnsembleArrays:
    vm = vector_model(tables)
    columns = _check_columns(return_columns, _output_names(vm))
    params = _vector_params(frame, tables)
    lookups = {_table_lookup(name): (xs, ys) for name, (xs, ys) in tables.items()}
    # Ensembles run on the vector backend at any size: the scalar backend agrees with it to
    # about 1e-12, not bit for bit, so a run's result would otherwise depend on how many
    # runs share its call (a batch chunked differently must give identical results).
    raw = vm.simulate(params, len(frame), lookups or None, return_columns=columns, workers=workers,
                      backend="vector")
    years = _years(vm.times())
    units = {m["py_name"]: m["units"] or "" for m in vm.variables}
    return EnsembleArrays(
        values={c: np.ascontiguousarray(raw[c]) for c in columns}, years=years, runs=frame.index,
        engine="vector", units={c: units.get(c, "") for c in columns}, model_sha256=vm.source_sha256,
    )


def _years(times: np.ndarray) -> np.ndarray:
    times = np.asarray(times, dtype=float)
    if not np.allclose(times, np.round(times)):  # pragma: no cover - the model saves yearly
        raise EnsembleError(f"saved times {times.tolist()} are not whole years")
    return np.round(times).astype(int)


def _run_pysd(frame: pd.DataFrame, return_columns, tables) -> EnsembleArrays:
    from greenpath.engines.base import ModelError
    from greenpath.engines.pysd_engine import thread_local_model

    model = thread_local_model()
    columns = _check_columns(return_columns, model.units)
    try:
        model.check_names(columns)
    except ModelError as exc:
        raise EnsembleError(str(exc)) from None
    records = frame.to_dict("records")
    out: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    years = None
    for params in records:
        result = model.run(params=params, time_varying=tables or None, return_columns=columns, validate=False)
        years = result.frame.index.to_numpy()
        for c in columns:
            out[c].append(result.frame[c].to_numpy(dtype=float))
    values = {c: np.vstack(out[c]) for c in columns}
    return EnsembleArrays(
        values=values, years=np.asarray(years, dtype=int), runs=frame.index, engine="pysd",
        units={c: model.units.get(c, "") for c in columns}, model_sha256=model.hash,
    )


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


def sample_parameters(
    names: Sequence[str] | Mapping[str, tuple[float, float]],
    n: int,
    seed: int | None = DEFAULT_SEED,
    method: Literal["lhs", "random"] = "lhs",
) -> pd.DataFrame:
    """Seeded sample of registry parameters, uniform across their ranges.

    Parameters
    ----------
    names
        Registry names (sampled across the registry's ``[min, max]``) or a
        mapping ``name -> (low, high)`` inside the registry range.
    n
        Number of samples (rows).
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same sample.
    method
        ``"lhs"``: Latin hypercube (the algorithm of
        ``scipy.stats.qmc.LatinHypercube``, see :func:`latin_hypercube`: each
        range cut into ``n`` equal strata, one point per stratum and
        dimension); ``"random"``: independent uniform draws.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows, one column per name (in the given order).
    """
    if method not in SAMPLING_METHODS:
        raise EnsembleError(f"method {method!r} is not one of {', '.join(SAMPLING_METHODS)}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise EnsembleError(f"n = {n!r}: the number of samples must be a positive integer")
    if isinstance(names, str):
        raise EnsembleError("names must be a list of parameter names, not a string")
    ranges = names if isinstance(names, Mapping) else {name: None for name in names}
    if not ranges:
        raise EnsembleError("no parameters to sample")
    bounds = []
    for name, given in ranges.items():
        p = _check_name(name, "sample")
        lo, hi = (p.min, p.max) if given is None else (float(given[0]), float(given[1]))
        if not (p.min <= lo <= hi <= p.max):
            raise EnsembleError(
                f"sample {name!r}: range {lo} to {hi} must lie within the registry range {p.min} to {p.max} {p.unit}"
            )
        bounds.append((lo, hi))
    rng = np.random.default_rng(seed)
    d = len(bounds)
    unit = latin_hypercube(n, d, rng) if method == "lhs" else rng.random((n, d))
    lows = np.array([b[0] for b in bounds])
    highs = np.array([b[1] for b in bounds])
    values = lows + unit * (highs - lows)
    # Rounding of lo + u*(hi-lo) may step a hair past hi.
    values = np.clip(values, lows, highs)
    return pd.DataFrame(values, columns=list(ranges))


@overload
def latin_hypercube(n: int, d: int, rng: np.random.Generator, *, store: None = None,
                    block: int = 65536, fsync: bool = True) -> np.ndarray: ...


@overload
def latin_hypercube(n: int, d: int, rng: np.random.Generator, *, store: str | os.PathLike,
                    block: int = 65536, fsync: bool = True) -> Path: ...


def latin_hypercube(n: int, d: int, rng: np.random.Generator, *,
                    store: str | os.PathLike | None = None, block: int = 65536,
                    fsync: bool = True) -> np.ndarray | Path:
    """``scipy.stats.qmc.LatinHypercube(d, rng=rng).random(n)``, computed without SciPy.

    The same algorithm, draw for draw (SciPy 1.17's ``_random_lhs`` with
    ``scramble=True``, ``strength=1``, no optimisation, drawing from a child
    generator spawned from ``rng`` as SciPy's QMC engines do): uniform offsets
    for all points, then one shuffled permutation of the strata per
    dimension, so the samples are bit-identical to SciPy's for the same
    generator (a test checks this).  Importing ``scipy.stats`` takes 1-2 s,
    which the app's one-second budget for a cold bands() call cannot afford.

    This is the project's one Latin hypercube: the app's bands, the ensembles
    and ``greenpath batch --monte-carlo`` all draw from it.

    Parameters
    ----------
    n, d
        Points and dimensions.
    rng
        The generator (a child is spawned from it, as SciPy does).
    store
        ``None`` (default): return the sample as an ``(n, d)`` array.  A file
        path: write the sample there instead, dimension after dimension
        (raw float64, shape ``(d, n)``, C order: read rows ``a:b`` of dimension
        ``i`` with :func:`read_latin_hypercube`), and return the path.  The
        values are the same; memory stays at one dimension's permutation (8
        bytes per point) plus ``block`` points, whatever ``n`` is.
    block
        Points drawn at a time when writing to ``store``.
    fsync
        Force the written file to disk before returning (default).  False for a
        scratch file its writer regenerates whenever it is needed again (the batch's
        sample: 0.8 GB at a million runs, which the disk need not hold durably).
    """
    rng = rng.spawn(1)[0]
    if store is None:
        offsets = rng.uniform(size=(n, d))
        perms = np.tile(np.arange(1, n + 1), (d, 1))
        for i in range(d):
            rng.shuffle(perms[i, :])
        return (perms.T - offsets) / n
    path = Path(store)
    item = np.dtype(np.float64).itemsize
    with open(path, "w+b") as fh:
        fh.truncate(n * d * item)
        # The offsets, drawn row-major as above, in blocks (the same stream of draws) ...
        for start in range(0, n, block):
            rows = rng.uniform(size=(min(block, n - start), d))
            for i in range(d):
                fh.seek((i * n + start) * item)
                fh.write(np.ascontiguousarray(rows[:, i]).tobytes())
        # ... then each dimension's permutation of the strata.
        for i in range(d):
            perm = np.arange(1, n + 1)
            rng.shuffle(perm)
            fh.seek(i * n * item)
            offsets = np.frombuffer(fh.read(n * item), dtype=np.float64)
            fh.seek(i * n * item)
            fh.write(((perm - offsets) / n).tobytes())
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    return path


def read_latin_hypercube(store: str | os.PathLike, n: int, d: int, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` (shape ``(stop - start, d)``) of a sample written by :func:`latin_hypercube`."""
    item = np.dtype(np.float64).itemsize
    out = np.empty((stop - start, d))
    with open(store, "rb") as fh:
        for i in range(d):
            fh.seek((i * n + start) * item)
            out[:, i] = np.frombuffer(fh.read((stop - start) * item), dtype=np.float64)
    return out


def sample_uncertainties(
    n: int,
    seed: int | None = DEFAULT_SEED,
    names: Sequence[str] | str | None = None,
    method: Literal["lhs", "random"] = "lhs",
) -> pd.DataFrame:
    """Seeded sample of the registry's uncertainties across their ranges.

    Parameters
    ----------
    n, seed, method
        As :func:`sample_parameters`.
    names
        ``None`` or ``"all"``: every uncertainty of the registry;
        ``"projection"``: :func:`projection_uncertainties`; or a list of names
        (each must be of kind uncertainty).
    """
    chosen = _uncertainty_names(names)
    return sample_parameters(chosen, n, seed, method)


def _uncertainty_names(names: Sequence[str] | str | None) -> list[str]:
    uncertainties = reg.uncertainties()
    if names is None or names == "all":
        chosen = [k for k, p in uncertainties.items() if p.max > p.min]
    elif names == "projection":
        chosen = projection_uncertainties()
    elif isinstance(names, str):
        raise EnsembleError(f"uncertainties {names!r}: give 'all', 'projection' or a list of names")
    else:
        chosen = list(names)
        for name in chosen:
            p = _check_name(name, "uncertainties")
            if p.kind != "uncertainty":
                raise EnsembleError(f"uncertainties: {name!r} is a {p.kind}, not an uncertainty")
    return chosen


_PROJECTION: dict[tuple[str, str], list[str]] = {}
#: Posterior draws at which :func:`projection_uncertainties` also checks the history.
PROJECTION_CHECK_DRAWS = 8


def projection_uncertainties() -> list[str]:
    """Uncertainties whose registry range leaves the recorded history unchanged.

    Each uncertainty is set to its registry minimum and maximum (all others at
    their effective defaults, and again at :data:`PROJECTION_CHECK_DRAWS` draws of
    the calibration's posterior) and kept when every headline indicator
    (:data:`greenpath.model.indicators.HEADLINE`) of every saved year up to
    2020 equals the run it was varied from exactly.  Computed once per process, model
    and calibration (one ``run_many(engine="auto")`` call of about 2 runs per
    uncertainty on the vector engine, or on PySD if it falls back).
    """
    key = (_mdl_sha256(), reg.calibration_id())
    if key in _PROJECTION:
        return list(_PROJECTION[key])
    uncertainties = [k for k, p in reg.uncertainties().items() if p.max > p.min]
    n = 2 * len(uncertainties) + 1
    defaults = reg.effective_defaults()
    # The test runs at the point calibration and at a few posterior draws: an uncertainty
    # can be inert at the point (e.g. the coal-switching shares while the calibrated
    # autonomous switching sits at 0) and move the history elsewhere in the posterior.
    from greenpath.calibration import posterior

    draws, _ = posterior.draw_rows(PROJECTION_CHECK_DRAWS, DEFAULT_SEED)
    bases = [dict(defaults)]
    if draws is not None:
        bases += [{**defaults, **row} for row in draws.to_dict("records")]
    params = {k: np.concatenate([np.full(n, b[k]) for b in bases]) for k in {*uncertainties, *bases[-1]}}
    for j in range(len(bases)):
        for i, name in enumerate(uncertainties):
            p = reg.lookup(name)
            params[name][j * n + 2 * i + 1] = p.min
            params[name][j * n + 2 * i + 2] = p.max
    result = run_many(params, list(indicators.HEADLINE), engine="auto", output="arrays")
    history = result.years <= indicators.BASE_YEAR
    kept = []
    for i, name in enumerate(uncertainties):
        same = True
        for j in range(len(bases)):
            rows = [j * n + 2 * i + 1, j * n + 2 * i + 2]
            same = same and all(np.array_equal(arr[rows][:, history],
                                               np.broadcast_to(arr[j * n, history], (2, history.sum())))
                                for arr in result.values.values())
        if same:
            kept.append(name)
    _PROJECTION[key] = kept
    return list(kept)


# ---------------------------------------------------------------------------
# Bands
# ---------------------------------------------------------------------------


def bands(
    base_params: Mapping[str, float] | None,
    n: int = 500,
    seed: int | None = DEFAULT_SEED,
    columns: Sequence[str] | None = None,
    percentiles: Sequence[float] = (10, 50, 90),
    time_varying: Mapping[str, Table] | None = None,
    uncertainties: Sequence[str] | str | None = None,
    method: Literal["lhs", "random"] = "lhs",
) -> pd.DataFrame:
    """Percentile bands of model outputs: levers fixed, uncertainties sampled.

    Parameters
    ----------
    base_params
        The settings of the run (levers, and any uncertainty the user fixed):
        ``name -> value``.  Every name given here is held at its value and never
        sampled; everything else not sampled takes its effective default.
    n
        Number of sampled runs.
    seed
        Seed of the Latin hypercube; the same seed gives identical bands.
    columns
        Variables (default :data:`greenpath.model.indicators.HEADLINE`).
    percentiles
        Percentiles in [0, 100], increasing (default P10, P50, P90).
    time_varying
        Year tables ``{name: (years, values)}`` of the scenario (vector engine
        with a table variant, see the module docstring).  The runs go through
        ``run_many(engine="auto")``: PySD if the vector engine is unavailable.
    uncertainties
        What to sample: ``None`` or ``"projection"`` (default,
        :func:`projection_uncertainties`), ``"all"``, or a list of names.
    method
        ``"lhs"`` or ``"random"``.

    Returns
    -------
    pandas.DataFrame
        Index ``year``; columns a MultiIndex ``(variable, percentile)``.
        ``attrs`` holds ``sampled`` (the sampled names), ``n``, ``seed``,
        ``posterior`` (the calibrated parameters that took posterior draws) and
        ``posterior_source`` (where the draws come from, or why there are none).

    Notes
    -----
    The calibrated parameters that are neither held nor sampled take ``n`` seeded
    draws of the calibration's posterior sample
    (:func:`greenpath.calibration.posterior.draw_rows`), so the bands carry the
    calibration's uncertainty together with the projection uncertainties. Without a
    usable posterior (none stored, or stale) they stay at the point calibration and a
    ``RuntimeWarning`` says why.
    """
    pct = np.asarray(list(percentiles), dtype=float)
    if pct.ndim != 1 or pct.size == 0 or np.any(~np.isfinite(pct)) or pct.min() < 0 or pct.max() > 100:
        raise EnsembleError(f"percentiles {list(percentiles)} must be numbers in 0 to 100")
    if np.any(np.diff(pct) <= 0):
        raise EnsembleError(f"percentiles {list(percentiles)} must be strictly increasing")
    sample, info = uncertainty_sample(base_params, n, seed, time_varying, uncertainties, method)
    result = run_many(sample, columns, engine="auto", time_varying=time_varying, output="arrays")
    blocks = {}
    for name, arr in result.values.items():
        q = np.percentile(arr, pct, axis=0)  # (len(pct), years)
        for j, p in enumerate(pct):
            blocks[(name, _pct_label(p))] = q[j]
    out = pd.DataFrame(blocks, index=pd.Index(result.years, name="year"))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["variable", "percentile"])
    out.attrs.update({**info, "method": method})
    return out


def uncertainty_sample(base_params: Mapping[str, float] | None, n: int, seed: int | None,
                       time_varying: Mapping[str, Any] | None = None,
                       uncertainties: str | Sequence[str] | None = None,
                       method: Literal["lhs", "random"] = "lhs") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw the runs of a band or a chance: the scenario held, uncertainties and posterior drawn.

    The settings in ``base_params`` and the year tables in ``time_varying`` are held;
    the uncertainties (``uncertainties`` as in :func:`bands`) nobody holds are sampled by
    ``method``; the calibrated parameters neither held nor sampled take ``n`` seeded draws
    of the calibration's posterior (:func:`greenpath.calibration.posterior.draw_rows`).
    Returns the parameter frame (one row per run) and ``info``: ``sampled``,
    ``posterior``, ``posterior_source``, ``n`` and ``seed``.
    """
    from greenpath.calibration import posterior

    base = validate_param_sets(dict(base_params), "base_params") if base_params else None
    fixed = set(base.columns) if base is not None else set()
    fixed |= set(time_varying or {})
    names = [k for k in _uncertainty_names("projection" if uncertainties is None else uncertainties)
             if k not in fixed]
    sample = sample_parameters(names, n, seed, method) if names else pd.DataFrame(index=pd.RangeIndex(n))
    draws, why = posterior.draw_rows(n, seed, exclude=fixed | set(names))
    if draws is not None:
        for column in draws.columns:
            sample[column] = draws[column].to_numpy()
    if base is not None:
        for column in base.columns:
            sample[column] = base[column].iloc[0]
    info = {"sampled": names, "posterior": list(draws.columns) if draws is not None else [],
            "posterior_source": why, "n": n, "seed": seed}
    return sample, info


def _pct_label(p: float) -> float | int:
    return int(p) if float(p).is_integer() else float(p)


# ---------------------------------------------------------------------------
# Batch chunks
# ---------------------------------------------------------------------------


def _spec_value(spec: Any, key: str, i: int) -> Any:
    if isinstance(spec, Mapping):
        if key in spec:
            return spec[key]
    elif hasattr(spec, key):
        return getattr(spec, key)
    if key == "tables":
        return {}
    raise EnsembleError(f"run spec {i}: missing {key!r} (need scenario, run_id, params and optionally tables)")


def run_specs(
    specs: Sequence[Any],
    return_columns: Sequence[str] | None = None,
    workers: int = 1,
    info: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run batch run specs on the vector engine, year tables included.

    Parameters
    ----------
    specs
        Objects or mappings with ``params`` (``name -> value``; missing names at
        their effective defaults) and optionally ``tables`` (``name -> (years,
        values)``), e.g. :class:`greenpath.runners.batch.RunSpec`.
    return_columns
        Variables (default :data:`greenpath.model.indicators.HEADLINE`).
    workers
        Processes of the vector engine.
    info
        If given, filled with ``model_sha256``: the SHA-256 of the ``.mdl`` the
        engine that ran the specs was compiled from.

    Returns
    -------
    cube, years, columns
        ``cube[i, t, j]`` is variable ``columns[j]`` of run ``specs[i]`` in
        ``years[t]``.

    Notes
    -----
    Runs are grouped by the names and years of their tables; each group is one
    vector-engine call, with per-run table values where they differ (so a
    Monte Carlo or lever grid over a scenario with year tables is one call,
    not one PySD run per sample).  Every input is validated as in
    :func:`run_many`; a bad one raises :class:`EnsembleError` naming the run.
    """
    specs = list(specs)
    if not specs:
        raise EnsembleError("run_specs: no runs")
    groups: dict[tuple, list[int]] = {}
    checked: list[dict[str, tuple]] = []
    for i, spec in enumerate(specs):
        _spec_value(spec, "params", i)
        try:
            tables = validate_tables(_spec_value(spec, "tables", i), f"run spec {i} tables")
        except EnsembleError as exc:
            raise EnsembleError(f"{exc} (run {_spec_value(spec, 'run_id', i)!r})") from None
        checked.append(tables)
        key = tuple(sorted((name, tuple(xs)) for name, (xs, _) in tables.items()))
        groups.setdefault(key, []).append(i)
    cube: np.ndarray | None = None
    years = np.empty(0, dtype=int)
    columns: list[str] = []
    hashes: set[str] = set()
    for key, members in groups.items():
        rows = [dict(_spec_value(specs[i], "params", i)) for i in members]
        frame = pd.DataFrame(rows, index=pd.Index(members))
        defaults = reg.effective_defaults()
        for column in frame.columns:  # a run that leaves a name out gets its default
            if column in defaults and frame[column].isna().any():
                frame[column] = frame[column].fillna(defaults[column])
        frame = validate_param_sets(frame, "run specs")
        names = [name for name, _ in key]
        both = sorted(set(names) & set(frame.columns))
        if both:
            raise EnsembleError(f"run specs {members[:3]}...: {both} given both as params and as tables")
        vm = vector_model(names)
        hashes.add(vm.source_sha256)
        cols = _check_columns(return_columns, _output_names(vm))
        params = _vector_params(frame, names)
        lookups = {}
        for name, xs in key:
            ys = np.stack([checked[i][name][1] for i in members])
            shared = bool(np.all(ys == ys[0]))
            lookups[_table_lookup(name)] = (np.asarray(xs), ys[0] if shared else ys)
        raw = vm.simulate(params, len(members), lookups or None, return_columns=cols, workers=workers,
                          backend="vector")  # as in _run_vector: independent of the group's size
        if cube is None:
            years = _years(vm.times())
            columns = cols
            cube = np.empty((len(specs), len(years), len(cols)))
        cube[members] = np.stack([raw[c] for c in cols], axis=-1)
    if len(hashes) > 1:
        raise RuntimeError("model/jiaozuo.mdl changed while these runs were compiled; run them again")
    if info is not None:
        info["model_sha256"] = hashes.pop()
    return cube, years, columns  # type: ignore[return-value]
