"""Downloads of the app: the data (CSV, XLSX) and the slide deck (PPTX) of what is shown.

The workbook and the deck are the ones ``greenpath report`` writes
(:func:`greenpath.outputs.deck.build_workbook`, :func:`greenpath.outputs.deck.build_deck`), built
in memory for the scenarios on screen: the current one, the baseline and the saved
ones chosen for comparison.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from greenpath.engines.base import RunResult
from greenpath.outputs import charts
from greenpath.runners.report import ScenarioRun
from greenpath.scenarios import scenario as sc


@dataclass
class Shown:
    """One scenario on screen: its settings, result and target check.

    ``name`` is how tables, legends and footers call it; the baseline must be called
    ``"baseline"`` (:data:`greenpath.outputs.charts.BASELINE`) so it keeps its colour.
    """

    name: str
    label: str
    scenario: sc.Scenario
    result: RunResult
    targets: pd.DataFrame | None = None


def _report():
    from greenpath.outputs import deck as report

    return report


def _runs(shown: Sequence[Shown]) -> list:
    out = []
    for s in shown:
        scenario = sc.Scenario(**{**s.scenario.__dict__, "name": s.name})
        s.result.metadata["title_en"] = s.result.metadata["title_zh"] = s.label
        out.append(ScenarioRun(scenario, s.result, s.targets))
    return out


def _baseline(runs: Sequence) -> sc.Scenario:
    return next(r.scenario for r in runs if r.scenario.name == charts.BASELINE)


def spreadsheet_text(text: str) -> str:
    """Return user text safe for a spreadsheet cell: never read as a formula.

    Excel and LibreOffice run a CSV cell starting with ``= + - @`` (or a tab or carriage
    return) as a formula (``=HYPERLINK(...)`` in a saved scenario's name); a leading
    apostrophe makes it text, as OWASP's CSV-injection advice says.
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def results_csv(shown: Sequence[Shown]) -> bytes:
    """Every output of every shown scenario: scenario, variable, year, value, unit.

    UTF-8 with a byte-order mark, so spreadsheet programs read the Chinese names.
    """
    parts = []
    for s in shown:
        long = s.result.frame.reset_index().melt(id_vars="year", var_name="variable")
        long.insert(0, "scenario", spreadsheet_text(s.label))
        long["unit"] = long["variable"].map(s.result.units)
        parts.append(long)
    buf = io.StringIO()
    pd.concat(parts, ignore_index=True).to_csv(buf, index=False, float_format="%.6g")
    return buf.getvalue().encode("utf-8-sig")


def _wedge_sets(wedges: Mapping[str, pd.DataFrame] | None,
                wedges_imports: Mapping[str, pd.DataFrame] | None,
                ) -> dict[str, Mapping[str, pd.DataFrame]]:
    """Return wedge chart key (:data:`greenpath.outputs.charts.WEDGE_CHARTS`) -> the tables given."""
    given = {"wedges": wedges, "wedges_including_imports": wedges_imports}
    return {key: tables for key, tables in given.items() if tables}


def workbook(shown: Sequence[Shown], wedges: Mapping[str, pd.DataFrame] | None = None,
             wedges_imports: Mapping[str, pd.DataFrame] | None = None) -> bytes:
    """Return the report workbook: one sheet per chart, levers, targets, about.

    ``wedges`` and ``wedges_imports``: scenario -> wedge table of territorial CO2 and of
    CO2 including imported electricity (a sheet each when given).
    """
    report = _report()
    runs = _runs(shown)
    results = {r.scenario.name: r.result for r in runs}
    data = {key: data_fn(results) for key, (_, data_fn) in charts.CHARTS.items()}
    for key, tables in _wedge_sets(wedges, wedges_imports).items():
        data[key] = charts.wedges_data(dict(tables))
    levers = report.lever_table([r.scenario for r in runs], _baseline(runs), "en")
    return report.build_workbook(data, runs, levers, [])


def deck(shown: Sequence[Shown], lang: str, wedges: Mapping[str, pd.DataFrame] | None = None,
         sets: Sequence[str] | None = None, presentation: bool = True,
         wedges_imports: Mapping[str, pd.DataFrame] | None = None) -> bytes:
    """Return the report deck (16:9): title, one chart per slide, levers, targets.

    ``wedges``, ``wedges_imports``: as in :func:`workbook` (a wedge slide each when given).
    """
    report = _report()
    runs = _runs(shown)
    results = {r.scenario.name: r.result for r in runs}
    labels = {s.name: s.label for s in shown}
    images = []
    for key, (draw, _) in charts.CHARTS.items():
        extra = {"sets": list(sets)} if key == "renewable_capacity" and sets is not None else {}
        fig = draw(results, lang, presentation=presentation, labels=labels, **extra)
        images.append((key, _png(fig)))
    for key, tables in _wedge_sets(wedges, wedges_imports).items():
        fig = charts.wedges(dict(tables), {n: results[n] for n in tables}, lang,
                            presentation=presentation, labels=labels,
                            baseline=results[charts.BASELINE],
                            variable=charts.WEDGE_CHARTS[key])
        images.append((key, _png(fig)))
    levers = report.lever_table([r.scenario for r in runs], _baseline(runs), lang)
    return report.build_deck(images, runs, levers, report.targets_table(runs, lang), [], lang)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white", metadata={"Software": None})
    return buf.getvalue()
