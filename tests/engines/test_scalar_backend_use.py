"""Where one run at a time is made, the scalar backend makes it (issue 12, part 3).

The app's main run, ``greenpath run`` and calibration's least-squares steps run one
scenario at a time; each must go through the scalar backend of the generated engine
(straight-line Python on floats), not through PySD or a length-1 NumPy pass.  The
wedges are the exception on purpose: they run all 2^n coalitions in one vector call
(cheaper than 2^n scalar runs for the shipped scenarios, see README "The generated
engines"), which the last test pins.

Each test spies on the generated module: ``simulate_one`` is the scalar backend's
entry, ``_run_range`` the vector backend's.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from greenpath.engines.vector_loader import vector_model


@pytest.fixture
def calls(monkeypatch):
    """Count scalar and vector passes of every generated module built in this process."""
    from greenpath.engines import vector as V

    counts = {"scalar": 0, "vector": 0}
    original = V.VectorModel.simulate

    def spied(self, *args, **kwargs):
        module = self.module
        if not getattr(module, "_spied", False):
            one, rng = module.simulate_one, module._run_range

            def simulate_one(*a, **k):
                counts["scalar"] += 1
                return one(*a, **k)

            def run_range(*a, **k):
                counts["vector"] += 1
                return rng(*a, **k)

            monkeypatch.setattr(module, "simulate_one", simulate_one, raising=True)
            monkeypatch.setattr(module, "_run_range", run_range, raising=True)
            monkeypatch.setattr(module, "_spied", True, raising=False)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(V.VectorModel, "simulate", spied)
    return counts


def _key(name: str):
    """Return the app's run key of a shipped scenario (levers and year tables)."""
    from greenpath.scenarios import scenario as sc

    kw = sc.load(name).run_kwargs()
    settings = dict(kw["params"])
    settings.update({k: (tuple(xs), tuple(ys)) for k, (xs, ys) in (kw["time_varying"] or {}).items()})
    return tuple(sorted(settings.items()))


@pytest.mark.parametrize("name", ["baseline", "plan_2021"])  # plan_2021 has year-tabled levers
def test_app_main_run_is_scalar(calls, name):
    from greenpath.app import runner

    result = runner.ModelPool(size=1).run(_key(name), name)
    assert result.metadata["engine"] == "scalar"
    assert calls == {"scalar": 1, "vector": 0}


def test_greenpath_run_is_scalar(calls, tmp_path, capsys):
    from greenpath.cli import main

    assert main(["run", "plan_2021", "--out", str(tmp_path)]) == 0
    meta = json.loads((tmp_path / "plan_2021.meta.json").read_text(encoding="utf-8"))
    assert meta["engine"] == "scalar"
    assert calls == {"scalar": 1, "vector": 0}


def test_calibration_least_squares_step_is_scalar(calls):
    """One residual vector (what ``least_squares`` asks for) is one scalar run."""
    from greenpath.calibration.history import load_history
    from greenpath.calibration.objective import Objective
    from greenpath.calibration.series import build_series
    from greenpath.calibration.simulators import VectorSimulator
    from greenpath.calibration.space import ParameterSpace

    simulator = VectorSimulator()
    series = build_series(load_history())
    space = ParameterSpace(["initial_gdp", "industry_growth_differential"])
    objective = Objective(simulator, series, space)
    r = objective.residuals(np.full(len(space), 0.5))
    assert np.isfinite(r).all()
    assert r.size == objective.n_residuals
    assert calls == {"scalar": 1, "vector": 0}
    # the differential-evolution population (a batch) stays on the vector backend
    objective.residuals_batch(np.full((20, len(space)), 0.5))
    assert calls == {"scalar": 1, "vector": 1}


def test_app_wedges_run_their_coalitions_in_one_vector_pass(calls):
    from greenpath.app import runner

    vector_model()  # the compiled model is shared with the ensembles
    table = runner.compute_wedges(_key("plan_2021"), "plan_2021")
    assert table is not None
    assert not table.empty
    # plan_2021 changes 5 lever groups: 32 coalitions in one pass per year-table structure
    assert calls["scalar"] == 0
    assert 1 <= calls["vector"] < 32
