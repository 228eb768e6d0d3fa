"""The app's band layer draws the band's own median next to the point-calibration line (issue 15)."""

from __future__ import annotations

import json

import pandas as pd

from greenpath.app import charts as live
from greenpath.i18n import t


def _runs() -> list:
    frame = pd.DataFrame({"co2_emissions": [11.0, 11.5]}, index=[2020, 2021])
    return [live.Run("Current", "current", frame, None)]


def test_band_layer_draws_the_band_median_dotted_and_says_which_line_is_which():
    years = list(range(2005, 2036))
    bands = pd.DataFrame({"year": years, "variable": "co2_emissions", "p10": [10.0] * len(years),
                          "p50": [12.0] * len(years), "p90": [15.0] * len(years)})
    for lang in ("en", "zh"):
        ctx = live.ChartContext(lang=lang, bands=bands)
        layers = live._band_layer(ctx, "co2_emissions", _runs())
        area, centre = layers
        assert area["mark"]["type"] == "area"
        assert centre["mark"]["type"] == "line"
        assert centre["mark"]["strokeDash"]
        assert centre["encoding"]["y"]["field"] == "p50"
        values = centre["data"]["values"]
        assert {v["p50"] for v in values} == {12.0}
        assert t("chart_band_median", lang) in json.dumps(centre, ensure_ascii=False)


def test_band_layer_without_a_median_draws_the_area_only():
    bands = pd.DataFrame({"year": [2020, 2021], "variable": "co2_emissions", "p10": [1.0, 1.0],
                          "p90": [2.0, 2.0]})
    (area,) = live._band_layer(live.ChartContext(lang="en", bands=bands), "co2_emissions", _runs())
    assert area["mark"]["type"] == "area"
