"""GET TIME VALUE in the vector engine, against PySD.

PySD 3.14 computes GET TIME VALUE(0, offset, 0) -- the current time plus the
offset, in the model's units of time -- and nothing else reproducibly (the
calendar readings need the computer's clock or are not implemented), so the
engine supports that form on both backends and refuses the others by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from greenpath.engines.vector import UnsupportedConstructError, VectorModel, generate

MODEL = """{UTF-8}
rng: a, b, c ~~|
shift = 1.5 ~~|
shifted = GET TIME VALUE(0, shift * 2 - 0.25, 0) ~~|
shifted sub[rng] = GET TIME VALUE(0, (rng - 2) / 3, 0) ~~|
stock = INTEG(shifted - 2 * Time, 0) ~~|
INITIAL TIME = -1 ~~|
FINAL TIME = 4 ~~|
TIME STEP = 0.125 ~~|
SAVEPER = 0.25 ~~|
"""


@pytest.mark.parametrize("backend", ["vector", "scalar"])
def test_get_time_value_relative_to_now_equals_pysd(tmp_path, backend):
    import pysd

    mdl = tmp_path / "gtv.mdl"
    mdl.write_text(MODEL, encoding="utf-8")
    columns = ["shifted", "shifted sub[a]", "shifted sub[b]", "shifted sub[c]", "stock"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = pysd.read_vensim(str(mdl)).run(return_columns=columns)
    out = VectorModel(mdl, tmp_path / "cache").simulate(return_columns=columns, backend=backend)
    times = frame.index.to_numpy(dtype=float)
    np.testing.assert_array_equal(out["shifted"][0], times + 2.75)  # not only "as PySD": the definition
    for column in columns:
        np.testing.assert_allclose(
            out[column][0], frame[column].to_numpy(dtype=float), rtol=1e-12, atol=1e-12, err_msg=column
        )


@pytest.mark.parametrize("call", ["GET TIME VALUE(1, 0, 0)", "GET TIME VALUE(0, 0, 1)", "GET TIME VALUE(2, 0, 3)"])
def test_calendar_and_clock_readings_are_refused(tmp_path, call):
    mdl = tmp_path / "gtv.mdl"
    mdl.write_text(
        f"{{UTF-8}}\nx = {call} ~~|\nINITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 1 ~~|\nSAVEPER = 1 ~~|\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsupportedConstructError) as info:
        generate(mdl)
    assert info.value.variable == "x"
    assert info.value.construct.startswith("GET TIME VALUE other than (0, offset, 0)")
