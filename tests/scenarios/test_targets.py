"""Targets.

Strict loader, evaluation against hand-computed values, the shipped file, the
`greenpath targets` command.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.scenarios import scenario as scenarios
from greenpath.scenarios import targets as T

YEARS = list(range(2018, 2036))


@pytest.fixture
def frame() -> pd.DataFrame:
    """Build a small synthetic run with round numbers."""
    f = pd.DataFrame(index=pd.Index(YEARS, name="year"), dtype=float)
    f["energy_intensity"] = np.linspace(1.1, 0.25, len(YEARS))
    f.loc[2020, "energy_intensity"] = 1.0
    f.loc[2025, "energy_intensity"] = 0.8
    f["total_coal_consumption"] = 100.0
    f.loc[2025, "total_coal_consumption"] = 90.0
    f["renewable_capacity"] = 500.0
    f.loc[2025, "renewable_capacity"] = 1000.0
    f["wind_capacity"] = 45.0
    f.loc[2025, "wind_capacity"] = 1045.0
    f["non_fossil_share"] = 0.05
    f.loc[2025, "non_fossil_share"] = 0.12
    # CO2 rises 1 Mt/yr to 2028 (peak 80) and then falls 2 Mt/yr.
    co2 = [72.0 + (y - 2020) if y <= 2028 else 80.0 - 2.0 * (y - 2028) for y in YEARS]
    f["co2_emissions"] = co2
    f["industrial_va"] = 100.0
    f["industrial_final_energy"] = 200.0
    f.loc[2023, "industrial_va"] = 120.0
    f.loc[2023, "industrial_final_energy"] = 180.0
    return f


def target(**kw) -> str:
    base = {"id": "t", "indicator": "energy_intensity", "year": 2025, "comparison": "<=",
            "value": 1, "unit": "tce10k/CNY100m", "label_en": "x", "label_zh": "x",
            "source": "test"}
    base.update(kw)
    lines = ["[[target]]"]
    for k, v in base.items():
        lines.append(f"{k} = {v!r}".replace("'", '"') if isinstance(v, str)
                     else f"{k} = {v}")
    return "\n".join(lines) + "\n"


def one(frame, **kw) -> pd.Series:
    return T.evaluate(frame, T.from_text(target(**kw), "test.toml")).iloc[0]


# ---------------------------------------------------------------- hand-computed values
def test_change_vs_base_met_with_margin(frame):
    row = one(frame, indicator="change_vs_2020:energy_intensity", base_year=2020,
              comparison="<=", value=-16, unit="%")
    assert row["value"] == pytest.approx(-20.0)
    assert row["margin"] == pytest.approx(4.0)
    assert row["met"]


def test_change_vs_base_missed_with_negative_margin(frame):
    row = one(frame, indicator="change_vs_2020:total_coal_consumption", comparison="<=",
              value=-12, unit="%")
    assert row["value"] == pytest.approx(-10.0)
    assert row["margin"] == pytest.approx(-2.0)
    assert not row["met"]


def test_boundary_is_met_for_weak_and_missed_for_strict(frame):
    weak = one(frame, indicator="renewable_capacity", comparison=">=", value=1000, unit="MW")
    strict = one(frame, indicator="renewable_capacity", comparison=">", value=1000, unit="MW")
    assert weak["margin"] == strict["margin"] == 0.0
    assert weak["met"]
    assert not strict["met"]


def test_units_convert(frame):
    gw = one(frame, indicator="renewable_capacity", comparison=">=", value=0.9, unit="GW")
    assert gw["value"] == pytest.approx(1.0)
    assert gw["margin"] == pytest.approx(0.1)
    share = one(frame, indicator="non_fossil_share", comparison=">", value=11, unit="%")
    assert share["value"] == pytest.approx(12.0)
    assert share["margin"] == pytest.approx(1.0)
    frac = one(frame, indicator="non_fossil_share", comparison=">", value=0.11, unit="fraction")
    assert frac["value"] == pytest.approx(0.12)


def test_increase_vs_base(frame):
    row = one(frame, indicator="increase_vs_2020:wind_capacity", comparison=">=", value=1000,
              unit="MW")
    assert row["value"] == pytest.approx(1000.0)
    assert row["met"]


def test_peak_year_and_decline_from_peak(frame):
    peak = one(frame, indicator="peak_year:co2_emissions", year=2035, comparison="<=",
               value=2030, unit="year")
    assert peak["value"] == 2028
    assert peak["margin"] == 2
    assert peak["met"]
    early = one(frame, indicator="peak_year:co2_emissions", year=2026, comparison="<=",
                value=2025, unit="year")
    assert early["value"] == 2026  # still rising in the window's last year
    assert not early["met"]
    decline = one(frame, indicator="change_vs_peak:co2_emissions", year=2035, comparison="<",
                  value=0, unit="%")
    assert decline["value"] == pytest.approx((66.0 / 80.0 - 1.0) * 100)
    assert decline["met"]


def test_historical_maximum_followed_by_a_rebound_is_not_peaked(frame):
    """The 2020 history point, a drop, then growth again to 2035: never a peak (稳中有降)."""
    from greenpath.model import indicators

    co2 = {y: (40.0 if y <= 2020 else 34.0 + 0.3 * (y - 2021)) for y in YEARS}  # 2035: 38.2
    frame["co2_emissions"] = pd.Series(co2)
    assert frame.loc[2021:, "co2_emissions"].max() < frame.loc[2020, "co2_emissions"]
    row = one(frame, indicator="peak_year:co2_emissions", year=2035, base_year=2020,
              comparison="<=", value=2030, unit="year")
    assert row["value"] == 2035
    assert not row["met"]
    status = indicators.peak_status(frame, "co2_emissions")
    assert status["max_year"] == 2020
    assert not status["peaked"]
    assert indicators.peak(frame, "co2_emissions")[0] == 2035  # charts and decks: "not peaked"
    head = T.headline(frame)
    assert head["still_rising"]
    assert not head["peaked"]
    assert head["rebound_pct"] > 10
    # The same drop without the rebound is a peak in 2020.
    frame["co2_emissions"] = pd.Series({y: (40.0 if y <= 2020 else 34.0 - 0.1 * (y - 2021)) for y in YEARS})
    row = one(frame, indicator="peak_year:co2_emissions", year=2035, base_year=2020,
              comparison="<=", value=2030, unit="year")
    assert row["value"] == 2020
    assert row["met"]
    assert T.headline(frame)["peaked"]


def test_cli_says_not_peaked_for_a_rebound(capsys):
    """A rebound after the maximum is reported as not peaked, in both languages' text."""
    from greenpath.i18n import t as tr

    assert "not peaked" in tr("targets_still_rising", "en", year=2035)
    assert "未达峰" in tr("chart_no_peak", "zh", year=2035)


def test_cumulative(frame):
    row = one(frame, indicator="cumulative:co2_emissions", year=2035, comparison="<=",
              value=1000, unit="Mt CO2")
    expected = frame.loc[2021:2035, "co2_emissions"].sum()
    assert row["value"] == pytest.approx(expected)
    assert row["margin"] == pytest.approx(1000 - expected)


def test_industrial_energy_saving(frame):
    # 2023 VA 120 at the 2020 intensity 200/100 = 2 needs 240; it uses 180: 60 saved.
    row = one(frame, indicator="industrial_energy_saving", year=2023, comparison=">=",
              value=100, unit="10k tce")
    assert row["value"] == pytest.approx(60.0)
    assert row["margin"] == pytest.approx(-40.0)
    assert not row["met"]
    mtce = one(frame, indicator="industrial_energy_saving", year=2023, comparison=">=",
               value=0.5, unit="Mtce")
    assert mtce["value"] == pytest.approx(0.6)


def test_nan_value_is_missed(frame):
    frame.loc[2025, "renewable_capacity"] = np.nan
    row = one(frame, indicator="renewable_capacity", comparison=">=", value=1, unit="MW")
    assert not row["met"]
    assert math.isnan(row["margin"])


def test_missing_column_is_an_error(frame):
    with pytest.raises(T.TargetError, match="'t'.*no column 'co2_intensity'"):
        one(frame, indicator="co2_intensity", unit="MtCO2/CNY100m")


def test_output_columns(frame):
    out = T.evaluate(frame, T.from_text(target(), "x.toml"))
    assert list(out.columns) == T.COLUMNS
    assert out["met"].dtype == bool


# ---------------------------------------------------------------- loader errors
@pytest.mark.parametrize(("kw", "expected"), [
    ({"comparision": "<="}, ["test.toml: target #1 ('t')", "unknown key 'comparision'",
                             "did you mean 'comparison'"]),
    ({"comparison": "=="}, ["comparison = '=='", "allowed <=, >=, <, >"]),
    ({"year": 2040}, ["year = 2040", "2005 to 2035"]),
    ({"year": 2025.5}, ["year = 2025.5", "whole year"]),
    ({"indicator": "energy_intensty"}, ["indicator = 'energy_intensty'",
                                         "did you mean 'energy_intensity'"]),
    ({"indicator": "max_of:energy_intensity"}, ["unknown form", "change_vs_<year>"]),
    ({"unit": "%"}, ["unit = '%'", "does not fit", "allowed tce10k/CNY100m"]),
    ({"indicator": "renewable_capacity", "unit": "kW"}, ["unit = 'kW'", "10k kW, GW, MW"]),
    ({"indicator": "change_vs_2020:energy_intensity", "unit": "%", "base_year": 2015},
     ["base_year = 2015", "compares with 2020"]),
    ({"indicator": "change_vs_2030:energy_intensity", "unit": "%"},
     ["base_year = 2030 must be before year = 2025"]),
    ({"value": "big"}, ["value = 'big'", "finite number"]),
    ({"id": "Energy Target"}, ["id = 'Energy Target'", "lower-case"]),
    ({"set": ""}, ["set = ''", "non-empty string"]),
])
def test_bad_target_names_file_target_key_value_allowed(kw, expected):
    with pytest.raises(T.TargetError) as info:
        T.from_text(target(**kw), "test.toml")
    for part in expected:
        assert part in str(info.value)


def test_missing_key_and_duplicate_id():
    text = target().replace('source = "test"\n', "")
    with pytest.raises(T.TargetError, match="missing source"):
        T.from_text(text, "test.toml")
    with pytest.raises(T.TargetError, match="id = 't' is used twice"):
        T.from_text(target() + target(), "test.toml")


def test_file_level_errors(tmp_path):
    with pytest.raises(T.TargetError, match="unknown top-level key 'targets'.*did you mean"):
        T.from_text("[[targets]]\nid = 'x'\n", "f.toml")
    with pytest.raises(T.TargetError, match=r"f\.toml: no \[\[target\]\] tables"):
        T.from_text("title = 'x'\n", "f.toml")
    with pytest.raises(T.TargetError, match="not valid TOML"):
        T.from_text("[[target]\n", "f.toml")
    with pytest.raises(T.TargetError, match="not found"):
        T.load(tmp_path / "none.toml")


def test_sets_select_and_unknown_set_suggests():
    text = target(id="a") + target(id="b", set="seed_2021") + target(id="c", set="fyp14_energy")
    ts = T.from_text(text, "x.toml")
    assert [t.id for t in T.select(ts, ["seed_2021"])] == ["a", "b"]
    assert [t.id for t in T.select(ts, None)] == ["a", "b", "c"]
    with pytest.raises(T.TargetError, match="unknown target set 'seed'.*did you mean 'seed_2021'"):
        T.select(ts, ["seed"])


# ---------------------------------------------------------------- the shipped file
BRIEF_TARGETS = {
    "energy_intensity_2025", "coal_consumption_2025", "co2_intensity_2025",
    "non_fossil_share_2025", "renewable_capacity_2025_seed", "renewable_capacity_2025_fyp14",
    "industrial_intensity_3yr", "industrial_energy_saving_3yr", "nev_delivery_share_2025",
    "urban_gas_penetration_2025", "rural_gas_penetration_2025", "prefab_share_2025",
    "solid_waste_utilisation_2025", "co2_peak_by_2030", "co2_declining_2035",
}


def test_shipped_file_covers_the_brief_and_evaluates(model):
    ts = T.load()
    assert {t.id for t in ts} >= BRIEF_TARGETS
    assert T.sets(ts) == ["fyp14_energy", "seed_2021"]
    run = model.run(**scenarios.load("plan_2021").run_kwargs(),
                    return_columns=T.required_variables(ts))
    out = T.evaluate(run, ts)
    assert out["value"].notna().all()
    by_id = out.set_index("id")
    assert by_id.loc["renewable_capacity_2025_seed", "met"]
    assert not by_id.loc["renewable_capacity_2025_fyp14", "met"]
    # The margins have the stated sign convention.
    signed = np.where(out["comparison"].isin(["<=", "<"]), out["target"] - out["value"],
                      out["value"] - out["target"])
    np.testing.assert_allclose(out["margin"], signed)


def test_evaluate_reads_the_default_file(frame, model):
    run = model.run(return_columns=T.required_variables(T.load()))
    assert len(T.evaluate(run)) == len(T.load())
    assert len(T.evaluate(run, T.DEFAULT_TARGETS, sets=["seed_2021"])) == len(T.load()) - 4


def test_headline(frame):
    head = T.headline(frame)
    assert head["peak_year"] == 2028
    assert head["peak_value"] == 80.0
    assert not head["still_rising"]
    assert head["cumulative_2021_2035"] == pytest.approx(frame.loc[2021:2035, "co2_emissions"].sum())


# ---------------------------------------------------------------- command
def test_targets_command(capsys):
    assert main(["targets", "plan_2021", "--set", "seed_2021"]) == 0
    out = capsys.readouterr().out
    assert "MET     Renewable capacity 2025 (seed plan, 1 GW)" in out
    assert "2.5 GW" not in out
    assert "CO2 peak: " in out
    assert "Cumulative CO2 2021-2035: " in out


FLAG_TARGETS = "".join([
    target(id="easy", indicator="renewable_capacity", comparison=">=", value=1, unit="MW",
           label_en="Renewables at least 1 MW", label_zh="可再生能源至少1兆瓦"),
    target(id="hard", indicator="renewable_capacity", comparison=">=", value=100000, unit="MW",
           label_en="Renewables at least 100 GW", label_zh="可再生能源至少1亿千瓦"),
    target(id="pct", indicator="change_vs_2020:energy_intensity", base_year=2020,
           comparison="<=", value=-99, unit="%", label_en="Intensity down 99 pct",
           label_zh="能耗强度下降99%"),
])


def test_targets_command_margins_in_points_and_baseline_flag(capsys, tmp_path):
    file = tmp_path / "t.toml"
    file.write_text(FLAG_TARGETS, encoding="utf-8")
    out = tmp_path / "t.csv"
    assert main(["targets", "plan_2021", "--file", str(file), "--csv", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = pd.read_csv(out, encoding="utf-8-sig").set_index("id")
    assert table["met_in_baseline"].to_dict() == {"easy": True, "hard": False, "pct": False}
    line = {i: next(v for v in lines if f" {table.loc[i, 'label_en']}  " in v) for i in table.index}
    assert line["easy"].endswith("(already met in baseline)")
    assert "already met" not in line["hard"]
    assert f"margin {table.loc['pct', 'margin']:+.2f} pp" in line["pct"]
    assert table.loc["pct", "margin_unit"] == "pp"
    assert "margin -" in line["hard"]
    # the margin ends in its unit, then the chance of meeting the target (greenpath/runners/chance.py)
    assert re.search(r"margin -[\d,.]+ MW  chance +\d+ %$", line["hard"].rstrip()), line["hard"]


def test_margin_text_never_says_missed_with_plus_zero():
    from greenpath.cli.commands.targets import _fmt_margin

    # a value equal to a strict target (margin exactly 0, missed) is said in words
    assert _fmt_margin(0.0, "%", False, "<", "en") == "0 (equal to the target, which asks for <)"
    assert _fmt_margin(0.0, "%", False, ">", "zh") == "0(恰等于目标值,目标要求 >)"
    assert _fmt_margin(0.0, "%", True, "<=", "en") == "+0.00 pp"
    # tiny margins keep their sign instead of rounding to +0.00 / -0.00
    assert _fmt_margin(-0.001, "%", False, ">=", "en") == "-0.001 pp"
    assert _fmt_margin(0.004, "MW", True, ">=", "en") == "+0.004 MW"
    assert _fmt_margin(12.345, "%", True, "<=", "zh") == "+12.35 个百分点"


def test_targets_command_in_chinese(tmp_path, capsys):
    file = tmp_path / "t.toml"
    file.write_text(FLAG_TARGETS, encoding="utf-8")
    assert main(["targets", "plan_2021", "--file", str(file), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "个百分点" in out
    assert "(baseline 已达成)" in out
    assert main(["targets", "baseline", "--file", str(file), "--lang", "zh"]) == 0
    assert "已达成)" not in capsys.readouterr().out  # the baseline is its own reference


def test_targets_command_errors(capsys, tmp_path):
    assert main(["targets", "plan_2021", "--set", "seed"]) == 2
    assert "did you mean 'seed_2021'" in capsys.readouterr().err
    bad = tmp_path / "t.toml"
    bad.write_text(target(comparison="=="), encoding="utf-8")
    assert main(["targets", "baseline", "--file", str(bad)]) == 2
    assert "t.toml: target #1 ('t'): comparison = '=='" in capsys.readouterr().err


def test_targets_command_csv_never_overwrites(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["targets", "baseline", "--csv", str(out)]) == 0
    first = out.read_text(encoding="utf-8")
    assert "energy_intensity_2025" in first
    assert main(["targets", "baseline", "--csv", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == first


def test_headline_tells_a_drop_and_rebound_from_a_lasting_decline():
    years = list(range(2015, 2036))
    co2 = [30 + y - 2015 for y in years if y <= 2020]  # rising to 35 in 2020
    co2 += [35 - 2 * (y - 2020) for y in years if 2020 < y <= 2025]  # falls to 25 in 2025
    co2 += [25 + 0.5 * (y - 2025) for y in years if y > 2025]  # rises to 30 by 2035
    head = T.headline(pd.DataFrame({"co2_emissions": co2}, index=years))
    # The 2020 maximum is followed by a rebound: not a peak (issue 13), the headline says
    # so and keeps the maximum, the low and the rebound for the explanation.
    assert (head["max_year"], head["max_value"]) == (2020, 35)
    assert not head["peaked"]
    assert head["still_rising"]
    assert head["peak_year"] == 2035
    assert (head["low_year"], head["low_value"]) == (2025, 25)
    assert head["rebound_pct"] == pytest.approx(20.0)
    steady = [40 - 0.5 * max(0, y - 2020) for y in years]
    head = T.headline(pd.DataFrame({"co2_emissions": steady}, index=years))
    assert head["low_year"] == 2035
    assert head["rebound_pct"] == 0.0
    assert head["peaked"]
    assert head["peak_year"] == 2020
