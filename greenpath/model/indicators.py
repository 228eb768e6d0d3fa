"""Headline indicators derived from a run's yearly table.

Kept outside the .mdl because they compare years with each other (change vs the 2020
base year, peak year, cumulative sums); every engine's output goes through the same
functions, so they cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASE_YEAR = 2020
HEADLINE = [
    "gdp", "industrial_va", "total_energy_consumption", "energy_intensity",
    "total_coal_consumption", "total_coal_consumption_physical", "non_fossil_share",
    "renewable_capacity", "wind_capacity", "pv_capacity", "biomass_capacity",
    "coal_capacity", "co2_emissions", "co2_including_imports", "co2_intensity",
    "electricity_consumption", "net_electricity_import",
]


def change_vs(frame: pd.DataFrame, column: str, base_year: int = BASE_YEAR) -> pd.Series:
    """Relative change of ``column`` against ``base_year`` (0.1 = +10%)."""
    base = frame.loc[base_year, column]
    return frame[column] / base - 1.0


#: A rise from the lowest point after the maximum to the last year larger than this
#: (relative to that low) is a rebound: the maximum is then not a peak (稳中有降 fails).
REBOUND_TOLERANCE = 0.01


def peak_status(frame: pd.DataFrame, column: str = "co2_emissions",
                from_year: int = BASE_YEAR) -> dict[str, float | int | bool]:
    """Maximum of ``column`` from ``from_year`` on and whether it is a peak.

    A peak is a maximum followed by no higher year and no rebound to the last year
    (稳中有降, stable then falling): the series may not rise from its lowest point after
    the maximum to its last year by more than :data:`REBOUND_TOLERANCE`. A maximum in the
    last year (still rising), or a maximum followed by a fall and a rebound (e.g. the
    2020 history point followed by policies switching on and growth taking over again),
    is "not peaked".

    Returns
    -------
    dict
        ``max_year``, ``max_value``, ``low_year``, ``low_value`` (lowest point from the
        maximum on), ``last_year``, ``last_value``, ``rebound`` (last / low - 1) and
        ``peaked``.
    """
    s = frame.loc[frame.index >= from_year, column]
    max_year = int(s.idxmax())
    after = s.loc[s.index >= max_year]
    low_year = int(after.idxmin())
    low, last = float(after.loc[low_year]), float(after.iloc[-1])
    rebound = (last / low - 1.0) if low > 0 else 0.0
    last_year = int(s.index.max())
    peaked = bool(max_year < last_year and rebound <= REBOUND_TOLERANCE)
    return {"max_year": max_year, "max_value": float(s.loc[max_year]), "low_year": low_year,
            "low_value": low, "last_year": last_year, "last_value": last, "rebound": rebound,
            "peaked": peaked}


def peak_years(window: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Peak year of each row of ``window`` (runs x ``years``) by the rule of :func:`peak_status`.

    A row that has not peaked gets the last of ``years``; the vectorised twin of
    :func:`peak` for ensembles (targets, sensitivity).
    """
    top = np.argmax(window, axis=1)
    cols = np.arange(window.shape[1])
    after = np.where(cols[None, :] >= top[:, None], window, np.inf)
    low = after.min(axis=1)
    last = window[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rebound = np.where(low > 0, last / low - 1.0, 0.0)
    peaked = (top < window.shape[1] - 1) & (rebound <= REBOUND_TOLERANCE)
    return np.where(peaked, years[top], years[-1]).astype(float)


def peak(frame: pd.DataFrame, column: str = "co2_emissions",
         from_year: int = BASE_YEAR) -> tuple[int, float]:
    """Year and value of the peak of ``column`` from ``from_year`` on.

    A series that has not peaked (see :func:`peak_status`: still rising in the last
    year, or rising again after a fall from its maximum) returns its last year and value:
    callers read a peak in the last year as "not peaked".
    """
    st = peak_status(frame, column, from_year)
    if st["peaked"]:
        return int(st["max_year"]), float(st["max_value"])
    return int(st["last_year"]), float(st["last_value"])


def cumulative(frame: pd.DataFrame, column: str = "co2_emissions",
               start: int = 2021, end: int = 2035) -> float:
    """Sum of yearly values ``start``..``end`` inclusive."""
    s = frame.loc[(frame.index >= start) & (frame.index <= end), column]
    return float(s.sum())


def industrial_energy_saving(frame: pd.DataFrame, year: int,
                             base_year: int = BASE_YEAR) -> float:
    """Industrial energy saved in ``year`` against frozen ``base_year`` intensity (10k tce)."""
    intensity0 = frame.loc[base_year, "industrial_final_energy"] / frame.loc[base_year, "industrial_va"]
    return float(frame.loc[year, "industrial_va"] * intensity0 - frame.loc[year, "industrial_final_energy"])


def summary(frame: pd.DataFrame) -> dict[str, float]:
    """Key numbers of a run: 2025 changes vs 2020, peak, cumulative CO2."""
    out: dict[str, float] = {}
    for col, label in (("energy_intensity", "energy_intensity_change_2025"),
                       ("total_coal_consumption", "coal_change_2025"),
                       ("co2_intensity", "co2_intensity_change_2025")):
        if col in frame and 2025 in frame.index:
            out[label] = float(change_vs(frame, col).loc[2025])
    if "co2_emissions" in frame:
        year, value = peak(frame)
        out["co2_peak_year"] = year
        out["co2_peak_mt"] = value
        out["co2_cumulative_2021_2035_mt"] = cumulative(frame)
    for col in ("renewable_capacity", "non_fossil_share"):
        if col in frame and 2025 in frame.index:
            out[f"{col}_2025"] = float(frame.loc[2025, col])
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in out.items()
            if not (isinstance(v, float) and np.isnan(v))}
