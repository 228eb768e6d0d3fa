"""What the calibration report is computed from: the calibration file, the history and a few runs.

:func:`_context` reads a calibration file (:func:`greenpath.calibration.store.load_calibration`)
and the history it was fitted to, reruns the calibrated, prior, out-of-sample and
sensitivity parameter sets, and recomputes the uncertainty and the series' pull at the
calibrated values; the report's text (:mod:`greenpath.calibration.report`) and charts
(:mod:`greenpath.calibration.report_charts`) are drawn from it. :class:`FitView` holds the
numbers the explanations are generated from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.calibration import history as hist
from greenpath.calibration.objective import Objective
from greenpath.calibration.scoring import fit_statistics, run_outputs, simulate_frame
from greenpath.calibration.series import (
    OUTPUT_COLUMNS,
    FitSeries,
    after_cutoff,
    apply_cutoff,
    build_series,
    fit_final_time,
)
from greenpath.calibration.simulators import make_simulator
from greenpath.calibration.space import ParameterSpace
from greenpath.calibration.store import load_calibration, sha256_file, stats_from_table
from greenpath.calibration.uncertainty import (
    Uncertainty,
    parameter_uncertainty,
    series_pull,
)
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH, model_hash

__all__ = [
    "REPORT_COLUMNS",
    "FitView",
    "ReportError",
]

#: Model outputs the report asks for beyond the fit's (skipped if the model lacks them).
REPORT_COLUMNS: tuple[str, ...] = ("coal_generation",)


class ReportError(ValueError):
    """The report cannot be written as asked (names the file and the reason)."""


@dataclass
class FitView:
    """The numbers the report's explanations are generated from: one calibrated run.

    Attributes
    ----------
    frame : pandas.DataFrame
        The calibrated run, years x model outputs (may include ``coal_generation``).
    history : pandas.DataFrame
        The history frame (:func:`greenpath.calibration.history.load_history`).
    series : list of FitSeries
        :func:`greenpath.calibration.series.build_series` of that history.
    space : ParameterSpace
        The fitted parameters.
    unc : Uncertainty
        Posterior and data-only uncertainty at the calibrated values.
    values : dict
        The calibrated values (fitted and derived).
    pull : pandas.DataFrame, optional
        :func:`greenpath.calibration.uncertainty.series_pull` at the calibrated values: which
        series push a parameter against its bound.
    """

    frame: pd.DataFrame
    history: pd.DataFrame
    series: list[FitSeries]
    space: ParameterSpace
    unc: Uncertainty
    values: dict[str, float]
    pull: pd.DataFrame | None = None

    def tagged(self, tag: str, group: str | None = None) -> FitSeries | None:
        """Return the first series with this tag (and group), or None."""
        return next((s for s in self.series if s.tag == tag and (group is None or s.group == group)), None)

    def bound_of(self, name: str) -> int:
        """-1 / +1 if ``name`` is fitted and at its lower / upper bound, else 0."""
        if name not in self.space.names:
            return 0
        return int(self.unc.at_bound[self.space.names.index(name)])

    def value(self, name: str) -> float:
        """Calibrated value of ``name`` (the registry default if it was not fitted)."""
        if name in self.values:
            return float(self.values[name])
        return float(reg.defaults()[name])


@dataclass
class _Context:
    doc: dict[str, Any]
    meta: dict[str, Any]
    history: pd.DataFrame
    series: list[FitSeries]
    space: ParameterSpace
    frames: dict[str, pd.DataFrame]
    stats: pd.DataFrame
    prior_stats: pd.DataFrame
    unc: Uncertainty
    oos_stats: pd.DataFrame | None
    oos_insample: list[FitSeries]
    sens_stats: pd.DataFrame | None
    warnings: list[str]
    footer: str
    view: FitView
    calibration_path: Path | None = None


def _simulated(series: FitSeries, frame: pd.DataFrame) -> np.ndarray:
    """Return the simulated counterpart of ``series`` in one run (``frame``: years x outputs), shape (n,)."""
    years, outputs = run_outputs(frame)
    return series.simulated(outputs, years)[0]


def _simulate(simulator: Any, values: Mapping[str, float]) -> pd.DataFrame:
    """One run with the report's extra outputs when the model has them."""
    try:
        return simulate_frame(simulator, values, OUTPUT_COLUMNS + REPORT_COLUMNS)
    except (KeyError, ValueError, RuntimeError):  # an extra output the model does not define
        return simulate_frame(simulator, values)


def _context(calibration_path: Path, history_path: Path | None, engine: str) -> _Context:
    doc = load_calibration(calibration_path)
    meta = doc["meta"]
    warnings: list[str] = []
    if history_path is None:
        candidate = MDL_PATH.resolve().parents[1] / str(meta.get("data_file", ""))
        history_path = candidate if candidate.is_file() else hist.DEFAULT_HISTORY_PATH
    history_path = Path(history_path)
    history = hist.load_history(history_path)
    if sha256_file(history_path) != meta.get("data_sha256"):
        warnings.append(f"the history file {history_path.name} differs from the one calibrated on "
                        "(sha256 mismatch): recalibrate")
    if model_hash(MDL_PATH) != meta.get("model_sha256"):
        warnings.append("the model (jiaozuo.mdl) changed since this calibration (sha256 mismatch): recalibrate")
    series = build_series(history)
    space = ParameterSpace(meta["fitted"])
    values = {k: float(v) for k, v in doc["parameters"].items()}
    simulator = make_simulator(engine, final_time=fit_final_time(series))
    try:
        frames = {"calibrated": _simulate(simulator, values), "prior": simulate_frame(simulator, {})}
        oos = doc.get("out_of_sample")
        if oos:
            frames["out_of_sample"] = simulate_frame(simulator, oos["parameters"])
        sens = doc.get("sensitivity", {}).get("co2_levels")
        if sens:
            frames["co2_levels"] = simulate_frame(simulator, sens["parameters"])
        objective = Objective(simulator, apply_cutoff(series, None), space, float(meta["prior_weight"]))
        u = space.to_u(np.array([values[n] for n in space.names]))
        # one Jacobian (D + 1 runs, the functions' default step) and one residual run serve both
        j, r = objective.jacobian(u, 1e-4), objective.residuals(u)
        unc = parameter_uncertainty(objective, u, jacobian=j, residuals=r)
        pull = series_pull(objective, u, jacobian=j, residuals=r)
    finally:
        close = getattr(simulator, "close", None)
        if close:
            close()
    stats = fit_statistics(frames["calibrated"], series)
    prior_stats = fit_statistics(frames["prior"], series)
    recorded = stats_from_table(doc["fit"])
    for key in stats.index.intersection(recorded.index):
        for col in ("mape_pct", "r_squared"):
            a, b = stats.at[key, col], recorded.at[key, col]
            if (math.isfinite(a) or math.isfinite(b)) and not math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
                warnings.append(f"{key}: {col} now {a:.6g}, recorded {b:.6g}")
    oos_stats = None
    insample: list[FitSeries] = []
    if oos:
        cutoff = int(oos["cutoff"])
        insample = apply_cutoff(series, cutoff)
        oos_stats = fit_statistics(frames["out_of_sample"], after_cutoff(series, cutoff), factors_from=insample)
    sens_stats = None
    if sens:
        sens_stats = fit_statistics(frames["co2_levels"], build_series(history, co2_mode="levels"))
    footer = (f"greenpath calibration {meta.get('created', '')[:10]} | model {str(meta.get('model_sha256'))[:12]}"
              f" | data {str(meta.get('data_sha256'))[:12]} | seed {meta.get('seed')}")
    view = FitView(frames["calibrated"], history, series, space, unc, values, pull)
    return _Context(doc, meta, history, series, space, frames, stats, prior_stats, unc, oos_stats, insample,
                    sens_stats, warnings, footer, view, calibration_path)


def _obs(ctx: _Context, tag: str, group: str | None = None) -> FitSeries:
    s = ctx.view.tagged(tag, group)
    if s is None:
        raise ReportError(f"the history data have no series {tag!r}" + (f" ({group})" if group else ""))
    return s
