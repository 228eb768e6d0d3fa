"""The `greenpath` command line: outputs, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from greenpath.cli import main


def test_run_writes_csv_xlsx_and_metadata(tmp_path, capsys):
    assert main(["run", "baseline", "--out", str(tmp_path)]) == 0
    long = pd.read_csv(tmp_path / "baseline.csv")
    frame = long.pivot(index="year", columns="variable", values="value")
    assert frame.index.min() == 2005
    assert frame.index.max() == 2035
    assert "co2_emissions" in frame.columns
    meta = json.loads((tmp_path / "baseline.meta.json").read_text(encoding="utf-8"))
    assert len(meta["model_sha256"]) == 64
    assert meta["software"]["pysd"] == "3.14.3"
    assert meta["scenario"] == "baseline"
    assert meta["run_seconds"] > 0
    xl = pd.read_excel(tmp_path / "baseline.xlsx", sheet_name=None)
    assert set(xl) == {"results", "units", "metadata"}
    assert list(xl["metadata"].columns) == ["key", "value"]
    assert xl["results"]["co2_emissions"].tolist() == pytest.approx(frame["co2_emissions"].tolist(), rel=1e-5)
    assert "co2_peak_year" in capsys.readouterr().out


def test_outputs_are_readable_by_others_and_keep_full_precision(tmp_path):
    """Results are shared files (umask permissions, not mkstemp's 0600) with no rounding."""
    import os
    import stat

    from greenpath.engines.pysd_engine import JiaozuoModel

    old = os.umask(0o022)
    try:
        assert main(["run", "baseline", "--out", str(tmp_path), "--columns", "co2_emissions"]) == 0
    finally:
        os.umask(old)
    for name in ("baseline.csv", "baseline.xlsx", "baseline.iamc.csv", "baseline.meta.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    written = pd.read_csv(tmp_path / "baseline.csv").set_index("year")["value"]
    exact = JiaozuoModel().run(return_columns=["co2_emissions"]).frame["co2_emissions"]
    assert written.to_numpy() == pytest.approx(exact.to_numpy(), rel=1e-11)


def test_run_refuses_to_overwrite(tmp_path, capsys):
    assert main(["run", "baseline", "--out", str(tmp_path), "--columns", "gdp"]) == 0
    before = (tmp_path / "baseline.csv").read_bytes()
    assert main(["run", "baseline", "--out", str(tmp_path)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "baseline.csv").read_bytes() == before
    assert main(["run", "baseline", "--out", str(tmp_path), "--force"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "basline", "--out", "x"], "did you mean 'baseline'"),
    (["run", "missing/file.toml", "--out", "x"], "not found"),
    (["run", "baseline", "--out", "x", "--columns", "co2_emision"], "unknown variable 'co2_emision'"),
    (["run", "baseline", "--out", "x", "--final-time", "2050"], "final_time <= 2035"),
    (["run", "baseline", "--out", "/dev/null/x"], "/dev/null/x"),
])
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_bad_scenario_file_names_file_key_and_range(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "bad"\n[levers]\nwind_build_rate = 9000\n', encoding="utf-8")
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err
    assert "wind_build_rate" in err
    assert "9000" in err
    assert "0 to 500" in err


def test_vars_lists_units_and_levers(capsys):
    assert main(["vars", "--kind", "lever"]) == 0
    out = capsys.readouterr().out.splitlines()
    from greenpath.model.registry import effective_defaults

    wind = effective_defaults()["wind_build_rate"]
    assert any(line.startswith(f"wind_build_rate\tlever\tMW/Year [0..500]\tbaseline {wind:g}\t")
               for line in out)
    assert all("\tlever\t" in line and "\tbaseline " in line for line in out)


def test_show_lists_resolved_levers_with_their_source_file(tmp_path, capsys):
    kid = tmp_path / "kid.toml"
    kid.write_text('[scenario]\nname = "kid"\nextends = "plan_2021"\n[levers]\n'
                   'wind_build_rate = { from = 2023, value = 250 }\n', encoding="utf-8")
    out_csv = tmp_path / "kid.csv"
    assert main(["show", str(kid), "--csv", str(out_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  chain: baseline (baseline.toml) > plan_2021 (plan_2021.toml)")
    rows = {line.split()[0]: line for line in lines[3:-1]}
    assert "kid.toml" in rows["wind_build_rate"]
    assert "{ 2022 = " in rows["wind_build_rate"]
    assert "2023 = 250 }" in rows["wind_build_rate"]
    assert "plan_2021.toml" in rows["rail_freight_share_target"]
    table = pd.read_csv(out_csv, encoding="utf-8-sig").set_index("name")
    assert table.loc["rail_freight_share_target", "unit"] == "Dmnl"
    assert table.loc["wind_build_rate", "source"] == "kid.toml"
    assert set(table["kind"]) == {"lever"}
    assert main(["show", str(kid), "--all"]) == 0
    everything = capsys.readouterr().out
    assert "calibration/calibrated.toml" in everything
    assert "model/parameters.csv" in everything


def test_console_script_exit_status():
    proc = subprocess.run([sys.executable, "-m", "greenpath.cli", "run", "nope", "--out", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("greenpath run: error: scenario 'nope' not found")
