"""Costs and co-benefits of a scenario against the baseline.

The costs and air pollutants themselves are model variables (the last section of
``model/jiaozuo.mdl``: ``total_energy_system_cost`` and its parts, ``so2_emissions``,
``premature_deaths_from_air_pollutants``, ...), so every engine, batch and check sees
them.  This module turns them into the numbers a planning meeting asks for:

* **net present cost (NPC) vs the baseline**: the yearly change of the energy
  system's cost over 2021-2035, discounted to 2021, less the change of the capital
  value left in the assets at the end of 2035 (so a plant built in 2034 is not
  charged in full for a horizon it barely serves);
* **cost per tonne by lever group**: each group's NPC and cumulative CO2 reduction
  are its Shapley values (the method of :mod:`greenpath.runners.wedges`: every order of switching
  the groups on, averaged), so the groups add up exactly to the total; the cost per
  tonne is their ratio, and the groups sorted by it are the marginal abatement cost
  (MAC) curve;
* **air pollutants and health**: the change of SO2, NOx and primary PM2.5 by sector
  and the premature deaths avoided;
* **uncertainty**: a Latin-hypercube Monte Carlo over the registry's cost, price,
  emission-factor and health ranges (groups ``costs`` and ``air pollution``); every
  sample runs every coalition, so P10-P90 of each group's cost per tonne are exact
  Shapley values of that sample.  The inputs that drive each result are ranked by
  Spearman's rank correlation over the samples.

Years.  The model saves at year-ends; a flow saved at year-end ``y`` is evaluated
with ``data year = y + 1`` (the model's own convention: flows during ``(y-1, y]``
belong to year ``y``), so the flows of calendar year ``Y`` are read from row
``Y - 1``.  Costs and reductions of 2021-2035 are rows 2020-2034; the capital value
left is the stock at year-end 2035.

Discounting.  ``NPC = sum_{Y=2021}^{2035} dC(Y) / (1 + r)^(Y - 2021) - dK / (1 + r)^15``
with ``dC`` the change of ``total_energy_system_cost`` (100m CNY a year, constant
2021 CNY) and ``dK`` the change of ``undepreciated_capital`` at year-end 2035.
Headline rate: China's social discount rate of 8% (建设项目经济评价方法与参数, 3rd ed.);
sensitivity: 6% (SL 72-2013, public-interest water projects) and 3.18% (EPS-China's
real cost of electricity-sector capital); all in ``calibration/data/cost_parameters.csv``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath.model import registry as reg
from greenpath.runners.wedges import UNCERTAINTY_GROUP, _coalition_settings, _resolve, differences
from greenpath.scenarios import scenario as scenarios

FIRST_YEAR = 2021
LAST_YEAR = 2035
#: Discount rates (name -> rate); the first is the headline.
DISCOUNT_RATES = {"social 8%": 0.08, "water projects 6%": 0.06, "real WACC 3.18%": 0.031754348}
HEADLINE_RATE = "social 8%"
#: Registry groups whose uncertainties the cost Monte Carlo samples.
COST_GROUPS = ("costs", "air pollution")
DEFAULT_SAMPLES = 200
DEFAULT_SEED = 19
COST_VARIABLE = "total_energy_system_cost"
RESIDUAL_VARIABLE = "undepreciated_capital"
CO2_VARIABLES = {"including_imports": "co2_including_imports", "territorial": "co2_emissions"}
#: Yearly cost parts (their sum is ``total_energy_system_cost``).
COST_PARTS = ("energy_supply_costs", "industry_costs", "fuel_switching_costs",
              "buildings_costs", "transport_costs", "energy_purchase_cost")
#: Capital by payer (their sum is ``capital_spending``).
PAYERS = ("government_capital_spending", "household_capital_spending",
          "enterprise_capital_spending")
POLLUTANTS = ("so2_emissions", "nox_emissions", "pm25_emissions")
SECTORS = ("power", "industry_and_heat", "buildings_and_farms", "transport", "other_oil_use")
DEATHS = "premature_deaths_from_air_pollutants"
#: Cost and pollutant outputs a batch writes by default (see greenpath.runners.batch).
BATCH_VARIABLES = ("total_energy_system_cost", "energy_purchase_cost", "capital_spending",
                   "undepreciated_capital", *POLLUTANTS, DEATHS)
#: Below this cumulative CO2 reduction (Mt) a group's cost per tonne is not shown.
MIN_REDUCTION_MT = 0.05


MAX_PLAYERS = 10


class CostError(ValueError):
    """A cost analysis that cannot be made as asked."""


def lever_groups() -> list[str]:
    """Lever groups in registry order (the players of the Shapley split)."""
    return list(dict.fromkeys(p.group for p in reg.levers().values()))


def years() -> np.ndarray:
    """Calendar years of the analysis (2021-2035)."""
    return np.arange(FIRST_YEAR, LAST_YEAR + 1)


def discount_factors(rate: float, yrs: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``(1 + rate)^-(Y - 2021)`` for each year ``Y``."""
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > -1):
        raise CostError(f"discount rate {rate!r}: give a number above -1 (0.08 = 8%)")
    y = years() if yrs is None else np.asarray(yrs)
    return (1.0 + rate) ** -(y - FIRST_YEAR).astype(float)


def net_present_cost(delta_cost: np.ndarray, delta_residual: np.ndarray | float,
                     rate: float) -> np.ndarray:
    """Net present cost of yearly cost changes and the change of capital left at the end.

    Parameters
    ----------
    delta_cost
        Cost change of each year 2021-2035 on the last axis (100m CNY a year).
    delta_residual
        Change of the capital value left at year-end 2035 (100m CNY), credited at
        ``(1 + rate)^-15``.
    rate
        Discount rate (0.08 = 8%).
    """
    d = discount_factors(rate)
    return (np.asarray(delta_cost) * d).sum(axis=-1) - \
        np.asarray(delta_residual) / (1.0 + rate) ** (LAST_YEAR + 1 - FIRST_YEAR)


def cost_uncertainties(exclude: Sequence[str] = ()) -> list[str]:
    """Registry uncertainties of the cost and air-pollution groups (with a range)."""
    return [k for k, p in reg.uncertainties().items()
            if p.group in COST_GROUPS and p.max > p.min and k not in exclude]


def shapley_weights(n: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Coalitions (as index tuples) and the matrix ``W`` with ``phi = W @ v(coalitions)``.

    ``phi_i = sum_{S not containing i} |S|!(n-|S|-1)!/n! (v(S+i) - v(S))``.
    """
    coalitions = [c for r in range(n + 1) for c in itertools.combinations(range(n), r)]
    index = {frozenset(c): j for j, c in enumerate(coalitions)}
    w = np.zeros((n, len(coalitions)))
    for i in range(n):
        others = [p for p in range(n) if p != i]
        for r in range(len(others) + 1):
            weight = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
            for c in itertools.combinations(others, r):
                s = frozenset(c)
                w[i, index[s | {i}]] += weight
                w[i, index[s]] -= weight
    return coalitions, w


def _ranks(a: np.ndarray) -> np.ndarray:
    order = a.argsort(axis=0, kind="stable")
    ranks = np.empty_like(order, dtype=float)
    rows = np.arange(a.shape[0])[:, None] if a.ndim > 1 else np.arange(a.shape[0])
    if a.ndim == 1:
        ranks[order] = rows
    else:
        np.put_along_axis(ranks, order, np.broadcast_to(rows, a.shape).astype(float), axis=0)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each column of ``x`` (n x k) with ``y`` (n)."""
    rx, ry = _ranks(x), _ranks(y)
    rx = rx - rx.mean(axis=0)
    ry = ry - ry.mean()
    den = np.sqrt((rx ** 2).sum(axis=0) * (ry ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry[:, None]).sum(axis=0) / den, 0.0)


@dataclass
class CostReport:
    """What :func:`analyse` found; every table in constant 2021 CNY unless said.

    Attributes
    ----------
    npc
        Rows per discount rate: ``rate_name, rate, central, p10, p50, p90`` (100m CNY).
    groups
        Rows per lever group (Shapley): ``group, npc, co2_reduction_mt, cost_per_t``
        (central, CNY/tCO2) and ``npc_p10, npc_p90, cost_per_t_p10, cost_per_t_p50,
        cost_per_t_p90``; a ``total`` row last.
    yearly
        Central run, per year 2021-2035 and cost part or payer: ``year, item,
        baseline, scenario, change`` (100m CNY a year).
    group_yearly
        Shapley split of the yearly cost change: ``year, group, change``.
    pollutants
        ``pollutant, sector, year, baseline, scenario, reduction`` (t a year, central).
    health
        ``measure, central, p10, p50, p90``: deaths avoided in 2025, 2030, 2035 and in
        total 2021-2035, and the cumulative SO2, NOx and PM2.5 reductions (t).
    drivers
        ``output, input, label_en, label_zh, rho``: the three inputs with the largest
        rank correlation with each headline output.
    attrs
        scenario, baseline, players, samples, seed, co2 variable, runs, rates.
    """

    npc: pd.DataFrame
    groups: pd.DataFrame
    yearly: pd.DataFrame
    group_yearly: pd.DataFrame
    pollutants: pd.DataFrame
    health: pd.DataFrame
    drivers: pd.DataFrame
    attrs: dict = field(default_factory=dict)

    def mac_curve(self) -> pd.DataFrame:
        """MAC curve data: groups with a CO2 reduction, cheapest first.

        Columns ``group, cost_per_t, co2_reduction_mt, start_mt, end_mt, npc`` and the
        P10/P90 of the cost per tonne: each group is a bar from ``start_mt`` to
        ``end_mt`` (its cumulative reduction) at the height of its cost per tonne.
        """
        g = self.groups[(self.groups["group"] != "total")
                        & (self.groups["co2_reduction_mt"] > MIN_REDUCTION_MT)].copy()
        g = g.sort_values("cost_per_t", kind="stable").reset_index(drop=True)
        g["end_mt"] = g["co2_reduction_mt"].cumsum()
        g["start_mt"] = g["end_mt"] - g["co2_reduction_mt"]
        return g[["group", "cost_per_t", "cost_per_t_p10", "cost_per_t_p90",
                  "co2_reduction_mt", "start_mt", "end_mt", "npc"]]


def _settings(base: scenarios.Scenario, changes: dict[str, dict], members: Sequence[str],
              sample: dict[str, float]) -> tuple[dict, dict]:
    """Return the settings of one coalition (as in the wedges) with one cost sample on top."""
    params, tables = _coalition_settings(base, changes, members)
    params.update(sample)
    return params, tables


def _pct(a: np.ndarray, q: float) -> np.ndarray:
    return np.percentile(a, q, axis=0)


def analyse(scenario: str | Path | scenarios.Scenario, *,
            baseline: str | Path | scenarios.Scenario = "baseline",
            samples: int = DEFAULT_SAMPLES, seed: int = DEFAULT_SEED,
            co2: str = "including_imports", engine: str = "auto") -> CostReport:
    """Net present cost, cost per tonne by lever group, pollutants and health of a scenario.

    Parameters
    ----------
    scenario, baseline
        Names, files or loaded scenarios.
    samples
        Monte Carlo samples over the cost and air-pollution ranges (0: central
        values only).
    seed
        Seed of the Latin hypercube.
    co2
        ``"including_imports"`` (default: the boundary on which local renewables and
        electricity savings cut CO2, matching the energy bill's electricity
        imports) or ``"territorial"``.
    engine
        As :func:`greenpath.runners.batch.run_chunk`.
    """
    from greenpath.runners import batch
    from greenpath.runners.ensemble import sample_parameters

    if co2 not in CO2_VARIABLES:
        raise CostError(f"co2 {co2!r}: give one of {', '.join(CO2_VARIABLES)}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise CostError(f"samples = {samples!r}: give a whole number, 0 or more")
    co2_var = CO2_VARIABLES[co2]
    scen, base = _resolve(scenario), _resolve(baseline)
    changes = differences(scen, base)
    groups = lever_groups()
    all_groups = groups + ([UNCERTAINTY_GROUP] if UNCERTAINTY_GROUP in changes else [])
    players = [g for g in all_groups if g in changes]
    if len(players) > MAX_PLAYERS:
        raise CostError(f"{len(players)} lever groups need 2^{len(players)} runs per sample")
    set_by_scenario = set(scen.settings()) | set(base.settings())
    names = cost_uncertainties(exclude=sorted(set_by_scenario))
    defaults = reg.effective_defaults()
    central = {k: defaults[k] for k in names}
    draws = [central]
    sample_frame = pd.DataFrame([central])
    if samples:
        sample_frame = pd.concat([sample_frame, sample_parameters(names, samples, seed)],
                                 ignore_index=True)
        draws = sample_frame.to_dict("records")
    coalitions, w = shapley_weights(len(players))
    columns = list(dict.fromkeys([COST_VARIABLE, RESIDUAL_VARIABLE, co2_var, *COST_PARTS,
                                  *PAYERS, *POLLUTANTS, DEATHS,
                                  *[f"{p.replace('_emissions', '')}_{s}"
                                    for p in POLLUTANTS for s in SECTORS]]))
    specs = []
    for i, draw in enumerate(draws):
        for j, c in enumerate(coalitions):
            params, tables = _settings(base, changes, [players[k] for k in c], draw)
            specs.append(batch.RunSpec(i * len(coalitions) + j, f"s{i}c{j}", params, tables))
    values, year_index = _run(specs, columns, engine)
    n_draw, n_coal = len(draws), len(coalitions)

    def arr(var: str) -> np.ndarray:
        """values[draw, coalition, year-row] of one variable."""
        return values[var].reshape(n_draw, n_coal, len(year_index))

    flow_rows = np.searchsorted(year_index, years() - 1)
    end_row = int(np.searchsorted(year_index, LAST_YEAR))
    full = n_coal - 1  # the coalition of every player (last in the list)

    def flows(a: np.ndarray) -> np.ndarray:
        return a[..., flow_rows]

    cost, resid, co2v = arr(COST_VARIABLE), arr(RESIDUAL_VARIABLE), arr(co2_var)
    # Shapley values over the coalitions: [draw, group, year-row]
    phi_cost = np.einsum("gc,dcy->dgy", w, cost)
    phi_resid = np.einsum("gc,dc->dg", w, resid[..., end_row])
    phi_co2 = np.einsum("gc,dcy->dgy", w, co2v)
    d_cost = cost[:, full] - cost[:, 0]
    d_resid = resid[:, full, end_row] - resid[:, 0, end_row]
    d_co2 = co2v[:, full] - co2v[:, 0]

    rate = DISCOUNT_RATES[HEADLINE_RATE]
    npc_rows = []
    for name, r in DISCOUNT_RATES.items():
        v = net_present_cost(flows(d_cost), d_resid, r)
        npc_rows.append({"rate_name": name, "rate": r, "central": v[0],
                         **_spread(v[1:] if samples else v[:1])})
    npc = pd.DataFrame(npc_rows)

    g_npc = net_present_cost(flows(phi_cost), phi_resid, rate)          # [draw, group]
    g_red = -flows(phi_co2).sum(axis=-1)                                 # Mt, [draw, group]
    t_npc = net_present_cost(flows(d_cost), d_resid, rate)               # [draw]
    t_red = -flows(d_co2).sum(axis=-1)
    rows = []
    for k, g in enumerate([*players, "total"]):
        gn = g_npc[:, k] if g != "total" else t_npc
        gr = g_red[:, k] if g != "total" else t_red
        with np.errstate(divide="ignore", invalid="ignore"):
            cpt = np.where(np.abs(gr) > MIN_REDUCTION_MT, gn * 100.0 / gr, np.nan)
        mc = slice(1, None) if samples else slice(0, 1)
        rows.append({"group": g, "npc": gn[0], "co2_reduction_mt": gr[0], "cost_per_t": cpt[0],
                     "npc_p10": _pct(gn[mc], 10), "npc_p90": _pct(gn[mc], 90),
                     "co2_reduction_p10": _pct(gr[mc], 10), "co2_reduction_p90": _pct(gr[mc], 90),
                     "cost_per_t_p10": _nanpct(cpt[mc], 10), "cost_per_t_p50": _nanpct(cpt[mc], 50),
                     "cost_per_t_p90": _nanpct(cpt[mc], 90)})
    group_table = pd.DataFrame(rows)

    yrs = years()
    yearly_rows = []
    for var in [*COST_PARTS, COST_VARIABLE, *PAYERS]:
        a = flows(arr(var))
        for y, b, s in zip(yrs, a[0, 0], a[0, full], strict=True):
            yearly_rows.append({"year": int(y), "item": var, "baseline": b, "scenario": s,
                                "change": s - b})
    yearly = pd.DataFrame(yearly_rows)
    gy = flows(phi_cost)[0]
    group_yearly = pd.DataFrame([{"year": int(y), "group": g, "change": gy[k, i]}
                                 for k, g in enumerate(players) for i, y in enumerate(yrs)])

    pol_rows = []
    for p in POLLUTANTS:
        stem = p.replace("_emissions", "")
        for sector in [*SECTORS, "total"]:
            var = p if sector == "total" else f"{stem}_{sector}"
            a = flows(arr(var))
            for y, b, s in zip(yrs, a[0, 0], a[0, full], strict=True):
                pol_rows.append({"pollutant": p, "sector": sector, "year": int(y), "baseline": b,
                                 "scenario": s, "reduction": b - s})
    pollutants = pd.DataFrame(pol_rows)

    deaths = flows(arr(DEATHS))
    avoided = deaths[:, 0] - deaths[:, full]                              # [draw, year]
    health_rows = []
    for y in (2025, 2030, 2035):
        i = int(y - FIRST_YEAR)
        health_rows.append({"measure": f"deaths_avoided_{y}", "central": avoided[0, i],
                            **_spread(avoided[1:, i] if samples else avoided[:1, i])})
    tot = avoided.sum(axis=1)
    health_rows.append({"measure": "deaths_avoided_2021_2035", "central": tot[0],
                        **_spread(tot[1:] if samples else tot[:1])})
    for p in POLLUTANTS:
        a = flows(arr(p))
        red = (a[:, 0] - a[:, full]).sum(axis=1)
        health_rows.append({"measure": f"{p}_reduction_2021_2035", "central": red[0],
                            **_spread(red[1:] if samples else red[:1])})
    health = pd.DataFrame(health_rows)

    drivers = _drivers(sample_frame.iloc[1:] if samples else None, {
        "npc_total": t_npc[1:], "deaths_avoided_2021_2035": tot[1:],
        **{f"cost_per_t_{g}": g_npc[1:, k] * 100.0 / np.where(np.abs(g_red[1:, k]) > MIN_REDUCTION_MT,
                                                             g_red[1:, k], np.nan)
           for k, g in enumerate(players)},
    })
    attrs = {"scenario": scen.name, "baseline": base.name, "players": players,
             "samples": samples, "seed": seed, "co2": co2_var, "runs": len(specs),
             "rates": dict(DISCOUNT_RATES), "headline_rate": HEADLINE_RATE,
             "sampled": names}
    return CostReport(npc, group_table, yearly, group_yearly, pollutants, health, drivers, attrs)


def _run(specs: list, columns: list[str], engine: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run the specs; return ``variable -> (runs, years)`` arrays and the saved years.

    The vector engine gets every run in one call per year-table structure
    (:func:`greenpath.runners.ensemble.run_specs`); ``engine="pysd"``, or ``"auto"`` when the
    vector engine fails, goes through :func:`greenpath.runners.batch.run_chunk`.
    """
    from greenpath.runners import batch, ensemble

    if engine not in ("auto", "vector", "pysd"):
        raise CostError(f"engine {engine!r}: give auto, vector or pysd")
    if engine != "pysd":
        try:
            cube, yrs, cols = ensemble.run_specs(specs, columns)
        except Exception as exc:  # noqa: BLE001 - auto falls back to PySD, as batches do
            if engine == "vector":
                raise CostError(f"the vector engine failed: {exc}") from None
        else:
            if not np.isfinite(cube).all():
                raise CostError("a run gave a non-finite value")
            return {c: cube[:, :, j] for j, c in enumerate(cols)}, np.asarray(yrs, dtype=int)
    chunk = batch.run_chunk(specs, columns, engine="pysd", targets=[])
    failed = chunk.runs[chunk.runs["status"] != "ok"]
    if len(failed):
        raise CostError(f"a run failed: {failed['error'].iloc[0]}")
    res = chunk.results
    year_index = np.array(sorted(res["year"].unique()))
    wide = (res.pivot_table(index=["variable", "run_id"], columns="year", values="value")
            .reindex(columns=year_index))
    return ({v: wide.xs(v, level="variable").sort_index().to_numpy() for v in columns},
            year_index)


def _spread(v: np.ndarray) -> dict[str, float]:
    return {"p10": float(np.percentile(v, 10)), "p50": float(np.percentile(v, 50)),
            "p90": float(np.percentile(v, 90))}


def _nanpct(v: np.ndarray, q: float) -> float:
    v = v[np.isfinite(v)]
    return float(np.percentile(v, q)) if len(v) else float("nan")


def _drivers(inputs: pd.DataFrame | None, outputs: dict[str, np.ndarray], top: int = 3) -> pd.DataFrame:
    cols = ["output", "input", "label_en", "label_zh", "rho"]
    if inputs is None or len(inputs) < 10:
        return pd.DataFrame(columns=cols)
    registry = reg.load_registry()
    x = inputs.to_numpy(dtype=float)
    rows = []
    for out, y in outputs.items():
        ok = np.isfinite(y)
        if ok.sum() < 10:
            continue
        rho = spearman(x[ok], y[ok])
        for k in np.argsort(-np.abs(rho))[:top]:
            name = inputs.columns[k]
            p = registry[name]
            rows.append({"output": out, "input": name, "label_en": p.label_en,
                         "label_zh": p.label_zh, "rho": float(rho[k])})
    return pd.DataFrame(rows, columns=cols)
