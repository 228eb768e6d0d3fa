"""Compare two versions of the model over a scenario set, and keep reference results.

:func:`compare` runs two :class:`~greenpath.runners.versions.ModelVersion` objects (two git
revisions, two folders, or the installed model) over the shipped scenarios plus a
seeded Latin-hypercube sample of the levers and uncertainties both versions know, and
gives, for every common output, scenario and year, both values and their relative
difference, classed against thresholds (default 1%, 5%, 10%).  It summarises the
differences per scenario and per variable, biggest first, and *traces* each scenario
to where the versions first diverge: the parameters whose values differ, the
equations whose text differs, and the first variable in dependency order (constants,
stocks, then auxiliaries in evaluation order), in the first year, whose values
differ -- the cause rather than the symptom.  The year of a trace is the saved time:
an auxiliary saved at year y is evaluated with the model's ``data year`` y + 1.

Relative difference
    ``|b - a| / max(|a|, floor)``, where ``floor`` is 1e-3 times the largest ``|a|`` of
    that variable over all scenarios and years (so a variable passing through zero,
    such as net electricity imports, is measured against its own scale, not against
    a value near zero).

Reference results
    ``model/reference/<scenario>.csv`` hold the yearly values of
    :data:`REFERENCE_COLUMNS` for every shipped scenario, written by
    ``greenpath compare --update-reference``; ``greenpath compare --against reference``
    compares the current model with them without a second checkout, and the test suite
    fails when they differ by more than :data:`REFERENCE_TOLERANCE`.

Public API
----------
``compare(a, b, scenarios=None, sample=10, seed=DEFAULT_SEED, thresholds=(0.01, 0.05, 0.10), columns=None)
-> Comparison``
``compare_reference(b=None, folder=REFERENCE_DIR, thresholds=...) -> Comparison``
``write_reference(version=None, folder=REFERENCE_DIR) -> list[Path]``
``load_reference(folder=REFERENCE_DIR) -> dict[str, pandas.DataFrame]``
``Comparison.summary()``, ``.by_scenario()``, ``.by_variable()``, ``.text()``, ``.html()``, ``.write(folder)``
"""

from __future__ import annotations

import csv
import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath.model import indicators
from greenpath.model.mdl import MDL_PATH, parse_mdl
from greenpath.runners.versions import ModelVersion, Runs, Settings, dependency_order

__all__ = [
    "DEFAULT_THRESHOLDS",
    "REFERENCE_COLUMNS",
    "REFERENCE_DIR",
    "REFERENCE_TOLERANCE",
    "Comparison",
    "CompareError",
    "compare",
    "compare_reference",
    "load_reference",
    "write_reference",
]

REFERENCE_DIR = MDL_PATH.parent / "reference"
DEFAULT_THRESHOLDS = (0.01, 0.05, 0.10)
DEFAULT_SEED = 20211202
#: Relative difference (see the module docstring) above which the reference test fails.
REFERENCE_TOLERANCE = 1e-6
#: Differences below this relative size count as none in the trace (rounding between engines).
TRACE_TOLERANCE = 1e-9
#: Outputs kept in the reference results: the headline indicators and the parts of CO2,
#: coal, energy and electricity they are built from.
REFERENCE_COLUMNS = [*indicators.HEADLINE, *[
    "co2_coal", "co2_oil", "co2_gas", "co2_process", "ccus_capture", "co2_power", "co2_heat",
    "co2_industry_energy", "co2_buildings", "co2_transport", "co2_agriculture", "co2_construction",
    "co2_imported_electricity", "end_use_coal", "power_sector_coal", "heat_sector_coal", "total_oil",
    "total_gas", "non_fossil_primary_energy", "industrial_final_energy", "transport_energy",
    "residential_energy", "services_energy", "coal_generation", "renewable_generation",
    "primary_va", "tertiary_va", "population", "cumulative_co2",
    # costs and air pollutants (model/jiaozuo.mdl, last section; greenpath.runners.costs)
    "total_energy_system_cost", "energy_purchase_cost", "capital_spending",
    "undepreciated_capital", "so2_emissions", "nox_emissions", "pm25_emissions",
    "premature_deaths_from_air_pollutants",
]]
CLASS_LABELS = ("same", "below t1", "t1-t2", "t2-t3", "above t3")
COLOURS = ("#ffffff", "#e3f4e3", "#fff2b3", "#ffc985", "#f59a9a")


class CompareError(ValueError):
    """A comparison that cannot be made as asked."""


@dataclass
class Side:
    """One side of a comparison: values per scenario and variable."""

    label: str
    values: dict[str, np.ndarray]  # variable -> (n_scenarios, n_years)
    years: np.ndarray


@dataclass
class Trace:
    """Where two versions first diverge for one scenario."""

    scenario: str
    year: int | None = None
    variable: str | None = None
    a: float = math.nan
    b: float = math.nan
    equation_changed: bool = False
    inputs_changed: list[str] = field(default_factory=list)


@dataclass
class Comparison:
    """Both versions' values and their differences (see the module docstring)."""

    a: Side
    b: Side
    scenarios: list[str]
    thresholds: tuple[float, float, float]
    seconds: float = 0.0
    parameter_changes: list[tuple[str, float | None, float | None]] = field(default_factory=list)
    equation_changes: list[str] = field(default_factory=list)
    only_in_a: list[str] = field(default_factory=list)
    only_in_b: list[str] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    # -- numbers ------------------------------------------------------------------------

    @property
    def variables(self) -> list[str]:
        """The outputs both sides have."""
        return [v for v in self.a.values if v in self.b.values]

    def relative(self, variable: str) -> np.ndarray:
        """Relative difference of ``variable``, (n_scenarios, n_years)."""
        a, b = self.a.values[variable], self.b.values[variable]
        finite = np.abs(a[np.isfinite(a)])
        floor = 1e-3 * float(finite.max()) if finite.size else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(b - a) / np.maximum(np.abs(a), floor)
        rel = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, rel)
        return np.where(np.isnan(rel), np.inf, rel)

    def classes(self, rel: np.ndarray) -> np.ndarray:
        """0 same, 1 below t1, 2 t1-t2, 3 t2-t3, 4 above t3."""
        t1, t2, t3 = self.thresholds
        out = np.where(rel > 0, 1, 0)
        out = np.where(rel >= t1, 2, out)
        out = np.where(rel >= t2, 3, out)
        return np.where(rel >= t3, 4, out)

    def long(self) -> pd.DataFrame:
        """Every scenario, variable and year: a, b, difference, relative difference, class."""
        frames = []
        ny = len(self.a.years)
        for var in self.variables:
            a, b = self.a.values[var], self.b.values[var]
            rel = self.relative(var)
            frames.append(pd.DataFrame({
                "scenario": np.repeat(self.scenarios, ny), "variable": var,
                "year": np.tile(self.a.years, len(self.scenarios)), "a": a.ravel(), "b": b.ravel(),
                "difference": (b - a).ravel(), "relative_difference": rel.ravel(),
                "class": [CLASS_LABELS[c] for c in self.classes(rel).ravel()],
            }))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def by_scenario(self, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Per scenario: the largest relative difference, where, and cells per class; biggest first.

        ``variables`` limits the summary to those outputs (e.g. the headline ones).
        """
        rows = []
        chosen = self.variables if variables is None else [v for v in self.variables if v in variables]
        for i, name in enumerate(self.scenarios):
            best = (0.0, "", 0)
            counts = np.zeros(5, dtype=int)
            for var in chosen:
                rel = self.relative(var)[i]
                counts += np.bincount(self.classes(rel), minlength=5)
                j = int(np.argmax(rel))
                if rel[j] > best[0]:
                    best = (float(rel[j]), var, int(self.a.years[j]))
            rows.append({"scenario": name, "max_relative_difference": best[0], "variable": best[1],
                         "year": str(best[2]) if best[1] else "",
                         **{CLASS_LABELS[k]: int(counts[k]) for k in range(5)}})
        frame = pd.DataFrame(rows)
        return frame.sort_values("max_relative_difference", ascending=False, kind="stable").reset_index(drop=True)

    def by_variable(self) -> pd.DataFrame:
        """Per variable: the largest relative difference over scenarios and years, where; biggest first."""
        rows = []
        for var in self.variables:
            rel = self.relative(var)
            i, j = np.unravel_index(int(np.argmax(rel)), rel.shape)
            rows.append({"variable": var, "max_relative_difference": float(rel[i, j]),
                         "scenario": self.scenarios[i], "year": int(self.a.years[j]),
                         "a": float(self.a.values[var][i, j]), "b": float(self.b.values[var][i, j]),
                         "cells_above_t1": int((rel >= self.thresholds[0]).sum())})
        frame = pd.DataFrame(rows)
        return frame.sort_values("max_relative_difference", ascending=False, kind="stable").reset_index(drop=True)

    def exceeding(self, limit: float, variables: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of :meth:`by_variable` whose largest difference is above ``limit``."""
        table = self.by_variable()
        if variables is not None:
            table = table[table["variable"].isin(list(variables))]
        return table[table["max_relative_difference"] > limit]

    # -- reports ------------------------------------------------------------------------

    def _pct(self, x: float) -> str:
        return "inf" if not math.isfinite(x) else f"{100 * x:.3g}%"

    def text(self, top: int = 10) -> str:
        """Return a summary for the terminal: thresholds, biggest differences per scenario and variable, traces."""
        t = ", ".join(self._pct(x) for x in self.thresholds)
        lines = [f"greenpath compare: A = {self.a.label}, B = {self.b.label}; {len(self.scenarios)} scenarios, "
                 f"{len(self.variables)} outputs, {len(self.a.years)} years; thresholds {t}; {self.seconds:.1f} s"]
        if self.dropped:
            lines.append(f"settings not known to one version (left at its default): {', '.join(self.dropped)}")
        if self.only_in_a or self.only_in_b:
            lines.append(f"outputs only in A: {', '.join(self.only_in_a) or '-'}; only in B: "
                         f"{', '.join(self.only_in_b) or '-'}")
        if self.parameter_changes:
            lines.append("parameters that differ (A -> B): " + "; ".join(
                f"{n} {_num(x, 10)} -> {_num(y, 10)}" for n, x, y in self.parameter_changes[:top]) +
                (f"; ... {len(self.parameter_changes) - top} more" if len(self.parameter_changes) > top else ""))
        if self.equation_changes:
            lines.append(f"equations that differ ({len(self.equation_changes)}): "
                         + ", ".join(self.equation_changes[:top])
                         + (" ..." if len(self.equation_changes) > top else ""))
        lines.append("per scenario, biggest first (largest relative difference over all outputs, where; "
                     "over the headline outputs, where):")
        head = self.by_scenario(indicators.HEADLINE).set_index("scenario")
        for _, r in self.by_scenario().head(top).iterrows():
            where = f"{r['variable']} {r['year']}" if r["variable"] else "-"
            h = head.loc[r["scenario"]]
            hwhere = f"{h['variable']} {h['year']}" if h["variable"] else "-"
            lines.append(f"  {r['scenario']:<20} {self._pct(r['max_relative_difference']):>9}  {where:<42} "
                         f"headline {self._pct(h['max_relative_difference']):>9}  {hwhere}")
        lines.append("per variable, biggest first:")
        for _, r in self.by_variable().head(top).iterrows():
            lines.append(f"  {r['variable']:<34} {self._pct(r['max_relative_difference']):>9}  {r['scenario']} "
                         f"{r['year']}: {_num(r['a'])} -> {_num(r['b'])}")
        for tr in self.traces[:top]:
            if tr.variable is None:
                continue
            changed = "its equation changed" if tr.equation_changed else (
                "inputs that moved first: " + ", ".join(tr.inputs_changed) if tr.inputs_changed else
                "a parameter it reads changed")
            rel = abs(tr.b - tr.a) / max(abs(tr.a), abs(tr.b)) if tr.a != tr.b else 0.0
            lines.append(f"trace {tr.scenario}: first divergence {tr.variable} at {tr.year} "
                         f"({tr.a:.10g} -> {tr.b:.10g}, {self._pct(rel)}); {changed}")
        return "\n".join(lines)

    def html(self, top: int = 12) -> str:
        """Return a self-contained HTML report: summaries, traces, colour-coded tables and small charts."""
        esc = html.escape
        t1, t2, t3 = self.thresholds
        legend = "".join(
            f"<span class='cell' style='background:{COLOURS[k]}'>{esc(label)}</span> "
            for k, label in enumerate(("no difference", f"< {self._pct(t1)}", f"{self._pct(t1)} - {self._pct(t2)}",
                                       f"{self._pct(t2)} - {self._pct(t3)}", f">= {self._pct(t3)}"))
        )
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>greenpath compare</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:.6em 0}"
            "td,th{border:1px solid #ccc;padding:2px 5px;font-size:12px}.cell{padding:2px 6px;border:1px solid #ccc}"
            "td.h{padding:0;width:14px;height:14px}.charts{display:flex;flex-wrap:wrap;gap:12px}"
            ".chart{border:1px solid #ddd;padding:4px;font-size:11px}</style></head><body>",
            f"<h1>Model comparison</h1><p>A = <b>{esc(self.a.label)}</b>, B = <b>{esc(self.b.label)}</b>; "
            f"{len(self.scenarios)} scenarios, {len(self.variables)} outputs, years {self.a.years[0]}-"
            f"{self.a.years[-1]}. Relative difference = |B - A| / max(|A|, 0.001 x the variable's largest |A|).</p>"
            f"<p>{legend}</p>",
        ]
        if self.parameter_changes or self.equation_changes or self.only_in_a or self.only_in_b:
            parts.append("<h2>What changed</h2>")
            if self.parameter_changes:
                parts.append("<table><tr><th>parameter (default in force)</th><th>A</th><th>B</th></tr>" + "".join(
                    f"<tr><td>{esc(n)}</td><td>{_num(x, 10)}</td><td>{_num(y, 10)}</td></tr>"
                    for n, x, y in self.parameter_changes) + "</table>")
            if self.equation_changes:
                parts.append(f"<p>Equations that differ: {esc(', '.join(self.equation_changes))}</p>")
            if self.only_in_a or self.only_in_b:
                parts.append(f"<p>Outputs only in A: {esc(', '.join(self.only_in_a) or '-')}; only in B: "
                             f"{esc(', '.join(self.only_in_b) or '-')}</p>")
        traces = [tr for tr in self.traces if tr.variable is not None]
        if traces:
            parts.append("<h2>Trace: where the versions first diverge</h2><p>Year = the saved time; an auxiliary "
                         "saved at year y is evaluated with the model's data year y + 1 (the flows of the step that "
                         "ends in y + 1).</p><table><tr><th>scenario</th><th>year</th>"
                         "<th>first variable (dependency order)</th><th>A</th><th>B</th><th>cause</th></tr>")
            for tr in traces:
                cause = "equation changed" if tr.equation_changed else (
                    "inputs: " + ", ".join(tr.inputs_changed) if tr.inputs_changed else "a parameter it reads")
                parts.append(f"<tr><td>{esc(tr.scenario)}</td><td>{tr.year}</td><td>{esc(str(tr.variable))}</td>"
                             f"<td>{_num(tr.a, 10)}</td><td>{_num(tr.b, 10)}</td><td>{esc(cause)}</td></tr>")
            parts.append("</table>")
        parts.append("<h2>Per scenario, biggest first</h2><p>All outputs:</p>" + _table(self.by_scenario(), self._pct))
        parts.append("<p>Headline outputs only:</p>" + _table(self.by_scenario(indicators.HEADLINE), self._pct))
        parts.append("<h2>Per variable, biggest first</h2>" + _table(self.by_variable().head(60), self._pct))
        by_var = self.by_variable()
        picks = [v for v in by_var["variable"] if v in indicators.HEADLINE][:top]
        picks += [v for v in by_var["variable"] if v not in picks][: max(0, top - len(picks))]
        parts.append("<h2>Headline outputs by scenario and year</h2><p>Each cell one year (hover for values).</p>")
        for var in [v for v in indicators.HEADLINE if v in self.variables]:
            parts.append(self._heat(var))
        parts.append("<h2>Charts of the largest differences</h2><div class='charts'>")
        for var in picks:
            rel = self.relative(var)
            i = int(np.unravel_index(int(np.argmax(rel)), rel.shape)[0])
            parts.append(_chart(var, self.scenarios[i], self.a.years, self.a.values[var][i], self.b.values[var][i],
                                self.a.label, self.b.label))
        parts.append("</div></body></html>")
        return "".join(parts)

    def _heat(self, var: str) -> str:
        rel = self.relative(var)
        cls = self.classes(rel)
        head = "".join(f"<th style='font-size:9px'>{str(y)[2:]}</th>" for y in self.a.years)
        rows = []
        for i, name in enumerate(self.scenarios):
            cells = "".join(
                f"<td class='h' style='background:{COLOURS[c]}' title='{html.escape(name)} {y}: "
                f"{_num(self.a.values[var][i, j])} -> {_num(self.b.values[var][i, j])} ({self._pct(rel[i, j])})'></td>"
                for j, (y, c) in enumerate(zip(self.a.years, cls[i], strict=True)))
            rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
        return f"<h3>{html.escape(var)}</h3><table><tr><th></th>{head}</tr>{''.join(rows)}</table>"

    def write(self, folder: str | Path, overwrite: bool = False) -> list[Path]:
        """Write ``compare.html``, ``compare.csv`` and ``summary.txt`` to ``folder``."""
        folder = Path(folder)
        paths = [folder / "compare.html", folder / "compare.csv", folder / "summary.txt"]
        existing = [p.name for p in paths if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{folder}: {', '.join(existing)} exist; use --force to replace them")
        folder.mkdir(parents=True, exist_ok=True)
        paths[0].write_text(self.html(), encoding="utf-8")
        self.long().to_csv(paths[1], index=False, float_format="%.10g")
        paths[2].write_text(self.text(top=30) + "\n", encoding="utf-8")
        return paths


def _num(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def _table(frame: pd.DataFrame, pct) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = r[c]
            if c == "max_relative_difference":
                cells.append(f"<td>{pct(v)}</td>")
            elif isinstance(v, float):
                cells.append(f"<td>{_num(v)}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _chart(var: str, scenario: str, years: np.ndarray, a: np.ndarray, b: np.ndarray, la: str, lb: str) -> str:
    """Draw a small inline SVG line chart of both versions."""
    w, h, pad = 300, 140, 28
    values = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if hi == lo:
        hi = lo + 1.0

    def path(v: np.ndarray) -> str:
        pts = []
        for y, x in zip(years, v, strict=True):
            if not np.isfinite(x):
                continue
            px = pad + (y - years[0]) / max(1, years[-1] - years[0]) * (w - pad - 6)
            py = h - pad + 10 - (x - lo) / (hi - lo) * (h - pad - 4)
            pts.append(f"{px:.1f},{py:.1f}")
        return " ".join(pts)

    return (
        f"<div class='chart'><b>{html.escape(var)}</b> ({html.escape(scenario)})<br>"
        f"<svg width='{w}' height='{h}' viewBox='0 0 {w} {h}'>"
        f"<polyline fill='none' stroke='#888' stroke-width='2' points='{path(a)}'/>"
        f"<polyline fill='none' stroke='#c0392b' stroke-width='1.5' stroke-dasharray='4 2' points='{path(b)}'/>"
        f"<text x='2' y='12' font-size='10'>{_num(hi)}</text><text x='2' y='{h - pad + 10}' font-size='10'>"
        f"{_num(lo)}</text><text x='{pad}' y='{h - 4}' font-size='10'>{years[0]}</text>"
        f"<text x='{w - 30}' y='{h - 4}' font-size='10'>{years[-1]}</text></svg><br>"
        f"<span style='color:#888'>&#9644; A {html.escape(la)}</span> "
        f"<span style='color:#c0392b'>&#9476; B {html.escape(lb)}</span></div>"
    )


# ---------------------------------------------------------------------------
# Scenario sets
# ---------------------------------------------------------------------------


def scenario_set(a: ModelVersion, b: ModelVersion, scenarios: Sequence[str] | None, sample: int,
                 seed: int) -> tuple[list[str], Settings]:
    """Labels and settings: the shipped scenarios (or ``scenarios``) plus a seeded sample.

    The sample covers the levers and uncertainties both versions have, across the
    overlap of their registry ranges.
    """
    from greenpath.runners.ensemble import latin_hypercube
    from greenpath.scenarios import scenario as sc

    names = list(scenarios) if scenarios is not None else sc.available()
    labels = list(names)
    mappings = [dict(sc.load(n).settings()) for n in names]
    block = Settings.from_mappings(mappings) if mappings else Settings([], np.empty((0, 0)))
    if sample > 0:
        common = [n for n in b.levers() + b.uncertainties() if n in a.registry]
        lo = np.array([max(a.registry[n].min, b.registry[n].min) for n in common])
        hi = np.array([min(a.registry[n].max, b.registry[n].max) for n in common])
        hi = np.maximum(hi, lo)
        unit = latin_hypercube(sample, len(common), np.random.default_rng(seed))
        values = np.clip(lo + unit * (hi - lo), lo, hi)
        sampled = Settings(common, values)
        from greenpath.runners.checks import _concat

        block = _concat(block, sampled) if block.n else sampled
        labels += [f"sample #{i}" for i in range(sample)]
    if not labels:
        raise CompareError("no scenarios to compare (give scenario names or --sample N > 0)")
    return labels, block


def _side(version: ModelVersion, block: Settings, columns: Sequence[str]) -> tuple[Side, Runs]:
    runs = version.run(block, columns, strict=False)
    return Side(version.label, runs.values, runs.years), runs


def compare(a: ModelVersion, b: ModelVersion, scenarios: Sequence[str] | None = None, sample: int = 10,
            seed: int = DEFAULT_SEED, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
            columns: Sequence[str] | None = None, trace: bool = True) -> Comparison:
    """Compare two model versions over the shipped scenarios and a seeded sample.

    Parameters
    ----------
    a, b
        The versions (A the old one, B the new one).
    scenarios
        Shipped scenario names (default: all of them).
    sample, seed
        Size and seed of the sampled settings added to the scenarios.
    thresholds
        Three increasing relative differences (default 1%, 5%, 10%).
    columns
        Outputs to compare (default: every output both versions have).
    trace
        Find where the versions first diverge, per scenario.

    Returns
    -------
    Comparison
    """
    start = time.perf_counter()
    th = _thresholds(thresholds)
    labels, block = scenario_set(a, b, scenarios, sample, seed)
    out_a, out_b = a.outputs(constants=False), b.outputs(constants=False)
    common = sorted(out_a & out_b) if columns is None else [c for c in columns if c in out_a and c in out_b]
    if not common:
        raise CompareError("the two versions have no output in common to compare")
    side_a, runs_a = _side(a, block, common)
    side_b, runs_b = _side(b, block, common)
    if not np.array_equal(side_a.years, side_b.years):
        raise CompareError(f"the versions save different years ({side_a.years[0]}-{side_a.years[-1]} vs "
                           f"{side_b.years[0]}-{side_b.years[-1]})")
    result = Comparison(side_a, side_b, labels, th, dropped=sorted(set(runs_a.dropped) | set(runs_b.dropped)))
    result.only_in_a = sorted(out_a - out_b) if columns is None else []
    result.only_in_b = sorted(out_b - out_a) if columns is None else []
    defaults_a, defaults_b = a.defaults, b.defaults
    result.parameter_changes = [
        (n, defaults_a.get(n), defaults_b.get(n)) for n in sorted(set(defaults_a) | set(defaults_b))
        if defaults_a.get(n) != defaults_b.get(n)
    ]
    eq_a = {v.name: v.equation for v in parse_mdl(a.mdl_path)}
    parsed_b = parse_mdl(b.mdl_path)
    eq_b = {v.name: v.equation for v in parsed_b}
    # a constant's "equation" is its value: listed with the parameters, not here
    result.equation_changes = [v.name for v in parsed_b
                               if v.kind != "constant" and v.name in eq_a and eq_a[v.name] != eq_b[v.name]]
    if trace:
        result.traces = _traces(result, a, b, block, eq_a, eq_b)
    result.seconds = time.perf_counter() - start
    return result


def _thresholds(values: Sequence[float]) -> tuple[float, float, float]:
    th = tuple(float(x) for x in values)
    if len(th) != 3 or not (0 < th[0] < th[1] < th[2]):
        raise CompareError(f"thresholds {list(values)}: allowed three increasing positive numbers")
    return th  # type: ignore[return-value]


def _traces(result: Comparison, a: ModelVersion, b: ModelVersion, block: Settings,
            eq_a: dict[str, str], eq_b: dict[str, str]) -> list[Trace]:
    """First divergence per scenario: year first, then dependency order of B's model.

    Constants are left out of the search (their changes are listed as parameter
    changes); the inputs of the diverging variable that moved, constants included, say why.
    """
    both = a.outputs() & b.outputs()
    order = [v for v in dependency_order(b.mdl_path) if v in both]
    ra = a.run(block, order, strict=False)
    rb = b.run(block, order, strict=False)
    deps = _direct_inputs(b)
    kinds = {v.name: v.kind for v in parse_mdl(b.mdl_path)}
    computed = [v for v in order if kinds.get(v) != "constant"]  # changed constants: parameter_changes
    traces = []
    for i, name in enumerate(result.scenarios):
        tr = Trace(name)
        for j, year in enumerate(ra.years):
            hit = None
            for var in computed:
                x, y = ra.values[var][i, j], rb.values[var][i, j]
                if x != y and not (abs(y - x) <= TRACE_TOLERANCE * max(abs(x), abs(y))):
                    hit = var
                    break
            if hit is not None:
                tr.year, tr.variable = int(year), hit
                tr.a, tr.b = float(ra.values[hit][i, j]), float(rb.values[hit][i, j])
                tr.equation_changed = eq_a.get(hit) != eq_b.get(hit)
                tr.inputs_changed = [
                    d for d in deps.get(hit, ()) if d in ra.values and not np.allclose(
                        ra.values[d][i, : j + 1], rb.values[d][i, : j + 1], rtol=TRACE_TOLERANCE, atol=0)
                ]
                break
        traces.append(tr)
    scores = {r["scenario"]: r["max_relative_difference"] for _, r in result.by_scenario().iterrows()}
    return sorted(traces, key=lambda t: -scores.get(t.scenario, 0.0))


def _direct_inputs(version: ModelVersion) -> dict[str, list[str]]:
    """Variables each equation of ``version`` names (by Python name)."""
    import re

    variables = parse_mdl(version.mdl_path)
    by_vensim = {" ".join(v.vensim_name.lower().split()): v.name for v in variables}
    alternation = "|".join(r"\s+".join(re.escape(w) for w in n.split())
                           for n in sorted(by_vensim, key=len, reverse=True))
    pattern = re.compile(r"(?<![\w])(" + alternation + r")(?![\w])", re.IGNORECASE)
    return {v.name: sorted({by_vensim[" ".join(m.group(1).lower().split())] for m in pattern.finditer(v.equation)}
                           - {v.name}) for v in variables}


# ---------------------------------------------------------------------------
# Reference results
# ---------------------------------------------------------------------------


def write_reference(version: ModelVersion | None = None, folder: str | Path = REFERENCE_DIR) -> list[Path]:
    """Run every shipped scenario and write ``folder/<scenario>.csv`` (year x :data:`REFERENCE_COLUMNS`).

    Values are written with 12 significant digits (far below :data:`REFERENCE_TOLERANCE`).  This is the one
    command that changes the reference, so running it is the explicit "this change is
    intended"; commit the files with the change that moved them.
    """
    from greenpath.scenarios import scenario as sc

    version = version or ModelVersion.current()
    folder = Path(folder)
    names = sc.available()
    block = Settings.from_mappings([dict(sc.load(n).settings()) for n in names])
    runs = version.run(block, REFERENCE_COLUMNS)
    missing = [c for c in REFERENCE_COLUMNS if c not in runs.values]
    if missing:
        raise CompareError(f"the model has no output {missing}; "
                           "update REFERENCE_COLUMNS in greenpath/runners/compare.py")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["year", *REFERENCE_COLUMNS])
            for j, year in enumerate(runs.years):
                writer.writerow([int(year), *(f"{float(runs.values[c][i, j]):.12g}" for c in REFERENCE_COLUMNS)])
        paths.append(path)
    stale = sorted(p for p in folder.glob("*.csv") if p.stem not in names)
    for p in stale:  # a scenario removed from scenarios/ leaves no reference behind
        p.unlink()
    return paths


def load_reference(folder: str | Path = REFERENCE_DIR) -> dict[str, pd.DataFrame]:
    """Read the reference results: scenario -> DataFrame (index year, one column per output)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise CompareError(f"no reference results in {folder}; write them with `greenpath compare --update-reference`")
    return {p.stem: pd.read_csv(p, index_col="year") for p in files}


def compare_reference(b: ModelVersion | None = None, folder: str | Path = REFERENCE_DIR,
                      thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Comparison:
    """Compare a model version (default: the installed one) with the reference results.

    The scenario set is the shipped scenarios; a scenario without a reference file,
    or a reference file without a shipped scenario, is an error naming it.
    """
    from greenpath.scenarios import scenario as sc

    start = time.perf_counter()
    b = b or ModelVersion.current()
    ref = load_reference(folder)
    names = sc.available()
    missing = sorted(set(names) - set(ref))
    extra = sorted(set(ref) - set(names))
    if missing or extra:
        raise CompareError(
            f"reference results in {Path(folder).name}/ do not match scenarios/: "
            f"missing {missing or '-'}, without a scenario {extra or '-'}; "
            "regenerate them with `greenpath compare --update-reference`")
    columns = [c for c in ref[names[0]].columns]
    block = Settings.from_mappings([dict(sc.load(n).settings()) for n in names])
    runs = b.run(block, columns)
    years = np.asarray(ref[names[0]].index, dtype=int)
    if not np.array_equal(years, runs.years):
        raise CompareError(f"reference years {years[0]}-{years[-1]} differ from the model's "
                           f"{runs.years[0]}-{runs.years[-1]}")
    a_values = {c: np.vstack([ref[n][c].to_numpy(dtype=float) for n in names]) for c in columns if c in runs.values}
    side_a = Side(f"reference ({Path(folder).name}/)", a_values, years)
    side_b = Side(b.label, {c: runs.values[c] for c in a_values}, runs.years)
    result = Comparison(side_a, side_b, list(names), _thresholds(thresholds))
    result.only_in_a = sorted(set(columns) - set(runs.values))
    result.seconds = time.perf_counter() - start
    return result
