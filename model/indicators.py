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


def peak(frame: pd.DataFrame, column: str = "co2_emissions",
         from_year: int = BASE_YEAR) -> tuple[int, float]:
    """Year and value of the maximum of ``column`` from ``from_year`` on.

    A series still rising in the last year has its peak in the last year: callers
    should read that as "not yet peaked".
    """
    s = frame.loc[frame.index >= from_year, column]
    year = int(s.idxmax())
    return year, float(s.loc[year])


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
