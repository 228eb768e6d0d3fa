"""The app's cost panel and the MAC chart (headless AppTest; the chart module directly)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from greenpath.app import cost_panel
from greenpath.i18n import t
from greenpath.outputs import cost_charts
from greenpath.runners import costs

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(scope="module")
def report():
    return costs.analyse("plan_2021", samples=10, seed=5)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_mac_chart_has_a_bar_per_group_with_a_cut(report, lang):
    fig = cost_charts.mac_curve(report, lang)
    (ax,) = fig.axes
    mac = report.mac_curve()
    assert len(ax.patches) == len(mac)
    widths = sorted(round(p.get_width(), 9) for p in ax.patches)
    assert widths == sorted(round(w, 9) for w in mac["co2_reduction_mt"])
    assert t("costs_mac_x", lang) == ax.get_xlabel()
    assert cost_charts.png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_show_every_group_and_pollutant(report):
    g = cost_panel.group_table(report, "zh")
    assert len(g) == len(report.groups)
    assert g.iloc[-1, 0] == t("costs_total", "zh")
    p = cost_panel.pollutant_table(report, "en")
    assert list(p[""]) == [t(f"costs_pollutant_{x}", "en") for x in costs.POLLUTANTS]


def test_app_panel_opens_with_npc_and_mac_chart():
    at = AppTest.from_file(APP, default_timeout=180)
    at.query_params["scenario"] = "plan_2021"
    at.session_state["w_costs"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = " ".join(m.value for m in at.markdown)
    assert "Net present cost vs baseline at 8%" in texts
