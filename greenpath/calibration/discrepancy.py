"""Model discrepancy: an unknown error scale per fitted series, integrated out, and predictive draws.

Why
---
Each fitted series states an error ``sigma`` (its rationale is in
:func:`greenpath.calibration.fit.build_series`): the uncertainty of the recorded value.
The model misses some series by more than that (the sector shares move less than half as
far as the record), and a posterior that takes ``sigma`` as the whole error is then too
sure of itself: its 2016-22 backtest band covered 22 % of the recorded points against a
nominal 80 %. The standard remedy (Kennedy and O'Hagan 2001; Gelman et al., *Bayesian Data
Analysis*, ch. 14) is an error term estimated from the misfit itself.

Method
------
* Every point ``j`` of series ``s`` has the error ``lambda_s * sigma_s`` (in the series'
  residual form: relative, absolute or log), with one unknown scale ``lambda_s >= 1`` per
  series: the stated error is a floor (a model cannot be checked more finely than the
  record), the rest is the model's own misfit.
* Prior ``p(lambda) ~ 1 / lambda`` on ``[1, inf)`` (scale-invariant; Jeffreys).
* ``lambda_s`` is integrated out in closed form. With ``SS`` the sum of the squared
  standardised residuals ``r_j = (sim - obs) / sigma`` and ``m`` the series' degrees of
  freedom (its points, one less for a shape-only series whose level factor is profiled
  out), ``int_1^inf lambda^-m exp(-SS / (2 lambda^2)) dlambda / lambda
  = 1/2 Gamma(m/2) (SS/2)^(-m/2) P(m/2, SS/2)`` with ``P`` the regularised lower
  incomplete gamma function. For ``SS`` well below ``m`` this is the Gaussian
  likelihood with ``lambda = 1`` (up to a constant); for ``SS`` far above ``m`` it falls
  like ``SS^(-m/2)``, a Student-t-like likelihood that stops one badly fitted series from
  dragging every parameter.
* No parameter is added to the sampler (so its autocorrelation time does not grow).
  Given a parameter draw, ``t = 1/lambda^2`` has the density ``Gamma(m/2, rate SS/2)``
  cut to ``t <= 1``; :func:`draw_scale` draws it exactly by inverting its distribution
  function.
* **Predictive draws** (:func:`predictive`): the model's value for a parameter draw plus
  an error of ``lambda * sigma`` drawn with that draw's ``lambda``, in the series' error
  form. The backtest's band for the recorded values is the band of these draws; the
  parameter-only band is reported next to it.

The residual vector these functions read is :class:`greenpath.calibration.fit.Objective`'s
with the point fit's ``1/sqrt(n)`` weighting undone
(:func:`greenpath.calibration.posterior.point_weights`): per series its ``n`` point
residuals, then for a shape-only series with a factor bound one bound row, which stays a
plain Gaussian penalty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["Block", "blocks", "degrees_of_freedom", "draw_scale", "log_marginal", "log_likelihood", "predictive",
           "sum_of_squares"]


@dataclass(frozen=True)
class Block:
    """Where one series' residuals sit in the stacked residual vector."""

    key: str
    start: int
    n: int  # point residuals
    dof: int  # degrees of freedom m
    bound_row: int | None  # index of the factor-bound row, if any


def degrees_of_freedom(s: Any) -> int:
    """``m`` of a series: its points, one less when a level factor is profiled out (at least 1)."""
    return max(1, s.n - (1 if s.shape_only else 0))


def blocks(series: Sequence[Any]) -> list[Block]:
    """Return the blocks of the fitted series, in the objective's order."""
    out, start = [], 0
    for s in series:
        bound = start + s.n if s.n_residuals > s.n else None
        out.append(Block(s.key, start, s.n, degrees_of_freedom(s), bound))
        start += s.n_residuals
    return out


def log_marginal(ss: np.ndarray, m: int) -> np.ndarray:
    """``log int_1^inf lambda^-m exp(-ss / (2 lambda^2)) dlambda / lambda`` (+ log 2), elementwise.

    Equals ``gammaln(m/2) - (m/2) log(ss/2) + log P(m/2, ss/2)``; for small ``ss`` the
    limit ``-log(m/2) - ss/2`` (the Gaussian with ``lambda = 1``) is used directly.
    """
    a = 0.5 * m
    x = 0.5 * np.asarray(ss, dtype=float)
    small = x < 1e-3 * a
    with np.errstate(divide="ignore", invalid="ignore"):
        big = special.gammaln(a) - a * np.log(x) + np.log(special.gammainc(a, x))
    # series of P(a, x) for small x: x^a e^-x / Gamma(a + 1) (1 + x / (a + 1) + ...)
    near = -math.log(a) - x + np.log1p(x / (a + 1.0))
    return np.where(small, near, big)


def sum_of_squares(r: np.ndarray, block: Block) -> np.ndarray:
    """Sum of the squared point residuals of one block, (S,)."""
    part = r[:, block.start : block.start + block.n]
    return np.sum(part * part, axis=1)


def log_likelihood(r: np.ndarray, blocks_: Sequence[Block]) -> np.ndarray:
    """Log likelihood (S,) of unweighted residuals ``r`` (S, M) with each series' scale integrated out."""
    total = np.zeros(r.shape[0])
    for b in blocks_:
        total += log_marginal(sum_of_squares(r, b), b.dof)
        if b.bound_row is not None:
            total -= 0.5 * r[:, b.bound_row] ** 2
    return total


def draw_scale(ss: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``lambda >= 1`` (S,) given each draw's sum of squares: ``t = 1/lambda^2 ~ Gamma(m/2, ss/2) | t <= 1``."""
    a = 0.5 * m
    x = 0.5 * np.maximum(np.asarray(ss, dtype=float), 1e-300)
    u = rng.random(x.shape)
    cap = special.gammainc(a, x)  # P(t <= 1)
    t = special.gammaincinv(a, u * cap) / x
    t = np.where(np.isfinite(t) & (t > 0), np.minimum(t, 1.0), 1.0)
    return 1.0 / np.sqrt(t)


def predictive(s: Any, sim: np.ndarray, lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predictive values (S, n): ``sim`` (as compared, S x n) plus an error of ``lam * sigma`` per draw.

    Relative series: ``sim * (1 + e)``; absolute: ``sim + e``; shape-only (log):
    ``sim * exp(e)``; ``e ~ N(0, (lam sigma)^2)``.
    """
    e = rng.standard_normal(sim.shape) * (np.asarray(lam, dtype=float)[:, None] * s.sigma)
    if s.error == "relative":
        return sim * (1.0 + e)
    if s.error == "absolute":
        return sim + e
    return sim * np.exp(e)
