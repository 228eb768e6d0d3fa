"""Calibration v2: physical anchors, the posterior sample, the backtest and the chance of meeting targets."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from greenpath.calibration import anchors, backtest
from greenpath.calibration import history as hist
from greenpath.calibration import posterior as P
from greenpath.calibration.objective import Objective
from greenpath.calibration.series import FitSeries, apply_cutoff, build_series, fit_final_time
from greenpath.calibration.simulators import make_simulator
from greenpath.calibration.space import DEFAULT_PARAMETERS, ParameterSpace
from greenpath.calibration.store import load_calibration
from greenpath.model import registry as reg
from greenpath.runners import chance as ch
from greenpath.runners import ensemble
from greenpath.scenarios import targets as tg

# --------------------------------------------------------------------------- chance: closed forms


def test_share_met_closed_form():
    met = np.zeros((10, 3), dtype=bool)
    met[:, 0] = True  # every draw meets it
    met[:3, 1] = True  # 3 of 10
    assert ch.share_met(met).tolist() == [1.0, 0.3, 0.0]
    assert np.isnan(ch.share_met(np.zeros((0, 2), dtype=bool))).all()
    with pytest.raises(ValueError, match="runs, targets"):
        ch.share_met(np.zeros(3, dtype=bool))


def test_format_chance_never_rounds_a_possible_outcome_away():
    assert ch.format_chance(1.0) == "100 %"
    assert ch.format_chance(0.0) == "0 %"
    assert ch.format_chance(0.004) == "<1 %"
    assert ch.format_chance(0.996) == ">99 %"
    assert ch.format_chance(0.61) == "61 %"
    assert ch.format_chance(float("nan")) == "–"


def _targets(text: str) -> list[tg.Target]:
    return tg.from_text(text, "test targets")


ALWAYS_NEVER = """
[[target]]
id = "always"
indicator = "co2_emissions"
year = 2030
comparison = "<="
value = 1000000
unit = "Mt CO2"
label_en = "always met"
label_zh = "总是达成"
source = "test: no run emits a million Mt"

[[target]]
id = "never"
indicator = "co2_emissions"
year = 2030
comparison = "<="
value = 0
unit = "Mt CO2"
label_en = "never met"
label_zh = "从不达成"
source = "test: every run emits some CO2"
"""


def test_chance_of_a_target_every_draw_meets_is_100_and_none_is_0():
    out = ch.chance(None, _targets(ALWAYS_NEVER), n=40, seed=7)
    assert out.loc["always", "chance"] == 1.0
    assert out.loc["always", "n_met"] == 40
    assert out.loc["never", "chance"] == 0.0
    assert out.attrs["n"] == 40
    assert out.attrs["sampled"]


def test_chance_equals_the_share_of_the_same_runs_checked_one_by_one():
    """A threshold at the sample's median CO2 2030: the chance is the share of the runs below it."""
    frame, _ = ch.sample(None, 60, 11)
    runs = ensemble.run_many(frame, ["co2_emissions"], output="arrays")
    co2 = runs.values["co2_emissions"][:, list(runs.years).index(2030)]
    threshold = float(np.median(co2))
    text = ALWAYS_NEVER.split("[[target]]")[1].replace('"always"', '"median"').replace("1000000", repr(threshold))
    out = ch.chance(None, _targets("[[target]]" + text), n=60, seed=11)
    assert out.loc["median", "chance"] == pytest.approx(float(np.mean(co2 <= threshold)))


# --------------------------------------------------------------------------- posterior


def test_gelman_rubin_is_one_for_identical_groups_and_large_for_shifted_ones():
    rng = np.random.default_rng(0)
    chain = rng.standard_normal((400, 16, 2))
    r = P.gelman_rubin(chain, 4)
    assert np.all(np.abs(r - 1.0) < 0.02)
    shifted = chain.copy()
    shifted[:, 0::4, 1] += 3.0  # group 0 sits three sd away in parameter 1
    r2 = P.gelman_rubin(shifted, 4)
    assert abs(r2[0] - 1.0) < 0.02
    assert r2[1] > 1.5
    with pytest.raises(P.PosteriorError, match="groups"):
        P.gelman_rubin(chain[:, :4], 4)


def test_point_weights_undo_the_series_weighting():
    history = hist.load_history(hist.DEFAULT_HISTORY_PATH)
    series = apply_cutoff(build_series(history), None)
    w = P.point_weights(series)
    assert w.size == sum(s.n_residuals for s in series)
    first = series[0]
    assert np.allclose(w[: first.n], math.sqrt(first.n))


def _posterior_setup():
    history = hist.load_history(hist.DEFAULT_HISTORY_PATH)
    series = apply_cutoff(build_series(history), None)
    sim = make_simulator("vector", 1, fit_final_time(series))
    space = ParameterSpace(["initial_gdp", "tertiary_growth_differential"])
    return Objective(sim, series, space, 0.0), space


def test_sample_posterior_is_deterministic_for_a_seed_and_stays_in_range():
    objective, space = _posterior_setup()
    kw = dict(walkers=8, steps=6, burn=2, thin=2, groups=2)
    a = P.sample_posterior(objective, space.prior_u, 5, **kw)
    b = P.sample_posterior(objective, space.prior_u, 5, **kw)
    assert np.array_equal(a.draws, b.draws)
    assert a.draws.shape == (2 * 8, 2)
    assert np.all(a.draws >= space.lower)
    assert np.all(a.draws <= space.upper)
    assert a.n_runs > 0
    assert 0.0 <= a.acceptance.mean() <= 1.0
    with pytest.raises(P.PosteriorError, match="walkers 3 not allowed"):
        P.sample_posterior(objective, space.prior_u, 5, walkers=3, steps=6, burn=2, thin=2, groups=2)
    with pytest.raises(P.PosteriorError, match="prior_weight = 0"):
        P.log_probability(Objective(objective.simulator, objective.series, space, 1.0))


def test_log_probability_is_minus_infinity_outside_the_registry_ranges():
    objective, space = _posterior_setup()
    lp = P.log_probability(objective)(np.array([[0.5, 0.5], [1.2, 0.5], [0.5, -0.1]]))
    assert np.isfinite(lp[0])
    assert lp[1] == -np.inf
    assert lp[2] == -np.inf


def test_stored_posterior_matches_its_source():
    """calibration/posterior.csv is generated: it must belong to the model, registry, history and calibration."""
    cal = reg.CALIBRATED_PATH
    post = cal.with_name(P.POSTERIOR_FILE)
    draws, header = P.read_posterior(post)
    current = P.source_hashes()
    for key in ("model_sha256", "registry_sha256", "history_sha256"):
        assert header[key] == current[key], f"{post.name} is stale ({key}): run greenpath calibrate --force"
    doc = load_calibration(cal)
    assert doc["posterior"]["sha256"] == P._sha(post), "calibrated.toml records another posterior file"
    assert int(header["n_draws"]) == len(draws) == doc["posterior"]["n_draws"]
    assert int(header["seed"]) == doc["meta"]["seed"]
    assert list(draws.columns) == doc["meta"]["fitted"]


def test_read_posterior_names_file_line_column_and_range(tmp_path):
    p = reg.lookup("initial_gdp")
    path = tmp_path / "posterior.csv"
    path.write_text(f"# greenpath_posterior = 1\ninitial_gdp\n{p.default}\n{p.max * 2}\n", encoding="utf-8")
    with pytest.raises(P.PosteriorError, match=r"posterior.csv: line 4: initial_gdp = .* is outside"):
        P.read_posterior(path)
    path.write_text("initial_gdp\n500\n", encoding="utf-8")
    with pytest.raises(P.PosteriorError, match="not a greenpath posterior file"):
        P.read_posterior(path)
    path.write_text("# greenpath_posterior = 1\nnot_a_parameter\n1\n", encoding="utf-8")
    with pytest.raises(P.PosteriorError, match="not_a_parameter"):
        P.read_posterior(path)


def test_draw_rows_is_seeded_and_excludes_held_settings():
    a, why = P.draw_rows(30, 3, exclude=["initial_gdp"])
    b, _ = P.draw_rows(30, 3, exclude=["initial_gdp"])
    assert a is not None
    assert "posterior draws" in why
    assert a.equals(b)
    assert "initial_gdp" not in a.columns
    assert len(a) == 30


def test_without_a_calibration_the_bands_fall_back_and_say_so(monkeypatch):
    monkeypatch.setenv("GREENPATH_CALIBRATION", "none")
    P._WARNED.clear()
    with pytest.warns(RuntimeWarning, match="projection uncertainties around the point calibration only"):
        draws, why = P.draw_rows(10, 1)
    assert draws is None
    assert "GREENPATH_CALIBRATION=none" in why
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = ensemble.bands(None, n=20, columns=["co2_emissions"])
    assert out.attrs["posterior"] == []
    assert "GREENPATH_CALIBRATION=none" in out.attrs["posterior_source"]


def test_bands_draw_the_calibrated_parameters_from_the_posterior():
    out = ensemble.bands(None, n=60, columns=["co2_emissions", "gdp"])
    assert set(out.attrs["posterior"]) == set(load_calibration(reg.CALIBRATED_PATH)["meta"]["fitted"])
    # history is no longer one line: the posterior widens it, but it stays near the record (2012-15 CEADs)
    history = hist.load_history(hist.DEFAULT_HISTORY_PATH)
    ceads = hist.series(history, "co2_emissions_mt").loc[2012:2015]
    p10, p90 = out[("co2_emissions", 10)].loc[2012:2015], out[("co2_emissions", 90)].loc[2012:2015]
    assert (p90 > p10).all()
    assert ((p10 <= ceads * 1.2) & (p90 >= ceads * 0.8)).all()
    held = ensemble.bands({"initial_gdp": 500.0}, n=20, columns=["gdp"])
    assert "initial_gdp" not in held.attrs["posterior"]


# --------------------------------------------------------------------------- anchors and backtest


def test_an_anchor_the_model_lacks_is_skipped_with_the_reason(monkeypatch):
    history = hist.load_history(hist.DEFAULT_HISTORY_PATH)
    fitted = {s.key for s in anchors.anchor_series(history, 2005, 2035)}
    assert fitted == {a.key for a in anchors.ANCHORS}
    monkeypatch.setattr(anchors, "model_variables", lambda: frozenset({"caustic_soda_output"}))
    kept = anchors.anchor_series(history, 2005, 2035)
    assert [s.key for s in kept] == ["caustic_soda_output"]
    reasons = dict(anchors.skipped(history))
    assert "primary_aluminium_output" in reasons["aluminium_output"]
    assert "model" in reasons["aluminium_output"]


def test_emission_factor_scale_is_not_fitted():
    assert "emission_factor_scale" not in DEFAULT_PARAMETERS
    assert "emission_factor_scale" not in load_calibration(reg.CALIBRATED_PATH)["parameters"]


def test_backtest_direction_closed_forms():
    level = FitSeries(key="x", label="x", variable="v", observed=pd.Series([1.0, 2.0], index=[2016, 2017]),
                      output="gdp", transform="level", error="relative", sigma=0.1, role="fitted", unit="u",
                      rationale="")
    assert backtest._direction(level, np.array([1.0, 1.5]), np.array([1.0, 2.0]))[2] == "right"
    dm, do, verdict = backtest._direction(level, np.array([2.0, 1.0]), np.array([1.0, 2.0]))
    assert verdict == "wrong"
    assert dm == pytest.approx(-50.0)
    assert do == pytest.approx(100.0)
    assert backtest._direction(level, np.array([1.0, 2.0]), np.array([1.0, 1.001]))[2] == "flat (record)"
    growth = FitSeries(**{**level.__dict__, "transform": "growth_pct"})
    assert backtest._direction(growth, np.array([1.0, -1.0, 2.0]), np.array([2.0, 1.0, 3.0]))[2] == "right"
    assert backtest._direction(growth, np.array([-1.0, -1.0, 2.0]), np.array([2.0, 1.0, 3.0]))[2] == "wrong"


def test_calibration_file_records_the_backtest_with_its_coverage():
    doc = load_calibration(reg.CALIBRATED_PATH)
    bt = doc["backtest"]
    assert bt["cutoff"] == backtest.BACKTEST_CUTOFF
    inside = sum(r["inside"] for r in bt["series"].values())
    n = sum(r["n"] for r in bt["series"].values())
    assert n == bt["n_scored_points"]
    assert bt["coverage_p10_p90"] == pytest.approx(inside / n)
    for key, row in bt["series"].items():
        assert 0 <= row["inside"] <= row["n"], key
        assert all(max(b) >= 0 for b in (bt["bands"][key]["p90"],))
        assert all(lo <= hi for lo, hi in zip(bt["bands"][key]["p10"], bt["bands"][key]["p90"], strict=True))


def test_targets_command_prints_and_writes_the_chance(tmp_path, capsys):
    from greenpath.cli import main

    out = tmp_path / "t.csv"
    assert main(["targets", "plan_2021", "--samples", "20", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chance" in text
    assert "posterior draws" in text  # says what the chance is sampled over
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert table["chance"].between(0.0, 1.0).all()
    assert main(["targets", "plan_2021", "--samples", "-1"]) == 2
    assert "--samples -1" in capsys.readouterr().err
