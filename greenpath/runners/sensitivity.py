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

Everything runs through :func:`greenpath.runners.ensemble.run_many` on the vector
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
[--exclude NAMES] [--seed S] --out DIR [--force]`` (:mod:`greenpath.cli.commands.sensitivity`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.runners import ensemble

__all__ = [
    "CHUNK",
    "FACTOR_SETS",
    "METHODS",
    "OUTCOMES",
    "OUTCOME_FORMS",
    "Outcome",
    "SensitivityResult",
    "base_settings",
    "factor_label",
    "factor_ranges",
    "held_factors",
    "model_evaluator",
    "morris_chart",
    "morris_indices",
    "outcome_values",
    "parse_outcome",
    "reading_guide",
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
START_YEAR = "policy_start_year"


@dataclass(frozen=True)
class Outcome:
    """An outcome of a run, computed from yearly arrays."""

    name: str
    label: str
    unit: str
    columns: tuple[str, ...]
    compute: Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]
    label_zh: str = ""

    def text(self, lang: str = "en") -> str:
        """Return the outcome's label in ``lang`` (``en`` or ``zh``)."""
        return self.label_zh if lang == "zh" and self.label_zh else self.label


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
                _change_2025("total_coal_consumption"), "2025年煤炭消费较2020年变化"),
        Outcome("energy_intensity_change_2025", "Energy intensity 2025 vs 2020", "fraction",
                ("energy_intensity",), _change_2025("energy_intensity"), "2025年单位GDP能耗较2020年变化"),
        Outcome("co2_peak_year", "CO2 peak year (2020-2035)", "year", ("co2_emissions",), _peak_year,
                "二氧化碳排放达峰年份(2020-2035)"),
        Outcome("co2_cumulative_2021_2035", "Cumulative CO2 2021-2035", "MtCO2", ("co2_emissions",),
                _cumulative, "2021-2035年累计二氧化碳排放"),
    )
}
OUTCOME_COLUMNS = sorted({c for o in OUTCOMES.values() for c in o.columns})
#: The forms ``--outcome`` accepts besides the names of :data:`OUTCOMES`.
OUTCOME_FORMS = ("VAR@YEAR", "cumulative:VAR:YEAR-YEAR", "change:VAR@YEAR", "peak_year:VAR")


def _model_variables() -> dict[str, str]:
    """Model outputs (stocks and auxiliaries) and their units."""
    from greenpath.model.mdl import parse_mdl

    return {v.name: v.unit for v in parse_mdl() if v.kind not in ("lookup", "control", "time")}


def _var_label(name: str, lang: str) -> str:
    from greenpath.i18n import t_or

    return t_or(f"var_{name}", lang, name)


def parse_outcome(spec: str) -> Outcome:
    """Turn an outcome spec into an :class:`Outcome`.

    Parameters
    ----------
    spec
        A name of :data:`OUTCOMES`, or ``VAR@YEAR`` (the value of a model variable in a
        year), ``cumulative:VAR:Y1-Y2`` (its sum over the years Y1 to Y2, inclusive),
        ``change:VAR@YEAR`` (relative change vs 2020, a fraction) or ``peak_year:VAR``
        (year of its maximum from 2020 on).

    Returns
    -------
    Outcome
        Named by ``spec``, with bilingual labels (``var_<name>`` strings) and unit.
    """
    from greenpath.scenarios.scenario import YEAR_MAX, YEAR_MIN

    spec = spec.strip()
    if spec in OUTCOMES:
        return OUTCOMES[spec]
    allowed = f"allowed: {', '.join(OUTCOMES)}, or {', '.join(OUTCOME_FORMS)}"
    variables = _model_variables()

    def variable(name: str) -> str:
        if name not in variables:
            raise ensemble.EnsembleError(
                f"outcome {spec!r}: unknown variable {name!r}{reg.suggest(name, variables)}; "
                "`greenpath vars` lists them")
        return name

    def year(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ensemble.EnsembleError(f"outcome {spec!r}: {text!r} is not a year; {allowed}") from None
        if not YEAR_MIN <= value <= YEAR_MAX:
            raise ensemble.EnsembleError(
                f"outcome {spec!r}: year {value} outside the simulated {YEAR_MIN}-{YEAR_MAX}")
        return value

    kind, _, rest = spec.partition(":") if ":" in spec else ("at", "", spec)
    if kind == "at" and "@" in rest:
        name, _, y = rest.partition("@")
        var, yr = variable(name), year(y)

        def at(values, years, var=var, yr=yr):
            return values[var][:, _year_index(years, yr)]

        return Outcome(spec, f"{_var_label(var, 'en')} {yr}", variables[var], (var,), at,
                       f"{yr}年{_var_label(var, 'zh')}")
    if kind == "cumulative":
        name, _, span = rest.partition(":")
        first, _, last = span.partition("-")
        var, y1, y2 = variable(name), year(first), year(last)
        if y2 < y1:
            raise ensemble.EnsembleError(f"outcome {spec!r}: the years {y1}-{y2} run backwards")

        def cum(values, years, var=var, y1=y1, y2=y2):
            mask = (years >= y1) & (years <= y2)
            return values[var][:, mask].sum(axis=1)

        unit = variables[var].removesuffix("/Year").removesuffix("/year")
        return Outcome(spec, f"Cumulative {_var_label(var, 'en')} {y1}-{y2}", unit, (var,), cum,
                       f"{y1}-{y2}年累计{_var_label(var, 'zh')}")
    if kind == "change" and "@" in rest:
        name, _, y = rest.partition("@")
        var, yr = variable(name), year(y)
        return Outcome(spec, f"{_var_label(var, 'en')} {yr} vs {indicators.BASE_YEAR}", "fraction",
                       (var,), _change(var, yr),
                       f"{yr}年{_var_label(var, 'zh')}较{indicators.BASE_YEAR}年变化")
    if kind == "peak_year" and rest:
        var = variable(rest)

        def peak(values, years, var=var):
            mask = years >= indicators.BASE_YEAR
            # the peak rule of indicators.peak (a rebound after the maximum is not a peak)
            return indicators.peak_years(values[var][:, mask], years[mask])

        return Outcome(spec, f"Peak year of {_var_label(var, 'en')}", "year", (var,), peak,
                       f"{_var_label(var, 'zh')}峰值年份")
    raise ensemble.EnsembleError(f"outcome {spec!r}: not understood; {allowed}")


def _change(column: str, year: int) -> Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]:
    def compute(values: Mapping[str, np.ndarray], years: np.ndarray) -> np.ndarray:
        arr = values[column]
        return arr[:, _year_index(years, year)] / arr[:, _year_index(years, indicators.BASE_YEAR)] - 1.0

    return compute


def _outcomes(outcomes: Sequence[str | Outcome] | None) -> dict[str, Outcome]:
    if not outcomes:
        return dict(OUTCOMES)
    chosen = [o if isinstance(o, Outcome) else parse_outcome(o) for o in outcomes]
    out = {o.name: o for o in chosen}
    if len(out) != len(chosen):
        raise ensemble.EnsembleError(f"outcomes: one is given twice in {[o.name for o in chosen]}")
    return out


def outcome_values(values: Mapping[str, np.ndarray], years: np.ndarray,
                   outcomes: Mapping[str, Outcome] | None = None) -> pd.DataFrame:
    """Compute the outcomes of every run.

    Parameters
    ----------
    values
        ``variable -> array (n, len(years))`` holding the outcomes' columns.
    years
        The saved years.
    outcomes
        Name -> :class:`Outcome` (default :data:`OUTCOMES`).

    Returns
    -------
    pandas.DataFrame
        One row per run, one column per outcome.
    """
    years = np.asarray(years)
    chosen = OUTCOMES if outcomes is None else outcomes
    return pd.DataFrame({name: o.compute(values, years) for name, o in chosen.items()})


def factor_ranges(which: str | Sequence[str] = "all") -> dict[str, tuple[float, float]]:
    """Registry ranges of the factors of an analysis.

    Parameters
    ----------
    which
        ``"all"`` (levers and uncertainties), ``"levers"``, ``"uncertainties"``,
        ``"projection"`` (levers and :func:`greenpath.runners.ensemble.projection_uncertainties`)
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
    from greenpath.scenarios import scenario as scenarios

    sc = scenarios.load(scenario)
    return dict(sc.params), dict(sc.tables)


def model_evaluator(
    base_params: Mapping[str, float] | None = None,
    tables: Mapping[str, tuple] | None = None,
    chunk: int = CHUNK,
    outcomes: Mapping[str, Outcome] | None = None,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """``evaluate(X) -> outcomes`` running the model on the vector engine (``engine="auto"``: PySD if it fails).

    Columns of ``X`` override ``base_params``; a varied lever's year table in
    ``tables`` is dropped (the sampled constant replaces it).  ``outcomes``
    defaults to :data:`OUTCOMES`.
    """
    base = dict(base_params or {})
    tables = dict(tables or {})
    chosen = dict(OUTCOMES if outcomes is None else outcomes)
    columns = sorted({c for o in chosen.values() for c in o.columns})

    def evaluate(x: pd.DataFrame) -> pd.DataFrame:
        kept = {k: v for k, v in tables.items() if k not in x.columns}
        parts = []
        for lo in range(0, len(x), chunk):
            part = x.iloc[lo:lo + chunk].reset_index(drop=True)
            frame = pd.DataFrame({k: v for k, v in base.items() if k not in part.columns and k not in kept},
                                 index=part.index)
            frame = pd.concat([frame, part], axis=1)
            result = ensemble.run_many(frame, columns, engine="auto", time_varying=kept or None,
                                       output="arrays")
            parts.append(outcome_values(result.values, result.years, chosen))
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
    """Tables of a sensitivity analysis and what produced them.

    ``sobol_factors`` maps each outcome to the factors of its Sobol stage (the
    outcome's own Morris leaders; every factor with ``method="sobol"``).
    """

    table: pd.DataFrame
    morris: pd.DataFrame | None
    sobol: pd.DataFrame | None
    sobol_factors: dict[str, list[str]]
    meta: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=lambda: dict(OUTCOMES))


def held_factors(scenario: str | None, ranges: Mapping[str, tuple[float, float]],
                 vary_start_year: bool = False, vary_scenario_levers: bool = False) -> dict[str, str]:
    """Factors a scenario analysis holds at the scenario's setting, with the reason.

    With a scenario, ``policy_start_year`` is held (its range 2021-2030 would
    dominate the outcomes of a plan already under way) unless ``vary_start_year``;
    and so is every lever the scenario (or a parent) sets, unless
    ``vary_scenario_levers``: re-sampling the plan's own levers over their full
    ranges would answer a question about other plans.  Without a scenario nothing
    is held.
    """
    if scenario is None:
        return {}
    from greenpath.scenarios import scenario as scenarios

    held: dict[str, str] = {}
    if not vary_start_year and START_YEAR in ranges:
        held[START_YEAR] = "policy start year held (--vary-start-year to vary it)"
    if not vary_scenario_levers:
        sc = scenarios.load(scenario)
        registry = reg.load_registry()
        for name in sc.settings():
            if (name in ranges and name not in held and registry[name].kind == "lever"
                    and not (name == START_YEAR and vary_start_year)):
                held[name] = f"set by {sc.name} (--vary-scenario-levers to vary it)"
    return held


def run_sensitivity(
    scenario: str | None = None,
    method: Literal["morris", "sobol", "both"] = "both",
    n: int = 1024,
    trajectories: int = 20,
    top: int = 12,
    seed: int = ensemble.DEFAULT_SEED,
    factors: str | Sequence[str] = "all",
    exclude: Sequence[str] = (),
    outcomes: Sequence[str | Outcome] | None = None,
    vary_start_year: bool = False,
    vary_scenario_levers: bool = False,
) -> SensitivityResult:
    """Morris screening and/or Sobol indices of the outcomes.

    Parameters
    ----------
    scenario
        Scenario whose settings hold the factors not varied (default: the
        effective defaults).
    method
        ``"morris"``, ``"sobol"`` (every factor) or ``"both"`` (Sobol per outcome on
        that outcome's ``top`` factors of the Morris stage).
    n
        Sobol base sample size (power of 2).
    trajectories
        Morris trajectories.
    top
        Factors passed from Morris to Sobol, per outcome.
    seed
        Seed of every sample and bootstrap.
    factors
        See :func:`factor_ranges`.
    exclude
        Factors held at the scenario's setting instead.
    outcomes
        Outcome names or specs (:func:`parse_outcome`); default :data:`OUTCOMES`.
    vary_start_year, vary_scenario_levers
        See :func:`held_factors` (only with a scenario and a named factor set: a
        factor listed by name is always varied).

    Returns
    -------
    SensitivityResult
        ``table``: one row per (outcome, factor) with the Morris and Sobol
        columns and bilingual labels, sorted by outcome and by ``ST`` then ``mu_star``.
    """
    if method not in METHODS:
        raise ensemble.EnsembleError(f"method {method!r} is not one of {', '.join(METHODS)}")
    started = time.perf_counter()
    chosen = _outcomes(outcomes)
    ranges = factor_ranges(factors)
    for name in exclude:
        ensemble._check_name(name, "exclude")
        if name not in ranges:
            raise ensemble.EnsembleError(f"exclude: {name!r} is not among the factors {factors!r}")
        del ranges[name]
    held = held_factors(scenario, ranges, vary_start_year, vary_scenario_levers) \
        if isinstance(factors, str) else {}
    for name in held:
        del ranges[name]
    if not ranges:
        raise ensemble.EnsembleError("exclude: no factor left to analyse")
    params, tables = base_settings(scenario)
    evaluate = model_evaluator(params, tables, outcomes=chosen)
    morris = sobol = None
    sobol_factors: dict[str, list[str]] = {}
    runs = 0
    if method in ("morris", "both"):
        morris = morris_indices(ranges, evaluate, trajectories=trajectories, seed=seed)
        runs += morris.attrs["runs"]
    if method == "sobol":
        sobol = sobol_indices(ranges, evaluate, n=n, seed=seed)
        sobol_factors = {o: list(ranges) for o in chosen}
        runs += sobol.attrs["runs"]
    elif method == "both":
        # Each outcome gets its own leaders; outcomes that share a set share the runs.
        for o in chosen:
            picked = select_top(morris[morris["outcome"] == o], top)  # type: ignore[index]
            sobol_factors[o] = picked or list(ranges)[:top]
        parts = []
        for group in dict.fromkeys(tuple(f) for f in sobol_factors.values()):
            names = [o for o, f in sobol_factors.items() if tuple(f) == group]
            part = sobol_indices({f: ranges[f] for f in group}, evaluate, n=n, seed=seed)
            runs += part.attrs["runs"]
            parts.append(part[part["outcome"].isin(names)])
        sobol = pd.concat(parts, ignore_index=True)
    table = _combine(ranges, morris, sobol, chosen)
    from greenpath.model.mdl import model_hash

    meta = {
        "scenario": scenario or "defaults", "method": method, "n": n, "trajectories": trajectories,
        "top": top, "seed": seed, "factors": factors if isinstance(factors, str) else list(factors),
        "excluded": list(exclude), "held": held,
        "n_factors": len(ranges), "sobol_factors": sobol_factors, "runs": runs,
        "seconds": round(time.perf_counter() - started, 3), "engine": "vector",
        "model_sha256": model_hash(), "calibration_sha256_12": reg.calibration_id(),
        "outcomes": {k: {"label": o.label, "label_zh": o.label_zh, "unit": o.unit}
                     for k, o in chosen.items()},
        "morris_levels": MORRIS_LEVELS, "conf_level": CONF_LEVEL, "num_resamples": NUM_RESAMPLES,
    }
    return SensitivityResult(table=table, morris=morris, sobol=sobol, sobol_factors=sobol_factors,
                             meta=meta, outcomes=chosen)


def factor_label(name: str, lang: str = "en") -> str:
    """Return a factor's label from the registry (``label_en`` / ``label_zh``), else its name.

    Every registry row has both labels (``tests/model/test_registry_labels.py``); the name
    stands in only for a factor the registry does not know.
    """
    p = reg.load_registry().get(name)
    if p is None:
        return name
    label = p.label_zh if lang == "zh" else p.label_en
    return label or name


def _combine(ranges, morris: pd.DataFrame | None, sobol: pd.DataFrame | None,
             outcomes: Mapping[str, Outcome] | None = None) -> pd.DataFrame:
    registry = reg.load_registry()
    chosen = dict(OUTCOMES if outcomes is None else outcomes)
    keys = [(o, f) for o in chosen for f in ranges]
    table = pd.DataFrame(keys, columns=["outcome", "factor"])
    table["kind"] = [registry[f].kind for f in table["factor"]]
    table["factor_unit"] = [registry[f].unit for f in table["factor"]]
    table["outcome_unit"] = [chosen[o].unit for o in table["outcome"]]
    table["factor_label_en"] = [factor_label(f, "en") for f in table["factor"]]
    table["factor_label_zh"] = [factor_label(f, "zh") for f in table["factor"]]
    table["outcome_label_en"] = [chosen[o].text("en") for o in table["outcome"]]
    table["outcome_label_zh"] = [chosen[o].text("zh") for o in table["outcome"]]
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
    # A negative S1 is estimation noise around zero when its interval reaches zero.
    negative = table["S1"] < 0
    noise = negative & (table["S1"] + table["S1_conf"] >= 0)
    table.loc[noise & (table["note"] == ""), "note"] = "S1<0: noise, read as 0"
    table.loc[negative & ~noise & (table["note"] == ""), "note"] = "S1<0 beyond its interval: raise --n"
    table["morris_rank"] = table.groupby("outcome")["mu_star"].rank(ascending=False, method="min")
    table["sobol_rank"] = table.groupby("outcome")["ST"].rank(ascending=False, method="min")
    order = {o: i for i, o in enumerate(chosen)}
    table = table.assign(_o=table["outcome"].map(order)).sort_values(
        ["_o", "ST", "mu_star"], ascending=[True, False, False], na_position="last", kind="stable"
    ).drop(columns="_o")
    return table[["outcome", "factor", "kind", *cols, "morris_rank", "sobol_rank", "note", "factor_unit",
                  "outcome_unit", "factor_label_en", "factor_label_zh", "outcome_label_en",
                  "outcome_label_zh"]].reset_index(drop=True)


def reading_guide(lang: str = "en") -> str:
    """Return the short guide to reading mu*, sigma, S1 and ST printed with every analysis."""
    from greenpath.i18n import t

    return t("sens_guide", lang)


# ---------------------------------------------------------------------------
# Charts (matplotlib Figure on the Agg canvas; no pyplot state)
# ---------------------------------------------------------------------------


def _figure(footer: str, panels: int = 4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from greenpath.outputs.charts import constrained_layout, register_font

    register_font()
    cols = 1 if panels == 1 else 2
    rows = -(-panels // cols)
    fig = Figure(figsize=(14, 5 * rows), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[panels:]:
        ax.set_visible(False)
    constrained_layout(fig).set(h_pad=0.15, rect=(0, 0.02, 1, 0.98))  # room for the footer
    fig.text(0.01, 0.003, footer, fontsize=8, color="#555555", ha="left", va="bottom")
    return fig, axes[:panels]


def _font(lang: str) -> dict:
    from greenpath.outputs.charts import FONT_NAME

    return {"fontfamily": [FONT_NAME, "DejaVu Sans"]} if lang == "zh" else {}


def morris_chart(morris: pd.DataFrame, footer: str = "", show: int = 15,
                 outcomes: Mapping[str, Outcome] | None = None, lang: str = "en"):
    """Horizontal bars of ``mu_star`` (with its 95 % interval) per outcome, top ``show`` factors."""
    from greenpath.i18n import t

    chosen = dict(OUTCOMES if outcomes is None else outcomes)
    fig, axes = _figure(footer, len(chosen))
    font = _font(lang)
    for ax, (name, o) in zip(axes, chosen.items(), strict=True):
        d = morris[morris["outcome"] == name].dropna(subset=["mu_star"])
        d = d.sort_values("mu_star", ascending=False).head(show).iloc[::-1]
        ax.barh(np.arange(len(d)), d["mu_star"], xerr=d["mu_star_conf"], color="#0072b2",
                ecolor="#333333", capsize=2)
        ax.set_yticks(np.arange(len(d)), [factor_label(f, lang) for f in d["factor"]], fontsize=8, **font)
        ax.set_title(o.text(lang), fontsize=12, **font)
        ax.set_xlabel(t("sens_morris_axis", lang, unit=o.unit), fontsize=10, **font)
        ax.tick_params(axis="x", labelsize=8)
        if d.empty:
            ax.text(0.5, 0.5, t("sens_constant", lang), transform=ax.transAxes, ha="center", **font)
    fig.suptitle(t("sens_morris_title", lang), fontsize=13, **font)
    return fig


def sobol_chart(sobol: pd.DataFrame, footer: str = "", show: int = 15,
                outcomes: Mapping[str, Outcome] | None = None, lang: str = "en"):
    """Paired bars of first-order ``S1`` and total ``ST`` Sobol indices with 95 % intervals."""
    from greenpath.i18n import t

    chosen = dict(OUTCOMES if outcomes is None else outcomes)
    fig, axes = _figure(footer, len(chosen))
    font = _font(lang)
    for ax, (name, o) in zip(axes, chosen.items(), strict=True):
        d = sobol[sobol["outcome"] == name].dropna(subset=["ST"])
        d = d.sort_values("ST", ascending=False).head(show).iloc[::-1]
        pos = np.arange(len(d))
        ax.barh(pos + 0.2, d["ST"], height=0.4, xerr=d["ST_conf"], color="#d55e00",
                label=t("sens_st", lang), ecolor="#333333", capsize=2)
        ax.barh(pos - 0.2, d["S1"], height=0.4, xerr=d["S1_conf"], color="#0072b2",
                label=t("sens_s1", lang), ecolor="#333333", capsize=2)
        ax.set_yticks(pos, [factor_label(f, lang) for f in d["factor"]], fontsize=8, **font)
        ax.set_title(o.text(lang), fontsize=12, **font)
        ax.set_xlabel(t("sens_sobol_axis", lang), fontsize=10, **font)
        ax.tick_params(axis="x", labelsize=8)
        ax.axvline(0, color="#999999", linewidth=0.8)
        ax.legend(fontsize=8, loc="lower right", prop={"family": font["fontfamily"]} if font else None)
        if d.empty:
            ax.text(0.5, 0.5, t("sens_constant", lang), transform=ax.transAxes, ha="center", **font)
    fig.suptitle(t("sens_sobol_title", lang), fontsize=13, **font)
    return fig
