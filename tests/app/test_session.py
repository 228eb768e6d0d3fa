"""The app's session object and the path of a lever move (issue 10).

* Every ``st.session_state`` key is the session module's: no other app module reads
  ``session_state``, and widget values are read and set by the module's key constants.
* A lever value is validated once, where it enters (its widget's callback), and goes to
  the engine in normal form: the scenario on screen is not validated again and the
  engine runs the request unvalidated.  Runs and scenarios are the ones the validating
  path gives.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from greenpath.app import runner, session, state
from greenpath.engines.pysd_engine import JiaozuoModel
from greenpath.model import registry as reg
from greenpath.scenarios import scenario as sc
from greenpath.scenarios import settings as st

ROOT = Path(__file__).resolve().parents[2]
APP_MODULES = sorted((ROOT / "greenpath" / "app").glob("*.py")) + [ROOT / "app.py"]


# ------------------------------------------------------------------ one owner of the keys
def _session_state_uses(path: Path) -> list[str]:
    """Return ``line: what`` for each use of ``session_state`` or a widget key given as text."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "session_state":
            found.append(f"{node.lineno}: .session_state")
        elif isinstance(node, ast.Name) and node.id == "session_state":
            found.append(f"{node.lineno}: session_state")
        elif isinstance(node, ast.ImportFrom) and any(a.name == "session_state" for a in node.names):
            found.append(f"{node.lineno}: import session_state")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("widget", "set_widget") and node.args
              and isinstance(node.args[0], ast.Constant | ast.JoinedStr)):
            found.append(f"{node.lineno}: {node.func.attr}() with a key written as text")
    return found


def test_only_the_session_module_uses_session_state():
    assert len(APP_MODULES) > 10
    found = {p.name: _session_state_uses(p) for p in APP_MODULES if p.name != "session.py"}
    assert not {k: v for k, v in found.items() if v}, found


def test_the_check_finds_session_state_and_widget_keys_as_text(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import streamlit as st\nfrom streamlit import session_state\n"
                   "x = st.session_state['gp_values']\nss.widget('w_lang')\n"
                   "ss.set_widget(f'w_lever_{n}', 1)\nss.widget(session.W_LANG)\n")
    assert sorted(_session_state_uses(bad)) == [
        "2: import session_state", "3: .session_state", "4: widget() with a key written as text",
        "5: set_widget() with a key written as text"]


def test_session_fields_have_one_key_each_and_start_with_their_defaults():
    fields = session.Session.fields()
    keys = [f.key for f in fields.values()]
    assert len(set(keys)) == len(keys)
    assert all(k.startswith("gp_") for k in keys)
    assert not set(keys) & set(session.WIDGETS)
    store: dict = {}
    s = session.Session(store)
    assert not s.started
    s.start("the base")
    assert s.started
    assert s.base == "the base"
    assert set(store) == set(keys)
    assert (s.lang, s.page, s.present, s.hint, s.sets) == ("en", "simulator", False, True, None)
    assert (s.view, s.values, s.saved) == (list(session.DEFAULT_VIEW), {}, {})
    s.values["wind_build_rate"] = 300.0  # a default is the session's own, not shared
    assert session.Session({}).values == {}
    s.save_msg = ("success", "saved")
    assert s.take("save_msg") == ("success", "saved")
    assert s.take("save_msg") is None


def test_widget_keys_are_the_listed_ones():
    store: dict = {}
    s = session.Session(store)
    s.set_widget(session.W_LANG, "zh")
    s.set_widget(session.lever_key("wind_build_rate"), 300.0)
    assert store == {"w_lang": "zh", "w_lever_wind_build_rate": 300.0}
    assert s.widget(session.W_PAGE, "simulator") == "simulator"
    with pytest.raises(KeyError, match="'gp_values' is not a widget key of the app; allowed w_lang"):
        s.widget("gp_values")
    with pytest.raises(KeyError, match="'w_nothing' is not a widget key"):
        s.set_widget("w_nothing", 1)


# ------------------------------------------------------------------ the lever move
def test_a_lever_value_is_validated_where_it_enters():
    assert state.lever_setting("wind_build_rate", 276) == 276.0
    assert isinstance(state.lever_setting("wind_build_rate", 276), float)
    p = reg.levers()["wind_build_rate"]
    with pytest.raises(sc.ScenarioError, match=rf"app: \[levers\] wind_build_rate = {p.max + 1:g}.*"
                                               rf"outside the allowed range {p.min:g} to {p.max:g}"):
        state.lever_setting("wind_build_rate", p.max + 1)
    with pytest.raises(sc.ScenarioError, match="must be a whole year"):
        state.lever_setting("policy_start_year", 2022.5)
    with pytest.raises(sc.ScenarioError, match="unknown lever 'wind_build_rat'"):
        state.lever_setting("wind_build_rat", 1.0)


def _moved(base: state.Base, rng: random.Random) -> dict:
    values = state.lever_values(base)
    for name in rng.sample(sorted(reg.levers()), 5):
        p = reg.levers()[name]
        if isinstance(values[name], tuple):
            continue
        v = rng.uniform(p.min, p.max)
        values[name] = state.lever_setting(name, float(round(v)) if sc._is_year_unit(p) else round(v, 5))
    return values


def _validated_compose(base: state.Base, levers: dict) -> sc.Scenario:
    """Return the scenario as the app composed it before: every changed lever validated by derive."""
    params, tables = st.split(state.diff({**base.scenario.settings(), **levers}, base.scenario.settings()))
    return base.scenario.derive(base.scenario.name, params=params, tables=tables)


@pytest.mark.parametrize("preset", ["baseline", "plan_2021", "plan_2021_delayed", "past_effort"])
def test_request_and_scenario_are_what_the_validating_path_gives(preset):
    base = state.load_preset(preset)
    rng = random.Random(preset)
    for _ in range(10):
        values = _moved(base, rng)
        old = _validated_compose(base, values)
        new = state.compose(base, values, name=base.scenario.name)
        assert new.__dict__ == old.__dict__
        assert state.request(base, values) == state.run_key(old.settings())
        assert sc.to_toml(new, parent=sc.load(preset)) == sc.to_toml(old, parent=sc.load(preset))
    assert state.request(base, state.lever_values(base)) == state.run_key(base.scenario.settings())


def test_the_pool_runs_a_request_unvalidated_with_the_validated_result():
    base = state.load_preset("plan_2021")
    values = _moved(base, random.Random(7))
    key = state.request(base, values)
    assert any(isinstance(v, tuple) for _, v in key)  # a year table goes through as well
    got = runner.ModelPool(size=1).run(key)
    want = JiaozuoModel(engine="scalar").run(**state.run_kwargs(key))
    assert got.frame.equals(want.frame)
    assert got.metadata["params"] == want.metadata["params"]


def test_a_lever_move_is_validated_once(monkeypatch):
    from test_app import lever, new_app

    at = new_app()
    calls: dict[str, list] = {"lever_setting": [], "derive": [], "registry": [], "run": []}
    lever_setting, derive, validate, run = (state.lever_setting, sc.Scenario.derive,
                                            reg.validate, JiaozuoModel.run)

    def spy_lever_setting(name, value):
        calls["lever_setting"].append((name, value))
        return lever_setting(name, value)

    def spy_derive(self, name, params=None, tables=None, *, checked=False, **meta):
        calls["derive"].append(checked)
        return derive(self, name, params, tables, checked=checked, **meta)

    def spy_validate(params, where=""):
        calls["registry"].append(where)
        return validate(params, where)

    def spy_run(self, params=None, **kw):
        calls["run"].append((dict(params or {}), kw.get("validate", True)))
        return run(self, params, **kw)

    monkeypatch.setattr(state, "lever_setting", spy_lever_setting)
    monkeypatch.setattr(sc.Scenario, "derive", spy_derive)
    monkeypatch.setattr(reg, "validate", spy_validate)
    monkeypatch.setattr(JiaozuoModel, "run", spy_run)
    lever(at, "wind_build_rate").set_value(287.0).run()
    assert not at.exception
    assert calls["lever_setting"] == [("wind_build_rate", 287.0)]  # the one validation
    assert calls["derive"]
    assert all(calls["derive"])  # the scenario on screen is not validated again
    assert not calls["registry"]  # nor by the engine
    runs = [c for c in calls["run"] if c[0].get("wind_build_rate") == 287.0]
    assert runs == [({"wind_build_rate": 287.0}, False)]
