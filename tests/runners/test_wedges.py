"""Wedges.

Contributions add up to the total, zero for the baseline, Shapley values match the
two-player closed form, sequential attribution, errors, command.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.engines.pysd_engine import JiaozuoModel
from greenpath.runners import wedges as W
from greenpath.scenarios import scenario as S

VARS = ["co2_emissions", "total_coal_consumption"]


def wide(table: pd.DataFrame, variable: str = "co2_emissions") -> pd.DataFrame:
    sub = table[table["variable"] == variable] if "variable" in table else table
    return sub.pivot(index="year", columns="group", values="contribution")


def run(scenario: S.Scenario) -> pd.DataFrame:
    """Return a reference run on a fresh model (no earlier run can affect it)."""
    return JiaozuoModel().run(**scenario.run_kwargs(), return_columns=VARS).frame


@pytest.mark.parametrize("name", ["plan_2021", "plan_2021_delayed", "ambitious"])
@pytest.mark.parametrize("method", ["shapley", "sequential"])
def test_contributions_add_up_to_the_total(name, method):
    table = W.compute_many(name, VARS, method=method)
    base, scen = run(S.load("baseline")), run(S.load(name))
    for var in VARS:
        total = base[var] - scen[var]
        summed = wide(table, var).sum(axis=1)
        np.testing.assert_allclose(summed.to_numpy(), total.to_numpy(), rtol=1e-10,
                                   atol=1e-9 * float(base[var].abs().max()))
        assert total.loc[2030] > 0  # a real reduction is being split, not zeros
    assert set(table["group"]) == set(W.lever_groups())


def test_baseline_against_itself_gives_zero_wedges():
    table = W.compute("baseline")
    assert table.attrs["players"] == []
    assert table.attrs["runs"] == 1
    assert (table["contribution"] == 0).all()
    assert sorted(set(table["group"])) == sorted(W.lever_groups())


def test_equal_copy_of_baseline_gives_zero_wedges():
    copy = S.load("baseline").derive("copy", params={"wind_build_rate": 66.3})
    assert (W.compute(copy)["contribution"] == 0).all()


def test_single_group_gets_the_whole_reduction():
    table = wide(W.compute("only_industry"))
    base, scen = run(S.load("baseline")), run(S.load("only_industry"))
    np.testing.assert_array_equal(table["industry"].to_numpy(),
                                  (base["co2_emissions"] - scen["co2_emissions"]).to_numpy())
    others = table.drop(columns="industry")
    assert (others == 0).all().all()


def test_two_player_shapley_closed_form():
    """phi_A = (v(A) + v(AB) - v(B)) / 2 with v(S) = baseline - run_S."""
    ind, energy = S.load("only_industry"), S.load("only_energy")
    both = ind.derive("both", params=energy.params, tables=energy.tables)
    table = wide(W.compute(both))
    base = run(S.load("baseline"))["co2_emissions"]
    v_a = base - run(ind)["co2_emissions"]
    v_b = base - run(energy)["co2_emissions"]
    v_ab = base - run(both)["co2_emissions"]
    np.testing.assert_allclose(table["industry"], (v_a + v_ab - v_b) / 2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(table["energy"], (v_b + v_ab - v_a) / 2, rtol=1e-12, atol=1e-12)
    # The groups interact (switching less coal when industry uses less energy), so the
    # Shapley split differs from the stand-alone effects.
    assert abs((v_a + v_b - v_ab).loc[2030]) > 1e-3


def test_sequential_first_group_gets_its_stand_alone_effect():
    table = wide(W.compute("plan_2021", method="sequential",
                           order=["energy", "industry", "buildings", "transport",
                                  "energy_supply"]))
    base = run(S.load("baseline"))["co2_emissions"]
    alone = base - run(S.load("only_energy"))["co2_emissions"]
    np.testing.assert_array_equal(table["energy"].to_numpy(), alone.to_numpy())


def test_history_has_no_wedges():
    table = wide(W.compute("plan_2021"))
    assert (table.loc[:2020] == 0).all().all()


def test_changed_uncertainty_is_its_own_player():
    scen = S.load("only_transport").derive("slow", params={"gdp_growth_2023_to_2030": 0.03})
    table = W.compute(scen)
    assert table.attrs["players"] == ["transport", W.UNCERTAINTY_GROUP]
    assert wide(table)[W.UNCERTAINTY_GROUP].loc[2030] > 0  # slower growth, less CO2


@pytest.mark.parametrize("engine", ["vector", "auto"])
def test_vector_engine_gives_the_same_wedges(engine):
    a = W.compute("only_energy_supply", engine="pysd")
    b = W.compute("only_energy_supply", engine=engine)
    np.testing.assert_allclose(a["contribution"], b["contribution"], atol=1e-9)


def test_wedges_default_to_the_auto_engine(monkeypatch):
    """The default runs the coalitions through batch.run_chunk with engine="auto"."""
    from greenpath.runners import batch

    seen = []
    real = batch.run_chunk

    def spy(specs, columns=None, engine="?", targets=None):
        seen.append(engine)
        return real(specs, columns, engine=engine, targets=targets)

    monkeypatch.setattr(batch, "run_chunk", spy)
    W.compute("only_energy_supply")
    assert seen == ["auto"]


@pytest.mark.parametrize(("kw", "message"), [
    ({"method": "shapely"}, "did you mean 'shapley'"),
    ({"variable": "co2_emission"}, "did you mean 'co2_emissions'"),
    ({"order": ["industry"]}, "leaves out"),
    ({"order": ["industri", "energy"], "method": "sequential"}, "did you mean 'industry'"),
    ({"order": ["industry", "energy", "buildings", "transport", "energy supply"]},
     "only applies to the sequential method"),
])
def test_errors_say_what_is_allowed(kw, message):
    kw = {"variable": "co2_emissions", **kw}
    with pytest.raises(W.WedgeError, match=message):
        W.compute("plan_2021", **kw)


def test_wedges_command(capsys, tmp_path):
    out = tmp_path / "w.csv"
    assert main(["wedges", "only_industry", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Contributions to the CO2 emissions (co2_emissions) reduction of only_industry" in text
    assert "groups changed: Industry (industry)" in text
    assert "total_coal_consumption" in text
    table = pd.read_csv(out)
    assert list(table.columns) == ["variable", "year", "group", "contribution", "unit"]
    assert set(table.loc[table["variable"] == "co2_emissions", "unit"]) == {"MtCO2/Year"}
    assert main(["wedges", "only_industry", "--csv", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["wedges", "plan_2021", "--years", "2040"]) == 2
    assert "outside the simulated years" in capsys.readouterr().err


def test_each_lever_group_has_one_name_everywhere():
    """Each lever group has one name in every place that shows it.

    The CLI, charts and app use chart_group_<key>; the only_<key> scenario and the
    README use the same name.
    """
    from pathlib import Path

    from greenpath.cli.commands.wedges import _group_label
    from greenpath.i18n import t
    from greenpath.scenarios import scenario as scenarios

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for group in W.lever_groups():
        key = group.replace(" ", "_")
        for lang in ("en", "zh"):
            name = t(f"chart_group_{key}", lang)
            assert _group_label(group, lang) == name
            assert f"| `{group}` |" in readme
            assert f" {name} |" in readme, (group, lang)
            if group != "timing":
                only = scenarios.load(f"only_{key}")
                title = only.title_zh if lang == "zh" else only.title_en.lower()
                assert (name if lang == "zh" else name.lower()) in title, (group, title)
