"""Parameter uncertainty at the optimum, and which series pull which parameter.

At the optimum, ``cov = s^2 (J^T J)^-1`` from the Jacobian of the stacked weighted
residuals (data and prior rows), ``s^2 = SSR / (N - p)``, and the same from the data rows
alone, which the prior cannot mask: data-only correlations (pairs above
:data:`PAIR_THRESHOLD` are not separately identified by the data) and data-only sd
relative to the range (the identifiability); see :func:`parameter_uncertainty`.
:func:`series_pull` says how hard each fitted series pulls each parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from greenpath.calibration.objective import PRIOR_SIGMA_U, Objective

__all__ = [
    "EIGEN_FLOOR",
    "IDENTIFIED_SD_RANGE",
    "PAIR_THRESHOLD",
    "UNIDENTIFIED_SD_RANGE",
    "Uncertainty",
    "at_bounds",
    "parameter_uncertainty",
    "series_pull",
]

#: Parameters closer than this (in units of their range) to a bound are reported as at it.
BOUND_TOLERANCE_U = 1e-3

#: Data-only pairs with ``|r|`` above this are "not separately identified by the data".
PAIR_THRESHOLD = 0.8
#: Data-only sd (in units of the registry range) up to which a parameter counts as
#: identified: its data-only ~95 % interval (±1.96 sd) is narrower than the range.
IDENTIFIED_SD_RANGE = 0.25
#: Data-only sd (range units) beyond which the data say nothing the range does not.
UNIDENTIFIED_SD_RANGE = 1.0
#: Eigenvalues of the data-only information ``J_d^T J_d`` below this fraction of the
#: largest are raised to it (a very weak ridge), so that an exact collinearity or a
#: parameter with no effect shows as ``|r| ~ 1`` and an sd far beyond the range, not a
#: failed inversion. The forward-difference Jacobian (step 1e-4) is accurate to about
#: 1e-4, so eigenvalues below ~1e-8 of the largest are noise; noise lifts a null
#: eigenvalue rather than hiding it, so a floor well below that level is the
#: conservative choice (it never makes a parameter look better identified than the
#: Jacobian says; a larger floor would act as a prior).
EIGEN_FLOOR = 1e-12


@dataclass
class Uncertainty:
    """Approximate parameter uncertainty at the optimum (see :func:`parameter_uncertainty`).

    Two views over the parameters inside their bounds: the *posterior* (data and prior
    rows: what the calibration's intervals are) and the *data-only* one (data rows alone:
    what the data by themselves pin down; the prior can hide non-identifiability, e.g.
    two parameters that enter only as a product).

    Attributes
    ----------
    sd : numpy.ndarray
        Posterior standard deviation in parameter units (NaN for parameters at a bound).
    correlation : numpy.ndarray
        Posterior correlation matrix (D, D); rows and columns of parameters at a bound
        are NaN.
    at_bound : numpy.ndarray
        -1 at the lower bound, +1 at the upper bound, 0 inside.
    s2 : float
        Residual variance ``SSR / (N - p)``.
    dof : int
        ``N - p``, N data residuals, p free parameters.
    prior_sd : numpy.ndarray
        The standard deviation the prior rows alone would give (parameter units).
    condition : float
        Condition number of ``J^T J`` over the free parameters.
    data_sd : numpy.ndarray
        Data-only standard deviation in parameter units, from ``s^2 (J_d^T J_d)^-1``
        over the free parameters (NaN at a bound). Far above the range when the data do
        not identify the parameter.
    data_correlation : numpy.ndarray
        Data-only correlation matrix (D, D), NaN at a bound; independent of ``s2``.
    data_sd_unit : numpy.ndarray
        ``data_sd`` at ``s^2 = 1`` (the stated sigmas taken at face value), in units of
        the registry range; the identifiability of a noise-free (synthetic) fit.
    data_condition : float
        Condition number of ``J_d^T J_d`` (after the eigenvalue floor).
    span : numpy.ndarray
        Registry ranges (max - min) of the parameters.
    """

    sd: np.ndarray
    correlation: np.ndarray
    at_bound: np.ndarray
    s2: float
    dof: int
    prior_sd: np.ndarray
    condition: float
    data_sd: np.ndarray = field(default_factory=lambda: np.array([]))
    data_correlation: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    data_sd_unit: np.ndarray = field(default_factory=lambda: np.array([]))
    data_condition: float = math.nan
    span: np.ndarray = field(default_factory=lambda: np.array([]))

    def pairs(self, names: Sequence[str], threshold: float = PAIR_THRESHOLD,
              data_only: bool = False) -> list[tuple[str, str, float]]:
        """Parameter pairs with ``|r| > threshold``, strongest first.

        ``data_only`` takes the data-only correlations (all parameters) instead of the
        posterior ones (free parameters).
        """
        corr = self.data_correlation if data_only else self.correlation
        out = []
        d = len(names)
        for i in range(d):
            for j in range(i + 1, d):
                r = corr[i, j]
                if np.isfinite(r) and abs(r) > threshold:
                    out.append((names[i], names[j], float(r)))
        return sorted(out, key=lambda t: -abs(t[2]))

    @property
    def data_sd_range(self) -> np.ndarray:
        """Data-only sd in units of the registry range (the identifiability measure)."""
        return self.data_sd / self.span

    @property
    def sd_ratio(self) -> np.ndarray:
        """Posterior sd / prior-only sd (near 1: the prior, not the data, sets the width)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sd / self.prior_sd

    def identification(self, names: Sequence[str], threshold: float = PAIR_THRESHOLD) -> list[str]:
        """One verdict per parameter on what the data alone pin down.

        ``identified`` (data-only sd at most :data:`IDENTIFIED_SD_RANGE` of the range),
        ``weakly identified`` (up to :data:`UNIDENTIFIED_SD_RANGE`), ``not identified by
        the data`` (beyond); a parameter in a data-only pair with ``|r| > threshold`` is
        additionally ``not separately identified from`` its partners.
        """
        partners: dict[str, list[str]] = {n: [] for n in names}
        for a, b, _ in self.pairs(names, threshold, data_only=True):
            partners[a].append(b)
            partners[b].append(a)
        out = []
        for name, sdr, bound in zip(names, self.data_sd_range, self.at_bound, strict=True):
            if bound:
                out.append(f"at its {'lower' if bound < 0 else 'upper'} bound: held by the range, not the data")
                continue
            if not math.isfinite(sdr) or sdr > UNIDENTIFIED_SD_RANGE:
                verdict = "not identified by the data"
            elif sdr > IDENTIFIED_SD_RANGE:
                verdict = "weakly identified"
            else:
                verdict = "identified"
            if partners[name]:
                shown = ", ".join(f"`{p}`" for p in partners[name][:3])
                more = f" and {len(partners[name]) - 3} more" if len(partners[name]) > 3 else ""
                verdict += f"; not separately identified from {shown}{more}"
            out.append(verdict)
        return out


def at_bounds(u: np.ndarray) -> np.ndarray:
    """-1 / +1 where ``u`` is within :data:`BOUND_TOLERANCE_U` of 0 / 1, else 0."""
    u = np.asarray(u, dtype=float)
    return np.where(u <= BOUND_TOLERANCE_U, -1, np.where(u >= 1.0 - BOUND_TOLERANCE_U, 1, 0))


def _floored_inverse(h: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse of a symmetric PSD matrix with eigenvalues floored at :data:`EIGEN_FLOOR` x max."""
    w, v = np.linalg.eigh(h)
    top = float(w.max()) if w.size and w.max() > 0 else 1.0
    w = np.maximum(w, top * EIGEN_FLOOR)
    return (v / w) @ v.T, float(w.max() / w.min())


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = cov / np.outer(sd, sd)
    np.fill_diagonal(c, 1.0)
    return c


def _linearised(objective: Objective, u: np.ndarray, diff_step: float, jacobian: np.ndarray | None,
                residuals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the Jacobian and the residuals at ``u``, computing those not given."""
    j = objective.jacobian(u, diff_step) if jacobian is None else jacobian
    r = objective.residuals(u) if residuals is None else residuals
    return j, r


def parameter_uncertainty(objective: Objective, u: np.ndarray, diff_step: float = 1e-4, *,
                          jacobian: np.ndarray | None = None,
                          residuals: np.ndarray | None = None) -> Uncertainty:
    """Posterior and data-only uncertainty from the Jacobian of the weighted residuals at ``u``.

    Parameters
    ----------
    objective : Objective
        The residual function used in the fit.
    u : numpy.ndarray
        Optimum in unit coordinates.
    diff_step : float
        Forward-difference step (units of the parameter range).
    jacobian, residuals : numpy.ndarray, optional
        ``objective.jacobian(u, diff_step)`` and ``objective.residuals(u)`` when the
        caller already has them (the report shares them with :func:`series_pull`);
        computed here otherwise.

    Returns
    -------
    Uncertainty

    Notes
    -----
    *Posterior*: ``cov = s^2 (J^T J)^-1`` with ``J`` the Jacobian of all rows (data and
    prior), over the parameters *inside* their bounds (an active bound is a constraint,
    not an estimate, so those parameters are held fixed and get no interval). The prior
    rows keep a parameter the data do not inform at roughly its prior width (compare
    ``sd`` with ``prior_sd``) instead of an infinite one -- which also hides it.

    *Data-only*: ``cov_d = s^2 (J_d^T J_d)^-1`` with ``J_d`` the data rows alone, over
    the same free parameters (those at a bound held there, as for the posterior);
    eigenvalues below :data:`EIGEN_FLOOR` times the largest are floored, so a
    combination the data cannot see shows as ``|r| ~ 1`` and an sd far beyond the range.
    Correlations do not depend on ``s^2``.

    Both are local, linearised estimates that take the stated sigmas and ``1/sqrt(n)``
    weights as if they were inverse standard deviations and ignore the autocorrelation of
    structural errors, so intervals are indicative and likely too narrow where the
    structure misfits.
    """
    space = objective.space
    u = np.asarray(u, dtype=float)
    bound = at_bounds(u)
    free = bound == 0
    d = len(space)
    sd = np.full(d, np.nan)
    corr = np.full((d, d), np.nan)
    j, r = _linearised(objective, u, diff_step, jacobian, residuals)
    j = j[:, free]
    p = int(free.sum())
    dof = max(1, objective.n_data - p)
    s2 = float(np.sum(r**2) / dof)
    cond = math.nan
    data_sd_unit = np.full(d, np.nan)
    data_corr = np.full((d, d), np.nan)
    data_cond = math.nan
    if p:
        jtj = j.T @ j
        cov_u = s2 * np.linalg.pinv(jtj)
        sd[free] = np.sqrt(np.clip(np.diag(cov_u), 0.0, None)) * space.span[free]
        corr[np.ix_(free, free)] = _correlation(cov_u)
        cond = float(np.linalg.cond(jtj))
        j_data = j[: objective.n_data]
        cov_unit, data_cond = _floored_inverse(j_data.T @ j_data)
        data_sd_unit[free] = np.sqrt(np.clip(np.diag(cov_unit), 0.0, None))
        data_corr[np.ix_(free, free)] = _correlation(cov_unit)
    if objective.n_prior:
        prior_sd_u = PRIOR_SIGMA_U * math.sqrt(len(space) / objective.prior_weight) * math.sqrt(s2)
    else:
        prior_sd_u = math.inf
    return Uncertainty(sd=sd, correlation=corr, at_bound=bound, s2=s2, dof=dof,
                       prior_sd=np.full(d, prior_sd_u) * space.span, condition=cond,
                       data_sd=data_sd_unit * math.sqrt(s2) * space.span,
                       data_correlation=data_corr, data_sd_unit=data_sd_unit,
                       data_condition=data_cond, span=np.array(space.span, dtype=float))


def series_pull(objective: Objective, u: np.ndarray, diff_step: float = 1e-4, *,
                jacobian: np.ndarray | None = None, residuals: np.ndarray | None = None) -> pd.DataFrame:
    """How hard each fitted series pulls each parameter at ``u``: ``d(cost_k)/du_j``.

    Parameters
    ----------
    objective : Objective
        The residual function used in the fit.
    u : numpy.ndarray
        The point (unit coordinates), usually the optimum.
    diff_step : float
        Forward-difference step.
    jacobian, residuals : numpy.ndarray, optional
        As for :func:`parameter_uncertainty`: given, they are not recomputed.

    Returns
    -------
    pandas.DataFrame
        Index: series keys (plus ``prior`` when the prior is on); columns: parameter
        names. A positive entry means that series' cost falls when the parameter
        *decreases*: at a lower bound, the series that pull the parameter below it.
    """
    j, r = _linearised(objective, u, diff_step, jacobian, residuals)
    rows, keys, start = [], [], 0
    for s in objective.series:
        stop = start + s.n_residuals
        rows.append(2.0 * r[start:stop] @ j[start:stop])
        keys.append(s.key)
        start = stop
    if objective.n_prior:
        rows.append(2.0 * r[start:] @ j[start:])
        keys.append("prior")
    return pd.DataFrame(rows, index=keys, columns=list(objective.space.names))
