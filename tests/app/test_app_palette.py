"""Colour-vision safety of the chart colours (:mod:`greenpath.app.palette`)."""

from __future__ import annotations

import pytest

from greenpath.app import palette


def test_delta_e2000_reference_pairs():
    """Sharma, Wu & Dalal (2005) test data, pairs 1, 7 and 17."""
    assert palette.delta_e2000([50, 2.6772, -79.7751], [50, 0, -82.7485]) == pytest.approx(
        2.0425, abs=1e-4)
    assert palette.delta_e2000([50, 0, 0], [50, -1, 2]) == pytest.approx(2.3669, abs=1e-4)
    assert palette.delta_e2000([50, 2.5, 0], [56, -27, -3]) == pytest.approx(31.9030, abs=1e-4)


def test_simulated_deficiencies_confuse_what_they_should():
    """Red and green collapse for protanopes and deuteranopes, not for tritanopes."""
    red, green = palette.lab("#d62728"), palette.lab("#2ca02c")
    normal = palette.delta_e2000(red, green)
    for vision in ("protanopia", "deuteranopia"):
        seen = palette.delta_e2000(palette.lab("#d62728", vision),
                                   palette.lab("#2ca02c", vision))
        assert seen < normal / 2, vision
    blue, yellow = "#1f77b4", "#ffdd00"
    assert palette.delta_e2000(palette.lab(blue, "tritanopia"),
                               palette.lab(yellow, "tritanopia")) < palette.delta_e2000(
        palette.lab(blue), palette.lab(yellow))


def test_min_difference_finds_a_confusable_pair():
    worst, a, b, vision = palette.min_difference(["#0072b2", "#d62728", "#2ca02c"])
    assert {a, b} == {"#d62728", "#2ca02c"}
    assert vision in ("protanopia", "deuteranopia")
    assert worst < palette.MIN_DELTA_E


@pytest.mark.parametrize("chart", sorted(palette.chart_colour_sets()))
def test_series_of_one_chart_stay_distinguishable_in_every_vision(chart):
    """Every pair of series colours in a chart, normal vision and the three deficiencies."""
    colours = palette.chart_colour_sets()[chart]
    assert len(set(colours)) == len(colours), f"{chart}: two series share a colour"
    worst, a, b, vision = palette.min_difference(colours)
    assert worst >= palette.MIN_DELTA_E, (
        f"{chart}: {a} and {b} differ by only {worst:.1f} (CIEDE2000) with {vision}")
