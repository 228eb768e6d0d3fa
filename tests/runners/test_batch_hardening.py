"""Issue 9's attacks on the batch folder's own files (the manifest, a chunk's metadata).

A batch folder is written by this program, but a resume reads it back: a damaged
``manifest.json`` (deep nesting, another JSON type) or a chunk whose recorded statistics
are not an object must give the batch's own error or a redone chunk, never a
``RecursionError`` or ``AttributeError``.
"""

from __future__ import annotations

import json
import warnings

import pyarrow.parquet as pq
import pytest
from test_batch import FEW, assert_same_batch

from greenpath.cli import main
from greenpath.runners import batch as B

DAMAGED_MANIFESTS = {
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a list": b"[1, 2]",
    "a number": b"7",
    "not UTF-8": b"\xff\xfe{}",
    "truncated": b'{"spec_hash": "ab',
}


@pytest.mark.parametrize("data", DAMAGED_MANIFESTS.values(), ids=DAMAGED_MANIFESTS.keys())
def test_damaged_manifest_is_one_line_exit_2(tmp_path, capsys, data):
    argv = ["batch", "--monte-carlo", "4", "--seed", "3", "--chunk-size", "2", "--workers", "1",
            "--quiet", "--variables", *FEW, "--out", str(tmp_path / "b")]
    assert main(argv) == 0
    capsys.readouterr()
    (tmp_path / "b" / B.MANIFEST).write_bytes(data)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "manifest.json is unreadable" in err
    assert "Traceback" not in err


def test_manifest_whose_spec_is_not_an_object_names_the_differences(tmp_path):
    spec = B.monte_carlo_batch(4, 4, variables=FEW, chunk_size=2)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    (tmp_path / B.MANIFEST).write_text(json.dumps({"spec_hash": "x", "spec": [1, [2]]}))
    with pytest.raises(B.BatchError, match="holds a different batch"):
        B.run_batch(spec, tmp_path, workers=1, progress=False)


@pytest.mark.parametrize("data", DAMAGED_MANIFESTS.values(), ids=DAMAGED_MANIFESTS.keys())
def test_reading_a_batch_with_a_damaged_manifest_is_a_batch_error(tmp_path, data):
    spec = B.monte_carlo_batch(4, 4, variables=FEW, chunk_size=2)
    B.run_batch(spec, tmp_path, workers=1, progress=False)
    (tmp_path / B.MANIFEST).write_bytes(data)
    with pytest.raises(B.BatchError, match="manifest.json is unreadable"):
        B.read(tmp_path)


@pytest.mark.parametrize("stats", [b"[1, 2]", b"[" * 100_000 + b"]" * 100_000, b"\xff"])
def test_chunk_with_damaged_statistics_is_redone_on_resume(tmp_path, stats):
    spec = B.monte_carlo_batch(6, 4, variables=FEW, chunk_size=2)
    B.run_batch(spec, tmp_path / "clean", workers=1, progress=False)
    B.run_batch(spec, tmp_path / "hurt", workers=1, progress=False)
    path = tmp_path / "hurt" / "runs" / "c000001.parquet"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"greenpath": stats}), path)
    with pytest.warns(RuntimeWarning, match="chunk 1 .* is damaged .*running it again"):
        again = B.run_batch(spec, tmp_path / "hurt", workers=1, progress=False)
    assert (again.chunks_skipped, again.runs_executed) == (2, 2)
    assert_same_batch(tmp_path / "clean", tmp_path / "hurt")


def test_cli_names_a_redone_chunk_in_one_warning_line(tmp_path, capsys):
    argv = ["batch", "--monte-carlo", "6", "--seed", "3", "--chunk-size", "2", "--workers", "1",
            "--quiet", "--variables", *FEW, "--out", str(tmp_path / "b")]
    assert main(argv) == 0
    path = tmp_path / "b" / "targets" / "c000001.parquet"
    path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(argv) == 0
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "damaged" in x]
    assert line.startswith("greenpath batch: warning: chunk 1 in ")
    assert "batch.py" not in err
