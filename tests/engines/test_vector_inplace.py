"""In-place state updates of the vector engine: the same bits as new arrays, and only where safe.

The generated loop updates INTEG, SMOOTH and DELAY states in their own arrays (with
scratch arrays reused every step) unless a later update could read a variable that
is the state itself or a view of it.  Compared bit for bit with the same model emitted
with every update as a new array: a small model built to alias its states, and the
city model on a Latin-hypercube sample of the batch's uncertainties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from greenpath.engines import vector
from greenpath.model.mdl import MDL_PATH
from greenpath.runners import batch, ensemble

_ALIASING = """{UTF-8}
growth = 0.1
\t~\t~\t|
tau = 2.5
\t~\t~\t|
stock a = INTEG(growth * stock a, 1)
\t~\t~\t|
stock b = INTEG(stock a, 0)
\t~\t~\t|
smoothed a = SMOOTH3(stock a, tau)
\t~\t~\t|
stock c = INTEG(smoothed a, 0)
\t~\t~\t|
delayed a = DELAY N(stock a, tau, 0, 3)
\t~\t~\t|
late a = DELAY3(smoothed a, tau)
\t~\t~\t|
stock d = INTEG(late a - 0.1 * stock d, 2)
\t~\t~\t|
FINAL TIME = 10
\t~\t~\t|
INITIAL TIME = 0
\t~\t~\t|
SAVEPER = 0.5
\t~\t~\t|
TIME STEP = 0.25
\t~\t~\t|
"""


def _module(generator: vector._Generator, inplace: bool) -> dict:
    namespace: dict = {}
    exec(compile(generator.emit(inplace=inplace), "<generated>", "exec"), namespace)  # noqa: S102
    return namespace


def _both(path) -> tuple[vector._Generator, dict, dict]:
    generator = vector._Generator(path)
    generator.build()
    return generator, _module(generator, True), _module(generator, False)


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for column in a:
        assert np.array_equal(a[column], b[column], equal_nan=True), column


def test_states_read_after_their_update_keep_new_arrays(tmp_path):
    path = tmp_path / "aliasing.mdl"
    path.write_text(_ALIASING, encoding="utf-8")
    generator, fast, plain = _both(path)
    by_element = {s.element: s.name for s in generator.states}
    inplace = generator._inplace_states(generator.states)
    # stock a is read as a flow (stock b) by an update after its own, and the
    # SMOOTH3's output (a view of its stages) by stock c's: both keep new arrays
    assert by_element["stock a"] not in inplace
    assert by_element["smoothed a"] not in inplace
    # the others are read by nothing after their update
    for element in ("stock b", "stock c", "stock d", "delayed a", "late a"):
        assert by_element[element] in inplace, element
    rng = np.random.default_rng(4)
    params = {"growth": rng.uniform(-0.2, 0.3, 64), "tau": rng.uniform(0.8, 4.0, 64)}
    _assert_same(fast["simulate"](params, 64), plain["simulate"](params, 64))


def test_the_city_model_is_the_same_bits_with_in_place_updates():
    generator, fast, plain = _both(MDL_PATH)
    assert generator._inplace_states(generator.states)  # the city model's states mostly qualify
    spec = batch.monte_carlo_batch(200, 9)
    names, lows, highs = batch._bounds(spec.definition)
    values = batch._scale(ensemble.latin_hypercube(200, len(names), np.random.default_rng(9)), lows, highs)
    params = ensemble._vector_params(pd.DataFrame({n: values[:, j] for j, n in enumerate(names)}), ())
    _assert_same(fast["simulate"](params, 200), plain["simulate"](params, 200))
