"""Shared fixtures: one translated model per test session (loading costs ~0.7 s)."""

from __future__ import annotations

import pytest

from greenpath.engines.pysd_engine import JiaozuoModel


@pytest.fixture(scope="session")
def model() -> JiaozuoModel:
    """Provide the fast engine (numpy lookups), shared by read-only tests."""
    return JiaozuoModel()


@pytest.fixture(scope="session")
def stock_model() -> JiaozuoModel:
    """Stock PySD (xarray lookups): the reference."""
    return JiaozuoModel(fast=False)
