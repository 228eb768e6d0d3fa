"""GET XLS/DIRECT CONSTANTS, LOOKUPS and DATA in the vector engine, against PySD.

The data are read once when the engine's module is generated, by PySD's own
External classes; here each construct (and each DATA interpolation keyword:
INTERPOLATE, RAW, HOLD BACKWARD, LOOK FORWARD) is run on both backends and
compared with ``pysd.read_vensim(...).run()`` on a model whose data times are
uneven and start after INITIAL TIME and end before FINAL TIME, so that exact
hits, in-between times and both extrapolations are exercised.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from greenpath.engines.vector import UnsupportedConstructError, VectorModel, cache_key, external_files, generate

# time in column A, one column per element (B: a, C: b)
DATA_CSV = "Time,a,b\n1,2.0,10.0\n2.5,3.5,-4.0\n4,1.25,6.0\n7,8.0,0.5\n"
# x in row 1, one row of y per element
LOOKUP_CSV = "x,0,1,3,6\na,1.0,4.0,2.0,7.5\nb,0.5,0.25,3.0,-1.0\n"
CONST_CSV = "name,a,b\nk,0.75,1.5\n"

MODEL = """{UTF-8}
rng: a, b ~~|
k = GET DIRECT CONSTANTS('const.csv', ',', 'B2') ~~|
ks[rng] = GET DIRECT CONSTANTS('const.csv', ',', 'B2') ~~|
lk(GET DIRECT LOOKUPS('lookup.csv', ',', '1', 'B2')) ~~|
lks[rng](GET DIRECT LOOKUPS('lookup.csv', ',', '1', 'B2')) ~~|
data interp := GET DIRECT DATA('data.csv', ',', 'A', 'B2') ~~|
data sub[rng] := GET DIRECT DATA('data.csv', ',', 'A', 'B2') ~~|
data raw:RAW: := GET DIRECT DATA('data.csv', ',', 'A', 'B2') ~~|
data hold:HOLD BACKWARD: := GET DIRECT DATA('data.csv', ',', 'A', 'C2') ~~|
data forward:LOOK FORWARD: := GET DIRECT DATA('data.csv', ',', 'A', 'C2') ~~|
looked up = lk(Time * 0.75) ~~|
looked up sub[rng] = lks[rng](Time * 0.75) * ks[rng] ~~|
flow = data interp * k + data sub[b] ~~|
stock = INTEG(flow, 1) ~~|
smoothed = SMOOTH(data forward, 2) ~~|
INITIAL TIME = 0 ~~|
FINAL TIME = 9 ~~|
TIME STEP = 0.25 ~~|
SAVEPER = TIME STEP ~~|
"""


def _write(folder: Path, model: str = MODEL) -> Path:
    (folder / "data.csv").write_text(DATA_CSV, encoding="utf-8")
    (folder / "lookup.csv").write_text(LOOKUP_CSV, encoding="utf-8")
    (folder / "const.csv").write_text(CONST_CSV, encoding="utf-8")
    mdl = folder / "ext.mdl"
    mdl.write_text(model, encoding="utf-8")
    return mdl


def _pysd_run(mdl: Path, tmp: Path):
    import pysd

    folder = tmp / "pysd"
    folder.mkdir()
    for path in mdl.parent.iterdir():  # PySD writes its translation beside the .mdl
        if path.is_file():
            shutil.copy(path, folder / path.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pysd.read_vensim(str(folder / mdl.name)).run()


COLUMNS = [
    "k",
    "ks[a]",
    "ks[b]",
    "data interp",
    "data sub[a]",
    "data sub[b]",
    "data raw",
    "data hold",
    "data forward",
    "looked up",
    "looked up sub[a]",
    "looked up sub[b]",
    "flow",
    "stock",
    "smoothed",
]


@pytest.mark.parametrize("backend", ["vector", "scalar"])
def test_get_direct_constants_lookups_and_data_equal_pysd(tmp_path, backend):
    src = tmp_path / "src"
    src.mkdir()
    mdl = _write(src)
    frame = _pysd_run(mdl, tmp_path)
    model = VectorModel(mdl, tmp_path / "cache")
    np.testing.assert_allclose(model.times(), frame.index.to_numpy(dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.simulate(return_columns=COLUMNS, backend=backend)
    for column in COLUMNS:
        want = frame[column].to_numpy(dtype=float)
        np.testing.assert_allclose(out[column][0], want, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=column)


def test_data_keywords_read_the_series_as_pysd_documents(tmp_path):
    """The four DATA readings, at hand-checked times (not only "equal to PySD")."""
    mdl = _write(tmp_path)
    out = VectorModel(mdl, tmp_path / "cache").simulate(
        return_columns=["data interp", "data raw", "data hold", "data forward", "k", "ks[b]"], backend="scalar"
    )
    times = list(np.arange(0, 9.25, 0.25))

    def at(column, t):
        return out[column][0][times.index(t)]

    assert at("k", 0) == 0.75
    assert at("ks[b]", 0) == 1.5
    assert at("data interp", 0) == 2.0  # before the first time: the first value
    assert at("data interp", 1.75) == pytest.approx(2.75)  # halfway from (1, 2) to (2.5, 3.5)
    assert at("data interp", 9) == 8.0  # after the last time: the last value
    assert at("data raw", 2.5) == 3.5
    assert np.isnan(at("data raw", 2.75))
    assert at("data hold", 3.0) == -4.0
    assert at("data forward", 3.0) == 6.0
    assert at("data hold", 4.0) == 6.0
    assert at("data forward", 4.0) == 6.0


def test_data_files_are_part_of_the_cache_key(tmp_path):
    """Data are read at generation, so a changed data file gives a new module."""
    mdl = _write(tmp_path)
    assert [p.name for p in external_files(mdl)] == ["const.csv", "data.csv", "lookup.csv"]
    model = VectorModel(mdl, tmp_path / "cache")
    key = cache_key(mdl)
    assert model.simulate(return_columns=["k"], backend="scalar")["k"][0][0] == 0.75
    (tmp_path / "const.csv").write_text("name,a,b\nk,2.5,1.5\n", encoding="utf-8")
    assert cache_key(mdl) != key
    assert model.refresh() is True
    assert model.simulate(return_columns=["k"], backend="scalar")["k"][0][0] == 2.5


def test_data_without_get_is_refused_naming_the_construct(tmp_path):
    mdl = tmp_path / "tab.mdl"
    mdl.write_text(
        "{UTF-8}\nexternal series := ~~|\nx = external series * 2 ~~|\n"
        "INITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 1 ~~|\nSAVEPER = 1 ~~|\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsupportedConstructError) as info:
        generate(mdl)
    assert info.value.variable == "external series"
    assert "DATA variable without GET XLS/DIRECT DATA" in info.value.construct


def test_missing_data_file_names_the_file(tmp_path):
    mdl = _write(tmp_path)
    (tmp_path / "data.csv").unlink()
    with pytest.raises(FileNotFoundError, match="data.csv"):
        generate(mdl)
