"""Calibrate the Jiaozuo model against Jiaozuo's recorded history.

``greenpath calibrate`` fits named *uncertainty* parameters of the registry
(``model/parameters.csv``) to the observed series of ``calibration/data/history.csv`` and
writes the fitted values to ``calibration/calibrated.toml``, which the model then uses as
its defaults (:func:`greenpath.model.registry.effective_defaults`).

Method
------
1. **Parameters** are moved within their registry ``[min, max]`` and scaled to the unit
   interval, ``u = (x - min) / (max - min)``, so one unit of ``u`` is the whole prior range
   of every parameter and the optimisers see comparable scales.
2. **Residuals.** Every fitted series contributes residuals
   ``(simulated - observed) / (sigma * scale)``, divided by ``sqrt(n)`` (its number of
   points), so each data *source* counts once, scaled by its stated uncertainty
   ``sigma``: errors of a structural model are autocorrelated, so n points of one series
   are not n independent pieces of information, and a short series (3 years of
   electricity) must not be drowned by a long one. The series, their transforms and
   their ``sigma`` (with the reason for each) are in :func:`build_series`.
3. **Prior.** A weak penalty ``(u - u_prior) / 0.25`` per parameter, the block divided by
   ``sqrt(D)`` (so the whole prior weighs like one series), keeps parameters the data do
   not identify (e.g. ``gdp_growth_2017`` vs ``gdp_growth_2020``, which only enter the
   post-2020 level through their product) near their registry default instead of
   wandering along a flat valley. ``prior_weight = 0`` switches it off.
4. **Global search, then polish.** :func:`scipy.optimize.differential_evolution`
   (seeded, ``vectorized=True``: a whole generation goes through one call of
   :meth:`Objective.residuals_batch`, which runs the NumPy vector engine or, as a
   fallback, PySD in worker processes), then :func:`scipy.optimize.least_squares`
   (``trf``, bounds ``[0, 1]``, explicit ``x_scale`` and ``diff_step``) from the best
   member.
5. **Uncertainty.** At the optimum, ``cov = s^2 (J^T J)^-1`` from the Jacobian of the
   stacked weighted residuals (data and prior rows), ``s^2 = SSR / (N - p)``, and the
   same from the data rows alone, which the prior cannot mask: data-only correlations
   (pairs above :data:`PAIR_THRESHOLD` are not separately identified by the data) and
   data-only sd relative to the range (the identifiability); see
   :func:`parameter_uncertainty`.

The year windows and the simulated end year come from the data (:func:`build_series`,
:func:`fit_final_time`); :func:`check_history` refuses rows the method cannot use.

Everything is deterministic for a given seed (seeded DE, deterministic engines, a
deterministic polish).

The GDP census break (2019 -> 2020), the CEADs CO2 step (2010 -> 2012) and the
urban-district electricity boundary are handled as documented in :func:`build_series`
and in ``calibration/report/README.md``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import math
import multiprocessing
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from greenpath.calibration import anchors, metrics
from greenpath.calibration import history as hist
from greenpath.engines.base import Simulator
from greenpath.model import registry as reg
from greenpath.model.mdl import FINAL_TIME, INITIAL_TIME, MDL_PATH, TIME_STEP, model_hash

__all__ = [
    "CALIBRATION_FORMAT_VERSION",
    "CENSUS_BREAK_YEAR",
    "CO2_BREAK_YEAR",
    "DEFAULT_CUTOFF",
    "DEFAULT_PARAMETERS",
    "EIGEN_FLOOR",
    "FIT_RULES",
    "IDENTIFIED_SD_RANGE",
    "MODEL_FINAL_TIME",
    "OUTPUT_COLUMNS",
    "PAIR_THRESHOLD",
    "UNIDENTIFIED_SD_RANGE",
    "CalibrationError",
    "CalibrationResult",
    "FitParameter",
    "FitSeries",
    "Objective",
    "ParameterSpace",
    "PysdSimulator",
    "Uncertainty",
    "VectorSimulator",
    "build_series",
    "calibrate",
    "check_history",
    "fit_final_time",
    "fit_statistics",
    "load_calibration",
    "make_simulator",
    "parameter_uncertainty",
    "run_outputs",
    "series_pull",
    "simulate_frame",
    "synthetic_series",
    "write_calibration",
]

#: First simulated year (the model's INITIAL TIME, state at year-end 2005).
FIRST_YEAR = INITIAL_TIME
#: The model's FINAL TIME: no history row the fit compares may lie beyond it. A
#: calibration run simulates only up to the last year of its data
#: (:func:`fit_final_time`).
MODEL_FINAL_TIME = FINAL_TIME
#: First year on the post-census GDP basis (the 2019 -> 2020 level break).
CENSUS_BREAK_YEAR = 2020
#: Year of the CEADs CO2 step (43.3 Mt in 2010, 24.6 in 2012): half-way down, not fitted.
#: CEADs years before it are fitted for their shape, years after it in level.
CO2_BREAK_YEAR = 2011
#: Version of the calibration-file layout written by :func:`write_calibration` (the
#: top-level ``format_version`` key). 1 = files written before the key existed;
#: 2 adds the data-only uncertainty (``[uncertainty.data_only]``) and ``meta.final_time``.
#: ``greenpath.model.registry`` refuses versions it does not know.
CALIBRATION_FORMAT_VERSION = reg.CALIBRATION_FORMAT_VERSIONS[-1]
#: Model outputs every series is computed from.
OUTPUT_COLUMNS: tuple[str, ...] = (
    "gdp",
    "primary_va",
    "secondary_va",
    "tertiary_va",
    "co2_emissions",
    "electricity_consumption",
    "industrial_electricity_consumption",
    "residential_electricity_consumption",
    "coal_capacity",
    "co2_power",
    "captive_coal_capacity",
    "captive_coal_generation",
) + anchors.present_outputs()  # the physical anchors the model has (calibration/anchors.py)
#: Default last in-sample year of the out-of-sample check.
DEFAULT_CUTOFF = 2012
#: Default width of the prior penalty, in units of the registry range.
PRIOR_SIGMA_U = 0.25
#: Parameters closer than this (in units of their range) to a bound are reported as at it.
BOUND_TOLERANCE_U = 1e-3

# Industrial branch shares of 2005 value added must sum to one: when any of them is fitted,
# other manufacturing takes the remainder (it is written to the calibration as well).
BRANCH_SHARES: tuple[str, ...] = (
    "initial_share_nonferrous",
    "initial_share_chemicals",
    "initial_share_building_materials",
    "initial_share_steel",
    "initial_share_green_industry",
)
REMAINDER_SHARE = "initial_share_other_manufacturing"


class CalibrationError(ValueError):
    """A calibration request or calibration file is invalid (one line, names the cause)."""


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class FitParameter:
    """One registry uncertainty the calibration moves.

    Attributes
    ----------
    name : str
        Registry (Python) name.
    lower, upper : float
        Bounds, the registry ``min`` and ``max``.
    prior : float
        The registry default (the value before calibration).
    unit : str
        Registry unit.
    informed_by : str
        Which data are expected to inform it (shown in the report).
    """

    name: str
    lower: float
    upper: float
    prior: float
    unit: str
    informed_by: str = ""

    @property
    def span(self) -> float:
        """Width of the allowed range."""
        return self.upper - self.lower


#: The default fitted set: name -> which data inform it.
DEFAULT_PARAMETERS: dict[str, str] = {
    # growth drivers
    "initial_gdp": "real GDP level from 2020 (through the recorded growth chain)",
    "gdp_growth_2017": "real GDP level from 2020 only (product with 2020 growth); prior",
    "gdp_growth_2020": "real GDP level from 2020 only (product with 2017 growth); prior",
    "initial_primary_share": "sector shares",
    "initial_tertiary_share": "sector shares",
    "primary_growth_differential": "share trends, GDP growth, recorded sector growth",
    "tertiary_growth_differential": "share trends, GDP growth, recorded sector growth",
    "industry_growth_differential": "share trends, GDP growth, recorded sector growth",
    # industry structure and intensity trends
    "initial_share_nonferrous": "electricity level (aluminium smelting); other manufacturing is the remainder",
    "electricity_share_nonferrous": "electricity level",
    "initial_intensity_nonferrous": "electricity level, CO2 level",
    "initial_intensity_chemicals": "CO2 level",
    "initial_intensity_building_materials": "CO2 level",
    "initial_intensity_steel": "CO2 level",
    "initial_intensity_services": "non-industrial electricity (total minus industrial, 2017-19)",
    "services_electricity_share": "non-industrial electricity (total minus industrial, 2017-19)",
    "initial_residential_energy_per_capita": "CO2 level (household heating and cooking fuels)",
    "initial_residential_electricity_per_capita": "non-industrial electricity (total minus industrial, 2017-19)",
    "electricity_share_other_manufacturing": "industrial electricity level (whole city 2017-19)",
    "industrial_electrification_rate": "electricity trend (urban districts 2005-14, whole city 2017-19)",
    "industrial_autonomous_intensity_decline": "CO2 and electricity trends",
    # fuel switch, power plant dispatch (emission factors are not fitted: NDRC 2007 per fuel, registry)
    "autonomous_coal_switching": "CO2 trend",
    "public_coal_hours": "CO2 after the 2013-15 coal additions (public units on provincial dispatch)",
    "coal_maximum_hours": "CO2 around the 2010-11 captive retirements (captive units at their cap)",
    "policy_effort_gain": "CO2 and electricity trends (the 11th-13th FYP intensity targets in the dual-control loop)",
}


class ParameterSpace:
    """Map between unit-interval vectors ``u`` and model parameter dictionaries.

    Parameters
    ----------
    names : sequence of str
        Registry uncertainties to fit (default :data:`DEFAULT_PARAMETERS`).
    registry : mapping, optional
        A loaded registry (default :func:`greenpath.model.registry.load_registry`).

    Raises
    ------
    CalibrationError
        If a name is unknown, not an uncertainty, listed twice, or is the derived
        remainder share.
    """

    def __init__(self, names: Sequence[str] | None = None, registry: Mapping[str, Any] | None = None):
        registry = registry if registry is not None else reg.load_registry()
        names = list(names) if names is not None else list(DEFAULT_PARAMETERS)
        if not names:
            raise CalibrationError("no parameters to fit; allowed: registry uncertainties")
        seen: set[str] = set()
        params: list[FitParameter] = []
        for name in names:
            p = registry.get(name)
            if p is None:
                raise CalibrationError(
                    f"parameter {name!r} is not in the registry{reg.suggest(name, registry)}; "
                    "allowed: registry uncertainties"
                )
            if p.kind != "uncertainty":
                raise CalibrationError(
                    f"parameter {name!r} is a {p.kind}; allowed: registry uncertainties only"
                )
            if name == REMAINDER_SHARE:
                raise CalibrationError(
                    f"parameter {name!r} is derived (1 - the other branch shares); fit a branch share instead"
                )
            if name in seen:
                raise CalibrationError(f"parameter {name!r} is listed twice")
            seen.add(name)
            params.append(
                FitParameter(name, p.min, p.max, p.default, p.unit, DEFAULT_PARAMETERS.get(name, ""))
            )
        self.parameters = tuple(params)
        self.names = tuple(p.name for p in params)
        self.lower = np.array([p.lower for p in params])
        self.upper = np.array([p.upper for p in params])
        self.span = self.upper - self.lower
        self.prior_x = np.array([p.prior for p in params])
        self.prior_u = self.to_u(self.prior_x)
        self._registry = registry
        self.derives_remainder = any(n in BRANCH_SHARES for n in self.names)

    def __len__(self) -> int:
        """Return the number of parameters."""
        return len(self.parameters)

    def to_x(self, u: np.ndarray) -> np.ndarray:
        """Unit-interval coordinates -> parameter values (any leading shape), within the bounds."""
        # clip: lower + 1.0 * span can exceed upper by one ulp, which the registry would refuse
        return np.clip(self.lower + np.asarray(u, dtype=float) * self.span, self.lower, self.upper)

    def to_u(self, x: np.ndarray) -> np.ndarray:
        """Parameter values -> unit-interval coordinates."""
        return (np.asarray(x, dtype=float) - self.lower) / self.span

    def params_batch(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Model parameters for a batch ``u`` of shape (S, D): ``{name: array (S,)}``.

        Includes the derived remainder share when a branch share is fitted.
        """
        x = self.to_x(np.atleast_2d(u))
        out = {name: x[:, j] for j, name in enumerate(self.names)}
        if self.derives_remainder:
            out[REMAINDER_SHARE] = self.remainder(out)
        return out

    def remainder(self, values: Mapping[str, Any]) -> Any:
        """Other-manufacturing share implied by the branch shares in ``values``."""
        total = 0.0
        for name in BRANCH_SHARES:
            total = total + (values[name] if name in values else self._registry[name].default)
        return 1.0 - total

    def named(self, x: np.ndarray) -> dict[str, float]:
        """One parameter vector as ``{name: value}`` incl. any derived share."""
        values = {name: float(v) for name, v in zip(self.names, np.asarray(x, dtype=float), strict=True)}
        if self.derives_remainder:
            values[REMAINDER_SHARE] = float(self.remainder(values))
        return values

    def check_derived(self, values: Mapping[str, float]) -> None:
        """Raise if a derived share falls outside its registry range."""
        if REMAINDER_SHARE in values:
            self._registry[REMAINDER_SHARE].check(values[REMAINDER_SHARE], "derived remainder share")


# --------------------------------------------------------------------------- series

ErrorKind = Literal["relative", "absolute", "log_profiled"]
Transform = Literal["level", "share_pct", "growth_pct"]


@dataclass(frozen=True)
class FitSeries:
    """One observed series and how the simulation is compared with it.

    Attributes
    ----------
    key : str
        Identifier (used in the calibration file's ``[fit]`` table and in the report).
    label : str
        Human-readable name.
    variable : str
        History variable it comes from.
    observed : pandas.Series
        Observed values indexed by year (after any year window and cut-off).
    output : str
        Model output it is computed from.
    transform : {"level", "share_pct", "growth_pct"}
        ``level``: the output itself; ``share_pct``: 100 * output / gdp of the same year;
        ``growth_pct``: 100 * (output_y / output_{y-1} - 1).
    error : {"relative", "absolute", "log_profiled"}
        Residual form: ``(sim - obs) / (sigma * obs)``; ``(sim - obs) / sigma``; or
        ``(d - mean(d)) / sigma`` with ``d = log(sim) - log(obs)``, i.e. a fit of the
        shape with a constant factor profiled out (a boundary or basis ratio).
    sigma : float
        Stated uncertainty (relative for ``relative`` and ``log_profiled``, in the
        series' unit for ``absolute``).
    role : {"fitted", "cross-check"}
        Cross-checks are compared in the report but not scored.
    unit : str
        Unit of the compared values.
    rationale : str
        Why this transform and this sigma.
    group : str
        Series shown in one chart share a group.
    max_factor : float, optional
        For a profiled series: the largest plausible factor (e.g. 1 for a sub-area of
        the model's boundary, which cannot use more than the whole). A larger factor adds
        one residual ``log(k / max_factor) / sigma``.
    tag : str
        A name for the series' place in the method that does not depend on its years
        (``co2_pre_break``, ``co2_post_break``, ``co2_all``, ``share_pre_census``,
        ``share_post_census``, ...); keys carry the years, so the report finds series by
        tag.
    assumption : str
        For a shape-only series: the structural assumption that makes the level
        unusable (why a factor is profiled out); shown in the report's targets table.
    """

    key: str
    label: str
    variable: str
    observed: pd.Series
    output: str
    transform: Transform
    error: ErrorKind
    sigma: float
    role: Literal["fitted", "cross-check"]
    unit: str
    rationale: str
    group: str = ""
    max_factor: float | None = None
    tag: str = ""
    assumption: str = ""

    @property
    def shape_only(self) -> bool:
        """True when a constant factor is profiled out: the level is not fitted."""
        return self.error == "log_profiled"

    @property
    def years(self) -> np.ndarray:
        """Observed years (int)."""
        return self.observed.index.to_numpy(dtype=int)

    @property
    def n(self) -> int:
        """Number of observed points."""
        return int(self.observed.size)

    @property
    def n_residuals(self) -> int:
        """Number of residuals it contributes (points, plus one for a factor bound)."""
        return self.n + (1 if self.error == "log_profiled" and self.max_factor is not None else 0)

    def simulated(self, outputs: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
        """Return the simulated counterpart of the observations, shape (S, n).

        Parameters
        ----------
        outputs : mapping of str to numpy.ndarray
            Model outputs, each of shape (S, T) over ``years``.
        years : numpy.ndarray
            The simulated years (T,), consecutive.
        """
        idx = self.years - int(years[0])
        if idx.min() < 0 or idx.max() >= len(years):
            raise CalibrationError(
                f"series {self.key!r}: years {self.years.min()}-{self.years.max()} lie outside the "
                f"simulated years {years[0]}-{years[-1]}"
            )
        values = outputs[self.output]
        if self.transform == "level":
            return values[:, idx]
        if self.transform == "share_pct":
            return 100.0 * values[:, idx] / outputs["gdp"][:, idx]
        if idx.min() < 1:
            raise CalibrationError(f"series {self.key!r}: growth needs the year before {years[0] + 1}")
        return 100.0 * (values[:, idx] / values[:, idx - 1] - 1.0)

    def profile_factor(self, sim: np.ndarray) -> np.ndarray:
        """Constant factor k (S,) with ``obs ~ k * sim`` (geometric mean ratio); 1 if not profiled."""
        if self.error != "log_profiled":
            return np.ones(sim.shape[0])
        obs = self.observed.to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.log(np.maximum(sim, 1e-12)) - np.log(obs)
        return np.exp(-d.mean(axis=1))

    def residuals(self, sim: np.ndarray) -> np.ndarray:
        """Weighted residuals (S, n): stated-uncertainty scaling times ``1/sqrt(n)``."""
        obs = self.observed.to_numpy(dtype=float)
        if self.error == "relative":
            r = (sim - obs) / (self.sigma * np.abs(obs))
        elif self.error == "absolute":
            r = (sim - obs) / self.sigma
        else:
            d = np.log(np.maximum(sim, 1e-12)) - np.log(obs)
            mean = d.mean(axis=1, keepdims=True)
            r = (d - mean) / self.sigma
            if self.max_factor is not None:
                # log k = -mean(d); only a factor above the bound is penalised
                excess = np.maximum(0.0, -mean - math.log(self.max_factor)) / self.sigma
                return np.concatenate([r / math.sqrt(self.n), excess], axis=1)
        return r / math.sqrt(self.n)

    def compared(self, sim: np.ndarray) -> np.ndarray:
        """Return the simulated values as compared (profiled series scaled by their factor), (S, n)."""
        return sim * self.profile_factor(sim)[:, None]


def _window(s: pd.Series, first: int | None = None, last: int | None = None) -> pd.Series:
    out = s
    if first is not None:
        out = out[out.index >= first]
    if last is not None:
        out = out[out.index <= last]
    return out


def _span(years: Sequence[int] | np.ndarray, sep: str = "-", full: bool = False) -> str:
    """``2005-10`` style label of a year range (``2021`` for one year, ``none`` for no year).

    ``sep`` joins the two years; ``full`` writes the last one in full (``2005-2010``).
    """
    years = [int(y) for y in years]
    if not years:
        return "none"
    a, b = min(years), max(years)
    if a == b:
        return str(a)
    tail = f"{b % 100:02d}" if not full and a // 100 == b // 100 else str(b)
    return f"{a}{sep}{tail}"


def _key_span(years: Sequence[int] | np.ndarray, short: bool = False) -> str:
    """``2005_2010`` style key part of a year range (``2021_22`` if ``short``; ``2021`` for one year)."""
    return _span(years, "_", full=not short)


#: How the fit uses each history variable it reads (see :func:`build_series`). A variable
#: marked ``fitted`` in :data:`greenpath.calibration.history.VARIABLES` must have a rule
#: here; rows of these variables must lie within the model's years.
FIT_RULES: dict[str, str] = {
    "gdp_real_2020prices_100m_yuan": "real GDP level, every recorded year (post-census basis)",
    "gdp_real_growth_pct": f"real GDP growth, every recorded year from {FIRST_YEAR + 1} (needs the year before)",
    "gdp_current_100m_yuan": "denominator of the sector shares",
    **{f"{sector}_va_100m_yuan": f"share of GDP: shape only before {CENSUS_BREAK_YEAR} (pre-census basis), "
       f"level from {CENSUS_BREAK_YEAR}" for sector in ("primary", "secondary", "tertiary")},
    **{f"{sector}_va_growth_pct": "sector real growth, every recorded year from "
       f"{FIRST_YEAR + 1}" for sector in ("primary", "secondary", "tertiary")},
    "co2_emissions_mt": f"CEADs CO2: shape only {FIRST_YEAR}-{CO2_BREAK_YEAR - 1}, level from "
    f"{CO2_BREAK_YEAR + 1}, {CO2_BREAK_YEAR} (the step) not fitted",
    "electricity_consumption_100m_kwh": "whole-city electricity, level",
    "industrial_electricity_100m_kwh": "whole-city industrial electricity, level",
    "electricity_consumption_shixiaqu_100m_kwh": "urban-district electricity, shape only (ratio profiled out)",
    "industrial_electricity_shixiaqu_100m_kwh": "urban-district industrial electricity, shape only",
    "co2_emissions_mt_chen2020_countysum": "cross-check (compared, not scored)",
    **{a.variable: f"physical anchor, level (when the model has `{a.output}`; calibration/anchors.py)"
       for a in anchors.ANCHORS},
    "residential_electricity_100m_kwh": "cross-check (compared, not scored)",
    "coal_power_capacity_mw_gem_derived": "cross-check of a model input (compared, not scored)",
}


def check_history(history: pd.DataFrame) -> None:
    """Check up front that the fit can use every row of a history frame.

    Parameters
    ----------
    history : pandas.DataFrame
        As returned by :func:`greenpath.calibration.history.load_history`.

    Raises
    ------
    CalibrationError
        If a variable marked ``fitted`` in the history declarations has rows but no rule
        in :data:`FIT_RULES`, or a row of a variable the fit compares lies beyond the
        model's FINAL TIME (:data:`MODEL_FINAL_TIME`). The message names the file, the
        line, the variable, the year and what is allowed.

    Notes
    -----
    Rows before the model's first year (CEADs 2004, the 2005 growth rate, which needs
    2004) and the CEADs step year :data:`CO2_BREAK_YEAR` are real data the method leaves
    out on purpose; they are not errors.
    """
    origin = history.attrs.get("path", "history data")
    present = set(history["variable"])
    for name in sorted(present):
        spec = hist.VARIABLES.get(name)
        if spec is not None and spec.fitted and name not in FIT_RULES:
            line = int(history.loc[history["variable"] == name, "line"].iloc[0])
            raise CalibrationError(
                f"{origin}: line {line}: variable {name!r} is marked fitted but the calibration has no fit rule "
                f"for it; allowed: the variables of greenpath.calibration.fit.FIT_RULES ({len(FIT_RULES)}), or "
                "declare it not fitted"
            )
    used = history[history["variable"].isin(list(FIT_RULES))]
    late = used[used["year"] > MODEL_FINAL_TIME]
    if not late.empty:
        row = late.iloc[0]
        raise CalibrationError(
            f"{origin}: line {int(row['line'])}: variable {row['variable']!r}, year {int(row['year'])}: beyond the "
            f"model's FINAL TIME; allowed: years up to {MODEL_FINAL_TIME} (model/jiaozuo.mdl) for the variables "
            "the calibration compares"
        )


def fit_final_time(series: Sequence[FitSeries]) -> int:
    """Last year a calibration must simulate: the latest observed year of any series.

    Raises
    ------
    CalibrationError
        If that year lies beyond the model's FINAL TIME or there are no series.
    """
    if not series:
        raise CalibrationError("no series to compare; allowed: a history file with fitted variables")
    last = max(int(s.years.max()) for s in series if s.n)
    if last > MODEL_FINAL_TIME:
        worst = max(series, key=lambda s: int(s.years.max()) if s.n else 0)
        raise CalibrationError(
            f"series {worst.key!r} reaches {last}, beyond the model's FINAL TIME; allowed: years up to "
            f"{MODEL_FINAL_TIME}"
        )
    return max(last, FIRST_YEAR + 1)


def build_series(history: pd.DataFrame, co2_mode: Literal["profiled", "levels"] = "profiled") -> list[FitSeries]:
    """Assemble the fitted series and the cross-checks from a loaded history frame.

    Every year window comes from the data: a new year of an existing variable joins its
    series without a code change (a CEADs row after the step joins the level window, a
    new growth rate the growth series), and the simulation runs to the last year any
    series needs (:func:`fit_final_time`).

    Parameters
    ----------
    history : pandas.DataFrame
        As returned by :func:`greenpath.calibration.history.load_history`.
    co2_mode : {"profiled", "levels"}
        ``profiled`` (the method): CEADs before the step fitted for its shape, after it
        in level; ``levels`` (the sensitivity shown in the report): both regimes in
        level, equal weight.

    Returns
    -------
    list of FitSeries
        Fitted series first, then cross-checks. Keys carry the years of the data
        (``co2_ceads_2012_2015``); :attr:`FitSeries.tag` does not.

    Raises
    ------
    CalibrationError
        If :func:`check_history` refuses the frame or ``co2_mode`` is unknown.

    Notes
    -----
    How the traps of ``calibration/data/README.md`` are handled:

    * **Census break (GDP, sectors).** The model's GDP is real, in 2020 prices, on the
      post-census basis. Its *level* is fitted only to the derived real series (2020
      on); its *dynamics* to the recorded real growth rates (the model compounds them,
      so the residual tests that the sector sum keeps to them); sector structure to
      within-year *shares* (sector VA / GDP of the same year's nominal data), which are
      basis-consistent within a year: levels from :data:`CENSUS_BREAK_YEAR` on the
      post-census basis, and before the break the *shape* of each share with a constant
      basis factor profiled out (the census moved about 11 points of GDP from secondary
      to tertiary, a jump the model cannot and should not make).
    * **CEADs CO2 step 2010 -> 2012** (43.3 -> 24.6 Mt). The model's only driver of a
      step is the coal-capacity path (an input, 2010-11 retirements), which explains a
      fraction of it. Rather than averaging across the step, the level is fitted after it
      (from 2012, where CEADs and the independent county sum agree within about 10 %) and
      only the shape before it (a constant level factor profiled out, reported); the
      step year :data:`CO2_BREAK_YEAR`, halfway down, is not fitted. The county-sum
      series is a cross-check.
    * **Urban-district electricity 2005-14** (市辖区, a smaller boundary): fitted for its
      shape only, with a constant district/city ratio profiled out (reported; a ratio
      above 1 is penalised, since the districts cannot use more than the whole city);
      whole-city electricity is fitted in level.
    """
    if co2_mode not in ("profiled", "levels"):
        raise CalibrationError(f"co2_mode {co2_mode!r} is not known; allowed: profiled, levels")
    check_history(history)
    s = lambda v: hist.series(history, v)  # noqa: E731 - a local shorthand
    gdp_nom = s("gdp_current_100m_yuan")
    out: list[FitSeries] = []

    level = s("gdp_real_2020prices_100m_yuan")
    out.append(FitSeries(
        key="gdp_real_level", label="Real GDP, 2020 prices (post-census)",
        variable="gdp_real_2020prices_100m_yuan", observed=level,
        output="gdp", transform="level", error="relative", sigma=0.01, role="fitted",
        unit="100m yuan (2020 prices)", group="gdp_level", tag="gdp_level",
        rationale="sigma 1 % (assumption): 2020 is the official level; later years carry preliminary "
        "(初步核算) growth rates.",
    ))
    growth = _window(s("gdp_real_growth_pct"), FIRST_YEAR + 1)
    out.append(FitSeries(
        key="gdp_real_growth", label="Real GDP growth", variable="gdp_real_growth_pct",
        observed=growth, output="gdp", transform="growth_pct", error="absolute", sigma=1.0,
        role="fitted", unit="% per year", group="gdp_growth", tag="gdp_growth",
        rationale="sigma 1 pp (assumption): the model compounds these rates itself, so the "
        "residual only measures how far the sum of sectors departs from them.",
    ))
    pre_tag = f"pre{CENSUS_BREAK_YEAR}"
    post_tag = f"post{CENSUS_BREAK_YEAR}"
    for sector in ("primary", "secondary", "tertiary"):
        share = (s(f"{sector}_va_100m_yuan") / gdp_nom * 100.0).dropna()
        share = _window(share, FIRST_YEAR)
        share.name = f"{sector}_share_pct"
        post = _window(share, CENSUS_BREAK_YEAR)
        pre = _window(share, None, CENSUS_BREAK_YEAR - 1)
        out.append(FitSeries(
            key=f"{sector}_share_{post_tag}", label=f"{sector.capitalize()} share of GDP, {_span(post.index)}",
            variable=f"{sector}_va_100m_yuan", observed=post, output=f"{sector}_va",
            transform="share_pct", error="absolute", sigma=1.0, role="fitted", unit="% of GDP",
            group=f"{sector}_share", tag="share_post_census",
            rationale="sigma 1 pp (assumption): nominal shares on the post-census basis; the "
            "model's shares are real (2020 prices), equal to nominal in 2020.",
        ))
        out.append(FitSeries(
            key=f"{sector}_share_{pre_tag}", label=f"{sector.capitalize()} share of GDP, {_span(pre.index)} (shape)",
            variable=f"{sector}_va_100m_yuan", observed=pre, output=f"{sector}_va",
            transform="share_pct", error="log_profiled", sigma=0.03, role="fitted", unit="% of GDP",
            group=f"{sector}_share", tag="share_pre_census",
            rationale="sigma 3 % of the share (assumption): pre-census basis, so only the shape "
            "is fitted; a constant basis factor is profiled out.",
            assumption=f"census basis break {CENSUS_BREAK_YEAR - 1}->{CENSUS_BREAK_YEAR}: pre-census nominal shares "
            "are not on the model's basis (real 2020 prices, post-census), so only their shape is used",
        ))
    for sector in ("primary", "secondary", "tertiary"):
        g = _window(s(f"{sector}_va_growth_pct"), FIRST_YEAR + 1)
        out.append(FitSeries(
            key=f"{sector}_growth_{_key_span(g.index, short=True)}",
            label=f"{sector.capitalize()} VA real growth {_span(g.index)}",
            variable=f"{sector}_va_growth_pct", observed=g,
            output=f"{sector}_va", transform="growth_pct", error="absolute", sigma=2.0,
            role="fitted", unit="% per year", group="sector_growth", tag="sector_growth",
            rationale="sigma 2 pp (assumption): preliminary bulletin rates; the model has one "
            "growth differential per sector for the whole run.",
        ))
    co2 = _window(s("co2_emissions_mt"), FIRST_YEAR)
    levels = co2_mode == "levels"
    co2_pre = _window(co2, None, CO2_BREAK_YEAR - 1)
    co2_post = _window(co2, CO2_BREAK_YEAR + 1)
    out.append(FitSeries(
        key=f"co2_ceads_{_key_span(co2_pre.index)}",
        label=f"CO2, CEADs, {_span(co2_pre.index)}" + ("" if levels else " (shape)"),
        variable="co2_emissions_mt", observed=co2_pre, output="co2_emissions",
        transform="level", error="relative" if levels else "log_profiled", sigma=0.10, role="fitted",
        unit="Mt CO2", group="co2", tag="co2_pre_break",
        rationale=f"sigma 10 % (assumption for a downscaled city inventory); before the {CO2_BREAK_YEAR} step "
        + ("fitted in level with the same weight as the regime after it (sensitivity)." if levels else
           "only the shape is fitted: a constant level factor is profiled out, as for the census break."),
        assumption="" if levels else f"no exogenous break for the CEADs step around {CO2_BREAK_YEAR}: energy "
        "intensities are smooth stocks and coal generation follows capacity x hours, so the model cannot drop "
        "CO2 as CEADs does and only the shape before the step is used",
    ))
    out.append(FitSeries(
        key=f"co2_ceads_{_key_span(co2_post.index)}", label=f"CO2, CEADs, {_span(co2_post.index)}",
        variable="co2_emissions_mt", observed=co2_post, output="co2_emissions", transform="level",
        error="relative", sigma=0.10, role="fitted", unit="Mt CO2", group="co2", tag="co2_post_break",
        rationale="sigma 10 % (assumption for a downscaled city inventory); the level after the step, "
        "with today's power fleet and where the county sum agrees, anchors the CO2 level.",
    ))
    for key, var, output, label in (
        ("electricity_total", "electricity_consumption_100m_kwh", "electricity_consumption",
         "Electricity use, whole city"),
        ("electricity_industry", "industrial_electricity_100m_kwh", "industrial_electricity_consumption",
         "Industrial electricity use, whole city"),
    ):
        out.append(FitSeries(
            key=key, label=label, variable=var, observed=_window(s(var), FIRST_YEAR), output=output,
            transform="level", error="relative", sigma=0.03, role="fitted", unit="100m kWh", group=key, tag=key,
            rationale="sigma 3 % (assumption): yearbook totals on the model's boundary.",
        ))
    for key, var, output, label in (
        ("electricity_total_districts", "electricity_consumption_shixiaqu_100m_kwh",
         "electricity_consumption", "Electricity use, urban districts (shape)"),
        ("electricity_industry_districts", "industrial_electricity_shixiaqu_100m_kwh",
         "industrial_electricity_consumption", "Industrial electricity, urban districts (shape)"),
    ):
        out.append(FitSeries(
            key=key, label=label, variable=var, observed=_window(s(var), FIRST_YEAR), output=output,
            transform="level", error="log_profiled", sigma=0.05, role="fitted", unit="100m kWh", group=key, tag=key,
            rationale="sigma 5 % (assumption): urban districts only, so the district/city ratio "
            "is profiled out (assumed constant) and only the shape is fitted; a ratio above 1 "
            "(districts using more than the whole city) is penalised.",
            max_factor=1.0,
            assumption="boundary: the urban districts are part of the model's whole city (the ratio is a "
            "boundary factor, not a model error)",
        ))

    # physical anchors (tonnes), fitted in level when the model has the variable
    out.extend(anchors.anchor_series(history, FIRST_YEAR, MODEL_FINAL_TIME))

    # cross-checks: compared in the report, never scored
    out.append(FitSeries(
        key=f"co2_ceads_{_key_span(co2.index)}",
        label=f"CO2, CEADs, {_span(co2.index)} (both regimes)", variable="co2_emissions_mt",
        observed=co2, output="co2_emissions", transform="level", error="relative", sigma=0.10,
        role="cross-check", unit="Mt CO2", group="co2", tag="co2_all",
        rationale=f"every CEADs year in level: both regimes and the step year {CO2_BREAK_YEAR} (the headline "
        "CO2 statistic).",
    ))
    out.append(FitSeries(
        key="co2_county_sum", label="CO2, county sum (Chen et al. 2020)",
        variable="co2_emissions_mt_chen2020_countysum",
        observed=_window(s("co2_emissions_mt_chen2020_countysum"), FIRST_YEAR),
        output="co2_emissions", transform="level", error="relative", sigma=0.10, role="cross-check",
        unit="Mt CO2", group="co2_county", tag="co2_county",
        rationale="night-light downscaling smooths point sources; a lower cross-check only.",
    ))
    for sector in ("primary", "secondary", "tertiary"):
        share = _window((s(f"{sector}_va_100m_yuan") / gdp_nom * 100.0).dropna(), FIRST_YEAR, CENSUS_BREAK_YEAR - 1)
        out.append(FitSeries(
            key=f"{sector}_share_{pre_tag}_raw", label=f"{sector.capitalize()} share, {_span(share.index)}, unadjusted",
            variable=f"{sector}_va_100m_yuan", observed=share, output=f"{sector}_va",
            transform="share_pct", error="absolute", sigma=1.0, role="cross-check", unit="% of GDP",
            group=f"{sector}_share", tag="share_pre_census_raw",
            rationale="pre-census shares taken at face value (no basis factor).",
        ))
    out.append(FitSeries(
        key="electricity_residential", label="Urban-household electricity, whole city",
        variable="residential_electricity_100m_kwh",
        observed=_window(s("residential_electricity_100m_kwh"), FIRST_YEAR),
        output="residential_electricity_consumption", transform="level", error="relative", sigma=0.05,
        role="cross-check", unit="100m kWh", group="electricity_residential", tag="electricity_residential",
        rationale="labelled 城镇居民 (urban households only); the model's residential use covers all.",
    ))
    out.append(FitSeries(
        key="coal_capacity", label="Coal power capacity (GEM unit sum)",
        variable="coal_power_capacity_mw_gem_derived",
        observed=_window(s("coal_power_capacity_mw_gem_derived"), FIRST_YEAR),
        output="coal_capacity", transform="level", error="relative", sigma=0.01, role="cross-check",
        unit="MW", group="coal_capacity", tag="coal_capacity",
        rationale="an input of the model (unit commissioning and retirement tables): must be reproduced exactly.",
    ))
    # a window the data leave empty (or a profiled one with a single point) has nothing to fit
    return [x for x in out if x.n >= (2 if x.shape_only else 1)]


def apply_cutoff(series: Sequence[FitSeries], cutoff: int | None) -> list[FitSeries]:
    """Fitted series restricted to years <= ``cutoff`` (series left empty are dropped).

    A profiled series needs two points and a growth series one.
    """
    if cutoff is None:
        return [s for s in series if s.role == "fitted"]
    kept = []
    for s in series:
        if s.role != "fitted":
            continue
        obs = s.observed[s.observed.index <= cutoff]
        if obs.size == 0 or (s.error == "log_profiled" and obs.size < 2):
            continue
        kept.append(replace(s, observed=obs))
    return kept


def after_cutoff(series: Sequence[FitSeries], cutoff: int) -> list[FitSeries]:
    """Return the fitted series restricted to years > ``cutoff`` (the out-of-sample data).

    Profiled series keep their in-sample years too, so that the factor comes from the
    in-sample data; :func:`fit_statistics` is then applied to the later years only.
    """
    kept = []
    for s in series:
        if s.role != "fitted":
            continue
        later = s.observed[s.observed.index > cutoff]
        if later.size == 0:
            continue
        kept.append(replace(s, observed=later))
    return kept


# --------------------------------------------------------------------------- engines


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
        :func:`fit_final_time` of its series).
    """

    name = "vector"

    def __init__(self, workers: int = 1, final_time: int | None = None):
        from greenpath.engines.vector_loader import vector_model

        self._model = vector_model()  # the process's compiled model, shared with ensembles
        self.workers = workers
        self.final_time = _final_time(final_time)
        self.base = _base_params()
        self.n_runs = 0
        self.years = np.arange(FIRST_YEAR, self.final_time + 1)

    def simulate(self, params: Mapping[str, np.ndarray], n: int,
                 columns: Sequence[str] = OUTPUT_COLUMNS) -> dict[str, np.ndarray]:
        """Run ``n`` parameter sets; other parameters at their registry defaults.

        ``columns`` names the model outputs returned (default :data:`OUTPUT_COLUMNS`).
        """
        full: dict[str, Any] = dict(self.base)
        full.update(params)
        out = self._model.simulate(
            full, n=n, return_columns=list(columns), time_step=TIME_STEP, saveper=1.0,
            final_time=float(self.final_time), initial_time=float(FIRST_YEAR),
            workers=self.workers if n >= 512 else 1,
        )
        self.n_runs += n
        return {k: np.asarray(v, dtype=float) for k, v in out.items()}


_WORKER_MODEL: Any = None


def _pysd_worker_init() -> None:
    global _WORKER_MODEL
    import signal

    from greenpath.engines.pysd_engine import JiaozuoModel

    # Ctrl-C reaches the whole process group: the parent stops the pool and says so once
    # (a worker unwinding on SIGINT printed its own traceback)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    _WORKER_MODEL = JiaozuoModel()


def _pysd_run_many(args: tuple[list[dict[str, float]], int, tuple[str, ...]]) -> np.ndarray:
    batch, final_time, columns = args
    return _run_pysd_batch(_WORKER_MODEL, batch, final_time, columns)


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
        self._pool = None
        if self.workers > 1:
            # fork on Linux: workers need not re-import the caller's __main__; each still
            # loads its own model in the initializer (PySD models cannot be shared)
            method = "fork" if sys.platform.startswith("linux") else "spawn"
            ctx = multiprocessing.get_context(method)
            self._pool = ctx.Pool(self.workers, initializer=_pysd_worker_init)

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
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


# --------------------------------------------------------------------------- objective


class Objective:
    """Weighted residuals of a batch of parameter vectors, through one engine call.

    Parameters
    ----------
    simulator : Simulator
        The engine (vector or PySD).
    series : sequence of FitSeries
        The fitted series (cross-checks are ignored).
    space : ParameterSpace
        The fitted parameters.
    prior_weight : float
        Weight of the prior block (0 switches it off; 1 = one series' worth).
    """

    def __init__(self, simulator: Simulator, series: Sequence[FitSeries], space: ParameterSpace,
                 prior_weight: float = 1.0):
        self.simulator = simulator
        self.series = [s for s in series if s.role == "fitted"]
        if not self.series:
            raise CalibrationError("no fitted series with data (check --cutoff)")
        self.space = space
        if prior_weight < 0 or not math.isfinite(prior_weight):
            raise CalibrationError(f"prior weight {prior_weight!r} is not allowed; allowed: a number >= 0")
        self.prior_weight = prior_weight
        self.n_data = sum(s.n_residuals for s in self.series)
        self.n_points = sum(s.n for s in self.series)
        self.n_prior = len(space) if prior_weight > 0 else 0
        self.n_evaluations = 0

    @property
    def n_residuals(self) -> int:
        """Length of the residual vector (data then prior rows)."""
        return self.n_data + self.n_prior

    def outputs_batch(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for a batch ``u`` (S, D)."""
        u = np.clip(np.atleast_2d(np.asarray(u, dtype=float)), 0.0, 1.0)
        self.n_evaluations += u.shape[0]
        return self.simulator.simulate(self.space.params_batch(u), u.shape[0])

    def residuals_from_outputs(self, u: np.ndarray, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Stacked weighted residuals (S, M) for outputs already simulated."""
        years = self.simulator.years
        parts = [s.residuals(s.simulated(outputs, years)) for s in self.series]
        if self.n_prior:
            u = np.atleast_2d(u)
            scale = math.sqrt(self.prior_weight / len(self.space)) / PRIOR_SIGMA_U
            parts.append((u - self.space.prior_u) * scale)
        r = np.concatenate(parts, axis=1)
        # a parameter set that breaks the model (NaN, inf) is simply very bad
        return np.where(np.isfinite(r), r, 1e6)

    def residuals_batch(self, u: np.ndarray) -> np.ndarray:
        """Weighted residuals for a batch of unit-interval vectors, (S, D) -> (S, M)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        return self.residuals_from_outputs(u, self.outputs_batch(u))

    def residuals(self, u: np.ndarray) -> np.ndarray:
        """Weighted residuals (M,) of one vector (for ``least_squares``)."""
        return self.residuals_batch(np.asarray(u)[None, :])[0]

    def cost_batch(self, u_t: np.ndarray) -> np.ndarray:
        """Sum of squared residuals for DE's vectorised call: ``u_t`` is (D, S)."""
        r = self.residuals_batch(np.asarray(u_t).T)
        return np.sum(r * r, axis=1)

    def jacobian(self, u: np.ndarray, diff_step: float) -> np.ndarray:
        """Forward-difference Jacobian (M, D) in one batch of D + 1 runs.

        The step follows scipy's ``2-point`` rule for ``diff_step``
        (``h = diff_step * max(1, |u|)``, which is ``diff_step`` on [0, 1]), taken
        backwards where a forward step would leave the upper bound.
        """
        u = np.asarray(u, dtype=float)
        d = u.size
        h = np.full(d, diff_step) * np.maximum(1.0, np.abs(u))
        h = np.where(u + h > 1.0, -h, h)
        batch = np.vstack([u, u + np.diag(h)])
        r = self.residuals_batch(batch)
        return ((r[1:] - r[0]) / h[:, None]).T


# --------------------------------------------------------------------------- fitting


@dataclass
class FitOutcome:
    """Result of one fit (main or out-of-sample)."""

    x: np.ndarray
    u: np.ndarray
    cost: float
    de_cost: float
    de_generations: int
    de_evaluations: int
    ls_evaluations: int
    ls_status: int
    ls_message: str
    n_runs: int
    seconds: float
    population: np.ndarray | None = None  # DE's last population (unit coordinates), best first


def fit(objective: Objective, seed: int, maxiter: int = 300, popsize: int = 12,
        diff_step: float = 1e-4, tol: float = 1e-7, polish_max_nfev: int = 200,
        x0_u: np.ndarray | None = None, progress: Callable[[str], None] | None = None) -> FitOutcome:
    """Global search with differential evolution, then a bounded least-squares polish.

    Parameters
    ----------
    objective : Objective
        The residual function.
    seed : int
        Seed of differential evolution (the only random element).
    maxiter : int
        Maximum DE generations (0 skips DE: polish only, from ``x0_u`` or the prior).
    popsize : int
        DE population per parameter.
    diff_step : float
        Forward-difference step of the polish, in units of each parameter's range.
    tol : float
        DE relative convergence tolerance.
    polish_max_nfev : int
        Maximum Jacobian evaluations of ``least_squares``.
    x0_u : numpy.ndarray, optional
        Starting point in unit coordinates (default: the prior).
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    FitOutcome
    """
    from scipy.optimize import differential_evolution, least_squares

    started = time.perf_counter()
    runs0 = objective.simulator.n_runs
    space = objective.space
    start = np.asarray(space.prior_u if x0_u is None else x0_u, dtype=float)
    d = len(space)
    de_cost = math.nan
    generations = 0
    de_evals = 0
    population = None
    if maxiter > 0:
        result = differential_evolution(
            objective.cost_batch, bounds=[(0.0, 1.0)] * d, rng=np.random.default_rng(seed),
            maxiter=maxiter, popsize=popsize, tol=tol, atol=0.0, mutation=(0.5, 1.0),
            recombination=0.7, init="latinhypercube",
            polish=False, updating="deferred", vectorized=True, x0=start,
        )
        start = np.clip(result.x, 0.0, 1.0)
        de_cost = float(result.fun)
        generations = int(result.nit)
        de_evals = int(result.nfev)
        population = np.clip(np.asarray(result.population, dtype=float), 0.0, 1.0)
        if progress:
            progress(f"differential evolution: {generations} generations, {de_evals} runs, cost {de_cost:.4g}")
    nfev = {"jac": 0, "fun": 0}

    def fun(u: np.ndarray) -> np.ndarray:
        nfev["fun"] += 1
        return objective.residuals(u)

    def jac(u: np.ndarray) -> np.ndarray:
        nfev["jac"] += 1
        return objective.jacobian(u, diff_step)

    ls = least_squares(
        fun, start, jac=jac, bounds=(np.zeros(d), np.ones(d)), method="trf",
        x_scale=np.ones(d),  # u is already in units of each parameter's registry range
        diff_step=diff_step,  # documents the step; the batched `jac` applies the same rule
        ftol=1e-10, xtol=1e-10, gtol=1e-10, max_nfev=polish_max_nfev,
    )
    u = np.clip(ls.x, 0.0, 1.0)
    cost = float(np.sum(objective.residuals(u) ** 2))
    if progress:
        progress(f"least_squares polish: cost {cost:.4g} ({ls.message})")
    return FitOutcome(
        x=space.to_x(u), u=u, cost=cost, de_cost=de_cost, de_generations=generations,
        de_evaluations=de_evals, ls_evaluations=nfev["fun"] + nfev["jac"] * (d + 1),
        ls_status=int(ls.status), ls_message=str(ls.message),
        n_runs=objective.simulator.n_runs - runs0, seconds=time.perf_counter() - started,
        population=population,
    )


#: Data-only pairs with ``|r|`` above this are "not separately identified by the data".
PAIR_THRESHOLD = 0.8
#: Data-only sd (in units of the registry range) up to which a parameter counts as
#: identified: its data-only ~95 % interval (±1.96 sd) is narrower than the range.
IDENTIFIED_SD_RANGE = 0.25
#: Data-only sd (range units) beyond which the data say nothing the range does not.
UNIDENTIFIED_SD_RANGE = 1.0
#: Eigenvalues of the data-only information ``J_d^T J_d`` below this fraction of the
#: largest are raised to it (a very weak ridge), so that an exact collinearity or a
#: parameter with no effect shows as ``|r| ~ 1`` and an sd far beyond the range, not a
#: failed inversion. The forward-difference Jacobian (step 1e-4) is accurate to about
#: 1e-4, so eigenvalues below ~1e-8 of the largest are noise; noise lifts a null
#: eigenvalue rather than hiding it, so a floor well below that level is the
#: conservative choice (it never makes a parameter look better identified than the
#: Jacobian says; a larger floor would act as a prior).
EIGEN_FLOOR = 1e-12


@dataclass
class Uncertainty:
    """Approximate parameter uncertainty at the optimum (see :func:`parameter_uncertainty`).

    Two views over the parameters inside their bounds: the *posterior* (data and prior
    rows: what the calibration's intervals are) and the *data-only* one (data rows alone:
    what the data by themselves pin down; the prior can hide non-identifiability, e.g.
    two parameters that enter only as a product).

    Attributes
    ----------
    sd : numpy.ndarray
        Posterior standard deviation in parameter units (NaN for parameters at a bound).
    correlation : numpy.ndarray
        Posterior correlation matrix (D, D); rows and columns of parameters at a bound
        are NaN.
    at_bound : numpy.ndarray
        -1 at the lower bound, +1 at the upper bound, 0 inside.
    s2 : float
        Residual variance ``SSR / (N - p)``.
    dof : int
        ``N - p``, N data residuals, p free parameters.
    prior_sd : numpy.ndarray
        The standard deviation the prior rows alone would give (parameter units).
    condition : float
        Condition number of ``J^T J`` over the free parameters.
    data_sd : numpy.ndarray
        Data-only standard deviation in parameter units, from ``s^2 (J_d^T J_d)^-1``
        over the free parameters (NaN at a bound). Far above the range when the data do
        not identify the parameter.
    data_correlation : numpy.ndarray
        Data-only correlation matrix (D, D), NaN at a bound; independent of ``s2``.
    data_sd_unit : numpy.ndarray
        ``data_sd`` at ``s^2 = 1`` (the stated sigmas taken at face value), in units of
        the registry range; the identifiability of a noise-free (synthetic) fit.
    data_condition : float
        Condition number of ``J_d^T J_d`` (after the eigenvalue floor).
    span : numpy.ndarray
        Registry ranges (max - min) of the parameters.
    """

    sd: np.ndarray
    correlation: np.ndarray
    at_bound: np.ndarray
    s2: float
    dof: int
    prior_sd: np.ndarray
    condition: float
    data_sd: np.ndarray = field(default_factory=lambda: np.array([]))
    data_correlation: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    data_sd_unit: np.ndarray = field(default_factory=lambda: np.array([]))
    data_condition: float = math.nan
    span: np.ndarray = field(default_factory=lambda: np.array([]))

    def pairs(self, names: Sequence[str], threshold: float = PAIR_THRESHOLD,
              data_only: bool = False) -> list[tuple[str, str, float]]:
        """Parameter pairs with ``|r| > threshold``, strongest first.

        ``data_only`` takes the data-only correlations (all parameters) instead of the
        posterior ones (free parameters).
        """
        corr = self.data_correlation if data_only else self.correlation
        out = []
        d = len(names)
        for i in range(d):
            for j in range(i + 1, d):
                r = corr[i, j]
                if np.isfinite(r) and abs(r) > threshold:
                    out.append((names[i], names[j], float(r)))
        return sorted(out, key=lambda t: -abs(t[2]))

    @property
    def data_sd_range(self) -> np.ndarray:
        """Data-only sd in units of the registry range (the identifiability measure)."""
        return self.data_sd / self.span

    @property
    def sd_ratio(self) -> np.ndarray:
        """Posterior sd / prior-only sd (near 1: the prior, not the data, sets the width)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sd / self.prior_sd

    def identification(self, names: Sequence[str], threshold: float = PAIR_THRESHOLD) -> list[str]:
        """One verdict per parameter on what the data alone pin down.

        ``identified`` (data-only sd at most :data:`IDENTIFIED_SD_RANGE` of the range),
        ``weakly identified`` (up to :data:`UNIDENTIFIED_SD_RANGE`), ``not identified by
        the data`` (beyond); a parameter in a data-only pair with ``|r| > threshold`` is
        additionally ``not separately identified from`` its partners.
        """
        partners: dict[str, list[str]] = {n: [] for n in names}
        for a, b, _ in self.pairs(names, threshold, data_only=True):
            partners[a].append(b)
            partners[b].append(a)
        out = []
        for name, sdr, bound in zip(names, self.data_sd_range, self.at_bound, strict=True):
            if bound:
                out.append(f"at its {'lower' if bound < 0 else 'upper'} bound: held by the range, not the data")
                continue
            if not math.isfinite(sdr) or sdr > UNIDENTIFIED_SD_RANGE:
                verdict = "not identified by the data"
            elif sdr > IDENTIFIED_SD_RANGE:
                verdict = "weakly identified"
            else:
                verdict = "identified"
            if partners[name]:
                shown = ", ".join(f"`{p}`" for p in partners[name][:3])
                more = f" and {len(partners[name]) - 3} more" if len(partners[name]) > 3 else ""
                verdict += f"; not separately identified from {shown}{more}"
            out.append(verdict)
        return out


def at_bounds(u: np.ndarray) -> np.ndarray:
    """-1 / +1 where ``u`` is within :data:`BOUND_TOLERANCE_U` of 0 / 1, else 0."""
    u = np.asarray(u, dtype=float)
    return np.where(u <= BOUND_TOLERANCE_U, -1, np.where(u >= 1.0 - BOUND_TOLERANCE_U, 1, 0))


def _floored_inverse(h: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse of a symmetric PSD matrix with eigenvalues floored at :data:`EIGEN_FLOOR` x max."""
    w, v = np.linalg.eigh(h)
    top = float(w.max()) if w.size and w.max() > 0 else 1.0
    w = np.maximum(w, top * EIGEN_FLOOR)
    return (v / w) @ v.T, float(w.max() / w.min())


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = cov / np.outer(sd, sd)
    np.fill_diagonal(c, 1.0)
    return c


def _linearised(objective: Objective, u: np.ndarray, diff_step: float, jacobian: np.ndarray | None,
                residuals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the Jacobian and the residuals at ``u``, computing those not given."""
    j = objective.jacobian(u, diff_step) if jacobian is None else jacobian
    r = objective.residuals(u) if residuals is None else residuals
    return j, r


def parameter_uncertainty(objective: Objective, u: np.ndarray, diff_step: float = 1e-4, *,
                          jacobian: np.ndarray | None = None,
                          residuals: np.ndarray | None = None) -> Uncertainty:
    """Posterior and data-only uncertainty from the Jacobian of the weighted residuals at ``u``.

    Parameters
    ----------
    objective : Objective
        The residual function used in the fit.
    u : numpy.ndarray
        Optimum in unit coordinates.
    diff_step : float
        Forward-difference step (units of the parameter range).
    jacobian, residuals : numpy.ndarray, optional
        ``objective.jacobian(u, diff_step)`` and ``objective.residuals(u)`` when the
        caller already has them (the report shares them with :func:`series_pull`);
        computed here otherwise.

    Returns
    -------
    Uncertainty

    Notes
    -----
    *Posterior*: ``cov = s^2 (J^T J)^-1`` with ``J`` the Jacobian of all rows (data and
    prior), over the parameters *inside* their bounds (an active bound is a constraint,
    not an estimate, so those parameters are held fixed and get no interval). The prior
    rows keep a parameter the data do not inform at roughly its prior width (compare
    ``sd`` with ``prior_sd``) instead of an infinite one -- which also hides it.

    *Data-only*: ``cov_d = s^2 (J_d^T J_d)^-1`` with ``J_d`` the data rows alone, over
    the same free parameters (those at a bound held there, as for the posterior);
    eigenvalues below :data:`EIGEN_FLOOR` times the largest are floored, so a
    combination the data cannot see shows as ``|r| ~ 1`` and an sd far beyond the range.
    Correlations do not depend on ``s^2``.

    Both are local, linearised estimates that take the stated sigmas and ``1/sqrt(n)``
    weights as if they were inverse standard deviations and ignore the autocorrelation of
    structural errors, so intervals are indicative and likely too narrow where the
    structure misfits.
    """
    space = objective.space
    u = np.asarray(u, dtype=float)
    bound = at_bounds(u)
    free = bound == 0
    d = len(space)
    sd = np.full(d, np.nan)
    corr = np.full((d, d), np.nan)
    j, r = _linearised(objective, u, diff_step, jacobian, residuals)
    j = j[:, free]
    p = int(free.sum())
    dof = max(1, objective.n_data - p)
    s2 = float(np.sum(r**2) / dof)
    cond = math.nan
    data_sd_unit = np.full(d, np.nan)
    data_corr = np.full((d, d), np.nan)
    data_cond = math.nan
    if p:
        jtj = j.T @ j
        cov_u = s2 * np.linalg.pinv(jtj)
        sd[free] = np.sqrt(np.clip(np.diag(cov_u), 0.0, None)) * space.span[free]
        corr[np.ix_(free, free)] = _correlation(cov_u)
        cond = float(np.linalg.cond(jtj))
        j_data = j[: objective.n_data]
        cov_unit, data_cond = _floored_inverse(j_data.T @ j_data)
        data_sd_unit[free] = np.sqrt(np.clip(np.diag(cov_unit), 0.0, None))
        data_corr[np.ix_(free, free)] = _correlation(cov_unit)
    if objective.n_prior:
        prior_sd_u = PRIOR_SIGMA_U * math.sqrt(len(space) / objective.prior_weight) * math.sqrt(s2)
    else:
        prior_sd_u = math.inf
    return Uncertainty(sd=sd, correlation=corr, at_bound=bound, s2=s2, dof=dof,
                       prior_sd=np.full(d, prior_sd_u) * space.span, condition=cond,
                       data_sd=data_sd_unit * math.sqrt(s2) * space.span,
                       data_correlation=data_corr, data_sd_unit=data_sd_unit,
                       data_condition=data_cond, span=np.array(space.span, dtype=float))


def series_pull(objective: Objective, u: np.ndarray, diff_step: float = 1e-4, *,
                jacobian: np.ndarray | None = None, residuals: np.ndarray | None = None) -> pd.DataFrame:
    """How hard each fitted series pulls each parameter at ``u``: ``d(cost_k)/du_j``.

    Parameters
    ----------
    objective : Objective
        The residual function used in the fit.
    u : numpy.ndarray
        The point (unit coordinates), usually the optimum.
    diff_step : float
        Forward-difference step.
    jacobian, residuals : numpy.ndarray, optional
        As for :func:`parameter_uncertainty`: given, they are not recomputed.

    Returns
    -------
    pandas.DataFrame
        Index: series keys (plus ``prior`` when the prior is on); columns: parameter
        names. A positive entry means that series' cost falls when the parameter
        *decreases*: at a lower bound, the series that pull the parameter below it.
    """
    j, r = _linearised(objective, u, diff_step, jacobian, residuals)
    rows, keys, start = [], [], 0
    for s in objective.series:
        stop = start + s.n_residuals
        rows.append(2.0 * r[start:stop] @ j[start:stop])
        keys.append(s.key)
        start = stop
    if objective.n_prior:
        rows.append(2.0 * r[start:] @ j[start:])
        keys.append("prior")
    return pd.DataFrame(rows, index=keys, columns=list(objective.space.names))


# --------------------------------------------------------------------------- statistics


def simulate_frame(simulator: Simulator, values: Mapping[str, float],
                   columns: Sequence[str] = OUTPUT_COLUMNS) -> pd.DataFrame:
    """One run as a years x outputs frame (parameters not given stay at their prior).

    ``columns`` names the model outputs (default :data:`OUTPUT_COLUMNS`).
    """
    out = simulator.simulate({k: np.array([v]) for k, v in values.items()}, 1, columns)
    return pd.DataFrame({k: v[0] for k, v in out.items()}, index=pd.Index(simulator.years, name="year"))


def run_outputs(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Return one run's years and ``{output: array (1, T)}``, as :meth:`FitSeries.simulated` takes them.

    ``frame`` is a years x outputs frame (:func:`simulate_frame`).
    """
    return frame.index.to_numpy(dtype=int), {c: frame[c].to_numpy(dtype=float)[None, :] for c in frame.columns}


def fit_statistics(frame: pd.DataFrame, series: Sequence[FitSeries],
                   factors_from: Sequence[FitSeries] | None = None) -> pd.DataFrame:
    """Per-series goodness of fit of one simulation.

    Parameters
    ----------
    frame : pandas.DataFrame
        Model outputs indexed by year (must contain :data:`OUTPUT_COLUMNS` used).
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


# --------------------------------------------------------------------------- calibration


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class RefitResult:
    """A secondary fit: out-of-sample (data up to a cut-off) or a weighting sensitivity."""

    name: str
    description: str
    values: dict[str, float]
    cost: float
    n_points: int
    statistics: pd.DataFrame


@dataclass
class CalibrationResult:
    """Everything ``greenpath calibrate`` writes to the calibration file."""

    space: ParameterSpace
    values: dict[str, float]
    outcome: FitOutcome
    statistics: pd.DataFrame
    uncertainty: Uncertainty
    meta: dict[str, Any]
    out_of_sample: RefitResult | None = None
    sensitivity: RefitResult | None = None
    series: list[FitSeries] = field(default_factory=list)
    posterior: Any = None  # calibration/posterior.py PosteriorResult
    backtest: Any = None  # calibration/backtest.py BacktestResult


def calibrate(history_path: Path | None = None, *, names: Sequence[str] | None = None, seed: int = 20240,
              maxiter: int = 300, popsize: int = 12, cutoff: int | None = DEFAULT_CUTOFF,
              prior_weight: float = 1.0, sensitivity: bool = True, engine: str = "auto", workers: int = 1,
              progress: Callable[[str], None] | None = None, posterior_steps: int = 0,
              backtest: bool = False) -> CalibrationResult:
    """Fit the model to the history file, then the out-of-sample refit and the sensitivity.

    Parameters
    ----------
    history_path : Path, optional
        History CSV (default: the packaged ``calibration/data/history.csv``).
    names : sequence of str, optional
        Parameters to fit (default :data:`DEFAULT_PARAMETERS`).
    seed : int
        Seed of differential evolution.
    maxiter, popsize : int
        Differential-evolution budget: generations and population per parameter.
    cutoff : int or None
        Last year of the out-of-sample refit (None: no out-of-sample check).
    prior_weight : float
        Weight of the prior block (see the module docstring).
    sensitivity : bool
        Also refit with both CEADs regimes in level (the report's CO2 sensitivity).
    engine : {"auto", "vector", "pysd"}
        Simulation engine.
    workers : int
        Worker processes.
    progress : callable, optional
        Receives progress lines.
    posterior_steps : int
        Steps of the posterior MCMC (:mod:`greenpath.calibration.posterior`; 0, the
        default of this function: no posterior sample; ``greenpath calibrate`` passes
        :data:`greenpath.calibration.posterior.DEFAULT_STEPS`).
    backtest : bool
        Also run the backtest (:mod:`greenpath.calibration.backtest`); its chain is as
        long as the main one. It runs in a forked second process while the main
        fit and posterior run (:mod:`greenpath.calibration.parallel`; in this process
        with the PySD engine or where fork is unavailable), with the same result.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    greenpath.calibration.history.HistoryError
        If the history file is malformed (names file, line and value).
    CalibrationError
        If a parameter name or option is not allowed.
    """
    started = time.perf_counter()
    history_path = Path(history_path) if history_path is not None else hist.DEFAULT_HISTORY_PATH
    history = hist.load_history(history_path)
    all_series = build_series(history)
    final_time = fit_final_time(all_series)
    space = ParameterSpace(names)
    last_fitted = max(int(s.years.max()) for s in all_series if s.role == "fitted")
    if cutoff is not None and not FIRST_YEAR + 2 <= cutoff <= last_fitted - 1:
        raise CalibrationError(
            f"cutoff {cutoff} is not allowed; allowed: a year {FIRST_YEAR + 2}-{last_fitted - 1} (at least one "
            f"fitted year, the data's last {last_fitted}, must lie after it)"
        )
    if maxiter < 0 or popsize < 1:
        raise CalibrationError(
            f"maxiter {maxiter} / popsize {popsize} not allowed; allowed: maxiter >= 0, popsize >= 1"
        )
    if isinstance(posterior_steps, bool) or not isinstance(posterior_steps, int) or posterior_steps < 0:
        raise CalibrationError(
            f"posterior steps {posterior_steps!r} not allowed; allowed: a whole number >= 0 (0 = no posterior sample)"
        )
    simulator = make_simulator(engine, workers, final_time)
    job = None
    if backtest:  # on the second core while the main fit and posterior run (calibration/parallel.py)
        from greenpath.calibration import backtest as B
        from greenpath.calibration import parallel as par
        from greenpath.calibration import posterior as P

        bt_steps = posterior_steps or P.DEFAULT_STEPS  # as long as the main chain (it runs alongside)
        bt_burn = P.DEFAULT_BURN if bt_steps == P.DEFAULT_STEPS else bt_steps // 2

        def _run_backtest() -> Any:
            return B.run_backtest(simulator, all_series, space, seed, maxiter, popsize, prior_weight,
                                  steps=bt_steps, burn=bt_burn, thin=max(1, (bt_steps - bt_burn) // 4),
                                  progress=progress)

        job = par.start_backtest(_run_backtest, parallel=None if engine != "pysd" else False)
    try:
        fitted = apply_cutoff(all_series, None)
        objective = Objective(simulator, fitted, space, prior_weight)
        if progress:
            progress(f"fitting {len(space)} parameters to {len(fitted)} series "
                     f"({objective.n_points} points) with the {simulator.name} engine")
        outcome = fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
        values = space.named(outcome.x)
        space.check_derived(values)
        unc = parameter_uncertainty(objective, outcome.u)
        stats = fit_statistics(simulate_frame(simulator, values), all_series)
        oos = None
        if cutoff is not None:
            insample = apply_cutoff(all_series, cutoff)
            oos = refit(simulator, insample, space, seed, maxiter, popsize, prior_weight,
                        name="out_of_sample", description=f"refit on data up to {cutoff}; scored on later years",
                        score=after_cutoff(all_series, cutoff), progress=progress)
        sens = None
        if sensitivity:
            alt = build_series(history, co2_mode="levels")
            regimes = ", ".join(_span(s.years) for s in alt if s.tag in ("co2_pre_break", "co2_post_break"))
            sens = refit(simulator, apply_cutoff(alt, None), space, seed, maxiter, popsize, prior_weight,
                         name="co2_levels", description=f"both CEADs regimes ({regimes}) fitted in level",
                         score=alt, progress=progress)
        post = None
        if posterior_steps > 0:
            from greenpath.calibration import posterior as P

            steps = posterior_steps
            burn = P.DEFAULT_BURN if steps == P.DEFAULT_STEPS else steps // 2
            post = P.sample_posterior(Objective(simulator, fitted, space, 0.0), outcome.u, seed, steps=steps,
                                      burn=burn, thin=max(1, (steps - burn) // 4),
                                      start_population=outcome.population, progress=progress)
        back = job.result() if job is not None else None
        n_runs = simulator.n_runs + (back.n_runs if back is not None else 0)  # the backtest has its own engines
    finally:
        if job is not None:
            job.cancel()
        close = getattr(simulator, "close", None)
        if close:
            close()
    meta = {
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "data_file": _display_path(history_path),
        "data_sha256": sha256_file(history_path),
        "model_file": "model/jiaozuo.mdl",
        "model_sha256": model_hash(MDL_PATH),
        "registry_sha256": sha256_file(reg.REGISTRY_PATH),
        "seed": seed,
        "method": "differential_evolution (scipy, best1bin, latin-hypercube init, vectorized, deferred updating, "
        "x0 = prior) then least_squares (trf, bounds [0, 1] in registry-range units, x_scale 1, "
        "forward-difference Jacobian, diff_step 1e-4)",
        "engine": simulator.name,
        "de_maxiter": maxiter,
        "de_popsize": popsize,
        "de_generations": outcome.de_generations,
        "least_squares_status": outcome.ls_message,
        "prior_weight": prior_weight,
        "prior_sigma_range_units": PRIOR_SIGMA_U,
        "time_step": TIME_STEP,
        "final_time": final_time,
        "fitted": list(space.names),
        "derived": [REMAINDER_SHARE] if space.derives_remainder else [],
        "objective_cost": outcome.cost,
        "objective_cost_de": outcome.de_cost,
        "n_data_points": objective.n_points,
        "n_model_runs_main_fit": outcome.n_runs,
        "n_model_runs": n_runs,
        "wall_time_main_fit_s": round(outcome.seconds, 2),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "cutoff": cutoff if cutoff is not None else -1,
        "python": platform.python_version(),
    }
    return CalibrationResult(space, values, outcome, stats, unc, meta, oos, sens, all_series, post, back)


def refit(simulator: Simulator, fitted: Sequence[FitSeries], space: ParameterSpace, seed: int, maxiter: int,
          popsize: int, prior_weight: float, *, name: str, description: str, score: Sequence[FitSeries],
          factors_from: Sequence[FitSeries] | None = None,
          progress: Callable[[str], None] | None = None) -> RefitResult:
    """Fit ``fitted`` and score the result on ``score``.

    For an out-of-sample check ``fitted`` holds the years up to the cut-off and ``score``
    the later years; profiled series then take their factor from the in-sample data.
    """
    objective = Objective(simulator, fitted, space, prior_weight)
    if progress:
        progress(f"{name}: {description} ({len(objective.series)} series, {objective.n_points} points)")
    outcome = fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
    values = space.named(outcome.x)
    frame = simulate_frame(simulator, values)
    stats = fit_statistics(frame, score, factors_from=factors_from if factors_from is not None else fitted)
    return RefitResult(name, description, values, outcome.cost, objective.n_points, stats)


def _display_path(path: Path) -> str:
    """Return a repository-relative path where possible (never an absolute path of this machine)."""
    path = Path(path).resolve()
    root = MDL_PATH.resolve().parents[1]
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


_STAT_FIELDS = ("n", "first_year", "last_year", "mape_pct", "lewis_grade", "r_squared", "rmse", "mae",
                "u_m", "u_s", "u_c", "factor")


def _stats_table(stats: pd.DataFrame) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for key, row in stats.iterrows():
        entry: dict[str, Any] = {"role": str(row["role"])}
        for f in _STAT_FIELDS:
            v = row[f]
            if f in ("n", "first_year", "last_year"):
                entry[f] = int(v)
            elif isinstance(v, str):
                entry[f] = v
            else:
                fv = float(v)
                if math.isfinite(fv):  # undefined statistics (e.g. R² of one point) are left out
                    entry[f] = fv
        table[str(key)] = entry
    return table


def stats_from_table(table: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Inverse of the ``[fit]`` table: a frame like :func:`fit_statistics` (missing = NaN)."""
    rows = []
    for key, entry in table.items():
        row = {"key": key, "role": entry.get("role", "")}
        for f in _STAT_FIELDS:
            row[f] = entry.get(f, "" if f == "lewis_grade" else math.nan)
        rows.append(row)
    return pd.DataFrame(rows).set_index("key")


def _refit_table(r: RefitResult) -> dict[str, Any]:
    return {"description": r.description, "cost": r.cost, "n_points": r.n_points,
            "parameters": {k: float(v) for k, v in r.values.items()}, "fit": _stats_table(r.statistics)}


def calibration_document(result: CalibrationResult) -> dict[str, Any]:
    """Return the TOML document (a dict) for a calibration result."""
    space, unc = result.space, result.uncertainty
    doc: dict[str, Any] = {"format_version": CALIBRATION_FORMAT_VERSION, "meta": dict(result.meta)}
    doc["parameters"] = {k: float(v) for k, v in result.values.items()}
    doc["prior"] = {p.name: p.prior for p in space.parameters}
    names = list(space.names)
    doc["uncertainty"] = {
        "note": "sd from s2 (J^T J)^-1 of the weighted residuals (data and prior rows); parameters at a bound "
        "have none. [uncertainty.data_only]: the data rows alone, over all fitted parameters",
        "s2": unc.s2, "dof": unc.dof,
        "sd": {n: float(v) for n, v in zip(names, unc.sd, strict=True) if math.isfinite(v)},
        "sd_over_prior_sd": {n: float(v) for n, v in zip(names, unc.sd_ratio, strict=True) if math.isfinite(v)},
        "at_bound": {n: int(b) for n, b in zip(names, unc.at_bound, strict=True) if b},
        "data_only": {
            "sd_over_range": {n: float(v) for n, v in zip(names, unc.data_sd_range, strict=True)
                              if math.isfinite(v)},
            "identification": dict(zip(names, unc.identification(names), strict=True)),
            "pairs": [{"a": a, "b": b, "r": r} for a, b, r in unc.pairs(names, data_only=True)],
            "condition": unc.data_condition,
        },
    }
    doc["fit"] = _stats_table(result.statistics)
    if result.out_of_sample is not None:
        doc["out_of_sample"] = _refit_table(result.out_of_sample)
        doc["out_of_sample"]["cutoff"] = result.meta["cutoff"]
    if result.sensitivity is not None:
        doc["sensitivity"] = {result.sensitivity.name: _refit_table(result.sensitivity)}
    if getattr(result, "posterior", None) is not None:
        doc["posterior"] = {"file": "posterior.csv", **result.posterior.diagnostics()}
    if getattr(result, "backtest", None) is not None:
        doc["backtest"] = result.backtest.document()
    return doc


HEADER = """\
# Calibrated parameter set of the Jiaozuo model, written by `greenpath calibrate`.
# [parameters] replaces the registry defaults of these uncertainties (model/parameters.csv)
# whenever this file exists; GREENPATH_CALIBRATION=none runs on the registry priors.
# format_version is the layout of this file (greenpath refuses versions it does not know);
# [meta] says what produced it, [fit] holds the in-sample statistics per series (the
# regression test reruns the model and compares), [out_of_sample] the refit up to the
# cut-off year, [sensitivity] the refit with another CO2 weighting. Regenerate on purpose:
#   greenpath calibrate --force --report calibration/report
"""


def write_calibration(result: CalibrationResult, path: Path, force: bool = False) -> Path:
    """Write the calibration file atomically; refuse to replace one without ``force``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``force`` is false.
    """
    import tomli_w

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace the calibration")
    reg.validate(result.values, "calibrated parameters")  # never write a file the model would refuse
    doc = calibration_document(result)
    if getattr(result, "posterior", None) is not None:
        from greenpath.calibration import posterior as P

        hashes = P.source_hashes(None)
        hashes["history_sha256"] = result.meta["data_sha256"]
        doc["posterior"]["file"] = P.POSTERIOR_FILE
        doc["posterior"]["sha256"] = P.write_posterior(result.posterior, path.with_name(P.POSTERIOR_FILE), hashes)
    text = HEADER + "\n" + tomli_w.dumps(doc)
    from greenpath.files import atomic_write

    # A temporary name, then a rename: a full or read-only disk leaves neither a
    # truncated file nor a stray temporary behind.
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=True)


def load_calibration(path: Path) -> dict[str, Any]:
    """Read and check a calibration file written by :func:`write_calibration`.

    Raises
    ------
    CalibrationError
        If the file is missing, not TOML, has a ``format_version`` the registry does not
        know (see :data:`CALIBRATION_FORMAT_VERSION`), lacks the ``[meta]``,
        ``[parameters]`` or ``[fit]`` tables, or a parameter is not a registry
        uncertainty within range.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found; run `greenpath calibrate` first")
    from greenpath import tomlfile

    doc = tomlfile.read(path, CalibrationError, source=str(path), what="a calibration file")
    try:
        reg.calibrated(path)  # the registry's own checks: format version, names, kinds, ranges
    except reg.RegistryError as exc:
        raise CalibrationError(str(exc)) from None
    for table in ("meta", "parameters", "fit"):
        if not isinstance(doc.get(table), dict):
            raise CalibrationError(f"{path}: missing [{table}] table; allowed: a file written by greenpath calibrate")
    return doc
