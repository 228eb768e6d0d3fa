"""Shared fixtures: one translated model per test session (loading costs ~0.7 s)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from greenpath.engines.pysd_engine import JiaozuoModel

# Some test modules use another's helpers by module name (``from test_app import new_app``);
# every part's test folder is importable, so that works whichever folders are run.
for _folder in sorted(Path(__file__).parent.iterdir()):
    if _folder.is_dir() and _folder.name not in ("fixtures", "__pycache__") and str(_folder) not in sys.path:
        sys.path.append(str(_folder))


@pytest.fixture(scope="session")
def model() -> JiaozuoModel:
    """Provide the fast engine (numpy lookups), shared by read-only tests."""
    return JiaozuoModel()


@pytest.fixture(scope="session")
def stock_model() -> JiaozuoModel:
    """Stock PySD (xarray lookups): the reference."""
    return JiaozuoModel(fast=False)
