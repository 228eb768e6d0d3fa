"""The scalar backend's rewrites (greenpath/engines/_scalar_passes.py) keep every float.

The real model and the test-models corpus check the rewritten backend against PySD
(test_vector_engine.py, test_vector_corpus.py); these tests pin the rules on small
functions of the generated shape: MIN/MAX inline as NumPy's minimum/maximum (NaN wins,
signed zeros kept, each operand evaluated once and in order), invariants moved out of
the time loop, and nothing moved that could raise where the loop would not.
"""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from greenpath.engines import _scalar_passes
from greenpath.engines._vector_runtime import _sc_max, _sc_min

floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, math.nan])


def _build(source: str, **namespace):
    ns = {"_sc_min": _sc_min, "_sc_max": _sc_max, **namespace}
    exec(compile(_scalar_passes.optimise(source), "<optimised>", "exec"), ns)
    return ns["_one"]


def _bits(x: float) -> bytes:
    return struct.pack("d", x)


_MIN_MAX = """
def _one(a, b):
    for _k in range(1):
        time = _k
        r = (_sc_min(a, b), _sc_max(a, b), _sc_min(0.0, b), _sc_max(b, 0.0),
             _sc_min(a * 1.0, b + time), _sc_max(-a, _sc_min(b, a)))
    return r
"""
_MIN_MAX_ONE = _build(_MIN_MAX)


@given(floats, floats)
def test_min_max_inline_equals_the_helpers_bit_for_bit(a, b):
    one = _MIN_MAX_ONE
    want = (_sc_min(a, b), _sc_max(a, b), _sc_min(0.0, b), _sc_max(b, 0.0),
            _sc_min(a * 1.0, b + 0), _sc_max(-a, _sc_min(b, a)))
    assert [_bits(x) for x in one(a, b)] == [_bits(x) for x in want]


def test_min_max_inline_leaves_no_call_and_evaluates_each_operand_once_in_order():
    seen = []

    def f(tag, value):
        seen.append(tag)
        return value

    source = "def _one():\n    for _k in range(1):\n        r = _sc_max(f('a', 2.0), f('b', 3.0))\n    return r\n"
    assert "_sc_max" not in _scalar_passes.optimise(source)
    assert _build(source, f=f)() == 3.0
    assert seen == ["a", "b"]


_LOOP = """
def _one(k, x, steps):
    y = 0.0
    out = []
    for _k in range(steps):
        time = _k * 0.5
        a = time * (k * 2.0) + (1.0 if time >= 0.0 else 1.0 / x)
        b = _sc_max(k, 0.5) * time
        if _save[_k]:
            out.append(a + b)
        if _k == steps - 1:
            break
        y = y + a * (k / 3.0)
    return out, y
"""


def test_invariants_move_out_of_the_loop_and_results_stay_bit_identical():
    source = _scalar_passes.optimise(_LOOP)
    head, loop = source.split("for _k in", 1)
    # k * 2.0 and _sc_max(k, 0.5) (unconditional) are computed once, before the loop
    assert "_c0 = k * 2.0" in head
    assert "_c1 = k if k >= 0.5 or k != k else 0.5" in head
    assert "k * 2.0" not in loop
    # the state update may not run (one time only): its k / 3.0 stays in the loop
    assert "k / 3.0" in loop
    plain: dict = {"_sc_min": _sc_min, "_sc_max": _sc_max, "_save": [True, False] * 10}
    exec(compile(_LOOP, "<plain>", "exec"), plain)
    one = _build(_LOOP, _save=[True, False] * 10)
    for k, x in [(0.3, 2.0), (1e300, 7.0), (math.nan, 1.0), (-0.0, 3.0)]:
        got, want = one(k, x, 20), plain["_one"](k, x, 20)
        assert [_bits(v) for v in got[0]] == [_bits(v) for v in want[0]]
        assert _bits(got[1]) == _bits(want[1])


def test_a_division_in_a_branch_not_taken_is_not_moved_before_the_loop():
    """``1.0 / x`` with x = 0 is only in the branch not taken: no ZeroDivisionError."""
    source = _scalar_passes.optimise(_LOOP)
    assert "1.0 / x" in source.split("for _k in", 1)[1]
    one = _build(_LOOP, _save=[True] * 4)
    out, _ = one(1.0, 0.0, 4)
    assert out[0] == 1.0 + 0.5 * 0.0  # time 0: a = 0 + 1.0, b = 1.0 * 0


def _sc_delayn_update(state, times, inp, delay_time, order, dt):
    """PySD's DelayN.ddt as its stage loop: the reference the unrolled updates must equal.

    The stage times are shifted by one stage, the new delay time first; inflow = input,
    then the stage before's outflow.
    """
    new_times = [delay_time, *times[:-1]]
    out = []
    inflow = inp
    for value, stage_time in zip(state, new_times, strict=True):
        outflow = value / stage_time
        out.append(value + (inflow - outflow) * order * dt)
        inflow = outflow
    return out, new_times


@given(st.integers(1, 12), st.lists(st.floats(-1e6, 1e6), min_size=13, max_size=13),
       st.floats(0.1, 50), st.floats(-1e3, 1e3), st.sampled_from([0.25, 0.5, 1.0]))
def test_unrolled_delay_n_equals_the_stage_loop_bit_for_bit(n, values, delay_time, inflow, dt):
    from greenpath.engines._vector_runtime import _sc_delayn_unrolled

    state = values[:n]
    times = [delay_time * (1 + i / 7) for i in range(n)]  # stage times that differ, as after a change
    want = _sc_delayn_update(state, times, inflow, delay_time, float(n), dt)
    got = _sc_delayn_unrolled(n)(state, times, inflow, delay_time, float(n), dt)
    assert [[_bits(v) for v in part] for part in got] == [[_bits(v) for v in part] for part in want]


_YEARLY = """
def _one(k, steps):
    out = []
    for _k in range(steps):
        time = 2005.0 + _k * 0.25
        a = time * k
        year = int(time + 1e-06) + 1.0
        g = _lk_growth(year) * k
        h = g + year
        b = a + h
        if _save[_k]:
            out.append((year, g, h, b))
        if _k == steps - 1:
            break
    return out
"""


def test_equations_of_the_year_alone_are_computed_once_per_year_with_the_same_values():
    calls = []

    def growth(year):
        calls.append(year)
        return year * 0.001

    plain: dict = {"_lk_growth": growth, "_save": [True] * 12}
    exec(compile(_YEARLY, "<plain>", "exec"), plain)
    want = plain["_one"](1.5, 12)
    assert len(calls) == 12  # one lookup per step (TIME STEP 0.25)
    calls.clear()
    source = _scalar_passes.optimise(_YEARLY)
    assert "if year != _period:" in source
    assert "a = time * k" in source.split("if year != _period:", 1)[1]  # reads time itself: every step
    got = _build(_YEARLY, _lk_growth=growth, _save=[True] * 12)(1.5, 12)
    assert calls == [2006.0, 2007.0, 2008.0]  # once per value of the year
    assert [[_bits(v) for v in row] for row in got] == [[_bits(v) for v in row] for row in want]


@given(st.integers(1, 12), st.lists(st.floats(-1e6, 1e6), min_size=12, max_size=12),
       st.floats(0.1, 50), st.floats(-1e3, 1e3), st.sampled_from([0.25, 0.5, 1.0]))
def test_delay_n_with_a_fixed_time_equals_the_stage_loop_bit_for_bit(n, values, delay_time, inflow, dt):
    from greenpath.engines._vector_runtime import _sc_delayn_fixed_time

    state = values[:n]
    want, times = _sc_delayn_update(state, [delay_time] * n, inflow, delay_time, float(n), dt)
    assert times == [delay_time] * n  # a fixed delay time leaves the stage times as they were
    got = _sc_delayn_fixed_time(n)(state, inflow, delay_time, float(n), dt)
    assert [_bits(v) for v in got] == [_bits(v) for v in want]
