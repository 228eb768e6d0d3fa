"""The one chart registry (``greenpath.outputs.charts.REGISTRY``) and the views built from it.

A chart is one registry entry plus its functions: the report's chart set, the wedge
charts, the app's picker, its download charts and which charts take bands or target
sets are all read from the entry, so they cannot disagree.
"""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from greenpath.app import charts as live
from greenpath.i18n import has
from greenpath.outputs import charts

ENTRIES = list(charts.REGISTRY.values())


def test_ids_and_live_ids_are_unique_and_ranked():
    assert len({c.id for c in ENTRIES}) == len({c.live_id for c in ENTRIES}) == len(ENTRIES)
    assert sorted(c.live_rank for c in ENTRIES) == list(range(len(ENTRIES)))
    assert all(key == c.id for key, c in charts.REGISTRY.items())


def test_every_view_is_read_from_the_registry():
    assert {c.id: (c.figure, c.data) for c in ENTRIES if c.wedge_of is None} == charts.CHARTS
    assert {c.id: c.wedge_of for c in ENTRIES if c.wedge_of is not None} == charts.WEDGE_CHARTS
    assert list(live.CHARTS) == [c.live_id for c in sorted(ENTRIES, key=lambda c: c.live_rank)]
    assert {c.live_id: c.id for c in ENTRIES} == live.MEETING_CHART
    assert {c.live_id: c.title_key for c in ENTRIES} == live.CHARTS
    assert {c.live_id: c.wedge_of for c in ENTRIES if c.wedge_of is not None} == live.WEDGE_CHARTS
    assert set(live.CO2_CHARTS) <= set(live.CHARTS)


@pytest.mark.parametrize("chart", ENTRIES, ids=lambda c: c.id)
def test_entry_is_complete(chart):
    assert has(chart.title_key), f"{chart.title_key} is not in the string table"
    assert charts.chart_title(chart.id, "en") != charts.chart_title(chart.id, "zh")
    # The flags say exactly what the figure function takes: a new banded chart cannot
    # be left without its bands in the app's downloads, nor a flag set on one that ignores
    # it (co2_including_imports passes its keywords on to co2_emissions).
    figure = charts.co2_emissions if chart.figure is charts.co2_including_imports else chart.figure
    params = inspect.signature(figure).parameters
    assert chart.banded == ("bands" in params)
    assert chart.sets == ("sets" in params)
    assert (chart.data is None) == (chart.wedge_of is not None)


def test_every_entry_has_a_live_spec(model):
    """The app builds a Vega-Lite spec for every registry entry's live id."""
    current, base = model.run(params={"wind_build_rate": 400.0}), model.run()
    runs = [live.Run("Current", "current", current.frame, current),
            live.Run("Baseline", "baseline", base.frame, base)]
    ctx = live.ChartContext(lang="en")
    wedges = pd.DataFrame({"year": [2021, 2022], "group": ["energy supply"] * 2,
                           "contribution": [0.1, 0.2]})
    for chart in ENTRIES:
        specs = live.build(chart.live_id, runs, ctx, wedges if chart.wedge_of else None)
        assert specs, chart.live_id
