"""The meeting charts apply the peak rule (issue 13, problem 5).

The review found the plan's "peak" was the 2020 history point followed by a 4.8 %
rebound to 2035, labelled "Peak 2020" on the meeting chart. A maximum followed by a
rebound is "not peaked" (稳中有降): the chart marks the last year and says so, in both
languages, for territorial CO2 and CO2 including imported electricity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.i18n import t
from greenpath.outputs import charts

YEARS = np.arange(2005, 2036)


def _frame(rebound: float) -> pd.DataFrame:
    """CO2 rising to its 2020 maximum (the record), falling to 2026, then rising by ``rebound``."""
    co2 = np.where(YEARS <= 2020, 30.0 + 0.5 * (YEARS - 2005), 37.5 - 0.5 * (YEARS - 2020))
    low = co2[YEARS == 2026][0]
    co2 = np.where(YEARS > 2026, low * (1 + rebound * (YEARS - 2026) / 9), co2)
    assert co2.argmax() == 15  # 2020
    return pd.DataFrame({"co2_emissions": co2, "co2_including_imports": co2 + 4.0,
                         "policy_start_year": 2021.0}, index=pd.Index(YEARS, name="year"))


def _labels(fig) -> list[str]:
    return [a.get_text() for a in fig.axes[0].texts if a.get_gid() == "peak_label"]


@pytest.mark.parametrize("variable", ["co2_emissions", "co2_including_imports"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_2020_maximum_followed_by_a_rebound_is_labelled_not_peaked(variable, lang):
    run = charts.Run("rebound", _frame(rebound=0.048))
    data = charts.co2_emissions_data([run], variable)
    peak = data[data["series"] == "peak"]
    assert int(peak["year"].iloc[0]) == 2035
    fig = charts.co2_emissions([run], lang, variable=variable, show_history=False, targets=[])
    assert _labels(fig) == [t("chart_no_peak", lang, year=2035)]


def test_a_2020_maximum_followed_by_a_lasting_decline_is_the_peak():
    run = charts.Run("decline", _frame(rebound=-0.05))
    fig = charts.co2_emissions([run], "en", show_history=False, targets=[])
    assert _labels(fig) == [t("chart_peak", "en", year=2020, value="37.5")]
