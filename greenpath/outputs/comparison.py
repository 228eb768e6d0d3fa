"""Comparison tables: scenarios x variables x years, with the difference to a reference.

``greenpath table`` builds them for meetings ("baseline vs plan_2021 vs ambitious in
2025/2030/2035: GDP, energy, coal, renewables, CO2") without a batch run, from the runs
of :func:`greenpath.runners.report.run_for_table` (an output never runs the model).

Public API
----------
``DEFAULT_VARIABLES``, ``DEFAULT_YEARS``
    What a table shows unless told otherwise.
``build(scenarios, frames, units, variables, years, vs=None, lang="en") -> DataFrame``
    The table: one row per variable and scenario, one column per year, and with ``vs``
    the absolute and relative difference to the reference scenario per year.
``variable_label(name, lang) -> str``
    A variable's name for people (the ``var_<name>`` strings), else its model name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

DEFAULT_VARIABLES = ("gdp", "total_energy_consumption", "total_coal_consumption",
                     "renewable_capacity", "non_fossil_share", "co2_emissions",
                     "co2_including_imports")
DEFAULT_YEARS = (2025, 2030, 2035)


class ComparisonError(ValueError):
    """A table that cannot be built (unknown variable, year outside the run)."""


def variable_label(name: str, lang: str) -> str:
    """Return a variable's label in ``lang`` (``var_<name>``), or the model name."""
    from greenpath.i18n import t_or

    return t_or(f"var_{name}", lang, name)


def scenario_title(scenario, lang: str) -> str:
    """Return the scenario's title in ``lang`` (the other language, then its name)."""
    first, second = ("title_zh", "title_en") if lang == "zh" else ("title_en", "title_zh")
    return getattr(scenario, first) or getattr(scenario, second) or scenario.name


def build(scenarios: Mapping, frames: Mapping[str, pd.DataFrame], units: Mapping[str, str],
          variables: Sequence[str] = DEFAULT_VARIABLES, years: Sequence[int] = DEFAULT_YEARS,
          vs: str | None = None, lang: str = "en") -> pd.DataFrame:
    """Build the comparison table.

    Parameters
    ----------
    scenarios
        Name -> Scenario (for titles), in the order of the rows.
    frames
        Name -> years x variables results.
    units
        Variable -> unit (the model's unit, plus its words in ``lang``).
    variables, years
        What to show.
    vs
        The reference scenario (one of ``scenarios``): adds per year the difference
        ``value - reference`` in the variable's unit and ``value / reference - 1`` in %.
    lang
        ``en`` or ``zh`` for the headers, indicator names, units and titles.

    Returns
    -------
    DataFrame
        Columns: variable, indicator, unit, scenario, title, one per year, then with
        ``vs`` one difference and one % difference per year (headers in ``lang``).
    """
    from greenpath.i18n import t, unit_text

    if vs is not None and vs not in frames:
        raise ComparisonError(f"--vs {vs!r} is not one of the scenarios {list(frames)}")
    for name, frame in frames.items():
        missing = [v for v in variables if v not in frame.columns]
        if missing:
            raise ComparisonError(f"scenario {name!r} has no results for {missing}")
        absent = [y for y in years if y not in frame.index]
        if absent:
            raise ComparisonError(f"years {absent} outside the simulated years "
                                  f"{frame.index.min()}-{frame.index.max()}")
    col = {k: t(f"table_col_{k}", lang) for k in ("variable", "label", "unit", "scenario",
                                                   "title")}
    rows = []
    for var in variables:
        ref = frames[vs].loc[list(years), var] if vs is not None else None
        for name, frame in frames.items():
            values = frame.loc[list(years), var]
            unit = units.get(var, "")
            words = unit_text(unit, lang) if unit else ""
            row: dict[str, object] = {
                col["variable"]: var, col["label"]: variable_label(var, lang),
                col["unit"]: f"{words} ({unit})" if words and words != unit else unit,
                col["scenario"]: name, col["title"]: scenario_title(scenarios[name], lang),
            }
            row.update({str(y): float(values[y]) for y in years})
            if ref is not None:
                for y in years:
                    row[t("table_col_diff", lang, year=y, ref=vs)] = float(values[y] - ref[y])
                for y in years:
                    base = float(ref[y])
                    row[t("table_col_diff_pct", lang, year=y, ref=vs)] = (
                        100.0 * (float(values[y]) / base - 1.0) if base != 0 else float("nan"))
            rows.append(row)
    return pd.DataFrame(rows)


def format_text(table: pd.DataFrame) -> str:
    """Return the table as aligned text for a terminal (4 significant digits)."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if value != value else f"{value:.4g}"
        return str(value)

    shown = table.drop(columns=table.columns[[0, 4]])  # model name and title: in the file
    text = [[str(c) for c in shown.columns]]
    text += [[cell(v) for v in row] for row in shown.itertuples(index=False)]

    def width(s: str) -> int:  # CJK characters take two columns in a terminal
        return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)

    widths = [max(width(r[i]) for r in text) for i in range(len(text[0]))]
    lines = []
    for r in text:
        parts = [s + " " * (w - width(s)) if i < 3 else " " * (w - width(s)) + s
                 for i, (s, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


__all__ = ["DEFAULT_VARIABLES", "DEFAULT_YEARS", "ComparisonError", "build", "format_text",
           "scenario_title", "variable_label"]
