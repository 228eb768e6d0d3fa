"""Costs and air pollutants: accounting, signs, discounting, Shapley split, the CLI.

The cost and pollutant variables are model outputs (last section of the .mdl); these
tests hold them to accounting identities and to closed forms computed here from the
registry, and hold :mod:`greenpath.runners.costs` to the discounting formula and to the exact
additivity of its Shapley split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.model import registry as reg
from greenpath.runners import costs
from greenpath.scenarios import scenario as scenarios

PARTS = list(costs.COST_PARTS)


@pytest.fixture(scope="module")
def base(model):
    return model.run(**scenarios.load("baseline").run_kwargs()).frame


@pytest.fixture(scope="module")
def plan(model):
    return model.run(**scenarios.load("plan_2021").run_kwargs()).frame


@pytest.fixture(scope="module")
def report():
    return costs.analyse("plan_2021", samples=12, seed=3)


# ---------------------------------------------------------------- accounting identities

@pytest.mark.parametrize("which", ["base", "plan"])
def test_cost_groups_add_up_to_the_total(which, request):
    f = request.getfixturevalue(which)
    np.testing.assert_allclose(f[PARTS].sum(axis=1), f["total_energy_system_cost"], rtol=1e-12)
    np.testing.assert_allclose(f[list(costs.PAYERS)].sum(axis=1), f["capital_spending"],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        f[["coal_purchase_cost", "oil_purchase_cost", "gas_purchase_cost",
           "electricity_import_cost"]].sum(axis=1), f["energy_purchase_cost"], rtol=1e-12)


def test_coal_bill_is_tonnes_times_price(base):
    """Closed form from the registry: 10k tce x CNY/tce / 1e4 = 100m CNY (no price trend)."""
    price = reg.effective_defaults()["coal_price"]
    np.testing.assert_allclose(base["coal_purchase_cost"],
                               base["total_coal_consumption"] * price / 1e4, rtol=1e-12)


def test_renewable_capital_is_commissioning_times_unit_cost(base):
    """Wind capital in a year = MW commissioned x CNY/kW on the learning curve.

    One step of (1 - learning rate) per global doubling time after 2021.
    """
    d = reg.effective_defaults()
    y = 2028  # row y holds data year y + 1
    doubling = (y + 1 - 2021) / d["wind_capacity_doubling_time"]
    unit = d["wind_capital_cost_2021"] * (1 - d["wind_learning_rate"]) ** doubling
    assert base.loc[y, "wind_capital_spending"] == pytest.approx(
        base.loc[y, "wind_commissioning"] * unit / 1e5, rel=1e-12)


@pytest.mark.parametrize("which", ["base", "plan"])
def test_pollutant_sectors_add_up(which, request):
    f = request.getfixturevalue(which)
    for p in costs.POLLUTANTS:
        stem = p.replace("_emissions", "")
        np.testing.assert_allclose(f[[f"{stem}_{s}" for s in costs.SECTORS]].sum(axis=1), f[p],
                                   rtol=1e-12)
    # the sectors' fuels are all the coal and oil the city burns, each once
    np.testing.assert_allclose(f["stove_coal"] + f["boiler_coal"] + f["power_sector_coal"],
                               f["total_coal_consumption"], rtol=1e-12)
    np.testing.assert_allclose(f["transport_oil"] + f["other_oil"], f["total_oil"], rtol=1e-12)


def test_power_so2_is_limit_times_flue_gas_after_ultra_low_emission(base):
    """mg/m3 x m3/kgce x 1e7 kgce per 10k tce / 1e9 mg per t: the unit conversion, by hand."""
    d = reg.effective_defaults()
    factor = 35 * d["flue_gas_per_kgce"] * d["emission_compliance_ratio"] * 1e7 / 1e9
    years = [y for y in base.index if y + 1 >= d["power_ule_year"]]
    np.testing.assert_allclose(base.loc[years, "so2_power"],
                               base.loc[years, "power_sector_coal"] * factor, rtol=1e-12)
    before = [y for y in base.index if y + 1 < d["power_ule_year"]]
    pre = 363 * 0.293076  # t/PJ x PJ per 10k tce
    np.testing.assert_allclose(base.loc[before, "so2_power"],
                               base.loc[before, "power_sector_coal"] * pre, rtol=1e-12)


def test_deaths_are_tonnes_times_per_tonne_factors(base):
    expected = (base["pm25_emissions"] * 0.016 + base["so2_emissions"] * 0.0044
                + base["nox_emissions"] * 0.00065) * reg.effective_defaults()["china_health_factor_scale"]
    np.testing.assert_allclose(base["premature_deaths_from_air_pollutants"], expected, rtol=1e-12)


# ---------------------------------------------------------------- levers and signs

MEASURE_COSTS = {
    # lever -> (value, cost variable it must move)
    "industrial_saving_action_rate": (0.07, "industry_costs"),
    "industrial_coal_substitution_rate": (0.1, "fuel_switching_costs"),
    "building_coal_substitution_rate": (0.15, "clean_heating_investment"),
    "urban_gas_penetration_target": (0.98, "gas_connection_investment"),
    "nev_share_target_delivery": (0.9, "nev_delivery_investment"),
    "rail_freight_share_target": (0.3, "rail_shift_investment"),
    "large_coal_retirement_rate": (0.1, "early_coal_retirement_cost"),
    "ccus_capacity": (1.0, "ccus_cost"),
    "renewable_heat_share_target": (0.3, "renewable_heat_investment"),
    "wind_build_rate": (300, "renewable_capital_spending"),
}


def test_baseline_levers_cost_nothing(base):
    """Measures the baseline does not take carry no cost from 2020 on.

    Before 2020 the industry group carries the cost of the recorded dual-control effort
    of the 11th-13th five-year plans (the policy-effort loop), which the baseline keeps
    as history; "no new policy" means none after it.
    """
    for var in ["industry_costs", "early_coal_retirement_cost", "ccus_cost", "renewable_heat_investment"]:
        assert (base.loc[2020:, var].abs() < 1e-12).all(), var
    assert (base.loc[2016:2019, "industry_costs"] > 0).all()


@pytest.mark.parametrize("lever", sorted(MEASURE_COSTS))
def test_each_measure_costs_something_and_its_baseline_value_nothing(model, base, lever):
    value, var = MEASURE_COSTS[lever]
    at_default = model.run({lever: reg.effective_defaults()[lever]}).frame
    pd.testing.assert_frame_equal(at_default[[var, "total_energy_system_cost"]],
                                  base[[var, "total_energy_system_cost"]])
    moved = model.run({lever: value}).frame
    after = moved.index >= 2020
    assert (moved.loc[after, var] - base.loc[after, var]).sum() > 0, lever


def test_more_renewables_raise_capital_and_cut_fuel_cost(model, base):
    more = model.run({"wind_build_rate": 500, "utility_pv_build_rate": 500,
                      "distributed_pv_build_rate": 600}).frame
    years = range(2024, 2036)
    assert (more.loc[years, "renewable_capital_spending"]
            > base.loc[years, "renewable_capital_spending"]).all()
    assert (more.loc[years, "energy_purchase_cost"] < base.loc[years, "energy_purchase_cost"]).all()
    assert (more.loc[years, "undepreciated_capital"] > base.loc[years, "undepreciated_capital"]).all()


def test_clean_heating_cuts_stove_pollution(model, base):
    more = model.run({"building_coal_substitution_rate": 0.2}).frame
    years = range(2022, 2036)
    for var in ["so2_buildings_and_farms", "pm25_buildings_and_farms"]:
        assert (more.loc[years, var] < base.loc[years, var]).all(), var


# ---------------------------------------------------------------- discounting and Shapley

@pytest.mark.parametrize("rate", [0.08, 0.06, 0.031754348])
def test_npc_of_a_constant_stream_is_the_annuity(rate):
    c, k = 10.0, 4.0
    n = costs.LAST_YEAR - costs.FIRST_YEAR + 1
    annuity = c * (1 - (1 + rate) ** -n) / (1 - 1 / (1 + rate))
    got = costs.net_present_cost(np.full(n, c), k, rate)
    assert got == pytest.approx(annuity - k / (1 + rate) ** n, rel=1e-12)


def test_npc_at_zero_rate_is_the_plain_sum():
    x = np.arange(15.0)
    assert costs.net_present_cost(x, 3.0, 0.0) == pytest.approx(x.sum() - 3.0)


def test_bad_discount_rate_is_refused():
    with pytest.raises(costs.CostError, match="discount rate"):
        costs.discount_factors(float("nan"))


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_shapley_values_add_up_and_are_symmetric(n):
    coalitions, w = costs.shapley_weights(n)
    rng = np.random.default_rng(n)
    v = rng.normal(size=len(coalitions))
    v[0] = 0.0
    phi = w @ v
    assert phi.sum() == pytest.approx(v[-1] - v[0])
    # an additive game gives each player its own value
    own = rng.normal(size=n)
    additive = np.array([own[list(c)].sum() for c in coalitions])
    np.testing.assert_allclose(w @ additive, own, atol=1e-12)


def test_spearman_matches_a_monotone_transform():
    rng = np.random.default_rng(0)
    x = rng.random((50, 2))
    y = np.exp(3 * x[:, 0])
    rho = costs.spearman(x, y)
    assert rho[0] == pytest.approx(1.0)
    assert abs(rho[1]) < 0.4


# ---------------------------------------------------------------- the analysis

def test_groups_add_up_to_the_total(report):
    g = report.groups.set_index("group")
    parts = g.drop(index="total")
    assert parts["npc"].sum() == pytest.approx(g.loc["total", "npc"], rel=1e-9, abs=1e-9)
    assert parts["co2_reduction_mt"].sum() == pytest.approx(g.loc["total", "co2_reduction_mt"], rel=1e-9)
    ok = parts["cost_per_t"].notna()
    np.testing.assert_allclose(parts.loc[ok, "cost_per_t"],
                               parts.loc[ok, "npc"] * 100 / parts.loc[ok, "co2_reduction_mt"], rtol=1e-12)
    yearly = report.group_yearly.groupby("year")["change"].sum()
    total = report.yearly[report.yearly["item"] == costs.COST_VARIABLE].set_index("year")["change"]
    np.testing.assert_allclose(yearly.to_numpy(), total.to_numpy(), rtol=1e-9, atol=1e-9)


def test_npc_is_the_discounted_yearly_change(report, model, base, plan):
    """The report's central NPC equals the closed form on two plain runs."""
    rows = np.arange(costs.FIRST_YEAR - 1, costs.LAST_YEAR)
    d_cost = (plan.loc[rows, costs.COST_VARIABLE] - base.loc[rows, costs.COST_VARIABLE]).to_numpy()
    d_res = plan.loc[2035, "undepreciated_capital"] - base.loc[2035, "undepreciated_capital"]
    r = 0.08
    expected = (d_cost / (1 + r) ** np.arange(15)).sum() - d_res / (1 + r) ** 15
    central = report.npc.set_index("rate_name").loc[costs.HEADLINE_RATE, "central"]
    assert central == pytest.approx(expected, rel=1e-9)
    # a lower rate weighs the later years more
    assert report.npc["p10"].le(report.npc["p90"]).all()


def test_mac_curve_is_sorted_and_contiguous(report):
    mac = report.mac_curve()
    assert mac["cost_per_t"].is_monotonic_increasing
    np.testing.assert_allclose(mac["start_mt"].iloc[1:].to_numpy(), mac["end_mt"].iloc[:-1].to_numpy())
    assert (mac["co2_reduction_mt"] > costs.MIN_REDUCTION_MT).all()


def test_plan_cleans_the_air(report):
    h = report.health.set_index("measure")
    for p in costs.POLLUTANTS:
        assert h.loc[f"{p}_reduction_2021_2035", "central"] > 0
    assert h.loc["deaths_avoided_2021_2035", "p10"] <= h.loc["deaths_avoided_2021_2035", "p90"]
    assert h.loc["deaths_avoided_2021_2035", "central"] > 0


def test_a_scenario_equal_to_the_baseline_costs_nothing():
    rep = costs.analyse("baseline", samples=0)
    assert rep.attrs["players"] == []
    assert (rep.npc["central"].abs() < 1e-9).all()
    assert rep.yearly["change"].abs().max() < 1e-9


def test_bad_arguments_are_refused():
    with pytest.raises(costs.CostError, match="co2"):
        costs.analyse("plan_2021", co2="everything")
    with pytest.raises(costs.CostError, match="samples"):
        costs.analyse("plan_2021", samples=-1)


def test_cli_prints_both_languages_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "costs"
    assert main(["costs", "plan_2021", "--samples", "0", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Net present cost vs baseline" in text
    assert "Premature deaths avoided" in text
    assert {p.name for p in out.iterdir()} >= {"npc.csv", "groups.csv", "mac_curve.csv",
                                               "pollutants.csv", "health.csv"}
    assert main(["costs", "plan_2021", "--samples", "0", "--lang", "zh"]) == 0
    zh = capsys.readouterr().out
    assert "净现值成本" in zh
    assert "避免的过早死亡" in zh
    assert main(["costs", "plan_2021", "--samples", "0", "--csv", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["costs", "plan_2021", "--years", "2040"]) == 2


def test_vector_engine_and_pysd_give_the_same_report():
    """The cost analysis runs its coalitions on the vector engine; PySD is the reference."""
    vec = costs.analyse("only_energy", samples=2, seed=1, engine="vector")
    ref = costs.analyse("only_energy", samples=2, seed=1, engine="pysd")
    pd.testing.assert_frame_equal(vec.groups, ref.groups, rtol=1e-9)
    pd.testing.assert_frame_equal(vec.pollutants, ref.pollutants, rtol=1e-9)
    with pytest.raises(costs.CostError, match="engine"):
        costs.analyse("only_energy", samples=0, engine="fast")
