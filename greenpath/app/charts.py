"""Live charts of the app, as Vega-Lite specs drawn in the browser.

Drawing in the browser keeps a lever move cheap on the server (no figure rendering).
The specs are plain dictionaries rather than Altair objects: building and validating
the eight layered Altair charts took about 1 s of server time per lever move on a
2-core machine (deep copies and JSON-schema validation of every layer), the
dictionaries take a few milliseconds; the browser receives the same Vega-Lite.
The numbers come from the ``*_data`` functions of :mod:`greenpath.outputs.charts`, the module
that draws the meeting PNG/SVG files, and so do the colours, the series names and the
target lines (:func:`greenpath.outputs.charts.plan_references`): the live chart and the
downloaded file cannot disagree.

Conventions (house style): one colour per carrier and technology, one per scenario;
recorded history in black with markers; the plan's targets as dashed marks labelled
with their clause; the first policy year marked; units on every axis.  Every label
comes from the string table, so the charts switch language with the interface.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from greenpath.engines.base import RunResult
from greenpath.i18n import t
from greenpath.outputs import charts as mpl

COLOURS = mpl.COLORS
TARGET_COLOUR = COLOURS["target"]
HISTORY_COLOUR = COLOURS["observed"]
POLICY_COLOUR = COLOURS["policy_start"]
#: Saved scenarios drawn at most (current + baseline + these stay within 5-6 series).
MAX_SAVED = 3

#: Family of the bundled CJK font as the app serves it to the browser (``[[theme.fontFaces]]``
#: in ``.streamlit/config.toml``): the charts fall back to it where no system CJK font exists.
WEB_CJK_FONT = "Greenpath Noto Sans SC"
#: The interface's Latin font first, then system CJK fonts, then the bundled one.
FONT = ("'Source Sans', 'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', "
        f"'PingFang SC', '{WEB_CJK_FONT}', sans-serif")

# The app's views of the one chart registry (greenpath.outputs.charts.REGISTRY), by live id.
_LIVE = sorted(mpl.REGISTRY.values(), key=lambda c: c.live_rank)
#: chart id -> title key (strings shared with the meeting charts), in picker order
CHARTS = {c.live_id: c.title_key for c in _LIVE}
#: CO2 chart id -> the model variable it draws: territorial CO2 (the CEADs boundary) and
#: CO2 including the indirect CO2 of net imported electricity (one live spec, two variables).
CO2_CHARTS = {"co2": "co2_emissions", "co2_imports": "co2_including_imports"}
#: Wedge chart id -> the emissions variable its lever groups' contributions refer to.
WEDGE_CHARTS = {c.live_id: c.wedge_of for c in _LIVE if c.wedge_of is not None}
#: chart id -> the matching chart of the registry (file downloads)
MEETING_CHART = {c.live_id: c.id for c in _LIVE}


@dataclass(frozen=True)
class Run:
    """One scenario's yearly results as drawn.

    Attributes
    ----------
    label
        Name shown in legends (unique among the runs of a chart).
    role
        ``"current"``, ``"baseline"`` or ``"saved"``.
    frame
        The run's table (index ``year``).
    result
        The :class:`~greenpath.engines.base.RunResult` (metadata for file footers).
    key
        The run key (:func:`greenpath.app.state.run_key`) of its settings.
    """

    label: str
    role: str
    frame: pd.DataFrame
    result: RunResult | None = None
    key: tuple = ()


@dataclass(frozen=True)
class TargetMark:
    """A plan target drawn on a chart.

    ``kind="level"``: a dashed segment at ``value`` (the chart's unit) ending at
    ``year``; ``kind="year"``: a dashed vertical line at year ``value``.
    """

    year: int
    value: float
    label: str
    kind: str = "level"


@dataclass
class ChartContext:
    """What every chart needs besides the runs."""

    lang: str = "en"
    present: bool = False
    policy_start: int = 2021
    targets: dict[str, list[TargetMark]] = field(default_factory=dict)
    bands: pd.DataFrame | None = None
    history: dict[str, pd.Series] = field(default_factory=dict)
    x_start: int = 2005
    #: Height of the plotting area in pixels (0: the default of the mode).
    plot_height: int = 0
    #: Legends without titles and with smaller type (the charts in view, side by side).
    compact: bool = False

    @property
    def height(self) -> int:
        """Height of the plotting area (pixels)."""
        if self.plot_height:
            return self.plot_height
        return 520 if self.present else 260


# ------------------------------------------------------------------ colours and targets
def meeting_name(run: Run) -> str:
    """Return the name a run has in the meeting charts (the baseline must be ``"baseline"``)."""
    return mpl.BASELINE if run.role == "baseline" else run.label


def scenario_colours(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """Legend domain and colours of ``runs``, as the meeting charts colour them.

    :func:`greenpath.outputs.charts.scenario_colors` gives the baseline its own colour and the
    other scenarios the palette in order, so a scenario keeps its colour in downloads.
    """
    colours = mpl.scenario_colors([meeting_name(r) for r in runs])
    return [r.label for r in runs], [colours[meeting_name(r)] for r in runs]


def percent_text(x: float) -> str:
    """Format a fraction as '−12%' (true minus sign, no needless decimals)."""
    text = f"{abs(x) * 100:.1f}".rstrip("0").rstrip(".")
    return ("−" if x < 0 else "+") + text + "%"


def capacity_text(mw: float, lang: str) -> str:
    """'1,000 MW' / '100万千瓦' (Chinese plans count in 10,000 kW)."""
    return f"{mw / 10:g}万千瓦" if lang == "zh" else f"{mw:,.0f} MW"


def target_marks(frame: pd.DataFrame, lang: str, sets: Sequence[str] | None = None,
                 ) -> dict[str, list[TargetMark]]:
    r"""Targets drawn on each chart, from the targets file (data, not code).

    The same targets as the meeting charts draw (:func:`greenpath.outputs.charts.plan_references`).
    Labels break at ``\n`` (two short lines fit a narrow panel).

    Parameters
    ----------
    frame
        A run (for the 2020 level the coal target is relative to; every scenario
        shares the history).
    lang
        Language of the labels.
    sets
        Target sets to draw (as :func:`greenpath.scenarios.targets.evaluate`; default all).
    """
    out: dict[str, list[TargetMark]] = {}
    for ref in mpl.plan_references(sets=sets):
        if ref.kind == "peak_year":
            chart = next(c for c, v in CO2_CHARTS.items() if v == ref.variable)
            out.setdefault(chart, []).append(
                TargetMark(ref.year, float(ref.value), ref.label(lang), kind="year"))
        elif ref.kind == "change":
            label = t("chart_target_change", lang, pct=percent_text(ref.value),
                      source=ref.source(lang))
            if ref.variable == "total_coal_consumption":
                level = float(frame.loc[2020, "total_coal_consumption"]) * (1 + ref.value)
                out.setdefault("coal", []).append(TargetMark(ref.year, level, label))
            else:
                out.setdefault(ref.variable, []).append(
                    TargetMark(ref.year, 100.0 * ref.value, label))
        else:
            label = t("app_target_capacity", lang, value=capacity_text(ref.value, lang),
                      source=ref.source(lang))
            out.setdefault("renewables", []).append(TargetMark(ref.year, ref.value, label))
    return out


# ------------------------------------------------------------------ building blocks
Spec = dict


def _frames(runs: Sequence[Run]) -> dict[str, pd.DataFrame]:
    return {r.label: r.frame for r in runs}


def _values(frame: pd.DataFrame) -> dict:
    """Inline data of a layer (JSON-native numbers)."""
    return {"values": json.loads(frame.to_json(orient="records", double_precision=6))}


def _x(ctx: ChartContext, field: str = "year") -> dict:
    """Return the year axis; every layer uses it, so no layer widens the domain (e.g. to 0)."""
    return {"field": field, "type": "quantitative", "title": t("chart_axis_year", ctx.lang),
            "scale": {"domain": [ctx.x_start, 2035], "nice": False, "zero": False,
                      "clamp": True},
            "axis": {"format": "d", "tickMinStep": 10 if ctx.present else 5}}


def _q(field: str, **kw) -> dict:
    return {"field": field, "type": "quantitative", **kw}


def _n(field: str, **kw) -> dict:
    return {"field": field, "type": "nominal", **kw}


def _scenario_legend_columns(labels: Sequence[str], ctx: ChartContext) -> int:
    """Legend entries in one row (0) when they fit a half-width chart, else in columns."""
    size = 22 if ctx.present else 11 if ctx.compact else 12
    room = 1500 if ctx.present else 230 if ctx.compact else 360  # pixels a legend can count on
    widths = [mpl._display_width(x) * size * 0.55 + 2.5 * size for x in labels]
    if sum(widths) <= room:
        return 0
    return max(1, min(len(labels), int(room // max(widths))))


def _scenario_colour(runs: Sequence[Run], ctx: ChartContext,
                     history: str | None = None, notes: dict[str, str] | None = None) -> dict:
    """Colour by scenario; ``history`` adds the recorded series (black) to the legend.

    ``notes``: text appended to a scenario's legend entry (e.g. "still rising in 2035").
    """
    domain, rng = scenario_colours(runs)
    if history:
        domain, rng = [*domain, history], [*rng, HISTORY_COLOUR]
    labels = [f"{d} · {notes[d]}" if notes and d in notes else d for d in domain]
    legend: dict = {"orient": "top", "columns": _scenario_legend_columns(labels, ctx)}
    if notes:
        expr = "datum.label"
        for label, note in notes.items():
            expr = (f"datum.label === {json.dumps(label, ensure_ascii=False)} ? "
                    f"{json.dumps(f'{label} · {note}', ensure_ascii=False)} : ({expr})")
        legend["labelExpr"] = expr
    if ctx.compact:
        legend.update(title=None, labelFontSize=11, symbolSize=60, rowPadding=1)
    return _n("scenario", title=t("app_legend_scenario", ctx.lang),
              scale={"domain": domain, "range": rng}, legend=legend)


def _lines(data: pd.DataFrame, runs: Sequence[Run], ctx: ChartContext, y_title: str,
           fmt: str = ",.0f", history: str | None = None,
           notes: dict[str, str] | None = None) -> Spec:
    return {
        "data": _values(data[["scenario", "year", "value"]]),
        "mark": {"type": "line", "strokeWidth": 4 if ctx.present else 2.5},
        "encoding": {
            "x": _x(ctx), "y": _q("value", title=y_title, axis={"format": fmt}),
            "color": _scenario_colour(runs, ctx, history, notes),
            "tooltip": [_n("scenario", title=t("app_legend_scenario", ctx.lang)),
                        _q("year", format="d", title=t("chart_axis_year", ctx.lang)),
                        _q("value", format=",.2f", title=y_title)],
        },
    }


def _policy_rule(ctx: ChartContext) -> list[Spec]:
    data = {"values": [{"year": ctx.policy_start,
                        "label": t("chart_policy_start", ctx.lang, year=ctx.policy_start)}]}
    return [
        {"data": data, "mark": {"type": "rule", "color": POLICY_COLOUR, "strokeDash": [2, 3]},
         "encoding": {"x": _x(ctx)}},
        {"data": data, "mark": {"type": "text", "align": "left", "baseline": "bottom", "dx": 4,
                                "dy": -4, "color": POLICY_COLOUR,
                                "fontSize": 20 if ctx.present else 11},
         "encoding": {"x": _x(ctx), "y": {"value": ctx.height}, "text": _n("label")}},
    ]


def _haloed_text(data: dict, ctx: ChartContext, mark: dict, encoding: dict) -> list[Spec]:
    """Draw a target label over a white halo, readable on top of areas and lines."""
    enc = {**encoding, "text": _n("label")}
    return [
        {"data": data, "mark": {"type": "text", **mark, "color": "white", "stroke": "white",
                                "strokeWidth": 4 if ctx.present else 3, "opacity": 0.9},
         "encoding": enc},
        {"data": data, "mark": {"type": "text", **mark, "color": TARGET_COLOUR},
         "encoding": enc},
    ]


def _target_layer(marks: Sequence[TargetMark], ctx: ChartContext,
                  ends: Sequence[float] | np.ndarray = ()) -> list[Spec]:
    r"""Dashed target marks labelled with their clause, drawn as the meeting charts do.

    A level target is a dashed line from 2020 to the last year with a diamond in the
    target year, labelled inside the plot at its right end: above the line, or under it
    when more of the chart's lines end above it than below (``ends``: each line's last
    value in the chart's unit; the rule of the meeting charts,
    :func:`greenpath.outputs.charts.label_below`).  A year target is a dashed vertical line
    labelled at the top, left of the line (the policy start is labelled at the bottom).
    Labels break into lines at ``\n``, so none runs past the plot's edge.
    """
    size = 20 if ctx.present else 11
    line_height = size + 2
    width = 3 if ctx.present else 2
    tip = [_n("label")]
    layers: list[Spec] = []
    levels = [m for m in marks if m.kind == "level"]
    # Vega puts a label's first line at the baseline and the others under it: a label
    # above its line is raised by its extra lines.
    groups: dict[tuple[bool, int], list[TargetMark]] = {}
    for m in levels:
        groups.setdefault((mpl.label_below(ends, m.value), m.label.count("\n")), []).append(m)
    for (below, extra), group in sorted(groups.items()):
        data = {"values": [{"x0": max(ctx.x_start, 2020), "x1": 2035, "year": m.year,
                            "value": float(m.value), "label": m.label} for m in group]}
        layers += [
            {"data": data, "mark": {"type": "rule", "strokeDash": [8, 5], "color": TARGET_COLOUR,
                                    "strokeWidth": width},
             "encoding": {"x": _x(ctx, "x0"), "x2": {"field": "x1"}, "y": _q("value"),
                          "tooltip": tip}},
            {"data": data, "mark": {"type": "point", "shape": "diamond", "filled": True,
                                    "color": TARGET_COLOUR, "size": 220 if ctx.present else 90},
             "encoding": {"x": _x(ctx), "y": _q("value"), "tooltip": tip}},
            *_haloed_text(data, ctx, {"align": "right", "baseline": "top" if below else "bottom",
                                      "dx": -2, "dy": 4 if below else -4 - extra * line_height,
                                      "fontSize": size, "lineBreak": "\n",
                                      "lineHeight": line_height},
                          {"x": _x(ctx, "x1"), "y": _q("value")}),
        ]
    years = [m for m in marks if m.kind == "year"]
    if years:
        data = {"values": [{"x": float(m.value), "label": m.label} for m in years]}
        layers += [
            {"data": data, "mark": {"type": "rule", "strokeDash": [8, 5], "color": TARGET_COLOUR,
                                    "strokeWidth": width},
             "encoding": {"x": _x(ctx, "x"), "tooltip": tip}},
            *_haloed_text(data, ctx, {"align": "right", "baseline": "top", "dx": -4, "dy": 4,
                                      "fontSize": size, "lineBreak": "\n",
                                      "lineHeight": line_height},
                          {"x": _x(ctx, "x"), "y": {"value": 0}}),
        ]
    return layers


def _history_layer(series: pd.Series | None, label: str, ctx: ChartContext,
                   runs: Sequence[Run], notes: dict[str, str] | None = None) -> list[Spec]:
    """Draw recorded values as black diamonds, named in the scenario legend."""
    if series is None or series.empty:
        return []
    data = _values(pd.DataFrame({"year": series.index.astype(int),
                                 "value": series.to_numpy(dtype=float), "scenario": label}))
    enc = {"x": _x(ctx), "y": _q("value"), "color": _scenario_colour(runs, ctx, label, notes),
           "tooltip": [_n("scenario"), _q("year", format="d"), _q("value", format=",.2f")]}
    points = {"data": data, "mark": {"type": "point", "filled": False,
                                     "shape": "diamond", "strokeWidth": 2,
                                     "size": 140 if ctx.present else 60},
              "encoding": enc}
    if len(series) < 2:
        return [points]
    line = {"data": data, "mark": {"type": "line", "strokeWidth": 1, "opacity": 0.6},
            "encoding": enc}
    return [line, points]


def _band_layer(ctx: ChartContext, variable: str, runs: Sequence[Run],
                base: float | None = None) -> list[Spec]:
    """Shade the P10-P90 band of ``variable`` in the current scenario's colour.

    ``base``: draw it as % change vs ``base``.
    """
    bands = ctx.bands
    if bands is None or bands.empty:
        return []
    data = bands[bands["variable"] == variable] if "variable" in bands else bands
    data = data[data["year"] >= ctx.x_start]
    if data.empty:
        return []
    cols = ["year", "p10", "p50", "p90"] if "p50" in data else ["year", "p10", "p90"]
    data = data[cols].assign(band=t("chart_band", ctx.lang), centre=t("chart_band_median", ctx.lang))
    if base is not None:
        data[cols[1:]] = 100.0 * (data[cols[1:]] / base - 1.0)
    layers = [{"data": _values(data), "mark": {"type": "area", "opacity": 0.2, "color": _current_colour(runs)},
               "encoding": {"x": _x(ctx), "y": _q("p10"), "y2": {"field": "p90"},
                            "tooltip": [_n("band"), _q("year", format="d"),
                                        _q("p10", format=",.2f"), _q("p90", format=",.2f")]}}]
    if "p50" in data:
        # The band's own centre: the solid line is the run at the point calibration, the band
        # the spread of posterior (and projection) draws, whose median can sit off that line.
        layers.append({"data": _values(data), "mark": {"type": "line", "strokeDash": [2, 3], "strokeWidth": 1,
                                                        "color": _current_colour(runs)},
                       "encoding": {"x": _x(ctx), "y": _q("p50"),
                                    "tooltip": [_n("centre"), _q("year", format="d"), _q("p50", format=",.2f")]}})
    return layers


def _finish(layers: list[Spec], ctx: ChartContext, title: str | None = None,
            independent_colours: bool = False) -> Spec:
    """Return a layered spec with sizes, fonts and layout (the page draws the chart's title)."""
    big = ctx.present
    spec: Spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "layer": layers, "height": ctx.height, "width": "container",
        "autosize": {"type": "fit-x", "contains": "padding"},
        "config": {
            "font": FONT,
            "axis": {"labelFontSize": 22 if big else 12, "titleFontSize": 24 if big else 12,
                     "labelFont": FONT, "titleFont": FONT},
            "legend": {"labelFontSize": 22 if big else 12, "titleFontSize": 22 if big else 12,
                       "labelFont": FONT, "titleFont": FONT, "symbolSize": 300 if big else 100,
                       "orient": "bottom", "labelLimit": 600},
            # The same width for every y axis, so side-by-side panels get equal plots.
            "axisY": {"minExtent": 70 if big else 44},
            "view": {"strokeWidth": 0},
        },
    }
    if title:
        spec["title"] = {"text": title, "anchor": "start", "fontSize": 28 if big else 14}
    if independent_colours:
        spec["resolve"] = {"scale": {"color": "independent"}}
    return spec


def _legend_columns(labels: Sequence[str], ctx: ChartContext) -> int:
    """One column for long labels or projector fonts, else two."""
    return 1 if ctx.present or max(len(x) for x in labels) > 28 else 2


def _parts_legend(labels: Sequence[str], ctx: ChartContext) -> dict:
    """Legend of a stack's parts: under the plot; right of it on the projector.

    On a projector slide the parts' legend in one column under the plot would push the
    page past a 1366x768 screen; beside the wide plot it costs width only.
    """
    legend: dict = {"columns": _legend_columns(labels, ctx)}
    if ctx.present:
        legend["orient"] = "right"
    if ctx.compact:
        legend.update(title=None, labelFontSize=11, symbolSize=60, rowPadding=1,
                      columnPadding=6)
    return legend


def _current(runs: Sequence[Run]) -> Run:
    return next(r for r in runs if r.role == "current")


def _current_colour(runs: Sequence[Run]) -> str:
    """Return the current scenario's colour (its bands, its peak label)."""
    _, colours = scenario_colours(runs)
    return colours[list(runs).index(_current(runs))]


# ------------------------------------------------------------------ the charts
def co2_chart(runs: Sequence[Run], ctx: ChartContext, chart_id: str = "co2") -> Spec:
    """CO2 emissions by scenario, with each scenario's peak, history and bands.

    ``chart_id``: ``"co2"`` (territorial CO2, with the CEADs history) or
    ``"co2_imports"`` (CO2 including imported electricity; no recorded series exists on
    that boundary), see :data:`CO2_CHARTS`.  Every peak is a triangle; the current
    scenario's is labelled next to it, or, while it is still rising in the last year,
    named in the legend (a label at the plot's right end would sit on the 2030 target
    line and the band).
    """
    variable = CO2_CHARTS[chart_id]
    y_title = t("chart_axis_co2", ctx.lang)
    tidy = mpl.co2_emissions_data(_frames(runs), variable)
    lines = tidy[tidy["series"] == variable]
    peaks = tidy[tidy["series"] == "peak"][["scenario", "year", "value"]].copy()
    last = int(lines["year"].max())
    peaks["label"] = [
        t("chart_no_peak", ctx.lang, year=last) if y == last
        else t("chart_peak", ctx.lang, year=int(y), value=f"{v:.1f}")
        for y, v in zip(peaks["year"], peaks["value"], strict=True)]
    current = _current(runs)
    mine = peaks[peaks["scenario"] == current.label]
    rising = bool((mine["year"] == last).any())
    notes = {current.label: t("chart_no_peak", ctx.lang, year=last)} if rising else None
    history = ctx.history.get("co2_emissions") if variable == "co2_emissions" else None
    recorded = t("chart_history_ceads", ctx.lang) if history is not None else None
    colour = _scenario_colour(runs, ctx, recorded, notes)
    peak_points = {"data": _values(peaks),
                   "mark": {"type": "point", "shape": "triangle-up", "filled": True,
                            "size": 320 if ctx.present else 120},
                   "encoding": {"x": _x(ctx), "y": _q("value"), "color": colour,
                                "tooltip": [_n("scenario"), _n("label")]}}
    layers = [
        *_band_layer(ctx, variable, runs),
        *_policy_rule(ctx),
        _lines(lines, runs, ctx, y_title, ",.0f", recorded, notes),
        *_history_layer(history, recorded or "", ctx, runs, notes),
        *_target_layer(ctx.targets.get(chart_id, []), ctx),
        peak_points,
    ]
    if not rising and not mine.empty:
        # Left of a late peak, right of an early one: the label stays inside the plot.
        late = int(mine["year"].iloc[0]) > (ctx.x_start + last) / 2
        layers += _haloed_text(
            _values(mine), ctx,
            {"align": "right" if late else "left", "dx": -8 if late else 8, "dy": -14,
             "fontSize": 22 if ctx.present else 12, "fontWeight": "bold"},
            {"x": _x(ctx), "y": _q("value")})
        layers[-1]["mark"]["color"] = _current_colour(runs)
    return _finish(layers, ctx)


_STACKS = {
    # chart id: (data function, series keys, total key or column, axis title key)
    "industry": (mpl.industry_output_data, list(mpl.INDUSTRY_SERIES), "industrial_va",
                 "chart_axis_value_added"),
    "energy_mix": (mpl.energy_mix_data, list(mpl.ENERGY_SERIES), "total_energy",
                   "chart_axis_energy"),
    "renewables": (mpl.renewable_capacity_data, list(mpl.RENEWABLE_SERIES),
                   "renewable_capacity", "chart_axis_capacity"),
}


def stacked_chart(chart_id: str, runs: Sequence[Run], ctx: ChartContext) -> Spec:
    """Stack the current scenario by series, with every scenario's total as a line."""
    data_fn, keys, total, axis_key = _STACKS[chart_id]
    current = _current(runs)
    tidy = (data_fn(_frames(runs), start_year=None) if chart_id == "renewables"
            else data_fn(_frames(runs)))
    parts = tidy[(tidy["scenario"] == current.label) & tidy["series"].isin(keys)].copy()
    labels = [mpl.series_label(k, ctx.lang) for k in keys]
    parts["label"] = parts["series"].map(dict(zip(keys, labels, strict=True)))
    parts["order"] = parts["series"].map({k: i for i, k in enumerate(keys)})
    if (tidy["series"] == total).any():
        totals = tidy[tidy["series"] == total][["scenario", "year", "value"]]
    else:
        totals = pd.concat([pd.DataFrame({"scenario": r.label, "year": r.frame.index.astype(int),
                                          "value": r.frame[total].to_numpy(float)})
                            for r in runs], ignore_index=True)
    y_title = t(axis_key, ctx.lang)
    title_parts = t("app_legend_parts", ctx.lang, scenario=current.label)
    area = {
        "data": _values(parts[["year", "value", "label", "order"]]),
        "mark": {"type": "area", "opacity": 0.85},
        "encoding": {
            "x": _x(ctx),
            "y": _q("value", stack="zero", title=y_title, axis={"format": ",.0f"}),
            "color": _n("label", title=title_parts, sort=labels,
                        scale={"domain": labels, "range": [COLOURS[k] for k in keys]},
                        legend=_parts_legend(labels, ctx)),
            "order": _q("order"),
            "tooltip": [_n("label", title=title_parts), _q("year", format="d"),
                        _q("value", format=",.1f")],
        },
    }
    history = ctx.history.get(total)
    recorded = t("chart_history_renewables_2020", ctx.lang) if history is not None else None
    # The stack has its own colour legend; lines, history and targets share the scenario
    # legend (a nested layer shares its scales, the top level resolves them apart).
    band = _band_layer(ctx, total, runs) if chart_id == "renewables" else []
    rest = [*band, *_policy_rule(ctx), _lines(totals, runs, ctx, y_title, history=recorded),
            *_history_layer(history, recorded or "", ctx, runs),
            *_target_layer(ctx.targets.get(chart_id, []), ctx, mpl.line_ends(totals))]
    return _finish([area, {"layer": rest}], ctx, independent_colours=True)


def coal_chart(runs: Sequence[Run], ctx: ChartContext) -> Spec:
    """Total coal consumption by scenario against the 2025 target."""
    y_title = t("chart_axis_coal", ctx.lang)
    tidy = mpl.coal_use_data(_frames(runs))
    data = tidy[tidy["series"] == "coal"]
    layers = [*_band_layer(ctx, "total_coal_consumption", runs),
              *_policy_rule(ctx), _lines(data, runs, ctx, y_title),
              *_target_layer(ctx.targets.get("coal", []), ctx, mpl.line_ends(data))]
    return _finish(layers, ctx)


def intensity_charts(runs: Sequence[Run], ctx: ChartContext) -> list[Spec]:
    """Energy and CO2 intensity, change vs 2020 (%), against the 2025 targets (two panels).

    Bands are given as levels and drawn as change vs the current scenario's 2020 value
    (as the meeting chart does).
    """
    ctx = replace(ctx, x_start=2010)
    tidy = mpl.intensity_change_data(_frames(runs), start_year=ctx.x_start)
    y_title = t("chart_axis_change_vs_2020", ctx.lang)
    current = _current(runs)
    panels = []
    for column, key in (("energy_intensity", "chart_panel_energy_intensity"),
                        ("co2_intensity", "chart_panel_co2_intensity")):
        data = tidy[tidy["series"] == column].assign(value=lambda d: 100.0 * d["value"])
        zero = {"data": {"values": [{"value": 0.0}]},
                "mark": {"type": "rule", "color": "#bbbbbb"}, "encoding": {"y": _q("value")}}
        base = float(current.frame.loc[2020, column]) if 2020 in current.frame.index else None
        band = _band_layer(ctx, column, runs, base=base) if base else []
        layers = [*band, zero, *_policy_rule(ctx), _lines(data, runs, ctx, y_title, ".0f"),
                  *_target_layer(ctx.targets.get(column, []), ctx, mpl.line_ends(data))]
        panels.append(_finish(layers, ctx, title=t(key, ctx.lang)))
    return panels


def wedge_chart(wedges: pd.DataFrame, ctx: ChartContext, scenario_label: str) -> Spec:
    """Contribution of each lever group to the CO2 reduction vs the baseline.

    ``wedges``: the table of :func:`greenpath.runners.wedges.compute` for one variable
    (territorial CO2 or CO2 including imported electricity, see :data:`WEDGE_CHARTS`).
    """
    ctx = replace(ctx, x_start=ctx.policy_start - 1)
    tidy = mpl.wedges_data(wedges)
    data = tidy[tidy["year"] >= ctx.x_start].copy()
    groups = list(dict.fromkeys(data["series"]))
    labels = [mpl.series_label(g, ctx.lang) for g in groups]
    data["label"] = data["series"].map(dict(zip(groups, labels, strict=True)))
    y_title = t("chart_axis_reduction", ctx.lang)
    area = {
        "data": _values(data[["year", "value", "label"]]),
        "mark": {"type": "area", "opacity": 0.85},
        "encoding": {
            "x": _x(ctx),
            "y": _q("value", stack="zero", title=y_title, axis={"format": ",.1f"}),
            "color": _n("label", title=t("app_legend_wedges", ctx.lang, scenario=scenario_label),
                        scale={"domain": labels, "range": [
                            COLOURS.get(g.replace(" ", "_"), COLOURS["other"]) for g in groups]},
                        legend=_parts_legend(labels, ctx)),
            "tooltip": [_n("label"), _q("year", format="d"), _q("value", format=",.2f")],
        },
    }
    total = data.groupby("year", as_index=False)["value"].sum()
    total["label"] = t("chart_series_total_reduction", ctx.lang)
    line = {"data": _values(total),
            "mark": {"type": "line", "color": COLOURS["total_reduction"],
                     "strokeWidth": 3 if ctx.present else 2},
            "encoding": {"x": _x(ctx), "y": _q("value"),
                         "tooltip": [_n("label"), _q("year", format="d"),
                                     _q("value", format=",.2f")]}}
    return _finish([area, line, *_policy_rule(ctx)], ctx)


def build(chart_id: str, runs: Sequence[Run], ctx: ChartContext,
          wedges: pd.DataFrame | None = None) -> list[Spec]:
    """Return the chart ``chart_id`` (see :data:`CHARTS`) as Vega-Lite specs drawn side by side.

    Only the intensity chart has two panels.  A wedge chart needs its table (of the
    variable :data:`WEDGE_CHARTS` names).
    """
    if chart_id in CO2_CHARTS:
        return [co2_chart(runs, ctx, chart_id)]
    if chart_id in _STACKS:
        return [stacked_chart(chart_id, runs, ctx)]
    if chart_id == "coal":
        return [coal_chart(runs, ctx)]
    if chart_id == "intensity":
        return intensity_charts(runs, ctx)
    if chart_id in WEDGE_CHARTS:
        if wedges is None:
            raise ValueError("the wedge chart needs the wedge table")
        return [wedge_chart(wedges, ctx, _current(runs).label)]
    raise KeyError(f"unknown chart {chart_id!r}; one of {', '.join(CHARTS)}")


# ------------------------------------------------------------------ sending a spec
def with_named_data(spec: Spec) -> Spec:
    """Return ``spec`` with every layer's inline data moved to a named dataset.

    The browser then updates a drawn chart in place when a lever move changes only its
    numbers: Streamlit's chart element compares the spec without its datasets with the
    one it drew and, when equal, replaces just the datasets that changed in the Vega
    view (``view.data``) instead of compiling and drawing the chart anew.  Inline
    ``values`` are part of the spec, so every move re-embedded every chart in view.
    The spec still changes, and the chart is drawn anew, when anything besides the
    numbers moves (a label placed under its line instead of above it, a peak label
    turning sides, a note in the legend).

    Each dataset is named by the position of the first layer that holds it (``d0``,
    ``d1_3`` for the fourth layer of the second), so a chart's names are the same on
    every move; layers with equal data share one dataset (the band's area and its
    median line: half the band's bytes).  The data go as Arrow IPC bytes under
    ``datasets`` (what Streamlit sends for a named dataset), built once with the spec.
    ``spec`` itself is not changed.
    """
    names: dict[str, str] = {}
    datasets: dict[str, bytes] = {}

    def walk(node: dict, path: str) -> dict:
        node = dict(node)
        data = node.get("data")
        if isinstance(data, dict) and set(data) == {"values"}:
            text = json.dumps(data["values"], ensure_ascii=False, sort_keys=True)
            name = names.get(text)
            if name is None:
                name = names[text] = f"d{path}"
                datasets[name] = _arrow_bytes(data["values"])
            node["data"] = {"name": name}
        if "layer" in node:
            node["layer"] = [walk(layer, f"{path}_{i}" if path else str(i))
                             for i, layer in enumerate(node["layer"])]
        return node

    out = walk(spec, "")
    if datasets:
        out["datasets"] = datasets
    return out


def _arrow_bytes(values: list[dict]) -> bytes:
    """Rows as Arrow IPC stream bytes (the form Streamlit sends a dataset in)."""
    import pyarrow as pa

    table = pa.Table.from_pylist(values)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
