"""`greenpath table`, the run outputs (long CSV with units, key/value metadata) and IAMC."""

from __future__ import annotations

import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.engines.pysd_engine import JiaozuoModel
from greenpath.outputs import iamc
from greenpath.scenarios import scenario as sc


@pytest.fixture(scope="module")
def direct():
    """Results of baseline and plan_2021, run directly through the API."""
    model = JiaozuoModel()
    return {name: model.run(**sc.load(name).run_kwargs()).frame
            for name in ("baseline", "plan_2021", "ambitious")}


def test_table_values_and_differences_match_direct_runs(tmp_path, direct, capsys):
    out = tmp_path / "cmp.xlsx"
    assert main(["table", "plan_2021", "ambitious", "--vs", "baseline", "--variables",
                 "co2_emissions", "gdp", "--years", "2025", "2035", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CO2 emissions" in printed
    assert "plan_2021" in printed
    sheets = pd.read_excel(out, sheet_name=None, engine="openpyxl")
    assert set(sheets) == {"table", "metadata"}
    table = sheets["table"]
    # the reference is run too and comes first
    assert table["scenario"].tolist() == ["baseline", "plan_2021", "ambitious"] * 2
    assert table["unit"].iloc[0].endswith("(MtCO2/Year)")
    for _, row in table.iterrows():
        for year in (2025, 2035):
            value = direct[row["scenario"]].loc[year, row["variable"]]
            ref = direct["baseline"].loc[year, row["variable"]]
            assert row[str(year)] == pytest.approx(value, rel=1e-9)
            assert row[f"{year} vs baseline"] == pytest.approx(value - ref, rel=1e-9, abs=1e-12)
            assert row[f"{year} vs baseline (%)"] == pytest.approx(100 * (value / ref - 1),
                                                                   rel=1e-9, abs=1e-12)
    # the plan cuts CO2; its GDP may end a little above the baseline's (eliminated
    # energy-intensive output is replaced by other manufacturing, which grows faster than
    # the energy-intensive branches' own paths after 2022)
    plan_co2 = (table["scenario"] == "plan_2021") & (table["variable"] == "co2_emissions")
    assert (table.loc[plan_co2, "2035 vs baseline"] < 0).all()
    meta = dict(zip(sheets["metadata"]["key"], sheets["metadata"]["value"], strict=True))
    assert meta["reference"] == "baseline"
    assert meta["scenario_files.plan_2021"] == "plan_2021.toml"
    assert meta["scenario_chains.plan_2021"] == "baseline > plan_2021"
    assert len(meta["model_sha256"]) == 64


def test_table_in_chinese_as_csv_with_bom(tmp_path, direct):
    out = tmp_path / "cmp.csv"
    assert main(["table", "baseline", "plan_2021", "--lang", "zh", "--variables",
                 "co2_emissions", "--years", "2030", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the BOM
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns) == ["变量", "指标", "单位", "情景", "情景名称", "2030"]
    assert table["指标"].tolist() == ["二氧化碳排放"] * 2
    assert table["情景名称"].tolist() == [sc.load("baseline").title_zh, sc.load("plan_2021").title_zh]
    assert table["2030"].tolist() == pytest.approx(
        [direct["baseline"].loc[2030, "co2_emissions"], direct["plan_2021"].loc[2030, "co2_emissions"]],
        rel=1e-11)


def test_table_writes_iamc_and_refuses_to_overwrite(tmp_path, direct, capsys):
    path = tmp_path / "cmp.iamc.csv"
    argv = ["table", "baseline", "ambitious", "--variables", "co2_emissions",
            "renewable_capacity", "--years", "2025", "2030", "--iamc", str(path)]
    assert main(argv) == 0
    data = pd.read_csv(path)
    assert list(data.columns) == [*iamc.INDEX, "2025", "2030"]
    assert set(data["Region"]) == {"Jiaozuo"}
    assert data["Model"].iloc[0].startswith("greenpath ")
    row = data[(data["Scenario"] == "ambitious") & (data["Variable"] == "renewable_capacity")]
    assert row["Unit"].item() == "MW"
    assert row["2030"].item() == pytest.approx(direct["ambitious"].loc[2030, "renewable_capacity"])
    before = path.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert main([*argv, "--force"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["table", "baseline", "--years", "2040"], "years [2040] outside the simulated years"),
    (["table", "baseline", "--variables", "co2_emision"], "did you mean 'co2_emissions'"),
    (["table", "baseline", "--out", "x.txt"], "must end in .xlsx or .csv"),
    (["table", "basline"], "did you mean 'baseline'"),
    (["table", "baseline", "baseline"], "given twice"),
])
def test_table_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_iamc_from_long_table_names_runs_and_refuses_duplicates(tmp_path):
    long = pd.DataFrame({
        "scenario": ["mc"] * 4, "run_id": [0, 0, 1, 1], "variable": ["co2_emissions"] * 4,
        "year": [2025, 2030] * 2, "value": [1.0, 2.0, 3.0, 4.0], "unit": ["MtCO2/Year"] * 4,
    })
    table = iamc.long_to_iamc(long, model="m")
    assert table["Scenario"].tolist() == ["mc|run 0", "mc|run 1"]
    assert table[2030].tolist() == [2.0, 4.0]
    path = iamc.write_iamc(table, tmp_path / "mc.xlsx")
    back = pd.read_excel(path, sheet_name="data", engine="openpyxl")
    assert list(back.columns) == [*iamc.INDEX, 2025, 2030]
    with pytest.raises(iamc.IamcError, match="appears twice"):
        iamc.write_iamc(pd.concat([table, table]), tmp_path / "twice.csv")
    assert not (tmp_path / "twice.csv").exists()
    with pytest.raises(iamc.IamcError, match="without a unit"):
        iamc.frame_to_iamc({"a": pd.DataFrame({"x": [1.0]}, index=[2025])}, {})
    with pytest.raises(iamc.IamcError, match="not '.txt'"):
        iamc.write_iamc(table, tmp_path / "mc.txt")


def test_run_writes_long_csv_with_units_iamc_and_key_value_metadata(tmp_path, direct):
    assert main(["run", "plan_2021", "--out", str(tmp_path), "--columns", "gdp",
                 "co2_emissions"]) == 0
    long = pd.read_csv(tmp_path / "plan_2021.csv")
    assert list(long.columns) == ["scenario", "variable", "unit", "year", "value"]
    co2 = long[long["variable"] == "co2_emissions"].set_index("year")
    assert set(co2["unit"]) == {"MtCO2/Year"}
    assert co2["value"].to_numpy() == pytest.approx(
        direct["plan_2021"]["co2_emissions"].to_numpy(), rel=1e-11)
    data = pd.read_csv(tmp_path / "plan_2021.iamc.csv")
    assert data[iamc.INDEX[1:]].values.tolist() == [
        ["plan_2021", "Jiaozuo", "gdp", "CNY100m/Year"],
        ["plan_2021", "Jiaozuo", "co2_emissions", "MtCO2/Year"]]
    assert [int(c) for c in data.columns[5:]] == list(range(2005, 2036))
    meta = pd.read_excel(tmp_path / "plan_2021.xlsx", sheet_name="metadata", engine="openpyxl")
    kv = dict(zip(meta["key"], meta["value"], strict=True))
    assert kv["scenario"] == "plan_2021"
    assert kv["software.pysd"] == "3.14.3"
    assert float(kv["effective_params.policy_start_year"]) == 2021


def test_default_table_shows_both_co2_measures(tmp_path, direct, capsys):
    out = tmp_path / "default.xlsx"
    assert main(["table", "plan_2021", "--vs", "baseline", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CO2 emissions" in printed
    assert "CO2 including imported electricity" in printed
    table = pd.read_excel(out, sheet_name="table", engine="openpyxl")
    rows = table[table["scenario"] == "plan_2021"].set_index("variable")
    for variable in ("co2_emissions", "co2_including_imports"):
        for year in (2025, 2030, 2035):
            assert rows.loc[variable, str(year)] == pytest.approx(
                direct["plan_2021"].loc[year, variable], rel=1e-9)
    # the two measures differ by the CO2 of net imported electricity
    assert rows.loc["co2_including_imports", "2030"] != pytest.approx(
        rows.loc["co2_emissions", "2030"], rel=1e-3)
