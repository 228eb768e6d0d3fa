"""Tests for the shipped calibration history and its validating loader."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pandas as pd
import pytest

from greenpath.calibration.history import (
    COLUMNS,
    DEFAULT_HISTORY_PATH,
    GROWTH_MAX_PCT,
    GROWTH_MIN_PCT,
    KNOWN_VARIABLES,
    VARIABLES,
    HistoryError,
    load_history,
    series,
)

HEADER = ",".join(COLUMNS)
GDP_UNIT = KNOWN_VARIABLES["gdp_current_100m_yuan"]
# The shared facts file sits beside the repository (checkout/../shared/data); the
# fidelity test is skipped where it is absent.
SHARED_HISTORY = Path(__file__).resolve().parents[3] / "shared" / "data" / "jiaozuo_history.csv"


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return load_history()


# --------------------------------------------------------------------------- shipped data


def test_default_path_is_the_packaged_file() -> None:
    assert DEFAULT_HISTORY_PATH.name == "history.csv"
    assert DEFAULT_HISTORY_PATH.parent.name == "data"
    assert DEFAULT_HISTORY_PATH.is_file()


def test_every_shipped_row_has_source_and_quote_and_loads(shipped: pd.DataFrame) -> None:
    raw = _raw_rows(DEFAULT_HISTORY_PATH)
    assert len(raw) > 200
    for i, row in enumerate(raw, start=2):
        assert row["source"].strip(), f"line {i}: empty source"
        assert row["quote"].strip(), f"line {i}: empty quote"
    # the loader keeps every row, in order, with its line number
    assert len(shipped) == len(raw)
    assert shipped["line"].tolist() == list(range(2, len(raw) + 2))
    assert shipped["variable"].tolist() == [r["variable"] for r in raw]


def test_declared_variables_and_file_agree(shipped: pd.DataFrame) -> None:
    # every declared variable is shipped, and every shipped one is declared
    assert set(shipped["variable"]) == set(KNOWN_VARIABLES)
    assert {name: spec.unit for name, spec in VARIABLES.items()} == KNOWN_VARIABLES


def test_derived_rows_say_how(shipped: pd.DataFrame) -> None:
    derived = shipped[shipped["variable"] == "gdp_real_2020prices_100m_yuan"]
    assert len(derived) == 3
    assert all(note.startswith("DERIVED:") for note in derived["note"])


def test_real_gdp_chain_matches_recorded_growth(shipped: pd.DataFrame) -> None:
    nominal = series(shipped, "gdp_current_100m_yuan")
    growth = series(shipped, "gdp_real_growth_pct")
    real = series(shipped, "gdp_real_2020prices_100m_yuan")
    # the chain can only run over years whose growth rate is recorded; backwards from 2020
    # it would need the 2020 growth rate itself
    expected_years = [2020]
    while expected_years[-1] + 1 in growth.index:
        expected_years.append(expected_years[-1] + 1)
    if 2020 in growth.index:  # pragma: no cover - the 2020 rate is not recorded today
        pytest.fail("a 2020 real growth rate now exists: extend the real GDP back-cast")
    assert real.index.tolist() == expected_years
    level = nominal[2020]
    assert real[2020] == pytest.approx(level)
    for year in expected_years[1:]:
        level *= 1 + growth[year] / 100
        assert real[year] == pytest.approx(level, abs=0.005)  # stored to 2 dp
    # worked by hand: 2123.60 * 1.044 = 2217.0384; * 1.033 = 2290.2007
    assert real[2021] == pytest.approx(2217.04)
    assert real[2022] == pytest.approx(2290.20)


def test_sectors_add_up_to_gdp(shipped: pd.DataFrame) -> None:
    gdp = series(shipped, "gdp_current_100m_yuan")
    total = (
        series(shipped, "primary_va_100m_yuan")
        + series(shipped, "secondary_va_100m_yuan")
        + series(shipped, "tertiary_va_100m_yuan")
    )
    both = pd.concat([gdp, total], axis=1, join="inner").dropna()
    assert len(both) >= 18
    assert (both.iloc[:, 0] - both.iloc[:, 1]).abs().max() <= 0.02  # rounding to 2 dp


def test_series_uses_preferred_rows_only(shipped: pd.DataFrame) -> None:
    gdp = series(shipped, "gdp_current_100m_yuan")
    assert gdp.name == "gdp_current_100m_yuan"
    assert gdp.index.name == "year"
    assert gdp.index.is_monotonic_increasing
    assert gdp.index.is_unique
    assert gdp[2008] == pytest.approx(1031.59)  # CSMAR, not the 1031.6 cross-check
    assert gdp[2016] == pytest.approx(2095.08)  # CSMAR, not the 2082.6 cross-check
    assert 2082.6 in shipped.loc[shipped["variable"] == "gdp_current_100m_yuan", "value"].values


def test_series_unknown_variable_suggests(shipped: pd.DataFrame) -> None:
    with pytest.raises(HistoryError, match="did you mean 'co2_emissions_mt'"):
        series(shipped, "co2_emission_mt")


def test_renewable_targets_are_both_kept(shipped: pd.DataFrame) -> None:
    seed = series(shipped, "target_renewable_capacity_seed_plan_10k_kw")
    energy = series(shipped, "target_renewable_capacity_energy_plan_10k_kw")
    assert seed[2025] == 100
    assert energy[2025] == 250


@pytest.mark.skipif(not SHARED_HISTORY.is_file(), reason="shared data folder not present")
def test_copied_rows_are_verbatim_from_shared_file() -> None:
    shared = _raw_rows(SHARED_HISTORY)
    index = {(r["year"], r["value"], r["source"], r["quote"]) for r in shared}
    for i, row in enumerate(_raw_rows(DEFAULT_HISTORY_PATH), start=2):
        if row["source"].startswith("DERIVED in this repository"):
            continue
        key = (row["year"], row["value"], row["source"], row["quote"])
        assert key in index, f"line {i}: {row['variable']} {row['year']} not found verbatim"


# --------------------------------------------------------------------------- malformed files

GOOD_1 = f'2020,gdp_current_100m_yuan,2123.6,"{GDP_UNIT}",src A,quote A,,1'
# a valid row whose quote spans two physical lines (lines 3-4 of the test file)
GOOD_2 = '2015,co2_emissions_mt,30.111,Mt CO2,CEADs,"first line\nsecond line",,1'


def _write(tmp_path: Path, bad_row: str, name: str = "bad_history.csv") -> Path:
    """Header (line 1), a good row (2), a two-line good row (3-4), the bad row (5)."""
    path = tmp_path / name
    path.write_text("\n".join([HEADER, GOOD_1, GOOD_2, bad_row]) + "\n", encoding="utf-8")
    return path


BAD_LINE = 5


@pytest.mark.parametrize(
    ("bad_row", "bad_value", "hint"),
    [
        pytest.param(
            f'2021,gdp_curent_100m_yuan,2136.84,"{GDP_UNIT}",s,q,,1',
            "'gdp_curent_100m_yuan'",
            "did you mean 'gdp_current_100m_yuan'",
            id="unknown-variable",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,abc,"{GDP_UNIT}",s,q,,1',
            "'abc'",
            "a finite number",
            id="non-numeric",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,,"{GDP_UNIT}",s,q,,1',
            "''",
            "a finite number",
            id="empty-value",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,nan,"{GDP_UNIT}",s,q,,1',
            "'nan'",
            "a finite number",
            id="nan-value",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,2136.84,"{GDP_UNIT}",,q,,1',
            "''",
            "non-empty source",
            id="missing-source",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,2136.84,"{GDP_UNIT}",s,"  ",,1',
            "'  '",
            "non-empty quote",
            id="blank-quote",
        ),
        pytest.param(
            "2014,co2_emissions_mt,-26.4,Mt CO2,s,q,,1",
            "'-26.4'",
            ">= 0",
            id="negative-level",
        ),
        pytest.param(
            '2020,coal_power_capacity_mw_gem_derived,-1,"MW (year-end, units >=30 MW)",s,q,,1',
            "'-1'",
            ">= 0",
            id="negative-capacity",
        ),
        pytest.param(
            "2021,urbanization_rate_pct,163.73,%,s,q,,1",
            "'163.73'",
            "between 0 and 100",
            id="share-over-100",
        ),
        pytest.param(
            "2021,urbanization_rate_pct,-0.5,%,s,q,,1",
            "'-0.5'",
            "between 0 and 100",
            id="share-below-0",
        ),
        pytest.param(
            "2025,target_coal_consumption_change_vs2020_pct,-120,% vs 2020,s,q,,1",
            "'-120'",
            ">= -100",
            id="change-below-minus-100",
        ),
        pytest.param(
            "2021,gdp_real_growth_pct,104.4,% y/y,s,q,,1",
            "'104.4'",
            "between -30 and 50",
            id="growth-index-instead-of-rate",
        ),
        pytest.param(
            "2021,secondary_va_growth_pct,-35,% y/y,s,q,,1",
            "'-35'",
            "real growth rate in % per year",
            id="growth-below-minus-30",
        ),
        pytest.param(
            f'1989,gdp_current_100m_yuan,100,"{GDP_UNIT}",s,q,,1',
            "'1989'",
            "1990-2100",
            id="year-too-early",
        ),
        pytest.param(
            f'2101,gdp_current_100m_yuan,100,"{GDP_UNIT}",s,q,,1',
            "'2101'",
            "1990-2100",
            id="year-too-late",
        ),
        pytest.param(
            f'twenty,gdp_current_100m_yuan,100,"{GDP_UNIT}",s,q,,1',
            "'twenty'",
            "integer year",
            id="year-not-integer",
        ),
        pytest.param(
            "2021,gdp_current_100m_yuan,2136.84,billion yuan,s,q,,1",
            "'billion yuan'",
            repr(GDP_UNIT),
            id="unit-mismatch",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,2136.84,"{GDP_UNIT}",s,q,,yes',
            "'yes'",
            "0 or 1",
            id="preferred-not-0-1",
        ),
        pytest.param(
            f'2021,gdp_current_100m_yuan,2136.84,"{GDP_UNIT}",s,q,1',
            "s,q,1",
            "8 comma-separated fields",
            id="missing-field",
        ),
        pytest.param(
            f'2020,gdp_current_100m_yuan,2123.60,"{GDP_UNIT}",src B,quote B,,1',
            "'1,1'",
            "exactly one row with preferred=1",
            id="duplicate-both-preferred",
        ),
        pytest.param(
            f'2020,gdp_current_100m_yuan,2123.60,"{GDP_UNIT}",src B,quote B,,2',
            "'2'",
            "0 or 1",
            id="preferred-2",
        ),
    ],
)
def test_malformed_row_names_file_line_and_value(
    tmp_path: Path, bad_row: str, bad_value: str, hint: str
) -> None:
    path = _write(tmp_path, bad_row)
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert "bad_history.csv" in message
    assert f"line {BAD_LINE}:" in message
    assert bad_value in message
    assert hint in message


def test_duplicate_without_preferred_row(tmp_path: Path) -> None:
    # both 2020 GDP rows marked 0: lines 2 and 5
    path = tmp_path / "no_preferred.csv"
    rows = [
        HEADER,
        f'2020,gdp_current_100m_yuan,2123.6,"{GDP_UNIT}",src A,quote A,,0',
        GOOD_2,
        f'2020,gdp_current_100m_yuan,2123.60,"{GDP_UNIT}",src B,quote B,,0',
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert "no_preferred.csv" in message
    assert "line 5:" in message
    assert "lines 2, 5" in message
    assert "'0,0'" in message
    assert "gdp_current_100m_yuan" in message


def test_duplicate_with_one_preferred_is_fine(tmp_path: Path) -> None:
    path = _write(
        tmp_path, f'2020,gdp_current_100m_yuan,2123.60,"{GDP_UNIT}",src B,quote B,x-check,0'
    )
    df = load_history(path)
    assert len(df) == 3
    assert series(df, "gdp_current_100m_yuan").to_dict() == {2020: 2123.6}
    assert df["line"].tolist() == [2, 3, 5]


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "bad_header.csv"
    path.write_text("year,variable,value,unit,source,quote,preferred\n", encoding="utf-8")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert "bad_header.csv" in message
    assert "line 1:" in message
    assert "'year,variable,value,unit,source,quote,preferred'" in message


def test_history_error_is_value_error() -> None:
    assert issubclass(HistoryError, ValueError)


def test_next_year_row_loads_without_code_change(tmp_path: Path) -> None:
    copy = tmp_path / "history.csv"
    shutil.copyfile(DEFAULT_HISTORY_PATH, copy)
    with copy.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(
            [
                2023,
                "gdp_current_100m_yuan",
                "2300.00",
                GDP_UNIT,
                "test source: a future statistical bulletin",
                "test quote: 全年全市地区生产总值 ...",
                "synthetic row written by the test suite only",
                1,
            ]
        )
    df = load_history(copy)
    gdp = series(df, "gdp_current_100m_yuan")
    assert gdp.index.max() == 2023
    assert gdp[2023] == pytest.approx(2300.0)
    assert len(df) == len(load_history()) + 1


def test_readme_documents_every_variable() -> None:
    readme = (DEFAULT_HISTORY_PATH.parent / "README.md").read_text(encoding="utf-8")
    missing = [name for name in KNOWN_VARIABLES if f"`{name}`" not in readme]
    assert not missing, f"calibration/data/README.md does not describe: {missing}"


# --------------------------------------------------------------------------- cross-row checks


def _gdp_file(tmp_path: Path, gdp: str, primary: str, secondary: str, tertiary: str) -> Path:
    """GDP (line 2) and the three sectors (lines 3-5) of one year; values as strings."""
    rows = [HEADER, f'2019,gdp_current_100m_yuan,{gdp},"{GDP_UNIT}",s,q,,1']
    for name, value in (("primary", primary), ("secondary", secondary), ("tertiary", tertiary)):
        rows.append(f'2019,{name}_va_100m_yuan,{value},"{GDP_UNIT}",s,q,,1')
    path = tmp_path / "sectors.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_sector_above_gdp_names_both_rows(tmp_path: Path) -> None:
    path = _gdp_file(tmp_path, "2761.11", "150.00", "2800.00", "1130.94")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert "sectors.csv: lines 2, 4:" in message
    assert "secondary_va_100m_yuan 2019 exceeds gdp_current_100m_yuan 2019" in message
    assert "2800.00 > 2761.11" in message
    assert "at most GDP" in message


def test_sectors_not_adding_up_to_gdp_name_the_rows_and_the_tolerance(tmp_path: Path) -> None:
    # the shipped 2019 row reads 2761.11 = 150.00 + 1480.18 + 1130.94 (sum 2761.12);
    # here tertiary is mistyped 1103.94: the sum falls 27 short
    path = _gdp_file(tmp_path, "2761.11", "150.00", "1480.18", "1103.94")
    with pytest.raises(HistoryError) as info:
        load_history(path)
    message = str(info.value)
    assert "sectors.csv: lines 2, 3, 4, 5:" in message
    assert "150.00 + 1480.18 + 1103.94 = 2734.12 against GDP 2761.11 (difference -26.99)" in message
    assert "within 0.02 of GDP" in message
    assert "rounding of the four values as written" in message


def test_sector_sum_tolerance_is_the_rounding_of_the_values_as_written(tmp_path: Path) -> None:
    # four values to 0.01: at most 4 x 0.005 = 0.02 apart from rounding alone
    assert len(load_history(_gdp_file(tmp_path, "2761.11", "150.00", "1480.18", "1130.95"))) == 4  # +0.02
    with pytest.raises(HistoryError, match="within 0.02 of GDP"):
        load_history(_gdp_file(tmp_path, "2761.11", "150.00", "1480.18", "1130.96"))  # +0.03
    # values written to one decimal carry ten times the rounding (4 x 0.05 = 0.2)
    assert len(load_history(_gdp_file(tmp_path, "2761.1", "150.0", "1480.2", "1131.1"))) == 4  # +0.2
    with pytest.raises(HistoryError, match="within 0.2 of GDP"):
        load_history(_gdp_file(tmp_path, "2761.1", "150.0", "1480.2", "1131.2"))  # +0.3


def test_cross_checks_are_not_summed_with_preferred_rows(tmp_path: Path) -> None:
    path = _gdp_file(tmp_path, "2761.11", "150.00", "1480.18", "1130.94")
    with path.open("a", encoding="utf-8") as handle:  # a cross-check GDP that disagrees: fine
        handle.write(f'2019,gdp_current_100m_yuan,2700.00,"{GDP_UNIT}",other,q,x-check,0\n')
    assert len(load_history(path)) == 5


def test_shipped_growth_rates_lie_in_the_plausible_range(shipped: pd.DataFrame) -> None:
    growth = [name for name, spec in VARIABLES.items() if spec.kind == "growth"]
    assert "gdp_real_growth_pct" in growth
    values = shipped.loc[shipped["variable"].isin(growth), "value"]
    assert values.between(GROWTH_MIN_PCT, GROWTH_MAX_PCT).all()
