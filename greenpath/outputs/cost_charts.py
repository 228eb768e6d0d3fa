"""Charts of the cost analysis: the marginal abatement cost (MAC) curve.

Built like :mod:`greenpath.outputs.charts` (its styles, colours and bundled CJK font, never
``pyplot``), from a :class:`greenpath.runners.costs.CostReport`.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from greenpath.i18n import t
from greenpath.outputs import charts
from greenpath.runners.costs import CostReport

#: Costs per tonne beyond this (CNY/t) run off the chart and are written on their bar.
CLIP = 2000.0


def group_label(group: str, lang: str) -> str:
    """Return the lever group's one name (as in the wedges)."""
    from greenpath.i18n import t_or

    return t_or(f"chart_group_{group.replace(' ', '_')}", lang, group)


def mac_curve(report: CostReport, lang: str = "en", *, presentation: bool = False) -> Figure:
    """Draw the MAC curve: one bar per lever group, cheapest first.

    Each bar is as wide as the group's cumulative CO2 reduction 2021-2035 and as high
    as its net present cost per tonne; the P10-P90 of the cost per tonne is a whisker.
    Groups that cut under 0.05 Mt are left out (their cost per tonne is not
    meaningful) and named in a note.
    """
    if lang not in ("en", "zh"):
        raise ValueError(f"lang {lang!r}: give 'en' or 'zh'")
    st = charts.style(presentation)
    fig, (ax,) = charts._new_figure(st)
    mac = report.mac_curve()
    handles = []
    for _, r in mac.iterrows():
        key = r["group"].replace(" ", "_")
        color = charts.COLORS.get(key, charts.COLORS["other"])
        ax.bar(r["start_mt"], r["cost_per_t"], width=r["co2_reduction_mt"], align="edge",
               color=color, edgecolor="#333333", linewidth=0.6)
        mid = r["start_mt"] + r["co2_reduction_mt"] / 2
        lo, hi = r["cost_per_t_p10"], r["cost_per_t_p90"]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.errorbar([mid], [r["cost_per_t"]],
                        yerr=[[max(0.0, r["cost_per_t"] - lo)], [max(0.0, hi - r["cost_per_t"])]],
                        fmt="none", ecolor="#333333", elinewidth=1.0, capsize=4)
        handles.append((Patch(facecolor=color, edgecolor="#333333"),
                        f"{group_label(r['group'], lang)}: {r['cost_per_t']:,.0f}"))
    ax.axhline(0, color="#333333", linewidth=0.8)
    # A group with a tiny reduction can cost tens of thousands of yuan a tonne; the axis
    # is held to +-CLIP so the others stay readable, and a clipped bar shows its value.
    if len(mac) and (mac["cost_per_t"].abs() > CLIP).any():
        low = min(0.0, float(mac["cost_per_t"].clip(lower=-CLIP).min()) * 1.15)
        high = max(0.0, float(mac["cost_per_t"].clip(upper=CLIP).max()) * 1.15)
        ax.set_ylim(low, high)
        for _, r in mac[mac["cost_per_t"].abs() > CLIP].iterrows():
            y = high * 0.97 if r["cost_per_t"] > 0 else low * 0.97
            ax.annotate(f"{r['cost_per_t']:,.0f}", (r["start_mt"] + r["co2_reduction_mt"] / 2, y),
                        ha="center", va="top" if r["cost_per_t"] > 0 else "bottom",
                        fontsize=st.small, color="#333333")
    ax.set_xlabel(t("costs_mac_x", lang), fontsize=st.font)
    ax.set_ylabel(t("costs_mac_y", lang), fontsize=st.font)
    ax.tick_params(labelsize=st.small)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if len(mac):
        ax.set_xlim(0, float(mac["end_mt"].max()) * 1.02)
    if handles:
        ax.legend([h for h, _ in handles], [label for _, label in handles], fontsize=st.small,
                  loc="upper left", frameon=False)
    left_out = [g for g in report.groups["group"]
                if g != "total" and g not in set(mac["group"])]
    if left_out:
        names = ", ".join(group_label(g, lang) for g in left_out)
        ax.annotate(f"{t('costs_not_shown', lang)}: {names}", (0.99, 0.02),
                    xycoords="axes fraction", ha="right", va="bottom", fontsize=st.small,
                    color="#555555")
    fig.suptitle(t("costs_mac_title", lang, scenario=report.attrs["scenario"],
                   baseline=report.attrs["baseline"]), fontsize=st.title)
    for text in fig.findobj(lambda a: hasattr(a, "set_fontfamily")):
        text.set_fontfamily(charts.FONT_FAMILY)
    return fig


def png(fig: Figure) -> bytes:
    """Return the figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
