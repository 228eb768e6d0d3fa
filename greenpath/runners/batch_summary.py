"""The Monte Carlo summary, computed by the chunks while they are produced (issue 18).

Before, the summary (percentiles and mean per variable and year) was a serial re-read of
every results file at the end of a batch: about a fifth of a batch's CPU time.  Here
each chunk, in the process that computed it and while its values are in memory, writes
a small *part* (``summary_parts/cNNNNNN.npz`` and ``.bin``) from which the end of the
batch assembles the same summary without reading the results again:

* **Percentiles, exact.**  The percentile of a variable-year needs the values of two
  ranks of all runs.  Before the chunks, a *pilot* (the batch's first
  :func:`pilot_runs` runs, a random subsample of the Latin hypercube, whose rows come in
  random order) brackets each needed rank by a value band ``[low, high]`` wide enough
  (:data:`BAND_Z` standard errors of the pilot's quantile, plus :data:`BAND_SLACK`
  pilot values) that it almost surely holds the rank in all runs.  A chunk counts its
  values below each band and keeps the few inside it.  At the end the counts add up:
  the rank ``r`` is the ``r - below``-th smallest value inside the band, found by one
  partition of those values.  When a band misses its rank (or a row the pilot saw
  constant varies) that variable-year is read from the results files and computed the
  old way: the answer is numpy's ``percentile`` (linear) exactly in every case; only
  the time differs.  The bands depend only on the spec, so a resumed batch's parts agree.
* **Mean.**  The sum of the successful runs' values is taken over fixed blocks of
  :data:`BLOCK_RUNS` consecutive run ids (numpy's pairwise sum within a block; a block
  split between two chunks is kept as values and summed once whole) and the block sums
  are added exactly (``math.fsum``); divided by the number of runs.  So the mean is the
  same for any chunking and worker count, and within a few units in the last place of
  numpy's ``mean``.  :func:`block_mean` is the same definition for the re-read path
  (``greenpath.runners.batch.summarise`` without parts).
* **Constant rows** (the recorded history, equal in every run of a projection Monte
  Carlo): the part's minimum and maximum say so.

A part is written before its chunk's runs file, so a finished chunk always has one.  The
parts are a scratch of the run (deleted once the summary is written; a later
``write_summary`` re-reads the results).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

PART_DIR = "summary_parts"
# Runs per block of the mean (run ids 0-999, 1000-1999, ...); a multiple of 8, so every
# row of _block_sum's buffer starts on a 64-byte boundary.
BLOCK_RUNS = 1000
# Band half-width: BAND_Z standard errors of the pilot's quantile plus BAND_SLACK pilot
# values.  At 4 standard errors a band misses its rank about once in 16,000 (the pilot is
# a random subsample); a miss costs one variable-year read from the files (tens of ms),
# while a wider band makes every chunk keep more values.
BAND_Z = 4.0
BAND_SLACK = 8
# The pilot: a fiftieth of the runs, at least PILOT_MIN and at most PILOT_MAX; batches of
# fewer than MIN_RUNS runs summarise by re-reading (a second or less).
PILOT_MIN = 1000
PILOT_MAX = 10000
MIN_RUNS = 20000
PART_FORMAT = 1
# Values per block of rows in write_part (about 1 MB of float64: the passes stay in cache).
ROW_BLOCK_VALUES = 1 << 17


def pilot_runs(n_runs: int) -> int:
    """Return the runs of the pilot for a batch of ``n_runs`` (0: no pilot, summarise by re-reading)."""
    if n_runs < MIN_RUNS:
        return 0
    return int(min(PILOT_MAX, max(PILOT_MIN, n_runs // 50), n_runs))


def _pct_positions(qs: Sequence[float], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return numpy's linear method's lower and upper rank and the weight of each percentile."""
    pos = np.asarray(qs, dtype=float) / 100 * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, pos - lo


def make_plan(pilot: np.ndarray, qs: Sequence[float]) -> dict | None:
    """Return the bands for a batch from its pilot's values ``(rows, runs)`` (year-major rows).

    Returns ``{"id", "qs", "rows", "low", "high"}`` (``low``/``high`` ``(len(qs), rows)``)
    or None when the pilot is too small.  A row equal in every pilot run gets an empty
    band (``low = +inf``, ``high = -inf``): its chunks keep no values; if the row is not
    constant in all runs after all, the end reads it from the files.
    """
    rows, p = pilot.shape  # float32 is enough: a band need only be near its rank
    if p < 100:
        return None
    qs = [float(q) for q in qs]
    ordered = np.sort(pilot, axis=1)
    low = np.full((len(qs), rows), np.inf)
    high = np.full((len(qs), rows), -np.inf)
    varies = ordered[:, 0] != ordered[:, -1]
    for g, q in enumerate(qs):
        f = q / 100
        half = BAND_Z * math.sqrt(f * (1 - f) / p) + BAND_SLACK / p
        a = math.floor((f - half) * (p - 1))
        b = math.ceil((f + half) * (p - 1))
        low[g, varies] = ordered[varies, a] if a >= 0 else -np.inf
        high[g, varies] = ordered[varies, b] if b <= p - 1 else np.inf
    digest = hashlib.sha256()
    digest.update(json.dumps({"qs": qs, "block": BLOCK_RUNS, "format": PART_FORMAT}).encode())
    digest.update(np.ascontiguousarray(low).tobytes())
    digest.update(np.ascontiguousarray(high).tobytes())
    return {"id": digest.hexdigest()[:16], "qs": qs, "rows": rows, "low": low, "high": high}


def year_major_rows(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Return a chunk's values ``(columns, runs, years)`` as rows ``(years * columns, ok runs)``.

    Row ``t * columns + j`` is variable ``j`` in year ``t``.  For the vector engine's
    chunks (a view of a year-major buffer) and all runs successful this is a view.
    """
    c, m, y = values.shape
    ym = values.transpose(2, 0, 1)  # (years, columns, runs)
    rows = ym.reshape(y * c, m)  # a view when ym is contiguous, else a copy
    return rows if ok.all() else rows[:, ok]


def _part_paths(out: Path, k: int) -> tuple[Path, Path]:
    return out / PART_DIR / f"c{k:06d}.npz", out / PART_DIR / f"c{k:06d}.bin"


def write_part(out: Path, k: int, rows: np.ndarray, run_ids: np.ndarray, start: int, stop: int,
               plan: dict, atomic_write: Callable[[Path, Callable], None]) -> None:
    """Write chunk ``k``'s part: band counts and values, block sums, minimum and maximum.

    ``rows`` ``(plan rows, ok runs)`` are the chunk's successful runs (ids ``run_ids``,
    ascending) of the chunk's run range ``start:stop``.
    """
    if rows.shape[0] != plan["rows"]:
        raise ValueError(f"chunk {k}: {rows.shape[0]} rows, the summary plan has {plan['rows']}")
    n_rows, m = rows.shape
    groups = len(plan["qs"])
    below = np.zeros((groups, n_rows), dtype=np.int64)
    inside = np.zeros((groups, n_rows), dtype=np.int64)
    pieces: list[np.ndarray] = []
    if m:
        # rows with a band (the others: the pilot saw them constant), a block of rows at a
        # time so the passes over a block stay in the cache
        banded = np.flatnonzero(np.isfinite(plan["low"]).any(axis=0)
                                | np.isfinite(plan["high"]).any(axis=0))
        below[:, :] = m  # an empty band (+inf, -inf): every value is below it
        kept: list[list[np.ndarray]] = [[] for _ in range(groups)]
        step = max(1, ROW_BLOCK_VALUES // m)
        if len(banded):
            first, last = int(banded[0]), int(banded[-1]) + 1
            at_least = np.empty((min(step, last - first), m), dtype=bool)
            keep = np.empty_like(at_least)
            for a in range(first, last, step):
                b = min(last, a + step)
                block = rows[a:b]
                ge, inside_band = at_least[:b - a], keep[:b - a]
                for g in range(groups):
                    np.greater_equal(block, plan["low"][g, a:b, None], out=ge)
                    # (count_nonzero row by row: 4x faster than with axis=1)
                    below[g, a:b] = m - np.fromiter(map(np.count_nonzero, ge), np.int64, b - a)
                    np.less_equal(block, plan["high"][g, a:b, None], out=inside_band)
                    inside_band &= ge
                    inside[g, a:b] = np.fromiter(map(np.count_nonzero, inside_band), np.int64,
                                                 b - a)
                    kept[g].append(block[inside_band])  # row after row
        pieces = [np.concatenate(p) if p else np.empty(0) for p in kept]
        # minimum and maximum: whether a row is equal in every run; a banded row is not
        low, high = np.full(n_rows, -np.inf), np.full(n_rows, np.inf)
        plain = np.setdiff1d(np.arange(n_rows), banded)
        if len(plain):
            low[plain], high[plain] = rows[plain].min(axis=1), rows[plain].max(axis=1)
    else:
        low = np.full(n_rows, np.inf)
        high = np.full(n_rows, -np.inf)
    # the mean's blocks: whole ones summed here, split ones kept as values
    block_ids: list[int] = []
    sums: list[np.ndarray] = []
    split_ids: list[int] = []
    split_lengths: list[int] = []
    split_values: list[np.ndarray] = []
    blocks = run_ids // BLOCK_RUNS
    edges = np.flatnonzero(np.diff(blocks)) + 1
    for a, b in zip(np.r_[0, edges], np.r_[edges, m], strict=True):
        if a == b:
            continue
        block_id = int(blocks[a])
        whole = block_id * BLOCK_RUNS >= start and (block_id + 1) * BLOCK_RUNS <= stop
        if whole:
            block_ids.append(block_id)
            sums.append(_block_sum(rows[:, a:b]))
        else:
            split_ids.append(block_id)
            split_lengths.append(int(b - a))
            split_values.append(np.ascontiguousarray(rows[:, a:b]))
    values = np.concatenate(pieces) if pieces else np.empty(0)
    npz, binary = _part_paths(out, k)
    npz.parent.mkdir(exist_ok=True)
    atomic_write(binary, lambda fh: fh.write(values.tobytes()))

    def write_npz(fh) -> None:
        np.savez(fh, plan=np.array(plan["id"]), qs=np.asarray(plan["qs"], dtype=float),
                 n_ok=np.array(m), below=below, inside=inside, low=low, high=high,
                 block_ids=np.asarray(block_ids, dtype=np.int64),
                 block_sums=(np.stack(sums, axis=1) if sums else np.empty((n_rows, 0))),
                 split_ids=np.asarray(split_ids, dtype=np.int64),
                 split_lengths=np.asarray(split_lengths, dtype=np.int64),
                 split_values=(np.concatenate(split_values, axis=1) if split_values
                               else np.empty((n_rows, 0))),
                 values=np.array(values.size))

    atomic_write(npz, write_npz)


def block_mean(values: np.ndarray, run_ids: np.ndarray) -> np.ndarray:
    """Mean per row of ``values`` ``(rows, runs)`` (run ids ascending): the batch's definition.

    Sum per block of :data:`BLOCK_RUNS` run ids (numpy's sum), the block sums added
    exactly (``math.fsum``), divided by the runs.
    """
    n = values.shape[1]
    if not n:
        return np.full(values.shape[0], np.nan)
    blocks = run_ids // BLOCK_RUNS
    edges = np.flatnonzero(np.diff(blocks)) + 1
    sums = np.stack([_block_sum(values[:, a:b])
                     for a, b in zip(np.r_[0, edges], np.r_[edges, n], strict=True)], axis=1)
    return _fsum_rows(sums) / n


def _block_sum(values: np.ndarray) -> np.ndarray:
    """Sum per row of one block ``(rows, <= BLOCK_RUNS)``, the same wherever it lies in memory.

    numpy's pairwise sum depends on where a row starts (its SIMD loop first steps to an
    aligned address), so the sum of the same values could differ in the last bit between
    a chunk's block and a block pieced together from two chunks.  Each block is copied
    into a buffer of ``BLOCK_RUNS`` values per row starting on a 64-byte boundary and
    summed there: one layout, one result.
    """
    rows, length = values.shape
    if length > BLOCK_RUNS:
        raise ValueError(f"a block of {length} runs; at most {BLOCK_RUNS}")
    raw = np.empty(rows * BLOCK_RUNS + 8)
    skip = (-raw.ctypes.data % 64) // 8
    buf = raw[skip:skip + rows * BLOCK_RUNS].reshape(rows, BLOCK_RUNS)[:, :length]
    buf[...] = values
    return buf.sum(axis=1)


def _fsum_rows(sums: np.ndarray) -> np.ndarray:
    return np.array([math.fsum(row) for row in sums.tolist()], dtype=float)


def summarise_parts(out: Path, n_chunks: int, qs: Sequence[float], columns: Sequence[str],
                    years: Sequence[int], read_row: Callable[[int, int], np.ndarray]
                    ) -> dict | None:
    """Assemble the summary from the parts of chunks ``0..n_chunks-1``; None if they cannot.

    None when a part is missing, from another plan or other percentiles (the caller then
    re-reads the results).  ``read_row(j, t)`` returns variable ``columns[j]``'s values in
    year ``years[t]`` over all successful runs (run order): the exact path for a
    variable-year whose band missed.

    Returns ``{"n": runs, "mean": (rows,), "pct": (len(qs), rows)}`` over the year-major
    rows.
    """
    qs = [float(q) for q in qs]
    metas: list[dict[str, np.ndarray]] = []
    for k in range(n_chunks):
        npz, binary = _part_paths(out, k)
        try:
            with np.load(npz) as z:
                meta = {name: z[name] for name in z.files}
        except (OSError, ValueError, KeyError):
            return None
        if (list(meta["qs"]) != qs or str(meta["plan"]) != str(metas[0]["plan"] if metas
                                                                 else meta["plan"])
                or not binary.is_file() or binary.stat().st_size != 8 * int(meta["values"])):
            return None
        metas.append(meta)
    if not metas:
        return None
    n_rows = len(columns) * len(years)
    if any(m["below"].shape != (len(qs), n_rows) for m in metas):
        return None
    n = sum(int(m["n_ok"]) for m in metas)
    if not n:
        return None
    low = np.min([m["low"] for m in metas], axis=0)
    high = np.max([m["high"] for m in metas], axis=0)
    constant = low == high
    mean = _assemble_mean(metas, n)
    lo_rank, hi_rank, weight = _pct_positions(qs, n)
    pct = np.full((len(qs), n_rows), np.nan)
    pct[:, constant] = low[constant]
    mean[constant] = low[constant]
    below = np.sum([m["below"] for m in metas], axis=0)  # (groups, rows)
    inside = [m["inside"] for m in metas]
    total_inside = np.sum(inside, axis=0)  # (groups, rows)
    # offsets of each part's values: group after group, row after row
    offsets = [(np.cumsum(m["inside"].ravel()) - m["inside"].ravel()).reshape(m["inside"].shape)
               for m in metas]
    missed: set[int] = set()
    rows_per_read = 64
    for r0 in range(0, n_rows, rows_per_read):
        r1 = min(n_rows, r0 + rows_per_read)
        todo = [r for r in range(r0, r1) if not constant[r]]
        if not todo:
            continue
        for g in range(len(qs)):
            # this group's values of rows r0:r1 from every part (one contiguous read each)
            chunks_values = []
            for k in range(len(metas)):
                a = int(offsets[k][g, r0])
                count = int(inside[k][g, r0:r1].sum())
                got = np.fromfile(_part_paths(out, k)[1], dtype=np.float64, count=count,
                                  offset=8 * a) if count else np.empty(0)
                chunks_values.append((got, np.concatenate([[0], np.cumsum(inside[k][g, r0:r1])])))
            for r in todo:
                if r in missed:
                    continue
                need = [int(lo_rank[g]) - int(below[g, r]), int(hi_rank[g]) - int(below[g, r])]
                if need[0] < 0 or need[1] >= int(total_inside[g, r]):
                    missed.add(r)
                    continue
                i = r - r0
                vals = np.concatenate([v[o[i]:o[i + 1]] for v, o in chunks_values])
                wanted = sorted(set(need))
                vals.partition(wanted)
                a_val, b_val = vals[need[0]], vals[need[1]]
                pct[g, r] = _lerp_one(a_val, b_val, float(weight[g]))
    from greenpath.runners import batch_stream

    for r in sorted(missed):
        t, j = divmod(r, len(columns))
        row = np.array(read_row(j, t), dtype=float)[None, :]
        pct[:, r] = batch_stream.percentiles_of_rows(row, qs)[:, 0]
    return {"n": n, "mean": mean + 0.0, "pct": pct + 0.0, "missed": len(missed)}


def _lerp_one(a: float, b: float, t: float) -> float:
    """Return numpy's ``_lerp`` of one value (as :func:`greenpath.runners.batch_stream._lerp`)."""
    a_, b_ = np.float64(a), np.float64(b)
    diff = b_ - a_
    return float(b_ - diff * (1 - t)) if t >= 0.5 else float(a_ + diff * t)


def _assemble_mean(metas: list[dict], n: int) -> np.ndarray:
    """Return the mean per row from the parts' block sums and split blocks (:func:`block_mean`)."""
    sums = [m["block_sums"] for m in metas if m["block_sums"].shape[1]]
    split: dict[int, list[np.ndarray]] = {}
    for m in metas:  # chunk order = run order
        at = 0
        for block, length in zip(m["split_ids"].tolist(), m["split_lengths"].tolist(),
                                 strict=True):
            split.setdefault(block, []).append(m["split_values"][:, at:at + length])
            at += length
    for block in sorted(split):
        sums.append(_block_sum(np.concatenate(split[block], axis=1))[:, None])
    return _fsum_rows(np.concatenate(sums, axis=1)) / n


def remove_parts(out: Path) -> None:
    """Delete the parts (a scratch of the run)."""
    folder = out / PART_DIR
    if folder.is_dir():
        for p in folder.iterdir():
            p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.rmdir(folder)
