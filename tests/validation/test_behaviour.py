"""SD validation, behaviour: the model when it runs.

Accounting, closed forms, extreme conditions, integration error, behaviour
reproduction (Sterman's battery, the parts we can automate).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from greenpath.model import registry
from greenpath.model.mdl import parse_mdl

VARIABLES = parse_mdl()
STOCKS = [v.name for v in VARIABLES if v.kind == "stock"]
HEADLINE_2035 = ["co2_emissions", "total_coal_consumption", "total_energy_consumption"]
DATA = Path(__file__).resolve().parents[2] / "calibration" / "data" / "history.csv"

# The largest settings the registry allows for coal exit.
COAL_BAN = {"small_coal_retirement_rate": 0.25, "large_coal_retirement_rate": 0.2,
            "new_coal_chp_additions": 0.0, "industrial_coal_substitution_rate": 0.25,
            "building_coal_substitution_rate": 0.25}
NO_RENEWABLES = {f"{k}_build_rate": 0.0 for k in
                 ("wind", "utility_pv", "distributed_pv", "biomass", "hydro")}
# Zero growth of demand: GDP, and the energy-intensive branches' own projected paths at
# the industry differential (-1 %/yr), as industry as a whole grows with zero GDP growth.
ZERO_GROWTH = {"gdp_growth_2023_to_2030": 0.0, "gdp_growth_2031_to_2035": 0.0,
               "nonferrous_growth_projected": -0.01, "chemicals_growth_projected": -0.01,
               "construction_activity_growth_projected": -0.01, "steel_growth_projected": -0.01}
# Beyond the registry (run unvalidated): coal gone at once, a shrinking economy, and
# every renewable build rate at its maximum.
TOTAL_COAL_BAN = {"small_coal_retirement_rate": 1.0, "large_coal_retirement_rate": 1.0,
                  "new_coal_chp_additions": 0.0, "industrial_coal_substitution_rate": 1.0,
                  "building_coal_substitution_rate": 1.0}
RECESSION = {"gdp_growth_2023_to_2030": -0.1, "gdp_growth_2031_to_2035": -0.1}
MAX_RENEWABLES = {f"{k}_build_rate": registry.load_registry()[f"{k}_build_rate"].max for k in
                  ("wind", "utility_pv", "distributed_pv", "biomass", "hydro")}
SHARES = [v.name for v in VARIABLES if v.unit == "Dmnl" and "share" in v.name
          and v.kind in ("stock", "auxiliary")]
PLAN_LIKE = {"industrial_saving_action_rate": 0.07, "distributed_pv_build_rate": 200.0,
             "wind_build_rate": 200.0, "industrial_coal_substitution_rate": 0.05,
             "rail_freight_share_target": 0.25, "nev_share_target_delivery": 0.95}


def test_no_stock_negative_or_nan_in_default_run(model):
    frame = model.run(return_columns=STOCKS).frame
    assert not frame.isna().any().any()
    assert (frame >= -1e-9).all().all(), frame.columns[(frame < -1e-9).any()].tolist()


def _euler_integral(model, stock: str, inflows: list[str], outflows: list[str], params=None):
    dt = 0.5
    r = model.run(params or {}, return_columns=[stock, *inflows, *outflows], saveper=dt).frame
    net = r[inflows].sum(axis=1) - (r[outflows].sum(axis=1) if outflows else 0.0)
    integrated = r[stock].iloc[0] + np.concatenate([[0.0], np.cumsum(net.to_numpy()[:-1] * dt)])
    return r[stock].to_numpy(), integrated


def _split_args(text: str) -> list[str]:
    """Split the top-level comma-separated arguments of a call's inner text."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    out.append(cur)
    return [a.strip() for a in out]


def _to_python(expr: str, names: dict[str, str]) -> str:
    """Rewrite a Vensim expression over model names into numpy code over ``v[...]``."""
    expr = " ".join(expr.split())
    while True:  # IF THEN ELSE(c, a, b) -> np.where(c, a, b), innermost first
        m = re.search(r"IF THEN ELSE\s*\(", expr, re.IGNORECASE)
        if not m:
            break
        depth, i = 1, m.end()
        while depth:
            depth += (expr[i] == "(") - (expr[i] == ")")
            i += 1
        c, a, b = _split_args(expr[m.end():i - 1])
        c = re.sub(r"(?<![<>=!])=(?!=)", "==", c)
        expr = f"{expr[:m.start()]}np.where({c}, {a}, {b}){expr[i:]}"
    for vensim in sorted(names, key=len, reverse=True):
        pattern = r"(?<![\w\]])" + r"\s+".join(map(re.escape, vensim.split())) + r"(?![\w\[])"
        expr = re.sub(pattern, f"v[{names[vensim]!r}]", expr, flags=re.IGNORECASE)
    return expr.replace("^", "**")


def _integ_parts(equation: str) -> tuple[str, str]:
    inner = equation.strip()
    inner = inner[inner.index("(") + 1:inner.rindex(")")]
    rate, initial = _split_args(inner)
    return rate, initial


class _Static(dict):
    """Values of constants, and of auxiliaries computed from constants only, on demand."""

    def __init__(self, names: dict[str, str], defaults: dict[str, float]) -> None:
        super().__init__(defaults)
        self.names = names
        self.equations = {v.name: v.equation for v in VARIABLES}

    def __missing__(self, key: str) -> float:
        value = eval(_to_python(self.equations[key], self.names), {"np": np}, {"v": self})  # noqa: S307
        self[key] = value
        return value


def _static_value(expr_py: str, names: dict[str, str], defaults: dict[str, float]) -> float:
    return eval(expr_py, {"np": np}, {"v": _Static(names, defaults)})  # noqa: S307


@pytest.mark.parametrize("stock", STOCKS)
def test_stock_accounting(model, stock):
    """Every stock = initial + integral of its net flow, integrated independently.

    The net flow and the initial value are re-evaluated here from the .mdl text: the
    flows from the run's saved auxiliaries at every TIME STEP, the initial value from
    the registry's effective defaults (not from the run), then integrated with Euler.
    """
    params = {**PLAN_LIKE, **COAL_BAN, "backward_capacity_exit_rate": 0.05}
    var = next(v for v in VARIABLES if v.name == stock)
    rate, initial = _integ_parts(var.equation)
    names = {v.vensim_name: v.name for v in VARIABLES}
    rate_py, initial_py = _to_python(rate, names), _to_python(initial, names)
    used = sorted(set(re.findall(r"v\['(\w+)'\]", rate_py)))
    defaults = registry.effective_defaults()
    constants = {v.name for v in VARIABLES if v.kind == "constant"}
    outputs = [n for n in used if n not in constants]
    dt = 0.5
    frame = model.run(params, return_columns=sorted({stock, *outputs}), saveper=dt).frame
    values = {n: frame[n].to_numpy() for n in outputs}
    values.update({n: {**defaults, **params}[n] for n in used if n in constants})
    flow = np.broadcast_to(eval(rate_py, {"np": np}, {"v": values}), frame.index.shape)  # noqa: S307
    start = _static_value(initial_py, names, defaults)
    integrated = start + np.concatenate([[0.0], np.cumsum(flow[:-1] * dt)])
    np.testing.assert_allclose(frame[stock].to_numpy(), integrated, rtol=1e-9, atol=1e-9)


def test_small_coal_retirement_is_first_order_decay(model):
    """Closed form.

    With a yearly retirement fraction r from the policy start and no additions,
    S(2020 + t) = S(2020) * (1 - r)^t = S(2020) * exp(-k t), k = -ln(1 - r), at every
    TIME STEP (the per-step rate is built to compound exactly). The captive small units
    (2x135 MW) have no recorded event after 2011, so the lever alone moves them.
    """
    r_ = 0.1
    k = -math.log(1 - r_)
    for dt in (0.5, 0.25):
        s = model.run({"small_coal_retirement_rate": r_, "new_coal_chp_additions": 0.0},
                      return_columns=["captive_small_coal_capacity"], time_step=dt,
                      saveper=dt).frame["captive_small_coal_capacity"]
        assert s.loc[2020] == pytest.approx(270.0)
        s0 = s.loc[2020.0] if 2020.0 in s.index else s.loc[2020]
        for t in np.arange(0.0, 15.0 + dt / 2, dt):
            assert s.loc[2020 + t] == pytest.approx(s0 * math.exp(-k * t), rel=1e-10), (dt, t)


def test_agriculture_intensity_is_exponential_decline(model):
    k = registry.load_registry()["agriculture_intensity_decline"].default
    s = model.run(return_columns=["intensity_agriculture"]).frame["intensity_agriculture"]
    s0 = registry.load_registry()["initial_intensity_agriculture"].default
    for year in (2010, 2020, 2035):
        assert s.loc[year] == pytest.approx(s0 * (1 - k * 0.5) ** (2 * (year - 2005)), rel=1e-12)


def test_gdp_compounds_exactly_at_recorded_growth(model):
    """Real growth of each recorded year is reproduced exactly (any TIME STEP)."""
    gdp = model.run(return_columns=["primary_va", "tertiary_va", "industrial_va", "gdp"]).frame
    assert gdp.loc[2021, "gdp"] / gdp.loc[2020, "gdp"] == pytest.approx(1.044, rel=0.02)
    d = registry.effective_defaults()
    for year, g in ((2010, 0.119), (2022, 0.033)):
        expected = (1 + g) * (1 + d["tertiary_growth_differential"])
        assert gdp.loc[year, "tertiary_va"] / gdp.loc[year - 1, "tertiary_va"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("params", [COAL_BAN, NO_RENEWABLES, ZERO_GROWTH,
                                    {**COAL_BAN, **NO_RENEWABLES, **ZERO_GROWTH},
                                    {"backward_capacity_exit_rate": 0.1,
                                     "energy_intensive_growth_cap": -0.05},
                                    TOTAL_COAL_BAN, RECESSION, MAX_RENEWABLES,
                                    {**MAX_RENEWABLES, **TOTAL_COAL_BAN, **RECESSION}],
                         ids=["coal_ban", "no_renewables", "zero_growth", "all_three",
                              "forced_exit", "total_coal_ban", "recession", "max_renewables",
                              "renewables_no_coal_recession"])
def test_extreme_conditions_bounded_and_sign_correct(model, params):
    base = model.run().frame
    run = model.run(params, validate=False).frame  # extreme values lie outside the ranges
    assert not run.isna().any().any()
    assert np.isfinite(run.to_numpy()).all()
    negative = run[STOCKS].columns[(run[STOCKS] < -1e-9).any()].tolist()
    assert not negative, f"negative stocks: {negative}"
    shares = run[SHARES]
    outside = shares.columns[((shares < -1e-9) | (shares > 1 + 1e-9)).any()].tolist()
    assert not outside, f"shares outside [0, 1]: {outside}"
    for col in ("co2_emissions", "total_energy_consumption", "total_coal_consumption",
                "electricity_consumption", "coal_generation"):
        assert (run[col] >= -1e-9).all(), col
        assert run[col].max() < 3 * base[col].max(), col
    assert (run.loc[:2019] - base.loc[:2019]).abs().max().max() == 0.0, "history changed"
    if params is COAL_BAN:
        assert run.loc[2035, "total_coal_consumption"] < 0.6 * base.loc[2035, "total_coal_consumption"]
        assert run.loc[2035, "co2_emissions"] < base.loc[2035, "co2_emissions"]
        assert run.loc[2035, "coal_capacity"] < 0.2 * base.loc[2035, "coal_capacity"]
        assert run.loc[2035, "net_electricity_import"] > base.loc[2035, "net_electricity_import"]
    if params is NO_RENEWABLES:
        # Recorded additions (to 2024) stay; nothing new is built after them; by 2035 the
        # ageing chain retires part of the 2013-16 cohorts (about 20 of 22.5 years old).
        for tech in ("wind_capacity", "utility_pv_capacity", "biomass_capacity"):  # the GEM record
            assert run.loc[2024, tech] == base.loc[2024, tech], tech
        assert run.loc[2035, "renewable_capacity"] <= run.loc[2024, "renewable_capacity"]
        assert run.loc[2035, "renewable_capacity"] > 0.7 * run.loc[2024, "renewable_capacity"]
        # Renewables displace grid purchases: stopping the build raises CO2 incl. imports.
        assert run.loc[2035, "co2_including_imports"] > base.loc[2035, "co2_including_imports"] + 0.5
    if params is TOTAL_COAL_BAN:
        assert run.loc[2025:, "coal_capacity"].max() == 0.0
        assert run.loc[2035, "total_coal_consumption"] < 0.3 * base.loc[2035, "total_coal_consumption"]
    if params is RECESSION:
        assert run.loc[2035, "gdp"] < 0.5 * run.loc[2022, "gdp"]
        assert run.loc[2035, "total_energy_consumption"] < base.loc[2035, "total_energy_consumption"]
    if params is MAX_RENEWABLES:
        assert run.loc[2035, "non_fossil_share"] > base.loc[2035, "non_fossil_share"]
        assert run.loc[2035, "co2_emissions"] <= base.loc[2035, "co2_emissions"]
    if params is ZERO_GROWTH:
        assert run.loc[2035, "gdp"] == pytest.approx(run.loc[2022, "gdp"], rel=0.02)
        assert run.loc[2035, "total_energy_consumption"] < base.loc[2035, "total_energy_consumption"]


@pytest.mark.parametrize("params", [{}, PLAN_LIKE, COAL_BAN])
def test_halving_time_step_changes_headlines_under_one_percent(model, params):
    coarse = model.run(params, return_columns=HEADLINE_2035, time_step=0.5).frame.loc[2035]
    fine = model.run(params, return_columns=HEADLINE_2035, time_step=0.25).frame.loc[2035]
    rel = (coarse / fine - 1).abs()
    assert (rel < 0.01).all(), rel.to_dict()


def _history(variable: str) -> dict[int, float]:
    with DATA.open(encoding="utf-8") as fh:
        return {int(r["year"]): float(r["value"]) for r in csv.DictReader(fh)
                if r["variable"] == variable and r["preferred"] == "1"}


def test_coal_capacity_reproduces_the_plant_list(model):
    """Behaviour reproduction: coal capacity is an input from the GEM unit list."""
    frame = model.run(return_columns=["coal_capacity"]).frame["coal_capacity"]
    hist = _history("coal_power_capacity_mw_gem_derived")
    for year, value in hist.items():
        if year <= 2020:
            assert frame.loc[year] == pytest.approx(value), year


def test_baseline_reproduces_recorded_history(model):
    """Behaviour reproduction against the series the model can be held to in level.

    Tolerances are the calibration's own scale (calibration/report/README.md): real GDP
    2020-22 within 2 %, post-census sector shares within 1.5 points, whole-city
    electricity 2017-19 within 5 %, CEADs CO2 after its 2011 step (2012-15) within 15 %.
    Before the step CEADs is about twice the model's level, which the model's structure
    cannot reproduce (see the report's CO2 section); there only the shape is held: the
    recorded series matches the model's within 10 % MAPE over 2005-10 once one
    level factor is taken out, as the calibration fits it.
    """
    cols = ["gdp", "primary_va", "secondary_va", "tertiary_va", "co2_emissions",
            "electricity_consumption"]
    frame = model.run(return_columns=cols).frame
    for year, value in _history("gdp_real_2020prices_100m_yuan").items():
        assert frame.loc[year, "gdp"] == pytest.approx(value, rel=0.02), year
    gdp_nominal = _history("gdp_current_100m_yuan")
    for sector in ("primary", "secondary", "tertiary"):
        recorded = _history(f"{sector}_va_100m_yuan")
        for year in (2020, 2021, 2022):
            share = 100 * recorded[year] / gdp_nominal[year]
            model_share = 100 * frame.loc[year, f"{sector}_va"] / frame.loc[year, "gdp"]
            assert model_share == pytest.approx(share, abs=1.5), (sector, year)
    for year, value in _history("electricity_consumption_100m_kwh").items():
        assert frame.loc[year, "electricity_consumption"] == pytest.approx(value, rel=0.05), year
    co2 = _history("co2_emissions_mt")
    for year in range(2012, 2016):
        assert frame.loc[year, "co2_emissions"] == pytest.approx(co2[year], rel=0.15), year
    years = range(2005, 2011)
    ratios = np.array([co2[y] / frame.loc[y, "co2_emissions"] for y in years])
    factor = np.exp(np.log(ratios).mean())
    shape_mape = 100 * np.mean(np.abs(ratios / factor - 1))
    assert shape_mape < 10.0, (factor, ratios)


def test_levers_leave_history_untouched(model):
    """Before the policy start every scenario is the same history.

    Values saved at year y are year-end stocks and the rates computed from them; flow
    variables saved at y are already the rates of year y+1, so in the last pre-policy
    year only stocks and the reported levels are compared.
    """
    from greenpath.model.indicators import HEADLINE

    levels = [*STOCKS, *HEADLINE, "co2_including_imports", "total_coal_consumption"]
    for params in (PLAN_LIKE, COAL_BAN, {"policy_start_year": 2025, **PLAN_LIKE}):
        start = int(params.get("policy_start_year", 2021))
        base = model.run({"policy_start_year": start}).frame
        run = model.run(params).frame
        assert (run.loc[:start - 2] - base.loc[:start - 2]).abs().max().max() == 0.0
        assert (run.loc[start - 1, levels] - base.loc[start - 1, levels]).abs().max() == 0.0
        assert not run.loc[start:].equals(base.loc[start:])


def test_sector_sums_equal_totals(model):
    """CO2 by sector and by fuel add up to the territorial total; coal by use too."""
    sectors = ["co2_power", "co2_heat", "co2_industry_energy", "co2_construction",
               "co2_buildings", "co2_transport", "co2_agriculture", "co2_process"]
    fuels = ["co2_coal", "co2_oil", "co2_gas", "co2_process"]
    coal = ["end_use_coal", "power_sector_coal", "heat_sector_coal"]
    cols = [*sectors, *fuels, *coal, "co2_emissions", "ccus_capture", "total_coal_consumption"]
    for params in ({}, {**PLAN_LIKE, "ccus_capacity": 1.0, "ccus_start_year": 2025}):
        f = model.run(params, return_columns=cols).frame
        total = f["co2_emissions"] + f["ccus_capture"]
        np.testing.assert_allclose(f[sectors].sum(axis=1), total, rtol=1e-12)
        np.testing.assert_allclose(f[fuels].sum(axis=1), total, rtol=1e-12)
        np.testing.assert_allclose(f[coal].sum(axis=1), f["total_coal_consumption"], rtol=1e-12)


@pytest.mark.parametrize("start", [2022, 2024, 2025, 2027, 2030])
def test_a_later_policy_start_alone_keeps_the_trend(model, start):
    """Moving only the policy start of the baseline leaves its trend in place.

    Between the last recorded plant year and the policy start, renewables keep being
    built at the trend rate (no years without additions); the only differences from
    the default start are the recorded additions the later start keeps.
    """
    techs = ("wind", "utility_pv", "distributed_pv", "biomass")
    cols = ["renewable_capacity", "co2_emissions", "total_coal_consumption",
            *(f"{t}_commissioning" for t in techs)]
    base = model.run(return_columns=cols).frame
    run = model.run({"policy_start_year": start}, return_columns=cols).frame
    for t in techs:
        assert (run.loc[2026:, f"{t}_commissioning"] > 0).all(), t
    assert run.loc[2035, "renewable_capacity"] == pytest.approx(base.loc[2035, "renewable_capacity"], rel=0.05)
    for col in ("co2_emissions", "total_coal_consumption"):
        assert run.loc[2035, col] == pytest.approx(base.loc[2035, col], rel=0.01), col
