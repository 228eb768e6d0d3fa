"""Scenario files: strict schema, inheritance, writing back, and the shipped scenarios."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenpath.model import indicators as ind
from greenpath.model import registry as reg
from greenpath.scenarios import scenario as S
from greenpath.scenarios.settings import same as same_setting

SHIPPED = S.available()
GROUP_VARIANTS = {
    "industry": "only_industry", "energy": "only_energy", "buildings": "only_buildings",
    "transport": "only_transport", "energy supply": "only_energy_supply",
}


def effective(s: S.Scenario) -> dict:
    """Return what a run of ``s`` uses: defaults overlaid with the scenario's settings."""
    out: dict = dict(reg.effective_defaults())
    for k in s.tables:
        out.pop(k)
    out.update(s.settings())
    return out


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- error messages
@pytest.mark.parametrize(("text", "expected"), [
    ("[levers]\nwind_biuld_rate = 100\n",
     ["bad.toml", "[levers] wind_biuld_rate", "100", "unknown lever",
      "did you mean 'wind_build_rate'"]),
    ("[levers]\ngdp_growth_2023_to_2030 = 0.05\n",
     ["bad.toml", "gdp_growth_2023_to_2030", "is a uncertainty", "[uncertainties]"]),
    ("[uncertainties]\nwind_build_rate = 100\n",
     ["bad.toml", "wind_build_rate", "is a lever", "put it under [levers]"]),
    ("[levers]\ncoal_emission_factor = 2.5\n",
     ["bad.toml", "coal_emission_factor", "2.5", "constant", "cannot be set"]),
    ("[lever]\nwind_build_rate = 100\n",
     ["bad.toml", "unknown section [lever]", "did you mean 'levers'"]),
    ("[scenario]\nextend = \"baseline\"\n",
     ["bad.toml", "[scenario] extend", "'baseline'", "unknown key",
      "did you mean 'extends'"]),
    ("[scenario]\ntitle_en = 3\n", ["bad.toml", "title_en = 3", "must be a string"]),
    ("[scenario]\nname = \"my plan/2\"\n", ["bad.toml", "'my plan/2'", "file name"]),
    ("[levers]\nwind_build_rate = 900\n",
     ["bad.toml", "[levers] wind_build_rate = 900", "outside the allowed range 0 to 500",
      "MW/Year"]),
    ("[levers]\nwind_build_rate = \"fast\"\n",
     ["bad.toml", "wind_build_rate = 'fast'", "must be a number from 0 to 500"]),
    ("[levers]\nwind_build_rate = true\n",
     ["bad.toml", "wind_build_rate = True", "must be a number"]),
    ("[levers]\nwind_build_rate = { 2040 = 100 }\n",
     ["bad.toml", "wind_build_rate", "year 2040", "allowed 2005-2035"]),
    ("[levers]\nwind_build_rate = { 2004 = 100 }\n",
     ["bad.toml", "year 2004", "2005-2035"]),
    ("[levers]\nwind_build_rate = { soon = 100 }\n",
     ["bad.toml", "table key 'soon' is not a year", "2005-2035"]),
    ("[levers]\nwind_build_rate = { 2025 = 700 }\n",
     ["bad.toml", "wind_build_rate[2025] = 700", "outside the allowed range 0 to 500"]),
    ("[levers]\nwind_build_rate = {}\n", ["bad.toml", "empty year table"]),
    ("[levers]\nccus_start_year = { 2021 = 2025 }\n",
     ["bad.toml", "ccus_start_year", "measured in years", "not a year table"]),
    ("[levers]\nccus_start_year = 2025.5\n",
     ["bad.toml", "ccus_start_year = 2025.5", "whole year"]),
    ("[scenario]\npolicy_start_year = 2040\n",
     ["bad.toml", "[scenario] policy_start_year = 2040", "2021 to 2030"]),
    ("[scenario]\npolicy_start_year = 2024\n[levers]\npolicy_start_year = 2025\n",
     ["bad.toml", "policy_start_year", "both", "2024", "2025"]),
    ("[levers\nwind_build_rate = 1\n", ["bad.toml", "not valid TOML"]),
    ("[levers]\nwind_build_rate = { from = 2022 }\n",
     ["bad.toml", "wind_build_rate", "step change is { from = YEAR, value = NUMBER }",
      "missing value"]),
    ("[levers]\nwind_build_rate = { from = 2022, value = 1, 2025 = 3 }\n",
     ["bad.toml", "wind_build_rate", "unknown key(s) ['2025']", "cannot be mixed"]),
    ("[levers]\nwind_build_rate = { from = 2040, value = 100 }\n",
     ["bad.toml", "wind_build_rate", "from = 2040", "2006-2035"]),
    ("[levers]\nwind_build_rate = { from = 2022.5, value = 100 }\n",
     ["bad.toml", "from = 2022.5", "whole year"]),
    ("[levers]\nwind_build_rate = { from = 2022, value = 900 }\n",
     ["bad.toml", "wind_build_rate.value = 900", "outside the allowed range 0 to 500"]),
    ("[levers]\nccus_start_year = { from = 2022, value = 2025 }\n",
     ["bad.toml", "ccus_start_year", "measured in years", "not a step change"]),
])
def test_bad_file_names_file_key_value_and_allowed(tmp_path, text, expected):
    write(tmp_path, "bad", text)
    with pytest.raises(S.ScenarioError) as info:
        S.load("bad", tmp_path)
    for part in expected:
        assert part in str(info.value)


def test_unknown_parent_suggests_nearest(tmp_path):
    write(tmp_path, "baseline", "[scenario]\nname = \"baseline\"\n")
    write(tmp_path, "child", "[scenario]\nextends = \"baselin\"\n")
    with pytest.raises(S.ScenarioError) as info:
        S.load("child", tmp_path)
    msg = str(info.value)
    assert "child.toml: [scenario] extends = 'baselin'" in msg
    assert "did you mean 'baseline'" in msg


def test_cycle_of_extends_is_an_error(tmp_path):
    write(tmp_path, "a", "[scenario]\nextends = \"b\"\n")
    write(tmp_path, "b", "[scenario]\nextends = \"c\"\n")
    write(tmp_path, "c", "[scenario]\nextends = \"a\"\n")
    with pytest.raises(S.ScenarioError) as info:
        S.load("a", tmp_path)
    msg = str(info.value)
    assert "extends = 'a'" in msg
    assert "cycle (a -> b -> c -> a)" in msg


def test_self_extends_is_a_cycle(tmp_path):
    write(tmp_path, "me", "[scenario]\nextends = \"me\"\n")
    with pytest.raises(S.ScenarioError, match=r"me\.toml: \[scenario\] extends = 'me' makes a cycle"):
        S.load("me", tmp_path)


def test_unknown_scenario_name_suggests():
    with pytest.raises(S.ScenarioError, match="did you mean 'plan_2021'"):
        S.load("plan_2012")


# ---------------------------------------------------------------- inheritance
def test_child_overrides_parent_and_table_replaces_constant(tmp_path):
    write(tmp_path, "base", "[levers]\nwind_build_rate = 100\nccus_capacity = 0.5\n")
    write(tmp_path, "kid", "[scenario]\nextends = \"base\"\n[levers]\n"
          "wind_build_rate = { 2021 = 50, 2030 = 200 }\nccus_capacity = 1.0\n")
    s = S.load("kid", tmp_path)
    assert s.chain == ["base", "kid"]
    assert s.params == {"ccus_capacity": 1.0}
    assert s.tables == {"wind_build_rate": ([2021.0, 2030.0], [50.0, 200.0])}
    assert s.own_params == {"ccus_capacity": 1.0}


def test_step_change_keeps_the_parent_before_and_the_value_from_its_year(tmp_path):
    write(tmp_path, "base", "[levers]\nwind_build_rate = { 2015 = 10, 2025 = 110 }\n"
          "distributed_pv_build_rate = 40\n")
    write(tmp_path, "kid", "[scenario]\nextends = \"base\"\n[levers]\n"
          "wind_build_rate = { from = 2022, value = 300 }\n"
          "distributed_pv_build_rate = { from = 2023, value = 80 }\n"
          "ccus_capacity = { from = 2030, value = 1.0 }\n")
    s = S.load("kid", tmp_path)
    # over a parent's table: its points before, its value in the last year before
    assert s.tables["wind_build_rate"] == ([2015.0, 2021.0, 2022.0], [10.0, 70.0, 300.0])
    assert s.tables["distributed_pv_build_rate"] == ([2022.0, 2023.0], [40.0, 80.0])
    default = reg.effective_defaults()["ccus_capacity"]
    assert s.tables["ccus_capacity"] == ([2029.0, 2030.0], [default, 1.0])
    assert s.own_tables["wind_build_rate"] == s.tables["wind_build_rate"]
    # written back as a year table, it reads back to the same settings
    assert effective(S.from_text(S.to_toml(s, directory=tmp_path), "kid.toml", tmp_path)) \
        == effective(s)


def test_validate_alone_refuses_a_step_change_it_cannot_resolve():
    """A step change needs a parent, so validate() alone refuses it.

    The app's share link checks one setting at a time without a parent: the error
    names the year table to write.  load and from_text resolve steps.
    """
    doc = {"levers": {"wind_build_rate": {"from": 2022, "value": 300}}}
    with pytest.raises(S.ScenarioError, match=r"link: wind_build_rate = \{ from = 2022, "
                       r"value = 300 \}: a step change .* \{ 2021 = <value before>, 2022 = 300 \}"):
        S.validate(doc, "link")
    _, _, tables = S.validate(doc, "x.toml", allow_steps=True)
    assert tables == {"wind_build_rate": S.Step(2022, 300.0)}


def test_step_change_acts_from_its_year_only():
    """A step from 2022 changes nothing up to 2021 and equals the new constant from 2022."""
    from greenpath.engines.pysd_engine import JiaozuoModel

    text = ("[scenario]\nname = \"pv\"\nextends = \"baseline\"\n[levers]\n"
            "distributed_pv_build_rate = {{ from = {year}, value = 300 }}\n")
    base = S.load("baseline")
    cols = ["renewable_capacity", "co2_emissions"]
    model = JiaozuoModel()
    ref = model.run(**base.run_kwargs(), return_columns=cols).frame
    step = model.run(**S.from_text(text.format(year=2022)).run_kwargs(), return_columns=cols).frame
    always = model.run(**base.derive("c", params={"distributed_pv_build_rate": 300})
                       .run_kwargs(), return_columns=cols).frame
    assert (step.loc[:2021] == ref.loc[:2021]).all().all()
    assert step.loc[2022, "renewable_capacity"] > ref.loc[2022, "renewable_capacity"]
    # The constant 300 also acts in 2021 (policy start), the step does not.
    assert always.loc[2021, "renewable_capacity"] > step.loc[2021, "renewable_capacity"]
    added = step["renewable_capacity"].diff() - ref["renewable_capacity"].diff()
    added_always = always["renewable_capacity"].diff() - ref["renewable_capacity"].diff()
    # Capacity added by the step is that of the constant one year later (a pure shift).
    assert added.loc[2022:2035].to_numpy() == pytest.approx(
        added_always.loc[2021:2034].to_numpy(), rel=1e-9, abs=1e-9)


def test_policy_start_year_in_scenario_section_equals_lever(tmp_path):
    write(tmp_path, "a", "[scenario]\npolicy_start_year = 2024\n")
    write(tmp_path, "b", "[levers]\npolicy_start_year = 2024\n")
    assert S.load("a", tmp_path).params == S.load("b", tmp_path).params == {
        "policy_start_year": 2024.0}


def test_from_text_resolves_parent_in_directory():
    s = S.from_text("[scenario]\nname = \"mine\"\nextends = \"plan_2021\"\n"
                    "[levers]\nccus_capacity = 0.5\n")
    plan = S.load("plan_2021")
    assert s.params == {**plan.params, "ccus_capacity": 0.5}
    assert s.tables == plan.tables
    assert s.chain == ["baseline", "plan_2021", "mine"]


# ---------------------------------------------------------------- writing back
@pytest.mark.parametrize("name", SHIPPED)
def test_to_toml_round_trips_every_shipped_scenario(name):
    s = S.load(name)
    text = S.to_toml(s)
    back = S.from_text(text, f"{name}.toml")
    assert effective(back) == effective(s)
    assert back.name == s.name
    assert back.title_zh == s.title_zh


def test_to_toml_writes_only_differences_from_parent():
    fyp = S.load("plan_14th_fyp")
    data = tomllib.loads(S.to_toml(fyp))
    assert data["scenario"]["extends"] == "plan_2021"
    assert data["levers"] == {"wind_build_rate": 277.0, "distributed_pv_build_rate": 150.0,
                              "utility_pv_build_rate": 150.0}
    assert "uncertainties" not in data


def test_to_toml_keeps_a_reset_to_the_default_when_parent_differs():
    plan = S.load("plan_2021")
    default = reg.load_registry()["wind_build_rate"].default
    child = plan.derive("less_wind", params={"wind_build_rate": default,
                                             "ccus_capacity": plan.params["ccus_capacity"]})
    data = tomllib.loads(S.to_toml(child))
    # Same as the parent: not written; back to the default while the parent differs: kept.
    assert data["levers"] == {"wind_build_rate": default}


def test_to_toml_without_parent_compares_with_defaults():
    s = S.Scenario(name="flat", path=None,
                   params={"wind_build_rate": reg.load_registry()["wind_build_rate"].default,
                           "ccus_capacity": 1.0})
    data = tomllib.loads(S.to_toml(s))
    assert "extends" not in data["scenario"]
    assert data["levers"] == {"ccus_capacity": 1.0}


def test_derive_validates_values():
    with pytest.raises(S.ScenarioError, match="wind_build_rate = 9000.*0 to 500"):
        S.load("baseline").derive("x", params={"wind_build_rate": 9000})
    with pytest.raises(S.ScenarioError, match="did you mean 'ccus_capacity'"):
        S.load("baseline").derive("x", params={"ccus_capacit": 1})


def test_save_refuses_to_overwrite(tmp_path):
    s = S.load("plan_2021").derive("mine", params={"ccus_capacity": 0.3})
    path = S.save(s, tmp_path / "mine.toml")
    before = path.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError, match="mine.toml exists"):
        S.save(s.derive("other", params={"ccus_capacity": 0.6}), path)
    assert path.read_text(encoding="utf-8") == before
    S.save(s, path, overwrite=True)
    assert S.load(path).params["ccus_capacity"] == 0.3


_levers = reg.levers()
_numeric = [n for n, p in _levers.items() if p.unit.lower() != "year"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_of_random_lever_changes(data):
    base = S.load(data.draw(st.sampled_from(SHIPPED)))
    names = data.draw(st.lists(st.sampled_from(_numeric), max_size=5, unique=True))
    params, tables = {}, {}
    for n in names:
        p = _levers[n]
        values = st.floats(min_value=p.min, max_value=p.max, allow_nan=False)
        if data.draw(st.booleans()):
            params[n] = data.draw(values)
        else:
            years = data.draw(st.lists(st.integers(2005, 2035), min_size=1, max_size=4,
                                       unique=True))
            years.sort()
            tables[n] = ([float(y) for y in years], [data.draw(values) for _ in years])
    child = base.derive("random_child", params=params, tables=tables)
    back = S.from_text(S.to_toml(child), "random_child.toml")
    # Equal as the app, the writer and the wedges define it (greenpath.scenarios.settings):
    # a value within 1e-12 relative (1e-15 absolute) of its parent's is not written.
    # It then reads back as the parent's value; every value written reads back exactly.
    got, want, parent = effective(back), effective(child), effective(base)
    assert set(got) == set(want)
    assert [k for k in want if got[k] != want[k]
            and not (same_setting(got[k], want[k]) and got[k] == parent[k])] == []


# ---------------------------------------------------------------- shipped scenarios
@pytest.fixture(scope="module")
def runs():
    """Every shipped scenario, each on a fresh model (no earlier run can affect it)."""
    from greenpath.engines.pysd_engine import JiaozuoModel

    cols = ["co2_emissions", "total_coal_consumption", "energy_intensity", "gdp",
            "renewable_capacity", "co2_intensity", "non_fossil_share", "co2_including_imports"]
    return {name: JiaozuoModel().run(**S.load(name).run_kwargs(), return_columns=cols).frame
            for name in SHIPPED}


def test_every_shipped_scenario_loads_and_runs(runs):
    assert {"baseline", "plan_2021", "plan_14th_fyp", "ambitious"} <= set(runs)
    for name, frame in runs.items():
        assert frame.notna().all().all(), name
        assert list(frame.index) == list(range(2005, 2036)), name


def test_history_to_2020_is_the_same_in_every_scenario(runs):
    base = runs["baseline"].loc[:2020]
    for name, frame in runs.items():
        assert frame.loc[:2020].equals(base), name


@pytest.mark.parametrize("name", ["plan_2021", "plan_14th_fyp", "ambitious"])
def test_plan_scenarios_move_indicators_the_right_way(runs, name):
    base, plan = runs["baseline"], runs[name]
    assert plan.loc[2030, "co2_emissions"] < base.loc[2030, "co2_emissions"]
    assert plan.loc[2025, "total_coal_consumption"] < base.loc[2025, "total_coal_consumption"]
    assert plan.loc[2025, "energy_intensity"] < base.loc[2025, "energy_intensity"]
    assert plan.loc[2025, "renewable_capacity"] > base.loc[2025, "renewable_capacity"]
    assert plan.loc[2025, "non_fossil_share"] > base.loc[2025, "non_fossil_share"]


def test_plan_ladder(runs):
    assert runs["plan_14th_fyp"].loc[2025, "renewable_capacity"] > \
        runs["plan_2021"].loc[2025, "renewable_capacity"] >= 1000.0
    amb, base = runs["ambitious"], runs["baseline"]
    peak_year, _ = ind.peak(amb)
    assert peak_year < 2026
    assert ind.cumulative(amb) < ind.cumulative(runs["plan_14th_fyp"]) < ind.cumulative(base)


@pytest.mark.parametrize(("name", "target_ids"), [
    ("plan_2021", ["renewable_capacity_2025_seed", "energy_intensity_2025",
                   "coal_consumption_2025", "nev_delivery_share_2025"]),
    # The 14th FYP's 2.5 GW, +1 GW wind and +1 GW PV by 2025 are no longer delivered by
    # its build rates: wind, utility PV and bioenergy to 2024 are the GEM record in every
    # scenario (issue 13), and the record falls far short of the plan's pace (see
    # test_fyp14_renewable_targets_fail_on_the_record).
    ("plan_14th_fyp", ["renewable_capacity_2025_seed"]),
])
def test_plan_scenarios_meet_the_targets_they_are_named_after(name, target_ids):
    """A scenario that stands for a plan delivers what that plan's text quantifies."""
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.scenarios import targets as tg

    result = JiaozuoModel().run(**S.load(name).run_kwargs())
    table = tg.evaluate(result).set_index("id")
    missed = [t for t in target_ids if not bool(table.loc[t, "met"])]
    assert not missed, table.loc[missed, ["value", "target", "margin"]].to_dict("index")


def test_delayed_start_costs_co2(runs):
    assert ind.cumulative(runs["plan_2021_delayed"]) > ind.cumulative(runs["plan_2021"])


@pytest.mark.parametrize(("group", "variant"), sorted(GROUP_VARIANTS.items()))
def test_group_variants_carry_exactly_plan_2021_levers_of_their_group(group, variant):
    plan = S.load("plan_2021").settings()
    levers = reg.levers()
    expected = {k: v for k, v in plan.items() if levers[k].group == group}
    got = S.load(variant)
    assert got.extends == "baseline"
    assert got.settings() == expected


def test_every_lever_group_has_a_variant():
    groups = {p.group for p in reg.levers().values()} - {"timing"}
    assert groups == set(GROUP_VARIANTS)
    assert S.load("plan_2021_delayed").params["policy_start_year"] == 2024.0


def test_fyp14_renewable_targets_fail_on_the_record():
    """What was built 2021-24 is the record whatever the scenario: 348 MW of wind in 2024."""
    from greenpath.engines.pysd_engine import JiaozuoModel

    cols = ["wind_capacity", "renewable_capacity"]
    fyp, base = (JiaozuoModel().run(**S.load(n).run_kwargs(), return_columns=cols).frame
                 for n in ("plan_14th_fyp", "baseline"))
    assert fyp.loc[2024, "wind_capacity"] == base.loc[2024, "wind_capacity"]
    assert base.loc[2024, "wind_capacity"] == pytest.approx(348.0, abs=0.5)  # retirements ~0
    assert fyp.loc[2025, "wind_capacity"] - fyp.loc[2020, "wind_capacity"] < 1000.0
    assert fyp.loc[2025, "renewable_capacity"] < 2500.0
