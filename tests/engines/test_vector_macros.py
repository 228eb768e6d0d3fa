"""Macros in the vector engine, against PySD.

Each call of a macro is inlined with its own variables and states (PySD runs
each call as a submodel of its own); a macro may call another, use Time and
hold stocks (INTEG, INITIAL).  What the engine does not inline it refuses by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from greenpath.engines.vector import UnsupportedConstructError, VectorModel, generate

MACROS = """{UTF-8}
:MACRO: GROWTH(rate, start)
GROWTH = INTEG(GROWTH * rate + SCALED(rate, 2), start) ~~|
:END OF MACRO:
:MACRO: SCALED(x, factor)
SCALED = helper * factor ~~|
helper = x + Time / 10 ~~|
:END OF MACRO:
:MACRO: LAGGED(input, lag)
LAGGED = INTEG((input - LAGGED) / lag, INITIAL(input)) ~~|
:END OF MACRO:
"""

MODEL = (
    MACROS
    + """
fast = GROWTH(0.05, 1) ~~|
slow = GROWTH(slow rate, 3) ~~|
slow rate = 0.01 ~~|
lagged = LAGGED(fast + slow, 2.5) ~~|
scaled sub[rng] = SCALED(weights[rng], 3) ~~|
rng: a, b ~~|
weights[rng] = 1.5, 2 ~~|
INITIAL TIME = 0 ~~|
FINAL TIME = 12 ~~|
TIME STEP = 0.25 ~~|
SAVEPER = 0.5 ~~|
"""
)

COLUMNS = ["fast", "slow", "lagged", "scaled sub[a]", "scaled sub[b]"]


@pytest.mark.parametrize("backend", ["vector", "scalar"])
def test_macros_equal_pysd(tmp_path, backend):
    import pysd

    mdl = tmp_path / "macros.mdl"
    mdl.write_text(MODEL, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = pysd.read_vensim(str(mdl)).run(return_columns=COLUMNS)
    model = VectorModel(mdl, tmp_path / "cache")
    out = model.simulate(return_columns=COLUMNS, backend=backend)
    assert not np.allclose(out["fast"][0], out["slow"][0])  # two calls, two states
    for column in COLUMNS:
        np.testing.assert_allclose(
            out[column][0], frame[column].to_numpy(dtype=float), rtol=1e-12, atol=1e-12, err_msg=column
        )
    # a constant of the model passed to a macro stays a parameter of the run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = pysd.read_vensim(str(mdl)).run(params={"slow rate": 0.05}, return_columns=["fast", "slow"])
    faster = model.simulate(params={"slow rate": 0.05}, return_columns=["fast", "slow"], backend=backend)
    np.testing.assert_array_equal(faster["fast"][0], out["fast"][0])
    assert faster["slow"][0][-1] > out["slow"][0][-1]
    for column in ("fast", "slow"):
        np.testing.assert_allclose(faster[column][0], want[column].to_numpy(dtype=float), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("macros", "use", "construct"),
    [
        (
            ":MACRO: M(x)\nM = SMOOTH(x, 2) ~~|\n:END OF MACRO:\n",
            "M(1)",
            "a stateful function other than INTEG or INITIAL",
        ),
        (":MACRO: M(x)\nM = M(x) + 1 ~~|\n:END OF MACRO:\n", "M(1)", "the macro M calling itself"),
        (":MACRO: M(x)\nM = x * other ~~|\n:END OF MACRO:\n", "M(1)", "a macro referring to a name"),
        (":MACRO: M(x)\nM = x ~~|\n:END OF MACRO:\n", "M(1, 2)", "the macro M called with 2 arguments"),
    ],
)
def test_what_is_not_inlined_is_refused(tmp_path, macros, use, construct):
    mdl = tmp_path / "m.mdl"
    mdl.write_text(
        "{UTF-8}\n" + macros + f"y = {use} ~~|\nother = 2 ~~|\n"
        "INITIAL TIME = 0 ~~|\nFINAL TIME = 1 ~~|\nTIME STEP = 1 ~~|\nSAVEPER = 1 ~~|\n",
        encoding="utf-8",
    )
    with pytest.raises(UnsupportedConstructError) as info:
        generate(mdl)
    assert info.value.variable == "y"
    assert info.value.construct.startswith(construct)
