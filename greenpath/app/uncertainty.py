"""The app's uncertainty runs: the P10-P90 bands and the chance of each target from ONE ensemble.

The bands (:func:`greenpath.runners.ensemble.bands`) and the chances
(:func:`greenpath.runners.chance.chance`) of one setting draw exactly the same sample
(projection uncertainties on a seeded Latin hypercube, the calibration's posterior,
the levers held: :func:`greenpath.runners.chance.sample`).  The app used to run that
sample twice per lever move, once for each (two ensembles of 500 runs, about 100 ms of
CPU each on the vector engine, half of the server's work per move).  :func:`compute`
runs it once, returning the variables of the bands and of every target, and derives
both: the numbers are the ones the two separate functions give (the tests compare
them), at half the cost.

The chance of a target does not depend on which other targets are evaluated, so the
chances are computed for every target of the targets file once per setting; choosing a
target set only selects rows.

Draws: 500 (:data:`greenpath.app.runner.BAND_SAMPLES`) stay.  A run of 100 draws costs
about 80 % of a run of 500 on the vector engine (its time is Python's per-operation
overhead, not arithmetic), so fewer draws would buy little speed for a P10/P90 whose
sampling error grows by a factor of sqrt(5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from greenpath.app import runner, state


@dataclass(frozen=True)
class Uncertainty:
    """Bands and chances of one setting, from one ensemble.

    Attributes
    ----------
    bands
        Long table ``year, variable, p10, p50, p90`` as :func:`greenpath.app.runner.compute_bands`
        returns it (``attrs``: ``n``, ``sampled``, ``posterior``, ``posterior_source``).
    chances
        Index ``id`` (every target of the targets file); columns ``chance`` (0-1),
        ``n_met``, ``n``, as :func:`greenpath.runners.chance.chance` returns them.
    """

    bands: pd.DataFrame
    chances: pd.DataFrame


def compute(key: state.RunKey, variables: Sequence[str] = runner.BAND_VARIABLES,
            n: int = runner.BAND_SAMPLES, seed: int | None = None) -> Uncertainty:
    """Run the uncertainty sample of the settings of ``key`` once; bands and chances from it."""
    from greenpath.runners import chance, ensemble
    from greenpath.scenarios import targets as tg

    seed = ensemble.DEFAULT_SEED if seed is None else seed
    kw = state.run_kwargs(key)
    tables = kw["time_varying"] or None
    chosen = tg.load()
    target_columns = tg.required_variables(chosen)
    columns = list(dict.fromkeys([*variables, *target_columns]))
    frame, info = chance.sample(kw["params"], n, seed, tables)
    result = ensemble.run_many(frame, columns, engine="auto", time_varying=tables,
                               output="arrays")
    years = np.asarray(result.years)
    rows = []
    for variable in variables:
        p10, p50, p90 = np.percentile(result.values[variable], (10.0, 50.0, 90.0), axis=0)
        rows.append(pd.DataFrame({"year": years.astype(int), "variable": variable,
                                  "p10": p10, "p50": p50, "p90": p90}))
    bands = pd.concat(rows, ignore_index=True)
    bands.attrs.update({k: info[k] for k in ("n", "sampled", "posterior", "posterior_source")})
    cube = np.stack([result.values[c] for c in target_columns], axis=2)  # (runs, years, columns)
    met = tg.evaluate_arrays(cube, result.years, target_columns, chosen)["met"]
    chances = pd.DataFrame({"chance": chance.share_met(met), "n_met": met.sum(axis=0).astype(int),
                            "n": n}, index=pd.Index([t.id for t in chosen], name="id"))
    chances.attrs.update(info)
    return Uncertainty(bands, chances)
