"""Tests for greenpath.calibration.metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from greenpath.calibration.metrics import (
    TheilStatistics,
    fit_table,
    lewis_grade,
    mape,
    r_squared,
    theil,
)

# Worked example used throughout: obs = [1, 2, 3, 4], sim = [2, 2, 2, 6].
#   errors sim - obs            = [1, 0, -1, 2]
#   |error| / obs               = [1, 0, 1/3, 1/2], sum = 11/6, mean = 11/24
#   MAPE                        = 100 * 11/24 = 45.8333... %
#   SS_res = 1 + 0 + 1 + 4      = 6
#   mean(obs) = 2.5, SS_tot     = 2.25 + 0.25 + 0.25 + 2.25 = 5
#   R^2 = 1 - 6/5               = -0.2
#   MSE = 6/4                   = 1.5, RMSE = sqrt(1.5)
#   (error/obs)^2               = [1, 0, 1/9, 1/4], mean = (49/36)/4 = 49/144
#   RMSPE = 100 * sqrt(49/144)  = 100 * 7/12 = 58.333... %
#   mean(sim) = 3; U^M = (3 - 2.5)^2 / 1.5 = 0.25 / 1.5 = 1/6
#   population SDs: S_obs = sqrt(5/4) = sqrt(1.25);
#                   sim deviations [-1, -1, -1, 3] -> var = 12/4 = 3, S_sim = sqrt(3)
#   U^S = (sqrt(3) - sqrt(1.25))^2 / 1.5 = (4.25 - 2 sqrt(3.75)) / 1.5 = 0.251344...
#   cov = mean([(-1)(-1.5), (-1)(-0.5), (-1)(0.5), (3)(1.5)]) = (1.5 + 0.5 - 0.5 + 4.5)/4 = 1.5
#   r = 1.5 / (sqrt(3) sqrt(1.25)) = 1.5 / sqrt(3.75) = 0.774597...
#   U^C = 2 (1 - r) S_sim S_obs / MSE = 2 (sqrt(3.75) - 1.5) / 1.5 = 0.581989...
#   check: U^M + U^S + U^C = 1/6 + (4.25 - 3) / 1.5 = 1/6 + 5/6 = 1
OBS = [1.0, 2.0, 3.0, 4.0]
SIM = [2.0, 2.0, 2.0, 6.0]


def test_mape_hand_example() -> None:
    assert mape(OBS, SIM) == pytest.approx(100 * 11 / 24)


def test_r_squared_hand_example() -> None:
    assert r_squared(OBS, SIM) == pytest.approx(-0.2)


def test_theil_hand_example() -> None:
    t = theil(OBS, SIM)
    assert isinstance(t, TheilStatistics)
    assert t.n == 4
    assert t.mse == pytest.approx(1.5)
    assert t.rmse == pytest.approx(math.sqrt(1.5))
    assert t.rmspe_pct == pytest.approx(100 * 7 / 12)
    assert t.r == pytest.approx(1.5 / math.sqrt(3.75))
    assert t.u_m == pytest.approx(1 / 6)
    assert t.u_s == pytest.approx((4.25 - 2 * math.sqrt(3.75)) / 1.5)
    assert t.u_c == pytest.approx(2 * (math.sqrt(3.75) - 1.5) / 1.5)
    assert t.u_m + t.u_s + t.u_c == pytest.approx(1.0)


def test_second_hand_example_growth_series() -> None:
    # obs = [100, 110, 121], sim = [100, 108, 125]
    #   errors = [0, -2, 4]; |e|/obs = [0, 2/110, 4/121]
    #   MAPE = 100/3 * (2/110 + 4/121) = 100/3 * (0.0181818 + 0.0330579) = 1.707989 %
    #   MSE = (0 + 4 + 16) / 3 = 20/3
    #   mean obs = 110.333..., SS_tot = 106.777 + 0.111 + 113.777 = 220.6667
    #   R^2 = 1 - 20 / 220.6667 = 0.909366
    obs, sim = [100.0, 110.0, 121.0], [100.0, 108.0, 125.0]
    assert mape(obs, sim) == pytest.approx(100 / 3 * (2 / 110 + 4 / 121))
    assert r_squared(obs, sim) == pytest.approx(1 - 20 / (220 + 2 / 3))
    assert theil(obs, sim).mse == pytest.approx(20 / 3)


def test_perfect_fit() -> None:
    obs = [3.0, 5.0, 4.0, 8.0]
    assert mape(obs, obs) == 0.0
    assert r_squared(obs, obs) == 1.0
    t = theil(obs, obs)
    assert t.mse == 0.0
    assert t.rmspe_pct == 0.0
    # shares are 0/0 for a perfect fit and reported as NaN, not silently 0
    assert math.isnan(t.u_m)
    assert math.isnan(t.u_s)
    assert math.isnan(t.u_c)
    assert lewis_grade(mape(obs, obs)) == "high"


def test_pure_bias_is_all_u_m() -> None:
    obs = np.array([10.0, 12.0, 15.0, 11.0, 20.0])
    t = theil(obs, obs + 3.0)
    assert t.mse == pytest.approx(9.0)
    assert t.u_m == pytest.approx(1.0)
    assert t.u_s == pytest.approx(0.0, abs=1e-12)
    assert t.u_c == pytest.approx(0.0, abs=1e-12)


def test_pure_variance_is_all_u_s() -> None:
    # sim = mean + 2 (obs - mean): same mean, r = 1, twice the spread
    obs = np.array([1.0, 2.0, 3.0, 6.0])
    sim = obs.mean() + 2 * (obs - obs.mean())
    t = theil(obs, sim)
    assert t.u_m == pytest.approx(0.0, abs=1e-12)
    assert t.u_s == pytest.approx(1.0)
    assert t.u_c == pytest.approx(0.0, abs=1e-12)


def test_pure_covariance_is_all_u_c() -> None:
    # reversed series: same mean and SD, r = -1
    # obs = [1, 2, 3], sim = [3, 2, 1]: MSE = (4 + 0 + 4)/3 = 8/3;
    # S = sqrt(2/3) for both; U^C = 2 (1 - (-1)) (2/3) / (8/3) = 1
    t = theil([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert t.mse == pytest.approx(8 / 3)
    assert t.r == pytest.approx(-1.0)
    assert t.u_m == pytest.approx(0.0, abs=1e-12)
    assert t.u_s == pytest.approx(0.0, abs=1e-12)
    assert t.u_c == pytest.approx(1.0)


def test_theil_constant_simulation_has_defined_shares() -> None:
    # sim constant at the obs mean: r undefined, but the shares are still defined:
    # obs = [1, 3], sim = [2, 2]: MSE = 1, U^M = 0, U^S = (0 - 1)^2 / 1 = 1, U^C = 0
    t = theil([1.0, 3.0], [2.0, 2.0])
    assert math.isnan(t.r)
    assert (t.u_m, t.u_s, t.u_c) == pytest.approx((0.0, 1.0, 0.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
            st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
        ),
        min_size=2,
        max_size=30,
    )
)
def test_theil_shares_sum_to_one(pairs: list[tuple[float, float]]) -> None:
    obs = np.array([p[0] for p in pairs])
    sim = np.array([p[1] for p in pairs])
    t = theil(obs, sim)
    assume(t.mse > 1e-3)
    assert t.u_m + t.u_s + t.u_c == pytest.approx(1.0, abs=1e-6)
    assert min(t.u_m, t.u_s, t.u_c) >= -1e-9


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (0.0, "high"),
        (9.999, "high"),
        (10.0, "good"),
        (19.999, "good"),
        (20.0, "reasonable"),
        (49.999, "reasonable"),
        (50.0, "inaccurate"),
        (300.0, "inaccurate"),
    ],
)
def test_lewis_grade_boundaries(value: float, grade: str) -> None:
    assert lewis_grade(value) == grade


@pytest.mark.parametrize("value", [-0.1, math.nan])
def test_lewis_grade_rejects_invalid(value: float) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        lewis_grade(value)


def test_nan_pairs_are_dropped() -> None:
    # usable pairs: (1, 2) and (4, 6) -> |e|/obs = [1, 0.5] -> MAPE = 75 %
    obs = [1.0, math.nan, 3.0, 4.0]
    sim = [2.0, 5.0, math.nan, 6.0]
    assert mape(obs, sim) == pytest.approx(75.0)
    assert theil(obs, sim).n == 2
    # R^2 on (1, 2), (4, 6): SS_res = 1 + 4 = 5, SS_tot = 2 * 1.5^2 = 4.5
    assert r_squared(obs, sim) == pytest.approx(1 - 5 / 4.5)


def test_empty_input_names_the_series() -> None:
    for func in (mape, r_squared, theil):
        with pytest.raises(ValueError, match="co2_emissions_mt"):
            func([], [], name="co2_emissions_mt")


def test_all_nan_names_the_series_from_its_pandas_name() -> None:
    obs = pd.Series([math.nan, 2.0], index=[2010, 2011], name="gdp_real_growth_pct")
    sim = pd.Series([1.0, math.nan], index=[2010, 2011])
    with pytest.raises(ValueError, match="gdp_real_growth_pct"):
        mape(obs, sim)


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="'x'.*3 values.*2"):
        mape([1.0, 2.0, 3.0], [1.0, 2.0], name="x")


def test_mape_zero_observation_raises() -> None:
    with pytest.raises(ValueError, match="undefined"):
        mape([0.0, 1.0], [1.0, 1.0], name="x")


def test_r_squared_constant_observations_is_nan() -> None:
    assert math.isnan(r_squared([5.0, 5.0, 5.0], [4.0, 5.0, 6.0]))


def test_series_are_matched_by_year() -> None:
    # history indexed by int year, simulation by float time with extra steps and years
    obs = pd.Series([1.0, 2.0, 3.0, 4.0], index=[2005, 2006, 2007, 2008], name="x")
    sim = pd.Series(
        [9.0, 2.0, 2.0, 7.0, 2.0, 6.0],
        index=[2004.0, 2005.0, 2006.0, 2006.5, 2007.0, 2008.0],
    )
    # matched pairs are exactly the worked example
    assert mape(obs, sim) == pytest.approx(100 * 11 / 24)
    assert theil(obs, sim).u_m == pytest.approx(1 / 6)


def test_fit_table_one_row_per_series() -> None:
    years = [2005, 2006, 2007, 2008]
    observed = {
        "a": pd.Series(OBS, index=years),
        "b": pd.Series([10.0, 12.0, 15.0, 11.0], index=years),
    }
    simulated = pd.DataFrame(
        {"sim_a": SIM, "sim_b": [13.0, 15.0, 18.0, 14.0]},
        index=[float(y) for y in years],
    )
    table = fit_table(observed, simulated, pairs={"a": "sim_a", "b": "sim_b"})
    assert list(table["series"]) == ["a", "b"]
    assert list(table["simulated_as"]) == ["sim_a", "sim_b"]
    row_a = table.iloc[0]
    assert row_a["n"] == 4
    assert row_a["first_year"] == 2005
    assert row_a["last_year"] == 2008
    assert row_a["mape_pct"] == pytest.approx(100 * 11 / 24)
    assert row_a["lewis_grade"] == "reasonable"
    assert row_a["r_squared"] == pytest.approx(-0.2)
    assert row_a["u_m"] == pytest.approx(1 / 6)
    row_b = table.iloc[1]
    # b: pure bias of +3 -> U^M = 1; MAPE = 100/4 * (3/10 + 3/12 + 3/15 + 3/11)
    assert row_b["u_m"] == pytest.approx(1.0)
    assert row_b["mape_pct"] == pytest.approx(25 * (0.3 + 0.25 + 0.2 + 3 / 11))
    assert row_b["lewis_grade"] == "reasonable"


def test_fit_table_default_pairs_and_errors() -> None:
    obs = {"x": pd.Series([1.0, 2.0], index=[2000, 2001])}
    table = fit_table(obs, {"x": pd.Series([1.0, 2.0], index=[2000, 2001])})
    assert table.loc[0, "mape_pct"] == 0.0
    with pytest.raises(KeyError, match="x"):
        fit_table(obs, {"y": pd.Series([1.0], index=[2000])})
    with pytest.raises(ValueError, match="'x'"):
        fit_table(obs, {"x": pd.Series([1.0, 2.0], index=[1990, 1991])})
