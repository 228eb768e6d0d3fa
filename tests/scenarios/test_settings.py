"""One settings type: equality, normal form, run key, and the app, TOML writer and wedges agreeing.

``greenpath.scenarios.settings`` is the only definition of "are these settings equal?".
The agreement tests build the same pair of settings through each user of it (the app's
unsaved-changes count and composition, the scenario file writer, the wedge attribution)
and check they all call a value moved, or all call it unchanged.
"""

from __future__ import annotations

import tomllib

import pytest

from greenpath.app import state
from greenpath.runners import wedges
from greenpath.scenarios import scenario as sc
from greenpath.scenarios import settings as st

LEVER = "wind_build_rate"      # a constant lever the baseline leaves at its default
ZERO_LEVER = "carbon_price"    # a lever whose baseline value is 0 (absolute tolerance)


# ---------------------------------------------------------------- the definition itself
@pytest.mark.parametrize(("a", "b", "expected"), [
    (66.3, 66.3, True),
    (66.3, 66.3 * (1 + 1e-14), True),            # decimal round trip noise
    (66.3, 66.3 * (1 + 1e-9), False),            # a real (if tiny) move
    (0.0, 1e-16, True),
    (0.0, 1e-12, False),
    (1, 1.0, True),                               # int and float
    (2021.0, ([2021.0], [2021.0]), False),        # a constant is never a table
    (([2021, 2025], [1, 2]), ((2021.0, 2025.0), (1.0, 2.0)), True),   # lists, tuples, ints
    (([2021, 2025], [1, 2]), ([2021, 2025], [1, 2 * (1 + 1e-14)]), True),
    (([2021, 2025], [1, 2]), ([2021, 2025], [1, 2.001]), False),
    (([2021, 2025], [1, 2]), ([2021, 2026], [1, 2]), False),
    (([2021, 2025], [1, 2]), ([2021, 2025, 2030], [1, 2, 2]), False),   # more points
])
def test_same(a, b, expected):
    assert st.same(a, b) is expected
    assert st.same(b, a) is expected


def test_normal_form_is_hashable_floats():
    n = st.normalise(([2021, 2025], [1, 2]))
    assert n == ((2021.0, 2025.0), (1.0, 2.0))
    assert all(isinstance(x, float) for part in n for x in part)
    hash(n)
    assert st.normalise(3) == 3.0
    assert isinstance(st.normalise(3), float)


def test_run_key_is_the_differences_from_the_defaults_sorted():
    d = st.defaults()
    assert st.run_key({}) == ()
    assert st.run_key({LEVER: d[LEVER]}) == ()                    # the default is no change
    assert st.run_key({LEVER: d[LEVER] * (1 + 1e-14)}) == ()      # nor is its round trip
    key = st.run_key({"wind_build_rate": 500, "carbon_price": ([2021, 2030], [0, 100])})
    assert key == (("carbon_price", ((2021.0, 2030.0), (0.0, 100.0))), ("wind_build_rate", 500.0))
    assert st.key_settings(key) == dict(key)


def test_one_run_kwargs_shape_for_run_keys_and_scenarios():
    key = st.run_key({"wind_build_rate": 500, "carbon_price": ([2021, 2030], [0, 100])})
    kw = st.run_kwargs(key)
    assert kw == {"params": {"wind_build_rate": 500.0},
                  "time_varying": {"carbon_price": ([2021.0, 2030.0], [0.0, 100.0])}}
    assert state.run_kwargs is st.run_kwargs
    plan = sc.load("plan_2021")
    kw = plan.run_kwargs()
    assert set(kw) == {"params", "time_varying", "scenario"}
    assert kw["scenario"] == "plan_2021"
    assert kw["params"] == plan.params
    assert kw["time_varying"] == {
        k: (list(y), list(v)) for k, (y, v) in plan.tables.items()}
    # The app running the plan's run key runs exactly the plan's settings.
    app_kw = st.run_kwargs(st.run_key(plan.settings()))
    defaults = st.defaults()
    for name, value in kw["params"].items():
        assert app_kw["params"].get(name, defaults[name]) == value
    assert app_kw["time_varying"] == kw["time_varying"]


def test_app_state_uses_the_one_definition():
    assert state.same is st.same
    assert state.normalise is st.normalise
    assert state.run_key is st.run_key
    assert state.diff is st.diff


# ---------------------------------------------------------------- the users agree
def _moved_everywhere(base_name: str, name: str, value) -> tuple[bool, bool, bool, bool]:
    """Say whether ``name = value`` over the preset is a change for the app, its TOML, the writer and the wedges."""
    base = state.load_preset(base_name)
    levers = {**state.lever_values(base), name: st.normalise(value)}
    app_moved = name in state.changed_levers(base, levers)
    composed = state.compose(base, levers, "agree")
    written_by_app = name in tomllib.loads(state.scenario_toml(composed, base)).get("levers", {})
    # The same value set directly on a scenario (not filtered by the app first).
    params, tables = st.split({name: value})
    child = base.scenario.derive("agree", params=params, tables=tables)
    written = name in tomllib.loads(sc.to_toml(child, parent=base.scenario)).get("levers", {})
    by_wedges = any(name in group for group in wedges.differences(child, base.scenario).values())
    assert written_by_app == app_moved
    return app_moved, written, by_wedges, name in st.diff(child.settings(), base.scenario.settings())


@pytest.mark.parametrize(("name", "factor", "moved"), [
    (LEVER, 1.0, False),
    (LEVER, 1 + 1e-14, False),
    (LEVER, 1 + 1e-6, True),
    (LEVER, 2.0, True),
])
def test_app_writer_and_wedges_agree_on_a_number(name, factor, moved):
    value = state.lever_values(state.load_preset("baseline"))[name] * factor
    assert _moved_everywhere("baseline", name, value) == (moved,) * 4


@pytest.mark.parametrize(("value", "moved"), [(0.0, False), (1e-16, False), (1e-6, True)])
def test_app_writer_and_wedges_agree_near_zero(value, moved):
    assert _moved_everywhere("baseline", ZERO_LEVER, value) == (moved,) * 4


def test_app_writer_and_wedges_agree_on_year_tables():
    value = state.lever_values(state.load_preset("baseline"))[LEVER]
    # A table holding the constant is still a change (a table replaces the constant).
    assert _moved_everywhere("baseline", LEVER, ([2021.0, 2025.0], [value, value])) == (True,) * 4
    # plan_2021 sets a year table for some lever: the same table, its round trip, a move.
    plan = sc.load("plan_2021")
    name, (years, values) = next((k, t) for k, t in plan.tables.items()
                                 if sc.reg.load_registry()[k].kind == "lever")
    same_table = (list(years), list(values))
    noisy = (list(years), [v * (1 + 1e-14) for v in values])
    moved = (list(years), [v * 1.01 + 1e-3 for v in values])
    assert _moved_everywhere("plan_2021", name, same_table) == (False,) * 4
    assert _moved_everywhere("plan_2021", name, noisy) == (False,) * 4
    assert _moved_everywhere("plan_2021", name, moved) == (True,) * 4
