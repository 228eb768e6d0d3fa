"""Report sections of calibration v2: emission factors, physical anchors, posterior, backtest, chances.

Every figure is read from the calibration file (``[posterior]``, ``[backtest]``,
``[uncertainty]``, ``[meta]``), the stored posterior sample, the registry, or runs made
while the report is written; nothing is typed by hand. :func:`sections` returns the
Markdown lines :func:`greenpath.calibration.report.write_report` inserts before the
structural notes (``backtest.png`` is drawn by
:func:`greenpath.calibration.report_charts.chart_backtest`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.calibration import anchors
from greenpath.calibration.series import _span, apply_cutoff, fit_final_time
from greenpath.calibration.simulators import make_simulator
from greenpath.calibration.store import sha256_file
from greenpath.model import registry as reg

__all__ = ["PLAN_SCENARIOS", "chance_rows", "sections"]

#: The shipped scenarios whose target chances the report gives.
PLAN_SCENARIOS: tuple[str, ...] = ("baseline", "plan_2021", "plan_2021_delayed", "plan_14th_fyp")
#: Nominal coverage of a P10-P90 band.
NOMINAL = 0.8
#: Backtest level errors (MAPE %) above this are named as wrong behaviour.
LEVEL_LIMIT = 10.0


def _f(v: Any, digits: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(x):
        return "-"
    return f"{x:,.{digits}g}" if abs(x) < 1e4 else f"{x:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out + [""]


def _emission_factors() -> list[str]:
    out = ["## Emission factors (fixed at documented values, not fitted)\n"]
    rows = []
    for name in ("coal_emission_factor", "oil_emission_factor", "gas_emission_factor"):
        p = reg.lookup(name)
        rows.append([f"`{name}`", f"{p.default:g} {p.unit}", p.source])
    out += _table(("factor", "value", "source"), rows)
    scale = reg.lookup("emission_factor_scale")
    out.append(f"`emission_factor_scale` is no longer fitted: it stays at {scale.default:g} (the per-fuel NDRC 2007 "
               "factors above), so the fit cannot trade one multiplier on coal, oil and gas against activity. Its "
               f"registry range {scale.min:g}-{scale.max:g} ({scale.source}) remains for explicit Monte Carlo "
               "runs over all uncertainties.\n")
    return out


def _anchors(ctx: Any) -> list[str]:
    out = ["## Physical anchors\n"]
    rows = []
    for a in anchors.ANCHORS:
        s = next((x for x in ctx.series if x.key == a.key), None)
        if s is None:
            continue
        years = s.years
        sim = ctx.frames["calibrated"].loc[years, a.output].to_numpy(dtype=float)
        obs = s.observed.to_numpy(dtype=float)
        err = float(np.mean(np.abs(sim / obs - 1.0)) * 100.0)
        rows.append([a.label, _span(years), _f(obs.mean()), _f(sim.mean()), a.unit, f"{err:.1f}",
                     "met" if err < 10.0 else "**missed**", f"{a.sigma:.0%}: {a.rationale}"])
    if rows:
        out += _table(("anchor", "years", "recorded", "model", "unit", "error %", "within 10 %", "sigma, why"), rows)
    for key, why in anchors.skipped(ctx.history):
        out.append(f"- `{key}` not fitted: {why}.")
    out.append("The coal fleet (GEM unit sum) is an input of the model (commissioning and retirement tables), "
               "compared as a cross-check above, not fitted.\n")
    return out


def _in_sample_coverage(ctx: Any, draws: pd.DataFrame) -> tuple[list[list[str]], float]:
    """P10-P90 of the posterior draws against every fitted level series in sample."""
    series = [s for s in ctx.series if s.role == "fitted" and not s.shape_only]
    sim = make_simulator("auto", final_time=fit_final_time(ctx.series))
    try:
        outputs = sim.simulate({n: draws[n].to_numpy(float) for n in draws.columns}, len(draws))
    finally:
        close = getattr(sim, "close", None)
        if close:
            close()
    rows, inside, total = [], 0, 0
    for s in series:
        v = s.simulated(outputs, sim.years)
        q10, q50, q90 = np.percentile(v, [10, 50, 90], axis=0)
        obs = s.observed.to_numpy(float)
        k = int(np.sum((obs >= q10) & (obs <= q90)))
        inside += k
        total += obs.size
        width = float(np.mean((q90 - q10) / np.abs(obs)) * 100.0) if s.transform != "growth_pct" else math.nan
        rows.append([f"`{s.key}`", _span(s.years), str(obs.size), f"{k}/{obs.size}",
                     _f(width) if math.isfinite(width) else "-",
                     _f(float(np.mean(np.abs(q50 / obs - 1.0)) * 100.0)) if s.transform != "growth_pct" else "-"])
    return rows, inside / total if total else math.nan


def _posterior(ctx: Any) -> list[str]:
    from greenpath.calibration import posterior as P

    table = ctx.doc.get("posterior")
    out = ["## Posterior sample\n"]
    if not table:
        return out + ["No posterior sample in this calibration (`--posterior-steps 0`): every band samples the "
                      "projection uncertainties around the point calibration only.\n"]
    out.append(f"Method: {table['method']}. Prior: uniform on each parameter's registry range (table below; the "
               "range's source is the registry row). Likelihood: every recorded point of the fitted series with its "
               "series' stated error (sigma and why in the series table), the points taken as independent (the "
               "point fit's 1/sqrt(n) series weighting is undone); shape-only series with their factor profiled "
               "out. The model's own misfit (an error scale per series, `calibration/discrepancy.py`) is not in "
               "this likelihood (integrated out there, it let the four CEADs points go and the 2012-15 CO2 band "
               "missed them all); it widens only the backtest's predictive band (a cut model). The walkers and "
               "the sampler's archive start from the point fit's last differential-evolution population (or a "
               f"ball of sd {P.START_SD:g} of the range around the point fit).\n")
    tau_max, steps, burn = float(table["tau_max"]), int(table["steps"]), int(table["burn"])
    enough = (steps - burn) >= P.TAU_FACTOR * tau_max
    out.append(f"- {table['walkers']} walkers x {steps} steps ({burn} burn-in), {table['n_model_runs']:,} model runs "
               f"in {table['wall_time_s']} s; seed {table['seed']}; {table['n_draws']} draws kept (every "
               f"{table['thin']}th step of every walker after burn-in), stored in `calibration/{table['file']}` "
               f"(sha256 `{str(table.get('sha256', ''))[:16]}…`).")
    ind = table.get("acceptance_independence_mean")
    out.append(f"- Acceptance fraction: mean {table['acceptance_mean']:.3f}, lowest walker "
               f"{table['acceptance_min']:.3f}"
               + (f"; of the independence steps alone {ind:.3f} ({table.get('tries', 1)} candidates a walker)"
                  if isinstance(ind, float) and math.isfinite(ind) else "") + ".")
    out.append(f"- Integrated autocorrelation time: up to {tau_max:.1f} steps; the {steps - burn} post-burn-in steps "
               f"are {(steps - burn) / tau_max:.1f} times that ("
               + (f"enough by emcee's rule of {P.TAU_FACTOR}" if enough else
                  f"**short of emcee's rule of {P.TAU_FACTOR}**: tau itself is a rough estimate, and the draws are "
                  "fewer independent samples than their count") + ").")
    out.append(f"- R-hat across {table['groups']} walker groups: at most {table['rhat_max']:.3f} "
               + ("(below 1.1)" if table["rhat_max"] < P.RHAT_LIMIT else "(**above 1.1: not converged**)")
               + "; the groups start from the same population and share the sampler's archive, so R-hat near 1 "
               "shows they agree, not that they explored independently.")
    out.append("- Verdict: " + ("converged by both rules." if table.get("converged") else
                                "**not converged by both rules**; the bands use the draws as they are, and a longer "
                                "chain (`--posterior-steps`) would tighten the estimate.") + "\n")
    path = Path(ctx.calibration_path).with_name(P.POSTERIOR_FILE)
    try:
        draws, _ = P.read_posterior(path)
    except P.PosteriorError as exc:
        return out + [f"> **Warning:** {exc}\n"]
    q = np.percentile(draws.to_numpy(float), [10, 50, 90], axis=0)
    rows = []
    for j, name in enumerate(draws.columns):
        p = reg.lookup(name)
        point = float(ctx.doc["parameters"][name])
        width = (q[2, j] - q[0, j]) / (p.max - p.min)
        rows.append([f"`{name}`", p.unit, f"{_f(p.min)} to {_f(p.max)}", _f(point), _f(q[0, j]), _f(q[1, j]),
                     _f(q[2, j]), f"{width:.2f}", _f(table["tau"].get(name)),
                     f"{table['rhat'].get(name, math.nan):.3f}"])
    out += _table(("parameter", "unit", "prior (uniform)", "point fit", "P10", "median", "P90",
                   "P10-P90 / range", "tau", "R-hat"), rows)
    out.append("A P10-P90 width near 0.8 of the range means the data leave the parameter where the uniform prior "
               "puts it; the bands then carry that width into the projections.\n")
    cov_rows, cov = _in_sample_coverage(ctx, draws)
    out.append(f"**History under the posterior.** Share of recorded in-sample points (level series) inside the "
               f"posterior P10-P90: {cov:.0%}.\n")
    out += _table(("series", "years", "n", "inside P10-P90", "mean band width % of record",
                   "median error %"), cov_rows)
    return out


def _backtest(ctx: Any) -> list[str]:
    from greenpath.calibration import backtest as B

    bt = ctx.doc.get("backtest")
    out = [f"## Backtest: fit through {B.BACKTEST_CUTOFF}, project {B.BACKTEST_FIRST}-{B.BACKTEST_LAST}\n"]
    if not bt:
        return out + ["Not run for this calibration (`--no-backtest`).\n"]
    out.append("Protocol (`calibration/backtest.py`): every fitted series cut at "
               f"{bt['cutoff']}; the same parameters, method, seed and budget as the main fit, then a posterior "
               f"sample ({bt['posterior']['walkers']} walkers x {bt['posterior']['steps']} steps, "
               f"{bt['posterior']['n_draws']} draws; acceptance {bt['posterior']['acceptance_mean']:.2f}, max tau "
               f"{bt['posterior']['tau_max']:.0f}, max R-hat {bt['posterior']['rhat_max']:.3f}). The projection "
               "runs from 2005 with the recorded coal and renewable unit tables and recorded GDP growth; the levers "
               "are at their registry defaults and act only from `policy start year` = 2021, so no plan lever acts "
               f"before 2021. {bt['n_points']} in-sample points; {bt['n_model_runs']:,} model runs in "
               f"{bt['wall_time_s']} s.\n")
    rows = []
    for key, r in bt["series"].items():
        pred = f"{r['inside_predictive']}/{r['n']}" if "inside_predictive" in r else "-"
        scale = (f"{r['scale_median']:.2f} ({r['scale_from']})" if "scale_median" in r else "-")
        rows.append([f"`{key}`", r["years"], r["n"], r["error_kind"], _f(r["error_point"]), _f(r["error_median"]),
                     _f(r.get("model_change_pct", math.nan)), _f(r.get("recorded_change_pct", math.nan)),
                     r["direction"], f"{r['inside']}/{r['n']}", pred, scale])
    out += _table(("series", "years", "n", "error", "point backtest", "posterior median", "model change",
                   "recorded change", "direction", "inside P10-P90 (parameters)", "inside P10-P90 (predictive)",
                   "error scale (median)"), rows)
    out.append("Changes are % between the first and last recorded year of the window (growth series: the mean rate, "
               "% per year; direction = most years with the recorded sign).\n")
    line = (f"**P10-P90 coverage of {bt['n_scored_points']} recorded points: {bt['coverage_p10_p90']:.0%} for the "
            "parameter band" + (f", {bt['coverage_p10_p90_predictive']:.0%} for the predictive band**"
                                if "coverage_p10_p90_predictive" in bt else "**")
            + f" (nominal {NOMINAL:.0%}). The parameter band is the spread of the posterior draws' model values "
            "(parameter uncertainty only); the predictive band adds to each draw its series' error: the stated "
            "error times the error scale that draw's misfit in 2005-15 implies (`calibration/discrepancy.py`; the "
            "median scale is in the last column, 1 = the stated error suffices). Recorded values are compared with "
            "the predictive band.")
    cov = bt.get("coverage_p10_p90_predictive", bt["coverage_p10_p90"])
    if cov < NOMINAL - 0.1:
        line += (" The backtest band is too narrow: the posterior from data through 2015 is confident about "
                 "quantities the later record contradicts, i.e. the model's structure (not only its parameters) "
                 "misses what changed after 2015; the rows below say which.")
    out += [line, ""]
    if bt.get("untested"):
        out.append("Not testable in the window: " + "; ".join(f"`{k}` ({v})" for k, v in bt["untested"].items())
                   + ".\n")
    out.append("**What the model gets wrong (from the table):**\n")
    insample = {s.key: s.n for s in apply_cutoff(ctx.series, B.BACKTEST_CUTOFF)}
    wrong = []
    for key, r in bt["series"].items():
        bad_dir = r["direction"] == "wrong"
        bad_lvl = r["error_kind"] == "MAPE %" and r["error_point"] > LEVEL_LIMIT
        if not (bad_dir or bad_lvl):
            continue
        what = []
        if bad_dir:
            what.append("the wrong direction of change")
        if bad_lvl:
            what.append(f"a level error of {r['error_point']:.1f} %")
        mc, rc = r.get("model_change_pct", math.nan), r.get("recorded_change_pct", math.nan)
        change = (f"; the model changes {mc:+.1f} % over {r['years']} against a recorded {rc:+.1f} %"
                  if isinstance(mc, float) and math.isfinite(mc) and isinstance(rc, float) and math.isfinite(rc)
                  else "")
        prior_only = ("; no recorded point of this series lies in the fit window, so this tests the registry "
                      "prior and the other series, not a fit of this one" if not insample.get(key) else "")
        wrong.append(f"- `{key}` ({r['years']}): {' and '.join(what)}{change}{prior_only}.")
    out += wrong or ["- No series with the wrong direction or a level error above 10 %."]
    shares = [r for k, r in bt["series"].items() if "share" in k and r["error_kind"] == "MAPE %"]
    slow = [r for r in shares if isinstance(r.get("model_change_pct"), float)
            and abs(r["model_change_pct"]) < 0.5 * abs(r.get("recorded_change_pct", 0.0))]
    if slow:
        out.append(f"- Structural reading: in {len(slow)} of {len(shares)} share series the model moves less than "
                   "half as far as the record (one growth differential per sector for the whole run cannot follow "
                   "the faster shift to services after 2015).")
    out.append("\n![Backtest](backtest.png)\n")
    return out


def chance_rows(scenarios: Sequence[str] = PLAN_SCENARIOS, n: int = 500) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Met / missed and the chance of every target for each shipped plan scenario (runs now)."""
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.runners import chance as ch
    from greenpath.scenarios import scenario as sc
    from greenpath.scenarios import targets as tg

    chosen = tg.load()
    columns = sorted({*tg.required_variables(chosen)})
    model = JiaozuoModel()
    frames, info = [], {}
    for name in scenarios:
        scenario = sc.load(name)
        result = model.run(**scenario.run_kwargs(), return_columns=columns)
        table = ch.chance_column(scenario, tg.evaluate(result, chosen), chosen, n=n)
        info = dict(table.attrs)
        frames.append(table.assign(scenario=name))
    return pd.concat(frames, ignore_index=True), info


def _chances(ctx: Any) -> list[str]:
    out = ["## Chance of meeting the plan's targets (shipped plan scenarios)\n"]
    in_force = reg.calibration_path()
    if in_force is None or sha256_file(Path(in_force)) != sha256_file(Path(ctx.calibration_path)):
        return out + ["Skipped: this calibration file is not the one in force (the chances use the calibration "
                      "and posterior in force).\n"]
    table, info = chance_rows()
    out.append(f"Each cell: the verdict of the point-calibrated run, then the share of {info.get('n')} runs meeting "
               f"the target (levers held; {len(info.get('sampled', []))} projection uncertainties sampled; "
               f"{len(info.get('posterior', []))} calibrated parameters drawn from the posterior: "
               f"{info.get('posterior_source', '')}).\n")
    from greenpath.runners.chance import format_chance

    wide = {}
    for (_, label), part in table.groupby(["id", "label_en"], sort=False):
        wide[label] = {r.scenario: f"{'met' if r.met else 'missed'} · {format_chance(r.chance)}"
                       for r in part.itertuples()}
    names = list(dict.fromkeys(table["scenario"]))
    out += _table(("target", *names), [[label, *(cells.get(n, "-") for n in names)] for label, cells in wide.items()])
    return out


def _bounds(ctx: Any) -> list[str]:
    out = ["## Parameters at a registry bound: before and after this calibration\n"]
    now = ctx.doc.get("uncertainty", {}).get("at_bound", {})
    before = ctx.meta.get("previous_at_bound")
    side = {-1: "lower", 1: "upper"}
    out.append(f"- This calibration: {len(now)} of {len(ctx.space)} at a bound: "
               + (", ".join(f"`{k}` ({side[int(v)]})" for k, v in now.items()) or "none") + ".")
    if before is not None:
        out.append(f"- The calibration it replaced ({ctx.meta.get('previous_fitted_count', '?')} parameters): "
                   f"{len(before)} at a bound: " + (", ".join(f"`{k}`" for k in before) or "none") + ".")
    else:
        out.append("- The calibration it replaced: not recorded (`[meta] previous_at_bound`).")
    out.append("Why the data push each one there is in *Parameters at a registry bound* above.\n")
    return out


def sections(ctx: Any) -> list[str]:
    """Return the calibration-v2 sections of the report, as Markdown lines."""
    out: list[str] = []
    for part in (_emission_factors(), _anchors(ctx), _posterior(ctx), _backtest(ctx), _chances(ctx), _bounds(ctx)):
        out += part
    return out
