"""Sensitivity analysis (SALib wiring against analytic indices) and PRIM scenario discovery."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from greenpath.cli import main
from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.runners import discovery as dc
from greenpath.runners import ensemble as en
from greenpath.runners import sensitivity as se
from greenpath.runners.ensemble import EnsembleError

# ---------------------------------------------------------------------------
# SALib wiring on models with known indices
# ---------------------------------------------------------------------------


ISHIGAMI_A, ISHIGAMI_B = 7.0, 0.1
ISHIGAMI_RANGES = {f"x{i}": (-np.pi, np.pi) for i in (1, 2, 3)}
#: The indices tabulated for a = 7, b = 0.1 (Ishigami and Homma 1990; the usual benchmark
#: of Sobol' estimators), to four decimals.
ISHIGAMI_S1 = [0.3139, 0.4424, 0.0]
ISHIGAMI_ST = [0.5576, 0.4424, 0.2437]


def _ishigami(x: pd.DataFrame, a: float = ISHIGAMI_A, b: float = ISHIGAMI_B) -> pd.DataFrame:
    """Evaluate the Ishigami function (an evaluator for the project's sensitivity code)."""
    y = np.sin(x["x1"]) + a * np.sin(x["x2"]) ** 2 + b * x["x3"] ** 4 * np.sin(x["x1"])
    return pd.DataFrame({"y": y})


def _ishigami_analytic(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form first- and total-order indices of the Ishigami function on [-pi, pi]^3."""
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    var = v1 + v2 + v13
    s1 = np.array([v1, v2, 0.0]) / var
    st = np.array([v1 + v13, v2, v13]) / var
    return s1, st


def test_sobol_indices_of_ishigami_are_the_published_ones():
    """The project's Sobol' machinery (sampling, clipping, SALib analysis) on Ishigami.

    With 8192 base samples (40,960 evaluations) every index is within 0.01 of the
    tabulated value and of the closed form, which agree to 1e-4 with each other.
    """
    table = se.sobol_indices(ISHIGAMI_RANGES, _ishigami, n=8192, seed=3)
    assert list(table["factor"]) == ["x1", "x2", "x3"]
    assert table.attrs["runs"] == 8192 * 5
    np.testing.assert_allclose(table["S1"], ISHIGAMI_S1, atol=0.01)
    np.testing.assert_allclose(table["ST"], ISHIGAMI_ST, atol=0.01)
    s1, st = _ishigami_analytic(ISHIGAMI_A, ISHIGAMI_B)
    np.testing.assert_allclose(s1, ISHIGAMI_S1, atol=1e-4)
    np.testing.assert_allclose(st, ISHIGAMI_ST, atol=1e-4)
    # A different a and b moves the estimates with the closed form (not fixed numbers).
    other = se.sobol_indices(ISHIGAMI_RANGES, lambda x: _ishigami(x, a=2.0, b=0.3), n=8192, seed=3)
    s1, st = _ishigami_analytic(2.0, 0.3)
    np.testing.assert_allclose(other["S1"], s1, atol=0.015)
    np.testing.assert_allclose(other["ST"], st, atol=0.015)


def test_morris_screening_of_ishigami_sees_the_interaction():
    """Morris on Ishigami: x3 acts only through its interaction with x1 (S1 = 0, ST = 0.24).

    The closed form says screening must not drop x3: its elementary effects are
    ``b sin(x1) d(x3^4)``, large but of either sign (odd in x1 on a symmetric range), so
    mu* is of the order of the others', mu is near zero and sigma exceeds mu*.  The effect
    of x1 is mostly ``cos(x1)``-shaped plus the same interaction, that of x2 is periodic
    (``sin^2`` over two periods): its mean effect is near zero too.
    """
    morris = se.morris_indices(ISHIGAMI_RANGES, _ishigami, trajectories=100, seed=1).set_index("factor")
    assert morris.attrs["runs"] == 100 * 4
    top = morris["mu_star"].max()
    assert morris.loc["x3", "mu_star"] > 0.5 * top
    assert morris.loc["x3", "sigma"] > morris.loc["x3", "mu_star"]
    assert abs(morris.loc["x3", "mu"]) < 0.25 * morris.loc["x3", "mu_star"]
    assert abs(morris.loc["x2", "mu"]) < 0.25 * morris.loc["x2", "mu_star"]
    # With b = 0 the interaction is gone: x3 has no effect at all.
    flat = se.morris_indices(ISHIGAMI_RANGES, lambda x: _ishigami(x, b=0.0), trajectories=20,
                             seed=1).set_index("factor")
    assert flat.loc["x3", "mu_star"] == pytest.approx(0.0, abs=1e-12)
    assert flat.loc["x1", "mu_star"] > 0.1


def test_sobol_indices_of_ishigami():
    table = se.sobol_indices(ISHIGAMI_RANGES, _ishigami, n=4096, seed=1)
    assert table.attrs["runs"] == 4096 * 5
    s1, st = _ishigami_analytic(ISHIGAMI_A, ISHIGAMI_B)
    np.testing.assert_allclose(table["S1"], s1, atol=0.02)
    np.testing.assert_allclose(table["ST"], st, atol=0.02)
    # the analytic values lie inside (twice) the reported 95 % intervals
    assert np.all(np.abs(table["S1"] - s1) <= 2 * table["S1_conf"])
    assert np.all(np.abs(table["ST"] - st) <= 2 * table["ST_conf"])


def test_sobol_and_morris_of_a_linear_model():
    coef = {"x1": 1.0, "x2": -2.0, "x3": 0.5, "x4": 0.0}
    ranges = {"x1": (0.0, 1.0), "x2": (0.0, 3.0), "x3": (-1.0, 1.0), "x4": (5.0, 6.0)}

    def evaluate(x: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"y": sum(c * x[k] for k, c in coef.items())})

    var = {k: (hi - lo) ** 2 / 12 for k, (lo, hi) in ranges.items()}
    total = sum(coef[k] ** 2 * var[k] for k in coef)
    analytic = np.array([coef[k] ** 2 * var[k] / total for k in coef])
    sobol = se.sobol_indices(ranges, evaluate, n=4096, seed=2)
    np.testing.assert_allclose(sobol["S1"], analytic, atol=0.02)
    np.testing.assert_allclose(sobol["ST"], analytic, atol=0.02)
    # Morris: every elementary effect of a linear model is coef * range, exactly
    morris = se.morris_indices(ranges, evaluate, trajectories=10, seed=2)
    expected = np.array([abs(coef[k]) * (ranges[k][1] - ranges[k][0]) for k in coef])
    np.testing.assert_allclose(morris["mu_star"], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(morris["sigma"], 0.0, atol=1e-9)
    assert morris.attrs["runs"] == 10 * 5


def test_constant_outcome_is_reported_not_divided_by_zero():
    def evaluate(x: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"flat": np.full(len(x), 3.0), "y": x["a"]})

    ranges = {"a": (0.0, 1.0), "b": (0.0, 1.0)}
    sobol = se.sobol_indices(ranges, evaluate, n=64, seed=1)
    flat = sobol[sobol["outcome"] == "flat"]
    assert flat["S1"].isna().all()
    assert (flat["note"] == "constant").all()
    morris = se.morris_indices(ranges, evaluate, trajectories=4, seed=1)
    assert morris[morris["outcome"] == "flat"]["mu_star"].isna().all()


def test_bad_sample_sizes():
    ranges = {"a": (0.0, 1.0)}

    def evaluate(x):
        return pd.DataFrame({"y": x["a"]})

    with pytest.raises(EnsembleError, match="power of 2"):
        se.sobol_indices(ranges, evaluate, n=1000)
    with pytest.raises(EnsembleError, match="at least 2"):
        se.morris_indices(ranges, evaluate, trajectories=1)


def test_select_top_takes_each_outcomes_leaders():
    morris = pd.DataFrame({
        "outcome": ["o1"] * 4 + ["o2"] * 4,
        "factor": ["a", "b", "c", "d"] * 2,
        "mu_star": [100.0, 2.0, 1.0, 0.5, 0.1, 0.2, 0.9, 0.3],
    })
    # best ranks: a 1 (o1), c 1 (o2), b 2 (o1), d 2 (o2); ties by normalised mu*: a, c then b (0.02), d (0.33)
    assert se.select_top(morris, 2) == ["a", "c"]
    assert se.select_top(morris, 4) == ["a", "c", "d", "b"]
    with pytest.raises(EnsembleError, match="at least one factor"):
        se.select_top(morris, 0)


# ---------------------------------------------------------------------------
# Model outcomes and factors
# ---------------------------------------------------------------------------


def test_outcomes_equal_the_indicator_functions():
    sample = en.sample_parameters(["carbon_price", "gdp_growth_2023_to_2030", "policy_start_year"], 6, seed=3)
    runs = en.run_many(sample, se.OUTCOME_COLUMNS, output="arrays")
    out = se.outcome_values(runs.values, runs.years)
    for i in range(len(sample)):
        frame = runs.frame(i)
        assert out.loc[i, "coal_change_2025"] == pytest.approx(
            indicators.change_vs(frame, "total_coal_consumption").loc[2025], rel=1e-12)
        assert out.loc[i, "energy_intensity_change_2025"] == pytest.approx(
            indicators.change_vs(frame, "energy_intensity").loc[2025], rel=1e-12)
        assert out.loc[i, "co2_peak_year"] == indicators.peak(frame)[0]
        assert out.loc[i, "co2_cumulative_2021_2035"] == pytest.approx(indicators.cumulative(frame), rel=1e-12)


def test_factor_sets():
    every = se.factor_ranges("all")
    levers = se.factor_ranges("levers")
    assert set(levers) == {k for k, p in reg.levers().items() if p.max > p.min}
    assert set(levers) < set(every)
    assert "coal_emission_factor" not in every  # a constant with a single value
    proj = se.factor_ranges("projection")
    assert set(proj) == set(levers) | set(en.projection_uncertainties())
    assert se.factor_ranges(["carbon_price"]) == {"carbon_price": (0.0, 300.0)}
    with pytest.raises(EnsembleError, match="factors 'some' is not one of"):
        se.factor_ranges("some")


def test_run_sensitivity_is_seeded_and_ranks_known_drivers():
    kwargs = {"method": "both", "n": 64, "trajectories": 4, "top": 3, "factors": "levers", "seed": 5}
    first = se.run_sensitivity(**kwargs)
    second = se.run_sensitivity(**kwargs)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert set(first.sobol_factors) == set(se.OUTCOMES)
    morris = first.table
    for outcome, picked in first.sobol_factors.items():
        # each outcome's Sobol factors are its own Morris leaders
        leaders = morris[morris["outcome"] == outcome].sort_values("mu_star", ascending=False)
        assert set(picked) == set(leaders["factor"].head(3)), outcome
        sobol_rows = morris[(morris["outcome"] == outcome)].dropna(subset=["ST"])
        assert set(sobol_rows["factor"]) == set(picked)
    sets = {tuple(f) for f in first.sobol_factors.values()}
    assert first.meta["runs"] == 4 * (len(se.factor_ranges("levers")) + 1) + len(sets) * 64 * (3 + 2)
    # levers that act before 2025 but only from the policy start: delaying the start
    # is the leading driver of the 2025 coal change among the levers
    coal = first.table[first.table["outcome"] == "coal_change_2025"]
    assert coal.sort_values("mu_star", ascending=False)["factor"].iloc[0] == "policy_start_year"


def test_parse_outcome_forms_equal_direct_computation():
    sample = en.sample_parameters(["carbon_price", "wind_build_rate"], 5, seed=2)
    specs = ["co2_emissions@2035", "cumulative:co2_emissions:2021-2035", "change:total_coal_consumption@2025",
             "peak_year:co2_emissions", "coal_change_2025"]
    outcomes = {o.name: o for o in map(se.parse_outcome, specs)}
    columns = sorted({c for o in outcomes.values() for c in o.columns})
    runs = en.run_many(sample, columns, output="arrays")
    out = se.outcome_values(runs.values, runs.years, outcomes)
    for i in range(len(sample)):
        frame = runs.frame(i)
        assert out.loc[i, "co2_emissions@2035"] == frame.loc[2035, "co2_emissions"]
        assert out.loc[i, "cumulative:co2_emissions:2021-2035"] == pytest.approx(
            indicators.cumulative(frame), rel=1e-12)
        assert out.loc[i, "change:total_coal_consumption@2025"] == pytest.approx(
            indicators.change_vs(frame, "total_coal_consumption").loc[2025], rel=1e-12)
        assert out.loc[i, "peak_year:co2_emissions"] == indicators.peak(frame)[0]
    assert outcomes["co2_emissions@2035"].text("zh") == "2035年二氧化碳排放"
    assert outcomes["cumulative:co2_emissions:2021-2035"].unit == "MtCO2"


@pytest.mark.parametrize(("spec", "message"), [
    ("co2_emision@2035", "did you mean 'co2_emissions'"),
    ("co2_emissions@2040", "year 2040 outside"),
    ("cumulative:co2_emissions:2030-2021", "run backwards"),
    ("co2_emissions", "not understood; allowed: coal_change_2025"),
])
def test_parse_outcome_errors(spec, message):
    with pytest.raises(EnsembleError, match=re.escape(message)):
        se.parse_outcome(spec)


def test_scenario_analysis_holds_start_year_and_the_scenarios_levers():
    from greenpath.scenarios import scenario as scenarios

    plan = scenarios.load("plan_2021")
    ranges = se.factor_ranges("all")
    held = se.held_factors("plan_2021", ranges)
    set_levers = {k for k in plan.settings() if reg.load_registry()[k].kind == "lever" and k in ranges}
    assert set(held) == set_levers | {"policy_start_year"}
    assert se.held_factors(None, ranges) == {}
    assert "policy_start_year" not in se.held_factors("plan_2021", ranges, vary_start_year=True)
    assert set(se.held_factors("plan_2021", ranges, vary_scenario_levers=True)) == {"policy_start_year"}
    result = se.run_sensitivity("plan_2021", method="morris", trajectories=2, factors="levers",
                                outcomes=["co2_emissions@2030"])
    assert set(result.table["factor"]).isdisjoint(held)
    assert result.meta["held"].keys() == {k for k in held if k in se.factor_ranges("levers")}
    # a factor named in a list is varied even with a scenario
    named = se.run_sensitivity("plan_2021", method="morris", trajectories=2,
                               factors=["policy_start_year", "carbon_price"], outcomes=["co2_emissions@2030"])
    assert set(named.table["factor"]) == {"policy_start_year", "carbon_price"}


def test_negative_s1_is_annotated_and_labels_are_bilingual():
    ranges = {"a": (0.0, 1.0), "b": (0.0, 1.0)}
    morris = None
    sobol = pd.DataFrame({"outcome": ["o", "o"], "factor": ["a", "b"], "S1": [0.9, -0.02],
                          "S1_conf": [0.05, 0.05], "ST": [0.95, 0.01], "ST_conf": [0.05, 0.01],
                          "note": ["", ""]})
    outcome = se.Outcome("o", "Out", "x", ("gdp",), lambda v, y: v["gdp"][:, 0], "结果")
    with pytest.raises(KeyError):  # factors must be registry parameters
        se._combine(ranges, morris, sobol, {"o": outcome})
    ranges = {"wind_build_rate": (0.0, 500.0), "carbon_price": (0.0, 300.0)}
    sobol["factor"] = list(ranges)
    table = se._combine(ranges, morris, sobol, {"o": outcome}).set_index("factor")
    assert table.loc["carbon_price", "note"] == "S1<0: noise, read as 0"
    assert table.loc["wind_build_rate", "note"] == ""
    assert table.loc["wind_build_rate", "factor_label_zh"] == reg.load_registry()["wind_build_rate"].label_zh
    assert table.loc["wind_build_rate", "outcome_label_zh"] == "结果"
    sobol.loc[1, "S1"] = -0.2
    table = se._combine(ranges, morris, sobol, {"o": outcome}).set_index("factor")
    assert table.loc["carbon_price", "note"] == "S1<0 beyond its interval: raise --n"


# ---------------------------------------------------------------------------
# PRIM
# ---------------------------------------------------------------------------


def _synthetic(n: int = 4000, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.random((n, 5)), columns=["a", "b", "c", "d", "e"])
    y = x["a"].between(0.2, 0.6).to_numpy() & (x["b"] >= 0.5).to_numpy()
    if noise:
        y = y ^ (rng.random(n) < noise)
    return x, y


def test_prim_recovers_a_known_box():
    x, y = _synthetic()
    found = dc.prim(x, y)
    assert sorted(found.box.restricted) == ["a", "b"]
    limits = found.box.limits
    # One peel removes alpha = 5 % of the box's runs: near the end about 0.025 of a
    # side's range, the resolution of the limits.
    assert limits.loc["a", "lower"] == pytest.approx(0.2, abs=0.03)
    assert limits.loc["a", "upper"] == pytest.approx(0.6, abs=0.03)
    assert limits.loc["b", "lower"] == pytest.approx(0.5, abs=0.03)
    assert limits.loc["b", "upper"] == pytest.approx(x["b"].max())
    assert found.box.density >= 0.95
    assert found.box.coverage >= 0.85
    restricted = found.table[found.table["restricted"]]
    assert set(restricted["dimension"]) == {"a", "b"}
    # dropping a true restriction lowers the density a lot
    assert (restricted["density_without"] < 0.6).all()


def test_prim_with_noise_and_the_box_rule():
    x, y = _synthetic(noise=0.1, seed=1)
    found = dc.prim(x, y, min_coverage=0.5, paste=False)
    assert {"a", "b"} <= set(found.box.restricted)
    assert found.box.limits.loc["a", "lower"] == pytest.approx(0.2, abs=0.06)
    assert found.box.limits.loc["b", "lower"] == pytest.approx(0.5, abs=0.06)
    t = found.trajectory
    # peeling: coverage never rises, each box holds fewer runs, min_mass is respected
    assert (np.diff(t["coverage"]) <= 1e-12).all()
    assert (np.diff(t["mass"]) < 0).all()
    assert t["mass"].min() >= dc.MIN_MASS
    # the stated rule: densest box among those with coverage >= min_coverage
    eligible = t[t["coverage"] >= 0.5]
    assert found.chosen == eligible["step"][eligible["density"] == eligible["density"].max()].iloc[0]
    assert found.box.density == pytest.approx(eligible["density"].max())


def test_prim_pasting_never_lowers_density():
    x, y = _synthetic(noise=0.05, seed=2)
    peeled = dc.prim(x, y, paste=False)
    pasted = dc.prim(x, y, paste=True)
    assert pasted.box.density >= peeled.box.density
    assert pasted.box.mass >= peeled.box.mass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.6}, r"alpha = 0.6: the peel share must lie in \(0, 0.5\)"),
        ({"min_mass": 0.0}, r"min_mass = 0.0: must lie in \(0, 1\)"),
        ({"min_coverage": 1.5}, r"min_coverage = 1.5: must lie in \[0, 1\]"),
    ],
)
def test_prim_bad_settings(kwargs, message):
    x, y = _synthetic(n=100)
    with pytest.raises(EnsembleError, match=message):
        dc.prim(x, y, **kwargs)


def test_prim_bad_data():
    x, y = _synthetic(n=100)
    with pytest.raises(EnsembleError, match="no run is a case of interest"):
        dc.prim(x, np.zeros(100, dtype=bool))
    with pytest.raises(EnsembleError, match="x has 100 rows and y 99 values"):
        dc.prim(x, y[:99])


def test_peak_years_equal_indicator_peak():
    years = np.arange(2015, 2036)
    co2 = np.vstack([np.sin(years / 3.0), -np.abs(years - 2027.0), years * 1.0])
    got = dc.peak_years(co2, years)
    for row, year in zip(co2, got, strict=True):
        frame = pd.DataFrame({"co2_emissions": row}, index=years)
        assert year == indicators.peak(frame)[0]
    assert got[1] == 2027
    assert got[2] == 2035


def _rebound_after_a_2020_maximum() -> tuple[np.ndarray, np.ndarray]:
    """CO2 with its 2015-2035 maximum in 2020 (the history point), a fall, then a 5 % rebound.

    The review's finding: the plan's "peak" was the 2020 record followed by a rebound
    to 2035; by the rule (稳中有降) that is not a peak.
    """
    years = np.arange(2015, 2036)
    co2 = np.where(years <= 2020, 30.0 + (years - 2015), 35.0 - 0.5 * (years - 2020))
    co2 = np.where(years >= 2026, co2[years == 2026][0] * (1 + 0.005 * (years - 2026)), co2)
    assert co2.argmax() == 5
    assert co2[-1] / co2[years >= 2020].min() - 1 > 0.04
    return years, co2


def test_discovery_never_counts_a_maximum_followed_by_a_rebound_as_a_peak():
    years, co2 = _rebound_after_a_2020_maximum()
    rows = np.vstack([co2, -np.abs(years - 2027.0)])
    got = dc.peak_years(rows, years)
    assert got[0] == 2035  # not peaked: counted as the last year, never <= peak_by
    assert got[1] == 2027
    frame = pd.DataFrame({"co2_emissions": co2}, index=years)
    assert not indicators.peak_status(frame)["peaked"]


def test_peak_year_outcome_never_counts_a_maximum_followed_by_a_rebound_as_a_peak():
    years, co2 = _rebound_after_a_2020_maximum()
    outcome = se.parse_outcome("peak_year:co2_including_imports")
    got = outcome.compute({"co2_including_imports": co2[None, :]}, years)
    frame = pd.DataFrame({"co2_including_imports": co2}, index=years)
    assert got[0] == indicators.peak(frame, "co2_including_imports")[0] == 2035


def test_discover_on_the_model():
    result = dc.discover(n=400, seed=3, levers=["policy_start_year", "carbon_price", "ccus_capacity"],
                         peak_by=2025)
    assert 0 < result.meta["share_of_interest"] < 1
    assert list(result.sample.columns[:3]) == ["policy_start_year", "carbon_price", "ccus_capacity"]
    table = result.box_table
    assert set(table["lever"]) == {"policy_start_year", "carbon_price", "ccus_capacity"}
    assert (table["box_min"] <= table["box_max"]).all()
    # peaking by 2025 needs the levers to start early: the start year is capped
    start = table.set_index("lever").loc["policy_start_year"]
    assert start["restricted"]
    assert start["box_max"] < 2030
    with pytest.raises(EnsembleError, match="'gdp_growth_2020' is an uncertainty, not a lever"):
        dc.discover(n=20, levers=["gdp_growth_2020"])


# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------


def test_sensitivity_command(tmp_path, capsys):
    args = ["sensitivity", "--method", "both", "--n", "16", "--trajectories", "2", "--top", "2",
            "--factors", "carbon_price,policy_start_year,gdp_growth_2023_to_2030", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Coal use 2025 vs 2020" in out
    for name in ("sensitivity.csv", "sensitivity.meta.json", "morris.png", "sobol.png"):
        assert (tmp_path / name).stat().st_size > 0
    table = pd.read_csv(tmp_path / "sensitivity.csv")
    assert set(table["outcome"]) == set(se.OUTCOMES)
    meta = json.loads((tmp_path / "sensitivity.meta.json").read_text())
    assert meta["seed"] == en.DEFAULT_SEED
    assert main(args) == 2
    assert "pass --force to replace" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert main(["sensitivity", "--n", "1000", "--out", str(tmp_path / "x")]) == 2
    assert "must be a power of 2" in capsys.readouterr().err
    assert main(["sensitivity", "--factors", "carbon_prise", "--out", str(tmp_path / "y")]) == 2
    assert "unknown parameter 'carbon_prise' (did you mean 'carbon_price'?)" in capsys.readouterr().err
    assert main(["sensitivity", "--factors", "levers", "--exclude", "gdp_growth_2020", "--out",
                 str(tmp_path / "w")]) == 2
    assert "'gdp_growth_2020' is not among the factors 'levers'" in capsys.readouterr().err
    outcome = ["sensitivity", "--method", "both", "--n", "16", "--trajectories", "2", "--top", "2",
               "--scenario", "plan_2021", "--factors", "projection", "--outcome", "co2_emissions@2035",
               "--lang", "zh", "--out", str(tmp_path / "o")]
    assert main(outcome) == 0
    printed = capsys.readouterr().out
    assert "2035年二氧化碳排放" in printed
    assert "读数说明" in printed  # the reading guide
    assert "保持情景设定不变:policy_start_year" in printed
    table = pd.read_csv(tmp_path / "o" / "sensitivity.csv", encoding="utf-8-sig")
    assert set(table["outcome"]) == {"co2_emissions@2035"}
    assert "policy_start_year" not in set(table["factor"])
    assert "wind_build_rate" not in set(table["factor"])  # set by plan_2021: held
    excl = ["sensitivity", "--method", "morris", "--trajectories", "2", "--factors",
            "carbon_price,policy_start_year", "--exclude", "policy_start_year", "--out", str(tmp_path / "v")]
    assert main(excl) == 0
    capsys.readouterr()
    assert set(pd.read_csv(tmp_path / "v" / "sensitivity.csv")["factor"]) == {"carbon_price"}


def test_discover_command(tmp_path, capsys):
    args = ["discover", "--n", "300", "--levers", "timing,carbon_price", "--peak-by", "2025",
            "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chosen box" in out
    for name in ("prim_box.csv", "prim_trajectory.csv", "prim_tradeoff.png", "discover.meta.json"):
        assert (tmp_path / name).stat().st_size > 0
    box = pd.read_csv(tmp_path / "prim_box.csv")
    assert set(box["lever"]) == {"policy_start_year", "carbon_price"}
    assert main(args) == 2
    assert "pass --force to replace" in capsys.readouterr().err
    assert main(["discover", "--levers", "energy_suply", "--out", str(tmp_path / "z")]) == 2
    assert "(did you mean 'energy_supply'?)" in capsys.readouterr().err


def test_seed_help_names_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["sensitivity", "--help"])
    assert str(en.DEFAULT_SEED) in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["discover", "--help"])
    assert str(en.DEFAULT_SEED) in capsys.readouterr().out
