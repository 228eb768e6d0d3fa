"""The calibration report's charts (PNG): history against simulation, parameters, out-of-sample, backtest.

:func:`draw_charts` draws every chart of the report from its context
(:func:`greenpath.calibration.report_context._context`) into the report folder.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greenpath.calibration.report_context import _Context, _obs, _simulated
from greenpath.calibration.series import (
    CENSUS_BREAK_YEAR,
    CO2_BREAK_YEAR,
    FIRST_YEAR,
    FitSeries,
    _span,
)

__all__ = [
    "chart_backtest",
    "draw_charts",
]

HISTORY_COLOUR = "black"
MODEL_COLOUR = "#1f77b4"
PRIOR_COLOUR = "#9e9e9e"
ALT_COLOUR = "#d62728"
OOS_COLOUR = "#ff7f0e"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9})
    return plt


def _years(*axes: Any) -> None:
    """Integer year ticks on the x axis."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(fig: Any, path: Path, footer: str) -> Path:
    fig.text(0.01, 0.005, footer, fontsize=7.5, color="#555555", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    from greenpath.files import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".")),
                 overwrite=True)  # never a half-written image
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _factor(ctx: _Context, key: str) -> float:
    return float(ctx.stats.at[key, "factor"])


def _last_fitted_year(ctx: _Context) -> int:
    return max(int(s.years.max()) for s in ctx.series if s.role == "fitted")


def _sim_series(ctx: _Context, s: FitSeries, frame: str, years: Sequence[int] | None = None) -> pd.Series:
    """Return the simulated counterpart of a series over all years of the frame (or ``years``)."""
    fr = ctx.frames[frame]
    years_arr = fr.index.to_numpy(dtype=int)
    wanted = np.array(years if years is not None else years_arr[1:], dtype=int)
    probe = FitSeries(**{**s.__dict__, "observed": pd.Series(np.ones(len(wanted)), index=wanted)})
    return pd.Series(_simulated(probe, fr), index=wanted)


def _chart_gdp(ctx: _Context, out: Path) -> Path:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6))
    cal, pri = ctx.frames["calibrated"], ctx.frames["prior"]
    lvl = _obs(ctx, "gdp_level")
    a1.plot(cal.index, cal["gdp"], color=MODEL_COLOUR, lw=2, label="model, calibrated")
    a1.plot(pri.index, pri["gdp"], color=PRIOR_COLOUR, lw=1.5, ls="--", label="model, prior")
    a1.plot(lvl.observed.index, lvl.observed, "o-", color=HISTORY_COLOUR, label="recorded (derived 2020-prices)")
    a1.set_title("Real GDP (constant 2020 prices, post-census basis)")
    a1.set_ylabel("100 million yuan (2020 prices)")
    a1.set_xlabel("year")
    a1.legend()
    g = _obs(ctx, "gdp_growth")
    first, last = int(g.years.min()), int(g.years.max())
    full = g.observed.reindex(range(first, last + 1))  # gaps stay gaps
    missing = [int(y) for y in full.index[full.isna()]]
    a2.plot(full.index, full, "o-", color=HISTORY_COLOUR, label="recorded real growth")
    a2.plot(_sim_series(ctx, g, "calibrated").loc[:last], color=MODEL_COLOUR, lw=2,
            label="model (sum of sectors), calibrated")
    for y in missing:
        a2.axvline(y, color="#cccccc", lw=6, zorder=0)
        a2.text(y, a2.get_ylim()[0], f" {y}", va="bottom", fontsize=8, color="#777777")
    a2.set_title("Real GDP growth" + (f" ({', '.join(map(str, missing))} not recorded)" if missing else ""))
    a2.set_ylabel("% per year")
    a2.set_xlabel("year")
    a2.legend()
    _years(a1, a2)
    return _finish(fig, out / "fit_gdp.png", ctx.footer)


def _chart_shares(ctx: _Context, out: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    for ax, sector in zip(axes, ("primary", "secondary", "tertiary"), strict=True):
        pre = _obs(ctx, "share_pre_census", f"{sector}_share")
        post = _obs(ctx, "share_post_census", f"{sector}_share")
        k = _factor(ctx, pre.key)
        years = range(FIRST_YEAR, int(post.years.max()) + 1)
        ax.plot(pre.observed.index, pre.observed, "o-", color="#aaaaaa", ms=4, label="recorded, pre-census basis")
        ax.plot(pre.observed.index, pre.observed / k, "o-", color=HISTORY_COLOUR, mfc="white", ms=5,
                label=f"pre-census rebased (/ {k:.2f})")
        ax.plot(post.observed.index, post.observed, "o-", color=HISTORY_COLOUR, label="recorded, post-census")
        sim = _sim_series(ctx, post, "calibrated", years)
        ax.plot(sim.index, sim, color=MODEL_COLOUR, lw=2, label="model, calibrated (real shares)")
        pri = _sim_series(ctx, post, "prior", years)
        ax.plot(pri.index, pri, color=PRIOR_COLOUR, ls="--", lw=1.5, label="model, prior")
        ax.axvline(CENSUS_BREAK_YEAR - 0.5, color="#cccccc", lw=1, ls=":")
        ax.set_title(f"{sector.capitalize()} share of GDP")
        ax.set_ylabel("% of GDP")
        ax.set_xlabel("year")
    axes[0].legend(loc="best")
    _years(*axes)
    return _finish(fig, out / "fit_shares.png", ctx.footer)


def _chart_co2(ctx: _Context, out: Path) -> Path:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 8.2), height_ratios=(3, 2), sharex=True)
    full = _obs(ctx, "co2_all")
    pre = _obs(ctx, "co2_pre_break")
    post = _obs(ctx, "co2_post_break")
    k = _factor(ctx, pre.key)
    chen = _obs(ctx, "co2_county")
    cal = ctx.frames["calibrated"]
    a1.plot(full.observed.index, full.observed, "o-", color=HISTORY_COLOUR,
            label=f"CEADs (fitted: shape {_span(pre.years)}, level {_span(post.years)})")
    a1.plot(pre.observed.index, pre.observed / k, "o", color=HISTORY_COLOUR, mfc="white",
            label=f"CEADs {_span(pre.years)} rebased (/ {k:.2f})")
    a1.plot(chen.observed.index, chen.observed, "s-", color="#8c564b", ms=4, lw=1,
            label="county sum, Chen et al. (cross-check)")
    a1.plot(cal.index, cal["co2_emissions"], color=MODEL_COLOUR, lw=2, label="model, calibrated")
    if "co2_levels" in ctx.frames:
        alt = ctx.frames["co2_levels"]
        a1.plot(alt.index, alt["co2_emissions"], color=ALT_COLOUR, lw=1.5, ls="-.",
                label="model, sensitivity: both regimes in level")
    pri = ctx.frames["prior"]
    a1.plot(pri.index, pri["co2_emissions"], color=PRIOR_COLOUR, lw=1.5, ls="--", label="model, prior")
    a1.axvspan(CO2_BREAK_YEAR - 0.5, CO2_BREAK_YEAR + 0.5, color="#eeeeee", zorder=0)
    a1.set_ylabel("Mt CO2 per year")
    a1.set_title("Territorial CO2 (fuel combustion + cement process)")
    a1.legend(fontsize=8.5, loc="upper right")
    cap = _obs(ctx, "coal_capacity")
    a2.plot(cap.observed.index, cap.observed, "o", color=HISTORY_COLOUR, label="coal capacity, GEM unit sum")
    a2.plot(cal.index, cal["coal_capacity"], color="#444444", lw=2, label="coal capacity, model (input path)")
    a2.set_ylabel("MW")
    a2.set_xlabel("year")
    b2 = a2.twinx()
    b2.plot(cal.index, cal["co2_power"], color=MODEL_COLOUR, lw=1.5, ls=":", label="model power-sector CO2 (right)")
    b2.set_ylabel("Mt CO2 per year")
    h1, l1 = a2.get_legend_handles_labels()
    h2, l2 = b2.get_legend_handles_labels()
    a2.legend(h1 + h2, l1 + l2, fontsize=8.5, loc="upper left")
    a2.set_title("Coal power capacity (model input) and the model's power-sector CO2")
    _years(a1, a2)
    return _finish(fig, out / "fit_co2.png", ctx.footer)


def _chart_electricity(ctx: _Context, out: Path) -> Path:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 6.2))
    cal, pri = ctx.frames["calibrated"], ctx.frames["prior"]
    for tag, col, colour in (("electricity_total", "electricity_consumption", MODEL_COLOUR),
                             ("electricity_industry", "industrial_electricity_consumption", "#2ca02c")):
        s = _obs(ctx, tag)
        a1.plot(s.observed.index, s.observed, "o-", color=colour, mec=HISTORY_COLOUR, label=f"{s.label}, recorded")
        a1.plot(cal.index, cal[col], color=colour, lw=2, label="model, calibrated")
        a1.plot(pri.index, pri[col], color=colour, lw=1, ls="--", alpha=0.6, label="model, prior")
    res = _obs(ctx, "electricity_residential")
    a1.plot(res.observed.index, res.observed, "^", color=HISTORY_COLOUR,
            label="urban households, recorded (cross-check)")
    a1.plot(cal.index, cal["residential_electricity_consumption"], color="#9467bd", lw=1.5,
            label="model residential, calibrated")
    a1.set_title("Whole-city electricity use")
    a1.set_ylabel("100 million kWh")
    a1.set_xlabel("year")
    a1.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    for tag, col, colour in (("electricity_total_districts", "electricity_consumption", MODEL_COLOUR),
                             ("electricity_industry_districts", "industrial_electricity_consumption", "#2ca02c")):
        s = _obs(ctx, tag)
        k = _factor(ctx, s.key)
        a2.plot(s.observed.index, s.observed / k, "o-", color=colour, mec=HISTORY_COLOUR, mfc="white",
                label=f"{s.label.replace(' (shape)', '')}, / {k:.2f}")
        sub = cal.loc[int(s.years.min()):int(s.years.max()) + 2, col]
        a2.plot(sub.index, sub, color=colour, lw=2, label="model (whole city), calibrated")
    a2.set_title("Urban districts (shixiaqu) rebased to the whole city by the fitted ratio")
    a2.set_ylabel("100 million kWh (whole-city equivalent)")
    a2.set_xlabel("year")
    a2.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    _years(a1, a2)
    return _finish(fig, out / "fit_electricity.png", ctx.footer)


def _chart_oos(ctx: _Context, out: Path) -> Path | None:
    if "out_of_sample" not in ctx.frames:
        return None
    plt = _plt()
    cutoff = int(ctx.doc["out_of_sample"]["cutoff"])
    last = _last_fitted_year(ctx)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    panels = (("co2_all", None, "co2_emissions", "CO2 (Mt)"),
              ("electricity_total", None, "electricity_consumption", "Electricity, whole city (100m kWh)"),
              ("gdp_level", None, "gdp", "Real GDP (100m yuan, 2020 prices)"),
              ("share_post_census", "tertiary_share", None, "Tertiary share of GDP (%)"))
    for ax, (tag, group, col, title) in zip(axes.ravel(), panels, strict=True):
        s = _obs(ctx, tag, group)
        ax.plot(s.observed.index, s.observed, "o-", color=HISTORY_COLOUR, label="recorded")
        if tag == "share_post_census":
            pre = _obs(ctx, "share_pre_census", group)
            ax.plot(pre.observed.index, pre.observed, "o-", color="#aaaaaa", ms=4, label="recorded, pre-census")
        for frame, colour, ls, label in (("calibrated", MODEL_COLOUR, "-", "fit on all data"),
                                         ("out_of_sample", OOS_COLOUR, "--", f"fit on data up to {cutoff}")):
            if col is None:
                sim = _sim_series(ctx, s, frame, range(FIRST_YEAR, last + 1))
            else:
                sim = ctx.frames[frame][col].loc[:last]
            ax.plot(sim.index, sim, color=colour, lw=2, ls=ls, label=label)
        ax.axvline(cutoff + 0.5, color="#888888", ls=":", lw=1)
        ax.set_title(title)
        ax.set_xlabel("year")
    axes[0, 0].legend(fontsize=8.5)
    _years(*axes.ravel())
    return _finish(fig, out / "out_of_sample.png", ctx.footer)


def _chart_parameters(ctx: _Context, out: Path) -> Path:
    plt = _plt()
    space, unc = ctx.space, ctx.unc
    values = ctx.doc["parameters"]
    d = len(space)
    fig, ax = plt.subplots(figsize=(10, 0.34 * d + 1.4))
    y = np.arange(d)[::-1]
    x = np.array([values[n] for n in space.names])
    u = space.to_u(x)
    half = np.where(np.isfinite(unc.sd), 1.96 * unc.sd / space.span, 0.0)
    xerr = np.vstack([np.minimum(half, u), np.minimum(half, 1.0 - u)])  # clipped to the range
    ax.errorbar(u, y, xerr=xerr, fmt="o", color=MODEL_COLOUR, ecolor=MODEL_COLOUR,
                capsize=3, label="calibrated, approx. 95 % interval (with prior)")
    ax.plot(space.prior_u, y, "x", color=PRIOR_COLOUR, ms=8, mew=2, label="prior (registry default)")
    bound = unc.at_bound != 0
    ax.plot(u[bound], y[bound], "s", color=ALT_COLOUR, ms=8, mfc="none", mew=1.5, label="at a registry bound")
    ax.set_yticks(y, space.names, fontsize=9)
    ax.set_xlim(-0.05, 1.05)
    ax.set_xlabel("position in the registry range (0 = min, 1 = max)")
    ax.axvline(0, color="#cccccc")
    ax.axvline(1, color="#cccccc")
    ax.legend(fontsize=8.5, loc="lower right")
    ax.set_title("Calibrated parameters within their registry ranges")
    return _finish(fig, out / "parameters.png", ctx.footer)


def chart_backtest(ctx: Any, out_dir: Path) -> Path | None:
    """Backtest bands (P10-P90, median, point) against the recorded values, one panel per series."""
    bt = ctx.doc.get("backtest")
    if not bt or not bt.get("bands"):
        return None
    bands = bt["bands"]
    keys = list(bands)
    plt = _plt()
    cols = 3
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        b = bands[key]
        y = np.array(b["years"])
        if "p10_predictive" in b:
            ax.fill_between(y, b["p10_predictive"], b["p90_predictive"], color=OOS_COLOUR, alpha=0.12,
                            label="predictive P10-P90")
        ax.fill_between(y, b["p10"], b["p90"], color=OOS_COLOUR, alpha=0.3, label="parameter P10-P90")
        ax.plot(y, b["p50"], color=OOS_COLOUR, label="posterior median")
        ax.plot(y, b["point"], color=MODEL_COLOUR, linestyle="--", label="point backtest")
        ax.plot(y, b["observed"], "o", color=HISTORY_COLOUR, label="recorded")
        ax.set_title(key, fontsize=10)
        _years(ax)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(loc="best", fontsize=8)
    return _finish(fig, Path(out_dir) / "backtest.png", ctx.footer)


def draw_charts(ctx: _Context, out_dir: Path) -> dict[str, Path | None]:
    """Draw every chart of the report into ``out_dir``; return ``{chart: path}``.

    A chart of a step this calibration did not run (out-of-sample, backtest) is ``None``,
    and an old file of it in ``out_dir`` is removed.
    """
    charts: dict[str, Path | None] = {
        "fit_gdp": _chart_gdp(ctx, out_dir),
        "fit_shares": _chart_shares(ctx, out_dir),
        "fit_co2": _chart_co2(ctx, out_dir),
        "fit_electricity": _chart_electricity(ctx, out_dir),
        "parameters": _chart_parameters(ctx, out_dir),
        "out_of_sample": _chart_oos(ctx, out_dir),
    }
    charts["backtest"] = chart_backtest(ctx, out_dir)
    for name, made in (("out_of_sample.png", charts["out_of_sample"]), ("backtest.png", charts["backtest"])):
        if made is None and (out_dir / name).exists():
            (out_dir / name).unlink()  # a chart of a step this calibration did not run
    return charts
