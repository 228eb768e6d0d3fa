"""Policy attribution ("wedges"): each lever group's share of a scenario's reduction.

How much each lever group contributes to a scenario's CO2 (or coal) reduction against
the baseline, adding up exactly to the total.

Method
------
The players are the lever groups of the registry (``timing``, ``industry``, ``energy``,
``buildings``, ``transport``, ``energy supply``) in which the scenario's settings differ
from the baseline's, plus one player ``uncertainties`` when the scenario also changes
uncertain parameters.  For a coalition S of players, the model is run with the baseline's
settings and, for the groups in S only, the scenario's settings.  With
``v(S) = baseline(t) - run_S(t)`` (the reduction in year t, positive = less than the
baseline):

``shapley`` (default)
    Each group gets its Shapley value, the average of its marginal reduction over all
    orders in which the groups could be switched on:
    ``phi_i = sum over S not containing i of |S|! (n-|S|-1)! / n! * (v(S+i) - v(S))``.
    Needs 2^n runs (n <= 7 here: at most 128).  Interactions between groups are shared
    out symmetrically, so no "interaction" residual is left.
``sequential``
    Groups are switched on one after the other in a stated order (default: registry
    order); each gets the change its switch makes.  n + 1 runs; the result depends on
    the order.

Both add up exactly: the contributions of a year sum to ``v(all) - v(none)``, i.e.
``baseline - scenario`` (``v(none)`` is the baseline itself).  The timing group
(``policy_start_year``) is a player like the others: moving the start year changes when
every other group acts, and its Shapley value is the share of the reduction that the
timing itself brings.

Public API (stable; the app and the report call it)
---------------------------------------------------
``compute(scenario, variable="co2_emissions", *, baseline="baseline", method="shapley",
order=None, engine="auto") -> DataFrame``
    Columns ``year, group, contribution`` (variable's unit per year; positive = reduces
    the variable against the baseline); one row per year and lever group (groups the
    scenario does not change get 0), plus ``uncertainties`` when it is a player.
    ``DataFrame.attrs`` holds variable, unit, method, scenario, baseline, players, order,
    runs.
``compute_many(scenario, variables, ...) -> DataFrame``
    The same for several variables from the same runs, with a ``variable`` column.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from greenpath.model import registry as reg
from greenpath.scenarios import scenario as scenarios
from greenpath.scenarios import settings as st

UNCERTAINTY_GROUP = "uncertainties"
METHODS = ("shapley", "sequential")
MAX_PLAYERS = 10


class WedgeError(ValueError):
    """Attribution that cannot be computed as asked."""


def lever_groups() -> list[str]:
    """Lever groups in registry order."""
    return list(dict.fromkeys(p.group for p in reg.levers().values()))


def _group_of(name: str) -> str:
    p = reg.load_registry()[name]
    return p.group if p.kind == "lever" else UNCERTAINTY_GROUP


def _resolve(s: str | Path | scenarios.Scenario) -> scenarios.Scenario:
    return s if isinstance(s, scenarios.Scenario) else scenarios.load(s)


def differences(scenario: scenarios.Scenario, baseline: scenarios.Scenario) -> dict[str, dict]:
    """Return the settings of ``scenario`` that differ from ``baseline``, by group.

    Returns
    -------
    dict
        ``group -> {name: scenario's setting (float or (years, values))}``.
    """
    defaults = reg.effective_defaults()
    s_set, b_set = scenario.settings(), baseline.settings()
    out: dict[str, dict] = {}
    for name in sorted(set(s_set) | set(b_set)):
        mine = s_set.get(name, defaults[name])
        theirs = b_set.get(name, defaults[name])
        if not st.same(mine, theirs):
            out.setdefault(_group_of(name), {})[name] = mine
    return out


def _coalition_settings(baseline: scenarios.Scenario, changes: dict[str, dict],
                        members: Sequence[str]) -> tuple[dict, dict]:
    params, tables = dict(baseline.params), dict(baseline.tables)
    for group in members:
        for name, value in changes[group].items():
            if st.is_table(value):
                tables[name] = value
                params.pop(name, None)
            else:
                params[name] = float(value)
                tables.pop(name, None)
    return params, tables


def _run_all(settings: list[tuple[dict, dict]], columns: list[str],
             engine: str) -> list[pd.DataFrame]:
    from greenpath.runners import batch

    specs = [batch.RunSpec(i, f"coalition{i}", p, t) for i, (p, t) in enumerate(settings)]
    chunk = batch.run_chunk(specs, columns, engine=engine, targets=[])
    failed = chunk.runs[chunk.runs["status"] != "ok"]
    if len(failed):
        raise WedgeError(f"a coalition run failed: {failed['error'].iloc[0]}")
    res = chunk.results
    frames = []
    for i in range(len(specs)):
        part = res[res["run_id"] == i].pivot(index="year", columns="variable", values="value")
        frames.append(part[columns])
    return frames


def compute_many(scenario: str | Path | scenarios.Scenario, variables: Sequence[str], *,
                 baseline: str | Path | scenarios.Scenario = "baseline",
                 method: str = "shapley", order: Sequence[str] | None = None,
                 engine: str = "auto") -> pd.DataFrame:
    """Contributions of each lever group for several variables (one set of runs).

    Parameters
    ----------
    scenario, baseline
        Names, files or loaded scenarios.
    variables
        Model variables to attribute (e.g. ``co2_emissions``, ``total_coal_consumption``).
    method
        ``"shapley"`` or ``"sequential"`` (see the module docstring).
    order
        Group order for ``"sequential"`` (groups the scenario does not change may be left
        out; the changed ones must all be there).  Default: registry order.
    engine
        ``"auto"`` (default: the vector engine, all coalitions in one call, PySD if
        the vector engine fails), ``"vector"`` or ``"pysd"`` (the reference, one
        model per thread), as in :func:`greenpath.runners.batch.run_chunk`.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, year, group, contribution``.
    """
    if method not in METHODS:
        raise WedgeError(f"method {method!r} not one of {', '.join(METHODS)}"
                         f"{reg.suggest(method, METHODS)}")
    from greenpath.scenarios.targets import model_units

    units = model_units()
    variables = list(dict.fromkeys(variables))
    for v in variables:
        if v not in units:
            raise WedgeError(f"unknown variable {v!r}{reg.suggest(v, units)}; "
                             "`greenpath vars` lists them")
    scen, base = _resolve(scenario), _resolve(baseline)
    changes = differences(scen, base)
    groups = lever_groups()
    all_groups = groups + ([UNCERTAINTY_GROUP] if UNCERTAINTY_GROUP in changes else [])
    if order is not None:
        # "energy_supply" is accepted for the group "energy supply" (easier on a shell).
        order = [g if g in all_groups else g.replace("_", " ") for g in order]
        for g in order:
            if g not in all_groups:
                raise WedgeError(f"--order: unknown group {g!r}; allowed "
                                 f"{', '.join(all_groups)}{reg.suggest(g, all_groups)}")
        missing = [g for g in changes if g not in order]
        if missing:
            raise WedgeError(f"--order leaves out {', '.join(missing)}, which the scenario "
                             "changes; list every changed group")
        if method != "sequential":
            raise WedgeError("an order only applies to the sequential method")
    players = [g for g in (order or all_groups) if g in changes]
    if len(players) > MAX_PLAYERS:
        raise WedgeError(f"{len(players)} groups need 2^{len(players)} runs; use "
                         "method='sequential'")
    if method == "shapley":
        coalitions = [c for r in range(len(players) + 1)
                      for c in itertools.combinations(players, r)]
    else:
        coalitions = [tuple(players[:j]) for j in range(len(players) + 1)]
    frames = _run_all([_coalition_settings(base, changes, c) for c in coalitions],
                      variables, engine)
    values = {frozenset(c): f for c, f in zip(coalitions, frames, strict=True)}
    empty = values[frozenset()]
    reduction = {k: empty - f for k, f in values.items()}  # v(S) = baseline - run_S
    n = len(players)
    contrib: dict[str, pd.DataFrame] = {}
    if method == "shapley":
        for player in players:
            others = [p for p in players if p != player]
            total = empty * 0.0
            for r in range(len(others) + 1):
                weight = math.factorial(r) * math.factorial(n - r - 1) / math.factorial(n)
                for c in itertools.combinations(others, r):
                    s = frozenset(c)
                    total = total + weight * (reduction[s | {player}] - reduction[s])
            contrib[player] = total
    else:
        for j, player in enumerate(players):
            contrib[player] = (reduction[frozenset(players[: j + 1])]
                               - reduction[frozenset(players[:j])])
    rows = []
    years = empty.index.to_numpy()
    for var in variables:
        for group in all_groups:
            col = contrib[group][var].to_numpy() if group in contrib else np.zeros(len(years))
            rows.append(pd.DataFrame({"variable": var, "year": years, "group": group,
                                      "contribution": col}))
    out = pd.concat(rows, ignore_index=True)
    out.attrs.update({
        "variables": variables, "units": {v: units[v] for v in variables}, "method": method,
        "scenario": scen.name, "baseline": base.name, "players": players,
        "order": list(players) if method == "sequential" else None, "runs": len(coalitions),
        "total": {v: (empty[v] - values[frozenset(players)][v]).to_dict() for v in variables},
    })
    return out


def compute(scenario: str | Path | scenarios.Scenario, variable: str = "co2_emissions", *,
            baseline: str | Path | scenarios.Scenario = "baseline", method: str = "shapley",
            order: Sequence[str] | None = None, engine: str = "auto") -> pd.DataFrame:
    """Contribution of each lever group to the reduction of ``variable`` vs the baseline.

    Returns
    -------
    pandas.DataFrame
        Columns ``year, group, contribution`` (positive = the group lowers ``variable``
        below the baseline); for every year the contributions add up to
        ``baseline - scenario``.  ``attrs``: variable, unit, method, scenario, baseline,
        players, order, runs.
    """
    many = compute_many(scenario, [variable], baseline=baseline, method=method, order=order,
                        engine=engine)
    out = many.drop(columns="variable").reset_index(drop=True)
    attrs = dict(many.attrs)
    out.attrs.update({
        "variable": variable, "unit": attrs["units"][variable], "method": attrs["method"],
        "scenario": attrs["scenario"], "baseline": attrs["baseline"],
        "players": attrs["players"], "order": attrs["order"], "runs": attrs["runs"],
    })
    return out
