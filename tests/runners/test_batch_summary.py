"""The Monte Carlo summary computed by the chunks (greenpath.runners.batch_summary).

The reference is the summary re-read from the results at the end (the path every batch
without parts takes) and numpy itself: the parts must give the same bytes, for any
chunking and worker count, also when bands miss their ranks.  The thresholds are lowered
so that small batches take the parts path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.runners import batch as B
from greenpath.runners import batch_summary as S

N = 3000


@pytest.fixture
def parts_path(monkeypatch):
    """Small batches use the parts; returns what summarise_parts returned (None: re-read)."""
    monkeypatch.setattr(S, "MIN_RUNS", 0)
    monkeypatch.setattr(S, "PILOT_MIN", 1000)  # two pieces at chunks of 700
    seen: list = []
    real = S.summarise_parts

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        seen.append(got)
        return got

    monkeypatch.setattr(S, "summarise_parts", spy)
    return seen


def _reread(tmp_path, monkeypatch, chunk_size=1000, workers=1):
    monkeypatch.setattr(S, "MIN_RUNS", 10**12)
    spec = B.monte_carlo_batch(N, 11, chunk_size=chunk_size)
    B.run_batch(spec, tmp_path / "reread", workers=workers, progress=False)
    return (tmp_path / "reread" / "summary.csv").read_bytes()


def test_parts_give_the_reread_summary_and_numpy_percentiles(tmp_path, monkeypatch, parts_path):
    spec = B.monte_carlo_batch(N, 11, chunk_size=700)  # blocks of the mean split by chunks
    B.run_batch(spec, tmp_path / "parts", workers=2, progress=False)
    assert parts_path
    assert parts_path[0] is not None
    assert not (tmp_path / "parts" / S.PART_DIR).exists()  # ... and removed afterwards
    fast = (tmp_path / "parts" / "summary.csv").read_bytes()
    assert fast == _reread(tmp_path, monkeypatch)
    res = B.read(tmp_path / "parts")["results"]
    summary = pd.read_csv(tmp_path / "parts" / "summary.csv", encoding="utf-8-sig")
    summary = summary.set_index(["variable", "year"])
    varied = 0
    for (variable, year), group in res.groupby(["variable", "year"]):
        values = group.sort_values("run_id")["value"].to_numpy()
        row = summary.loc[(variable, year)]
        np.testing.assert_array_equal(row[["p10", "p50", "p90"]].to_numpy(dtype=float),
                                      np.percentile(values, [10, 50, 90]))
        assert row["mean"] == pytest.approx(np.mean(values), rel=1e-14, abs=1e-300)
        varied += values.min() < values.max()
    assert varied > 100  # the bands were exercised, not only constant rows


def test_missed_bands_fall_back_to_the_files_exactly(tmp_path, monkeypatch, parts_path):
    monkeypatch.setattr(S, "BAND_Z", 0.0)  # bands of one pilot value: they miss
    monkeypatch.setattr(S, "BAND_SLACK", 0)
    spec = B.monte_carlo_batch(N, 11, chunk_size=1000)
    B.run_batch(spec, tmp_path / "parts", workers=1, progress=False)
    assert parts_path[0] is not None
    assert parts_path[0]["missed"] > 50
    assert (tmp_path / "parts" / "summary.csv").read_bytes() == \
        _reread(tmp_path, monkeypatch, chunk_size=900)


def test_a_resumed_batch_assembles_its_parts(tmp_path, monkeypatch, parts_path):
    spec = B.monte_carlo_batch(N, 11, chunk_size=1000)
    real = B._write_summary

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # stopped after the chunks, before the summary

    monkeypatch.setattr(B, "_write_summary", killed)
    with pytest.raises(KeyboardInterrupt):
        B.run_batch(spec, tmp_path / "parts", workers=1, progress=False)
    monkeypatch.setattr(B, "_write_summary", real)
    # one chunk lost: it runs again with the plan computed again (the same bands)
    for name in B.DATASETS:
        B._chunk_path(tmp_path / "parts", 1, name).unlink()
    B.run_batch(spec, tmp_path / "parts", workers=1, progress=False)
    assert parts_path[-1] is not None
    assert (tmp_path / "parts" / "summary.csv").read_bytes() == _reread(tmp_path, monkeypatch)


def test_block_mean_is_the_same_however_blocks_are_split():
    rng = np.random.default_rng(3)
    values = rng.lognormal(3, 2, size=(4, 4321))
    ids = np.arange(4321) + 250
    whole = S.block_mean(values, ids)
    np.testing.assert_allclose(whole, values.mean(axis=1), rtol=1e-15)
    # the same values anywhere in memory (numpy's own sum depends on the alignment)
    shifted = np.empty((4, 4330))[:, 3:3 + 4321]
    shifted[...] = values
    np.testing.assert_array_equal(S.block_mean(shifted, ids), whole)
    # sums of whole blocks, and split blocks concatenated, as the parts do
    blocks = ids // S.BLOCK_RUNS
    sums = []
    for b in np.unique(blocks):
        cols = np.flatnonzero(blocks == b)
        cut = cols[: len(cols) // 3]
        rest = cols[len(cols) // 3:]
        sums.append(S._block_sum(np.concatenate([values[:, cut], values[:, rest]], axis=1)))
    np.testing.assert_array_equal(whole, S._fsum_rows(np.stack(sums, axis=1)) / values.shape[1])


def test_pilot_size():
    assert S.pilot_runs(S.MIN_RUNS - 1) == 0
    assert S.pilot_runs(100_000) == 2000
    assert S.pilot_runs(300_000) == 6000
    assert S.pilot_runs(10**6) == S.PILOT_MAX


def test_a_chunks_posterior_rows_are_draw_rows_slice_without_building_them_all():
    from greenpath.calibration import posterior

    spec = B.monte_carlo_batch(50_000, 7)
    post = spec.definition.get("posterior") or {}
    if not post.get("names"):
        pytest.skip(f"no usable posterior: {post.get('source')}")
    frame, _ = posterior.draw_rows(50_000, 7)
    want = frame[post["names"]].to_numpy(dtype=float)
    for a, b in [(0, 5000), (45_000, 50_000), (12_345, 17_000)]:
        got = posterior.rows_for_range(50_000, 7, a, b, post["names"], post["sha256"])
        np.testing.assert_array_equal(got, want[a:b])
