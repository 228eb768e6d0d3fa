"""The simulator's cost panel: net present cost, the MAC curve, pollutants and health.

Built only while its expander is open (the analysis runs 2^n coalitions for each of
``SAMPLES + 1`` cost settings, a few seconds), cached by the levers' run key.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from greenpath.app import state
from greenpath.i18n import t
from greenpath.runners import costs

#: Monte Carlo samples of the cost ranges in the app (the CLI's default is 200).
SAMPLES = 100


@st.cache_data(max_entries=32, show_spinner=False)
def cached_report(key: state.RunKey, _scenario) -> costs.CostReport:
    """Return the cost report of the settings ``key`` (``_scenario`` holds them; not hashed)."""
    return costs.analyse(_scenario, samples=SAMPLES)


def _num(x: float, digits: int = 0) -> str:
    return "—" if x != x else f"{x:,.{digits}f}"


def group_table(rep: costs.CostReport, lang: str) -> pd.DataFrame:
    """Return the lever groups' NPC, CO2 cut and cost per tonne with P10-P90, as shown."""
    from greenpath.outputs.cost_charts import group_label

    rows = []
    for _, r in rep.groups.iterrows():
        name = t("costs_total", lang) if r["group"] == "total" else group_label(r["group"], lang)
        rows.append({t("costs_col_group", lang): name,
                     t("costs_col_npc", lang): _num(r["npc"], 1),
                     t("costs_col_co2", lang): _num(r["co2_reduction_mt"], 2),
                     t("costs_col_cpt", lang): _num(r["cost_per_t"]),
                     t("costs_col_range", lang): f"{_num(r['cost_per_t_p10'])} … {_num(r['cost_per_t_p90'])}"})
    return pd.DataFrame(rows)


def pollutant_table(rep: costs.CostReport, lang: str, years=(2025, 2030, 2035)) -> pd.DataFrame:
    """Reduction of each pollutant (all sectors) in the given years and in total, t."""
    p = rep.pollutants[rep.pollutants["sector"] == "total"]
    rows = []
    for pol in costs.POLLUTANTS:
        sub = p[p["pollutant"] == pol].set_index("year")["reduction"]
        row = {"": t(f"costs_pollutant_{pol}", lang)}
        row.update({str(y): _num(sub.loc[y]) for y in years})
        row[t("costs_cumulative", lang)] = _num(sub.sum())
        rows.append(row)
    return pd.DataFrame(rows)


def render(scenario, key: state.RunKey, lang: str) -> None:
    """Draw the panel (an expander, computed only while open)."""
    from greenpath.outputs.cost_charts import mac_curve, png

    panel = st.expander(t("costs_panel_title", lang), key="w_costs", on_change="rerun")
    if not panel.open:
        return
    with panel:
        try:
            with st.spinner(t("costs_panel_run", lang)):
                rep = cached_report(key, scenario)
        except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
            st.warning(f"{type(exc).__name__}: {exc}")
            return
        npc = rep.npc.set_index("rate_name").loc[costs.HEADLINE_RATE]
        deaths = rep.health.set_index("measure").loc["deaths_avoided_2021_2035"]
        st.markdown(t("costs_panel_caption", lang, npc=_num(npc["central"], 1),
                      low=_num(npc["p10"], 1), high=_num(npc["p90"], 1),
                      deaths=_num(deaths["central"]), dlow=_num(deaths["p10"]),
                      dhigh=_num(deaths["p90"])))
        if not rep.attrs["players"]:
            return
        st.image(png(mac_curve(rep, lang)), width="stretch")
        st.dataframe(group_table(rep, lang), hide_index=True, width="stretch")
        st.caption(t("costs_pollutants_heading", lang))
        st.dataframe(pollutant_table(rep, lang), hide_index=True, width="stretch")
        st.caption(t("costs_note", lang))
