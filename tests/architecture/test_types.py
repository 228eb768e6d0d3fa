"""The whole ``greenpath`` package type-checks (mypy, configured in pyproject.toml).

``[tool.mypy] files`` is the package itself, so a module cannot drop out of the check;
the test runs mypy as a user would (``python -m mypy`` in the project folder) and shows
its report when it fails.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import greenpath

ROOT = Path(greenpath.__file__).resolve().parent.parent


def test_the_configured_scope_is_the_whole_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["greenpath"]


def test_mypy_finds_no_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
