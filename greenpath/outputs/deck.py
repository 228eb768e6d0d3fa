"""A meeting pack for one or several scenarios: charts, their data, and a slide deck.

An output never runs the model: :func:`prepare_report` checks a request (scenarios,
targets, which files; nothing runs before it passes), the runs come from
:func:`greenpath.runners.report.run_report`, and :func:`write_report` writes them into
one folder (``greenpath report`` does the three:
:func:`greenpath.cli.commands.report.build_report`):

* ``<chart>_<lang>.png`` and ``.svg`` for every chart of :data:`greenpath.outputs.charts.CHARTS`
  (plus ``wedges_<lang>`` and ``wedges_including_imports_<lang>``, the reductions of
  territorial CO2 and of CO2 including imported electricity by lever group, when the
  run had a wedge function (the CLI gives :func:`greenpath.runners.wedges.compute`) and a
  scenario other than the baseline is asked for);
* ``report_data.xlsx``: one sheet per chart with the numbers drawn (tidy rows:
  scenario, series, English and Chinese names, year, value, unit), the lever settings,
  the target check, and an ``about`` sheet (model version, calibration, data vintage,
  notes);
* ``report_<lang>.pptx``: a 16:9 deck with a title slide, one chart per slide, the
  lever settings that differ from the baseline, and the targets met or missed; every
  slide has a footer with the model version (SHA-256 prefix) and the data vintage.

Nothing is written when any of these files already exists, unless ``force``.
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from greenpath.files import OutputExistsError, atomic_write_all
from greenpath.i18n import LANGS, t, unit_text
from greenpath.outputs import charts
from greenpath.scenarios import targets as tg

DATA_FILE = "report_data.xlsx"
FORMATS = ("png", "svg")
#: Rows of a table slide before it continues on the next slide.
ROWS_PER_SLIDE = 9
# East Asian typeface for Chinese text in the deck: PowerPoint cannot embed fonts from
# here, and Microsoft YaHei ships with every Chinese Windows and Office for Mac.
EA_FONT = "Microsoft YaHei"
# The process's umask, read once at import (os.umask can only be read by setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# Clause numbers of the seed plan as written in the registry, e.g. 五(一).
_CLAUSE = re.compile(r"[一二三四五六七八九十]+\([一二三四五六七八九十]+\)")


class ReportError(ValueError):
    """A report that cannot be made as asked."""


class ScenarioRun(Protocol):
    """A scenario, its run and its target check (:class:`greenpath.runners.report.ScenarioRun`)."""

    @property
    def scenario(self) -> Any:
        """The scenario (:class:`greenpath.scenarios.scenario.Scenario`)."""

    @property
    def result(self) -> Any:
        """Its run (:class:`greenpath.engines.base.RunResult`)."""

    @property
    def targets(self) -> pd.DataFrame | None:
        """Its target check, or None."""


class ReportRuns(Protocol):
    """What a pack draws (:class:`greenpath.runners.report.ReportRuns`, from ``run_report``)."""

    @property
    def runs(self) -> Sequence[ScenarioRun]:
        """The scenarios' runs, in the order asked."""

    @property
    def base_scenario(self) -> Any:
        """The baseline scenario."""

    @property
    def base_result(self) -> Any:
        """The baseline's run."""

    @property
    def wedge_tables(self) -> Mapping[str, Mapping[str, pd.DataFrame]]:
        """Chart key -> scenario name -> wedge table."""

    @property
    def cost_reports(self) -> Sequence[Any]:
        """The cost reports of the scenarios other than the baseline."""

    @property
    def notes(self) -> Mapping[str, Sequence[str]]:
        """Language -> what could not be computed."""

    @property
    def timings(self) -> Mapping[str, float]:
        """Seconds per step of the run."""


@dataclass
class ReportPlan:
    """A checked request for a pack (:func:`prepare_report`): what to run and what to write."""

    scenarios: list[Any]  # greenpath.scenarios.scenario.Scenario
    out_dir: Path
    langs: list[str]
    targets_file: Any
    #: the charts to draw, the wedge charts included when there are wedges
    keys: list[str]
    #: wedge chart key -> the variable whose reduction it splits; empty without wedges
    wedge_variables: dict[str, str]
    notes: dict[str, list[str]] = field(default_factory=lambda: {lang: [] for lang in LANGS})


@dataclass
class Report:
    """What :func:`build_report` wrote and what it had to leave out."""

    paths: list[Path] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=lambda: {lang: [] for lang in LANGS})
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers
def _langs(lang: str) -> list[str]:
    if lang == "both":
        return list(LANGS)
    if lang not in LANGS:
        raise ReportError(f"language {lang!r} not one of {', '.join(LANGS)}, both")
    return [lang]


def planned_files(out_dir: Path, chart_keys: Sequence[str], langs: Sequence[str]) -> list[Path]:
    """Every file a report with these charts and languages writes."""
    out_dir = Path(out_dir)
    files = [out_dir / f"{key}_{lang}.{fmt}" for lang in langs for key in chart_keys
             for fmt in FORMATS]
    files.append(out_dir / DATA_FILE)
    files += [out_dir / f"report_{lang}.pptx" for lang in langs]
    return files


def _with_titles(run: ScenarioRun) -> Any:
    run.result.metadata["title_en"] = run.scenario.title_en
    run.result.metadata["title_zh"] = run.scenario.title_zh
    return run.result


def _footer(runs: Sequence[ScenarioRun], lang: str) -> str:
    return charts.footer_text([charts.as_runs({r.scenario.name: r.result})[0] for r in runs],
                              lang)


def _format_value(value: float, unit: str = "") -> str:
    """Format a number as people read it: % to 0.1, MW and years whole, else 4 digits."""
    if unit == "%":
        return f"{value:.1f}"
    if unit in ("MW", "year", "10k tce", "Year") or abs(value) >= 1e4:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _setting(scenario, name: str, defaults: dict[str, float]) -> str:
    if name in scenario.tables:
        years, values = scenario.tables[name]
        return " → ".join(f"{int(y)}: {_format_value(v)}" for y, v in
                          zip(years, values, strict=True))
    value = float(scenario.params.get(name, defaults[name]))
    return f"{value:.0f}" if value.is_integer() else f"{value:.4g}"


def lever_table(scenario_list: Sequence[Any], baseline: Any, lang: str = "en") -> pd.DataFrame:
    """Levers whose setting differs from the baseline in any of the scenarios.

    Columns: ``lever`` (registry name), ``label``, ``clause``, ``unit``, the baseline
    setting, then one column per scenario (its name).  Year tables read
    ``2021: 60 → 2025: 150``.
    """
    from greenpath.model import registry as reg

    registry = reg.load_registry()
    defaults = reg.effective_defaults()
    levers = [n for n, p in registry.items() if p.kind == "lever"]
    base_col = t("chart_report_col_baseline", lang)
    # The baseline column shows the baseline; a listed baseline needs no second column.
    scenario_list = [s for s in scenario_list if s.name != baseline.name]
    rows = []
    for name in levers:
        base = _setting(baseline, name, defaults)
        values = {s.name: _setting(s, name, defaults) for s in scenario_list}
        if all(v == base for v in values.values()):
            continue
        p = registry[name]
        label = (p.label_zh if lang == "zh" else p.label_en) or name
        rows.append({"lever": name, "label": label, "clause": ", ".join(_CLAUSE.findall(p.clause)),
                     "unit": unit_text(p.unit, lang), base_col: base, **values})
    columns = ["lever", "label", "clause", "unit", base_col, *[s.name for s in scenario_list]]
    return pd.DataFrame(rows, columns=columns)


def _format_chance(share: float) -> str:
    return tg.format_chance(share)


def targets_table(runs: Sequence[ScenarioRun], lang: str = "en") -> pd.DataFrame:
    """One row per target: label, year, target, then value and met/missed per scenario."""
    first = next((r.targets for r in runs if r.targets is not None), None)
    if first is None:
        return pd.DataFrame()
    label_col = "label_zh" if lang == "zh" else "label_en"
    out = pd.DataFrame({
        t("chart_report_col_target", lang): first[label_col],
        t("chart_report_col_year", lang): first["year"].astype(int),
        t("chart_report_col_goal", lang): [
            f"{c} {_format_value(v, u)} {unit_text(u, lang)}" for c, v, u in
            zip(first["comparison"], first["target"], first["unit"], strict=True)],
    })
    for run in runs:
        df = run.targets
        if df is None:  # a run without a target check: nothing to say per target
            out[run.scenario.name] = ["–"] * len(out)
            continue
        odds = df["chance"] if "chance" in df.columns else [float("nan")] * len(df)
        out[run.scenario.name] = [
            f"{_format_value(v, u)} · "
            + t("chart_report_met" if m else "chart_report_missed", lang)
            + ("" if c != c else " · " + t("chart_report_chance", lang, chance=_format_chance(c)))
            for v, u, m, c in zip(df["value"], df["unit"], df["met"], odds, strict=True)]
    return out


def key_numbers_table(runs: Sequence[ScenarioRun], lang: str = "en",
                      targets: Any = None, sets: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per scenario: CO2 peak, CO2 in 2030 and 2035, coal and renewables in 2025.

    Coal (change vs 2020) and renewable capacity are shown against the targets of the
    targets file (``targets``, ``sets`` as :func:`greenpath.outputs.charts.plan_references`),
    each with met / missed and, where the run's checked targets carry it, the chance of
    meeting (:mod:`greenpath.runners.chance`, from the calibration's posterior draws, computed by the run).
    The peak is :func:`greenpath.scenarios.targets.headline`'s.
    """
    from greenpath.model import indicators

    refs = charts.plan_references(targets, sets)
    coal_refs = [r for r in refs if r.kind == "change" and r.variable == "total_coal_consumption"]
    ren_refs = [r for r in refs if r.kind == "level" and r.variable == "renewable_capacity"]
    year_coal = coal_refs[0].year if coal_refs else 2025
    year_ren = ren_refs[0].year if ren_refs else 2025
    base = indicators.BASE_YEAR
    col = {
        "scenario": t("chart_report_key_scenario", lang),
        "peak": t("chart_report_key_peak", lang),
        "y2030": t("chart_report_key_co2_year", lang, year=2030),
        "y2035": t("chart_report_key_co2_year", lang, year=2035),
        "coal": t("chart_report_key_coal", lang, year=year_coal, base=base),
        "ren": t("chart_report_key_renewables", lang, year=year_ren),
    }

    def status(ok: bool, run: ScenarioRun | None = None, ref: Any = None) -> str:
        word = t("chart_report_met" if ok else "chart_report_missed", lang)
        table = None if run is None else run.targets
        if table is None or "chance" not in table.columns or "id" not in table.columns:
            return word  # no calibration posterior in force, or targets not checked
        odds = table.loc[table["id"] == ref.id, "chance"]
        if odds.empty or odds.iloc[0] != odds.iloc[0]:
            return word
        return f"{word}, " + t("chart_report_chance", lang, chance=_format_chance(float(odds.iloc[0])))

    rows = []
    for run in runs:
        frame = run.result.frame
        head = tg.headline(frame)
        if head["still_rising"]:
            peak = t("chart_report_key_no_peak", lang, year=head["peak_year"])
        else:
            peak = t("chart_report_key_peak_value", lang, year=head["peak_year"],
                     value=f"{head['peak_value']:.1f}")
        coal = float(indicators.change_vs(frame, "total_coal_consumption").loc[year_coal])
        coal_text = f"{100 * coal:+.1f} %"
        if coal_refs:
            coal_text = "; ".join(
                t("chart_report_key_vs_target", lang, value=coal_text,
                  target=f"{100 * r.value:+.0f} %", status=status(coal <= r.value, run, r))
                for r in coal_refs) if len(coal_refs) == 1 else coal_text
        ren = float(frame.loc[year_ren, "renewable_capacity"])
        ren_text = _capacity(ren)
        if ren_refs:
            ren_text = t("chart_report_key_vs_target", lang, value=ren_text,
                         target=" / ".join(_capacity(r.value) for r in ren_refs),
                         status=" / ".join(status(ren >= r.value, run, r) for r in ren_refs))
        title = (run.scenario.title_zh if lang == "zh" else run.scenario.title_en) \
            or run.scenario.name
        rows.append({
            col["scenario"]: title, col["peak"]: peak,
            col["y2030"]: t("chart_report_key_mt", lang,
                            value=f"{frame.loc[2030, 'co2_emissions']:.1f}"),
            col["y2035"]: t("chart_report_key_mt", lang,
                            value=f"{frame.loc[2035, 'co2_emissions']:.1f}"),
            col["coal"]: coal_text, col["ren"]: ren_text,
        })
    return pd.DataFrame(rows, columns=list(col.values()))


def _capacity(mw: float) -> str:
    return f"{mw:,.0f} MW"


MET_RGB, MISSED_RGB = (0x1B, 0x7A, 0x3A), (0xB0, 0x2A, 0x1E)


def targets_colors(runs: Sequence[ScenarioRun], table: pd.DataFrame) -> pd.DataFrame:
    """Text colours of :func:`targets_table`: green where met, red where missed."""
    colors = pd.DataFrame(None, index=table.index, columns=table.columns, dtype=object)
    for run in runs:
        if run.targets is not None and run.scenario.name in table.columns:
            colors[run.scenario.name] = [MET_RGB if m else MISSED_RGB
                                         for m in run.targets["met"]]
    return colors


# ---------------------------------------------------------------------------- running
def load_scenarios(names: Sequence[str]) -> list[Any]:
    """Load and validate 1 to :data:`~greenpath.outputs.charts.MAX_SCENARIOS` scenarios."""
    from greenpath.scenarios import scenario as scenarios

    if not names:
        raise ReportError("give at least one scenario")
    if len(set(names)) != len(names):
        raise ReportError(f"a scenario is named twice: {', '.join(names)}")
    if len(names) > charts.MAX_SCENARIOS:
        raise ReportError(f"{len(names)} scenarios: at most {charts.MAX_SCENARIOS} stay "
                          "readable on one chart")
    loaded = [scenarios.load(n) for n in names]
    if len({s.name for s in loaded}) != len(loaded):
        raise ReportError("two of the scenarios have the same name inside their files")
    return loaded


def _with_wedges(wedges: bool, names: Sequence[str], notes: dict[str, list[str]]) -> bool:
    """Return whether a wedges chart can be drawn; if not, say why in ``notes``."""
    if not wedges:
        for lang in LANGS:
            notes[lang].append(t("chart_report_wedges_unavailable", lang))
        return False
    if all(name == charts.BASELINE for name in names):
        for lang in LANGS:
            notes[lang].append(t("chart_report_wedges_baseline_only", lang))
        return False
    return True


# ---------------------------------------------------------------------------- deck
def _set_text(frame, text: str, size: int, lang: str, *, bold: bool = False,
              color: tuple[int, int, int] | None = None) -> None:
    from pptx.dml.color import RGBColor

    frame.text = ""
    para = frame.paragraphs[0]
    run = para.add_run()
    run.text = text
    _style_run(run, size, lang, bold=bold)
    if color is not None:
        run.font.color.rgb = RGBColor(*color)


# Children of a:rPr that come after a:ea in the DrawingML schema (CT_TextCharacterProperties).
_AFTER_EA = ("a:cs", "a:sym", "a:hlinkClick", "a:hlinkMouseOver", "a:rtl", "a:extLst")


def _style_run(run, size: int, lang: str, *, bold: bool = False) -> None:
    """Size and weight a run, and name the East Asian font for its Chinese characters.

    Every run gets ``a:ea`` (:data:`EA_FONT`), whatever the deck's language: English
    decks hold Chinese too (plan clauses such as 五(一), scenario titles), and a PC whose
    theme font lacks CJK glyphs would otherwise show them as empty boxes.
    """
    from pptx.oxml.ns import qn
    from pptx.util import Pt

    del lang  # the same font in both languages
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._r.get_or_add_rPr()
    for old in rpr.findall(qn("a:ea")):
        rpr.remove(old)
    ea = rpr.makeelement(qn("a:ea"), {"typeface": EA_FONT})
    after = next((child for child in rpr if child.tag in {qn(x) for x in _AFTER_EA}), None)
    if after is not None:
        after.addprevious(ea)
    else:
        rpr.append(ea)


def _theme_east_asian_font(prs) -> None:
    """Name :data:`EA_FONT` as the theme's East Asian font (headings and body).

    Text PowerPoint adds later (a note, an edited cell) then also finds Chinese glyphs.
    """
    from lxml import etree
    from pptx.opc.constants import RELATIONSHIP_TYPE as RT

    theme = prs.slide_master.part.part_related_by(RT.THEME)
    root = etree.fromstring(theme.blob)
    ns = {"a": "http://schemas.openxmlformats.org/drawingml/2006/main"}
    for ea in root.findall(".//a:fontScheme/*/a:ea", ns):
        ea.set("typeface", EA_FONT)
    theme._blob = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _add_footer(slide, prs, text: str, lang: str) -> None:
    from pptx.util import Emu, Inches

    box = slide.shapes.add_textbox(Inches(0.3), prs.slide_height - Inches(0.4),
                                   Emu(prs.slide_width - Inches(0.6)), Inches(0.3))
    _set_text(box.text_frame, text, 10, lang, color=(0x55, 0x55, 0x55))


def _add_title(slide, prs, text: str, lang: str) -> None:
    from pptx.util import Emu, Inches

    box = slide.shapes.add_textbox(Inches(0.4), Inches(0.25),
                                   Emu(prs.slide_width - Inches(0.8)), Inches(0.8))
    _set_text(box.text_frame, text, 28, lang)


#: Table layout: inches per Latin character per point of font size (CJK counts twice),
#: cell margins (left + right, python-pptx's default 0.1 in each; top + bottom 0.05 in
#: each), line height as a multiple of the font size, the smallest font of a table.
PER_PT_IN = 0.56 / 72
CELL_MARGIN_IN = 0.2
CELL_VMARGIN_PT = 0.1 * 72
LINE_HEIGHT = 1.25
MIN_TABLE_FONT = 9


def cell_lines(text: str, column_in: float, font: float) -> int:
    """Return the lines ``text`` takes in a cell ``column_in`` inches wide.

    Words wrap at spaces (Chinese at any character), so each explicit line needs
    ``ceil(width / room)`` lines, the width estimated as :data:`PER_PT_IN` per Latin
    character (two for a CJK one) per point.
    """
    room = max(1e-6, column_in - CELL_MARGIN_IN)
    total = 0
    for line in str(text).split("\n") or [""]:
        width = charts._display_width(line) * PER_PT_IN * font
        total += max(1, math.ceil(width / room - 1e-9))
    return total


def row_height_pt(cells: Sequence[str], columns_in: Sequence[float], font: float) -> float:
    """Return the height in points a table row needs so that no cell clips a line."""
    lines = max(cell_lines(c, w, font) for c, w in zip(cells, columns_in, strict=True))
    return lines * font * LINE_HEIGHT + CELL_VMARGIN_PT


def _add_table(slide, df: pd.DataFrame, lang: str, top, width, max_font: int = 16,
               colors: pd.DataFrame | None = None, max_height_pt: float = 5.6 * 72) -> None:
    """Add a table whose columns fit their text on one line (the first may wrap once).

    The font is the largest up to ``max_font`` points (at least 10) at which that holds;
    every row is as tall as its longest cell needs (:func:`row_height_pt`), so a wrapped
    cell never clips its second line, and the font shrinks (down to
    :data:`MIN_TABLE_FONT`) until the table fits ``max_height_pt``.  ``colors``:
    optional RGB tuples per cell (same shape as ``df``) for the text.
    """
    from pptx.dml.color import RGBColor
    from pptx.util import Emu, Inches, Pt

    rows, cols = len(df) + 1, len(df.columns)
    # Width of each column's longest entry in Latin-character units (CJK counts twice).
    need = [max([charts._display_width(str(c)) * 1.15]  # bold header
                + [charts._display_width(str(v)) for v in df[c]]) for c in df.columns]
    need = [max(4, n) for n in need]
    need[0] = max(4, math.ceil(need[0] / 1.7))  # the label column may wrap to two lines
    avail = width / 914400 - CELL_MARGIN_IN * cols
    font = max(10, min(max_font, int(avail / (sum(need) * PER_PT_IN))))
    texts = [[str(c) for c in df.columns]] + [[str(v) for v in row] for _, row in df.iterrows()]
    while True:
        inches = [n * PER_PT_IN * font + CELL_MARGIN_IN for n in need]
        scale = (width / 914400) / sum(inches)
        col_in = [w * scale for w in inches]
        heights = [row_height_pt(r, col_in, font) for r in texts]
        if sum(heights) <= max_height_pt or font <= MIN_TABLE_FONT:
            break
        font -= 1
    shape = slide.shapes.add_table(rows, cols, Inches(0.4), top, width,
                                   Emu(sum(Pt(h) for h in heights)))
    table = shape.table
    for j, w in enumerate(col_in):
        table.columns[j].width = Emu(int(w * 914400))
    for i in range(rows):
        table.rows[i].height = Pt(heights[i])
    for j, col in enumerate(df.columns):
        _set_text(table.cell(0, j).text_frame, str(col), font, lang, bold=True)
    for i, (_, row) in enumerate(df.iterrows(), start=1):
        for j, value in enumerate(row):
            frame = table.cell(i, j).text_frame
            _set_text(frame, str(value), font, lang)
            color = None if colors is None else colors.iat[i - 1, j]
            if isinstance(color, tuple):
                frame.paragraphs[0].runs[0].font.color.rgb = RGBColor(*color)


def _table_slides(prs, title: str, df: pd.DataFrame, empty_text: str, footer: str,
                  lang: str, colors: pd.DataFrame | None = None) -> int:
    from pptx.util import Emu, Inches

    blank = prs.slide_layouts[6]
    # As few slides as ROWS_PER_SLIDE allows, rows shared evenly (11 + 10, not 12 + 9).
    n_slides = max(1, math.ceil(len(df) / ROWS_PER_SLIDE))
    size = max(1, math.ceil(len(df) / n_slides))
    chunks = [df.iloc[i:i + size] for i in range(0, len(df), size)]
    for k, chunk in enumerate(chunks or [None]):
        slide = prs.slides.add_slide(blank)
        suffix = f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        _add_title(slide, prs, title + suffix, lang)
        if chunk is None:
            box = slide.shapes.add_textbox(Inches(0.4), Inches(1.4),
                                           Emu(prs.slide_width - Inches(0.8)), Inches(1))
            _set_text(box.text_frame, empty_text, 20, lang)
        else:
            _add_table(slide, chunk, lang, Inches(1.2), Emu(prs.slide_width - Inches(0.8)),
                       colors=None if colors is None else colors.loc[chunk.index])
        _add_footer(slide, prs, footer, lang)
    return max(1, len(chunks))


def build_deck(images: Sequence[tuple[str, bytes]], runs: Sequence[ScenarioRun],
               levers: pd.DataFrame, targets: pd.DataFrame, notes: Sequence[str],
               lang: str, key_numbers: pd.DataFrame | None = None,
               cost_reports: Sequence[Any] = ()) -> bytes:
    """Build a 16:9 deck (title, key numbers, one chart per slide, levers, targets) as bytes.

    Parameters
    ----------
    images
        ``(chart key, PNG bytes)`` in slide order.
    runs
        The scenarios (title slide, footer).
    levers, targets
        Tables from :func:`lever_table` and :func:`targets_table` (``targets`` empty
        when the targets check is not available: the slide says so).
    notes
        Lines for the title slide (charts left out and why).
    lang
        ``"en"`` or ``"zh"``.
    key_numbers
        Table from :func:`key_numbers_table`, shown right after the title slide
        (default: that table against every target of the shipped targets file).
    cost_reports
        :class:`greenpath.runners.costs.CostReport` of each scenario: a MAC-curve slide and a
        cost table after the charts (:mod:`greenpath.cost_deck`).
    """
    from pptx import Presentation
    from pptx.util import Emu

    prs = Presentation()
    prs.slide_width, prs.slide_height = Emu(12192000), Emu(6858000)  # 16:9, 13.33 x 7.5 in
    _theme_east_asian_font(prs)
    footer = _footer(runs, lang)

    slide = prs.slides.add_slide(prs.slide_layouts[0])
    titles = [(r.scenario.title_zh if lang == "zh" else r.scenario.title_en) or r.scenario.name
              for r in runs]
    _set_text(slide.shapes.title.text_frame, t("chart_report_title", lang), 36, lang)
    version = str((runs[0].result.metadata.get("software") or {}).get("greenpath", "?"))
    sub = [t("chart_report_subtitle", lang, scenarios="; ".join(titles)),
           t("chart_report_generated", lang, date=_dt.date.today().isoformat(),
             version=version), *notes]
    body = slide.placeholders[1].text_frame
    _set_text(body, sub[0], 20, lang)
    for line in sub[1:]:
        run = body.add_paragraph().add_run()
        run.text = line
        _style_run(run, 14, lang)
    _add_footer(slide, prs, footer, lang)
    if key_numbers is None:  # callers that do not choose targets: the shipped file, all sets
        key_numbers = key_numbers_table(runs, lang)
    if len(key_numbers):
        _table_slides(prs, t("chart_report_key_title", lang), key_numbers, "", footer, lang)

    blank = prs.slide_layouts[6]
    for key, png in images:
        # The 16:9 chart fills the 16:9 slide; its own footer is the slide's footer.
        slide = prs.slides.add_slide(blank)
        picture = slide.shapes.add_picture(io.BytesIO(png), 0, 0, prs.slide_width,
                                           prs.slide_height)
        picture._element.nvPicPr.cNvPr.set("descr", f"{charts.chart_title(key, lang)}. "
                                                    f"{footer}")
    if cost_reports:  # costs and co-benefits (issue 19)
        from greenpath.outputs import cost_deck

        cost_deck.add_slides(prs, cost_reports, lang, footer, _table_slides)

    lever_df = levers.drop(columns=["lever"]).rename(columns={
        "label": t("chart_report_col_lever", lang), "clause": t("chart_report_col_clause", lang),
        "unit": t("chart_report_col_unit", lang)})
    _table_slides(prs, t("chart_report_levers_title", lang), lever_df,
                  t("chart_report_levers_none", lang), footer, lang)
    _table_slides(prs, t("chart_report_targets_title", lang), targets,
                  t("chart_report_targets_unavailable", lang), footer, lang,
                  colors=targets_colors(runs, targets) if len(targets) else None)

    buffer = io.BytesIO()
    prs.save(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- workbook
def _sheet(data: pd.DataFrame) -> pd.DataFrame:
    out = data.copy()
    out.insert(2, "label_en", [charts.series_label(s, "en") for s in out["series"]])
    out.insert(3, "label_zh", [charts.series_label(s, "zh") for s in out["series"]])
    return out


def build_workbook(chart_data: dict[str, pd.DataFrame], runs: Sequence[ScenarioRun],
                   levers: pd.DataFrame, notes: Sequence[str]) -> bytes:
    """Build the XLSX (one sheet per chart, levers, targets, about) as bytes."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as xw:
        for key, data in chart_data.items():
            _sheet(data).to_excel(xw, sheet_name=key[:31], index=False)
        levers.to_excel(xw, sheet_name="levers", index=False)
        checked = [r.targets.assign(scenario=r.scenario.name) for r in runs
                   if r.targets is not None]
        if checked:
            pd.concat(checked, ignore_index=True).to_excel(xw, sheet_name="targets",
                                                           index=False)
        about = [("scenarios", ", ".join(r.scenario.name for r in runs)),
                 ("footer", _footer(runs, "en")), ("data_vintage", charts.data_vintage())]
        for r in runs:
            meta = r.result.metadata
            about += [(f"{r.scenario.name}.model_sha256", meta.get("model_sha256", "")),
                      (f"{r.scenario.name}.calibration",
                       meta.get("calibration_sha256_12") or "none (prior defaults)"),
                      (f"{r.scenario.name}.software", str(meta.get("software", "")))]
        about += [("note", n) for n in notes]
        pd.DataFrame(about, columns=["key", "value"]).to_excel(xw, sheet_name="about",
                                                               index=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- report
def prepare_report(scenario_names: Sequence[str], out_dir: str | Path, *, lang: str = "both",
                   force: bool = False, targets_file: Any = None,
                   sets: Sequence[str] | None = None, wedges: bool = False) -> ReportPlan:
    """Check a request for a pack before anything runs; return what to run and write.

    Parameters
    ----------
    scenario_names
        Scenario names in ``scenarios/`` or paths of scenario TOML files (1 to 6).
    out_dir
        Output folder (created when written).
    lang
        ``"en"``, ``"zh"`` or ``"both"``.
    force
        Replace existing files; otherwise the request is refused when any exists.
    targets_file
        Targets TOML to check and draw (default: the shipped file).
    sets
        Only targets without a set plus these sets (e.g. ``["seed_2021"]`` for the
        1 GW renewables target alone); default all.
    wedges
        Whether a wedge function will be handed to the run; without it (or with the
        baseline alone) the wedge charts are left out with a note.

    Raises
    ------
    ReportError
        A scenario, language or target set that cannot be used.
    OutputExistsError
        When a file exists and ``force`` is False (before anything is written).
    """
    langs = _langs(lang)
    out = Path(out_dir)
    loaded = load_scenarios(list(scenario_names))
    if sets:
        # The chosen targets, loaded once: the check, the charts and the slides agree.
        try:
            targets_file = tg.select(tg.load(targets_file or tg.DEFAULT_TARGETS), list(sets))
        except tg.TargetError as exc:
            raise ReportError(str(exc)) from None
    notes: dict[str, list[str]] = {code: [] for code in LANGS}
    with_wedges = _with_wedges(wedges, [s.name for s in loaded], notes)
    wedge_variables = dict(charts.WEDGE_CHARTS) if with_wedges else {}
    keys = list(charts.CHARTS) + list(wedge_variables)
    files = planned_files(out, keys, langs)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        names = ", ".join(p.name for p in existing[:3])
        more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        raise OutputExistsError(f"{out}: {names}{more} exist; pass --force to replace "
                                "them (nothing was written)")
    return ReportPlan(loaded, out, langs, targets_file, keys, wedge_variables, notes)


def _writer(data: bytes) -> Callable[[Path], object]:
    """``write(tmp)`` for :func:`greenpath.files.atomic_write_all`: ``data`` into ``tmp``."""
    return lambda tmp: tmp.write_bytes(data)


def write_report(plan: ReportPlan, done: ReportRuns, *, presentation: bool = False,
                 log: Callable[[str], None] | None = None) -> Report:
    """Write charts (PNG, SVG), data (XLSX) and decks (PPTX) from finished runs.

    Parameters
    ----------
    plan
        The checked request (:func:`prepare_report`).
    done
        Its runs (:func:`greenpath.runners.report.run_report` on ``plan.scenarios``,
        with ``plan.wedge_variables``): this function runs no model.
    presentation
        Large-font projector variant of the charts.
    log
        Called with one line per file written.

    Returns
    -------
    Report
        Paths written, notes on what was left out, seconds per step.
    """
    import time

    out_dir, langs, keys, targets_file = plan.out_dir, plan.langs, plan.keys, plan.targets_file
    report = Report()
    for code in LANGS:
        report.notes[code] = [*plan.notes.get(code, []), *done.notes.get(code, [])]
    report.timings.update(done.timings)
    runs = list(done.runs)
    base_scenario, base_result = done.base_scenario, done.base_result
    wedge_tables = {key: dict(done.wedge_tables[key]) for key in plan.wedge_variables}
    results = {r.scenario.name: _with_titles(r) for r in runs}
    cost_reports = list(done.cost_reports)

    # Everything is made in memory first, so a failure part-way leaves no partial pack.
    pending: list[tuple[Path, bytes]] = []

    def emit(path: Path, payload: bytes) -> None:
        pending.append((path, payload))

    chart_data: dict[str, pd.DataFrame] = {}
    for key, (_, data_fn) in charts.CHARTS.items():
        extra = {"targets": targets_file} if key == "coal_use" else {}
        chart_data[key] = data_fn(results, **extra)
    for key, tables in wedge_tables.items():
        chart_data[key] = charts.wedges_data(tables)

    for code in langs:
        images: list[tuple[str, bytes]] = []
        for key in keys:
            clock = time.perf_counter()
            if key in charts.WEDGE_CHARTS:
                tables = wedge_tables[key]
                fig = charts.wedges(tables, {n: results[n] for n in tables}, code,
                                    presentation=presentation, baseline=base_result,
                                    variable=charts.WEDGE_CHARTS[key])
            else:
                draw = charts.CHARTS[key][0]
                extra = ({"targets": targets_file}
                         if key in ("coal_use", "renewable_capacity", "intensity_change")
                         else {})
                fig = draw(results, code, presentation=presentation, **extra)
            payloads = {}
            for fmt in FORMATS:
                buffer = io.BytesIO()
                fig.savefig(buffer, format=fmt, dpi=fig.dpi, facecolor="white",
                            metadata={"Software": None} if fmt == "png" else None)
                payloads[fmt] = buffer.getvalue()
            report.timings[f"{key}_{code}"] = time.perf_counter() - clock
            for fmt, payload in payloads.items():
                emit(out_dir / f"{key}_{code}.{fmt}", payload)
            images.append((key, payloads["png"]))
        clock = time.perf_counter()
        levers = lever_table([r.scenario for r in runs], base_scenario, code)
        deck = build_deck(images, runs, levers, targets_table(runs, code),
                          report.notes[code], code,
                          key_numbers=key_numbers_table(runs, code, targets_file),
                          cost_reports=cost_reports)
        report.timings[f"pptx_{code}"] = time.perf_counter() - clock
        emit(out_dir / f"report_{code}.pptx", deck)

    clock = time.perf_counter()
    workbook = build_workbook(chart_data, runs,
                              lever_table([r.scenario for r in runs], base_scenario, "en"),
                              report.notes["en"])
    report.timings["xlsx"] = time.perf_counter() - clock
    emit(out_dir / DATA_FILE, workbook)

    clock = time.perf_counter()
    # All files or none: a full or read-only disk part-way leaves no partial pack.
    atomic_write_all([(path, _writer(payload)) for path, payload in pending], overwrite=True)
    for path, _ in pending:
        # The temporary file is private (0600); give the report the usual permissions.
        path.chmod(0o666 & ~_UMASK)
        report.paths.append(path)
        if log:
            log(str(path))
    report.timings["write"] = time.perf_counter() - clock
    return report
