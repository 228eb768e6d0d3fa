"""The deck's cost slides: the MAC curve and a table of costs and co-benefits.

:func:`greenpath.runners.report.run_report` computes one
:class:`greenpath.runners.costs.CostReport` per scenario other than the baseline and
:func:`greenpath.outputs.deck.build_deck` adds two slides for each (:func:`add_slides`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import pandas as pd

from greenpath.i18n import t
from greenpath.outputs import cost_charts
from greenpath.runners import costs


def _n(x: float, digits: int = 0) -> str:
    return "—" if x != x else f"{x:,.{digits}f}"


def table(rep: costs.CostReport, lang: str) -> pd.DataFrame:
    """Rows of the cost slide: NPC at each rate, each group's cost per tonne, air, health."""
    rows = []
    col_item, col_value, col_range = (t("costs_col_group", lang), t("costs_col_npc", lang),
                                      t("costs_col_range", lang))
    for _, r in rep.npc.iterrows():
        rows.append({col_item: f"NPC, {r['rate'] * 100:.3g}%", col_value: _n(r["central"], 1),
                     col_range: f"{_n(r['p10'], 1)} … {_n(r['p90'], 1)}"})
    for _, r in rep.groups.iterrows():
        name = (t("costs_total", lang) if r["group"] == "total"
                else cost_charts.group_label(r["group"], lang))
        label = (f"{name}: {t('costs_col_cpt', lang)} "
                 f"({_n(r['co2_reduction_mt'], 1)} {t('costs_col_co2', lang)})")
        rows.append({col_item: label, col_value: _n(r["cost_per_t"]),
                     col_range: f"{_n(r['cost_per_t_p10'])} … {_n(r['cost_per_t_p90'])}"})
    h = rep.health.set_index("measure")
    for p in costs.POLLUTANTS:
        r = h.loc[f"{p}_reduction_2021_2035"]
        rows.append({col_item: f"{t('costs_pollutant_' + p, lang)}, t, {t('costs_cumulative', lang)}",
                     col_value: _n(r["central"]), col_range: f"{_n(r['p10'])} … {_n(r['p90'])}"})
    r = h.loc["deaths_avoided_2021_2035"]
    rows.append({col_item: t("costs_output_deaths_avoided_2021_2035", lang),
                 col_value: _n(r["central"]), col_range: f"{_n(r['p10'])} … {_n(r['p90'])}"})
    return pd.DataFrame(rows)


def add_slides(prs, reps: Sequence[costs.CostReport], lang: str, footer: str,
               table_slides: Callable, presentation: bool = False) -> None:
    """Add the MAC curve and the cost table of each report to the deck ``prs``."""
    blank = prs.slide_layouts[6]
    for rep in reps:
        if rep.attrs["players"]:
            fig = cost_charts.mac_curve(rep, lang, presentation=presentation)
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
            slide = prs.slides.add_slide(blank)
            pic = slide.shapes.add_picture(io.BytesIO(buf.getvalue()), 0, 0, prs.slide_width,
                                           prs.slide_height)
            title = t("costs_mac_title", lang, scenario=rep.attrs["scenario"],
                      baseline=rep.attrs["baseline"])
            pic._element.nvPicPr.cNvPr.set("descr", f"{title}. {footer}")
        table_slides(prs, t("costs_slide_title", lang, scenario=rep.attrs["scenario"]),
                     table(rep, lang), "", footer, lang)
