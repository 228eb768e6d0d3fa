"""The plan's targets as data, and their check against a run.

Targets live in a user-editable TOML file (default ``targets/jiaozuo_targets.toml`` at
the top of the repository), one ``[[target]]`` table each::

    [[target]]
    id = "energy_intensity_2025"
    indicator = "change_vs_2020:energy_intensity"
    year = 2025
    comparison = "<="
    value = -16
    base_year = 2020
    unit = "%"
    label_en = "Energy intensity 2025 vs 2020"
    label_zh = "2025年单位GDP能耗较2020年变化"
    source = "seed plan 一(二) 单位地区生产总值能源消耗降低16%以上; data row target_energy_intensity_change_vs2020_pct"
    set = "seed_2021"          # optional: a named group, e.g. to switch conflicting plans

Indicators
----------
``<variable>``
    The model variable (a Python name, see ``greenpath vars``) in ``year``.
``change_vs_<Y>:<variable>``
    Relative change in ``year`` against year ``Y`` (``base_year`` must equal ``Y``).
``increase_vs_<Y>:<variable>``
    Absolute increase in ``year`` against year ``Y``.
``peak_year:<variable>``
    Year of the peak over ``base_year .. year``: the maximum, if no later year is higher
    and the series does not rebound from its lowest point after it by more than
    :data:`greenpath.model.indicators.REBOUND_TOLERANCE` by ``year`` (稳中有降). A series
    still rising in ``year``, or a maximum followed by a rebound (e.g. the 2020 history
    point, then a rise), gives ``year`` itself: "not peaked".
``change_vs_peak:<variable>``
    Relative change in ``year`` against the maximum over ``base_year .. year``.
``cumulative:<variable>``
    Sum of the yearly values ``base_year + 1 .. year``.
``industrial_energy_saving``
    Industrial energy saved in ``year`` against the ``base_year`` industrial intensity
    (:func:`greenpath.model.indicators.industrial_energy_saving`, 10k tce).

Values are read from the run's yearly rows as the model reports them (the state at the
end of each year).  Units: a target's ``unit`` must be one the indicator's model unit
converts to (``%`` or ``fraction`` for shares and changes; ``MW``, ``GW`` or ``10k kW``
for capacity; ``10k tce`` or ``Mtce`` for energy; ``Mt CO2`` for emissions; ``year``
for peak years).

The margin is signed so that a positive margin means met with room: ``target - value``
for ``<=`` and ``<``, ``value - target`` for ``>=`` and ``>``; a strict comparison with
margin 0 is missed.

Public API (stable; the report and the app call it)
----------------------------------------------------
``DEFAULT_TARGETS``
    The shipped file.
``load(path=DEFAULT_TARGETS) -> list[Target]`` / ``from_text(text, source)``
    Read and validate (a :class:`TargetError` names the file, the target, the key, the
    value and what is allowed).
``evaluate(result_or_frame, targets=None, sets=None) -> DataFrame``
    Columns ``id, label_en, label_zh, indicator, year, comparison, target, value, met,
    margin, unit, source, set``; one row per target.
``evaluate_arrays(cube, years, columns, targets) -> dict``
    The same for many runs at once (values of shape runs x years x columns).
``required_variables(targets) -> list[str]``
    Model variables a run must return for :func:`evaluate`.
``headline(result_or_frame) -> dict``
    CO2 peak year and value, cumulative CO2 2021-2035.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath import shipped_dir
from greenpath.model import indicators
from greenpath.model import registry as reg

DEFAULT_TARGETS = shipped_dir("targets") / "jiaozuo_targets.toml"
YEAR_MIN, YEAR_MAX = 2005, 2035
COMPARISONS = ("<=", ">=", "<", ">")
REQUIRED_KEYS = ("id", "indicator", "year", "comparison", "value", "unit", "label_en",
                 "label_zh", "source")
OPTIONAL_KEYS = ("base_year", "set", "note")
TOP_KEYS = ("title", "description", "target")
FUNCTIONS = ("change_vs_<year>", "increase_vs_<year>", "peak_year", "change_vs_peak",
             "cumulative", "industrial_energy_saving")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
COLUMNS = ["id", "label_en", "label_zh", "indicator", "year", "comparison", "target",
           "value", "met", "margin", "unit", "source", "set"]

# Target unit -> factor from the indicator's native unit.
_RATIO_UNITS = {"fraction": 1.0, "%": 100.0}
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "Dmnl": _RATIO_UNITS,
    "ratio": _RATIO_UNITS,
    "MW": {"MW": 1.0, "GW": 1e-3, "10k kW": 0.1},
    "tce10k/Year": {"10k tce": 1.0, "Mtce": 0.01},
    "tce10k": {"10k tce": 1.0, "Mtce": 0.01},
    "t10k/Year": {"10k t": 1.0, "Mt": 0.01},
    "MtCO2/Year": {"Mt CO2": 1.0},
    "MtCO2": {"Mt CO2": 1.0},
    "Year": {"year": 1.0},
}


class TargetError(ValueError):
    """A targets file that cannot be used, or a frame that cannot be evaluated."""


@dataclass(frozen=True)
class Target:
    """One checked target (see the module docstring for the fields)."""

    id: str
    indicator: str
    year: int
    comparison: str
    value: float
    unit: str
    label_en: str
    label_zh: str
    source: str
    base_year: int = indicators.BASE_YEAR
    set: str | None = None
    note: str = ""

    @property
    def function(self) -> str:
        """The indicator's function ('' for a plain model variable)."""
        return _parse_indicator(self.indicator)[0]

    @property
    def variable(self) -> str | None:
        """The model variable the indicator reads (None for built-in indicators)."""
        return _parse_indicator(self.indicator)[1]


# ---------------------------------------------------------------------- indicators
_FUNC_RE = re.compile(r"^(?:(change_vs|increase_vs)_(\d{4})|(peak_year|change_vs_peak|cumulative))"
                      r":(\w+)$")


def _parse_indicator(text: str) -> tuple[str, str | None, int | None]:
    """Split an indicator into (function, variable, embedded base year).

    The function is '' for a plain model variable.
    """
    if text == "industrial_energy_saving":
        return "industrial_energy_saving", None, None
    m = _FUNC_RE.match(text)
    if m:
        if m.group(1):
            return m.group(1), m.group(4), int(m.group(2))
        return m.group(3), m.group(4), None
    if ":" in text:
        raise ValueError(text)
    return "", text, None


@lru_cache(maxsize=1)
def model_units() -> dict[str, str]:
    """Return the unit of every model variable, read from the .mdl (no model load)."""
    from greenpath.model.mdl import parse_mdl

    return {v.name: v.unit for v in parse_mdl() if v.kind in ("stock", "auxiliary")}


def _native_unit(function: str, variable: str | None) -> str:
    if function in ("change_vs", "change_vs_peak"):
        return "ratio"
    if function == "peak_year":
        return "Year"
    if function == "industrial_energy_saving":
        return "tce10k"
    unit = model_units()[variable]  # type: ignore[index]
    if function == "cumulative":
        return unit.removesuffix("/Year")
    return unit


def _factor(native: str, unit: str) -> float | None:
    if unit == native:
        return 1.0
    return UNIT_FACTORS.get(native, {}).get(unit)


def _allowed_units(native: str) -> list[str]:
    return sorted({native, *UNIT_FACTORS.get(native, {})})


# ---------------------------------------------------------------------- loading
def _check_target(raw, index: int, source: str, seen: set[str]) -> Target:
    where = f"{source}: target #{index}"
    if not isinstance(raw, dict):
        raise TargetError(f"{where}: must be a [[target]] table, got {raw!r}")
    if isinstance(raw.get("id"), str):
        where = f"{source}: target #{index} ({raw['id']!r})"
    allowed = REQUIRED_KEYS + OPTIONAL_KEYS
    for key, value in raw.items():
        if key not in allowed:
            raise TargetError(f"{where}: unknown key {key!r} = {value!r}; allowed "
                              f"{', '.join(allowed)}{reg.suggest(key, allowed)}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise TargetError(f"{where}: missing {', '.join(missing)} (every target needs "
                          f"{', '.join(REQUIRED_KEYS)})")
    for key in ("id", "indicator", "comparison", "unit", "label_en", "label_zh", "source",
                "set", "note"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key].strip()):
            raise TargetError(f"{where}: {key} = {raw[key]!r} must be a non-empty string")
    tid = raw["id"]
    if not ID_PATTERN.match(tid):
        raise TargetError(f"{where}: id = {tid!r}: use lower-case letters, digits and '_'")
    if tid in seen:
        raise TargetError(f"{where}: id = {tid!r} is used twice; ids must be unique")
    if raw.get("set") is not None and not ID_PATTERN.match(raw["set"]):
        raise TargetError(f"{where}: set = {raw['set']!r}: use lower-case letters, digits "
                          "and '_'")
    years = {}
    for key in ("year", "base_year"):
        if key not in raw:
            continue
        y = raw[key]
        if isinstance(y, bool) or not isinstance(y, int) or not YEAR_MIN <= y <= YEAR_MAX:
            raise TargetError(f"{where}: {key} = {y!r}: must be a whole year from "
                              f"{YEAR_MIN} to {YEAR_MAX}")
        years[key] = y
    comparison = raw["comparison"]
    if comparison not in COMPARISONS:
        raise TargetError(f"{where}: comparison = {comparison!r}: allowed "
                          f"{', '.join(COMPARISONS)}")
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TargetError(f"{where}: value = {value!r}: must be a finite number")
    indicator = raw["indicator"]
    try:
        function, variable, embedded = _parse_indicator(indicator)
    except ValueError:
        raise TargetError(
            f"{where}: indicator = {indicator!r}: unknown form; allowed a model variable "
            f"or FUNCTION:variable with FUNCTION one of {', '.join(FUNCTIONS)}, or "
            "industrial_energy_saving"
        ) from None
    if variable is not None and variable not in model_units():
        raise TargetError(
            f"{where}: indicator = {indicator!r}: unknown model variable {variable!r}"
            f"{reg.suggest(variable, model_units())}; `greenpath vars` lists them"
        )
    base_year = years.get("base_year", embedded if embedded is not None else indicators.BASE_YEAR)
    if embedded is not None and base_year != embedded:
        raise TargetError(f"{where}: base_year = {base_year} but indicator {indicator!r} "
                          f"compares with {embedded}; make them equal")
    year = years["year"]
    if function and base_year >= year:
        raise TargetError(f"{where}: base_year = {base_year} must be before year = {year}")
    native = _native_unit(function, variable)
    unit = raw["unit"]
    if _factor(native, unit) is None:
        raise TargetError(
            f"{where}: unit = {unit!r} does not fit indicator {indicator!r} (model unit "
            f"{native}); allowed {', '.join(_allowed_units(native))}"
            f"{reg.suggest(unit, _allowed_units(native))}"
        )
    seen.add(tid)
    return Target(id=tid, indicator=indicator, year=year, comparison=comparison,
                  value=float(value), unit=unit, label_en=raw["label_en"],
                  label_zh=raw["label_zh"], source=raw["source"], base_year=base_year,
                  set=raw.get("set"), note=raw.get("note", ""))


def from_text(text: str, source: str = "targets") -> list[Target]:
    """Parse and validate targets given as TOML text."""
    from greenpath import tomlfile

    data = tomlfile.loads(text, source, TargetError)
    for key in data:
        if key not in TOP_KEYS:
            raise TargetError(f"{source}: unknown top-level key {key!r}; allowed "
                              f"{', '.join(TOP_KEYS)} ([[target]] tables)"
                              f"{reg.suggest(key, TOP_KEYS)}")
    for key in ("title", "description"):
        if key in data and not isinstance(data[key], str):
            raise TargetError(f"{source}: {key} = {data[key]!r} must be a string")
    raw = data.get("target")
    if not isinstance(raw, list) or not raw:
        raise TargetError(f"{source}: no [[target]] tables found")
    seen: set[str] = set()
    return [_check_target(t, i, source, seen) for i, t in enumerate(raw, start=1)]


def load(path: str | Path = DEFAULT_TARGETS) -> list[Target]:
    """Read and validate a targets file (parsed once per version of the file).

    The app reads the targets on every lever move (badges, chart marks); parsing and
    validating the TOML each time took ~10 ms of it.  A file is read again when its
    size or modification time changes; the targets are frozen, the list is a copy.
    """
    path = Path(path)
    if not path.is_file():
        raise TargetError(f"targets file {path} not found")
    stat = path.stat()
    stamp = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    found = _LOADED.get(stamp)
    if found is None:
        from greenpath import tomlfile

        found = from_text(tomlfile.decode(path.read_bytes(), path.name, TargetError,
                                          what="a targets file"), path.name)
        if len(_LOADED) >= 8:
            _LOADED.clear()
        _LOADED[stamp] = found
    return list(found)


#: (file, size, mtime) -> its targets (see :func:`load`).
_LOADED: dict[tuple[str, int, int], list[Target]] = {}


def sets(targets: list[Target]) -> list[str]:
    """Names of the sets used in ``targets``."""
    return sorted({t.set for t in targets if t.set})


def select(targets: list[Target], chosen: list[str] | None) -> list[Target]:
    """Targets without a set plus those in ``chosen`` (all when ``chosen`` is None)."""
    if chosen is None:
        return list(targets)
    known = sets(targets)
    for name in chosen:
        if name not in known:
            raise TargetError(f"unknown target set {name!r}; allowed {', '.join(known)}"
                              f"{reg.suggest(name, known)}")
    return [t for t in targets if t.set is None or t.set in chosen]


def required_variables(targets: list[Target]) -> list[str]:
    """Model variables :func:`evaluate` reads for ``targets``."""
    out: list[str] = []
    for t in targets:
        names = ["industrial_va", "industrial_final_energy"] if t.variable is None else [t.variable]
        out += [n for n in names if n not in out]
    return out


# ---------------------------------------------------------------------- evaluation
def _frame(result_or_frame) -> pd.DataFrame:
    frame = getattr(result_or_frame, "frame", result_or_frame)
    if not isinstance(frame, pd.DataFrame):
        raise TargetError(f"expected a RunResult or a DataFrame, got {type(result_or_frame)}")
    index = np.asarray(frame.index, dtype=float)
    whole = np.isclose(index, np.round(index))
    frame = frame.loc[whole]
    frame.index = pd.Index(np.round(index[whole]).astype(int), name="year")
    return frame


def _needs(t: Target) -> tuple[list[str], list[int]]:
    """Columns and years the indicator of ``t`` reads."""
    if t.function == "industrial_energy_saving":
        return ["industrial_va", "industrial_final_energy"], [t.year, t.base_year]
    if t.function in ("change_vs", "increase_vs"):
        return [t.variable], [t.year, t.base_year]  # type: ignore[list-item]
    return [t.variable], [t.year]  # type: ignore[list-item]


def _indicator(cube: np.ndarray, years: np.ndarray, col: dict[str, int], t: Target) -> np.ndarray:
    """Compute the indicator of ``t`` for every run of ``cube`` (runs, years, columns)."""
    row = {int(y): i for i, y in enumerate(years)}
    f, year, base = t.function, t.year, t.base_year
    with np.errstate(all="ignore"):
        if f == "industrial_energy_saving":
            va, fe = cube[:, :, col["industrial_va"]], cube[:, :, col["industrial_final_energy"]]
            intensity0 = fe[:, row[base]] / va[:, row[base]]
            return va[:, row[year]] * intensity0 - fe[:, row[year]]
        series = cube[:, :, col[t.variable]]  # type: ignore[index]
        value = series[:, row[year]]
        if f == "":
            return value.copy()
        if f == "increase_vs":
            return value - series[:, row[base]]
        if f == "change_vs":
            ref = series[:, row[base]]
            return np.where(ref != 0, value / ref - 1.0, np.nan)
        if f == "cumulative":
            return series[:, (years > base) & (years <= year)].sum(axis=1)
        window = series[:, (years >= base) & (years <= year)]
        if window.shape[1] == 0:
            return np.full(len(cube), np.nan)
        broken = np.isnan(window).any(axis=1)
        if f == "peak_year":
            span = years[(years >= base) & (years <= year)]
            return np.where(broken, np.nan, indicators.peak_years(window, span))
        peak = window.max(axis=1)  # change_vs_peak
        return np.where(broken | (peak == 0), np.nan, value / peak - 1.0)


def indicator_value(frame: pd.DataFrame, target: Target) -> float:
    """Compute the indicator of ``target`` for one run, in its native unit."""
    frame = _frame(frame)
    columns, years_needed = _needs(target)
    for c in columns:
        if c not in frame.columns:
            raise TargetError(f"target {target.id!r}: the run has no column {c!r}; run with "
                              "return_columns including targets.required_variables(...)")
    for y in years_needed:
        if y not in frame.index:
            raise TargetError(f"target {target.id!r}: the run has no year {y} (years "
                              f"{frame.index.min()}-{frame.index.max()})")
    cube = frame[columns].to_numpy(dtype=float)[None, :, :]
    years = frame.index.to_numpy()
    return float(_indicator(cube, years, {c: i for i, c in enumerate(columns)}, target)[0])


def evaluate_arrays(cube: np.ndarray, years, columns: list[str],
                    targets: list[Target]) -> dict[str, np.ndarray]:
    """Evaluate ``targets`` for many runs at once.

    Parameters
    ----------
    cube
        Values, shape (runs, years, columns).
    years, columns
        The year of each row and the variable of each column of ``cube``.
    targets
        The targets.

    Returns
    -------
    dict
        ``value``, ``margin`` and ``met``, each of shape (runs, targets), in the
        targets' units (what :func:`evaluate` reports for one run).
    """
    cube = np.asarray(cube, dtype=float)
    years = np.asarray(years).astype(int)
    col = {c: i for i, c in enumerate(columns)}
    for t in targets:
        cols, years_needed = _needs(t)
        for c in cols:
            if c not in col:
                raise TargetError(f"target {t.id!r}: the run has no column {c!r}; run with "
                                  "return_columns including targets.required_variables(...)")
        for y in years_needed:
            if y not in set(years.tolist()):
                raise TargetError(f"target {t.id!r}: the run has no year {y} (years "
                                  f"{years.min()}-{years.max()})")
    n = cube.shape[0]
    value = np.empty((n, len(targets)))
    goal = np.array([t.value for t in targets], dtype=float)
    low = np.array([t.comparison in ("<=", "<") for t in targets])
    weak = np.array([t.comparison in ("<=", ">=") for t in targets])
    for j, t in enumerate(targets):
        factor = _factor(_native_unit(t.function, t.variable), t.unit)
        value[:, j] = _indicator(cube, years, col, t) * factor  # type: ignore[operator]
    margin = np.where(low, goal - value, value - goal)
    with np.errstate(invalid="ignore"):
        met = np.isfinite(margin) & np.where(weak, margin >= 0, margin > 0)
    return {"value": value, "margin": margin, "met": met}


def evaluate(result_or_frame, targets: list[Target] | str | Path | None = None,
             sets: list[str] | None = None) -> pd.DataFrame:
    """Check targets against one run.

    Parameters
    ----------
    result_or_frame
        A :class:`~greenpath.engines.pysd_engine.RunResult` or its yearly frame (index year,
        columns model variables).
    targets
        Loaded targets, a targets file, or None for :data:`DEFAULT_TARGETS`.
    sets
        Only targets without a set plus these sets (default: all targets).

    Returns
    -------
    pandas.DataFrame
        One row per target: ``id, label_en, label_zh, indicator, year, comparison,
        target, value, met, margin, unit, source, set``; ``value``, ``target`` and
        ``margin`` in the target's unit; ``met`` False when the value is not finite.
    """
    if targets is None or isinstance(targets, str | Path):
        targets = load(targets or DEFAULT_TARGETS)
    chosen = select(targets, sets)
    frame = _frame(result_or_frame)
    columns = [c for c in dict.fromkeys(c for t in chosen for c in _needs(t)[0])]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        first = next(t for t in chosen if missing[0] in _needs(t)[0])
        raise TargetError(f"target {first.id!r}: the run has no column {missing[0]!r}; run "
                          "with return_columns including targets.required_variables(...)")
    cube = frame[columns].to_numpy(dtype=float)[None, :, :]
    arrays = evaluate_arrays(cube, frame.index.to_numpy(), columns, chosen)
    out = pd.DataFrame({
        "id": [t.id for t in chosen], "label_en": [t.label_en for t in chosen],
        "label_zh": [t.label_zh for t in chosen], "indicator": [t.indicator for t in chosen],
        "year": [t.year for t in chosen], "comparison": [t.comparison for t in chosen],
        "target": [t.value for t in chosen], "value": arrays["value"][0],
        "met": arrays["met"][0].astype(bool), "margin": arrays["margin"][0],
        "unit": [t.unit for t in chosen], "source": [t.source for t in chosen],
        "set": [t.set or "" for t in chosen],
    }, columns=COLUMNS)
    return out


def headline(result_or_frame, column: str = "co2_emissions") -> dict[str, float]:
    """CO2 peak year and value (from 2020) and cumulative CO2 2021-2035 of a run."""
    frame = _frame(result_or_frame)
    if column not in frame.columns:
        raise TargetError(f"the run has no column {column!r}")
    st = indicators.peak_status(frame, column)
    year, value = indicators.peak(frame, column)
    # A fall after the maximum followed by a rise: the maximum is only the level before
    # a drop (e.g. policies switching on), not a turning point of the trend: not peaked.
    return {"peak_year": year, "peak_value": value,
            "still_rising": not st["peaked"], "peaked": bool(st["peaked"]),
            "max_year": int(st["max_year"]), "max_value": float(st["max_value"]),
            "low_year": int(st["low_year"]), "low_value": float(st["low_value"]),
            "last_year": int(st["last_year"]),
            "last_value": float(st["last_value"]), "rebound_pct": 100.0 * float(st["rebound"]),
            "cumulative_2021_2035": indicators.cumulative(frame, column, 2021, 2035)}


def format_chance(share: float) -> str:
    """``share`` (0-1) of draws meeting a target as a percentage; never rounds a possible outcome to 0 % or 100 %."""
    if share != share:  # NaN
        return "–"
    pct = 100.0 * share
    if 0.0 < pct < 1.0:
        return "<1 %"
    if 99.0 < pct < 100.0:
        return ">99 %"
    return f"{pct:.0f} %"
