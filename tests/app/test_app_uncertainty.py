"""One ensemble for the app's bands and target chances (greenpath.app.uncertainty).

The app used to run the same 500-draw sample twice a lever move: once for the P10-P90
bands (``greenpath.runners.ensemble.bands``), once for the chance of each target
(``greenpath.runners.chance.chance``).  ``uncertainty.compute`` runs it once; these
tests hold it to the numbers of the two separate functions, so the saving cannot
change what the officer sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greenpath.app import runner, state, uncertainty
from greenpath.scenarios import scenario as sc
from greenpath.scenarios import targets as tg

N = 60  # fewer draws than the app's 500: the identity holds for any n and seed


@pytest.mark.parametrize("settings", [
    {},  # the model's defaults
    {"wind_build_rate": 180.0, "industrial_coal_substitution_rate": 0.04},
    "plan_2021",  # year tables: the time-varying path of the ensemble
])
def test_one_ensemble_gives_the_bands_and_chances_of_the_separate_functions(settings):
    if isinstance(settings, str):
        settings = sc.load(settings).settings()
    key = state.run_key(settings)
    found = uncertainty.compute(key, n=N)
    assert found is not None
    bands = runner.compute_bands(key, n=N)
    pd.testing.assert_frame_equal(found.bands, bands, check_exact=True)
    assert found.bands.attrs["n"] == N
    assert found.bands.attrs["sampled"] == bands.attrs["sampled"]
    assert found.bands.attrs["posterior"] == bands.attrs["posterior"]
    chances = runner.target_chances(key, n=N)
    assert list(found.chances.index) == [x.id for x in tg.load()]
    pd.testing.assert_frame_equal(found.chances.loc[chances.index], chances, check_exact=True)


def test_a_lever_moves_the_bands_and_a_band_brackets_its_median():
    """Levers are held in every draw: more wind moves the whole renewables band up."""
    low = uncertainty.compute(state.run_key({"wind_build_rate": 0.0}), n=N)
    high = uncertainty.compute(state.run_key({"wind_build_rate": 300.0}), n=N)

    def band(found, year=2030):
        b = found.bands
        return b[(b["variable"] == "renewable_capacity") & (b["year"] == year)].iloc[0]

    assert band(high)["p10"] > band(low)["p90"]
    for found in (low, high):
        b = found.bands
        assert np.all(b["p10"] <= b["p50"])
        assert np.all(b["p50"] <= b["p90"])
        assert found.chances["chance"].between(0, 1).all()
        assert (found.chances["n"] == N).all()
