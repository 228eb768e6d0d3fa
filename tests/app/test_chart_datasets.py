"""The live charts send their data as named datasets, so a lever move updates a chart in place (issue 16)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

from greenpath.app import charts as live


def _runs(shift: float = 0.0) -> list[live.Run]:
    years = list(range(2005, 2036))
    frame = pd.DataFrame({"co2_emissions": [40.0 + shift - 0.2 * i for i in range(len(years))],
                          "total_coal_consumption": [2000.0 + 10 * shift] * len(years)},
                         index=years)
    base = frame.assign(co2_emissions=[40.0 - 0.1 * i for i in range(len(years))])
    return [live.Run("Current", "current", frame, None), live.Run("Baseline", "baseline", base, None)]


def _bands(shift: float = 0.0) -> pd.DataFrame:
    years = list(range(2005, 2036))
    return pd.DataFrame({"year": years, "variable": "total_coal_consumption",
                         "p10": [1900.0 + shift] * len(years), "p50": [2000.0 + shift] * len(years),
                         "p90": [2100.0 + shift] * len(years)})


def _rows(blob: bytes) -> list[dict]:
    return pa.ipc.open_stream(blob).read_all().to_pylist()


def _inline(spec: dict) -> list[list[dict]]:
    """Every layer's inline rows, depth first."""
    out = []
    for layer in spec.get("layer", []):
        if "values" in layer.get("data", {}):
            out.append(layer["data"]["values"])
        out += _inline(layer)
    return out


def _named(spec: dict) -> list[list[dict]]:
    """Every layer's rows through its named dataset, depth first."""
    out = []
    for layer in spec.get("layer", []):
        if "name" in layer.get("data", {}):
            out.append(_rows(spec["datasets"][layer["data"]["name"]]))
        for inner in layer.get("layer", []):
            if "name" in inner.get("data", {}):
                out.append(_rows(spec["datasets"][inner["data"]["name"]]))
    return out


def test_named_datasets_hold_the_same_rows_and_leave_no_inline_data():
    ctx = live.ChartContext(lang="en", bands=_bands())
    (spec,) = live.build("coal", _runs(), ctx)
    named = live.with_named_data(spec)
    assert _inline(named) == []
    assert _named(named) == _inline(spec)
    assert "datasets" not in spec  # the spec given is kept
    assert "values" in json.dumps(spec)


def test_band_area_and_median_share_one_dataset():
    ctx = live.ChartContext(lang="en", bands=_bands())
    (spec,) = live.build("coal", _runs(), ctx)
    named = live.with_named_data(spec)
    area, centre = named["layer"][:2]
    assert area["mark"]["type"] == "area"
    assert centre["mark"]["type"] == "line"
    assert area["data"] == centre["data"]
    assert len(named["datasets"]) < len(_inline(spec))


def test_a_move_that_changes_only_numbers_leaves_the_spec_and_the_names_alone():
    """What the browser compares to decide between an update in place and a new chart."""
    def sent(shift: float) -> tuple[str, dict[str, bytes]]:
        (spec,) = live.build("coal", _runs(shift), live.ChartContext(lang="en", bands=_bands(shift)))
        named = live.with_named_data(spec)
        datasets = named.pop("datasets")
        return json.dumps(named, sort_keys=True), datasets

    spec_a, data_a = sent(0.0)
    spec_b, data_b = sent(5.0)
    assert spec_a == spec_b
    assert data_a.keys() == data_b.keys()
    changed = {n for n in data_a if data_a[n] != data_b[n]}
    assert changed  # the current run and its band, not the rest
    assert changed != set(data_a)
