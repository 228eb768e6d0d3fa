"""The wheel is complete.

Installed outside the checkout, the CLI finds its model, calibration, scenarios and
targets, and the app's modules import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = """
import json, sys
import greenpath, greenpath.app.ui, greenpath.app.state
from greenpath.scenarios import scenario as scenarios, targets
from greenpath.model import registry
print(json.dumps({"package": greenpath.__file__, "scenarios": str(scenarios.SCENARIO_DIR),
                  "names": scenarios.available(), "targets": len(targets.load()),
                  "calibration": registry.calibration_id()}))
"""


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    # Built from a copy: setuptools writes build/ and *.egg-info into the source folder.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(source)], check=True, capture_output=True, text=True, cwd=tmp_path)
    (wheel,) = wheels.glob("greenpath-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        zf.extractall(site)
    for expected in ("greenpath/_shipped/scenarios/baseline.toml",
                     "greenpath/_shipped/targets/jiaozuo_targets.toml",
                     "greenpath/_shipped/model/jiaozuo.mdl", "greenpath/_shipped/model/parameters.csv",
                     "greenpath/_shipped/calibration/calibrated.toml",
                     "greenpath/_shipped/calibration/data/history.csv", "greenpath/app/ui.py",
                     "greenpath/i18n/app.toml", "greenpath/outputs/fonts/NotoSansCJKsc-Regular.otf"):
        assert expected in names, expected
    env = {**os.environ, "PYTHONPATH": str(site), "GREENPATH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GREENPATH_CALIBRATION", None)
    work = tmp_path / "elsewhere"
    work.mkdir()
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, cwd=work, check=True,
                         capture_output=True, text=True).stdout
    import json

    info = json.loads(out)
    assert Path(info["package"]).is_relative_to(site)
    assert Path(info["scenarios"]).is_relative_to(site)
    assert {"baseline", "plan_2021"} <= set(info["names"])
    assert info["targets"] > 10
    assert info["calibration"]  # the shipped calibration is found
    run = subprocess.run([sys.executable, "-m", "greenpath.cli", "run", "plan_2021", "--out",
                          str(tmp_path / "out"), "--columns", "co2_emissions"],
                         env=env, cwd=work, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "plan_2021.csv").is_file()
