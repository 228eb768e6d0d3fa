"""Charts people present: scenario results for planning meetings, in Chinese or English.

Every chart function takes model results (one :class:`~greenpath.engines.pysd_engine.RunResult`
or DataFrame, or a mapping ``scenario name -> RunResult | DataFrame`` for several
scenarios), a language (``"en"`` or ``"zh"``) and options, and returns a
:class:`matplotlib.figure.Figure` drawn on the Agg canvas.  Nothing here uses
``pyplot`` or changes ``matplotlib.rcParams``: fonts, sizes and colours are passed to
each artist, so charts drawn in one thread (the app) never leak into another.

The house style (``shared/STYLE.md``, "Charts people present"):

* one colour per carrier / technology everywhere (:data:`COLORS`), one per scenario
  (:func:`scenario_colors`);
* the model's history solid with markers, projections solid, observed data as markers
  labelled with their source, plan targets as dashed lines labelled with their clause,
  P10-P90 bands as shaded areas;
* units on every axis, the policy start year marked, a footer with scenario, model
  version, calibration and data vintage;
* a large-font presentation variant (``presentation=True``) for projectors;
* all text from the string table ``greenpath/i18n/charts.toml``.

Each chart has a sibling ``*_data`` function returning the numbers it draws as a tidy
table (``scenario, series, year, value, unit``); the chart is drawn from that table,
so the exported data and the picture cannot disagree.

Chinese text is set in Noto Sans CJK SC, shipped in ``greenpath/outputs/fonts/`` and registered
with matplotlib's font manager when this module is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter, MultipleLocator

from greenpath.i18n import LANGS, t

# ---------------------------------------------------------------------------- font
FONT_NAME = "Noto Sans CJK SC"
FONT_FILE = Path(__file__).with_name("fonts") / "NotoSansCJKsc-Regular.otf"
# Glyphs the CJK font lacks (subscript digits in "CO₂") come from matplotlib's own font.
FONT_FAMILY = [FONT_NAME, "DejaVu Sans"]
# File names under which system packages install the same face (Debian fonts-noto-cjk,
# upstream OTF / subset releases).
_SYSTEM_FONT_FILES = (
    "NotoSansCJK-Regular.ttc", "NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf",
)


class FontMissingError(RuntimeError):
    """The CJK font needed for Chinese labels is not available."""


def _font_registered() -> bool:
    return any(f.name == FONT_NAME for f in font_manager.fontManager.ttflist)


def register_font() -> str:
    """Make Noto Sans CJK SC available to matplotlib and return the file it came from.

    The font shipped in ``greenpath/outputs/fonts/`` is used first; otherwise an installed copy
    (for example Debian's ``fonts-noto-cjk``).

    Raises
    ------
    FontMissingError
        When neither exists, with instructions to install it.
    """
    if FONT_FILE.is_file():
        manager = font_manager.fontManager
        manager.addfont(FONT_FILE)
        # The shipped file first, so a system copy of another version never wins the
        # tie (matplotlib keeps the first of equally good matches).
        ours = [f for f in manager.ttflist if f.fname == str(FONT_FILE)]
        manager.ttflist = ours + [f for f in manager.ttflist if f.fname != str(FONT_FILE)]
        if hasattr(manager, "_findfont_cached"):
            manager._findfont_cached.cache_clear()
        if _font_registered():
            return str(FONT_FILE)
    for path in font_manager.findSystemFonts():
        if Path(path).name in _SYSTEM_FONT_FILES:
            font_manager.fontManager.addfont(path)
            if _font_registered():
                return str(path)
    raise FontMissingError(
        f"the Chinese font '{FONT_NAME}' (Noto Sans CJK SC, SIL Open Font License) was not "
        f"found: greenpath/outputs/fonts/{FONT_FILE.name} is missing from this installation and no "
        "system copy is installed. Reinstall greenpath, or install the font: on Debian/"
        "Ubuntu `apt-get install fonts-noto-cjk`; elsewhere download Noto Sans CJK SC "
        "from the googlefonts/noto-cjk project and install it for all users."
    )


FONT_PATH = register_font()

# ---------------------------------------------------------------------------- colours
#: One colour per carrier, technology, industry branch and lever group, used by every
#: chart (STYLE.md: coal dark grey, oil brown, gas light blue, electricity imports
#: purple, PV yellow, wind teal, biomass green, hydro blue).  The series of one chart stay
#: apart with protanopia, deuteranopia and tritanopia (CIEDE2000 >= 10 between any two:
#: ``greenpath.app.palette`` and tests/app/test_app_palette.py); several are Okabe & Ito's.
COLORS: dict[str, str] = {
    # energy carriers
    "coal": "#3d3d3d",
    "oil": "#8c5a2b",
    "gas": "#8ec9e8",
    "electricity_imports": "#7b4fa0",
    "local_renewables": "#009e73",
    "total_energy": "#000000",
    # power technologies (PV: utility yellow, rooftop orange)
    "utility_pv": "#f0e442",
    "distributed_pv": "#e69f00",
    "wind": "#1a9e8f",
    "biomass": "#9bd08a",
    "hydro": "#0072b2",
    # industry branches
    "nonferrous": "#332288",
    "chemicals": "#d9711c",
    "building_materials": "#f0e442",
    "steel": "#44607f",
    "other_manufacturing": "#c7b6e0",
    "green_industry": "#5fb36b",
    # lever groups (wedges)
    "industry": "#d9711c",
    "energy": "#8ec9e8",
    "energy_supply": "#f0e442",
    "buildings": "#009e73",
    "transport": "#7b4fa0",
    "timing": "#9aa6b2",
    "uncertainties": "#e7a3c4",
    "other": "#cfcfcf",
    "total_reduction": "#000000",
    # marks
    "target": "#c0392b",
    "policy_start": "#7f7f7f",
    "observed": "#000000",
}

#: Scenario colours in order of appearance; the baseline always gets the first.
SCENARIO_PALETTE = ("#222222", "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00")
BASELINE = "baseline"
#: At most this many scenarios or series on one chart (STYLE.md: 5-6 series).
MAX_SCENARIOS = len(SCENARIO_PALETTE)


def scenario_colors(names: Sequence[str]) -> dict[str, str]:
    """Colour of each scenario: the baseline dark grey, the others in palette order.

    Raises
    ------
    ValueError
        For more scenarios than :data:`MAX_SCENARIOS`.
    """
    names = list(names)
    if len(names) > MAX_SCENARIOS:
        raise ValueError(f"{len(names)} scenarios on one chart; at most {MAX_SCENARIOS} "
                         "stay readable")
    colors: dict[str, str] = {}
    others = iter(SCENARIO_PALETTE[1:])
    for name in names:
        colors[name] = SCENARIO_PALETTE[0] if name == BASELINE else next(others)
    return colors


# ---------------------------------------------------------------------------- style
@dataclass(frozen=True)
class Style:
    """Sizes of one chart variant (inches, points, dots per inch)."""

    figsize: tuple[float, float]
    dpi: int
    font: float
    title: float
    small: float
    linewidth: float
    markersize: float


#: For reports read on screen or paper: 1500 x 844 px.
NORMAL = Style(figsize=(10.0, 5.625), dpi=150, font=11, title=15, small=9,
               linewidth=2.0, markersize=5)
#: For projectors: 16:9, 1920 x 1080 px, fonts readable from the back of the room.
PRESENTATION = Style(figsize=(13.333, 7.5), dpi=144, font=19, title=26, small=14,
                     linewidth=3.5, markersize=9)


def style(presentation: bool = False) -> Style:
    """Return the presentation (projector) or the normal variant."""
    return PRESENTATION if presentation else NORMAL


# ---------------------------------------------------------------------------- inputs
@dataclass
class Run:
    """One scenario's yearly results as the charts see them."""

    name: str
    frame: pd.DataFrame
    units: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


Results = Any  # RunResult | DataFrame | Mapping[str, RunResult | DataFrame]


def as_runs(results: Results) -> list[Run]:
    """Normalise chart input to a list of :class:`Run`.

    Accepts a RunResult, a DataFrame (years as index), a list of RunResults, or a
    mapping ``scenario name -> RunResult | DataFrame``.

    Raises
    ------
    ValueError
        For an empty input, a frame whose index is not years, or too many scenarios.
    TypeError
        For anything else.
    """
    if isinstance(results, Run):
        runs = [results]
    elif isinstance(results, pd.DataFrame) or hasattr(results, "frame"):
        runs = [_one_run(None, results)]
    elif isinstance(results, Mapping):
        runs = [_one_run(str(k), v) for k, v in results.items()]
    elif isinstance(results, Sequence) and not isinstance(results, str):
        runs = [_one_run(None, v) for v in results]
    else:
        raise TypeError(f"chart input must be a RunResult, a DataFrame or a mapping of "
                        f"scenario name to those, not {type(results).__name__}")
    if not runs:
        raise ValueError("no results to chart")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names repeat: {names}")
    scenario_colors(names)  # enforces the maximum
    return runs


def _one_run(name: str | None, value: Any) -> Run:
    if isinstance(value, Run):
        return value
    if isinstance(value, pd.DataFrame):
        frame, units, meta = value, {}, {}
    elif hasattr(value, "frame"):
        frame, units, meta = value.frame, dict(value.units), dict(value.metadata)
    else:
        raise TypeError(f"scenario {name!r}: expected a RunResult or DataFrame, "
                        f"not {type(value).__name__}")
    if frame.empty:
        raise ValueError(f"scenario {name!r}: the results table is empty")
    try:
        years = np.asarray(frame.index, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"scenario {name!r}: the results index must be years") from None
    if not np.all(np.isfinite(years)) or np.any(np.diff(years) <= 0):
        raise ValueError(f"scenario {name!r}: the results index must be increasing years")
    label = name or str(meta.get("scenario") or "scenario")
    return Run(label, frame, units, meta)


def _need(run: Run, columns: Sequence[str], chart: str) -> None:
    missing = [c for c in columns if c not in run.frame.columns]
    if missing:
        raise ValueError(f"{chart}: scenario {run.name!r} lacks the variable(s) "
                         f"{', '.join(missing)}; run the model with all outputs")


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} not one of {', '.join(LANGS)}")


def policy_start(run: Run) -> int:
    """First year the scenario's levers act (its setting, else the registry default)."""
    params = run.metadata.get("params") or {}
    if "policy_start_year" in params:
        return int(params["policy_start_year"])
    if "policy_start_year" in run.frame.columns:
        return int(run.frame["policy_start_year"].iloc[0])
    return _default_policy_start()


@lru_cache(maxsize=1)
def _default_policy_start() -> int:
    from greenpath.model.registry import load_registry

    return int(load_registry()["policy_start_year"].default)


@lru_cache(maxsize=1)
def data_vintage() -> int:
    """Last year of the recorded statistics the model is calibrated to (GDP record)."""
    from greenpath.calibration.history import load_history

    df = load_history()
    return int(df.loc[df["variable"] == "gdp_current_100m_yuan", "year"].max())


# ---------------------------------------------------------------------------- targets
#: Short source labels (i18n keys) of the shipped targets; other targets show their label.
_SOURCE_KEYS = {
    "coal_consumption_2025": "chart_source_seed_1_2",
    "energy_intensity_2025": "chart_source_seed_1_2",
    "co2_intensity_2025": "chart_source_henan_1_2",
    "renewable_capacity_2025_seed": "chart_source_seed_5_1",
    "renewable_capacity_2025_fyp14": "chart_source_energy_plan",
}
_CHANGE_VARIABLES = ("total_coal_consumption", "energy_intensity", "co2_intensity")
_MW_PER_UNIT = {"MW": 1.0, "GW": 1000.0, "10k kW": 10.0}
TargetsArg = Any  # list[greenpath.scenarios.targets.Target] | str | Path | None


@dataclass(frozen=True)
class Reference:
    """A plan target drawn as a dashed reference line."""

    id: str
    variable: str
    #: "change" (value is a fraction vs 2020), "level" (value in MW) or "peak_year"
    #: (value is the latest year of the peak)
    kind: str
    value: float
    year: int
    label_en: str
    label_zh: str
    set: str = ""

    def label(self, lang: str) -> str:
        """Return the target's label in ``lang``, as the targets file gives it."""
        return self.label_zh if lang == "zh" else self.label_en

    def source(self, lang: str) -> str:
        """Short name of the clause or document the target comes from."""
        key = _SOURCE_KEYS.get(self.id)
        if key:
            return t(key, lang)
        return self.label(lang)


def plan_references(targets: TargetsArg = None,
                    sets: Sequence[str] | None = None) -> list[Reference]:
    """Return the targets the charts draw, read from the (user-editable) targets file.

    Parameters
    ----------
    targets
        Loaded targets, a targets TOML file, or None for the shipped
        ``targets/jiaozuo_targets.toml`` (see :mod:`greenpath.scenarios.targets`).
    sets
        Only targets without a set plus these sets (default: all).

    Returns
    -------
    list of Reference
        Changes vs 2020 of coal consumption, energy intensity and CO2 intensity (as
        fractions), renewable capacity levels (MW) and the peak years of territorial CO2
        and of CO2 including imported electricity; other
        targets are not drawn.
    """
    from greenpath.scenarios import targets as tg

    if targets is None or isinstance(targets, str | Path):
        loaded = tg.load(targets or tg.DEFAULT_TARGETS)
    else:
        loaded = list(targets)
    out = []
    for tgt in tg.select(loaded, list(sets) if sets is not None else None):
        change = {f"change_vs_2020:{v}": v for v in _CHANGE_VARIABLES}
        if tgt.indicator in change and tgt.unit in ("%", "fraction"):
            value = tgt.value / 100 if tgt.unit == "%" else tgt.value
            kind, variable = "change", change[tgt.indicator]
        elif tgt.indicator == "renewable_capacity" and tgt.unit in _MW_PER_UNIT:
            value = tgt.value * _MW_PER_UNIT[tgt.unit]
            kind, variable = "level", "renewable_capacity"
        elif tgt.indicator in _PEAK_INDICATORS and tgt.unit == "year":
            value, kind, variable = tgt.value, "peak_year", _PEAK_INDICATORS[tgt.indicator]
        else:
            continue
        out.append(Reference(tgt.id, variable, kind, float(value), int(tgt.year),
                             tgt.label_en, tgt.label_zh, tgt.set or ""))
    return out


#: Peak-year indicators of the targets file drawn on the CO2 charts -> the charted variable.
_PEAK_INDICATORS = {"peak_year:co2_emissions": "co2_emissions",
                    "peak_year:co2_including_imports": "co2_including_imports"}


def _refs(refs: list[Reference], variable: str) -> list[Reference]:
    return [r for r in refs if r.variable == variable]


def _capacity_text(mw: float, lang: str) -> str:
    """'1,000 MW' / '100万千瓦' (Chinese plans count in 10,000 kW)."""
    if lang == "zh":
        return f"{mw / 10:g}万千瓦"
    return f"{mw:,.0f} MW"


def _pct(x: float) -> str:
    """'−12%' with a true minus sign and no needless decimals."""
    text = f"{abs(x) * 100:.1f}".rstrip("0").rstrip(".")
    return ("−" if x < 0 else "+") + text + "%"


# ---------------------------------------------------------------------------- series
#: Series of each chart: key -> model variable (None when computed).
INDUSTRY_SERIES = {
    "nonferrous": "output_nonferrous",
    "chemicals": "output_chemicals",
    "building_materials": "output_building_materials",
    "steel": "output_steel",
    "other_manufacturing": "output_other_manufacturing",
    "green_industry": "output_green_industry",
}
ENERGY_SERIES = {
    "coal": "total_coal_consumption",
    "oil": "total_oil",
    "gas": "total_gas",
    "local_renewables": None,
    "electricity_imports": "imported_electricity_primary_energy",
}
RENEWABLE_SERIES = {
    "utility_pv": "utility_pv_capacity",
    "distributed_pv": "distributed_pv_capacity",
    "wind": "wind_capacity",
    "biomass": "biomass_capacity",
    "hydro": "hydro_capacity",
}
UNIT_TEXT = {
    "value_added": "100 million CNY per year, 2020 prices (亿元/年)",
    "energy": "10,000 tce per year (万吨标准煤/年)",
    "capacity": "MW",
    "co2": "Mt CO2 per year",
    "change": "fraction change vs 2020 (-0.12 = -12%)",
}
TIDY_COLUMNS = ["scenario", "series", "year", "value", "unit"]


def _tidy(rows: list[pd.DataFrame]) -> pd.DataFrame:
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=TIDY_COLUMNS)
    out["year"] = out["year"].astype(int)
    return out[TIDY_COLUMNS]


def _rows(run: Run, series: str, values: pd.Series, unit: str) -> pd.DataFrame:
    return pd.DataFrame({"scenario": run.name, "series": series,
                         "year": np.asarray(values.index, dtype=int),
                         "value": values.to_numpy(dtype=float), "unit": unit})


def _window(frame: pd.DataFrame, start_year: int | None) -> pd.DataFrame:
    return frame if start_year is None else frame.loc[frame.index >= start_year]


def industry_output_data(results: Results, start_year: int | None = None) -> pd.DataFrame:
    """Value added of the six industry branches (100 million CNY, 2020 prices)."""
    rows = []
    for run in as_runs(results):
        _need(run, list(INDUSTRY_SERIES.values()), "industry output")
        frame = _window(run.frame, start_year)
        for key, col in INDUSTRY_SERIES.items():
            rows.append(_rows(run, key, frame[col], UNIT_TEXT["value_added"]))
    return _tidy(rows)


def energy_mix_data(results: Results, start_year: int | None = None) -> pd.DataFrame:
    """Energy consumption by carrier (10,000 tce), summing to the total.

    ``local_renewables`` is the total minus coal, oil, gas and net electricity imports:
    local renewable power and heat at coal equivalent.  (The model's
    ``non_fossil_primary_energy`` also counts the non-fossil part of imports, which
    would count imports twice in a stack.)  ``electricity_imports`` is negative in
    years of net export.  ``total_energy`` is the model's total, drawn as a line.
    """
    rows = []
    for run in as_runs(results):
        cols = [c for c in ENERGY_SERIES.values() if c] + ["total_energy_consumption"]
        _need(run, cols, "energy mix")
        frame = _window(run.frame, start_year)
        total = frame["total_energy_consumption"]
        fossil_and_imports = sum(frame[c] for c in ENERGY_SERIES.values() if c)
        for key, col in ENERGY_SERIES.items():
            values = (total - fossil_and_imports).clip(lower=0.0) if col is None else frame[col]
            rows.append(_rows(run, key, values, UNIT_TEXT["energy"]))
        rows.append(_rows(run, "total_energy", total, UNIT_TEXT["energy"]))
    return _tidy(rows)


def coal_use_data(results: Results, start_year: int | None = None,
                  targets: TargetsArg = None) -> pd.DataFrame:
    """Total coal consumption (10,000 tce) and each target's level per scenario.

    Target rows have ``series = 'target:<id>'`` and the target's year.
    """
    refs = _refs(plan_references(targets), "total_coal_consumption")
    rows = []
    for run in as_runs(results):
        _need(run, ["total_coal_consumption"], "coal use")
        s = run.frame["total_coal_consumption"]
        rows.append(_rows(run, "coal", _window(s.to_frame(), start_year)[s.name],
                          UNIT_TEXT["energy"]))
        base = _value_at(run, "total_coal_consumption", 2020)
        for ref in refs:
            rows.append(_rows(run, f"target:{ref.id}",
                              pd.Series([base * (1 + ref.value)], index=[ref.year]),
                              UNIT_TEXT["energy"]))
    return _tidy(rows)


def renewable_capacity_data(results: Results, start_year: int | None = 2010) -> pd.DataFrame:
    """Renewable power capacity by technology (MW)."""
    rows = []
    for run in as_runs(results):
        _need(run, list(RENEWABLE_SERIES.values()), "renewable capacity")
        frame = _window(run.frame, start_year)
        for key, col in RENEWABLE_SERIES.items():
            rows.append(_rows(run, key, frame[col], UNIT_TEXT["capacity"]))
    return _tidy(rows)


def co2_emissions_data(results: Results, variable: str = "co2_emissions",
                       start_year: int | None = None) -> pd.DataFrame:
    """CO2 emissions (Mt) per scenario, and each scenario's peak (``series='peak'``)."""
    from greenpath.model.indicators import peak

    rows = []
    for run in as_runs(results):
        _need(run, [variable], "CO2 emissions")
        frame = _window(run.frame, start_year)
        rows.append(_rows(run, variable, frame[variable], UNIT_TEXT["co2"]))
        year, value = peak(run.frame, variable)
        rows.append(_rows(run, "peak", pd.Series([value], index=[year]), UNIT_TEXT["co2"]))
    return _tidy(rows)


def intensity_change_data(results: Results, start_year: int | None = 2015) -> pd.DataFrame:
    """Energy intensity and CO2 intensity as change vs 2020 (fraction)."""
    from greenpath.model.indicators import change_vs

    rows = []
    for run in as_runs(results):
        _need(run, ["energy_intensity", "co2_intensity"], "intensity change")
        if 2020 not in run.frame.index:
            raise ValueError(f"intensity change: scenario {run.name!r} has no 2020 value")
        for col in ("energy_intensity", "co2_intensity"):
            change = change_vs(run.frame, col)
            rows.append(_rows(run, col, _window(change.to_frame(), start_year)[col],
                              UNIT_TEXT["change"]))
    return _tidy(rows)


def wedges_data(contributions: pd.DataFrame | Mapping[str, pd.DataFrame],
                max_groups: int = 5) -> pd.DataFrame:
    """Contributions by lever group (Mt CO2 per year), at most ``max_groups`` series.

    Parameters
    ----------
    contributions
        Output of ``greenpath.runners.wedges.compute`` (columns ``year, group, contribution``;
        positive = less CO2 than the baseline), or a mapping scenario -> such a table.
    max_groups
        Groups beyond the ``max_groups - 1`` largest (by cumulative absolute
        contribution) are summed into ``other``.
    """
    tables = ({"scenario": contributions} if isinstance(contributions, pd.DataFrame)
              else dict(contributions))
    if not tables:
        raise ValueError("wedges: no contributions given")
    rows = []
    for name, table in tables.items():
        missing = {"year", "group", "contribution"} - set(table.columns)
        if missing:
            raise ValueError(f"wedges: contributions of {name!r} lack columns "
                             f"{sorted(missing)} (expected year, group, contribution)")
        pivot = table.pivot_table(index="year", columns="group", values="contribution",
                                  aggfunc="sum").fillna(0.0).sort_index()
        # Groups the scenario does not change contribute nothing: no area, no legend.
        pivot = pivot.loc[:, (pivot != 0).any(axis=0)]
        if pivot.shape[1] == 0:
            raise ValueError(f"wedges: every contribution of {name!r} is zero (the "
                             "scenario sets no lever differently from the baseline)")
        order = pivot.abs().sum().sort_values(ascending=False).index.tolist()
        if len(order) > max_groups:
            keep, rest = order[: max_groups - 1], order[max_groups - 1:]
            pivot = pivot[keep].assign(other=pivot[rest].sum(axis=1))
        else:
            pivot = pivot[order]
        for group in pivot.columns:
            rows.append(pd.DataFrame({
                "scenario": name, "series": str(group), "year": pivot.index.astype(int),
                "value": pivot[group].to_numpy(dtype=float), "unit": UNIT_TEXT["co2"]}))
    return _tidy(rows)


def _value_at(run: Run, column: str, year: int) -> float:
    if year not in run.frame.index:
        raise ValueError(f"scenario {run.name!r} has no {year} value of {column}")
    return float(run.frame.loc[year, column])


# ---------------------------------------------------------------------------- drawing
def series_label(key: str, lang: str) -> str:
    """Legend name of a carrier, technology, branch or lever group."""
    for prefix in ("chart_series_", "chart_group_"):
        try:
            return t(prefix + key.replace(" ", "_").replace("-", "_"), lang)
        except KeyError:
            continue
    return key.replace("_", " ")


def scenario_label(run: Run, lang: str, labels: Mapping[str, str] | None) -> str:
    """Legend name of a scenario: the caller's label, a short title, or the name.

    Labels and titles are the user's text: a ``$`` is escaped so matplotlib shows it as
    typed instead of parsing mathtext (``$x^$`` would stop the chart with a ValueError).
    """
    if labels and run.name in labels:
        return labels[run.name].replace("$", r"\$")
    title = run.metadata.get(f"title_{lang}") or ""
    for cut in (" (", "(", "（"):
        title = title.split(cut)[0]
    return (title.strip() or run.name).replace("$", r"\$")


def footer_text(runs: Sequence[Run], lang: str) -> str:
    """'scenario · model <sha256[:8]> · calibration <id> · data to <year>'."""
    models = sorted({str(r.metadata.get("model_sha256", ""))[:8] or "?" for r in runs})
    cals = sorted({str(r.metadata.get("calibration_sha256_12") or "") for r in runs})
    cal = ", ".join(c or t("chart_calibration_none", lang) for c in cals)
    return t("chart_footer", lang, scenarios=", ".join(r.name for r in runs),
             model=", ".join(models), calibration=cal, vintage=data_vintage())


def _new_figure(st: Style, nrows: int = 1, ncols: int = 1, sharey: bool = True):
    fig = Figure(figsize=st.figsize, dpi=st.dpi, layout="constrained")
    FigureCanvasAgg(fig)
    constrained_layout(fig).set(w_pad=0.06, h_pad=0.06)
    axes = fig.subplots(nrows, ncols, sharey=sharey, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _panel_grid(n: int) -> tuple[int, int]:
    return (1, n) if n <= 3 else (2, math.ceil(n / 2))


def _format_axes(ax: Axes, st: Style, ylabel: str, lang: str, *, xlabel: bool = True,
                 percent: bool = False, zero_floor: bool = True) -> None:
    ax.set_ylabel(ylabel, fontsize=st.font)
    if xlabel:
        ax.set_xlabel(t("chart_axis_year", lang), fontsize=st.font)
    ax.tick_params(labelsize=st.font * 0.9, labelfontfamily=FONT_FAMILY)
    ax.xaxis.set_major_locator(MultipleLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{int(round(x))}"))
    if percent:
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda y, _: f"{y * 100:.0f}%".replace("-", "−")))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda y, _: f"{y:,.0f}".replace("-", "−")))
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if zero_floor:
        ax.set_ylim(bottom=0)


def _mark_policy_start(ax: Axes, years: Sequence[int], st: Style, lang: str) -> None:
    for year in sorted(set(years)):
        ax.axvline(year, color=COLORS["policy_start"], linestyle=":",
                   linewidth=st.linewidth * 0.6, gid=f"policy_start:{year}", zorder=1)
        ax.annotate(t("chart_policy_start", lang, year=year) + " →", xy=(year, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(4, -4),
                    textcoords="offset points", ha="left", va="top",
                    fontsize=st.small, color=COLORS["policy_start"])


def _reference_line(ax: Axes, key: str, y: float, x0: float, x1: float, label: str,
                    st: Style, *, va: str = "bottom", year: float | None = None) -> Line2D:
    """Draw a dashed target line from ``x0`` to ``x1`` at ``y``.

    A diamond marks the target ``year``; the label sits at the right end, above
    (``va='bottom'``) or below the line.
    """
    xs = [x0, x1] if year is None or not x0 < year < x1 else [x0, year, x1]
    (line,) = ax.plot(xs, [y] * len(xs), linestyle="--", color=COLORS["target"],
                      linewidth=st.linewidth * 0.8, gid=f"target:{key}", zorder=4,
                      marker="D" if len(xs) == 3 else "None",
                      markersize=st.markersize * 1.1, markevery=[1] if len(xs) == 3 else None)
    ax.annotate(label, xy=(x1, y), xytext=(0, 4 if va == "bottom" else -4),
                textcoords="offset points", ha="right", va=va, fontsize=st.small,
                color=COLORS["target"],
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1})
    return line


def line_ends(lines: pd.DataFrame) -> np.ndarray:
    """Return the last value of every scenario's line (tidy rows of one series)."""
    return lines.loc[lines["year"] == lines["year"].max(), "value"].to_numpy(dtype=float)


def label_below(ends: Sequence[float] | np.ndarray, y: float) -> bool:
    """Whether a target's label goes under its line at ``y``: more lines end above it.

    ``ends``: each line's last value (:func:`line_ends`).  The app's live charts place
    their target labels by the same rule.
    """
    ends = np.asarray(ends, dtype=float)
    return bool(np.sum(ends > y) > np.sum(ends < y))


def _label_side(data: pd.DataFrame, series: str, y: float,
                transform: Callable[[np.ndarray], np.ndarray] | None = None) -> str:
    """'bottom' (label above the target line) unless more scenarios end above it."""
    last = line_ends(data[data["series"] == series])
    if transform is not None:
        last = transform(last)
    return "top" if label_below(last, y) else "bottom"


def _display_width(text: str) -> int:
    """Width in Latin characters: a CJK character counts twice."""
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text)


def _legend_columns(labels: Sequence[str], st: Style) -> int:
    """Most legend columns that fit the figure width (matplotlib fills column-first)."""
    em = st.font * 0.9 / 72  # inches
    widths = [(_display_width(x) * 0.55 + 1.8 + 0.8 + 1.5) * em for x in labels]
    avail = st.figsize[0] * 0.96
    fit = 1
    for ncols in range(len(labels), 0, -1):
        nrows = math.ceil(len(labels) / ncols)
        cols = [widths[i:i + nrows] for i in range(0, len(widths), nrows)]
        if sum(max(c) for c in cols) <= avail:
            fit = ncols
            break
    # Balanced rows (3 + 3 rather than 5 + 1).
    return math.ceil(len(labels) / math.ceil(len(labels) / fit))


def _finish(fig: Figure, runs: Sequence[Run], st: Style, lang: str, title: str,
            handles: list | None = None, legend_labels: list[str] | None = None) -> Figure:
    """Title, legend under it, footer; the axes get the space in between."""
    height = st.figsize[1]
    pad = 0.12  # inches
    title_h = st.title * 1.45 / 72
    fig.text(0.01, 1 - pad / height, title, ha="left", va="top", fontsize=st.title)
    top = 1 - (pad + title_h) / height
    if handles:
        # Under the title, in rows, so the panels keep the full width of a 16:9 slide.
        labels = list(legend_labels or [])
        ncols = _legend_columns(labels, st)
        nrows = math.ceil(len(labels) / ncols)
        # matplotlib fills legend columns first; order the entries so they read by rows.
        order = [r * ncols + c for c in range(ncols) for r in range(nrows)
                 if r * ncols + c < len(labels)]
        handles = [handles[i] for i in order]
        labels = [labels[i] for i in order]
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, top),
                   frameon=False, fontsize=st.font * 0.9, ncols=ncols, columnspacing=1.5,
                   handlelength=1.8, borderaxespad=0.0, borderpad=0.2)
        top -= (nrows * st.font * 0.9 * 1.45 + 0.3 * st.font) / 72 / height
    footer_h = (st.small * 0.85 * 1.6) / 72 / height
    fig.text(0.005, 0.3 * footer_h, footer_text(runs, lang), ha="left", va="bottom",
             fontsize=st.small * 0.85, color="#555555")
    constrained_layout(fig).set(rect=(0.0, 1.3 * footer_h, 1.0, top - 1.3 * footer_h))
    for text in fig.findobj(Text):
        text.set_fontfamily(FONT_FAMILY)
    separate_labels(fig)
    return fig


def label_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Return the pairs of labels inside one axes whose boxes overlap (after layout)."""
    import itertools

    fig.draw_without_rendering()
    renderer = _agg(fig).get_renderer()
    pairs = []
    for ax in fig.axes:
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts
                 if t.get_visible() and t.get_text().strip()]
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
            if box_a.overlaps(box_b):
                pairs.append((a, b))
    return pairs


def separate_labels(fig: Figure, pad_pt: float = 2.0, rounds: int = 8) -> None:
    """Move annotations down until no two labels of one axes overlap.

    Labels are placed in the order they were drawn; a later label that overlaps an
    earlier one moves down (its offset from its anchor grows) by the overlap plus
    ``pad_pt`` points, e.g. the peak-year target label under the "policy from" label
    when both sit at the top of the CO2 chart.  Only annotations placed by an offset
    in points move; other texts stay where they are.
    """
    from matplotlib.text import Annotation

    for _ in range(rounds):
        moved = False
        fig.draw_without_rendering()
        renderer = _agg(fig).get_renderer()
        for ax in fig.axes:
            texts = [t for t in ax.texts if t.get_visible() and t.get_text().strip()]
            placed: list = []
            for text in texts:
                box = text.get_window_extent(renderer)
                hit = next((b for b in placed if box.overlaps(b)), None)
                if (hit is not None and isinstance(text, Annotation)
                        and text.anncoords == "offset points"):
                    shift = (box.y1 - hit.y0) * 72.0 / fig.dpi + pad_pt
                    x, y = text.xyann
                    text.xyann = (x, y - shift)
                    moved = True
                    box = text.get_window_extent(renderer)
                placed.append(box)
        if not moved:
            return


def _line_kwargs(run: Run, color: str, st: Style, start: int, years: np.ndarray) -> dict:
    """Solid line; markers on the (calibrated) history years only."""
    history = [i for i, y in enumerate(years) if y < start]
    return {"color": color, "linewidth": st.linewidth, "marker": "o",
            "markersize": st.markersize * 0.7, "markevery": history or None}


def _draw_bands(ax: Axes, bands: pd.DataFrame | None, run: Run, variable: str,
                color: str, n_runs: int, start_year: int | None,
                transform: Callable[[pd.Series], pd.Series] | None = None) -> str | None:
    """Shade the P10-P90 band of ``variable`` for ``run``; return its colour (None: none drawn)."""
    if bands is None:
        return None
    missing = {"year", "p10", "p90"} - set(bands.columns)
    if missing:
        raise ValueError(f"bands lack columns {sorted(missing)} (need year, p10, p90 and "
                         "optionally scenario, variable)")
    sel = bands
    if "variable" in sel.columns:
        sel = sel[sel["variable"] == variable]
    if "scenario" in sel.columns:
        sel = sel[sel["scenario"] == run.name]
    elif n_runs > 1:
        raise ValueError("bands for several scenarios need a 'scenario' column")
    if sel.empty:
        return None
    sel = sel.sort_values("year")
    if start_year is not None:
        sel = sel[sel["year"] >= start_year]
    lo, hi = sel["p10"].astype(float), sel["p90"].astype(float)
    if transform is not None:
        lo, hi = transform(lo), transform(hi)
    ax.fill_between(sel["year"].to_numpy(dtype=float), lo.to_numpy(), hi.to_numpy(),
                    color=color, alpha=BAND_ALPHA, linewidth=0, gid=f"band:{run.name}")
    return color


BAND_ALPHA = 0.18


def _band_handle(colors: Sequence[str | None], lang: str) -> tuple[Patch, str] | None:
    """Legend entry of the bands drawn: their own colour (grey when scenarios differ)."""
    drawn = list(dict.fromkeys(c for c in colors if c))
    if not drawn:
        return None
    color = drawn[0] if len(drawn) == 1 else "#888888"
    return Patch(facecolor=color, alpha=BAND_ALPHA * 1.6, edgecolor="none"), t("chart_band", lang)


def _stack(ax: Axes, years: np.ndarray, keys: list[str], values: dict[str, np.ndarray],
           st: Style) -> None:
    """Stacked areas; negative values stacked downward from zero."""
    pos_base = np.zeros_like(years, dtype=float)
    neg_base = np.zeros_like(years, dtype=float)
    for key in keys:
        v = values[key]
        pos, neg = np.clip(v, 0, None), np.clip(v, None, 0)
        if np.any(pos > 0):
            ax.fill_between(years, pos_base, pos_base + pos, color=color_of(key),
                            linewidth=0, gid=f"area:{key}")
        if np.any(neg < 0):
            ax.fill_between(years, neg_base + neg, neg_base, color=color_of(key),
                            linewidth=0, gid=f"area:{key}:negative")
        pos_base = pos_base + pos
        neg_base = neg_base + neg
    if np.any(neg_base < 0):
        ax.axhline(0, color="#555555", linewidth=0.8)


def color_of(key: str) -> str:
    """Colour of a carrier, technology, branch or lever group (grey if unknown)."""
    return COLORS.get(key.replace(" ", "_").replace("-", "_"), "#bbbbbb")


def constrained_layout(fig: Figure) -> ConstrainedLayoutEngine:
    """Return the constrained layout engine of ``fig`` (made with ``layout="constrained"``) to set."""
    engine = fig.get_layout_engine()
    if not isinstance(engine, ConstrainedLayoutEngine):
        raise TypeError(f"the figure has layout engine {engine!r}, not the constrained one")
    return engine


def _agg(fig: Figure) -> FigureCanvasAgg:
    """Return the Agg canvas every chart is drawn on (its renderer measures the text)."""
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        raise TypeError(f"the figure is on canvas {type(canvas).__name__}, not Agg")
    return canvas


def _change_from(base: float):
    """Return ``s -> s / base - 1``: a series as the change from its value in the base year."""
    return lambda s: s / base - 1


def _patch(key: str, lang: str) -> tuple[Patch, str]:
    return Patch(facecolor=color_of(key)), series_label(key, lang)


def _stacked_panels(data: pd.DataFrame, runs: list[Run], keys: list[str], *, lang: str,
                    st: Style, labels: Mapping[str, str] | None, ylabel: str,
                    total_key: str | None = None) -> tuple[Figure, list[Axes], list[str]]:
    """One stacked-area panel per scenario, same y scale; returns the keys drawn."""
    nrows, ncols = _panel_grid(len(runs))
    fig, axes = _new_figure(st, nrows, ncols)
    drawn: list[str] = []
    for i, (ax, run) in enumerate(zip(axes, runs, strict=False)):
        sub = data[data["scenario"] == run.name]
        wide = sub.pivot(index="year", columns="series", values="value").sort_index()
        years = wide.index.to_numpy(dtype=float)
        present = [k for k in keys if k in wide and np.any(wide[k].to_numpy() != 0)]
        drawn += [k for k in present if k not in drawn]
        _stack(ax, years, present, {k: wide[k].to_numpy(dtype=float) for k in present}, st)
        if total_key and total_key in wide:
            ax.plot(years, wide[total_key].to_numpy(dtype=float), color=COLORS[total_key],
                    linewidth=st.linewidth * 0.7, gid=f"line:{total_key}")
        ax.set_title(scenario_label(run, lang, labels), fontsize=st.font, loc="left")
        last_row = i >= len(runs) - ncols
        _format_axes(ax, st, ylabel if i % ncols == 0 else "", lang, xlabel=last_row,
                     zero_floor=False)
        ax.set_xlim(years[0], years[-1])
        _mark_policy_start(ax, [policy_start(run)], st, lang)
    for ax in axes[len(runs):]:
        ax.set_visible(False)
    if (data.loc[data["series"].isin(keys), "value"] >= 0).all():
        for ax in axes[: len(runs)]:
            ax.set_ylim(bottom=0)
    return fig, axes, drawn


def _check(lang: str, results: Results) -> list[Run]:
    _check_lang(lang)
    return as_runs(results)


# ---------------------------------------------------------------------------- charts
def industry_output(results: Results, lang: str = "en", *, presentation: bool = False,
                    labels: Mapping[str, str] | None = None,
                    start_year: int | None = None) -> Figure:
    """Stacked value added of the six industry branches, one panel per scenario.

    Parameters
    ----------
    results
        RunResult or DataFrame, or mapping scenario name -> RunResult | DataFrame.
    lang
        ``"en"`` or ``"zh"``.
    presentation
        Large fonts and a 1920 x 1080 canvas for projectors.
    labels
        Legend / panel names per scenario (default: short scenario titles or names).
    start_year
        First year shown (default: all years).
    """
    runs = _check(lang, results)
    st = style(presentation)
    data = industry_output_data(runs, start_year)
    keys = list(INDUSTRY_SERIES)
    fig, _, drawn = _stacked_panels(data, runs, keys, lang=lang, st=st, labels=labels,
                                    ylabel=t("chart_axis_value_added", lang))
    handles = [_patch(k, lang) for k in drawn]
    return _finish(fig, runs, st, lang, t("chart_title_industry_output", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


def energy_mix(results: Results, lang: str = "en", *, presentation: bool = False,
               labels: Mapping[str, str] | None = None,
               start_year: int | None = None) -> Figure:
    """Energy consumption stacked by carrier (10,000 tce), one panel per scenario.

    Net electricity imports are stacked on top when positive and drawn below zero in
    years of net export; the black line is the model's total energy consumption.
    Parameters as :func:`industry_output`.
    """
    runs = _check(lang, results)
    st = style(presentation)
    data = energy_mix_data(runs, start_year)
    keys = list(ENERGY_SERIES)
    fig, _, drawn = _stacked_panels(data, runs, keys, lang=lang, st=st, labels=labels,
                                    ylabel=t("chart_axis_energy", lang),
                                    total_key="total_energy")
    handles: list[tuple[Artist, str]] = [
        (Line2D([], [], color=COLORS["total_energy"], linewidth=st.linewidth * 0.7),
         series_label("total_energy", lang))]
    handles += [_patch(k, lang) for k in drawn]
    return _finish(fig, runs, st, lang, t("chart_title_energy_mix", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


def _scenario_lines(ax: Axes, data: pd.DataFrame, runs: list[Run], series: str, st: Style,
                    lang: str, labels: Mapping[str, str] | None,
                    transform: Callable[[np.ndarray], np.ndarray] | None = None
                    ) -> list[tuple[Any, str]]:
    colors = scenario_colors([r.name for r in runs])
    handles = []
    for run in runs:
        sub = data[(data["scenario"] == run.name) & (data["series"] == series)]
        years = sub["year"].to_numpy(dtype=float)
        y = sub["value"].to_numpy(dtype=float)
        if transform is not None:
            y = transform(y)
        (line,) = ax.plot(years, y, gid=f"scenario:{run.name}", zorder=3,
                          **_line_kwargs(run, colors[run.name], st, policy_start(run), years))
        handles.append((line, scenario_label(run, lang, labels)))
    return handles


def coal_use(results: Results, lang: str = "en", *, presentation: bool = False,
             labels: Mapping[str, str] | None = None, start_year: int | None = None,
             bands: pd.DataFrame | None = None, targets: TargetsArg = None) -> Figure:
    """Total coal consumption per scenario against the 2025 target.

    The target (−12% vs 2020, seed plan 一(二), from the targets file) is a dashed line
    at ``(1 + change) x`` the 2020 value, from 2020 to the last year, with a diamond at
    2025.  ``bands``: optional P10-P90 table (columns ``year, p10, p90`` and, for
    several scenarios, ``scenario``; with a ``variable`` column only rows of
    ``total_coal_consumption`` are used).  ``targets``: a targets file or list (default
    the shipped one).  Other parameters as :func:`industry_output`.
    """
    runs = _check(lang, results)
    st = style(presentation)
    data = coal_use_data(runs, start_year, targets)
    fig, (ax,) = _new_figure(st)
    colors = scenario_colors([r.name for r in runs])
    band_colors = [_draw_bands(ax, bands, run, "total_coal_consumption", colors[run.name],
                               len(runs), start_year) for run in runs]
    handles = _scenario_lines(ax, data, runs, "coal", st, lang, labels)
    years = data.loc[data["series"] == "coal", "year"]
    base = _value_at(runs[0], "total_coal_consumption", 2020)
    for ref in _refs(plan_references(targets), "total_coal_consumption"):
        label = t("chart_target_change", lang, pct=_pct(ref.value), source=ref.source(lang))
        level = base * (1 + ref.value)
        _reference_line(ax, ref.id, level, 2020, float(years.max()), label, st,
                        va=_label_side(data, "coal", level), year=ref.year)
    _format_axes(ax, st, t("chart_axis_coal", lang), lang)
    ax.set_xlim(float(years.min()), float(years.max()))
    _mark_policy_start(ax, [policy_start(r) for r in runs], st, lang)
    if (band := _band_handle(band_colors, lang)) is not None:
        handles.append(band)
    return _finish(fig, runs, st, lang, t("chart_title_coal_use", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


def renewable_capacity(results: Results, lang: str = "en", *, presentation: bool = False,
                       labels: Mapping[str, str] | None = None, start_year: int | None = 2010,
                       targets: TargetsArg = None, sets: Sequence[str] | None = None,
                       show_history: bool = True, bands: pd.DataFrame | None = None) -> Figure:
    """Renewable capacity stacked by technology (MW) against the 2025 targets.

    Dashed lines: every ``renewable_capacity`` target of the targets file, i.e.
    1,000 MW (seed plan 五(一), set ``seed_2021``) and 2,500 MW (14th FYP energy plan,
    set ``fyp14_energy``); ``sets`` chooses among them as in
    :func:`greenpath.scenarios.targets.evaluate`.  With ``show_history`` the recorded end-2020
    capacity is marked.  ``bands``: P10-P90 of ``renewable_capacity`` (total) as in
    :func:`coal_use`, shaded over the stack of each scenario that has one.  One panel per
    scenario; other parameters as :func:`industry_output`.
    """
    runs = _check(lang, results)
    st = style(presentation)
    refs = _refs(plan_references(targets, sets), "renewable_capacity")
    data = renewable_capacity_data(runs, start_year)
    keys = list(RENEWABLE_SERIES)
    fig, axes, drawn = _stacked_panels(data, runs, keys, lang=lang, st=st, labels=labels,
                                       ylabel=t("chart_axis_capacity", lang))
    observed = _observed_renewables() if show_history else None
    x1 = float(data["year"].max())
    colors = scenario_colors([r.name for r in runs])
    band_colors = [_draw_bands(ax, bands, run, "renewable_capacity", colors[run.name], len(runs),
                               start_year) for ax, run in zip(axes, runs, strict=False)]
    for ax in axes[: len(runs)]:
        for ref in refs:
            label = t("chart_target_capacity", lang, value=_capacity_text(ref.value, lang),
                      source=ref.source(lang))
            _reference_line(ax, ref.id, ref.value, float(data["year"].min()), x1, label, st,
                            year=ref.year)
        if observed is not None:
            ax.plot(observed.index.to_numpy(dtype=float), observed.to_numpy(), linestyle="none",
                    marker="D", markersize=st.markersize * 1.2, color=COLORS["observed"],
                    markerfacecolor="white", markeredgewidth=2, zorder=5, gid="observed")
        if refs:
            top = max(r.value for r in refs)
            ax.set_ylim(top=max(ax.get_ylim()[1], top * 1.12))
    handles: list[tuple[Artist, str]] = [_patch(k, lang) for k in drawn]
    if observed is not None:
        handles.append((Line2D([], [], linestyle="none", marker="D", color="black",
                               markerfacecolor="white", markeredgewidth=2,
                               markersize=st.markersize * 1.2),
                        t("chart_history_renewables_2020", lang)))
    if (band := _band_handle(band_colors, lang)) is not None:
        handles.append(band)
    return _finish(fig, runs, st, lang, t("chart_title_renewable_capacity", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


@lru_cache(maxsize=1)
def _observed_renewables() -> pd.Series:
    """Return the recorded end-2020 renewable capacity (MW) implied by the 2021-25 plan."""
    from greenpath.calibration.history import load_history, series

    return series(load_history(), "renewable_capacity_10k_kw_implied_base") * 10


@lru_cache(maxsize=1)
def _observed_co2() -> pd.Series:
    from greenpath.calibration.history import load_history, series
    from greenpath.model.mdl import INITIAL_TIME

    observed = series(load_history(), "co2_emissions_mt")
    return observed[observed.index >= INITIAL_TIME]  # CEADs starts in 2004, the model in 2005


def _peak_target_line(ax: Axes, ref: Reference, st: Style, lang: str) -> None:
    """Dashed vertical line at a peak-year target, labelled left of it at the top."""
    ax.axvline(ref.value, linestyle="--", color=COLORS["target"], linewidth=st.linewidth * 0.8,
               gid=f"target:{ref.id}", zorder=4)
    ax.annotate(ref.label(lang), xy=(ref.value, 1.0),
                xycoords=("data", "axes fraction"), xytext=(-4, -4),
                textcoords="offset points", ha="right", va="top", fontsize=st.small,
                color=COLORS["target"],
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1})


def co2_emissions(results: Results, lang: str = "en", *, presentation: bool = False,
                  labels: Mapping[str, str] | None = None, start_year: int | None = None,
                  variable: str = "co2_emissions", bands: pd.DataFrame | None = None,
                  show_history: bool = True, targets: TargetsArg = None,
                  sets: Sequence[str] | None = None) -> Figure:
    """CO2 emissions per scenario with each peak marked and CEADs history as markers.

    ``variable``: ``co2_emissions`` (territorial, the CEADs boundary) or
    ``co2_including_imports``.  A series still rising in 2035 is labelled "still
    rising".  The peak-year target of the targets file ("peak by 2030") is a dashed
    vertical line labelled at the top, as in the app's live chart.  ``bands`` as in
    :func:`coal_use`; ``targets`` and ``sets`` as in :func:`renewable_capacity`.  Other
    parameters as :func:`industry_output`.
    """
    if variable not in ("co2_emissions", "co2_including_imports"):
        raise ValueError(f"variable {variable!r} not one of co2_emissions, "
                         "co2_including_imports")
    runs = _check(lang, results)
    st = style(presentation)
    data = co2_emissions_data(runs, variable, start_year)
    fig, (ax,) = _new_figure(st)
    colors = scenario_colors([r.name for r in runs])
    band_colors = [_draw_bands(ax, bands, run, variable, colors[run.name], len(runs),
                               start_year) for run in runs]
    handles = _scenario_lines(ax, data, runs, variable, st, lang, labels)
    series_years = data.loc[data["series"] == variable, "year"]
    last = int(series_years.max())
    labelled: dict[tuple[int, float], str] = {}
    for run in runs:
        pk = data[(data["scenario"] == run.name) & (data["series"] == "peak")].iloc[0]
        year, value = int(pk["year"]), float(pk["value"])
        ax.plot([year], [value], marker="*", markersize=st.markersize * 2.6,
                color=colors[run.name], markeredgecolor="white", zorder=6,
                gid=f"peak:{run.name}", clip_on=False)
        spot = (year, round(value, 3))
        if spot in labelled:  # scenarios sharing a peak (e.g. in history) get one label
            labelled[spot] = COLORS["observed"]
            continue
        labelled[spot] = colors[run.name]
    for i, ((year, value), color) in enumerate(labelled.items()):
        text = (t("chart_no_peak", lang, year=year) if year >= last
                else t("chart_peak", lang, year=year, value=f"{value:.1f}"))
        ax.annotate(text, xy=(year, value), xytext=(0, 10 + 1.6 * st.small * i),
                    textcoords="offset points", ha="right" if year >= last else "center",
                    va="bottom", fontsize=st.small, color=color, gid="peak_label")
    if show_history and variable == "co2_emissions":
        obs = _observed_co2()
        lo = float(series_years.min())
        obs = obs[obs.index >= lo]
        (h,) = ax.plot(obs.index.to_numpy(dtype=float), obs.to_numpy(), linestyle="none",
                       marker="s", markersize=st.markersize * 1.1, color=COLORS["observed"],
                       markerfacecolor="white", markeredgewidth=1.8, zorder=5,
                       gid="observed:ceads")
        handles.append((h, t("chart_history_ceads", lang)))
    if (band := _band_handle(band_colors, lang)) is not None:
        handles.append(band)
    _format_axes(ax, st, t("chart_axis_co2", lang), lang)
    ax.set_xlim(float(series_years.min()), float(last))
    ax.set_ylim(top=ax.get_ylim()[1] * 1.12)  # room for the peak labels
    _mark_policy_start(ax, [policy_start(r) for r in runs], st, lang)
    for ref in _refs(plan_references(targets, sets), variable):
        _peak_target_line(ax, ref, st, lang)
    return _finish(fig, runs, st, lang, t(f"chart_title_{variable}", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


def intensity_change(results: Results, lang: str = "en", *, presentation: bool = False,
                     labels: Mapping[str, str] | None = None, start_year: int | None = 2015,
                     bands: pd.DataFrame | None = None, targets: TargetsArg = None) -> Figure:
    """Energy intensity and CO2 intensity, change vs 2020, against the 2025 targets.

    Left panel: energy per unit of GDP against −16% (seed plan 一(二)); right panel: CO2
    per unit of GDP against −19.5% (Henan's target, which the plan adopts).
    ``bands``: optional P10-P90 rows with ``variable`` ``energy_intensity`` or
    ``co2_intensity`` given as levels; they are converted to change vs each scenario's
    2020 value.  ``targets`` as in :func:`coal_use`.  Other parameters as
    :func:`industry_output`.
    """
    runs = _check(lang, results)
    st = style(presentation)
    refs = plan_references(targets)
    data = intensity_change_data(runs, start_year)
    fig, axes = _new_figure(st, 1, 2, sharey=True)
    colors = scenario_colors([r.name for r in runs])
    handles: list[tuple[Any, str]] = []
    band_colors: list[str | None] = []
    panels = (("energy_intensity", "chart_panel_energy_intensity"),
              ("co2_intensity", "chart_panel_co2_intensity"))
    years = data["year"]
    for i, (ax, (col, title_key)) in enumerate(zip(axes, panels, strict=True)):
        for run in runs:
            base = _value_at(run, col, 2020)
            band_colors.append(_draw_bands(ax, bands, run, col, colors[run.name], len(runs),
                                           start_year, transform=_change_from(base)))
        h = _scenario_lines(ax, data, runs, col, st, lang, labels)
        if i == 0:
            handles = h
        for ref in _refs(refs, col):
            label = t("chart_target_change", lang, pct=_pct(ref.value),
                      source=ref.source(lang))
            _reference_line(ax, ref.id, ref.value, 2020, float(years.max()), label, st,
                            va=_label_side(data, col, ref.value), year=ref.year)
        ax.axhline(0, color="#555555", linewidth=0.8)
        ax.set_title(t(title_key, lang), fontsize=st.font, loc="left")
        _format_axes(ax, st, t("chart_axis_change_vs_2020", lang) if i == 0 else "", lang,
                     percent=True, zero_floor=False)
        ax.set_xlim(float(years.min()), float(years.max()))
        _mark_policy_start(ax, [policy_start(r) for r in runs], st, lang)
    if (band := _band_handle(band_colors, lang)) is not None:
        handles.append(band)
    return _finish(fig, runs, st, lang, t("chart_title_intensity_change", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


def wedges(contributions: pd.DataFrame | Mapping[str, pd.DataFrame],
           results: Results | None = None, lang: str = "en", *, presentation: bool = False,
           labels: Mapping[str, str] | None = None,
           baseline: Any | None = None, variable: str = "co2_emissions",
           max_groups: int = 5) -> Figure:
    """Stacked contributions of lever groups to the CO2 reduction vs the baseline.

    Parameters
    ----------
    contributions
        ``greenpath.runners.wedges.compute(...)`` output (``year, group, contribution``,
        Mt CO2 per year, positive = less CO2), or a mapping scenario -> such a table
        (one panel each).
    results
        The scenarios' results (same keys as ``contributions``): used for the footer
        and the policy start year, and, with ``baseline``, to draw the total reduction
        (baseline − scenario) as a black line, so any interaction residual shows.
    baseline
        The baseline RunResult or DataFrame.
    variable
        The emissions variable the contributions refer to (``co2_emissions``,
        territorial, or ``co2_including_imports``; see :data:`WEDGE_CHARTS`): it sets
        the title and the total line.
    max_groups
        At most this many areas; smaller groups are summed into "other".
    lang, presentation, labels
        As in :func:`industry_output`.
    """
    _check_lang(lang)
    st = style(presentation)
    if isinstance(contributions, pd.DataFrame):
        name = next(iter(as_runs(results))).name if results is not None else "scenario"
        contributions = {name: contributions}
    data = wedges_data(contributions, max_groups)
    names = list(dict.fromkeys(data["scenario"]))
    runs = as_runs(results) if results is not None else [Run(n, pd.DataFrame()) for n in names]
    by_name = {r.name: r for r in runs}
    base_run = _one_run(BASELINE, baseline) if baseline is not None else None
    nrows, ncols = _panel_grid(len(names))
    fig, axes = _new_figure(st, nrows, ncols)
    drawn: list[str] = []
    for i, (ax, name) in enumerate(zip(axes, names, strict=False)):
        sub = data[data["scenario"] == name]
        wide = sub.pivot(index="year", columns="series", values="value").sort_index()
        # Show the years from just before the first contribution: before it every
        # scenario is the baseline and the panel would be half empty.
        active = wide.index[(wide != 0).any(axis=1)]
        wide = wide.loc[wide.index >= active.min() - 1]
        years = wide.index.to_numpy(dtype=float)
        keys = list(dict.fromkeys(sub["series"]))  # largest first, "other" last
        drawn += [k for k in keys if k not in drawn]
        _stack(ax, years, keys, {k: wide[k].to_numpy(dtype=float) for k in keys}, st)
        run = by_name.get(name)
        if base_run is not None and run is not None and not run.frame.empty:
            total = (base_run.frame[variable] - run.frame[variable]).reindex(wide.index)
            ax.plot(years, total.to_numpy(dtype=float), color=COLORS["total_reduction"],
                    linewidth=st.linewidth * 0.7, gid="line:total_reduction")
        if len(names) > 1:
            label = scenario_label(run, lang, labels) if run is not None else name
            ax.set_title(label, fontsize=st.font, loc="left")
        _format_axes(ax, st, t("chart_axis_reduction", lang) if i % ncols == 0 else "",
                     lang, xlabel=i >= len(names) - ncols, zero_floor=False)
        ax.axhline(0, color="#555555", linewidth=0.8)
        ax.set_xlim(years[0], years[-1])
        ax.xaxis.set_major_locator(MultipleLocator(2 if years[-1] - years[0] <= 16 else 5))
        if run is not None and not run.frame.empty:
            _mark_policy_start(ax, [policy_start(run)], st, lang)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    handles: list[tuple[Artist, str]] = [_patch(k, lang) for k in drawn]
    if base_run is not None:
        handles.insert(0, (Line2D([], [], color="black", linewidth=st.linewidth * 0.7),
                           series_label("total_reduction", lang)))
    footer_runs = [by_name.get(n) or Run(n, pd.DataFrame()) for n in names]
    title = next((k for k, v in WEDGE_CHARTS.items() if v == variable), "wedges")
    return _finish(fig, footer_runs, st, lang, t(f"chart_title_{title}", lang),
                   [h for h, _ in handles], [lab for _, lab in handles])


# ---------------------------------------------------------------------------- export
def co2_including_imports(results: Results, lang: str = "en", **kwargs) -> Figure:
    """CO2 including the indirect CO2 of net imported electricity (see :func:`co2_emissions`)."""
    return co2_emissions(results, lang, variable="co2_including_imports", **kwargs)


def co2_including_imports_data(results: Results, start_year: int | None = None) -> pd.DataFrame:
    """Return the data of :func:`co2_including_imports` (see :func:`co2_emissions_data`)."""
    return co2_emissions_data(results, "co2_including_imports", start_year)


@dataclass(frozen=True)
class Chart:
    """One chart of the registry: everything the reports, the downloads and the app ask of it.

    Attributes
    ----------
    id
        Key of the chart in reports and file names (``co2_emissions_en.png``); its title
        is the string ``chart_title_<id>`` of ``greenpath/i18n/charts.toml``.
    live_id
        Key of the chart in the app (its picker, its share link ``view=``); its live
        Vega-Lite spec is built by :func:`greenpath.app.charts.build` for this key.
    live_rank
        Position in the app's chart picker (the report order is the registry's).
    figure
        The matplotlib chart (``figure(results, lang, presentation=..., labels=...)``).
    data
        The numbers it draws as a tidy table (None for a wedge chart: its table is the
        wedge attribution, handed in).
    banded
        Whether ``figure`` takes ``bands=`` (P10-P90 of the ensemble).
    sets
        Whether ``figure`` takes ``sets=`` (the target sets whose lines it draws).
    wedge_of
        For a wedge chart, the emissions variable the lever groups' contributions refer
        to (territorial CO2, or CO2 including the indirect CO2 of net imported electricity).
    """

    id: str
    live_id: str
    live_rank: int
    figure: Callable[..., Figure]
    data: Callable[..., pd.DataFrame] | None
    banded: bool = False
    sets: bool = False
    wedge_of: str | None = None

    @property
    def title_key(self) -> str:
        """Key of the chart's title in the string table."""
        return f"chart_title_{self.id}"


#: The one chart registry, in report order: a new chart is one entry here plus its
#: functions (and its title in ``greenpath/i18n/charts.toml``, its live spec in the app).
REGISTRY: dict[str, Chart] = {c.id: c for c in (
    Chart("industry_output", "industry", 5, industry_output, industry_output_data),
    Chart("energy_mix", "energy_mix", 4, energy_mix, energy_mix_data),
    Chart("coal_use", "coal", 3, coal_use, coal_use_data, banded=True),
    Chart("renewable_capacity", "renewables", 2, renewable_capacity, renewable_capacity_data,
          banded=True, sets=True),
    Chart("co2_emissions", "co2", 0, co2_emissions, co2_emissions_data, banded=True, sets=True),
    Chart("co2_including_imports", "co2_imports", 1, co2_including_imports,
          co2_including_imports_data, banded=True, sets=True),
    Chart("intensity_change", "intensity", 6, intensity_change, intensity_change_data,
          banded=True),
    Chart("wedges", "wedges", 7, wedges, None, wedge_of="co2_emissions"),
    Chart("wedges_including_imports", "wedges_imports", 8, wedges, None,
          wedge_of="co2_including_imports"),
)}
#: The standard chart set of a report, drawn from results alone: key -> (chart, data).
CHARTS: dict[str, tuple[Callable[..., Figure], Callable[..., pd.DataFrame]]] = {
    c.id: (c.figure, c.data) for c in REGISTRY.values() if c.data is not None}
#: The wedge charts: chart key -> the emissions variable attributed.
WEDGE_CHARTS = {c.id: c.wedge_of for c in REGISTRY.values() if c.wedge_of is not None}


def chart_title(key: str, lang: str) -> str:
    """Return the title of chart ``key`` (a key of :data:`CHARTS` or :data:`WEDGE_CHARTS`)."""
    return t(f"chart_title_{key}", lang)


def save(fig: Figure, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix: .png, .svg, .pdf).

    Refuses to replace an existing file unless ``overwrite``; the file appears only
    when complete.
    """
    from greenpath.files import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"{path.name}: unsupported chart format {fmt!r} (png, svg, pdf)")

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi, facecolor="white",
                    metadata={"Software": None} if fmt == "png" else None)

    return atomic_write(path, write, overwrite=overwrite)
