"""The objective and the fit: weighted residuals of a batch of parameter sets, and their minimum.

**Residuals.** Every fitted series contributes residuals ``(simulated - observed) /
(sigma * scale)``, divided by ``sqrt(n)`` (its number of points), so each data *source*
counts once, scaled by its stated uncertainty ``sigma``: errors of a structural model are
autocorrelated, so n points of one series are not n independent pieces of information,
and a short series (3 years of electricity) must not be drowned by a long one. The
series, their transforms and their ``sigma`` (with the reason for each) are in
:func:`greenpath.calibration.series.build_series`.

**Prior.** A weak penalty ``(u - u_prior) / 0.25`` per parameter (:data:`PRIOR_SIGMA_U`),
the block divided by ``sqrt(D)`` (so the whole prior weighs like one series), keeps
parameters the data do not identify near their registry default instead of wandering
along a flat valley. ``prior_weight = 0`` switches it off.

**Global search, then polish** (:func:`fit`). :func:`scipy.optimize.differential_evolution`
(seeded, ``vectorized=True``: a whole generation goes through one call of
:meth:`Objective.residuals_batch`), then :func:`scipy.optimize.least_squares` (``trf``,
bounds ``[0, 1]``, explicit ``x_scale`` and ``diff_step``) from the best member.
Deterministic for a given seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from greenpath.calibration.errors import CalibrationError
from greenpath.calibration.series import FitSeries
from greenpath.calibration.space import ParameterSpace
from greenpath.engines.base import Simulator

__all__ = [
    "PRIOR_SIGMA_U",
    "FitOutcome",
    "Objective",
    "fit",
]

#: Default width of the prior penalty, in units of the registry range.
PRIOR_SIGMA_U = 0.25


class Objective:
    """Weighted residuals of a batch of parameter vectors, through one engine call.

    Parameters
    ----------
    simulator : Simulator
        The engine (vector or PySD).
    series : sequence of FitSeries
        The fitted series (cross-checks are ignored).
    space : ParameterSpace
        The fitted parameters.
    prior_weight : float
        Weight of the prior block (0 switches it off; 1 = one series' worth).
    """

    def __init__(self, simulator: Simulator, series: Sequence[FitSeries], space: ParameterSpace,
                 prior_weight: float = 1.0):
        self.simulator = simulator
        self.series = [s for s in series if s.role == "fitted"]
        if not self.series:
            raise CalibrationError("no fitted series with data (check --cutoff)")
        self.space = space
        if prior_weight < 0 or not math.isfinite(prior_weight):
            raise CalibrationError(f"prior weight {prior_weight!r} is not allowed; allowed: a number >= 0")
        self.prior_weight = prior_weight
        self.n_data = sum(s.n_residuals for s in self.series)
        self.n_points = sum(s.n for s in self.series)
        self.n_prior = len(space) if prior_weight > 0 else 0
        self.n_evaluations = 0

    @property
    def n_residuals(self) -> int:
        """Length of the residual vector (data then prior rows)."""
        return self.n_data + self.n_prior

    def outputs_batch(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for a batch ``u`` (S, D)."""
        u = np.clip(np.atleast_2d(np.asarray(u, dtype=float)), 0.0, 1.0)
        self.n_evaluations += u.shape[0]
        return self.simulator.simulate(self.space.params_batch(u), u.shape[0])

    def residuals_from_outputs(self, u: np.ndarray, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Stacked weighted residuals (S, M) for outputs already simulated."""
        years = self.simulator.years
        parts = [s.residuals(s.simulated(outputs, years)) for s in self.series]
        if self.n_prior:
            u = np.atleast_2d(u)
            scale = math.sqrt(self.prior_weight / len(self.space)) / PRIOR_SIGMA_U
            parts.append((u - self.space.prior_u) * scale)
        r = np.concatenate(parts, axis=1)
        # a parameter set that breaks the model (NaN, inf) is simply very bad
        return np.where(np.isfinite(r), r, 1e6)

    def residuals_batch(self, u: np.ndarray) -> np.ndarray:
        """Weighted residuals for a batch of unit-interval vectors, (S, D) -> (S, M)."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        return self.residuals_from_outputs(u, self.outputs_batch(u))

    def residuals(self, u: np.ndarray) -> np.ndarray:
        """Weighted residuals (M,) of one vector (for ``least_squares``)."""
        return self.residuals_batch(np.asarray(u)[None, :])[0]

    def cost_batch(self, u_t: np.ndarray) -> np.ndarray:
        """Sum of squared residuals for DE's vectorised call: ``u_t`` is (D, S)."""
        r = self.residuals_batch(np.asarray(u_t).T)
        return np.sum(r * r, axis=1)

    def jacobian(self, u: np.ndarray, diff_step: float) -> np.ndarray:
        """Forward-difference Jacobian (M, D) in one batch of D + 1 runs.

        The step follows scipy's ``2-point`` rule for ``diff_step``
        (``h = diff_step * max(1, |u|)``, which is ``diff_step`` on [0, 1]), taken
        backwards where a forward step would leave the upper bound.
        """
        u = np.asarray(u, dtype=float)
        d = u.size
        h = np.full(d, diff_step) * np.maximum(1.0, np.abs(u))
        h = np.where(u + h > 1.0, -h, h)
        batch = np.vstack([u, u + np.diag(h)])
        r = self.residuals_batch(batch)
        return ((r[1:] - r[0]) / h[:, None]).T


@dataclass
class FitOutcome:
    """Result of one fit (main or out-of-sample)."""

    x: np.ndarray
    u: np.ndarray
    cost: float
    de_cost: float
    de_generations: int
    de_evaluations: int
    ls_evaluations: int
    ls_status: int
    ls_message: str
    n_runs: int
    seconds: float
    population: np.ndarray | None = None  # DE's last population (unit coordinates), best first


def fit(objective: Objective, seed: int, maxiter: int = 300, popsize: int = 12,
        diff_step: float = 1e-4, tol: float = 1e-7, polish_max_nfev: int = 200,
        x0_u: np.ndarray | None = None, progress: Callable[[str], None] | None = None) -> FitOutcome:
    """Global search with differential evolution, then a bounded least-squares polish.

    Parameters
    ----------
    objective : Objective
        The residual function.
    seed : int
        Seed of differential evolution (the only random element).
    maxiter : int
        Maximum DE generations (0 skips DE: polish only, from ``x0_u`` or the prior).
    popsize : int
        DE population per parameter.
    diff_step : float
        Forward-difference step of the polish, in units of each parameter's range.
    tol : float
        DE relative convergence tolerance.
    polish_max_nfev : int
        Maximum Jacobian evaluations of ``least_squares``.
    x0_u : numpy.ndarray, optional
        Starting point in unit coordinates (default: the prior).
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    FitOutcome
    """
    from scipy.optimize import differential_evolution, least_squares

    started = time.perf_counter()
    runs0 = objective.simulator.n_runs
    space = objective.space
    start = np.asarray(space.prior_u if x0_u is None else x0_u, dtype=float)
    d = len(space)
    de_cost = math.nan
    generations = 0
    de_evals = 0
    population = None
    if maxiter > 0:
        result = differential_evolution(
            objective.cost_batch, bounds=[(0.0, 1.0)] * d, rng=np.random.default_rng(seed),
            maxiter=maxiter, popsize=popsize, tol=tol, atol=0.0, mutation=(0.5, 1.0),
            recombination=0.7, init="latinhypercube",
            polish=False, updating="deferred", vectorized=True, x0=start,
        )
        start = np.clip(result.x, 0.0, 1.0)
        de_cost = float(result.fun)
        generations = int(result.nit)
        de_evals = int(result.nfev)
        population = np.clip(np.asarray(result.population, dtype=float), 0.0, 1.0)
        if progress:
            progress(f"differential evolution: {generations} generations, {de_evals} runs, cost {de_cost:.4g}")
    nfev = {"jac": 0, "fun": 0}

    def fun(u: np.ndarray) -> np.ndarray:
        nfev["fun"] += 1
        return objective.residuals(u)

    def jac(u: np.ndarray) -> np.ndarray:
        nfev["jac"] += 1
        return objective.jacobian(u, diff_step)

    ls = least_squares(
        fun, start, jac=jac, bounds=(np.zeros(d), np.ones(d)), method="trf",
        x_scale=np.ones(d),  # u is already in units of each parameter's registry range
        diff_step=diff_step,  # documents the step; the batched `jac` applies the same rule
        ftol=1e-10, xtol=1e-10, gtol=1e-10, max_nfev=polish_max_nfev,
    )
    u = np.clip(ls.x, 0.0, 1.0)
    cost = float(np.sum(objective.residuals(u) ** 2))
    if progress:
        progress(f"least_squares polish: cost {cost:.4g} ({ls.message})")
    return FitOutcome(
        x=space.to_x(u), u=u, cost=cost, de_cost=de_cost, de_generations=generations,
        de_evaluations=de_evals, ls_evaluations=nfev["fun"] + nfev["jac"] * (d + 1),
        ls_status=int(ls.status), ls_message=str(ls.message),
        n_runs=objective.simulator.n_runs - runs0, seconds=time.perf_counter() - started,
        population=population,
    )
