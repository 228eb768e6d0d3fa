"""Load and run the Jiaozuo model through PySD, fast and with a clean state every run.

The equations live only in ``model/jiaozuo.mdl``.  PySD translates them once into a
Python module that is cached under a key made of the ``.mdl`` text, the PySD version and
this module's post-processing version, so a changed model or a new PySD re-translates
and nothing else does.

Two PySD costs are removed here:

* Graphical lookups: stock PySD interpolates through ``xarray.DataArray.interp`` at
  about 0.3 ms per call.  :class:`FastLookups` evaluates the same piecewise-linear table
  with :func:`_interp` (NumPy's interpolation arithmetic in plain Python, clamped at both
  ends as PySD does) for scalar arguments.
* Bookkeeping per step: :func:`accelerate_caches` binds PySD's caches tighter and
  :func:`integrate` steps the model with PySD's own update rules but without its output
  handler.  ``tests/engines/test_engine.py`` proves outputs identical to stock PySD.
* Leaking state (SDXorg/pysd#99): parameters, final time, time step and saved times set
  by one ``run()`` persist into the next.  :meth:`JiaozuoModel.run` passes every registry
  parameter and every time setting on every run, so run B never sees run A's levers.

A PySD model cannot be pickled or shared between threads: each :class:`JiaozuoModel`
holds its own translated module and a lock; use one instance per process or thread
(:func:`thread_local_model`).
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath.engines.base import ModelError, RunResult, cache_root
from greenpath.model import registry as reg
from greenpath.model.mdl import (
    FINAL_TIME,
    INITIAL_TIME,
    MDL_PATH,
    SAVEPER,
    TIME_STEP,
    model_hash,
    parse_mdl,
)

# Bump when the way the translation is post-processed or cached changes.
# 2: the translation folder holds a hash manifest (greenpath.engines.cache).
ENGINE_VERSION = "2"


def _pysd_version() -> str:
    import pysd

    return pysd.__version__


def translation_key(mdl_path: Path = MDL_PATH) -> str:
    """Cache key of the translation: model text, PySD version, engine version."""
    h = hashlib.sha256(Path(mdl_path).read_bytes())
    h.update(f"pysd={_pysd_version()};engine={ENGINE_VERSION}".encode())
    return h.hexdigest()[:20]


# Warnings that mean a Vensim construct was not translated faithfully.
_BAD_TRANSLATION = re.compile(r"not (yet )?(implemented|supported)", re.IGNORECASE)


def translate(mdl_path: Path = MDL_PATH, cache: Path | None = None, force: bool = False) -> Path:
    """Translate ``mdl_path`` with PySD unless a translation with the same key exists.

    Returns the path of the translated Python module.  The translation is written in a
    temporary folder and moved into place, so concurrent processes never load a half
    written file.  Any PySD warning saying a construct is not implemented is an error.
    The folder's files are hashed when written (:mod:`greenpath.engines.cache`); a cached
    translation that no longer matches is translated again, with one warning.
    """
    import pysd

    from greenpath.engines.cache import private_dir, verify_folder, write_manifest

    mdl_path = Path(mdl_path)
    if not mdl_path.is_file():
        raise ModelError(f"model file not found: {mdl_path}")
    target = (cache or cache_root()) / "pysd" / translation_key(mdl_path)
    py_file = target / (mdl_path.stem + ".py")
    if not force and verify_folder(target):
        return py_file
    force = force or target.exists()  # damaged: replace it
    private_dir(target.parent)
    work = Path(tempfile.mkdtemp(prefix="translate-", dir=target.parent))
    try:
        shutil.copy2(mdl_path, work / mdl_path.name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pysd.read_vensim(str(work / mdl_path.name), initialize=False)
        bad = [str(w.message) for w in caught if _BAD_TRANSLATION.search(str(w.message))]
        if bad:
            raise ModelError(f"{mdl_path.name}: PySD cannot translate: {bad[0]}")
        write_manifest(work, sorted(p.name for p in work.iterdir()))
        if force and target.exists():
            shutil.rmtree(target)
        try:
            work.rename(target)
        except OSError:
            # Another process won the race; its translation has the same key.
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if work.exists() and work != target:
            shutil.rmtree(work, ignore_errors=True)
    return py_file


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """``numpy.interp(x, xs, ys)`` for one float, in plain Python (about 5x faster).

    The same arithmetic as NumPy's C loop: clamping at both ends, a point on the grid
    returned as is, ``slope * (x - x_j) + y_j`` in between, and the right-hand form when
    that gives NaN; ``tests/engines/test_engine.py`` checks equality bit for bit.
    """
    if not x > xs[0]:  # at or left of the first point, or NaN
        return x if x != x else ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect_right(xs, x) - 1
    if x == xs[j]:
        return ys[j]
    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    value = slope * (x - xs[j]) + ys[j]
    if value != value:
        value = slope * (x - xs[j + 1]) + ys[j + 1]
        if value != value and ys[j] == ys[j + 1]:
            value = ys[j]
    return value


def _fast_lookups_class():
    from pysd.py_backend.lookups import HardcodedLookups

    class FastLookups(HardcodedLookups):
        """PySD lookup evaluated with :func:`_interp` for scalar arguments.

        Same table, same linear interpolation, same end clamping as PySD's
        ``interpolate`` mode; anything else (subscripted tables, xarray arguments,
        other interpolation modes) falls back to PySD.
        """

        _fast_cache: tuple | None = None

        def _points(self):
            """Return the table as two float lists, or None when PySD must evaluate it."""
            data = self.data
            cached = self._fast_cache
            if cached is None or cached[0] is not data:
                if (
                    self.interp == "interpolate"
                    and self.is_float
                    and getattr(data, "ndim", 0) == 1
                ):
                    points = ([float(v) for v in data["lookup_dim"].values],
                              [float(v) for v in data.values])
                else:
                    points = None
                cached = self._fast_cache = (data, points)
            return cached[1]

        def __call__(self, x, final_subs=None):
            if final_subs is None and isinstance(x, (float, int, np.floating, np.integer)):
                points = self._points()
                if points is not None:
                    return _interp(float(x), *points)
            return super().__call__(x, final_subs)

    return FastLookups


def _fast_cache_class():
    from pysd.py_backend.cache import Cache

    class FastCache(Cache):
        """PySD's per-step cache with the key and the dictionary bound once per function.

        PySD looks up ``self.data`` and ``func.__name__`` on every call of every cached
        variable (about 25,000 calls a run here); the closure binds both.  ``clean``
        empties the dictionary in place so every wrapper keeps seeing the live one.
        """

        def __call__(self, func, *args):
            data = self.data
            name = func.__name__

            def cached_func(*args):
                try:
                    return data[name]
                except KeyError:
                    value = data[name] = func(*args)
                    return value

            return functools.update_wrapper(cached_func, func)

        def clean(self):
            self.data.clear()

    return FastCache


def _add_constant_cache(model) -> None:
    """PySD's ``_add_constant_cache`` with the value bound in the wrapper's closure.

    Leaves ``function.function`` and ``function.value`` where PySD's
    ``_remove_constant_cache`` expects them.
    """
    for element, cache_type in model.cache_type.items():
        if cache_type == "run":
            function = getattr(model.components, element)
            value = function()
            function.function = function
            function.value = value

            def wrapper(*args, _value=value):
                return _value

            # Only what PySD reads back (``_remove_constant_cache``); a full
            # functools.update_wrapper costs more than the rest of this loop.
            wrapper.function = function  # type: ignore[attr-defined]
            wrapper.__wrapped__ = function  # type: ignore[attr-defined]
            model.components._set_component(element, wrapper)
            model._constant_funcs.add(element)


def accelerate_caches(pysd_model) -> int:
    """Give a loaded PySD model the faster step and constant caches.

    The functions PySD already wrapped at load are re-wrapped with the new cache;
    returns how many.
    """
    cache = pysd_model.cache
    cache.__class__ = _fast_cache_class()
    count = 0
    for name in list(cache.cached_funcs):
        function = getattr(pysd_model.components, name)
        pysd_model.components._set_component(name, cache(function.__wrapped__))
        count += 1
    pysd_model._add_constant_cache = functools.partial(_add_constant_cache, pysd_model)
    from pysd.py_backend.statefuls import Integ

    class FastInteg(Integ):
        """An INTEG whose value is read without the ``state`` property's check."""

        def __call__(self, *args, **kwargs):
            return self._state

    for element in pysd_model._stateful_elements.values():
        if type(element) is Integ:
            element.__class__ = FastInteg
    return count


def integrate(pysd_model, params, columns, stamps, final_time, time_step, saveper) -> pd.DataFrame:
    """Run a loaded PySD model like ``Model.run`` does, with less bookkeeping per step.

    The same configuration (``_config_simulation``), the same Euler update of every
    dynamic stateful element (all derivatives first, then all states), the same time
    stepping, end test and saving tolerance as PySD 3.14's ``_integrate``; the output
    is collected straight into a list of rows instead of PySD's output handler.
    Returns a frame indexed by the saved times with ``columns`` in the asked order.
    """
    m = pysd_model
    m._config_simulation(params, list(columns), stamps, "original", final_time, time_step,
                         saveper, True, progress=False)
    components = m.components
    step_names = list(m.capture_elements["step"])
    run_names = list(m.capture_elements["run"])
    getters = [getattr(components, n) for n in step_names]
    dynamic = list(m._dynamicstateful_elements)
    scalar = all(getattr(e, "shape_info", None) is None for e in dynamic)
    clock = m.time
    dt = clock.time_step()
    prec = dt * clock.rprec
    final = clock.final_time()
    save = [float(x) for x in stamps]
    rows: list[list[float]] = []
    saved: list[float] = []
    k = 0
    clean = m.clean_caches
    try:
        while True:
            now = clock._time
            # PySD's in_return: numpy.isclose(time, next, rtol=prec) (atol 1e-8)
            if k < len(save) and abs(now - save[k]) <= 1e-8 + prec * abs(save[k]):
                rows.append([get() for get in getters])
                saved.append(save[k])
                k += 1
            if not now + prec < final:  # PySD's in_bounds
                break
            rates = [element.ddt() for element in dynamic]
            if scalar:  # what Stateful.update does for a state without shape
                for element, rate in zip(dynamic, rates, strict=True):
                    element._state = element._state + rate * dt
            else:
                for element, rate in zip(dynamic, rates, strict=True):
                    element.update(element.state + rate * dt)
            clock.update(now + dt)
            clean()
        constants = [getattr(components, n)() for n in run_names]
    finally:
        m._dependencies.pop("OUTPUTS", None)
        m._remove_constant_cache()
    frame = pd.DataFrame(np.array(rows, dtype=float).reshape(len(rows), len(step_names)),
                         index=pd.Index(saved, name="time"), columns=step_names)
    for name, value in zip(run_names, constants, strict=True):
        frame[name] = float(value)
    return frame[list(dict.fromkeys(columns))]  # asked order, each once (as PySD)


def accelerate(pysd_model) -> int:
    """Switch every scalar hard-coded lookup of a loaded PySD model to :func:`_interp`.

    Returns the number of lookups switched.
    """
    fast = _fast_lookups_class()
    count = 0
    for obj in pysd_model._lookup_elements:
        if type(obj).__name__ == "HardcodedLookups":
            obj.__class__ = fast
            count += 1
    return count


def _ignore_noise() -> None:
    """Silence PySD's per-call lookup-extrapolation warnings (use inside catch_warnings)."""
    warnings.filterwarnings("ignore", message="(?s).*extrapolating data", category=UserWarning)
    warnings.filterwarnings("ignore", message="Replacing a constant value with a callable")


class JiaozuoModel:
    """The translated model, loaded once, run many times from a clean state.

    Parameters
    ----------
    mdl_path
        The Vensim model (default: the packaged ``jiaozuo.mdl``).
    fast
        Evaluate lookups with ``numpy.interp`` (default).  ``False`` gives stock PySD,
        the reference the tests and the benchmark compare against.
    cache
        Folder for the translation (default :func:`cache_root`).
    engine
        ``"pysd"`` (default): PySD, as ``fast`` says.  ``"scalar"``: the scalar
        backend of :mod:`greenpath.engines.vector` (the same equations as straight-line
        Python on floats, ~100x faster per run; ``tests/engines/test_vector_engine.py``
        proves it equal to PySD).  A run it cannot make (a year-tabled lever that
        is not a plain constant, a .mdl changed since this model was loaded) goes
        through PySD; ``metadata["engine"]`` names the engine each run used.
    """

    def __init__(self, mdl_path: Path = MDL_PATH, fast: bool = True, cache: Path | None = None,
                 engine: str = "pysd"):
        import pysd

        if engine not in ("pysd", "scalar"):
            raise ModelError(f"engine must be 'pysd' or 'scalar', got {engine!r}")
        self.engine = engine
        self.mdl_path = Path(mdl_path)
        self.fast = fast
        self.py_path = translate(self.mdl_path, cache)
        with warnings.catch_warnings():
            _ignore_noise()
            # No compiled bytecode beside the checked source: it would be imported in
            # its place without being checked (greenpath.engines.cache).
            dont_write, sys.dont_write_bytecode = sys.dont_write_bytecode, True
            try:
                self._model = pysd.load(str(self.py_path))
            finally:
                sys.dont_write_bytecode = dont_write
        self.lookups_accelerated = accelerate(self._model) if fast else 0
        if fast:
            accelerate_caches(self._model)
        self._lock = threading.Lock()
        self._column_indexes: dict[tuple[str, ...], pd.Index] = {}
        self._state: dict[str, object] = {}
        self._cache_signature = None
        if fast:
            self._memoize_cache_assignment()
        self.registry = reg.load_registry()
        self.hash = model_hash(self.mdl_path)
        # Defaults of every run: registry values overlaid with the calibration in force.
        self.baseline_values = reg.effective_defaults()
        self.calibration = reg.calibration_id()
        self._vars = {v.name: v for v in parse_mdl(self.mdl_path)}
        doc = self._model.doc
        self._py_to_real = dict(zip(doc["Py Name"], doc["Real Name"], strict=True))
        self._real_to_py = {r: p for p, r in self._py_to_real.items()}
        self.units = {
            py: (u if isinstance(u, str) else "")
            for py, u in zip(doc["Py Name"], doc["Units"], strict=True)
        }
        unknown = set(self.registry) - set(self._py_to_real)
        if unknown:
            raise ModelError(f"registry parameters missing from {self.mdl_path.name}: {sorted(unknown)}")
        self.outputs = [
            py for py, v in sorted(self._vars.items())
            if v.kind in ("stock", "auxiliary") and py in self._py_to_real
        ]

    # ------------------------------------------------------------------ metadata
    def variables(self) -> pd.DataFrame:
        """Return every model variable with kind, unit, comment and equation.

        For constants, also the registry's range and source.
        """
        rows = []
        for v in self._vars.values():
            p = self.registry.get(v.name)
            rows.append({
                "name": v.name, "vensim_name": v.vensim_name, "group": v.group,
                "kind": p.kind if p else v.kind, "unit": v.unit, "comment": v.comment,
                "equation": v.equation,
                "min": p.min if p else np.nan, "max": p.max if p else np.nan,
                "source": p.source if p else "",
            })
        return pd.DataFrame(rows)

    def check_names(self, names: Iterable[str]) -> list[str]:
        """Return ``names`` if all are model outputs, else raise naming the first bad one."""
        names = list(names)
        for n in names:
            if n == "time":  # PySD's clock: every result's index already
                raise ModelError("'time' is the index of every result (the 'year' column), "
                                 "not a variable to return; `greenpath vars` lists them")
            if n not in self._py_to_real:
                raise ModelError(
                    f"unknown variable {n!r}{reg.suggest(n, self._py_to_real)}; "
                    "`greenpath vars` lists them"
                )
        return names

    # ------------------------------------------------------------------ running
    def run(
        self,
        params: Mapping[str, float] | None = None,
        *,
        time_varying: Mapping[str, tuple[Iterable[float], Iterable[float]]] | None = None,
        final_time: float = FINAL_TIME,
        time_step: float = TIME_STEP,
        saveper: float = SAVEPER,
        return_columns: Iterable[str] | None = None,
        scenario: str = "custom",
        validate: bool = True,
    ) -> RunResult:
        """Run from a clean state and return yearly results.

        Parameters
        ----------
        params
            Registry parameters to change from their defaults; every other registry
            parameter is reset to its default (the calibrated value, where one exists)
            for this run.
        time_varying
            ``{name: (years, values)}``: a lever that follows a table over calendar
            years (linear between points, held flat outside them) instead of a constant.
        final_time, time_step, saveper
            Simulation settings; the same defaults apply on every call.
        return_columns
            Python names of the variables to return (default: all stocks and
            auxiliaries).
        """
        where = f"scenario {scenario!r}"
        overrides = dict(params or {})
        if validate:
            overrides = reg.validate(overrides, where)
            for name, (_, values) in (time_varying or {}).items():
                p = reg.lookup(name, where)
                for value in values:
                    p.check(value, where)
        # Only registry parameters may be set, even unvalidated: PySD turns any other
        # name (a stock, an auxiliary) into a constant that no later run resets.
        for name in (*overrides, *(time_varying or {})):
            if name not in self.baseline_values:
                raise ModelError(
                    f"{where}: {name!r} is not a model parameter{reg.suggest(name, self.baseline_values)}; "
                    "`greenpath vars --kind lever` and `--kind uncertainty` list them"
                )
        full: dict[str, object] = dict(self.baseline_values)
        full.update(overrides)
        tv_meta = {}
        for name, (years, values) in (time_varying or {}).items():
            xs = np.asarray(list(years), dtype=float)
            ys = np.asarray(list(values), dtype=float)
            order = np.argsort(xs)
            xs, ys = xs[order], ys[order]
            full[name] = self._table_function(xs, ys)
            tv_meta[name] = {"years": xs.tolist(), "values": ys.tolist()}
        if (not (0 < time_step <= 1) or not INITIAL_TIME < final_time <= FINAL_TIME
                or saveper < time_step):
            # The projection assumptions (growth periods, lever tables) end in FINAL_TIME;
            # PySD would run past it silently, holding every table at its last value.
            raise ModelError(
                f"{where}: bad time settings final_time={final_time}, time_step={time_step}, "
                f"saveper={saveper} (need {INITIAL_TIME} < final_time <= {FINAL_TIME}, "
                "0 < time_step <= 1, saveper >= time_step)"
            )
        k = round(saveper / time_step)
        if abs(k * time_step - saveper) > 1e-9:
            raise ModelError(f"{where}: saveper {saveper} is not a multiple of time_step {time_step}")
        columns = self.check_names(return_columns) if return_columns else self.outputs
        stamps = np.round(np.arange(INITIAL_TIME, final_time + saveper / 2, saveper), 10)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        started = time.perf_counter()
        with self._lock:
            # Only what differs from the state left by the previous run is sent to PySD:
            # afterwards the model holds exactly `full`, whatever ran before.  Both the
            # difference and the structure signature are read under the lock, so two
            # threads sharing one model cannot mix their runs.
            engine_used = "pysd+fast-lookups" if self.fast else "pysd"
            raw = None
            if self.engine == "scalar":  # leaves the PySD model (and _state) untouched
                raw = self._run_scalar(full, tv_meta, columns, final_time, time_step, saveper)
                if raw is not None:
                    engine_used = "scalar"
            if raw is None:
                changed = {
                    k: v for k, v in full.items()
                    if callable(v) or callable(self._state.get(k)) or self._state.get(k, np.nan) != v
                }
                self._cache_signature_next = (
                    tuple(sorted(k for k, v in full.items() if callable(v))), tuple(columns),
                )
                with warnings.catch_warnings():
                    _ignore_noise()
                    try:
                        if self.fast:
                            raw = integrate(self._model, changed or None, columns, stamps,
                                            final_time, time_step, saveper)
                        else:
                            raw = self._model.run(
                                params=changed or None, final_time=final_time, time_step=time_step,
                                saveper=saveper, return_timestamps=stamps,
                                return_columns=columns, progress=False,
                            )
                        self._state = dict(full)
                    except BaseException:
                        self._state = {}  # unknown state: the next run resets everything
                        raise
        elapsed = time.perf_counter() - started
        if engine_used == "scalar":  # a new float frame under the Python names already
            frame = raw
        else:
            frame = raw.copy()
            frame.columns = [c if c in self._py_to_real else self._real_to_py[c] for c in frame.columns]
        times = frame.index.to_numpy(dtype=float)
        if np.allclose(times, np.round(times)):
            frame.index = pd.Index(np.round(times).astype(int), name="year")
        else:  # sub-yearly saving (tests, diagnostics): keep fractional times
            frame.index = pd.Index(times, name="time")
        if engine_used != "scalar":
            frame = frame.astype(float)
        meta = {
            "scenario": scenario,
            "model": self.mdl_path.name,
            "model_sha256": self.hash,
            "engine": engine_used,
            "calibration_sha256_12": self.calibration,
            "run_started_utc": started_at,
            "params": {n: v for n, v in overrides.items()},
            # Every parameter value the run used (defaults and calibration included),
            # so a result can be reproduced without knowing which defaults were in force.
            "effective_params": {n: v for n, v in full.items() if not callable(v)},
            "time_varying": tv_meta,
            "final_time": final_time,
            "time_step": time_step,
            "saveper": saveper,
            "run_seconds": elapsed,
            "software": software_versions(),
        }
        # columns.tolist(): iterating a pyarrow-backed Index yields one scalar at a time (~1 ms here)
        return RunResult(frame=frame, units={c: self.units.get(c, "") for c in frame.columns.tolist()},
                         metadata=meta)

    def _run_scalar(self, full, tables, columns, final_time, time_step, saveper) -> pd.DataFrame | None:
        """One run on the scalar backend, as PySD's frame; None when it cannot make it.

        Year-tabled levers run on the compiled year-table variant
        (:func:`greenpath.engines.vector_loader.vector_model`); None (run through PySD) when
        that variant cannot be made or was compiled from another .mdl than the
        one this model loaded.
        """
        from greenpath.engines.vector import UnsupportedConstructError

        try:
            if _resolved(self.mdl_path) == _resolved(MDL_PATH):
                from greenpath.engines.vector_loader import _table_lookup, vector_model

                vm = vector_model(tables)
                lookups = {_table_lookup(n): (t["years"], t["values"]) for n, t in tables.items()}
            elif tables:
                return None
            else:
                vm = self._own_vector_model()
                lookups = None
        except UnsupportedConstructError:
            return None
        if vm.source_sha256 != self.hash:
            return None
        params = {k: v for k, v in full.items() if k not in tables}
        control = {"final_time": float(final_time), "time_step": float(time_step), "saveper": float(saveper)}
        unique = list(dict.fromkeys(columns))  # asked order, each once (as PySD)
        names, block, times = vm.simulate_block(params, lookups, **control, return_columns=unique)
        # block is (columns, times), C order: its transpose is the frame's one float block, not copied
        return pd.DataFrame(block.T, index=pd.Index(times, name="time"), columns=self._column_index(names))

    def _column_index(self, names: list[str]) -> pd.Index:
        """Return the frame's column index for ``names``, parsed once per column set.

        Each frame gets its own shallow copy (an Index's ``name`` can be set); the
        strings are shared, which is the part that costs (~0.5 ms for 793 columns).
        """
        key = tuple(names)
        index = self._column_indexes.get(key)
        if index is None:
            if len(self._column_indexes) >= 32:
                self._column_indexes.clear()
            index = self._column_indexes[key] = pd.Index(names)
        return index.copy()

    def _own_vector_model(self):
        from greenpath.engines.vector import VectorModel

        if getattr(self, "_vector", None) is None:
            self._vector = VectorModel(self.mdl_path, cache_root() / "vector")
        return self._vector

    def _memoize_cache_assignment(self) -> None:
        """Skip PySD's O(n^2) cache-type assignment when nothing structural changed.

        PySD re-derives every variable's cache type on each run (twice), although the
        types only change when a constant becomes time-varying or the returned columns
        change.  The signature of both is compared with the last assignment.
        """
        model = self._model
        original = model._assign_cache_type
        computed: dict = {}

        def assign():
            structure = getattr(self, "_cache_signature_next", None)
            if structure is None:
                original()
                return
            signature = (structure, tuple(sorted(model._dependencies.get("OUTPUTS", {}))))
            if signature in computed:
                # The cache types are a function of the structure: restore them, since
                # another structure may have been assigned in between.  Wrapping more
                # functions in the per-step cache (the other half of PySD's work) is
                # cumulative and valid for any structure.
                model.cache_type = dict(computed[signature])
                return
            original()
            computed[signature] = dict(model.cache_type)

        model._assign_cache_type = assign

    def _table_function(self, xs: np.ndarray, ys: np.ndarray):
        data_year = self._model.components.data_year

        def value():
            return float(np.interp(data_year(), xs, ys))

        return value


@lru_cache(maxsize=16)
def _resolved(path: Path) -> Path:
    """``path.resolve()``, once per path and process (a stat per folder on every run otherwise)."""
    return path.resolve()


@lru_cache(maxsize=1)
def _software_versions() -> tuple[tuple[str, str], ...]:
    import importlib.metadata as md
    import platform

    out = [("python", platform.python_version())]
    for pkg in ("greenpath", "pysd", "numpy", "pandas", "xarray", "scipy"):
        try:
            out.append((pkg, md.version(pkg)))
        except md.PackageNotFoundError:  # pragma: no cover - dev checkout without install
            out.append((pkg, "not installed"))
    return tuple(out)


def software_versions() -> dict[str, str]:
    """Versions of the packages that shape the numbers (read once per process)."""
    return dict(_software_versions())


_local = threading.local()


def thread_local_model() -> JiaozuoModel:
    """One model per thread (PySD models are not thread-safe)."""
    model = getattr(_local, "model", None)
    if model is None:
        model = _local.model = JiaozuoModel()
    return model
