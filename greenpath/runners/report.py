"""The runs behind a meeting pack and a comparison table: scenarios, target checks, wedges, costs.

:func:`run_report` runs everything :func:`greenpath.outputs.deck.write_report` draws (an
output never runs the model): each scenario with its target check and the chance of
meeting each target, the baseline (for the wedges' total line), the wedge tables of the
scenarios other than the baseline and their cost reports.  The face that makes a pack
(``greenpath report``: :func:`greenpath.cli.commands.report.build_report`) first asks
the deck which files it will write (:func:`greenpath.outputs.deck.prepare_report`, which
refuses a bad request before anything runs), then runs this, then hands the result to
the deck.  :func:`run_for_table` runs the scenarios of a comparison table
(``greenpath table``, :mod:`greenpath.outputs.comparison`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from greenpath.i18n import LANGS, t
from greenpath.scenarios import scenario as scenarios
from greenpath.scenarios import targets as tg

#: The baseline scenario: the reference of the wedges, the costs and the lever table.
BASELINE = "baseline"
#: Monte Carlo samples of the cost ranges behind the deck's P10-P90.
COST_SAMPLES = 100


class ReportRunError(ValueError):
    """Runs that cannot be made as asked (e.g. a scenario given twice)."""


@dataclass
class ScenarioRun:
    """A scenario, its run and its target check."""

    scenario: Any  # greenpath.scenarios.scenario.Scenario
    result: Any  # greenpath.engines.base.RunResult
    targets: pd.DataFrame | None = None


@dataclass
class ReportRuns:
    """What a meeting pack draws, computed by :func:`run_report`."""

    runs: list[ScenarioRun]
    base_scenario: Any
    base_result: Any
    #: chart key -> scenario name -> wedge table (empty without wedges).
    wedge_tables: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    cost_reports: list = field(default_factory=list)  # greenpath.runners.costs.CostReport
    #: language -> what could not be computed (said on the title slide).
    notes: dict[str, list[str]] = field(default_factory=lambda: {lang: [] for lang in LANGS})
    #: seconds per step (``run``, ``wedges``, ``costs``).
    timings: dict[str, float] = field(default_factory=dict)


def run_scenarios(loaded: Sequence[scenarios.Scenario], model: Any = None,
                  targets_file: Any = None, sets: Sequence[str] | None = None,
                  ) -> tuple[list[ScenarioRun], scenarios.Scenario, Any]:
    """Run loaded scenarios; return (runs, baseline, baseline result).

    Each run is checked against the targets (``sets``: only targets without a set plus
    these) with the chance of meeting each target.  The baseline is run too (for the
    wedges' total line) when it is not among them.  ``model``: a loaded
    :class:`~greenpath.engines.pysd_engine.JiaozuoModel` to reuse.
    """
    from greenpath.engines.pysd_engine import JiaozuoModel
    from greenpath.runners import chance

    model = model or JiaozuoModel()
    runs = []
    for scenario in loaded:
        result = model.run(**scenario.run_kwargs())
        checked = tg.evaluate(result, targets_file, sets=list(sets) if sets else None)
        # the share of uncertainty draws meeting each target
        checked = chance.chance_column(scenario, checked, targets_file, sets)
        runs.append(ScenarioRun(scenario, result, checked))
    baseline = next((r for r in runs if r.scenario.name == BASELINE), None)
    if baseline is not None:
        return runs, baseline.scenario, baseline.result
    base_scenario = scenarios.load(BASELINE)
    return runs, base_scenario, model.run(**base_scenario.run_kwargs())


def cost_reports(scenario_list: Sequence[scenarios.Scenario], baseline: scenarios.Scenario,
                 notes: dict[str, list[str]]) -> list:
    """Cost reports (:func:`greenpath.runners.costs.analyse`) of every scenario that is not the baseline.

    A failure is written into ``notes`` (the title slide says what was left out) and the
    pack goes on without that scenario's cost slides.
    """
    from greenpath.runners import costs

    out = []
    for s in scenario_list:
        if s.name == baseline.name:
            continue
        try:
            out.append(costs.analyse(s, baseline=baseline, samples=COST_SAMPLES))
        except Exception as exc:  # noqa: BLE001 - reported on the title slide
            for code in LANGS:
                notes[code].append(f"{t('costs_panel_title', code)}: {s.name}: "
                                   f"{type(exc).__name__}: {exc}")
    return out


def run_report(loaded: Sequence[scenarios.Scenario], *, model: Any = None,
               targets_file: Any = None, sets: Sequence[str] | None = None,
               wedges: Callable[..., pd.DataFrame] | None = None,
               wedge_variables: Mapping[str, str] | None = None) -> ReportRuns:
    """Run everything a meeting pack of ``loaded`` draws.

    Parameters
    ----------
    loaded
        The scenarios (loaded and checked, e.g. by
        :func:`greenpath.outputs.deck.prepare_report`).
    model
        A loaded :class:`~greenpath.engines.pysd_engine.JiaozuoModel` to reuse.
    targets_file
        Targets TOML (or loaded targets) to check; default the shipped file.
    sets
        Only targets without a set plus these sets.
    wedges
        The wedge attribution (:func:`greenpath.runners.wedges.compute`, called as
        ``wedges(scenario, variable=..., baseline=...)``), or None: no wedge tables.
    wedge_variables
        Chart key -> the model variable whose reduction it splits (the deck's
        ``WEDGE_CHARTS``); needed with ``wedges``.
    """
    clock = time.perf_counter()
    runs, base_scenario, base_result = run_scenarios(loaded, model, targets_file, sets)
    out = ReportRuns(runs, base_scenario, base_result)
    out.timings["run"] = time.perf_counter() - clock
    if wedges is not None:
        clock = time.perf_counter()
        out.wedge_tables = {
            key: {r.scenario.name: wedges(r.scenario, variable=variable, baseline=base_scenario)
                  for r in runs if r.scenario.name != BASELINE}
            for key, variable in (wedge_variables or {}).items()}
        out.timings["wedges"] = time.perf_counter() - clock
    clock = time.perf_counter()
    out.cost_reports = cost_reports([r.scenario for r in runs], base_scenario, out.notes)
    out.timings["costs"] = time.perf_counter() - clock
    return out


def run_for_table(names: Sequence[str], columns: Sequence[str] | None = None,
                  ) -> tuple[dict[str, scenarios.Scenario], dict[str, pd.DataFrame], dict[str, str]]:
    """Load and run each scenario once (one model, PySD engine), for a comparison table.

    Returns
    -------
    tuple
        ``(scenarios, frames, units)``: name -> :class:`~greenpath.scenarios.scenario.Scenario`,
        name -> years x variables frame, variable -> unit.

    Raises
    ------
    ReportRunError
        A scenario given twice (by name or by two files of the same name).
    """
    from greenpath.engines.pysd_engine import JiaozuoModel

    model = JiaozuoModel()
    loaded: dict[str, scenarios.Scenario] = {}
    frames: dict[str, pd.DataFrame] = {}
    units: dict[str, str] = {}
    for name in names:
        scenario = scenarios.load(name)
        if scenario.name in loaded:
            raise ReportRunError(f"scenario {scenario.name!r} is given twice")
        result = model.run(**scenario.run_kwargs(),
                           return_columns=list(columns) if columns else None)
        loaded[scenario.name] = scenario
        frames[scenario.name] = result.frame
        units.update(result.units)
    return loaded, frames, units
