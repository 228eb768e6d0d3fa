"""Backtest: fit on the history through 2015, project 2016-2022, score against the record.

Protocol
--------
1. **Fit window.** Every fitted series of :func:`greenpath.calibration.fit.build_series`
   restricted to years up to :data:`BACKTEST_CUTOFF` (2015) (``apply_cutoff``): the same
   parameters, method, seed and budget as the main fit (differential evolution, then the
   least-squares polish), then the posterior sample of :mod:`greenpath.calibration.posterior`
   from that fit (a shorter chain, :data:`BACKTEST_STEPS` steps).
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
   of recorded points inside the posterior P10-P90 band (nominal 80 %). A shape-only
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
BACKTEST_STEPS = 200
BACKTEST_BURN = 100
BACKTEST_THIN = 25


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
    bands: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Share of all recorded points of the window inside the P10-P90 band."""
        n = self.scores["n"].sum()
        return float((self.scores["inside"].sum() / n) if n else math.nan)

    def document(self) -> dict[str, Any]:
        """Return the ``[backtest]`` table of the calibration file."""
        rows = {}
        for key, r in self.scores.iterrows():
            rows[str(key)] = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()
                              if not (isinstance(v, float) and not math.isfinite(v))}
        return {
            "cutoff": BACKTEST_CUTOFF, "first_year": BACKTEST_FIRST, "last_year": BACKTEST_LAST,
            "cost": self.cost, "n_points": self.n_points, "coverage_p10_p90": self.coverage,
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
          draws: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]], dict[str, dict[str, list[float]]]]:
    """Score the point backtest and the posterior band on the window's recorded values.

    Returns
    -------
    (pandas.DataFrame, list, dict)
        One row per series (level errors, direction, coverage), the fitted series with no
        recorded value in the window and why, and the P10/P50/P90 band of each scored
        series per year (for the report's chart).
    """
    from greenpath.calibration import fit as F

    window = _window(all_series)
    keys = {s.key for s in window}
    untested: list[tuple[str, str]] = []
    for s in all_series:
        if s.role == "fitted" and s.key not in keys:
            untested.append((s.key, f"recorded only in {F._span(s.years)}"))
    names = list(draws.columns)
    params = {n: draws[n].to_numpy(float) for n in names}
    n = len(draws)
    cols = F.OUTPUT_COLUMNS
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
            "key": s.key, "label": s.label, "years": F._span(s.years), "n": int(obs.size), "error_kind": err_kind,
            "error_point": err_point, "error_median": err_median, "model_change_pct": dm,
            "recorded_change_pct": do, "direction": verdict, "inside": inside,
            "coverage": inside / obs.size, "unit": s.unit,
        })
        bands[s.key] = {"years": [int(y) for y in s.years], "observed": [float(v) for v in obs],
                        "p10": [float(v) for v in q10], "p50": [float(v) for v in q50],
                        "p90": [float(v) for v in q90], "point": [float(v) for v in point_sim]}
    return pd.DataFrame(rows).set_index("key"), untested, bands


def run_backtest(simulator: Any, all_series: Sequence[Any], space: Any, seed: int, maxiter: int, popsize: int,
                 prior_weight: float, *, steps: int = BACKTEST_STEPS, burn: int = BACKTEST_BURN,
                 thin: int = BACKTEST_THIN, walkers: int | None = None,
                 progress: Callable[[str], None] | None = None) -> BacktestResult:
    """Run the whole protocol (see the module docstring)."""
    from greenpath.calibration import fit as F
    from greenpath.calibration import posterior as P

    started = time.perf_counter()
    runs0 = simulator.n_runs
    insample = F.apply_cutoff(all_series, BACKTEST_CUTOFF)
    objective = F.Objective(simulator, insample, space, prior_weight)
    if progress:
        progress(f"backtest: fit on data through {BACKTEST_CUTOFF} ({len(objective.series)} series, "
                 f"{objective.n_points} points)")
    outcome = F.fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
    values = space.named(outcome.x)
    data_only = F.Objective(simulator, insample, space, 0.0)
    post = P.sample_posterior(data_only, outcome.u, seed, walkers=walkers or P.DEFAULT_WALKERS, steps=steps,
                              burn=burn, thin=thin, progress=progress)
    scores, untested, bands = score(simulator, all_series, insample, values, post.frame())
    diag = post.diagnostics()
    result = BacktestResult(
        values=values, cost=outcome.cost, n_points=objective.n_points, scores=scores, untested=untested,
        posterior={k: diag[k] for k in ("walkers", "steps", "burn", "thin", "n_draws", "acceptance_mean",
                                        "tau_max", "rhat_max")},
        n_runs=simulator.n_runs - runs0, seconds=time.perf_counter() - started, bands=bands,
    )
    if progress:
        wrong = [k for k, r in scores.iterrows() if r["direction"] == "wrong"]
        progress(f"backtest {BACKTEST_FIRST}-{BACKTEST_LAST}: P10-P90 coverage {result.coverage:.0%} of "
                 f"{int(scores['n'].sum())} recorded points; wrong direction: {', '.join(wrong) or 'none'}")
    return result
