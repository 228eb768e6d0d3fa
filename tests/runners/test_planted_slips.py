"""Planted slips: realistic mistakes in a copy of the model must make `check` or `compare --against reference` fail.

Each slip is planted alone in a temporary copy of the model (the .mdl, the registry and
the calibration); the current model itself passes both (tests/runners/test_checks.py,
tests/runners/test_compare.py).  A slip whose anchor text is gone after a model rewrite fails
with a message saying so: move the slip to the equivalent place in the new model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from greenpath.runners import checks
from greenpath.runners import compare as cmp
from greenpath.runners.versions import ModelVersion

MDL = "model/jiaozuo.mdl"
REGISTRY = "model/parameters.csv"

#: name -> (edits [(file, old, new)], what must catch it: {"check", "compare"})
SLIPS = {
    "unit constant off 10x": (
        [(MDL, "public power coal = public coal generation * public coal heat rate / 100",
          "public power coal = public coal generation * public coal heat rate / 10")],
        {"check", "compare"},
    ),
    "total drops one term": (
        [(MDL, "total oil = industrial oil + construction oil + agriculture oil + residential lpg + services oil "
               "+ transport oil",
          "total oil = industrial oil + construction oil + agriculture oil + residential lpg + transport oil")],
        {"check", "compare"},
    ),
    "two shares swapped": (
        [(MDL, "agriculture oil = agriculture energy * agriculture oil share",
          "agriculture oil = agriculture energy * agriculture electricity share"),
         (MDL, "agriculture electricity = agriculture energy * agriculture electricity share",
          "agriculture electricity = agriculture energy * agriculture oil share")],
        {"compare"},
    ),
    "phase-in ramp a year late": (
        [(MDL, "policy ramp = MIN(1, MAX(0, (data year - policy start year + 1) / policy phase in time))",
          "policy ramp = MIN(1, MAX(0, (data year - policy start year) / policy phase in time))")],
        {"check", "compare"},
    ),
    "start-year comparison > for >=": (
        [(MDL, "policy active = IF THEN ELSE(data year >= policy start year, 1, 0)",
          "policy active = IF THEN ELSE(data year > policy start year, 1, 0)")],
        {"check", "compare"},
    ),
    "projection default 20% off in .mdl and registry": (
        [(MDL, "gdp growth 2023 to 2030 = 0.05\n", "gdp growth 2023 to 2030 = 0.06\n"),
         (REGISTRY, "gdp_growth_2023_to_2030,gdp growth 2023 to 2030,uncertainty,economy,1/Year,0.05,",
          "gdp_growth_2023_to_2030,gdp growth 2023 to 2030,uncertainty,economy,1/Year,0.06,")],
        {"compare"},
    ),
}


@pytest.fixture(scope="module")
def current() -> ModelVersion:
    return ModelVersion.current()


def copy_model(current: ModelVersion, root: Path) -> Path:
    """Copy the current model's .mdl, registry and calibration under ``root`` (a version folder)."""
    for rel, src in ((MDL, current.mdl_path), (REGISTRY, current.registry_path),
                     ("calibration/calibrated.toml", current.calibration_path)):
        if src is not None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, root / rel)
    return root


@pytest.mark.parametrize("slip", list(SLIPS))
def test_planted_slip_is_caught(slip, current, tmp_path):
    edits, expected = SLIPS[slip]
    root = copy_model(current, tmp_path / "model_copy")
    for rel, old, new in edits:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, (
            f"slip {slip!r}: the anchor {old!r} is not in {rel} exactly once (model rewritten? move the slip)"
        )
        path.write_text(text.replace(old, new), encoding="utf-8")
    version = ModelVersion(root, f"slip: {slip}")
    report = checks.run_check(version, samples=100, shrink=False)
    moved = cmp.compare_reference(version).exceeding(cmp.REFERENCE_TOLERANCE)
    caught = {name for name, hit in (("check", bool(report.failed)), ("compare", not moved.empty)) if hit}
    assert caught, f"{slip}: neither check nor compare --against reference failed"
    assert caught == expected, (slip, caught, [r.rule.id for r in report.failed])
