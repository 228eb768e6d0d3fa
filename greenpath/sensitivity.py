"""Global sensitivity analysis of the headline outcomes (SALib, vector engine).

Which levers and uncertainties move the outcomes the plan is judged on?  Four
outcomes (:data:`OUTCOMES`) are computed from every run:

``coal_change_2025``
    Total coal consumption 2025 vs 2020 (fraction; the plan asks <= -0.12).
``energy_intensity_change_2025``
    Energy intensity 2025 vs 2020 (fraction; the plan asks <= -0.16).
``co2_peak_year``
    Year of maximum CO2 over 2020-2035 (2035 = still rising), as
    :func:`greenpath.model.indicators.peak`.
``co2_cumulative_2021_2035``
    Sum of CO2 over 2021-2035 (MtCO2), as :func:`greenpath.model.indicators.cumulative`.

The factors are the registry's levers and uncertainties with a non-empty range,
each uniform over its registry ``[min, max]``; everything not varied stays at
the scenario's setting (``--scenario``, default the effective defaults), and a
lever the scenario gives as a year table keeps its table unless it is varied.

Method (two stages, as EMA Workbench and the SALib docs recommend)
------------------------------------------------------------------
1. **Morris screening** (Morris 1991; Campolongo et al. 2007): ``r``
   trajectories (default 20) of ``k + 1`` runs on a 4-level grid; for each
   factor and outcome the mean absolute elementary effect ``mu_star`` (in
   outcome units per full registry range, so factors compare directly), its
   bootstrap 95 % confidence interval, ``sigma`` (non-linearity/interaction)
   and ``mu``.
2. **Sobol indices** (Saltelli 2002/2010 estimators, SALib): first-order
   ``S1`` and total-order ``ST`` with bootstrap 95 % confidence intervals,
   on the ``top`` most influential factors of stage 1 (default 12), the others
   held at the scenario's values.  **Selection rule**: factors are ranked by
   ``mu_star`` within each outcome; a factor's score is its best rank over the
   four outcomes (ties: the larger ``mu_star`` relative to the outcome's
   largest); the ``top`` best go to stage 2, so each outcome's leaders are
   analysed even when one factor dominates another outcome.  ``N`` base samples (default 1024, a power of 2) give
   ``N (k + 2)`` runs.  With ``method="sobol"`` alone, every factor is analysed.

An outcome that does not vary across a sample (e.g. the peak year when every
run peaks in the same year) has no variance to apportion: its indices are
reported as NaN with ``note = "constant"``.

Everything runs through :func:`greenpath.ensemble.run_many` on the vector
engine (chunks of :data:`CHUNK` runs bound the memory), seeded, so the same
arguments give the same table.

Public API
----------
``OUTCOMES``, ``outcome_values(values, years) -> DataFrame``,
``factor_ranges(which="all") -> dict``, ``morris_indices(ranges, evaluate, ...)``,
``sobol_indices(ranges, evaluate, ...)`` (model-agnostic: ``evaluate(X: DataFrame)
-> DataFrame`` of outcomes), ``run_sensitivity(...) -> SensitivityResult``,
``morris_chart(...)``, ``sobol_chart(...)``.
CLI: ``greenpath sensitivity [--scenario NAME] [--method morris|sobol|both]
[--n N] [--trajectories R] [--top K] [--factors all|levers|uncertainties|projection]
[--exclude NAMES] [--seed S] --out DIR [--force]`` (:mod:`greenpath.commands.sensitivity`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from greenpath import ensemble
from greenpath.model import indicators
from greenpath.model import registry as reg

__all__ = [
    "CHUNK",
    "FACTOR_SETS",
    "METHODS",
    "OUTCOMES",
    "Outcome",
    "SensitivityResult",
    "base_settings",
    "factor_ranges",
    "model_evaluator",
    "morris_chart",
    "morris_indices",
    "outcome_values",
    "run_sensitivity",
    "select_top",
    "sobol_chart",
    "sobol_indices",
]

METHODS = ("morris", "sobol", "both")
FACTOR_SETS = ("all", "levers", "uncertainties", "projection")
#: Runs per vector-engine call (bounds memory: 4 columns x 31 years x 8 B per run).
CHUNK = 20_000
MORRIS_LEVELS = 4
CONF_LEVEL = 0.95
NUM_RESAMPLES = 200


@dataclass(frozen=True)
class Outcome:
    """An outcome of a run, computed from yearly arrays."""

    name: str
    label: str
    unit: str
    columns: tuple[str, ...]
    compute: Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]


def _change_2025(column: str) -> Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]:
    def compute(values: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
        arr = values[column]
        i25 = _year_index(years, 2025)
        i20 = _year_index(years, indicators.BASE_YEAR)
        return arr[:, i25] / arr[:, i20] - 1.0

    return compute


def _peak_year(values: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
    mask = years >= indicators.BASE_YEAR
    # the peak rule of indicators.peak (a rebound after the maximum is not a peak)
    return indicators.peak_years(values["co2_emissions"][:, mask], years[mask])


def _cumulative(values: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
    mask = (years >= 2021) & (years <= 2035)
    return values["co2_emissions"][:, mask].sum(axis=1)


def _year_index(years: np.ndarray, year: int) -> int:
    where = np.flatnonzero(years == year)
    if where.size != 1:
        raise ValueError(f"year {year} is not among the saved years")
    return int(where[0])


OUTCOMES: dict[str, Outcome] = {
    o.name: o
    for o in (
        Outcome("coal_change_2025", "Coal use 2025 vs 2020", "fraction", ("total_coal_consumption",),
                _change_2025("total_coal_consumption")),
        Outcome("energy_intensity_change_2025", "Energy intensity 2025 vs 2020", "fraction",
                ("energy_intensity",), _change_2025("energy_intensity")),
        Outcome("co2_peak_year", "CO2 peak year (2020-2035)", "year", ("co2_emissions",), _peak_year),
        Outcome("co2_cumulative_2021_2035", "Cumulative CO2 2021-2035", "MtCO2", ("co2_emissions",),
                _cumulative),
    )
}
OUTCOME_COLUMNS = sorted({c for o in OUTCOMES.values() for c in o.columns})


def outcome_values(values: Mapping[str, np.ndarray], years: np.ndarray) -> pd.DataFrame:
    """Compute the four outcomes of every run.

    Parameters
    ----------
    values
        ``variable -> array (n, len(years))`` holding at least
        ``total_coal_consumption``, ``energy_intensity`` and ``co2_emissions``.
    years
        The saved years.

    Returns
    -------
    pandas.DataFrame
        One row per run, one column per outcome of :data:`OUTCOMES`.
    """
    years = np.asarray(years)
    return pd.DataFrame({name: o.compute(values, years) for name, o in OUTCOMES.items()})


def factor_ranges(which: str | Sequence[str] = "all") -> dict[str, tuple[float, float]]:
    """Registry ranges of the factors of an analysis.

    Parameters
    ----------
    which
        ``"all"`` (levers and uncertainties), ``"levers"``, ``"uncertainties"``,
        ``"projection"`` (levers and :func:`greenpath.ensemble.projection_uncertainties`)
        or a list of registry names.  Parameters whose range is a single value
        are left out.
    """
    registry = reg.load_registry()
    if isinstance(which, str):
        if which not in FACTOR_SETS:
            raise ensemble.EnsembleError(f"factors {which!r} is not one of {', '.join(FACTOR_SETS)} or a list")
        kinds = {"all": ("lever", "uncertainty"), "levers": ("lever",), "uncertainties": ("uncertainty",),
                 "projection": ("lever",)}[which]
        names = [k for k, p in registry.items() if p.kind in kinds]
        if which == "projection":
            names += ensemble.projection_uncertainties()
    else:
        names = list(which)
    out = {}
    for name in names:
        p = ensemble._check_name(name, "factors")
        if p.max > p.min:
            out[name] = (p.min, p.max)
    if not out:
        raise ensemble.EnsembleError(f"factors {which!r}: no parameter with a non-empty range")
    return out


def base_settings(scenario: str | None) -> tuple[dict[str, float], dict[str, tuple]]:
    """Constant settings and year tables of a scenario (empty for ``None``)."""
    if scenario is None:
        return {}, {}
    from greenpath import scenarios

    sc = scenarios.load(scenario)
    return dict(sc.params), dict(sc.tables)


def model_evaluator(
    base_params: Mapping[str, float] | None = None,
    tables: Mapping[str, tuple] | None = None,
    chunk: int = CHUNK,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``evaluate(X) -> outcomes`` running the model on the vector engine (``engine="auto"``: PySD if it fails).

    Columns of ``X`` override ``base_params``; a varied lever's year table in
    ``tables`` is dropped (the sampled constant replaces it).
    """
    base = dict(base_params or {})
    tables = dict(tables or {})

    def evaluate(x: pd.DataFrame) -> pd.DataFrame:
        kept = {k: v for k, v in tables.items() if k not in x.columns}
        parts = []
        for lo in range(0, len(x), chunk):
            part = x.iloc[lo:lo + chunk].reset_index(drop=True)
            frame = pd.DataFrame({k: v for k, v in base.items() if k not in part.columns and k not in kept},
                                 index=part.index)
            frame = pd.concat([frame, part], axis=1)
            result = ensemble.run_many(frame, OUTCOME_COLUMNS, engine="auto", time_varying=kept or None,
                                       output="arrays")
            parts.append(outcome_values(result.values, result.years))
        return pd.concat(parts, ignore_index=True)

    return evaluate


def _clip(x: np.ndarray, problem: Mapping[str, Any]) -> np.ndarray:
    """Clip a SALib sample to its bounds: ``lo + u (hi - lo)`` can round a hair past ``hi``."""
    bounds = np.asarray(problem["bounds"], dtype=float)
    return np.clip(x, bounds[:, 0], bounds[:, 1])


def _problem(ranges: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    return {"num_vars": len(ranges), "names": list(ranges), "bounds": [list(map(float, b)) for b in ranges.values()]}


def morris_indices(
    ranges: Mapping[str, tuple[float, float]],
    evaluate: Callable[[pd.DataFrame], pd.DataFrame],
    trajectories: int = 20,
    seed: int = ensemble.DEFAULT_SEED,
    levels: int = MORRIS_LEVELS,
) -> pd.DataFrame:
    """Morris elementary-effects screening.

    Parameters
    ----------
    ranges
        ``factor -> (low, high)``.
    evaluate
        Maps a sample (DataFrame, one column per factor) to outcomes
        (DataFrame, one column per outcome, same rows).
    trajectories
        Number of trajectories ``r`` (``r (k + 1)`` evaluations).
    seed
        Seed of the sample and of the bootstrap.
    levels
        Grid levels ``p`` (step ``p / (2 (p - 1))`` of the unit range).

    Returns
    -------
    pandas.DataFrame
        Rows ``(outcome, factor)``: ``mu_star``, ``mu_star_conf``, ``sigma``,
        ``mu``, ``note``; ``mu_star`` is in outcome units per unit of the
        factor's range fraction (``y(x + delta) - y(x)) / delta`` with ``delta``
        a fraction of the range).
    """
    from SALib.analyze import morris as morris_analyze
    from SALib.sample import morris as morris_sample

    if trajectories < 2:
        raise ensemble.EnsembleError(f"trajectories = {trajectories}: Morris needs at least 2")
    problem = _problem(ranges)
    x = _clip(morris_sample.sample(problem, trajectories, num_levels=levels, seed=seed), problem)
    y = evaluate(pd.DataFrame(x, columns=problem["names"]))
    rows = []
    for outcome in y.columns:
        values = y[outcome].to_numpy(dtype=float)
        if np.ptp(values) == 0:
            rows += [_nan_row(outcome, f, ("mu_star", "mu_star_conf", "sigma", "mu"), "constant")
                     for f in problem["names"]]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = morris_analyze.analyze(problem, x, values, num_resamples=NUM_RESAMPLES, conf_level=CONF_LEVEL,
                                         num_levels=levels, seed=seed)
        for i, factor in enumerate(problem["names"]):
            rows.append({"outcome": outcome, "factor": factor, "mu_star": float(res["mu_star"][i]),
                         "mu_star_conf": float(res["mu_star_conf"][i]), "sigma": float(res["sigma"][i]),
                         "mu": float(res["mu"][i]), "note": ""})
    out = pd.DataFrame(rows)
    out.attrs["runs"] = len(x)
    return out


def sobol_indices(
    ranges: Mapping[str, tuple[float, float]],
    evaluate: Callable[[pd.DataFrame], pd.DataFrame],
    n: int = 1024,
    seed: int = ensemble.DEFAULT_SEED,
) -> pd.DataFrame:
    """First- and total-order Sobol indices with bootstrap confidence intervals.

    Parameters
    ----------
    ranges
        ``factor -> (low, high)``; factors uniform over their ranges.
    evaluate
        As :func:`morris_indices`.
    n
        Base sample size, a power of 2 (``n (k + 2)`` evaluations; Saltelli's
        scheme without second-order terms, scrambled Sobol' sequence).
    seed
        Seed of the scrambling and of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Rows ``(outcome, factor)``: ``S1``, ``S1_conf``, ``ST``, ``ST_conf``
        (half-widths of the 95 % intervals), ``note``.
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    if n < 2 or n & (n - 1):
        raise ensemble.EnsembleError(f"n = {n}: Sobol base samples must be a power of 2 (e.g. 512, 1024, 2048)")
    problem = _problem(ranges)
    x = _clip(sobol_sample.sample(problem, n, calc_second_order=False, scramble=True, seed=seed), problem)
    y = evaluate(pd.DataFrame(x, columns=problem["names"]))
    rows = []
    for outcome in y.columns:
        values = y[outcome].to_numpy(dtype=float)
        if np.ptp(values) == 0:
            rows += [_nan_row(outcome, f, ("S1", "S1_conf", "ST", "ST_conf"), "constant") for f in problem["names"]]
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sobol_analyze.analyze(problem, values, calc_second_order=False, num_resamples=NUM_RESAMPLES,
                                        conf_level=CONF_LEVEL, seed=seed)
        for i, factor in enumerate(problem["names"]):
            rows.append({"outcome": outcome, "factor": factor, "S1": float(res["S1"][i]),
                         "S1_conf": float(res["S1_conf"][i]), "ST": float(res["ST"][i]),
                         "ST_conf": float(res["ST_conf"][i]), "note": ""})
    out = pd.DataFrame(rows)
    out.attrs["runs"] = len(x)
    return out


def _nan_row(outcome: str, factor: str, keys: Sequence[str], note: str) -> dict[str, Any]:
    row: dict[str, Any] = {"outcome": outcome, "factor": factor}
    row.update({k: np.nan for k in keys})
    row["note"] = note
    return row


def select_top(morris: pd.DataFrame, top: int) -> list[str]:
    """Pick the ``top`` factors of a Morris table by their best rank over the outcomes.

    Each factor's rank by ``mu_star`` is taken within every outcome (outcomes
    without variation are skipped); factors are ordered by their best
    (smallest) rank, ties broken by the largest normalised ``mu_star``
    (``mu_star`` / the largest ``mu_star`` of that outcome), then by registry
    order.  So every outcome's leading factors reach the Sobol stage even when
    one factor dominates another outcome.
    """
    if top < 1:
        raise ensemble.EnsembleError(f"top = {top}: choose at least one factor for Sobol")
    m = morris.dropna(subset=["mu_star"]).copy()
    if m.empty:
        return []
    m["rank"] = m.groupby("outcome")["mu_star"].rank(ascending=False, method="min")
    m["score"] = m["mu_star"] / m.groupby("outcome")["mu_star"].transform("max")
    order = list(dict.fromkeys(morris["factor"]))
    best = m.groupby("factor").agg(rank=("rank", "min"), score=("score", "max")).reindex(order)
    best = best.fillna({"rank": np.inf, "score": 0.0})
    position = {f: i for i, f in enumerate(order)}
    ranked = sorted(order, key=lambda f: (best.at[f, "rank"], -best.at[f, "score"], position[f]))
    return ranked[:top]


@dataclass
class SensitivityResult:
    """Tables of a sensitivity analysis and what produced them."""

    table: pd.DataFrame
    morris: pd.DataFrame | None
    sobol: pd.DataFrame | None
    sobol_factors: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def run_sensitivity(
    scenario: str | None = None,
    method: Literal["morris", "sobol", "both"] = "both",
    n: int = 1024,
    trajectories: int = 20,
    top: int = 12,
    seed: int = ensemble.DEFAULT_SEED,
    factors: str | Sequence[str] = "all",
    exclude: Sequence[str] = (),
) -> SensitivityResult:
    """Morris screening and/or Sobol indices of the four outcomes.

    Parameters
    ----------
    scenario
        Scenario whose settings hold the factors not varied (default: the
        effective defaults).
    method
        ``"morris"``, ``"sobol"`` (every factor) or ``"both"`` (Sobol on the
        ``top`` factors of the Morris stage, see the module docstring).
    n
        Sobol base sample size (power of 2).
    trajectories
        Morris trajectories.
    top
        Factors passed from Morris to Sobol.
    seed
        Seed of every sample and bootstrap.
    factors
        See :func:`factor_ranges`.
    exclude
        Factors held at the scenario's setting instead (e.g. ``policy_start_year``,
        whose range 2021-2030 otherwise dominates every 2025 outcome).

    Returns
    -------
    SensitivityResult
        ``table``: one row per (outcome, factor) with the Morris and Sobol
        columns, sorted by outcome and by ``ST`` then ``mu_star``.
    """
    if method not in METHODS:
        raise ensemble.EnsembleError(f"method {method!r} is not one of {', '.join(METHODS)}")
    started = time.perf_counter()
    ranges = factor_ranges(factors)
    for name in exclude:
        ensemble._check_name(name, "exclude")
        if name not in ranges:
            raise ensemble.EnsembleError(f"exclude: {name!r} is not among the factors {factors!r}")
        del ranges[name]
    if not ranges:
        raise ensemble.EnsembleError("exclude: no factor left to analyse")
    params, tables = base_settings(scenario)
    evaluate = model_evaluator(params, tables)
    morris = sobol = None
    sobol_factors: list[str] = []
    runs = 0
    if method in ("morris", "both"):
        morris = morris_indices(ranges, evaluate, trajectories=trajectories, seed=seed)
        runs += morris.attrs["runs"]
    if method in ("sobol", "both"):
        sobol_factors = select_top(morris, top) if morris is not None else list(ranges)
        sobol = sobol_indices({f: ranges[f] for f in sobol_factors}, evaluate, n=n, seed=seed)
        runs += sobol.attrs["runs"]
    table = _combine(ranges, morris, sobol)
    from greenpath.model.engine import model_hash

    meta = {
        "scenario": scenario or "defaults", "method": method, "n": n, "trajectories": trajectories,
        "top": top, "seed": seed, "factors": factors if isinstance(factors, str) else list(factors),
        "excluded": list(exclude),
        "n_factors": len(ranges), "sobol_factors": sobol_factors, "runs": runs,
        "seconds": round(time.perf_counter() - started, 3), "engine": "vector",
        "model_sha256": model_hash(), "calibration_sha256_12": reg.calibration_id(),
        "outcomes": {k: {"label": o.label, "unit": o.unit} for k, o in OUTCOMES.items()},
        "morris_levels": MORRIS_LEVELS, "conf_level": CONF_LEVEL, "num_resamples": NUM_RESAMPLES,
    }
    return SensitivityResult(table=table, morris=morris, sobol=sobol, sobol_factors=sobol_factors, meta=meta)


def _combine(ranges, morris: pd.DataFrame | None, sobol: pd.DataFrame | None) -> pd.DataFrame:
    registry = reg.load_registry()
    keys = [(o, f) for o in OUTCOMES for f in ranges]
    table = pd.DataFrame(keys, columns=["outcome", "factor"])
    table["kind"] = [registry[f].kind for f in table["factor"]]
    table["factor_unit"] = [registry[f].unit for f in table["factor"]]
    table["outcome_unit"] = [OUTCOMES[o].unit for o in table["outcome"]]
    cols = ["mu_star", "mu_star_conf", "sigma", "mu", "S1", "S1_conf", "ST", "ST_conf"]
    for df in (morris, sobol):
        if df is not None:
            table = table.merge(df.drop(columns="note"), on=["outcome", "factor"], how="left")
    for c in cols:
        if c not in table:
            table[c] = np.nan
    notes = pd.concat([d[["outcome", "factor", "note"]] for d in (morris, sobol) if d is not None])
    notes = notes[notes["note"] != ""].drop_duplicates(["outcome", "factor"])
    table = table.merge(notes, on=["outcome", "factor"], how="left")
    table["note"] = table["note"].fillna("")
    table["morris_rank"] = table.groupby("outcome")["mu_star"].rank(ascending=False, method="min")
    table["sobol_rank"] = table.groupby("outcome")["ST"].rank(ascending=False, method="min")
    order = {o: i for i, o in enumerate(OUTCOMES)}
    table = table.assign(_o=table["outcome"].map(order)).sort_values(
        ["_o", "ST", "mu_star"], ascending=[True, False, False], na_position="last", kind="stable"
    ).drop(columns="_o")
    return table[["outcome", "factor", "kind", *cols, "morris_rank", "sobol_rank", "note", "factor_unit",
                  "outcome_unit"]].reset_index(drop=True)


# ---------------------------------------------------------------------------
# Charts (matplotlib Figure on the Agg canvas; no pyplot state)
# ---------------------------------------------------------------------------


def _figure(footer: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 10), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2)
    fig.get_layout_engine().set(h_pad=0.15, rect=(0, 0.02, 1, 0.98))  # room for the footer
    fig.text(0.01, 0.003, footer, fontsize=8, color="#555555", ha="left", va="bottom")
    return fig, axes.ravel()


def morris_chart(morris: pd.DataFrame, footer: str = "", show: int = 15):
    """Horizontal bars of ``mu_star`` (with its 95 % interval) per outcome, top ``show`` factors."""
    fig, axes = _figure(footer)
    for ax, (name, o) in zip(axes, OUTCOMES.items(), strict=True):
        d = morris[morris["outcome"] == name].dropna(subset=["mu_star"])
        d = d.sort_values("mu_star", ascending=False).head(show).iloc[::-1]
        ax.barh(d["factor"], d["mu_star"], xerr=d["mu_star_conf"], color="#0072b2", ecolor="#333333", capsize=2)
        ax.set_title(o.label, fontsize=12)
        ax.set_xlabel(f"Morris mu* ({o.unit} per full factor range)", fontsize=10)
        ax.tick_params(labelsize=8)
        if d.empty:
            ax.text(0.5, 0.5, "outcome constant across the sample", transform=ax.transAxes, ha="center")
    fig.suptitle("Morris screening: mean absolute elementary effect (bars: 95% bootstrap interval)", fontsize=13)
    return fig


def sobol_chart(sobol: pd.DataFrame, footer: str = "", show: int = 15):
    """Paired bars of first-order ``S1`` and total ``ST`` Sobol indices with 95 % intervals."""
    fig, axes = _figure(footer)
    for ax, (name, o) in zip(axes, OUTCOMES.items(), strict=True):
        d = sobol[sobol["outcome"] == name].dropna(subset=["ST"])
        d = d.sort_values("ST", ascending=False).head(show).iloc[::-1]
        pos = np.arange(len(d))
        ax.barh(pos + 0.2, d["ST"], height=0.4, xerr=d["ST_conf"], color="#d55e00", label="total order ST",
                ecolor="#333333", capsize=2)
        ax.barh(pos - 0.2, d["S1"], height=0.4, xerr=d["S1_conf"], color="#0072b2", label="first order S1",
                ecolor="#333333", capsize=2)
        ax.set_yticks(pos, d["factor"])
        ax.set_title(o.label, fontsize=12)
        ax.set_xlabel("share of outcome variance (dimensionless)", fontsize=10)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="lower right")
        if d.empty:
            ax.text(0.5, 0.5, "outcome constant across the sample", transform=ax.transAxes, ha="center")
    fig.suptitle("Sobol indices (bars: 95% bootstrap interval)", fontsize=13)
    return fig
