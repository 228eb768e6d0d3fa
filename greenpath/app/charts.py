"""Live charts of the app, as Vega-Lite (Altair) specs drawn in the browser.

Drawing in the browser keeps a lever move cheap on the server (no figure rendering);
the meeting-quality PNG/SVG downloads come from :mod:`greenpath.charts` instead.

Conventions (house style): one colour per carrier and technology, one per scenario
(current red, baseline grey, saved scenarios in three further colours); recorded
history in black with markers; the plan's targets as dashed marks labelled with their
clause; the first policy year marked; units on every axis.  Every label comes from the
string table, so the charts switch language with the interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import altair as alt
import pandas as pd

from greenpath.i18n import t
from greenpath.model import indicators

#: Colours of carriers and technologies (house style).
COLOURS = {
    "coal": "#3a3a3a",             # dark grey
    "oil": "#8c564b",              # brown
    "gas": "#8ec9ea",              # light blue
    "electricity_imports": "#7b4fa3",  # purple
    "utility_pv": "#f2c500",       # yellow
    "distributed_pv": "#f7e27a",   # light yellow: PV, rooftop
    "wind": "#17a2a2",             # teal
    "biomass": "#2e9e3f",          # green
    "hydro": "#1f62b4",            # blue
    "renewable_heat": "#a6d96a",   # light green
    "nonferrous": "#a6761d",
    "chemicals": "#e7298a",
    "building_materials": "#b8a88a",
    "steel": "#5b6d80",
    "other_manufacturing": "#9ab4d8",
    "green_industry": "#66c2a5",
}
#: Colours of scenarios: current, baseline, then saved scenarios in order.
SCENARIO_COLOURS = {"current": "#d62728", "baseline": "#6b6b6b"}
SAVED_COLOURS = ("#ff7f0e", "#e377c2", "#8f8f00")
HISTORY_COLOUR = "#000000"
MAX_SAVED = len(SAVED_COLOURS)

FONT = "'Noto Sans CJK SC', 'Source Han Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif"

#: chart id -> title key (strings shared with the meeting charts)
CHARTS = {
    "co2": "chart_title_co2_emissions",
    "renewables": "chart_title_renewable_capacity",
    "coal": "chart_title_coal_use",
    "energy_mix": "chart_title_energy_mix",
    "industry": "chart_title_industry_output",
    "intensity": "chart_title_intensity_change",
    "wedges": "chart_title_wedges",
}

RENEWABLE_PARTS = ("utility_pv", "distributed_pv", "wind", "biomass", "hydro")
INDUSTRY_PARTS = ("nonferrous", "chemicals", "building_materials", "steel",
                  "other_manufacturing", "green_industry")
MIX_PARTS = ("coal", "oil", "gas", "electricity_imports", "utility_pv", "distributed_pv",
             "wind", "biomass", "hydro", "renewable_heat")


@dataclass(frozen=True)
class Run:
    """One scenario's yearly results as drawn.

    Attributes
    ----------
    label
        Name shown in legends.
    role
        ``"current"``, ``"baseline"`` or ``"saved"``.
    frame
        The run's table (index ``year``).
    epe
        Primary-energy equivalent of electricity in this run (gce/kWh), to split the
        energy mix by technology the way the model counts it.
    """

    label: str
    role: str
    frame: pd.DataFrame
    epe: float = 300.0


@dataclass(frozen=True)
class TargetMark:
    """A plan target drawn on a chart: ``value`` in the chart's unit at ``year``."""

    year: int
    value: float
    label: str


@dataclass
class ChartContext:
    """What every chart needs besides the runs."""

    lang: str = "en"
    present: bool = False
    policy_start: int = 2021
    targets: dict[str, list[TargetMark]] = field(default_factory=dict)
    bands: pd.DataFrame | None = None
    history: dict[str, pd.Series] = field(default_factory=dict)


# ------------------------------------------------------------------ data shaping
def scenario_colours(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """Legend domain and colours of ``runs`` (saved scenarios beyond three are dropped)."""
    domain, rng, saved = [], [], 0
    for r in runs:
        if r.role == "saved":
            if saved >= MAX_SAVED:
                continue
            colour = SAVED_COLOURS[saved]
            saved += 1
        else:
            colour = SCENARIO_COLOURS[r.role]
        domain.append(r.label)
        rng.append(colour)
    return domain, rng


def _long(runs: Sequence[Run], column: str, transform=None) -> pd.DataFrame:
    domain, _ = scenario_colours(runs)
    parts = []
    for r in runs:
        if r.label not in domain:
            continue
        s = r.frame[column] if transform is None else transform(r.frame)
        parts.append(pd.DataFrame({"year": s.index.astype(int), "value": s.to_numpy(dtype=float),
                                   "scenario": r.label}))
    return pd.concat(parts, ignore_index=True)


def parts_frame(run: Run, chart: str) -> pd.DataFrame:
    """Stacked parts of ``run`` for a by-category chart (columns: year, part, value)."""
    f = run.frame
    if chart == "renewables":
        cols = {p: f[f"{p}_capacity"] for p in RENEWABLE_PARTS}
    elif chart == "industry":
        cols = {p: f[f"output_{p}"] for p in INDUSTRY_PARTS}
    elif chart == "energy_mix":
        k = run.epe / 100.0  # 亿kWh x gce/kWh / 100 = 万tce
        cols = {
            "coal": f["total_coal_consumption"], "oil": f["total_oil"], "gas": f["total_gas"],
            "electricity_imports": f["imported_electricity_primary_energy"],
            "utility_pv": f["utility_pv_generation"] * k,
            "distributed_pv": f["distributed_pv_generation"] * k,
            "wind": f["wind_generation"] * k, "biomass": f["biomass_generation"] * k,
            "hydro": f["hydro_generation"] * k, "renewable_heat": f["renewable_heat"],
        }
    else:
        raise KeyError(chart)
    out = pd.DataFrame(cols)
    out.index = out.index.astype(int)
    out.index.name = "year"
    return out.reset_index().melt(id_vars="year", var_name="part", value_name="value")


TOTALS = {"renewables": "renewable_capacity", "industry": "industrial_va",
          "energy_mix": "total_energy_consumption"}


def part_label(part: str, lang: str) -> str:
    """Legend label of a carrier, technology or branch."""
    key = "app_series_renewable_heat" if part == "renewable_heat" else f"chart_series_{part}"
    return t(key, lang)


# ------------------------------------------------------------------ building blocks
def _x(ctx: ChartContext) -> alt.X:
    return alt.X("year:Q", title=t("chart_axis_year", ctx.lang),
                 scale=alt.Scale(domain=[2005, 2035], nice=False),
                 axis=alt.Axis(format="d", tickMinStep=5 if not ctx.present else 10))


def _scenario_colour(runs: Sequence[Run], ctx: ChartContext) -> alt.Color:
    domain, rng = scenario_colours(runs)
    return alt.Color("scenario:N", title=t("app_legend_scenario", ctx.lang),
                     scale=alt.Scale(domain=domain, range=rng),
                     legend=alt.Legend(orient="bottom", direction="vertical" if ctx.present
                                       else "horizontal", labelLimit=400))


def _lines(data: pd.DataFrame, runs: Sequence[Run], ctx: ChartContext, y_title: str,
           fmt: str = ",.0f") -> alt.Chart:
    width = 4 if ctx.present else 2.5
    return alt.Chart(data).mark_line(strokeWidth=width).encode(
        x=_x(ctx), y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=fmt)),
        color=_scenario_colour(runs, ctx),
        tooltip=[alt.Tooltip("scenario:N", title=t("app_legend_scenario", ctx.lang)),
                 alt.Tooltip("year:Q", format="d", title=t("chart_axis_year", ctx.lang)),
                 alt.Tooltip("value:Q", format=",.2f", title=y_title)],
    )


def _policy_rule(ctx: ChartContext) -> alt.LayerChart:
    data = pd.DataFrame({"year": [ctx.policy_start],
                         "label": [t("chart_policy_start", ctx.lang, year=ctx.policy_start)]})
    rule = alt.Chart(data).mark_rule(color="#999999", strokeDash=[2, 3]).encode(x="year:Q")
    text = alt.Chart(data).mark_text(align="left", baseline="top", dx=4, dy=4, color="#777777",
                                     fontSize=20 if ctx.present else 11).encode(
        x="year:Q", y=alt.value(0), text="label:N")
    return rule + text


def _target_layer(marks: Sequence[TargetMark], ctx: ChartContext) -> alt.LayerChart | None:
    """Dashed target marks: a segment from the policy start to the target year, labelled."""
    if not marks:
        return None
    rows = [{"x0": min(ctx.policy_start, m.year), "x1": m.year, "value": m.value,
             "label": m.label} for m in marks]
    data = pd.DataFrame(rows)
    size = 20 if ctx.present else 11
    rule = alt.Chart(data).mark_rule(strokeDash=[8, 5], color="#1a1a1a",
                                     strokeWidth=3 if ctx.present else 2).encode(
        x="x0:Q", x2="x1:Q", y="value:Q", tooltip=["label:N"])
    point = alt.Chart(data).mark_point(shape="diamond", filled=True, color="#1a1a1a",
                                       size=200 if ctx.present else 80).encode(
        x="x1:Q", y="value:Q", tooltip=["label:N"])
    text = alt.Chart(data).mark_text(align="left", dx=8, dy=-10, fontSize=size,
                                     color="#1a1a1a").encode(x="x1:Q", y="value:Q", text="label:N")
    return rule + point + text


def _history_layer(series: pd.Series | None, label: str, ctx: ChartContext) -> alt.LayerChart | None:
    if series is None or series.empty:
        return None
    data = pd.DataFrame({"year": series.index.astype(int), "value": series.to_numpy(dtype=float),
                         "source": label})
    base = alt.Chart(data).encode(x="year:Q", y="value:Q",
                                  tooltip=["source:N", alt.Tooltip("year:Q", format="d"),
                                           alt.Tooltip("value:Q", format=",.2f")])
    line = base.mark_line(color=HISTORY_COLOUR, strokeWidth=1.5)
    points = base.mark_point(color=HISTORY_COLOUR, filled=True, size=90 if ctx.present else 40)
    return line + points


def _band_layer(ctx: ChartContext, variable: str, runs: Sequence[Run]) -> alt.Chart | None:
    bands = ctx.bands
    if bands is None or bands.empty:
        return None
    data = bands[bands["variable"] == variable]
    if data.empty:
        return None
    data = data.assign(band=t("chart_band", ctx.lang))
    return alt.Chart(data).mark_area(opacity=0.2, color=SCENARIO_COLOURS["current"]).encode(
        x="year:Q", y="p10:Q", y2="p90:Q", tooltip=["band:N", "year:Q", "p10:Q", "p90:Q"])


def _finish(chart, title: str, ctx: ChartContext, height: int | None = None,
            subtitle: str | None = None):
    height = height or (560 if ctx.present else 300)
    big = ctx.present
    params = alt.TitleParams(title, anchor="start", subtitleFontSize=24 if big else 12,
                             **({"subtitle": subtitle} if subtitle else {}))
    return (chart.properties(title=params, height=height, width="container")
            .configure(font=FONT)
            .configure_title(fontSize=34 if big else 16, font=FONT)
            .configure_axis(labelFontSize=22 if big else 12, titleFontSize=24 if big else 12,
                            labelFont=FONT, titleFont=FONT)
            .configure_legend(labelFontSize=22 if big else 12, titleFontSize=22 if big else 12,
                              labelFont=FONT, titleFont=FONT, symbolSize=300 if big else 100)
            .configure_view(strokeWidth=0))


def _layer(*layers):
    return alt.layer(*[layer for layer in layers if layer is not None])


# ------------------------------------------------------------------ the charts
def co2_chart(runs: Sequence[Run], ctx: ChartContext) -> alt.LayerChart:
    """CO2 emissions by scenario, with each scenario's peak, history and bands."""
    y_title = t("chart_axis_co2", ctx.lang)
    data = _long(runs, "co2_emissions")
    peaks = []
    domain, _ = scenario_colours(runs)
    for r in runs:
        if r.label not in domain:
            continue
        year, value = indicators.peak(r.frame, "co2_emissions")
        last = int(r.frame.index.max())
        text = (t("chart_no_peak", ctx.lang, year=last) if year == last
                else t("chart_peak", ctx.lang, year=year, value=f"{value:.1f}"))
        peaks.append({"year": year, "value": value, "scenario": r.label, "label": text,
                      "current": r.role == "current"})
    peak_df = pd.DataFrame(peaks)
    colour = _scenario_colour(runs, ctx)
    peak_points = alt.Chart(peak_df).mark_point(shape="triangle-up", filled=True,
                                                size=320 if ctx.present else 120).encode(
        x="year:Q", y="value:Q", color=colour, tooltip=["scenario:N", "label:N"])
    peak_text = alt.Chart(peak_df[peak_df["current"]]).mark_text(
        dy=-16, fontSize=22 if ctx.present else 12, fontWeight="bold",
        color=SCENARIO_COLOURS["current"]).encode(x="year:Q", y="value:Q", text="label:N")
    chart = _layer(
        _band_layer(ctx, "co2_emissions", runs),
        _policy_rule(ctx),
        _lines(data, runs, ctx, y_title, ",.0f"),
        _history_layer(ctx.history.get("co2_emissions"), t("chart_history_ceads", ctx.lang), ctx),
        _target_layer(ctx.targets.get("co2", []), ctx),
        peak_points, peak_text,
    )
    return _finish(chart, t(CHARTS["co2"], ctx.lang), ctx)


def stacked_chart(chart_id: str, runs: Sequence[Run], ctx: ChartContext,
                  y_title_key: str) -> alt.LayerChart:
    """Current scenario stacked by category, with every scenario's total as a line."""
    current = next(r for r in runs if r.role == "current")
    parts = parts_frame(current, chart_id)
    order = {"renewables": RENEWABLE_PARTS, "industry": INDUSTRY_PARTS,
             "energy_mix": MIX_PARTS}[chart_id]
    labels = [part_label(p, ctx.lang) for p in order]
    parts["label"] = parts["part"].map(dict(zip(order, labels, strict=True)))
    parts["order"] = parts["part"].map({p: i for i, p in enumerate(order)})
    y_title = t(y_title_key, ctx.lang)
    title_parts = t("app_legend_parts", ctx.lang, scenario=current.label)
    area = alt.Chart(parts).mark_area(opacity=0.85).encode(
        x=_x(ctx), y=alt.Y("value:Q", stack="zero", title=y_title, axis=alt.Axis(format=",.0f")),
        color=alt.Color("label:N", title=title_parts,
                        scale=alt.Scale(domain=labels, range=[COLOURS[p] for p in order]),
                        sort=labels,
                        legend=alt.Legend(orient="right", labelLimit=320)),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("label:N", title=title_parts),
                 alt.Tooltip("year:Q", format="d"), alt.Tooltip("value:Q", format=",.1f")],
    )
    totals = _lines(_long(runs, TOTALS[chart_id]), runs, ctx, y_title)
    history = ctx.history.get(TOTALS[chart_id])
    chart = _layer(area, _policy_rule(ctx), totals,
                   _history_layer(history, t("chart_history_renewables_2020", ctx.lang), ctx),
                   _target_layer(ctx.targets.get(chart_id, []), ctx),
                   ).resolve_scale(color="independent")
    return _finish(chart, t(CHARTS[chart_id], ctx.lang), ctx)


def coal_chart(runs: Sequence[Run], ctx: ChartContext) -> alt.LayerChart:
    """Total coal consumption by scenario against the 2025 target."""
    y_title = t("chart_axis_coal", ctx.lang)
    chart = _layer(_policy_rule(ctx), _lines(_long(runs, "total_coal_consumption"), runs, ctx,
                                             y_title),
                   _target_layer(ctx.targets.get("coal", []), ctx))
    return _finish(chart, t(CHARTS["coal"], ctx.lang), ctx)


def intensity_charts(runs: Sequence[Run], ctx: ChartContext) -> list[alt.LayerChart]:
    """Energy and CO2 intensity, change vs 2020 (%), against the 2025 targets (two panels)."""
    panels = []
    y_title = t("chart_axis_change_vs_2020", ctx.lang)
    for column, key, target_id in (
        ("energy_intensity", "chart_panel_energy_intensity", "energy_intensity"),
        ("co2_intensity", "chart_panel_co2_intensity", "co2_intensity"),
    ):
        data = _long(runs, column,
                     lambda f, c=column: 100.0 * indicators.change_vs(f, c))
        data = data[data["year"] >= 2010]
        zero = alt.Chart(pd.DataFrame({"value": [0.0]})).mark_rule(color="#bbbbbb").encode(
            y="value:Q")
        layer = _layer(zero, _policy_rule(ctx), _lines(data, runs, ctx, y_title, ".0f"),
                       _target_layer(ctx.targets.get(target_id, []), ctx))
        panels.append(_finish(layer, t(key, ctx.lang), ctx,
                              subtitle=t(CHARTS["intensity"], ctx.lang)))
    return panels


def wedge_chart(wedges: pd.DataFrame, ctx: ChartContext, scenario_label: str) -> alt.LayerChart:
    """Contribution of each lever group to the CO2 reduction vs the baseline."""
    data = wedges.copy()
    data["label"] = [t(f"chart_group_{g.replace(' ', '_')}", ctx.lang) for g in data["group"]]
    data = data[data["year"] >= ctx.policy_start - 1]
    y_title = t("chart_axis_reduction", ctx.lang)
    area = alt.Chart(data).mark_area(opacity=0.85).encode(
        x=_x(ctx), y=alt.Y("contribution:Q", stack="zero", title=y_title,
                           axis=alt.Axis(format=",.1f")),
        color=alt.Color("label:N", title=t("app_legend_wedges", ctx.lang,
                                           scenario=scenario_label),
                        legend=alt.Legend(orient="right", labelLimit=320)),
        tooltip=["label:N", alt.Tooltip("year:Q", format="d"),
                 alt.Tooltip("contribution:Q", format=",.2f")],
    )
    total = data.groupby("year", as_index=False)["contribution"].sum()
    total["label"] = t("chart_series_total_reduction", ctx.lang)
    line = alt.Chart(total).mark_line(color="#000000", strokeWidth=3 if ctx.present else 2).encode(
        x="year:Q", y="contribution:Q", tooltip=["label:N", "year:Q", "contribution:Q"])
    chart = _layer(area, line, _policy_rule(ctx))
    return _finish(chart, t(CHARTS["wedges"], ctx.lang), ctx)


def build(chart_id: str, runs: Sequence[Run], ctx: ChartContext,
          wedges: pd.DataFrame | None = None) -> list:
    """The chart ``chart_id`` (see :data:`CHARTS`) as a list of panels drawn side by side.

    Only the intensity chart has two panels.  The wedge chart needs its table.
    """
    if chart_id == "co2":
        return [co2_chart(runs, ctx)]
    if chart_id == "renewables":
        return [stacked_chart("renewables", runs, ctx, "chart_axis_capacity")]
    if chart_id == "industry":
        return [stacked_chart("industry", runs, ctx, "chart_axis_value_added")]
    if chart_id == "energy_mix":
        return [stacked_chart("energy_mix", runs, ctx, "chart_axis_energy")]
    if chart_id == "coal":
        return [coal_chart(runs, ctx)]
    if chart_id == "intensity":
        return intensity_charts(runs, ctx)
    if chart_id == "wedges":
        if wedges is None:
            raise ValueError("the wedge chart needs the wedge table")
        current = next(r for r in runs if r.role == "current")
        return [wedge_chart(wedges, ctx, current.label)]
    raise KeyError(f"unknown chart {chart_id!r}; one of {', '.join(CHARTS)}")
