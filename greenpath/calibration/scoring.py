"""Goodness of fit of one run: per-series MAPE, R², Theil's decomposition and the profiled factor.

:func:`simulate_frame` runs one parameter set as a years x outputs frame,
:func:`fit_statistics` scores it against the fit series (fitted and cross-checks), and
:func:`synthetic_series` replaces the observations by a run (a known truth, for tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from greenpath.calibration import metrics
from greenpath.calibration.series import OUTPUT_COLUMNS, FitSeries
from greenpath.engines.base import Simulator

__all__ = [
    "fit_statistics",
    "run_outputs",
    "simulate_frame",
    "synthetic_series",
]


def simulate_frame(simulator: Simulator, values: Mapping[str, float],
                   columns: Sequence[str] = OUTPUT_COLUMNS) -> pd.DataFrame:
    """One run as a years x outputs frame (parameters not given stay at their prior).

    ``columns`` names the model outputs (default :data:`greenpath.calibration.series.OUTPUT_COLUMNS`).
    """
    out = simulator.simulate({k: np.array([v]) for k, v in values.items()}, 1, columns)
    return pd.DataFrame({k: v[0] for k, v in out.items()}, index=pd.Index(simulator.years, name="year"))


def run_outputs(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return one run's years and ``{output: array (1, T)}``, as ``FitSeries.simulated`` takes them.

    ``frame`` is a years x outputs frame (:func:`simulate_frame`); see
    :meth:`greenpath.calibration.series.FitSeries.simulated`.
    """
    return frame.index.to_numpy(dtype=int), {c: frame[c].to_numpy(dtype=float)[None, :] for c in frame.columns}


def fit_statistics(frame: pd.DataFrame, series: Sequence[FitSeries],
                   factors_from: Sequence[FitSeries] | None = None) -> pd.DataFrame:
    """Per-series goodness of fit of one simulation.

    Parameters
    ----------
    frame : pandas.DataFrame
        Model outputs indexed by year (must contain :data:`greenpath.calibration.series.OUTPUT_COLUMNS` used).
    series : sequence of FitSeries
        Series to score (fitted and cross-checks).
    factors_from : sequence of FitSeries, optional
        For out-of-sample scoring: profiled series take their factor from the
        same-keyed series here (the in-sample data) instead of from themselves.

    Returns
    -------
    pandas.DataFrame
        Indexed by series key: role, n, first/last year, MAPE (%), Lewis grade, R²,
        RMSE, U^M, U^S, U^C, the profiled factor (NaN if none) and the mean absolute
        error in the series' unit.
    """
    years, outputs = run_outputs(frame)
    ref = {s.key: s for s in (factors_from or [])}
    rows = []
    for s in series:
        sim = s.simulated(outputs, years)
        if s.error == "log_profiled":
            base = ref.get(s.key, s)
            factor = float(base.profile_factor(base.simulated(outputs, years))[0])
            comp = sim[0] * factor
        else:
            factor = math.nan
            comp = sim[0]
        obs = s.observed.to_numpy(dtype=float)
        sim_s = pd.Series(comp, index=s.observed.index)
        m = metrics.mape(s.observed, sim_s, name=s.key)
        th = metrics.theil(s.observed, sim_s, name=s.key)
        rows.append({
            "key": s.key, "label": s.label, "role": s.role, "n": s.n,
            "first_year": int(s.years.min()), "last_year": int(s.years.max()),
            "mape_pct": m, "lewis_grade": metrics.lewis_grade(m),
            "r_squared": metrics.r_squared(s.observed, sim_s, name=s.key),
            "rmse": th.rmse, "mae": float(np.mean(np.abs(comp - obs))),
            "u_m": th.u_m, "u_s": th.u_s, "u_c": th.u_c, "factor": factor, "unit": s.unit,
        })
    return pd.DataFrame(rows).set_index("key")


def synthetic_series(series: Sequence[FitSeries], frame: pd.DataFrame) -> list[FitSeries]:
    """Return the same series with observations replaced by one simulation (a known truth).

    Used to test that the fit recovers parameters it generated the data with.
    """
    years, outputs = run_outputs(frame)
    out = []
    for s in series:
        values = s.simulated(outputs, years)[0]
        out.append(replace(s, observed=pd.Series(values, index=s.observed.index, name=s.observed.name)))
    return out
