"""Running the model for the app: a model pool, results, targets, wedges, bands.

Streamlit runs every session's script in its own (short-lived) thread, and a PySD
model is not thread-safe.  A model per thread would be loaded again on almost every
interaction; a model per session costs 0.7 s and its memory for every visitor.
:class:`ModelPool` instead lends a model to one caller at a time: a run resets every
registry parameter (``JiaozuoModel.run``), so what one session set can never reach
another, and the pool is safe to share through ``st.cache_resource``.  A model only
ever runs one structure (set of year-table levers), see :class:`ModelPool`.

The panels' analyses (targets, wedges, ensemble bands) are imported inside the
functions that run them, so the app starts without loading them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import pandas as pd

from greenpath.app import state
from greenpath.engines.pysd_engine import JiaozuoModel, RunResult
from greenpath.outputs import charts as mpl


def _scalar_model() -> JiaozuoModel:
    """Build the app's model: PySD's results on the scalar backend (~100x faster per run)."""
    return JiaozuoModel(engine="scalar")


class ModelPool:
    """Lends each caller a model of its own; models are created on demand.

    Models are kept apart by *run structure*: the names of the levers that follow a year
    table.  A model here only ever runs one structure, so switching structures never
    makes PySD re-derive its cache types (its slowest step), and a model cannot carry
    one structure's cache types into another's run -- which it once did: tables, no
    tables, tables again on one model gave wrong values until the engine was fixed.

    Parameters
    ----------
    size
        Most models per structure (default: the number of CPUs, at most 4).  A caller
        finding all of them busy waits for one.
    factory
        Builds a model (default :class:`JiaozuoModel` on the scalar backend).
    max_structures
        Structures whose idle models are kept; beyond it the idle models of the least
        recently used structure are dropped (they are rebuilt when needed).
    """

    def __init__(self, size: int | None = None,
                 factory: Callable[[], JiaozuoModel] = _scalar_model,
                 max_structures: int = 6) -> None:
        self.size = max(1, size or min(4, os.cpu_count() or 1))
        self.max_structures = max(1, max_structures)
        self._factory = factory
        self._idle: OrderedDict[tuple[str, ...], list[JiaozuoModel]] = OrderedDict()
        self._count: dict[tuple[str, ...], int] = {}
        self._cond = threading.Condition()
        self._created = 0

    @property
    def created(self) -> int:
        """Models built so far."""
        return self._created

    @staticmethod
    def structure(key: state.RunKey) -> tuple[str, ...]:
        """Return the run structure of ``key``: its tabled lever names, sorted."""
        return tuple(sorted(name for name, value in key if isinstance(value, tuple)))

    @contextmanager
    def model(self, structure: tuple[str, ...] = ()) -> Iterator[JiaozuoModel]:
        """Lend a model for ``structure`` that no other caller holds until the block ends."""
        build = False
        with self._cond:
            while True:
                idle = self._idle.get(structure)
                if idle:
                    m = idle.pop()
                    break
                if self._count.get(structure, 0) < self.size:
                    self._count[structure] = self._count.get(structure, 0) + 1
                    self._created += 1
                    build = True
                    break
                self._cond.wait()
        if build:
            try:
                m = self._factory()
            except BaseException:
                with self._cond:
                    self._count[structure] -= 1
                    self._created -= 1
                    self._cond.notify_all()
                raise
        try:
            yield m
        finally:
            with self._cond:
                self._idle.setdefault(structure, []).append(m)
                self._idle.move_to_end(structure)
                self._evict()
                self._cond.notify_all()

    def _evict(self) -> None:
        """Drop idle models of the least recently used structures beyond the limit."""
        while len(self._idle) > self.max_structures:
            old, models = next(iter(self._idle.items()))
            self._count[old] -= len(models)
            del self._idle[old]

    def run(self, key: state.RunKey, name: str = "custom",
            columns: list[str] | None = None) -> RunResult:
        """Run the settings of ``key`` (see :func:`greenpath.app.state.run_key`).

        ``key`` is a run request the app built from validated settings
        (:func:`greenpath.app.state.request`), so the engine does not validate it again;
        it still refuses a name that is not a model parameter.
        """
        with self.model(self.structure(key)) as m:
            return m.run(**state.run_kwargs(key), return_columns=columns, scenario=name,
                         validate=False)


# ------------------------------------------------------------------ targets, wedges, bands
def evaluate_targets(frame: pd.DataFrame,
                     sets: Sequence[str] | None = None) -> pd.DataFrame:
    """Targets met / missed for one run (:func:`greenpath.scenarios.targets.evaluate`).

    ``sets``: only targets without a set plus these named sets (default: all).
    """
    from greenpath.scenarios import targets

    return targets.evaluate(frame, sets=list(sets) if sets is not None else None)


def target_chances(key: state.RunKey, sets: Sequence[str] | None = None,
                   n: int | None = None) -> pd.DataFrame | None:
    """Chance of meeting each target around the settings of ``key`` (:mod:`greenpath.runners.chance`).

    The same draws as the bands (projection uncertainties and the calibration's posterior,
    same ``n`` and seed); index ``id``, column ``chance`` (0-1).
    """
    from greenpath.runners import chance
    from greenpath.scenarios import targets

    chosen = targets.select(targets.load(), list(sets) if sets is not None else None)
    kw = state.run_kwargs(key)
    return chance.chance(kw["params"], chosen, n=n or BAND_SAMPLES, time_varying=kw["time_varying"] or None)


def target_sets() -> list[str]:
    """Names of the target sets in the targets file (empty if none)."""
    from greenpath.scenarios import targets

    return list(targets.sets(targets.load()))


def meeting_figure(chart: str, results: Mapping[str, object], labels: Mapping[str, str],
                   lang: str, presentation: bool, *, wedges: pd.DataFrame | None = None,
                   sets: Sequence[str] | None = None, bands: pd.DataFrame | None = None):
    """Return the meeting chart ``chart`` (a key of :data:`greenpath.outputs.charts.REGISTRY`).

    Parameters
    ----------
    results
        Scenario name -> RunResult, the baseline named ``"baseline"``.
    labels
        Legend name of each scenario.
    """
    if chart in mpl.WEDGE_CHARTS:
        if wedges is None:
            raise ValueError("the wedge chart needs the wedge table")
        current = next(k for k in results if k != mpl.BASELINE)
        return mpl.wedges({current: wedges}, {current: results[current]}, lang,
                          presentation=presentation, labels=dict(labels),
                          baseline=results.get(mpl.BASELINE),
                          variable=mpl.WEDGE_CHARTS[chart])
    entry = mpl.REGISTRY[chart]
    draw = entry.figure
    extra: dict = {}
    if entry.sets:
        extra["sets"] = list(sets) if sets is not None else None
    if entry.banded and bands is not None:
        extra["bands"] = bands
    return draw(dict(results), lang, presentation=presentation, labels=dict(labels), **extra)


def compute_wedges(key: state.RunKey, name: str,
                   variable: str = "co2_emissions") -> pd.DataFrame:
    """Contribution of each lever group to the change of ``variable`` vs the baseline.

    ``variable``: ``co2_emissions`` (territorial) or ``co2_including_imports``.
    """
    from greenpath.runners import wedges

    # The vector engine runs the 2^n coalitions in one pass (about 0.5 s for 32 runs,
    # against about 0.9 s one PySD run after the other).
    return wedges.compute(state.key_scenario(key, name), variable=variable, engine="vector")


BAND_SAMPLES = 500
#: Every variable a headline chart draws a band for: the CO2, coal and renewable totals,
#: and the two intensities (levels; the charts draw them as change vs 2020, which is
#: exact because no sampled uncertainty moves the 2020 value: see
#: :func:`greenpath.runners.ensemble.projection_uncertainties`).
BAND_VARIABLES = ("co2_emissions", "co2_including_imports", "total_coal_consumption",
                  "renewable_capacity", "energy_intensity", "co2_intensity")


def compute_bands(key: state.RunKey, variables: Sequence[str] = BAND_VARIABLES,
                  n: int = BAND_SAMPLES) -> pd.DataFrame:
    """P10/P50/P90 of ``variables`` around the settings of ``key`` (levers held).

    :func:`greenpath.runners.ensemble.bands`: the projection uncertainties sampled, the
    calibrated parameters drawn from the posterior.

    Returns
    -------
    pandas.DataFrame
        Long table ``year, variable, p10, p50, p90``; ``attrs["n"]`` and
        ``attrs["sampled"]`` say what was sampled.
    """
    from greenpath.runners.ensemble import bands

    kw = state.run_kwargs(key)
    wide = bands(kw["params"], n=n, columns=list(variables), percentiles=(10, 50, 90),
                    time_varying=kw["time_varying"] or None)
    rows = []
    for variable in variables:
        part = wide[variable]
        rows.append(pd.DataFrame({"year": wide.index.astype(int), "variable": variable,
                                  "p10": part[10].to_numpy(float),
                                  "p50": part[50].to_numpy(float),
                                  "p90": part[90].to_numpy(float)}))
    out = pd.concat(rows, ignore_index=True)
    out.attrs.update({k: wide.attrs[k] for k in ("n", "sampled", "posterior", "posterior_source")
                      if k in wide.attrs})
    return out


# ------------------------------------------------------------------ recorded history
#: Chart variable -> the function of :mod:`greenpath.outputs.charts` that gives its
#: recorded values in the model's unit from the model's first year: the meeting charts
#: draw the same series.
HISTORY: dict[str, Callable[[], pd.Series]] = {
    "co2_emissions": mpl._observed_co2,
    "renewable_capacity": mpl._observed_renewables,
}


def history_series(variable: str) -> pd.Series | None:
    """Return recorded values of a chart variable in the model's unit, or None."""
    if variable not in HISTORY:
        return None
    return HISTORY[variable]().rename(variable)
