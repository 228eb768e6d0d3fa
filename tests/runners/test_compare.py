"""Version comparison (`greenpath compare`) and the reference results of the shipped scenarios."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.model import indicators
from greenpath.runners import compare as cmp
from greenpath.runners.versions import ModelVersion
from greenpath.scenarios import scenario as scenarios

FILES = ("model/jiaozuo.mdl", "model/parameters.csv", "calibration/calibrated.toml")


@pytest.fixture(scope="module")
def current() -> ModelVersion:
    return ModelVersion.current()


def copy_model(current: ModelVersion, root: Path) -> Path:
    """Copy the current model's three files under ``root`` (a version folder)."""
    sources = {"model/jiaozuo.mdl": current.mdl_path, "model/parameters.csv": current.registry_path,
               "calibration/calibrated.toml": current.calibration_path}
    for rel, src in sources.items():
        if src is None:
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
    return root


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``path`` (fails if it is not there exactly once)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_current_results_match_the_committed_reference(current):
    """CI gate: a change that moves any reference output fails here unless model/reference/ is updated with it.

    Regenerate on purpose with `greenpath compare --update-reference` (model/reference/README.md).
    """
    result = cmp.compare_reference(current)
    assert set(result.scenarios) == set(scenarios.available())
    assert set(indicators.HEADLINE) <= set(result.variables)
    moved = result.exceeding(cmp.REFERENCE_TOLERANCE)
    assert moved.empty, (
        "outputs moved against model/reference/ (run `greenpath compare --against reference --out DIR` to see "
        "them; if intended, `greenpath compare --update-reference` and commit the files):\n"
        + moved.head(10).to_string()
    )


def test_reference_files_are_what_update_reference_writes(current, tmp_path):
    paths = cmp.write_reference(current, tmp_path)
    assert sorted(p.name for p in paths) == sorted(p.name for p in cmp.REFERENCE_DIR.glob("*.csv"))
    frame = pd.read_csv(paths[0], index_col="year")
    assert list(frame.columns) == cmp.REFERENCE_COLUMNS
    assert frame.index.tolist() == list(range(2005, 2036))


def test_identical_versions_do_not_differ(current, tmp_path):
    copy = ModelVersion(copy_model(current, tmp_path / "copy"), "copy")
    result = cmp.compare(current, copy, sample=3)
    assert result.by_variable()["max_relative_difference"].max() == 0
    assert result.parameter_changes == []
    assert result.equation_changes == []
    assert all(t.variable is None for t in result.traces)


def test_changed_default_is_traced_to_its_first_effect(current, tmp_path):
    """A projection default changed 20% in both the .mdl and the registry: compare names it and where it acts."""
    root = copy_model(current, tmp_path / "slip")
    edit(root / "model/jiaozuo.mdl", "gdp growth 2023 to 2030 = 0.05\n", "gdp growth 2023 to 2030 = 0.06\n")
    row = "gdp_growth_2023_to_2030,gdp growth 2023 to 2030,uncertainty,economy,1/Year,"
    edit(root / "model/parameters.csv", row + "0.05,", row + "0.06,")
    new = ModelVersion(root, "slip")
    result = cmp.compare(current, new, sample=0)
    assert ("gdp_growth_2023_to_2030", 0.05, 0.06) in result.parameter_changes
    assert result.equation_changes == []
    baseline = next(t for t in result.traces if t.scenario == "baseline")
    assert baseline.variable == "real_gdp_growth"
    assert baseline.year == 2022  # saved at 2022, the step whose flows belong to 2023
    gdp = result.by_variable().set_index("variable").loc["gdp"]
    assert gdp["max_relative_difference"] > 0.05  # 8 years of 1 point more growth
    # the classes follow the thresholds
    rel = result.relative("gdp")
    classes = result.classes(rel)
    assert (classes[rel == 0] == 0).all()
    assert (classes[(rel > 0) & (rel < 0.01)] == 1).all()
    assert (classes[rel >= 0.10] == 4).all()
    # nothing moves before 2023
    years = result.a.years
    assert np.all(rel[:, years < 2023] == 0)


def test_report_is_self_contained_with_charts_and_csv(current, tmp_path, capsys):
    root = copy_model(current, tmp_path / "v2")
    edit(root / "model/jiaozuo.mdl", "co2 coal + co2 oil + co2 gas + co2 process - ccus capture",
         "co2 coal + co2 oil + co2 process - ccus capture")
    out = tmp_path / "report"
    assert main(["compare", str(copy_model(current, tmp_path / "v1")), str(root), "--sample", "2",
                 "--thresholds", "0.5", "2", "20", "--out", str(out), "--fail-above", "1"]) == 1
    text = capsys.readouterr().out
    assert "first divergence co2_emissions at" in text
    assert "its equation changed" in text
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert "<svg" in page
    assert "co2_emissions" in page
    assert not re.search(r"(src|href)=['\"]?https?:", page)  # nothing loaded from elsewhere
    assert "#f59a9a" in page  # cells above the third threshold are coloured
    frame = pd.read_csv(out / "compare.csv")
    assert list(frame.columns) == ["scenario", "variable", "year", "a", "b", "difference", "relative_difference",
                                   "class"]
    co2 = frame[(frame.variable == "co2_emissions") & (frame.scenario == "baseline")]
    assert len(co2) == 31
    assert (co2["b"] < co2["a"]).all()
    assert (out / "summary.txt").is_file()
    # the report is never replaced without --force
    assert main(["compare", str(tmp_path / "v1"), str(root), "--sample", "0", "--out", str(out)]) == 2


def test_against_reference_passes_for_the_current_model(capsys):
    assert main(["compare", "--against", "reference"]) == 0
    assert "A = reference" in capsys.readouterr().out


def test_bad_thresholds_and_missing_version_are_errors(capsys):
    assert main(["compare", "--against", "reference", "--thresholds", "5", "1", "10"]) == 2
    assert "thresholds" in capsys.readouterr().err
    assert main(["compare", "no-such-revision-xyz"]) == 2


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / ".git").exists(), reason="not a git checkout")
def test_git_revision_of_the_model(current):
    head = subprocess.run(["git", "-C", str(current.root), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    version = ModelVersion.from_git(head)
    assert version.mdl_path.read_bytes() == subprocess.run(
        ["git", "-C", str(current.root), "show", f"{head}:model/jiaozuo.mdl"], capture_output=True, check=True
    ).stdout
    assert version.registry  # the revision's own registry
