"""The vector engine against the SDXorg test-models corpus (canonical Vensim outputs).

tests/fixtures/test_models holds the corpus's Vensim models (MIT licence, see the
LICENSE there) as ``scripts/vendor_test_models.py`` vendored them, and
MANIFEST.json the status of each: ``pass`` (runs and matches its canonical output
at PySD's test tolerances, 1e-5 relative and absolute), ``refused`` (the engine
names the variable and construct at load time) or ``deviates`` (runs, differs from
Vensim in the listed columns for the listed reason, and equals PySD).  A model
that runs must match, or be a listed deviation: no model gives a result that
differs from its canonical output without the engine refusing it.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from greenpath.engines.vector import UnsupportedConstructError, VectorModel, generate

CORPUS = Path(__file__).parents[1] / "fixtures" / "test_models"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
MODELS = MANIFEST["models"]
RTOL = MANIFEST["tolerance"]["rtol"]
ATOL = MANIFEST["tolerance"]["atol"]


def _canonical(mdl: Path):
    from pysd.py_backend.utils import detect_encoding
    from pysd.tools.benchmarking import load_outputs

    for name in ("output.csv", "output.tab"):
        path = mdl.parent / name
        if path.is_file():
            return load_outputs(path, encoding=detect_encoding(path))
    raise AssertionError(f"{mdl}: the engine runs it, but no canonical output is vendored")


def _differing(out: dict, canon) -> list[str]:
    """Canonical columns the engine's output ``out`` does not match (PySD's assert_allclose)."""
    bad = []
    for column in canon.columns:
        want = canon[column].to_numpy(dtype=float)
        if np.isnan(want[1:]).all() and not np.isnan(want[0]):  # Vensim saves a constant once
            want = np.full_like(want, want[0])
        got = out[column][0]
        close = (np.abs(got - want) <= ATOL + RTOL * np.abs(want)) | (np.isnan(got) & np.isnan(want))
        if not close.all():
            bad.append(column)
    return bad


def test_manifest_covers_the_vendored_models_and_the_licence():
    vendored = {p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("**/*.mdl")}
    assert vendored == set(MODELS)
    assert "Permission is hereby granted, free of charge" in (CORPUS / "LICENSE").read_text(encoding="utf-8")
    counts = {s: sum(1 for m in MODELS.values() if m["status"] == s) for s in ("pass", "deviates", "refused")}
    assert counts == MANIFEST["counts"]
    assert counts["pass"] >= 134


@pytest.mark.parametrize("rel", sorted(MODELS))
def test_corpus_model(rel, tmp_path):
    entry = MODELS[rel]
    mdl = CORPUS / rel
    if entry["status"] == "refused":
        with pytest.raises(UnsupportedConstructError) as info:
            generate(mdl)
        assert (info.value.variable, info.value.construct) == (entry["variable"], entry["construct"])
        assert entry["construct"] in str(info.value)
        assert repr(entry["variable"]) in str(info.value)
        return
    model = VectorModel(mdl, tmp_path / "cache")
    canon = _canonical(mdl)
    # the engine's saved times, at the canonical output's (which may start after INITIAL TIME)
    times = model.times()
    rows = np.abs(times[:, None] - canon.index.to_numpy(dtype=float)[None, :]).argmin(axis=0)
    np.testing.assert_allclose(times[rows], canon.index.to_numpy(dtype=float), rtol=RTOL, atol=ATOL)
    for backend in ("vector", "scalar"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model.simulate(return_columns=list(canon.columns), backend=backend)
        bad = _differing({c: v[:, rows] for c, v in out.items()}, canon)
        if entry["status"] == "pass":
            assert bad == [], f"{backend}: differs from the canonical output in {bad}"
        else:
            assert entry["status"] == "deviates"
            assert bad == entry["columns"], f"{backend}: differing columns changed ({entry['reason']})"


@pytest.mark.parametrize("rel", sorted(r for r, m in MODELS.items() if m["status"] == "deviates"))
def test_deviations_from_vensim_are_pysd_s(rel, tmp_path):
    """Where the engine differs from Vensim it does what PySD (the reference) does."""
    import pysd

    mdl = tmp_path / Path(rel).name
    shutil.copy(CORPUS / rel, mdl)  # PySD writes its translation beside the .mdl
    canon = _canonical(CORPUS / rel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = pysd.read_vensim(str(mdl)).run(return_columns=list(canon.columns))
        out = VectorModel(mdl, tmp_path / "cache").simulate(return_columns=list(canon.columns))
    for column in canon.columns:
        np.testing.assert_allclose(
            out[column][0], frame[column].to_numpy(dtype=float), rtol=1e-9, atol=1e-12, err_msg=column
        )


@pytest.mark.parametrize("rel", sorted(r for r, m in MODELS.items() if m["status"] == "pass"))
def test_corpus_model_equals_pysd(rel, tmp_path):
    """PySD stays the reference: every corpus model the engine runs equals PySD's run.

    Every column of PySD's own output (PySD also lists elements a model leaves
    undefined, as NaN; the engine has no such variables).
    """
    import pysd

    source = CORPUS / rel
    for path in source.parent.iterdir():  # PySD writes its translation beside the .mdl
        if path.is_file():
            shutil.copy(path, tmp_path / path.name)
    mdl = tmp_path / source.name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = pysd.read_vensim(str(mdl)).run()
        model = VectorModel(mdl, tmp_path / "cache")
        known = [c for c in frame.columns if model.module._py_name(c) is not None]
        out = model.simulate(return_columns=known, backend="vector")
    for column in frame.columns:
        want = frame[column].to_numpy(dtype=float)
        if column not in known:
            assert np.isnan(want).all(), f"{column}: PySD computes it, the engine does not know it"
            continue
        np.testing.assert_allclose(out[column][0], want, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column)
