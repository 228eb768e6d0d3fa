"""The chance of meeting each plan target: the share of uncertainty draws that meet it.

One verdict (met / missed) comes from one run at the point calibration. Next to it, the
*chance* is the share of ``n`` runs that meet the target, where each run holds the
scenario's levers and draws

* the **projection uncertainties** (:func:`greenpath.runners.ensemble.projection_uncertainties`,
  a seeded Latin hypercube over their registry ranges), and
* the **calibrated parameters** from the calibration's posterior sample
  (:func:`greenpath.calibration.posterior.draw_rows`; without a usable posterior they stay
  at the point calibration and ``attrs["posterior_source"]`` says why),

exactly the sample the uncertainty bands draw (:func:`greenpath.runners.ensemble.bands`), so a
band and a chance of the same settings and seed come from the same runs. All runs go
through one ``run_many(engine="auto")`` call (the vector engine).

Public API
----------
``chance(base_params, targets, n=500, seed=DEFAULT_SEED, time_varying=None) -> DataFrame``
    ``id, chance, n_met, n`` per target; ``attrs`` say what was sampled.
``share_met(met) -> ndarray``
    The share of runs (rows) meeting each target (columns) of a boolean matrix.
``format_chance(share) -> str`` (from :mod:`greenpath.scenarios.targets`)
    ``"61 %"``; ``"<1 %"`` / ``">99 %"`` when some but not all (or all but some) draws meet it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greenpath.scenarios.targets import format_chance  # the one text of a chance, kept here for callers

__all__ = ["DEFAULT_SAMPLES", "chance", "chance_column", "format_chance", "sample", "share_met"]

#: Runs per chance (the app's band sample size).
DEFAULT_SAMPLES = 500


def share_met(met: np.ndarray) -> np.ndarray:
    """Share of rows (runs) that are True, per column (target); NaN for no rows."""
    met = np.asarray(met, dtype=bool)
    if met.ndim != 2:
        raise ValueError(f"met must be (runs, targets), got shape {met.shape}")
    if met.shape[0] == 0:
        return np.full(met.shape[1], np.nan)
    return met.mean(axis=0)


def sample(base_params: Mapping[str, float] | None, n: int, seed: int | None,
           time_varying: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw the runs of a chance (and of the bands): levers held, uncertainties and posterior drawn.

    Returns the parameter frame (one row per run) and what was sampled.
    """
    from greenpath.runners import ensemble

    return ensemble.uncertainty_sample(base_params, n, seed, time_varying)


def chance(base_params: Mapping[str, float] | None, targets: Sequence[Any], n: int = DEFAULT_SAMPLES,
           seed: int | None = None, time_varying: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Share of the ``n`` uncertainty runs of a scenario that meet each target.

    Parameters
    ----------
    base_params
        The scenario's settings (levers; any uncertainty given here is held).
    targets
        :class:`greenpath.scenarios.targets.Target` objects.
    n, seed
        Runs and seed (default :data:`greenpath.runners.ensemble.DEFAULT_SEED`, the bands' seed).
    time_varying
        The scenario's year tables.

    Returns
    -------
    pandas.DataFrame
        Index ``id``; columns ``chance`` (0-1), ``n_met``, ``n``. ``attrs`` as
        :func:`sample` reports.
    """
    from greenpath.runners import ensemble
    from greenpath.scenarios import targets as tg

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n = {n!r}: the number of runs must be a whole number >= 1")
    seed = ensemble.DEFAULT_SEED if seed is None else seed
    targets = list(targets)
    columns = tg.required_variables(targets)
    frame, info = sample(base_params, n, seed, time_varying)
    result = ensemble.run_many(frame, columns, engine="auto", time_varying=time_varying, output="arrays")
    cube = np.stack([result.values[c] for c in columns], axis=2)  # (runs, years, columns)
    met = tg.evaluate_arrays(cube, result.years, columns, targets)["met"]
    share = share_met(met)
    out = pd.DataFrame({"chance": share, "n_met": met.sum(axis=0).astype(int), "n": n},
                       index=pd.Index([t.id for t in targets], name="id"))
    out.attrs.update(info)
    return out


def chance_column(scenario: Any, table: pd.DataFrame, targets: Any = None, sets: Sequence[str] | None = None,
                  n: int = DEFAULT_SAMPLES) -> pd.DataFrame:
    """``table`` (:func:`greenpath.scenarios.targets.evaluate` of ``scenario``) with a ``chance`` column.

    ``targets`` and ``sets`` as :func:`greenpath.scenarios.targets.evaluate` takes them.
    """
    from pathlib import Path

    from greenpath.scenarios import targets as tg

    loaded = tg.load(targets or tg.DEFAULT_TARGETS) if targets is None or isinstance(targets, str | Path) else targets
    chosen = tg.select(list(loaded), list(sets) if sets else None)
    kw = scenario.run_kwargs()
    chances = chance(kw["params"], chosen, n=n, time_varying=kw["time_varying"] or None)
    out = table.copy()
    out["chance"] = out["id"].map(chances["chance"]).to_numpy(dtype=float)
    out.attrs.update(chances.attrs)
    return out
