"""The fit series: which recorded data the calibration compares with which model output, and how.

:func:`build_series` turns the history file (:mod:`greenpath.calibration.history`) into
:class:`FitSeries`: the year windows, transforms (level, share of GDP, growth) and
stated uncertainties ``sigma`` of every fitted series and cross-check, each with the
reason for it. :data:`FIT_RULES` says how each history variable is used;
:func:`check_history` refuses rows the method cannot use; :func:`fit_final_time` is the
last year a calibration must simulate; :func:`apply_cutoff` and :func:`after_cutoff` cut
the series at a year for an out-of-sample check.

The GDP census break (2019 -> 2020), the CEADs CO2 step (2010 -> 2012) and the
urban-district electricity boundary are handled as documented in :func:`build_series`
and in ``calibration/report/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from greenpath.calibration import anchors
from greenpath.calibration import history as hist
from greenpath.calibration.errors import CalibrationError
from greenpath.model.mdl import FINAL_TIME, INITIAL_TIME

__all__ = [
    "CENSUS_BREAK_YEAR",
    "CO2_BREAK_YEAR",
    "FIRST_YEAR",
    "FIT_RULES",
    "MODEL_FINAL_TIME",
    "OUTPUT_COLUMNS",
    "FitSeries",
    "after_cutoff",
    "apply_cutoff",
    "build_series",
    "check_history",
    "fit_final_time",
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
                f"for it; allowed: the variables of greenpath.calibration.series.FIT_RULES ({len(FIT_RULES)}), or "
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
    in-sample data; :func:`greenpath.calibration.scoring.fit_statistics` is then applied to the later years only.
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
