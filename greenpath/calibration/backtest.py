"""Backtest: fit on the history through 2015, project 2016-2022, score against the record.

Protocol
--------
1. **Fit window.** Every fitted series of :func:`greenpath.calibration.series.build_series`
   restricted to years up to :data:`BACKTEST_CUTOFF` (2015) (``apply_cutoff``): the same
   parameters, method, seed and budget as the main fit (differential evolution, then the
   least-squares polish), then the posterior sample of :mod:`greenpath.calibration.posterior`
   from that fit (:data:`BACKTEST_STEPS` steps, as long as the main chain: it runs on the
   other core and each step simulates only to 2015). Both simulate only to
   2015; :func:`greenpath.calibration.run.calibrate` runs the whole backtest in a second
   process while the main fit runs (:mod:`greenpath.calibration.parallel`).
2. **Projection.** The model runs from 2005 with the backtest parameters; every other
   input is what the model always uses for the history: the recorded coal and renewable
   unit tables (commissioning and retirement years), recorded GDP growth, and the levers
   at their registry defaults, which act only from ``policy start year`` = 2021, so no plan
   lever acts before 2021 (2021-22 run the baseline settings).
3. **Scoring.** Every fitted series with recorded values in
   :data:`BACKTEST_FIRST`-:data:`BACKTEST_LAST` (2016-2022): the level error (MAPE of the
   point backtest, and of the posterior median), the direction of change (the sign of the
   change between the first and last recorded year of the window, model against record;
   for growth-rate series the share of years whose sign of growth agrees) and the share
   of recorded points inside two P10-P90 bands (nominal 80 %): the parameter band (the
   posterior draws' model values: parameter uncertainty only) and the predictive band
   (each draw plus its series' error, the stated error times the scale the draw's
   in-sample misfit implies, :mod:`greenpath.calibration.discrepancy`), which is the
   band to compare with recorded values. A shape-only
   series takes its level factor, draw by draw, from its in-sample years. Series whose
   recorded values all lie outside the window (CEADs CO2 ends in 2015, the physical
   anchors are 2025) are listed as not testable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BACKTEST_CUTOFF", "BACKTEST_FIRST", "BACKTEST_LAST", "BacktestResult", "run_backtest", "score"]

#: Last in-sample year.
BACKTEST_CUTOFF = 2015
#: The projected window scored against the record.
BACKTEST_FIRST = 2016
BACKTEST_LAST = 2022
#: Steps of the backtest's posterior chain (burn-in :data:`BACKTEST_BURN`).
BACKTEST_STEPS = 600
BACKTEST_BURN = 200
BACKTEST_THIN = 100


@dataclass
class BacktestResult:
    """The backtest's fit, posterior summary and per-series scores."""

    values: dict[str, float]
    cost: float
    n_points: int
    scores: pd.DataFrame
    untested: list[tuple[str, str]]
    posterior: dict[str, Any]
    n_runs: int
    seconds: float
    bands: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of all recorded points of the window inside the parameter-only P10-P90 band."""
        n = self.scores["n"].sum()
        return float((self.scores["inside"].sum() / n) if n else math.nan)

    @property
    def coverage_predictive(self) -> float:
        """Share of all recorded points of the window inside the predictive P10-P90 band."""
        n = self.scores["n"].sum()
        return float((self.scores["inside_predictive"].sum() / n) if n else math.nan)

    def document(self) -> dict[str, Any]:
        """Return the ``[backtest]`` table of the calibration file."""
        rows = {}
        for key, r in self.scores.iterrows():
            rows[str(key)] = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()
                              if not (isinstance(v, float) and not math.isfinite(v))}
        return {
            "cutoff": BACKTEST_CUTOFF, "first_year": BACKTEST_FIRST, "last_year": BACKTEST_LAST,
            "cost": self.cost, "n_points": self.n_points, "coverage_p10_p90": self.coverage,
            "coverage_p10_p90_predictive": self.coverage_predictive,
            "n_scored_points": int(self.scores["n"].sum()), "n_model_runs": self.n_runs,
            "wall_time_s": round(self.seconds, 2), "posterior": self.posterior,
            "parameters": {k: float(v) for k, v in self.values.items()},
            "untested": {k: v for k, v in self.untested}, "series": rows, "bands": self.bands,
        }


def _window(series: Sequence[Any]) -> list[Any]:
    from dataclasses import replace

    out = []
    for s in series:
        if s.role != "fitted":
            continue
        obs = s.observed[(s.observed.index >= BACKTEST_FIRST) & (s.observed.index <= BACKTEST_LAST)]
        if obs.size:
            out.append(replace(s, observed=obs))
    return out


def _direction(s: Any, sim: np.ndarray, obs: np.ndarray) -> tuple[float, float, str]:
    """(model change, recorded change, verdict) over the window (growth series: sign agreement)."""
    if s.transform == "growth_pct":
        agree = float(np.mean(np.sign(sim) == np.sign(obs)))
        return float(np.mean(sim)), float(np.mean(obs)), "right" if agree >= 0.5 else "wrong"
    if obs.size < 2:
        return math.nan, math.nan, "one year"
    dm = float(sim[-1] / sim[0] - 1.0) * 100.0
    do = float(obs[-1] / obs[0] - 1.0) * 100.0
    if abs(do) < 0.5:  # a recorded change under 0.5 % has no direction to get wrong
        return dm, do, "flat (record)"
    return dm, do, "right" if np.sign(dm) == np.sign(do) else "wrong"


def score(simulator: Any, all_series: Sequence[Any], insample: Sequence[Any], point: dict[str, float],
          draws: pd.DataFrame, seed: int = 0
          ) -> tuple[pd.DataFrame, list[tuple[str, str]], dict[str, dict[str, Any]]]:
    """Score the point backtest and the posterior band on the window's recorded values.

    Two bands: the parameter band (the posterior draws' model values) and the predictive
    band (each draw plus an error of its series' scale times the stated error, the scale
    drawn given that draw's in-sample misfit: :mod:`greenpath.calibration.discrepancy`;
    a series with no in-sample year keeps its stated error, scale 1). ``seed`` seeds the
    predictive errors.

    Returns
    -------
    (pandas.DataFrame, list, dict)
        One row per series (level errors, direction, coverage), the fitted series with no
        recorded value in the window and why, and the P10/P50/P90 band of each scored
        series per year (for the report's chart).
    """
    from greenpath.calibration import discrepancy as disc
    from greenpath.calibration.series import OUTPUT_COLUMNS, _span

    rng = np.random.default_rng([int(seed), 16])
    window = _window(all_series)
    keys = {s.key for s in window}
    untested: list[tuple[str, str]] = []
    for s in all_series:
        if s.role == "fitted" and s.key not in keys:
            untested.append((s.key, f"recorded only in {_span(s.years)}"))
    names = list(draws.columns)
    params = {n: draws[n].to_numpy(float) for n in names}
    n = len(draws)
    cols = OUTPUT_COLUMNS
    runs = simulator.simulate({**{k: np.full(n + 1, v) for k, v in point.items()},
                               **{k: np.concatenate([[point[k]], params[k]]) for k in names}}, n + 1, cols)
    years = simulator.years
    ref = {s.key: s for s in insample}
    rows: list[dict[str, Any]] = []
    bands: dict[str, dict[str, Any]] = {}  # years (int) and values (float) per series
    for s in window:
        sim = s.simulated(runs, years)  # (n + 1, m)
        if s.shape_only:
            base = ref.get(s.key)
            if base is None:
                untested.append((s.key, "shape-only series without in-sample years (no level factor)"))
                continue
            k = base.profile_factor(base.simulated(runs, years))
            sim = sim * k[:, None]
        obs = s.observed.to_numpy(float)
        point_sim, post = sim[0], sim[1:]
        q10, q50, q90 = np.percentile(post, [10, 50, 90], axis=0)
        inside = int(np.sum((obs >= q10) & (obs <= q90)))
        base = ref.get(s.key)
        if base is not None and base.n:
            r = base.residuals(base.simulated(runs, years)[1:])[:, : base.n] * math.sqrt(base.n)
            lam = disc.draw_scale(np.sum(r * r, axis=1), disc.degrees_of_freedom(base), rng)
            scale_note = f"in-sample {_span(base.years)}"
        else:
            lam = np.ones(post.shape[0])
            scale_note = "stated error only (no in-sample year)"
        pred = disc.predictive(s, post, lam, rng)
        p10, p90 = np.percentile(pred, [10, 90], axis=0)
        inside_pred = int(np.sum((obs >= p10) & (obs <= p90)))
        if s.transform == "growth_pct":
            err_point = float(np.mean(np.abs(point_sim - obs)))
            err_median = float(np.mean(np.abs(q50 - obs)))
            err_kind = "MAE pp"
        else:
            err_point = float(np.mean(np.abs(point_sim / obs - 1.0)) * 100.0)
            err_median = float(np.mean(np.abs(q50 / obs - 1.0)) * 100.0)
            err_kind = "MAPE %"
        dm, do, verdict = _direction(s, point_sim, obs)
        rows.append({
            "key": s.key, "label": s.label, "years": _span(s.years), "n": int(obs.size), "error_kind": err_kind,
            "error_point": err_point, "error_median": err_median, "model_change_pct": dm,
            "recorded_change_pct": do, "direction": verdict, "inside": inside,
            "coverage": inside / obs.size, "unit": s.unit, "inside_predictive": inside_pred,
            "coverage_predictive": inside_pred / obs.size, "scale_median": float(np.median(lam)),
            "scale_from": scale_note,
        })
        bands[s.key] = {"years": [int(y) for y in s.years], "observed": [float(v) for v in obs],
                        "p10": [float(v) for v in q10], "p50": [float(v) for v in q50],
                        "p90": [float(v) for v in q90], "point": [float(v) for v in point_sim],
                        "p10_predictive": [float(v) for v in p10], "p90_predictive": [float(v) for v in p90]}
    return pd.DataFrame(rows).set_index("key"), untested, bands


def run_backtest(simulator: Any, all_series: Sequence[Any], space: Any, seed: int, maxiter: int, popsize: int,
                 prior_weight: float, *, steps: int = BACKTEST_STEPS, burn: int = BACKTEST_BURN,
                 thin: int = BACKTEST_THIN, walkers: int | None = None,
                 progress: Callable[[str], None] | None = None) -> BacktestResult:
    """Run the whole protocol (see the module docstring)."""
    from greenpath.calibration import posterior as P
    from greenpath.calibration.objective import Objective, fit
    from greenpath.calibration.series import apply_cutoff, fit_final_time
    from greenpath.calibration.simulators import make_simulator

    started = time.perf_counter()
    insample = apply_cutoff(all_series, BACKTEST_CUTOFF)
    # the fit and its posterior simulate only to the last in-sample year (2015), the scoring to
    # the window's last year: engines of their own (the main calibration's keeps its run count)
    fit_sim = make_simulator(simulator.name, 1, fit_final_time(insample))
    score_sim = make_simulator(simulator.name, 1, max(BACKTEST_LAST, fit_final_time(insample)))
    objective = Objective(fit_sim, insample, space, prior_weight)
    if progress:
        progress(f"backtest: fit on data through {BACKTEST_CUTOFF} ({len(objective.series)} series, "
                 f"{objective.n_points} points)")
    outcome = fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
    values = space.named(outcome.x)
    data_only = Objective(fit_sim, insample, space, 0.0)
    post = P.sample_posterior(data_only, outcome.u, seed, walkers=walkers or P.DEFAULT_WALKERS, steps=steps,
                              burn=burn, thin=thin, start_population=outcome.population, progress=progress)
    scores, untested, bands = score(score_sim, all_series, insample, values, post.frame(), seed)
    diag = post.diagnostics()
    result = BacktestResult(
        values=values, cost=outcome.cost, n_points=objective.n_points, scores=scores, untested=untested,
        posterior={k: diag[k] for k in ("walkers", "steps", "burn", "thin", "n_draws", "acceptance_mean",
                                        "tau_max", "rhat_max")},
        n_runs=fit_sim.n_runs + score_sim.n_runs, seconds=time.perf_counter() - started, bands=bands,
    )
    if progress:
        wrong = [k for k, r in scores.iterrows() if r["direction"] == "wrong"]
        progress(f"backtest {BACKTEST_FIRST}-{BACKTEST_LAST}: P10-P90 coverage {result.coverage:.0%} (parameters "
                 f"only), {result.coverage_predictive:.0%} (predictive) of "
                 f"{int(scores['n'].sum())} recorded points; wrong direction: {', '.join(wrong) or 'none'}")
    return result
