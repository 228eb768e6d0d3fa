"""Vendor the SDXorg test-models corpus into tests/fixtures/test_models for the vector engine.

    python scripts/vendor_test_models.py PATH/TO/test-models [--commit SHA]

For every Vensim model (``*.mdl``) of the corpus that has a canonical output
(``output.csv`` or ``output.tab`` beside it), the vector engine either refuses
it (:class:`greenpath.engines.vector.UnsupportedConstructError`) or runs it and the run
is compared with the canonical output at PySD's test tolerances (1e-5 relative
and absolute, ``pysd.tools.benchmarking.assert_allclose``).  Copied into
``tests/fixtures/test_models/<corpus folder>/``: the .mdl of every model, the
canonical output of every model the engine runs, and the data files the GET
XLS/DIRECT functions of every model read (the engine reads them before it
refuses a construct found later in the model).  ``MANIFEST.json`` records per
model its status -- ``pass``, ``refused`` (variable and construct) or
``deviates`` (the columns and the reason, from :data:`KNOWN_DEVIATIONS`: a
deviation not listed there stops the script) -- and the corpus commit.  The
corpus is MIT licensed; its LICENSE and AUTHORS are copied along.
``tests/engines/test_vector_corpus.py`` checks the fixtures against the manifest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "tests" / "fixtures" / "test_models"
RTOL = ATOL = 1e-5

#: Models whose engine result differs from the canonical output although the
#: engine runs them, and why; the engine's result equals PySD's for each
#: (tests/engines/test_vector_corpus.py checks that too).
KNOWN_DEVIATIONS = {
    "samples/Roessler_Chaos/roessler_chaos.mdl": (
        "a chaotic system: differences in the last bits between Vensim's and PySD's arithmetic grow "
        "past 1e-5 after t = 36 (PySD's own result deviates identically)"
    ),
    "tests/arguments/test_arguments.mdl": (
        "DELAY3 of delay time 2 at TIME STEP 1: PySD lowers the order to 2 (3 * TIME STEP > delay time) "
        "and warns, Vensim does not; the engine does what PySD does and warns too"
    ),
}


#: Models whose folder's canonical output belongs to another model of the folder.
NOT_ITS_OUTPUT = {
    "tests/data_from_other_model/model_to_generate_data.mdl": "output.tab is test_data_from_other_model.mdl's",
}


def canonical_file(mdl: Path) -> Path | None:
    """Return the canonical output beside ``mdl`` (output.csv, else output.tab), if any."""
    for name in ("output.csv", "output.tab"):
        if (mdl.parent / name).is_file():
            return mdl.parent / name
    return None


def canonical_rows(times: np.ndarray, canon_times: np.ndarray) -> np.ndarray | None:
    """Rows of the engine's saved ``times`` at the canonical output's times, if it has them all.

    A canonical output may start after INITIAL TIME (PySD's test harness then
    returns the run at the canonical times only).
    """
    rows = np.abs(times[:, None] - canon_times[None, :]).argmin(axis=0)  # the nearest saved time
    if not np.allclose(times[rows], canon_times):
        return None
    return rows


def compare(mdl: Path, canon_path: Path, cache: Path) -> list[str]:
    """Run ``mdl`` on the engine; the canonical columns that differ (1e-5 rel/abs)."""
    from pysd.py_backend.utils import detect_encoding
    from pysd.tools.benchmarking import load_outputs

    from greenpath.engines.vector import VectorModel

    canon = load_outputs(canon_path, encoding=detect_encoding(canon_path))
    model = VectorModel(mdl, cache)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.simulate(return_columns=list(canon.columns))
    rows = canonical_rows(model.times(), canon.index.to_numpy(dtype=float))
    if rows is None:
        return ["<time index>"]
    bad = []
    for column in canon.columns:
        want = canon[column].to_numpy(dtype=float)
        got = out[column][0][rows]
        if np.isnan(want[1:]).all() and not np.isnan(want[0]):  # Vensim saves a constant once
            want = np.full_like(want, want[0])
        close = (np.abs(got - want) <= ATOL + RTOL * np.abs(want)) | (np.isnan(got) & np.isnan(want))
        if not close.all():
            bad.append(column)
    return bad


def main(argv: list[str] | None = None) -> int:
    """Vendor the corpus at the given path (see the module docstring); exit status."""
    from greenpath.engines.vector import UnsupportedConstructError, external_files

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a checkout of github.com/SDXorg/test-models")
    parser.add_argument("--commit", help="the corpus commit (default: git rev-parse HEAD in source)")
    args = parser.parse_args(argv)
    source = args.source.resolve()
    commit = (
        args.commit
        or subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    if DEST.exists():
        shutil.rmtree(DEST)
    DEST.mkdir(parents=True)
    for name in ("LICENSE", "AUTHORS"):
        shutil.copy(source / name, DEST / name)
    models: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as cache:
        for mdl in sorted(source.glob("**/*.mdl")):
            rel = mdl.relative_to(source).as_posix()
            canon = canonical_file(mdl)
            if canon is None or rel in NOT_ITS_OUTPUT:
                continue
            target = DEST / mdl.parent.relative_to(source)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(mdl, target / mdl.name)
            for data in external_files(mdl):  # the files its GET XLS/DIRECT * read
                if data.is_file():
                    shutil.copy(data, target / data.name)
            try:
                bad = compare(mdl, canon, Path(cache))
            except UnsupportedConstructError as error:
                models[rel] = {"status": "refused", "variable": error.variable, "construct": error.construct}
                continue
            shutil.copy(canon, target / canon.name)
            if not bad:
                models[rel] = {"status": "pass"}
            elif rel in KNOWN_DEVIATIONS:
                models[rel] = {"status": "deviates", "columns": bad, "reason": KNOWN_DEVIATIONS[rel]}
            else:
                print(
                    f"{rel}: differs from its canonical output in {bad}; not listed in KNOWN_DEVIATIONS",
                    file=sys.stderr,
                )
                return 1
    counts = {s: sum(1 for m in models.values() if m["status"] == s) for s in ("pass", "deviates", "refused")}
    manifest = {
        "source": "https://github.com/SDXorg/test-models",
        "commit": commit,
        "licence": "MIT (LICENSE, AUTHORS in this folder)",
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "counts": counts,
        "models": models,
    }
    (DEST / "MANIFEST.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
