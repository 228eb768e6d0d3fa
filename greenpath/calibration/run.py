"""Calibrate the Jiaozuo model against Jiaozuo's recorded history.

``greenpath calibrate`` fits named *uncertainty* parameters of the registry
(``model/parameters.csv``) to the observed series of ``calibration/data/history.csv`` and
writes the fitted values to ``calibration/calibrated.toml``, which the model then uses as
its defaults (:func:`greenpath.model.registry.effective_defaults`). :func:`calibrate`
runs the whole calibration; the parts are in their own modules:

* :mod:`~greenpath.calibration.series` -- the fit series: which data, which output,
  which transform and stated uncertainty (:func:`~greenpath.calibration.series.build_series`);
* :mod:`~greenpath.calibration.space` -- the fitted parameters in unit coordinates;
* :mod:`~greenpath.calibration.simulators` -- the vector and PySD engines;
* :mod:`~greenpath.calibration.objective` -- the weighted residuals and the fit;
* :mod:`~greenpath.calibration.uncertainty` -- posterior and data-only uncertainty;
* :mod:`~greenpath.calibration.scoring` -- per-series goodness of fit;
* :mod:`~greenpath.calibration.store` -- the calibration file.

Method
------
1. **Parameters** are moved within their registry ``[min, max]`` and scaled to the unit
   interval, ``u = (x - min) / (max - min)``, so one unit of ``u`` is the whole prior range
   of every parameter and the optimisers see comparable scales.
2. **Residuals.** Every fitted series contributes residuals
   ``(simulated - observed) / (sigma * scale)``, divided by ``sqrt(n)`` (its number of
   points), so each data *source* counts once, scaled by its stated uncertainty
   ``sigma``: errors of a structural model are autocorrelated, so n points of one series
   are not n independent pieces of information, and a short series (3 years of
   electricity) must not be drowned by a long one. The series, their transforms and
   their ``sigma`` (with the reason for each) are in
   :func:`greenpath.calibration.series.build_series`.
3. **Prior.** A weak penalty ``(u - u_prior) / 0.25`` per parameter, the block divided by
   ``sqrt(D)`` (so the whole prior weighs like one series), keeps parameters the data do
   not identify (e.g. ``gdp_growth_2017`` vs ``gdp_growth_2020``, which only enter the
   post-2020 level through their product) near their registry default instead of
   wandering along a flat valley. ``prior_weight = 0`` switches it off.
4. **Global search, then polish.** :func:`scipy.optimize.differential_evolution`
   (seeded, ``vectorized=True``: a whole generation goes through one call of
   :meth:`greenpath.calibration.objective.Objective.residuals_batch`, which runs the NumPy
   vector engine or, as a fallback, PySD in worker processes), then
   :func:`scipy.optimize.least_squares` (``trf``, bounds ``[0, 1]``, explicit ``x_scale``
   and ``diff_step``) from the best member.
5. **Uncertainty.** At the optimum, ``cov = s^2 (J^T J)^-1`` from the Jacobian of the
   stacked weighted residuals (data and prior rows), ``s^2 = SSR / (N - p)``, and the
   same from the data rows alone, which the prior cannot mask: data-only correlations
   (pairs above :data:`greenpath.calibration.uncertainty.PAIR_THRESHOLD` are not
   separately identified by the data) and data-only sd relative to the range (the
   identifiability); see :func:`greenpath.calibration.uncertainty.parameter_uncertainty`.

The year windows and the simulated end year come from the data
(:func:`greenpath.calibration.series.build_series`,
:func:`greenpath.calibration.series.fit_final_time`);
:func:`greenpath.calibration.series.check_history` refuses rows the method cannot use.

Everything is deterministic for a given seed (seeded DE, deterministic engines, a
deterministic polish).

The GDP census break (2019 -> 2020), the CEADs CO2 step (2010 -> 2012) and the
urban-district electricity boundary are handled as documented in
:func:`greenpath.calibration.series.build_series` and in ``calibration/report/README.md``.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from greenpath.calibration import history as hist
from greenpath.calibration.errors import CalibrationError
from greenpath.calibration.objective import PRIOR_SIGMA_U, Objective, fit
from greenpath.calibration.scoring import fit_statistics, simulate_frame
from greenpath.calibration.series import (
    FIRST_YEAR,
    FitSeries,
    _span,
    after_cutoff,
    apply_cutoff,
    build_series,
    fit_final_time,
)
from greenpath.calibration.simulators import make_simulator
from greenpath.calibration.space import REMAINDER_SHARE, ParameterSpace
from greenpath.calibration.store import CalibrationResult, RefitResult, sha256_file
from greenpath.calibration.uncertainty import parameter_uncertainty
from greenpath.engines.base import Simulator
from greenpath.model import registry as reg
from greenpath.model.mdl import MDL_PATH, TIME_STEP, model_hash

__all__ = [
    "DEFAULT_CUTOFF",
    "calibrate",
    "refit",
]

#: Default last in-sample year of the out-of-sample check.
DEFAULT_CUTOFF = 2012


def calibrate(history_path: Path | None = None, *, names: Sequence[str] | None = None, seed: int = 20240,
              maxiter: int = 300, popsize: int = 12, cutoff: int | None = DEFAULT_CUTOFF,
              prior_weight: float = 1.0, sensitivity: bool = True, engine: str = "auto", workers: int = 1,
              progress: Callable[[str], None] | None = None, posterior_steps: int = 0,
              backtest: bool = False) -> CalibrationResult:
    """Fit the model to the history file, then the out-of-sample refit and the sensitivity.

    Parameters
    ----------
    history_path : Path, optional
        History CSV (default: the packaged ``calibration/data/history.csv``).
    names : sequence of str, optional
        Parameters to fit (default :data:`greenpath.calibration.space.DEFAULT_PARAMETERS`).
    seed : int
        Seed of differential evolution.
    maxiter, popsize : int
        Differential-evolution budget: generations and population per parameter.
    cutoff : int or None
        Last year of the out-of-sample refit (None: no out-of-sample check).
    prior_weight : float
        Weight of the prior block (see the module docstring).
    sensitivity : bool
        Also refit with both CEADs regimes in level (the report's CO2 sensitivity).
    engine : {"auto", "vector", "pysd"}
        Simulation engine.
    workers : int
        Worker processes.
    progress : callable, optional
        Receives progress lines.
    posterior_steps : int
        Steps of the posterior MCMC (:mod:`greenpath.calibration.posterior`; 0, the
        default of this function: no posterior sample; ``greenpath calibrate`` passes
        :data:`greenpath.calibration.posterior.DEFAULT_STEPS`).
    backtest : bool
        Also run the backtest (:mod:`greenpath.calibration.backtest`); its chain is as
        long as the main one. It runs in a forked second process while the main
        fit and posterior run (:mod:`greenpath.calibration.parallel`; in this process
        with the PySD engine or where fork is unavailable), with the same result.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    greenpath.calibration.history.HistoryError
        If the history file is malformed (names file, line and value).
    CalibrationError
        If a parameter name or option is not allowed.
    """
    started = time.perf_counter()
    history_path = Path(history_path) if history_path is not None else hist.DEFAULT_HISTORY_PATH
    history = hist.load_history(history_path)
    all_series = build_series(history)
    final_time = fit_final_time(all_series)
    space = ParameterSpace(names)
    last_fitted = max(int(s.years.max()) for s in all_series if s.role == "fitted")
    if cutoff is not None and not FIRST_YEAR + 2 <= cutoff <= last_fitted - 1:
        raise CalibrationError(
            f"cutoff {cutoff} is not allowed; allowed: a year {FIRST_YEAR + 2}-{last_fitted - 1} (at least one "
            f"fitted year, the data's last {last_fitted}, must lie after it)"
        )
    if maxiter < 0 or popsize < 1:
        raise CalibrationError(
            f"maxiter {maxiter} / popsize {popsize} not allowed; allowed: maxiter >= 0, popsize >= 1"
        )
    if isinstance(posterior_steps, bool) or not isinstance(posterior_steps, int) or posterior_steps < 0:
        raise CalibrationError(
            f"posterior steps {posterior_steps!r} not allowed; allowed: a whole number >= 0 (0 = no posterior sample)"
        )
    simulator = make_simulator(engine, workers, final_time)
    job = None
    if backtest:  # on the second core while the main fit and posterior run (calibration/parallel.py)
        from greenpath.calibration import backtest as B
        from greenpath.calibration import parallel as par
        from greenpath.calibration import posterior as P

        bt_steps = posterior_steps or P.DEFAULT_STEPS  # as long as the main chain (it runs alongside)
        bt_burn = P.DEFAULT_BURN if bt_steps == P.DEFAULT_STEPS else bt_steps // 2

        def _run_backtest() -> Any:
            return B.run_backtest(simulator, all_series, space, seed, maxiter, popsize, prior_weight,
                                  steps=bt_steps, burn=bt_burn, thin=max(1, (bt_steps - bt_burn) // 4),
                                  progress=progress)

        job = par.start_backtest(_run_backtest, parallel=None if engine != "pysd" else False)
    try:
        fitted = apply_cutoff(all_series, None)
        objective = Objective(simulator, fitted, space, prior_weight)
        if progress:
            progress(f"fitting {len(space)} parameters to {len(fitted)} series "
                     f"({objective.n_points} points) with the {simulator.name} engine")
        outcome = fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
        values = space.named(outcome.x)
        space.check_derived(values)
        unc = parameter_uncertainty(objective, outcome.u)
        stats = fit_statistics(simulate_frame(simulator, values), all_series)
        oos = None
        if cutoff is not None:
            insample = apply_cutoff(all_series, cutoff)
            oos = refit(simulator, insample, space, seed, maxiter, popsize, prior_weight,
                        name="out_of_sample", description=f"refit on data up to {cutoff}; scored on later years",
                        score=after_cutoff(all_series, cutoff), progress=progress)
        sens = None
        if sensitivity:
            alt = build_series(history, co2_mode="levels")
            regimes = ", ".join(_span(s.years) for s in alt if s.tag in ("co2_pre_break", "co2_post_break"))
            sens = refit(simulator, apply_cutoff(alt, None), space, seed, maxiter, popsize, prior_weight,
                         name="co2_levels", description=f"both CEADs regimes ({regimes}) fitted in level",
                         score=alt, progress=progress)
        post = None
        if posterior_steps > 0:
            from greenpath.calibration import posterior as P

            steps = posterior_steps
            burn = P.DEFAULT_BURN if steps == P.DEFAULT_STEPS else steps // 2
            post = P.sample_posterior(Objective(simulator, fitted, space, 0.0), outcome.u, seed, steps=steps,
                                      burn=burn, thin=max(1, (steps - burn) // 4),
                                      start_population=outcome.population, progress=progress)
        back = job.result() if job is not None else None
        n_runs = simulator.n_runs + (back.n_runs if back is not None else 0)  # the backtest has its own engines
    finally:
        if job is not None:
            job.cancel()
        close = getattr(simulator, "close", None)
        if close:
            close()
    meta = {
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "data_file": _display_path(history_path),
        "data_sha256": sha256_file(history_path),
        "model_file": "model/jiaozuo.mdl",
        "model_sha256": model_hash(MDL_PATH),
        "registry_sha256": sha256_file(reg.REGISTRY_PATH),
        "seed": seed,
        "method": "differential_evolution (scipy, best1bin, latin-hypercube init, vectorized, deferred updating, "
        "x0 = prior) then least_squares (trf, bounds [0, 1] in registry-range units, x_scale 1, "
        "forward-difference Jacobian, diff_step 1e-4)",
        "engine": simulator.name,
        "de_maxiter": maxiter,
        "de_popsize": popsize,
        "de_generations": outcome.de_generations,
        "least_squares_status": outcome.ls_message,
        "prior_weight": prior_weight,
        "prior_sigma_range_units": PRIOR_SIGMA_U,
        "time_step": TIME_STEP,
        "final_time": final_time,
        "fitted": list(space.names),
        "derived": [REMAINDER_SHARE] if space.derives_remainder else [],
        "objective_cost": outcome.cost,
        "objective_cost_de": outcome.de_cost,
        "n_data_points": objective.n_points,
        "n_model_runs_main_fit": outcome.n_runs,
        "n_model_runs": n_runs,
        "wall_time_main_fit_s": round(outcome.seconds, 2),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "cutoff": cutoff if cutoff is not None else -1,
        "python": platform.python_version(),
    }
    return CalibrationResult(space, values, outcome, stats, unc, meta, oos, sens, all_series, post, back)


def refit(simulator: Simulator, fitted: Sequence[FitSeries], space: ParameterSpace, seed: int, maxiter: int,
          popsize: int, prior_weight: float, *, name: str, description: str, score: Sequence[FitSeries],
          factors_from: Sequence[FitSeries] | None = None,
          progress: Callable[[str], None] | None = None) -> RefitResult:
    """Fit ``fitted`` and score the result on ``score``.

    For an out-of-sample check ``fitted`` holds the years up to the cut-off and ``score``
    the later years; profiled series then take their factor from the in-sample data.
    """
    objective = Objective(simulator, fitted, space, prior_weight)
    if progress:
        progress(f"{name}: {description} ({len(objective.series)} series, {objective.n_points} points)")
    outcome = fit(objective, seed, maxiter=maxiter, popsize=popsize, progress=progress)
    values = space.named(outcome.x)
    frame = simulate_frame(simulator, values)
    stats = fit_statistics(frame, score, factors_from=factors_from if factors_from is not None else fitted)
    return RefitResult(name, description, values, outcome.cost, objective.n_points, stats)


def _display_path(path: Path) -> str:
    """Return a repository-relative path where possible (never an absolute path of this machine)."""
    path = Path(path).resolve()
    root = MDL_PATH.resolve().parents[1]
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
