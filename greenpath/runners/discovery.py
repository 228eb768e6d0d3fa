"""Scenario discovery with PRIM: which lever ranges keep CO2 peaking by a given year.

Design (EMA Workbench's scenario discovery, Bryant & Lempert 2010)
-------------------------------------------------------------------
1. **Experiments.** A seeded Latin hypercube over the levers (every registry
   lever with a non-empty range, or ``levers=[...]``) and the uncertainties
   (default the projection uncertainties of
   :func:`greenpath.runners.ensemble.projection_uncertainties`; ``"all"`` or ``"none"``
   possible), each uniform over its registry range; settings not sampled come
   from ``scenario`` (default the effective defaults).  Runs go through the
   vector engine (``run_many(engine="auto")``: PySD if the vector engine
   refuses the model).
2. **Cases of interest.** Runs whose CO2 (``co2_emissions``) peaks in or before
   ``peak_by`` (default 2030; the peak is the maximum over 2020-2035 followed by
   no higher year and no rebound by 2035, as :func:`greenpath.model.indicators.peak`
   and the ``co2_peak_by_2030`` target, which reads 2030年前 as "by 2030").
3. **PRIM** (Friedman & Fisher 1999) on the lever columns only (the box says
   what the city controls; the sampled uncertainties act as noise the box must
   hold against):

   * *Peeling.*  Starting from the box holding every run, each step considers,
     for every dimension, removing the runs below its ``alpha``-quantile or above
     its ``(1 - alpha)``-quantile among the runs still in the box (``alpha`` =
     :data:`PEEL_ALPHA` = 0.05, the value Friedman & Fisher recommend and EMA
     uses), and takes the peel that leaves the highest density (share of cases
     of interest in the box).  Peeling stops before the box would hold fewer
     than ``min_mass`` (default 5 %) of all runs.  Every box is kept: the
     *peeling trajectory*, along which coverage (share of all cases of interest
     inside the box) falls while density rises.
   * *Choice of the box* (stated rule): among the boxes on the trajectory with
     coverage >= ``min_coverage`` (default 0.8), the one with the highest
     density; ties go to the larger coverage (the earlier box).
   * *Pasting.*  The chosen box is then widened one limit at a time by
     ``alpha`` of its runs (Friedman & Fisher's bottom-up pasting), taking the
     widening with the highest density, while the density does not fall and
     the widening adds cases of interest.  (Friedman & Fisher paste while the
     mean rises; accepting ties lets a box whose last peel cut past a
     boundary at density 1 win back the runs it lost.)
   * A dimension is *restricted* when its box limits are inside the range of
     the sample.  For each restriction the table gives the density and
     coverage the box would have without it, which shows how much it matters.

Outputs (``greenpath discover --out DIR``): ``prim_box.csv`` (lever, unit,
registry min/max, box min/max, restricted, density and coverage without the
restriction), ``prim_trajectory.csv`` (step, coverage, density, mass,
restricted dimensions), ``prim_tradeoff.png`` (coverage-density trade-off,
the chosen box marked) and ``discover.meta.json``.  The command lives in
:mod:`greenpath.cli.commands.discover`.

Public API
----------
``PEEL_ALPHA``; ``prim(x, y, alpha=PEEL_ALPHA, min_mass=0.05, min_coverage=0.8,
paste=True) -> PrimResult``; ``discover(scenario=None, n=4000, seed=..., peak_by=2030,
levers=None, uncertainties="projection", ...) -> DiscoveryResult``;
``tradeoff_chart(result)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.runners import ensemble

__all__ = [
    "MIN_COVERAGE",
    "MIN_MASS",
    "PEEL_ALPHA",
    "DiscoveryResult",
    "PrimBox",
    "PrimResult",
    "discover",
    "peak_years",
    "prim",
    "tradeoff_chart",
]

#: Share of the box's runs removed by one peel (Friedman & Fisher 1999: 0.05-0.10).
PEEL_ALPHA = 0.05
#: Peeling stops before the box would hold less than this share of all runs.
MIN_MASS = 0.05
#: The chosen box is the densest with at least this coverage.
MIN_COVERAGE = 0.8


@dataclass
class PrimBox:
    """One box: limits per dimension and its statistics."""

    limits: pd.DataFrame  # index = dimension, columns lower, upper
    coverage: float
    density: float
    mass: float
    restricted: list[str]


@dataclass
class PrimResult:
    """The peeling trajectory, the chosen (and pasted) box and the rule used."""

    trajectory: pd.DataFrame
    boxes: list[PrimBox]
    chosen: int
    box: PrimBox
    rule: str
    alpha: float
    min_mass: float
    min_coverage: float
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def _inside(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    return np.all((x >= lower) & (x <= upper), axis=1)


def _stats(mask: np.ndarray, y: np.ndarray, total: float) -> tuple[float, float, float]:
    count = mask.sum()
    hits = y[mask].sum()
    density = hits / count if count else 0.0
    coverage = hits / total if total else 0.0
    return float(coverage), float(density), float(count / len(y))


def prim(
    x: pd.DataFrame,
    y: np.ndarray | Sequence[bool],
    alpha: float = PEEL_ALPHA,
    min_mass: float = MIN_MASS,
    min_coverage: float = MIN_COVERAGE,
    paste: bool = True,
) -> PrimResult:
    """Patient Rule Induction Method (Friedman & Fisher 1999) for a binary outcome.

    Parameters
    ----------
    x
        Inputs, one numeric column per dimension, one row per run.
    y
        True for the runs of interest.
    alpha
        Peel (and paste) share, in (0, 0.5).
    min_mass
        Smallest share of all runs a box may hold, in (0, 1).
    min_coverage
        The chosen box is the densest box of the trajectory with at least this
        coverage (ties: the larger coverage).
    paste
        Widen the chosen box while its density does not fall and it gains
        cases of interest.

    Returns
    -------
    PrimResult
    """
    if not 0 < alpha < 0.5:
        raise ensemble.EnsembleError(f"alpha = {alpha}: the peel share must lie in (0, 0.5)")
    if not 0 < min_mass < 1:
        raise ensemble.EnsembleError(f"min_mass = {min_mass}: must lie in (0, 1)")
    if not 0 <= min_coverage <= 1:
        raise ensemble.EnsembleError(f"min_coverage = {min_coverage}: must lie in [0, 1]")
    names = list(x.columns)
    xv = x.to_numpy(dtype=float)
    yv = np.asarray(y, dtype=bool)
    if xv.ndim != 2 or len(yv) != len(xv) or len(xv) == 0:
        raise ensemble.EnsembleError(f"prim: x has {len(xv)} rows and y {len(yv)} values; they must match")
    if not np.all(np.isfinite(xv)):
        raise ensemble.EnsembleError("prim: x holds NaN or infinite values")
    total = float(yv.sum())
    if total == 0:
        raise ensemble.EnsembleError("prim: no run is a case of interest; nothing to find a box for")
    n = len(yv)
    data_lo, data_hi = xv.min(axis=0), xv.max(axis=0)
    lower, upper = data_lo.copy(), data_hi.copy()
    mask = np.ones(n, dtype=bool)
    boxes = [_box(names, lower, upper, data_lo, data_hi, *_stats(mask, yv, total))]
    while True:
        best = None
        count = mask.sum()
        k = max(1, int(np.floor(alpha * count)))
        for j in range(xv.shape[1]):
            values = np.sort(xv[mask, j])
            if values[0] == values[-1]:
                continue
            cut_lo = values[k]  # keep x >= cut_lo: removes the k smallest (fewer with ties)
            cut_hi = values[count - 1 - k]
            for side, cut in (("lower", cut_lo), ("upper", cut_hi)):
                keep = mask & (xv[:, j] >= cut) if side == "lower" else mask & (xv[:, j] <= cut)
                kept = keep.sum()
                if kept == count or kept < min_mass * n:
                    continue
                density = yv[keep].sum() / kept
                key = (density, kept)
                if best is None or key > best[0]:
                    best = (key, j, side, cut, keep)
        if best is None:
            break
        _, j, side, cut, mask = best
        if side == "lower":
            lower[j] = cut
        else:
            upper[j] = cut
        boxes.append(_box(names, lower, upper, data_lo, data_hi, *_stats(mask, yv, total)))
    trajectory = pd.DataFrame({
        "step": range(len(boxes)),
        "coverage": [b.coverage for b in boxes],
        "density": [b.density for b in boxes],
        "mass": [b.mass for b in boxes],
        "n_restricted": [len(b.restricted) for b in boxes],
        "restricted": [", ".join(b.restricted) for b in boxes],
    })
    eligible = trajectory[trajectory["coverage"] >= min_coverage - 1e-12]
    chosen = int(eligible.sort_values(["density", "coverage"], ascending=False, kind="stable")["step"].iloc[0])
    rule = (f"densest box on the peeling trajectory with coverage >= {min_coverage:g} (ties: larger coverage)"
            + ("; then pasted while density holds and coverage rises" if paste else ""))
    box = boxes[chosen]
    if paste:
        box = _paste(xv, yv, names, box, alpha, data_lo, data_hi, total)
    result = PrimResult(trajectory=trajectory, boxes=boxes, chosen=chosen, box=box, rule=rule, alpha=alpha,
                        min_mass=min_mass, min_coverage=min_coverage)
    result.table = _box_table(xv, yv, names, box, data_lo, data_hi, total)
    return result


def _box(names, lower, upper, data_lo, data_hi, coverage, density, mass) -> PrimBox:
    limits = pd.DataFrame({"lower": lower.copy(), "upper": upper.copy()}, index=pd.Index(names, name="dimension"))
    restricted = [nm for i, nm in enumerate(names) if lower[i] > data_lo[i] or upper[i] < data_hi[i]]
    return PrimBox(limits=limits, coverage=coverage, density=density, mass=mass, restricted=restricted)


def _paste(xv, yv, names, box: PrimBox, alpha, data_lo, data_hi, total) -> PrimBox:
    lower = box.limits["lower"].to_numpy(dtype=float).copy()
    upper = box.limits["upper"].to_numpy(dtype=float).copy()
    mask = _inside(xv, lower, upper)
    density = yv[mask].sum() / mask.sum()
    while True:
        best = None
        k = max(1, int(np.floor(alpha * mask.sum())))
        for j in range(xv.shape[1]):
            others = np.ones(len(yv), dtype=bool)
            for i in range(xv.shape[1]):
                if i != j:
                    others &= (xv[:, i] >= lower[i]) & (xv[:, i] <= upper[i])
            for side in ("lower", "upper"):
                if side == "lower":
                    outside = np.sort(xv[others & (xv[:, j] < lower[j]), j])[::-1]
                else:
                    outside = np.sort(xv[others & (xv[:, j] > upper[j]), j])
                if outside.size == 0:
                    continue
                cut = outside[min(k, outside.size) - 1]
                new_lo, new_hi = lower.copy(), upper.copy()
                if side == "lower":
                    new_lo[j] = cut
                else:
                    new_hi[j] = cut
                keep = _inside(xv, new_lo, new_hi)
                d = yv[keep].sum() / keep.sum()
                gains = yv[keep].sum() > yv[mask].sum()
                if d >= density - 1e-12 and gains and (best is None or (d, keep.sum()) > best[0]):
                    best = ((d, keep.sum()), new_lo, new_hi, keep)
        if best is None:
            break
        (density, _), lower, upper, mask = best
    return _box(names, lower, upper, data_lo, data_hi, *_stats(mask, yv, total))


def _box_table(xv, yv, names, box: PrimBox, data_lo, data_hi, total) -> pd.DataFrame:
    lower = box.limits["lower"].to_numpy(dtype=float)
    upper = box.limits["upper"].to_numpy(dtype=float)
    rows = []
    for j, name in enumerate(names):
        restricted = name in box.restricted
        row = {"dimension": name, "sample_min": data_lo[j], "sample_max": data_hi[j], "box_min": lower[j],
               "box_max": upper[j], "restricted": restricted, "coverage_without": np.nan,
               "density_without": np.nan}
        if restricted:
            lo, hi = lower.copy(), upper.copy()
            lo[j], hi[j] = data_lo[j], data_hi[j]
            cov, dens, _ = _stats(_inside(xv, lo, hi), yv, total)
            row.update(coverage_without=cov, density_without=dens)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values(["restricted", "density_without"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------
# The model experiment
# ---------------------------------------------------------------------------


def peak_years(co2: np.ndarray, years: np.ndarray, from_year: int = indicators.BASE_YEAR) -> np.ndarray:
    """Peak year of each row from ``from_year`` on by the rule of ``indicators.peak``.

    A maximum followed by a rebound (or a maximum in the last year) has not peaked and
    gets the last year.
    """
    years = np.asarray(years)
    mask = years >= from_year
    return indicators.peak_years(np.asarray(co2)[:, mask], years[mask])


@dataclass
class DiscoveryResult:
    """The experiment, its outcome and the PRIM result."""

    sample: pd.DataFrame
    peak_year: np.ndarray
    interesting: np.ndarray
    prim: PrimResult
    box_table: pd.DataFrame
    meta: dict[str, Any]


def discover(
    scenario: str | None = None,
    n: int = 4000,
    seed: int = ensemble.DEFAULT_SEED,
    peak_by: int = 2030,
    levers: Sequence[str] | None = None,
    uncertainties: str | Sequence[str] = "projection",
    alpha: float = PEEL_ALPHA,
    min_mass: float = MIN_MASS,
    min_coverage: float = MIN_COVERAGE,
) -> DiscoveryResult:
    """Sample levers and uncertainties, mark runs peaking by ``peak_by``, run PRIM on the levers.

    Parameters
    ----------
    scenario
        Scenario holding what is not sampled (default: the effective defaults);
        a sampled lever's year table is replaced by the sampled constant.
    n
        Number of runs (Latin hypercube).
    seed
        Seed of the sample.
    peak_by
        A run is a case of interest when its CO2 peak year is <= ``peak_by``.
    levers
        Box dimensions (default every lever with a non-empty registry range).
    uncertainties
        ``"projection"`` (default), ``"all"``, ``"none"`` or a list of names.
    alpha, min_mass, min_coverage
        PRIM settings, see :func:`prim`.
    """
    started = time.perf_counter()
    registry = reg.load_registry()
    if levers is None:
        levers = [k for k, p in reg.levers().items() if p.max > p.min]
    else:
        levers = list(levers)
        for name in levers:
            p = ensemble._check_name(name, "levers")
            if p.kind != "lever":
                article = "an" if p.kind[0] in "aeiou" else "a"
                raise ensemble.EnsembleError(f"levers: {name!r} is {article} {p.kind}, not a lever")
            if not p.max > p.min:
                raise ensemble.EnsembleError(f"levers: {name!r} has a single allowed value; it cannot be a box side")
    if not levers:
        raise ensemble.EnsembleError("levers: none given")
    if uncertainties == "none":
        unc: list[str] = []
    else:
        unc = [u for u in ensemble._uncertainty_names(uncertainties) if registry[u].max > registry[u].min]
    if not indicators.BASE_YEAR <= int(peak_by) <= 2035:
        raise ensemble.EnsembleError(f"peak_by = {peak_by}: choose a year in 2020 to 2035")
    from greenpath.runners.sensitivity import base_settings

    params, tables = base_settings(scenario)
    sample = ensemble.sample_parameters([*levers, *unc], n, seed, "lhs")
    frame = sample.copy()
    for k, v in params.items():
        if k not in frame:
            frame[k] = v
    kept = {k: v for k, v in tables.items() if k not in frame.columns}
    result = ensemble.run_many(frame, ["co2_emissions"], engine="auto", time_varying=kept or None,
                               output="arrays")
    peaks = peak_years(result.values["co2_emissions"], result.years)
    interesting = peaks <= peak_by
    share = float(interesting.mean())
    if share == 0:
        raise ensemble.EnsembleError(
            f"no run of {n} peaks by {peak_by}; nothing to discover (try a later --peak-by)"
        )
    found = prim(sample[levers], interesting, alpha=alpha, min_mass=min_mass, min_coverage=min_coverage)
    table = found.table.rename(columns={"dimension": "lever"})
    table.insert(1, "unit", [registry[k].unit for k in table["lever"]])
    table.insert(2, "registry_min", [registry[k].min for k in table["lever"]])
    table.insert(3, "registry_max", [registry[k].max for k in table["lever"]])
    from greenpath.model.mdl import model_hash

    meta = {
        "scenario": scenario or "defaults", "n": n, "seed": seed, "peak_by": int(peak_by),
        "case_of_interest": (f"CO2 peak year (maximum over {indicators.BASE_YEAR}-2035 with no rebound) "
                             f"<= {int(peak_by)}"),
        "share_of_interest": share, "levers": levers, "uncertainties": unc, "alpha": alpha,
        "min_mass": min_mass, "min_coverage": min_coverage, "rule": found.rule,
        "chosen_step": found.chosen, "coverage": found.box.coverage, "density": found.box.density,
        "mass": found.box.mass, "restricted": found.box.restricted, "engine": "vector",
        "seconds": round(time.perf_counter() - started, 3), "model_sha256": model_hash(),
        "calibration_sha256_12": reg.calibration_id(),
        "peak_year_counts": {int(y): int(c) for y, c in zip(*np.unique(peaks, return_counts=True), strict=True)},
    }
    return DiscoveryResult(sample=sample, peak_year=peaks, interesting=interesting, prim=found, box_table=table,
                           meta=meta)


def tradeoff_chart(found: PrimResult, footer: str = "", title: str = ""):
    """Coverage-density trade-off of the peeling trajectory; colour = restricted dimensions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    fig = Figure(figsize=(9, 6.5), dpi=120, layout="constrained")
    engine = fig.get_layout_engine()
    if not isinstance(engine, ConstrainedLayoutEngine):
        raise TypeError(f"the figure has layout engine {engine!r}, not the constrained one")
    engine.set(rect=(0, 0.03, 1, 0.97))  # room for the footer
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    t = found.trajectory
    points = ax.scatter(t["coverage"], t["density"], c=t["n_restricted"], cmap="viridis", s=22, zorder=3)
    ax.plot(t["coverage"], t["density"], color="#999999", lw=0.8, zorder=2)
    chosen = t.iloc[found.chosen]
    ax.scatter([chosen["coverage"]], [chosen["density"]], s=160, facecolors="none", edgecolors="#d55e00",
               linewidths=2, zorder=4, label=f"chosen box (step {found.chosen})")
    if found.box.coverage != chosen["coverage"] or found.box.density != chosen["density"]:
        ax.scatter([found.box.coverage], [found.box.density], marker="*", s=200, color="#d55e00", zorder=5,
                   label="after pasting")
    ax.axvline(found.min_coverage, color="#d55e00", ls="--", lw=1, label=f"coverage >= {found.min_coverage:g}")
    cbar = fig.colorbar(points, ax=ax)
    cbar.set_label("restricted levers (count)")
    ax.set_xlabel("coverage (share of all cases of interest inside the box)")
    ax.set_ylabel("density (share of runs in the box that are cases of interest)")
    ax.set_xlim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
    ax.set_title(title or "PRIM peeling trajectory: coverage vs density", fontsize=12)
    fig.text(0.01, 0.003, footer, fontsize=8, color="#555555", ha="left", va="bottom")
    return fig
