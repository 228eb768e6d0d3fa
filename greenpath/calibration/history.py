"""Load and validate the historical data the calibration is fitted to.

The data live in ``calibration/data/history.csv`` (long format, one value per row, columns
``year,variable,value,unit,source,quote,note,preferred``); ``calibration/data/README.md``
says where every variable comes from and how the fit uses it.

Every variable the file may contain is declared once, with its unit and the kind of
bounds it obeys, in :data:`VARIABLES`. Adding a new year of an existing variable needs no
code change; adding a new variable needs one line in that table (and a README entry).

Examples
--------
>>> from greenpath.calibration.history import load_history, series
>>> df = load_history()
>>> gdp = series(df, "gdp_real_2020prices_100m_yuan")
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from greenpath import shipped_dir

__all__ = [
    "COLUMNS",
    "DEFAULT_HISTORY_PATH",
    "GDP_VARIABLE",
    "GROWTH_MAX_PCT",
    "GROWTH_MIN_PCT",
    "JUMP_FACTOR",
    "KNOWN_VARIABLES",
    "SECTOR_VARIABLES",
    "VARIABLES",
    "YEAR_MAX",
    "YEAR_MIN",
    "HistoryError",
    "VariableSpec",
    "load_history",
    "series",
]

#: The packaged history file (``calibration/data`` of a checkout, or inside the wheel).
DEFAULT_HISTORY_PATH: Path = shipped_dir("calibration") / "data" / "history.csv"

#: Columns of the history file, in the order they are written.
COLUMNS: tuple[str, ...] = (
    "year",
    "variable",
    "value",
    "unit",
    "source",
    "quote",
    "note",
    "preferred",
)

#: Inclusive range of plausible years (history and plan targets).
YEAR_MIN: int = 1990
YEAR_MAX: int = 2100

#: Plausible range of a real growth rate, % per year (kind ``growth``). Recorded Jiaozuo
#: rates 2005-22 lie between 1.3 and 17; a -30..+50 window leaves room for a real shock
#: (a city's output rarely falls by more than a quarter or rises by half in one year) but
#: catches the usual transcription errors: an index written instead of a rate (104.4 for
#: 4.4), a misplaced decimal point, a nominal level change read as a rate. It cannot catch
#: every wrong rate (the CSMAR 2020 field, -20.63, lies inside it; data/README.md says why
#: that value is left out of the file).
GROWTH_MIN_PCT: float = -30.0
GROWTH_MAX_PCT: float = 50.0

#: Jump test of level variables: a value more than this factor above or below the median
#: of its (up to) :data:`JUMP_NEIGHBOURS` nearest preferred values of the same variable is
#: refused unless its note says ``confirmed: <why>``. The recorded series move by at most
#: a factor of 2 from that median (the gas supply of 2005, the CO2 fall of 2010-12); a
#: value typed in the wrong unit (10,000 for 100 million, kt for Mt) is 10x-1000x off.
JUMP_FACTOR: float = 3.0
JUMP_NEIGHBOURS: int = 4
#: What a row's note starts a confirmation with (case does not matter).
CONFIRMED_MARK: str = "confirmed:"

#: Encodings a history file is read in, in this order: UTF-8 (with or without the byte
#: order mark Excel writes for "CSV UTF-8"), then GB18030, what Excel on a Chinese
#: Windows writes for plain "CSV".
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")

Kind = Literal["level", "share", "change", "growth"]

_KIND_RULE: dict[str, str] = {
    "level": "a level, so it must be >= 0",
    "share": "a share in percent, so it must be between 0 and 100",
    "change": "a percent change, so it must be >= -100",
    "growth": (
        f"a real growth rate in % per year, so it must be between {GROWTH_MIN_PCT:g} and "
        f"{GROWTH_MAX_PCT:g} (a plausible annual range; an index such as 104.4 means 4.4)"
    ),
}

#: The three sectors whose value added must add up to GDP (same year, preferred rows).
SECTOR_VARIABLES: tuple[str, ...] = (
    "primary_va_100m_yuan",
    "secondary_va_100m_yuan",
    "tertiary_va_100m_yuan",
)
GDP_VARIABLE = "gdp_current_100m_yuan"


@dataclass(frozen=True)
class VariableSpec:
    """Declaration of one variable allowed in the history file.

    Attributes
    ----------
    unit : str
        The exact unit string every row of the variable must carry.
    kind : {"level", "share", "change", "growth"}
        ``level``: a stock or flow that cannot be negative (GDP, CO2, capacity, ...);
        ``share``: a percentage of a whole, 0-100; ``change``: a percent change over
        several years or against a base year (targets), which cannot fall below -100;
        ``growth``: a real growth rate in % per year, between :data:`GROWTH_MIN_PCT` and
        :data:`GROWTH_MAX_PCT`.
    fitted : bool
        The calibration scores the simulation against this variable (directly or, for
        GDP, as the denominator of the sector shares); ``greenpath.calibration.series``
        refuses a fitted variable it has no fit rule for.
    """

    unit: str
    kind: Kind
    fitted: bool = False


_YUAN_CURRENT = "100 million yuan (亿元), current prices"
_KWH = "100 million kWh (亿千瓦时)"

#: The one table of allowed variables: name -> unit and bounds kind.
VARIABLES: dict[str, VariableSpec] = {
    # Economy (current prices; level break 2019 -> 2020, see data/README.md)
    "gdp_current_100m_yuan": VariableSpec(_YUAN_CURRENT, "level", fitted=True),
    "primary_va_100m_yuan": VariableSpec(_YUAN_CURRENT, "level", fitted=True),
    "secondary_va_100m_yuan": VariableSpec(_YUAN_CURRENT, "level", fitted=True),
    "tertiary_va_100m_yuan": VariableSpec(_YUAN_CURRENT, "level", fitted=True),
    "gdp_real_2020prices_100m_yuan": VariableSpec(
        "100 million yuan (亿元), constant 2020 prices", "level", fitted=True
    ),
    "gdp_real_growth_pct": VariableSpec("% y/y", "growth", fitted=True),
    "primary_va_growth_pct": VariableSpec("% y/y", "growth", fitted=True),
    "secondary_va_growth_pct": VariableSpec("% y/y", "growth", fitted=True),
    "tertiary_va_growth_pct": VariableSpec("% y/y", "growth", fitted=True),
    "industry_va_growth_pct": VariableSpec("%", "growth"),
    # CO2
    "co2_emissions_mt": VariableSpec("Mt CO2", "level", fitted=True),
    "co2_emissions_mt_chen2020_countysum": VariableSpec("Mt CO2", "level"),
    # Power capacity
    "coal_power_capacity_mw_gem_derived": VariableSpec("MW (year-end, units >=30 MW)", "level"),
    "renewable_capacity_10k_kw_implied_base": VariableSpec(
        "10,000 kW (implied end-2020 base)", "level"
    ),
    "wind_capacity_10k_kw_implied_base": VariableSpec(
        "10,000 kW grid-connected (implied end-2020 base)", "level"
    ),
    "wind_capacity_mw_gem_listed_operating": VariableSpec("MW (status as of Feb 2025)", "level"),
    "pv_capacity_mw_gem_listed_operating": VariableSpec("MW (status as of Feb 2025)", "level"),
    "bioenergy_capacity_mw_gem_listed_operating": VariableSpec("MW", "level"),
    # Electricity: whole city (2017-2019) and urban districts only (2005-2014)
    "electricity_consumption_100m_kwh": VariableSpec(_KWH, "level", fitted=True),
    "industrial_electricity_100m_kwh": VariableSpec(_KWH, "level", fitted=True),
    "residential_electricity_100m_kwh": VariableSpec(_KWH, "level"),
    "electricity_consumption_shixiaqu_100m_kwh": VariableSpec(_KWH, "level", fitted=True),
    "industrial_electricity_shixiaqu_100m_kwh": VariableSpec(_KWH, "level", fitted=True),
    "residential_electricity_shixiaqu_100m_kwh": VariableSpec(_KWH, "level"),
    # Physical output of key products, above-scale industry (2025 only: scale anchors)
    "primary_aluminium_output_10k_t": VariableSpec("10,000 t (万吨)", "level"),
    "caustic_soda_output_10k_t": VariableSpec("10,000 t (万吨)", "level"),
    "alumina_output_10k_t": VariableSpec("10,000 t (万吨)", "level"),
    "cement_output_10k_t": VariableSpec("10,000 t (万吨)", "level"),
    "ammonia_output_10k_t": VariableSpec("10,000 t (万吨)", "level"),
    # Energy intensity: recorded changes and five-year-plan targets (dual-control loop)
    "energy_intensity_change_pct": VariableSpec("% change in energy use per unit GDP vs previous year", "change"),
    "energy_intensity_change_cum_2006_2009_pct": VariableSpec("% cumulative 2006-2009", "change"),
    "energy_intensity_target_pct": VariableSpec("% annual target", "change"),
    "henan_energy_intensity_change_pct": VariableSpec("% y/y", "change"),
    # Population and gas
    "population_10k": VariableSpec("10,000 persons (万人), resident (常住) population", "level"),
    "population_hukou_10k": VariableSpec(
        "10,000 persons (万人), registered (户籍) population, year-end", "level"
    ),
    "urbanization_rate_pct": VariableSpec("%", "share"),
    "gas_supply_shixiaqu_10k_m3": VariableSpec("10,000 m3 (万立方米)", "level"),
    # Jiaozuo plan targets (scenario inputs, not fitted)
    "target_coal_consumption_change_vs2020_pct": VariableSpec("% vs 2020", "change"),
    "target_energy_intensity_change_vs2020_pct": VariableSpec("% vs 2020 (at least)", "change"),
    "target_industrial_energy_intensity_change_pct": VariableSpec("% over three years", "change"),
    "target_industrial_energy_saving_10k_tce": VariableSpec(
        "10,000 tce over three years (2021-2023 presumably)", "level"
    ),
    "target_natural_gas_import_100m_m3": VariableSpec("100 million m3", "level"),
    "target_nonfossil_share_pct": VariableSpec("% of energy consumption (more than)", "share"),
    "target_pv_capacity_added_10k_kw": VariableSpec("10,000 kW added in 2021-2025", "level"),
    "target_renewable_capacity_seed_plan_10k_kw": VariableSpec("10,000 kW (at least)", "level"),
    "target_renewable_capacity_energy_plan_10k_kw": VariableSpec("10,000 kW cumulative", "level"),
    "target_renewable_capacity_added_10k_kw": VariableSpec("10,000 kW added in year", "level"),
    "target_renewable_capacity_added_2021_2025_10k_kw": VariableSpec(
        "10,000 kW added over 2021-2025 (more than)", "level"
    ),
    "target_renewable_heating_area_10k_m2": VariableSpec("10,000 m2 (at least)", "level"),
    "target_rural_pv_capacity_added_10k_kw": VariableSpec(
        "10,000 kW added by 2025 (at least)", "level"
    ),
    "target_rural_wind_capacity_added_10k_kw": VariableSpec("10,000 kW added by 2025", "level"),
    "target_wind_capacity_10k_kw": VariableSpec(
        "10,000 kW grid-connected cumulative (at least)", "level"
    ),
    "target_wind_capacity_added_10k_kw": VariableSpec("10,000 kW added in 2021-2025", "level"),
    # Henan provincial targets (context for the Jiaozuo targets)
    "henan_target_co2_intensity_change_vs2020_pct": VariableSpec("% vs 2020", "change"),
    "henan_target_coal_consumption_change_vs2015_pct": VariableSpec("% vs 2015 (about)", "change"),
    "henan_target_energy_consumption_increment_cap_10k_tce": VariableSpec(
        "10,000 tce increment 2016-2020", "level"
    ),
    "henan_target_energy_intensity_change_vs2015_pct": VariableSpec("% vs 2015", "change"),
    "henan_target_energy_intensity_change_vs2020_pct": VariableSpec("% vs 2020", "change"),
}

#: Variable name -> the unit string its rows must carry (derived from :data:`VARIABLES`).
KNOWN_VARIABLES: dict[str, str] = {name: spec.unit for name, spec in VARIABLES.items()}


class HistoryError(ValueError):
    """A history file or a request for one of its series is invalid.

    The message names the file, the line (1-based, header = line 1), the column or
    variable, the bad value and what is allowed.
    """


@dataclass(frozen=True)
class _Row:
    year: int
    variable: str
    value: float
    unit: str
    source: str
    quote: str
    note: str
    preferred: int
    line: int
    value_text: str = ""


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(VARIABLES), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _fail(path: Path, line: int, where: str, value: object, allowed: str) -> HistoryError:
    return HistoryError(f"{path}: line {line}: {where}: bad value {value!r}; allowed: {allowed}")


def _parse_row(path: Path, line: int, raw: dict[str, str]) -> _Row:
    """Validate one data row and convert it; raise HistoryError on the first problem."""
    year_text = raw["year"].strip()
    try:
        year = int(year_text)
    except ValueError:
        raise _fail(
            path, line, "column 'year'", raw["year"], f"an integer year {YEAR_MIN}-{YEAR_MAX}"
        ) from None
    if not YEAR_MIN <= year <= YEAR_MAX:
        raise _fail(path, line, "column 'year'", raw["year"], f"a year {YEAR_MIN}-{YEAR_MAX}")

    variable = raw["variable"].strip()
    spec = VARIABLES.get(variable)
    if spec is None:
        raise _fail(
            path,
            line,
            "column 'variable'",
            raw["variable"],
            "a variable declared in greenpath.calibration.history.VARIABLES" + _suggest(variable),
        )
    where = f"variable {variable!r}, year {year}"

    if raw["unit"] != spec.unit:
        raise _fail(path, line, f"column 'unit' ({where})", raw["unit"], repr(spec.unit))

    try:
        value = float(raw["value"])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _fail(path, line, f"column 'value' ({where})", raw["value"], "a finite number")
    if spec.kind == "level" and value < 0:
        raise _fail(path, line, f"column 'value' ({where})", raw["value"], _KIND_RULE["level"])
    if spec.kind == "share" and not 0 <= value <= 100:
        raise _fail(path, line, f"column 'value' ({where})", raw["value"], _KIND_RULE["share"])
    if spec.kind == "change" and value < -100:
        raise _fail(path, line, f"column 'value' ({where})", raw["value"], _KIND_RULE["change"])
    if spec.kind == "growth" and not GROWTH_MIN_PCT <= value <= GROWTH_MAX_PCT:
        raise _fail(path, line, f"column 'value' ({where})", raw["value"], _KIND_RULE["growth"])

    for column in ("source", "quote"):
        if not raw[column].strip():
            raise _fail(
                path,
                line,
                f"column {column!r} ({where})",
                raw[column],
                f"a non-empty {column} (every number keeps its source and quote)",
            )

    preferred_text = raw["preferred"].strip()
    if preferred_text not in ("0", "1"):
        raise _fail(path, line, f"column 'preferred' ({where})", raw["preferred"], "0 or 1")

    return _Row(
        year=year,
        variable=variable,
        value=value,
        unit=raw["unit"],
        source=raw["source"],
        quote=raw["quote"],
        note=raw["note"],
        preferred=int(preferred_text),
        line=line,
        value_text=raw["value"].strip(),
    )


def _decimals(text: str) -> int:
    """Return the number of decimals written in a numeric field (``"2123.60"`` -> 2, ``"856"`` -> 0)."""
    mantissa = text.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _rounding(row: _Row) -> float:
    """Largest rounding error of a value as written: half a unit in its last decimal."""
    return 0.5 * 10.0 ** -_decimals(row.value_text)


def _fail_rows(path: Path, rows: list[_Row], where: str, value: str, allowed: str) -> HistoryError:
    lines = ", ".join(str(r.line) for r in sorted(rows, key=lambda r: r.line))
    return HistoryError(f"{path}: lines {lines}: {where}: bad value {value}; allowed: {allowed}")


def _check_gdp_rows(path: Path, rows: list[_Row]) -> None:
    """Cross-row checks of GDP and its sectors (preferred rows of the same year).

    * No sector's value added may exceed GDP.
    * Where GDP and all three sectors are present, their sum must equal GDP within the
      rounding of the four numbers as written: half a unit in the last written decimal of
      each (0.02 for four values given to 0.01). Statistical offices publish sectors that
      add up to GDP before rounding (CSMAR and the bulletins do, to the cent: the shipped
      file differs by at most 0.01), so a larger gap is a transcription error or a mix
      of bases or vintages (e.g. a pre-census sector with a post-census GDP).

    Raises
    ------
    HistoryError
        Naming the file, the lines of the rows involved, the values and what is allowed.
    """
    wanted = (GDP_VARIABLE, *SECTOR_VARIABLES)
    by_year: dict[int, dict[str, _Row]] = defaultdict(dict)
    for row in rows:
        if row.preferred == 1 and row.variable in wanted:
            by_year[row.year][row.variable] = row
    for year in sorted(by_year):
        group = by_year[year]
        gdp = group.get(GDP_VARIABLE)
        if gdp is None:
            continue
        for name in SECTOR_VARIABLES:
            sector = group.get(name)
            if sector is not None and sector.value > gdp.value:
                raise _fail_rows(
                    path,
                    [sector, gdp],
                    f"{name} {year} exceeds {GDP_VARIABLE} {year}",
                    f"{sector.value_text} > {gdp.value_text}",
                    "a sector's value added at most GDP of the same year",
                )
        sectors = [group[name] for name in SECTOR_VARIABLES if name in group]
        if len(sectors) < len(SECTOR_VARIABLES):
            continue
        total = sum(r.value for r in sectors)
        tolerance = sum(_rounding(r) for r in [*sectors, gdp]) + 1e-9
        if abs(total - gdp.value) > tolerance:
            terms = " + ".join(r.value_text for r in sectors)
            digits = max(_decimals(r.value_text) for r in [*sectors, gdp])
            raise _fail_rows(
                path,
                [*sectors, gdp],
                f"sector value added {year} (primary + secondary + tertiary) vs {GDP_VARIABLE}",
                f"{terms} = {total:.{digits}f} against GDP {gdp.value_text} "
                f"(difference {total - gdp.value:+.{digits}f})",
                f"the sum within {tolerance:.3g} of GDP, the rounding of the four values as written "
                "(half a unit in the last decimal of each)",
            )


def load_history(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate a history file.

    Parameters
    ----------
    path : str or Path, optional
        The CSV to read. Defaults to the packaged ``calibration/data/history.csv``
        (:data:`DEFAULT_HISTORY_PATH`).

    Returns
    -------
    pandas.DataFrame
        One row per file row, in file order, with the columns of :data:`COLUMNS`
        (``year`` and ``preferred`` as int, ``value`` as float) plus ``line``, the row's
        1-based line number in the file (header = line 1). ``df.attrs["path"]`` holds the
        path read.

    Raises
    ------
    HistoryError
        If the header is wrong, a row has the wrong number of fields, a year is not an
        integer in 1990-2100, a variable is not declared in :data:`VARIABLES`, a unit is not
        the declared one, a value is not a finite number or breaks the variable's bounds, a
        source or quote is empty, ``preferred`` is not 0/1, a (year, variable) does not
        have exactly one ``preferred=1`` row, a growth rate lies outside
        :data:`GROWTH_MIN_PCT`..:data:`GROWTH_MAX_PCT`, a sector's value added exceeds GDP of
        the same year, or the three sectors do not add up to GDP within the rounding of the
        values as written (preferred rows). The message names the file, the line(s), the
        column or variable, the bad value and what is allowed.
    FileNotFoundError
        If the file does not exist.
    """
    path = DEFAULT_HISTORY_PATH if path is None else Path(path)
    rows: list[_Row] = []
    text, encoding = _read_text(path)
    reader = None
    try:
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != list(COLUMNS):
                raise _fail(path, 1, "header", ",".join(header or []), ",".join(COLUMNS))
            last_line = reader.line_num
            for fields in reader:
                line = last_line + 1  # first physical line of this record
                last_line = reader.line_num
                if not fields or all(not f.strip() for f in fields):
                    continue  # blank line
                if len(fields) != len(COLUMNS):
                    raise _fail(
                        path,
                        line,
                        "row",
                        ",".join(fields),
                        f"{len(COLUMNS)} comma-separated fields ({','.join(COLUMNS)}), "
                        f"got {len(fields)}",
                    )
                rows.append(_parse_row(path, line, dict(zip(COLUMNS, fields, strict=True))))
    except csv.Error as exc:  # a field over the csv module's size limit, a stray quote
        line = max(reader.line_num if reader is not None else 1, 1)  # the line being read
        raise HistoryError(f"{path}: line {line}: not readable as CSV ({exc}); allowed: "
                           f"rows of {len(COLUMNS)} comma-separated fields") from None

    groups: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
    for row in rows:
        groups[(row.year, row.variable)].append((row.line, row.preferred))
    for (year, variable), group in groups.items():
        if sum(flag for _, flag in group) != 1:
            lines = ", ".join(str(line) for line, _ in group)
            raise _fail(
                path,
                group[-1][0],
                f"column 'preferred' (variable {variable!r}, year {year}, rows on lines {lines})",
                ",".join(str(flag) for _, flag in group),
                "exactly one row with preferred=1 for each (year, variable)",
            )
    _check_gdp_rows(path, rows)
    _check_jumps(path, rows)

    df = pd.DataFrame([asdict(row) for row in rows], columns=[*COLUMNS, "line"])
    df = df.astype({"year": "int64", "value": "float64", "preferred": "int64", "line": "int64"})
    df.attrs["path"] = str(path)
    df.attrs["encoding"] = encoding
    return df


def _read_text(path: Path) -> tuple[str, str]:
    """Return the text of a history file and the encoding it was read in (:data:`ENCODINGS`).

    Raises
    ------
    HistoryError
        If the bytes are text in none of them, naming the line and byte.
    """
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding.removesuffix("-sig")
        except UnicodeDecodeError:
            continue
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise HistoryError(
            f"{path}: line {line}: byte {exc.start} ({data[exc.start:exc.start + 1]!r}) is "
            f"not text in {' or '.join(e.removesuffix('-sig').upper() for e in ENCODINGS)}; "
            "allowed: the file saved as CSV UTF-8 (or GB18030)"
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _confirmed(row: _Row) -> bool:
    return CONFIRMED_MARK in row.note.lower() and bool(
        row.note.lower().split(CONFIRMED_MARK, 1)[1].strip()
    )


def _check_jumps(path: Path, rows: list[_Row]) -> None:
    """Refuse a level value far outside its series' neighbourhood (robust jump test).

    Each positive value of a ``level`` variable is compared with the median of the
    :data:`JUMP_NEIGHBOURS` preferred values of the same variable nearest in year
    (other years; at least three needed). More than :data:`JUMP_FACTOR` times above or
    below it is an error unless the row's note says ``confirmed: <why>``. The median
    is not moved by the outlier itself, so one wrong value cannot hide, and a genuine
    level shift (several years on a new level) has neighbours on both levels.

    Raises
    ------
    HistoryError
        Naming the file, the line, the variable and year, the value, the median and the
        years it came from, and what is allowed.
    """
    preferred: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.preferred == 1 and VARIABLES[row.variable].kind == "level" and row.value > 0:
            preferred[row.variable].append(row)
    for row in rows:
        if VARIABLES[row.variable].kind != "level" or row.value <= 0 or _confirmed(row):
            continue
        others = [r for r in preferred[row.variable] if r.year != row.year]
        if len(others) < 3:
            continue
        near = sorted(others, key=lambda r: (abs(r.year - row.year), r.year))[:JUMP_NEIGHBOURS]
        median = statistics.median(r.value for r in near)
        ratio = row.value / median
        if ratio > JUMP_FACTOR or ratio < 1 / JUMP_FACTOR:
            years = ", ".join(str(r.year) for r in sorted(near, key=lambda r: r.year))
            raise _fail(
                path,
                row.line,
                f"column 'value' (variable {row.variable!r}, year {row.year})",
                row.value_text,
                f"within a factor of {JUMP_FACTOR:g} of {median:.6g}, the median of the same "
                f"variable in {years} (this value is {ratio:.3g} times it; a unit or a decimal "
                f"point wrong?); if the value is right, say why in the note: "
                f"'{CONFIRMED_MARK} <reason>'",
            )


def series(df: pd.DataFrame, variable: str) -> pd.Series:
    """Return the preferred values of one variable, indexed by year.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame returned by :func:`load_history`.
    variable : str
        A name declared in :data:`VARIABLES`.

    Returns
    -------
    pandas.Series
        Float values of the ``preferred=1`` rows, index ``year`` (int, ascending), named
        after the variable. Cross-check rows (``preferred=0``) are left out.

    Raises
    ------
    HistoryError
        If the variable is not declared (the nearest declared name is suggested), has no
        preferred rows in ``df``, or has more than one preferred row for a year.
    """
    origin = df.attrs.get("path", "history data")
    if variable not in VARIABLES:
        raise HistoryError(
            f"{origin}: variable {variable!r} is not declared; allowed: a name in "
            f"greenpath.calibration.history.VARIABLES{_suggest(variable)}"
        )
    rows = df[(df["variable"] == variable) & (df["preferred"] == 1)]
    if rows.empty:
        raise HistoryError(f"{origin}: variable {variable!r} has no preferred (preferred=1) rows")
    duplicated = rows["year"][rows["year"].duplicated()]
    if not duplicated.empty:
        raise HistoryError(
            f"{origin}: variable {variable!r} has more than one preferred row for year(s) "
            f"{sorted(set(duplicated.tolist()))}; allowed: exactly one"
        )
    out = pd.Series(
        rows["value"].to_numpy(dtype=float),
        index=pd.Index(rows["year"].to_numpy(dtype="int64"), name="year"),
        name=variable,
    )
    return out.sort_index()
