"""Goodness-of-fit statistics for comparing simulated and observed history.

All functions take an observed and a simulated sequence. When both are
:class:`pandas.Series` they are matched by index value (year) and only common years are
used, so a PySD run indexed by float time (2005.0, 2006.0, ...) pairs with a history
series indexed by int year; otherwise they are paired by position and must have the same
length. Pairs in which either value is NaN are dropped. If nothing is left, a
:class:`ValueError` naming the series is raised.

References
----------
Lewis, C. D. (1982). *Industrial and Business Forecasting Methods*. Butterworths.
    MAPE < 10 % highly accurate, 10-20 % good, 20-50 % reasonable, > 50 % inaccurate.
Sterman, J. D. (1984). Appropriate summary statistics for evaluating the historical fit
    of system dynamics models. *Dynamica* 10(2), 51-66.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd

__all__ = [
    "TheilStatistics",
    "fit_table",
    "lewis_grade",
    "mape",
    "r_squared",
    "theil",
]

ArrayLike: TypeAlias = pd.Series | np.ndarray | Sequence[float]


def _label(obs: ArrayLike, sim: ArrayLike, name: str | None) -> str:
    if name is not None:
        return name
    for candidate in (obs, sim):
        if isinstance(candidate, pd.Series) and candidate.name is not None:
            return str(candidate.name)
    return "<unnamed series>"


def _paired_indexed(
    obs: ArrayLike, sim: ArrayLike, name: str | None
) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Return aligned float arrays of the usable pairs and their index (year or position)."""
    label = _label(obs, sim, name)
    if isinstance(obs, pd.Series) and isinstance(sim, pd.Series):
        obs, sim = obs.align(sim, join="inner")
        index: pd.Index = obs.index
    else:
        index = pd.RangeIndex(len(obs))
    o = np.asarray(obs, dtype=float)
    s = np.asarray(sim, dtype=float)
    if o.ndim != 1 or s.ndim != 1:
        raise ValueError(f"series {label!r}: observed and simulated must be one-dimensional")
    if o.shape != s.shape:
        raise ValueError(
            f"series {label!r}: observed has {o.size} values but simulated has {s.size}; "
            "pass pandas Series to match them by year"
        )
    keep = ~(np.isnan(o) | np.isnan(s))
    o, s, index = o[keep], s[keep], index[keep]
    if o.size == 0:
        raise ValueError(
            f"series {label!r}: no (observed, simulated) pairs left after dropping NaN "
            "and unmatched years"
        )
    if not (np.isfinite(o).all() and np.isfinite(s).all()):
        raise ValueError(f"series {label!r}: infinite values are not allowed")
    return o, s, index


def _paired(obs: ArrayLike, sim: ArrayLike, name: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Return aligned float arrays of the pairs where both values are present."""
    o, s, _ = _paired_indexed(obs, sim, name)
    return o, s


def mape(obs: ArrayLike, sim: ArrayLike, name: str | None = None) -> float:
    """Mean absolute percentage error, in percent.

    ``MAPE = 100 / n * sum(|sim_t - obs_t| / |obs_t|)``.

    Parameters
    ----------
    obs, sim : pandas.Series, numpy.ndarray or sequence of float
        Observed and simulated values (see the module docstring for pairing and NaN).
    name : str, optional
        Series name used in error messages; defaults to the Series' name.

    Returns
    -------
    float
        MAPE in percent (0 for a perfect fit).

    Raises
    ------
    ValueError
        If no pairs remain, or an observed value is 0 (MAPE undefined).
    """
    o, s = _paired(obs, sim, name)
    if (o == 0).any():
        raise ValueError(
            f"series {_label(obs, sim, name)!r}: MAPE is undefined when an observed value is 0"
        )
    return float(np.mean(np.abs(s - o) / np.abs(o)) * 100.0)


def lewis_grade(mape_pct: float) -> str:
    """Grade a MAPE on Lewis's (1982) scale.

    Parameters
    ----------
    mape_pct : float
        MAPE in percent.

    Returns
    -------
    str
        ``"high"`` (< 10), ``"good"`` (10 to < 20), ``"reasonable"`` (20 to < 50) or
        ``"inaccurate"`` (>= 50).

    Raises
    ------
    ValueError
        If ``mape_pct`` is negative or NaN.
    """
    if math.isnan(mape_pct) or mape_pct < 0:
        raise ValueError(f"MAPE must be a non-negative number, got {mape_pct!r}")
    if mape_pct < 10:
        return "high"
    if mape_pct < 20:
        return "good"
    if mape_pct < 50:
        return "reasonable"
    return "inaccurate"


def r_squared(obs: ArrayLike, sim: ArrayLike, name: str | None = None) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``.

    ``SS_res = sum((obs - sim)**2)``, ``SS_tot = sum((obs - mean(obs))**2)``. It can be
    negative when the simulation fits worse than the observed mean.

    Parameters
    ----------
    obs, sim : pandas.Series, numpy.ndarray or sequence of float
        Observed and simulated values.
    name : str, optional
        Series name used in error messages.

    Returns
    -------
    float
        R², or NaN when the observations are constant (``SS_tot = 0``, e.g. a single
        point), where it is undefined.

    Raises
    ------
    ValueError
        If no pairs remain.
    """
    o, s = _paired(obs, sim, name)
    ss_tot = float(np.sum((o - o.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    ss_res = float(np.sum((o - s) ** 2))
    return 1.0 - ss_res / ss_tot


@dataclass(frozen=True)
class TheilStatistics:
    """Sterman's (1984) error statistics and Theil inequality decomposition.

    Attributes
    ----------
    n : int
        Number of (observed, simulated) pairs used.
    mse : float
        Mean square error ``mean((sim - obs)**2)``.
    rmse : float
        Root mean square error.
    rmspe_pct : float
        Root mean square percent error ``100 * sqrt(mean(((sim - obs) / obs)**2))``; NaN if
        an observed value is 0.
    r : float
        Pearson correlation of simulated and observed; NaN if either is constant.
    u_m : float
        Bias share ``(mean_sim - mean_obs)**2 / MSE``.
    u_s : float
        Unequal-variation share ``(S_sim - S_obs)**2 / MSE``.
    u_c : float
        Unequal-covariation share ``2 (1 - r) S_sim S_obs / MSE``.

    Notes
    -----
    ``S`` are population standard deviations (divide by n), so ``u_m + u_s + u_c = 1``
    exactly. ``2 (1 - r) S_sim S_obs`` is computed as ``2 (S_sim S_obs - cov)`` so it is
    defined (0) when a series is constant. When MSE = 0 (perfect fit) the shares are
    undefined and are NaN.
    """

    n: int
    mse: float
    rmse: float
    rmspe_pct: float
    r: float
    u_m: float
    u_s: float
    u_c: float


def theil(obs: ArrayLike, sim: ArrayLike, name: str | None = None) -> TheilStatistics:
    """Compute MSE, RMSPE and the Theil inequality shares (Sterman 1984).

    Parameters
    ----------
    obs, sim : pandas.Series, numpy.ndarray or sequence of float
        Observed and simulated values.
    name : str, optional
        Series name used in error messages.

    Returns
    -------
    TheilStatistics
        See the class for the definitions.

    Raises
    ------
    ValueError
        If no pairs remain.
    """
    o, s = _paired(obs, sim, name)
    err = s - o
    mse = float(np.mean(err**2))
    if (o == 0).any():
        rmspe = math.nan
    else:
        with np.errstate(over="ignore", divide="ignore"):  # tiny obs -> inf is the answer
            rmspe = float(np.sqrt(np.mean((err / o) ** 2)) * 100.0)
    sd_o = float(np.std(o))  # population standard deviations (ddof=0)
    sd_s = float(np.std(s))
    cov = float(np.mean((s - s.mean()) * (o - o.mean())))
    r = cov / (sd_s * sd_o) if sd_s > 0 and sd_o > 0 else math.nan
    if mse == 0.0:
        u_m = u_s = u_c = math.nan
    else:
        u_m = float((s.mean() - o.mean()) ** 2 / mse)
        u_s = (sd_s - sd_o) ** 2 / mse
        u_c = 2.0 * (sd_s * sd_o - cov) / mse
    return TheilStatistics(
        n=int(o.size),
        mse=mse,
        rmse=math.sqrt(mse),
        rmspe_pct=rmspe,
        r=r,
        u_m=u_m,
        u_s=u_s,
        u_c=u_c,
    )


FIT_TABLE_COLUMNS: tuple[str, ...] = (
    "series",
    "simulated_as",
    "n",
    "first_year",
    "last_year",
    "mape_pct",
    "lewis_grade",
    "r_squared",
    "mse",
    "rmse",
    "rmspe_pct",
    "r",
    "u_m",
    "u_s",
    "u_c",
)


def fit_table(
    observed: Mapping[str, pd.Series],
    simulated: Mapping[str, pd.Series] | pd.DataFrame,
    pairs: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Assemble one row of fit statistics per observed series.

    Parameters
    ----------
    observed : mapping of str to pandas.Series
        Observed series by name, indexed by year (e.g. built with
        :func:`greenpath.calibration.history.series`).
    simulated : mapping of str to pandas.Series, or pandas.DataFrame
        Simulated series (e.g. a PySD run, columns = model variables, index = time).
    pairs : mapping of str to str, optional
        Observed name -> simulated name. Defaults to every observed name paired with the
        same simulated name. Rows appear in the order of ``pairs`` (or ``observed``).

    Returns
    -------
    pandas.DataFrame
        Columns ``series, simulated_as, n, first_year, last_year, mape_pct, lewis_grade,
        r_squared, mse, rmse, rmspe_pct, r, u_m, u_s, u_c``; ``first_year``/``last_year``
        are the first and last matched index values (positions for plain arrays).

    Raises
    ------
    KeyError
        If a series named in ``pairs`` is missing from ``observed`` or ``simulated``.
    ValueError
        If a series has no matched, non-NaN pairs (the message names it), or MAPE is
        undefined for it.
    """
    mapping = dict(pairs) if pairs is not None else {name: name for name in observed}
    rows = []
    for obs_name, sim_name in mapping.items():
        if obs_name not in observed:
            raise KeyError(f"observed series {obs_name!r} not found")
        if sim_name not in simulated:
            raise KeyError(f"simulated series {sim_name!r} (for {obs_name!r}) not found")
        obs = observed[obs_name]
        sim = simulated[sim_name]
        m = mape(obs, sim, name=obs_name)
        stats = theil(obs, sim, name=obs_name)
        _, _, matched = _paired_indexed(obs, sim, obs_name)
        rows.append(
            {
                "series": obs_name,
                "simulated_as": sim_name,
                "n": stats.n,
                "first_year": matched.min(),
                "last_year": matched.max(),
                "mape_pct": m,
                "lewis_grade": lewis_grade(m),
                "r_squared": r_squared(obs, sim, name=obs_name),
                "mse": stats.mse,
                "rmse": stats.rmse,
                "rmspe_pct": stats.rmspe_pct,
                "r": stats.r,
                "u_m": stats.u_m,
                "u_s": stats.u_s,
                "u_c": stats.u_c,
            }
        )
    return pd.DataFrame(rows, columns=list(FIT_TABLE_COLUMNS))
