"""Results in the IAMC template, the table energy-scenario tools exchange.

The IAMC (Integrated Assessment Modeling Consortium) template has one row per model,
scenario, region, variable and unit, and one column per year::

    Model,Scenario,Region,Variable,Unit,2005,2006,...,2035
    greenpath 0.1.0,baseline,Jiaozuo,co2_emissions,MtCO2/Year,33.1,...

It is what ``pyam.IamDataFrame(path)`` reads (CSV, or the ``data`` sheet of an XLSX),
as do the IIASA scenario explorers and openENTRANCE/nomenclature tools.  Variables keep
the model's own names (``greenpath vars`` lists them with their units), so a result
can be traced back to the equation that made it; units are the model's.

Public API
----------
``frame_to_iamc(frames, units, ...) -> DataFrame``
    Years x variables frames per scenario (``RunResult.frame``) to the template.
``long_to_iamc(long, ...) -> DataFrame``
    A long table (scenario, variable, year, value, unit: the batch result format) to
    the template; a ``run_id`` column, when there is more than one run per scenario,
    becomes part of the scenario name (``name|run 12``).
``write_iamc(table, path, overwrite=False) -> Path``
    Write it as ``.csv`` (UTF-8 without BOM: readers take the first header as
    ``Model``) or ``.xlsx`` (sheet ``data``, the sheet pyam reads by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

REGION = "Jiaozuo"
INDEX = ["Model", "Scenario", "Region", "Variable", "Unit"]


class IamcError(ValueError):
    """A table that cannot be written in the IAMC template."""


def model_name() -> str:
    """Return the ``Model`` column: ``greenpath`` and the package version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"greenpath {version('greenpath')}"
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled copy
        return "greenpath"


def frame_to_iamc(frames: Mapping[str, pd.DataFrame], units: Mapping[str, str],
                  variables: Iterable[str] | None = None, years: Iterable[int] | None = None,
                  model: str | None = None, region: str = REGION) -> pd.DataFrame:
    """Put yearly results of several scenarios in the IAMC template.

    Parameters
    ----------
    frames
        Scenario name -> years x variables frame (``RunResult.frame``).
    units
        Variable -> unit.
    variables
        The variables to keep, in this order (default: every column of the first frame).
    years
        The years to keep (default: every year of the frames).
    model, region
        The ``Model`` (default :func:`model_name`) and ``Region`` columns.

    Returns
    -------
    DataFrame
        Columns ``Model, Scenario, Region, Variable, Unit`` and one per year (int).
    """
    if not frames:
        raise IamcError("no scenarios to write")
    rows = []
    for scenario, frame in frames.items():
        names = list(variables) if variables is not None else list(frame.columns)
        missing = [v for v in names if v not in frame.columns]
        if missing:
            raise IamcError(f"scenario {scenario!r} has no results for {missing}")
        chosen = frame[names]
        if years is not None:
            wanted = [int(y) for y in years]
            absent = sorted(set(wanted) - {int(y) for y in chosen.index})
            if absent:
                raise IamcError(f"scenario {scenario!r} has no results for the years {absent}")
            chosen = chosen.loc[wanted]
        for var in names:
            row: dict[str | int, object] = {
                "Model": model or model_name(), "Scenario": scenario, "Region": region,
                "Variable": var, "Unit": units.get(var, "")}
            row.update({int(y): float(v) for y, v in chosen[var].items()})
            rows.append(row)
    return _check(pd.DataFrame(rows))


def long_to_iamc(long: pd.DataFrame, model: str | None = None,
                 region: str = REGION) -> pd.DataFrame:
    """Turn a long result table (scenario, variable, year, value, unit) into the template.

    Parameters
    ----------
    long
        Columns ``scenario, variable, year, value, unit`` and optionally ``run_id``
        (the batch result set).  With several runs of one scenario the run id is added
        to its name (``plan_2021|run 7``), since the template has no run column.
    model, region
        The ``Model`` and ``Region`` columns.

    Returns
    -------
    DataFrame
        The IAMC table.
    """
    need = {"scenario", "variable", "year", "value", "unit"}
    missing = need - set(long.columns)
    if missing:
        raise IamcError(f"long table lacks the columns {sorted(missing)}")
    data = long.copy()
    if "run_id" in data.columns and data.groupby("scenario")["run_id"].nunique().max() > 1:
        data["scenario"] = data["scenario"].astype(str) + "|run " + data["run_id"].astype(str)
    wide = data.pivot_table(index=["scenario", "variable", "unit"], columns="year",
                            values="value", aggfunc="first", sort=False)
    wide.columns = [int(c) for c in wide.columns]
    wide = wide.reset_index().rename(columns={"scenario": "Scenario", "variable": "Variable",
                                              "unit": "Unit"})
    wide.insert(0, "Model", model or model_name())
    wide.insert(2, "Region", region)
    return _check(wide)


def _check(table: pd.DataFrame) -> pd.DataFrame:
    """Order the columns and refuse what IAMC readers refuse (duplicate rows, gaps)."""
    years = sorted(c for c in table.columns if c not in INDEX)
    table = table[[*INDEX, *years]]
    dup = table.duplicated(subset=INDEX)
    if dup.any():
        first = table.loc[dup, INDEX].iloc[0].tolist()
        raise IamcError(f"the row {first} appears twice; the template allows one per "
                        "model, scenario, region, variable and unit")
    if table[INDEX].isna().any().any() or (table[INDEX].astype(str) == "").any().any():
        bad = table.loc[(table[INDEX].isna() | (table[INDEX].astype(str) == "")).any(axis=1),
                        INDEX].iloc[0].tolist()
        raise IamcError(f"the row {bad} has an empty Model, Scenario, Region, Variable or "
                        "Unit (a variable without a unit cannot be exchanged)")
    return table.reset_index(drop=True)


def write_iamc(table: pd.DataFrame, path: Path, overwrite: bool = False) -> Path:
    """Write an IAMC table as ``.csv`` or ``.xlsx`` (sheet ``data``), atomically.

    Parameters
    ----------
    table
        From :func:`frame_to_iamc` or :func:`long_to_iamc`.
    path
        The file; its suffix chooses the format.
    overwrite
        Replace an existing file (otherwise :class:`~greenpath.files.OutputExistsError`).

    Returns
    -------
    Path
        ``path``.
    """
    from greenpath.files import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise IamcError(f"{path}: the IAMC table is written as .csv or .xlsx, not {suffix or 'no suffix'!r}")
    table = _check(table)

    def write(tmp: Path) -> None:
        if suffix == ".csv":
            table.to_csv(tmp, index=False, float_format="%.12g", encoding="utf-8")
        else:
            with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
                table.to_excel(xw, sheet_name="data", index=False)

    return atomic_write(path, write, overwrite=overwrite)


__all__ = ["INDEX", "REGION", "IamcError", "frame_to_iamc", "long_to_iamc", "model_name",
           "write_iamc"]
