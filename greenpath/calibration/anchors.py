"""Physical-anchor fit series: recorded physical quantities the calibration fits in level.

The money series (GDP, shares) say how large the economy is; the physical anchors say how
much of it is energy-intensive industry. Each anchor pairs a history variable
(``calibration/data/history.csv``) with the model variable that simulates the same
quantity. An anchor joins the fit only when

* the history file has rows of its variable, and
* the model (``model/jiaozuo.mdl``) defines its model variable.

Otherwise it is skipped, and :func:`skipped` says why (the report prints the reasons), so a
model without a variable (an older or newer structure) still calibrates.

Anchors whose model counterpart is a stock of the capacity *input* (the coal fleet, GEM
unit sum) stay cross-checks in :func:`greenpath.calibration.series.build_series`: they test
the input tables, not a fitted parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from greenpath.calibration import history as hist
from greenpath.engines.pysd_engine import MDL_PATH

__all__ = ["ANCHORS", "Anchor", "anchor_series", "model_variables", "present_outputs", "skipped"]


@dataclass(frozen=True)
class Anchor:
    """One physical anchor: a history variable, the model variable, and its stated error."""

    key: str
    label: str
    variable: str
    output: str
    unit: str
    sigma: float
    rationale: str


#: The physical anchors. sigma: relative error of the recorded value (stated per anchor).
ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        key="aluminium_output", label="Primary aluminium output (physical anchor)",
        variable="primary_aluminium_output_10k_t", output="primary_aluminium_output",
        unit="10k t", sigma=0.05,
        rationale="sigma 5 % (assumption): above-scale industry output of the statistical bulletin; "
        "the model's tonnes are non-ferrous value added x aluminium output per value added (registry), "
        "so the anchor pins the non-ferrous branch's size and, through tonnes x kWh/t, its electricity.",
    ),
    Anchor(
        key="caustic_soda_output", label="Caustic soda output (physical anchor)",
        variable="caustic_soda_output_10k_t", output="caustic_soda_output",
        unit="10k t", sigma=0.05,
        rationale="sigma 5 % (assumption): above-scale industry output of the statistical bulletin; "
        "the model's tonnes are chemicals value added x caustic soda per value added (registry), so the "
        "anchor pins the chemicals branch's size and its chlor-alkali electricity.",
    ),
)

_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9 _]*?)\s*(?:=|\(|:)", re.MULTILINE)


@lru_cache(maxsize=4)
def _variables_of(text: str) -> frozenset[str]:
    return frozenset(m.group(1).strip().lower().replace(" ", "_") for m in _NAME.finditer(text))


def model_variables() -> frozenset[str]:
    """Python names of every variable ``model/jiaozuo.mdl`` defines (read from the file)."""
    return _variables_of(MDL_PATH.read_text(encoding="utf-8"))


def present_outputs() -> tuple[str, ...]:
    """Model outputs of the anchors that the model defines (added to the fit's outputs)."""
    names = model_variables()
    return tuple(a.output for a in ANCHORS if a.output in names)


def skipped(history: pd.DataFrame) -> list[tuple[str, str]]:
    """Anchors left out of the fit, each with the reason (``[(key, reason)]``)."""
    names = model_variables()
    present = set(history["variable"])
    out = []
    for a in ANCHORS:
        if a.variable not in present:
            out.append((a.key, f"no rows of `{a.variable}` in the history file"))
        elif a.output not in names:
            out.append((a.key, f"the model has no variable `{a.output}` (model/jiaozuo.mdl)"))
    return out


def anchor_series(history: pd.DataFrame, first_year: int, last_year: int) -> list:
    """Return the fitted series of the anchors the data and the model both have.

    Parameters
    ----------
    history : pandas.DataFrame
        As returned by :func:`greenpath.calibration.history.load_history`.
    first_year, last_year : int
        The model's years: rows outside them are not used.

    Returns
    -------
    list of greenpath.calibration.series.FitSeries
    """
    from greenpath.calibration.series import FitSeries

    names = model_variables()
    present = set(history["variable"])
    out = []
    for a in ANCHORS:
        if a.variable not in present or a.output not in names:
            continue
        obs = hist.series(history, a.variable)
        obs = obs[(obs.index >= first_year) & (obs.index <= last_year)]
        if obs.empty:
            continue
        out.append(FitSeries(
            key=a.key, label=a.label, variable=a.variable, observed=obs, output=a.output,
            transform="level", error="relative", sigma=a.sigma, role="fitted", unit=a.unit,
            group=a.key, tag="physical_anchor", rationale=a.rationale,
        ))
    return out
