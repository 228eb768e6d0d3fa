"""Colour-vision checks of the app's chart colours.

Each chart draws some series in colours that must be told apart: the scenario lines,
the parts of a stacked area, the lever groups of the wedges.  :func:`chart_colour_sets`
lists them per chart, from the same tables the charts use; :func:`min_difference` gives
the smallest colour difference (CIEDE2000, :func:`delta_e2000`) between two of them as
seen with normal vision and with each common colour-vision deficiency (protanopia,
deuteranopia, tritanopia: the full-severity matrices of Machado, Oliveira & Fernandes,
"A physiologically-based model for simulation of color vision deficiency", IEEE TVCG
15(6), 2009, applied in linear sRGB).  A test holds every chart above
:data:`MIN_DELTA_E`.

Recorded history (black diamonds) and target marks (dashed red with diamonds) are drawn
with their own mark shapes, so they are not compared with the lines' colours.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

#: Smallest CIEDE2000 difference allowed between two series of one chart, in every
#: vision.  About 10 is where neighbouring areas or 2.5-px lines stay clearly distinct
#: (a difference of 2-3 is just noticeable side by side; legends need much more).
MIN_DELTA_E = 10.0

#: Simulation matrices (linear sRGB), Machado et al. 2009, severity 1.0.
CVD = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _linear(hex_colour: str) -> np.ndarray:
    """Return linear sRGB (0-1) of ``#rrggbb``."""
    h = hex_colour.lstrip("#")
    srgb = np.array([int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def lab(hex_colour: str, vision: str = "normal") -> np.ndarray:
    """Return CIE L*a*b* (D65) of a colour as seen with ``vision`` (a key of :data:`CVD`)."""
    rgb = np.clip(CVD[vision] @ _linear(hex_colour), 0.0, 1.0)
    xyz = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]]) @ rgb
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """Return the CIEDE2000 difference of two L*a*b* colours (Sharma et al. 2005)."""
    l1, a1, b1 = (float(x) for x in lab1)
    l2, a2, b2 = (float(x) for x in lab2)
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar ** 7 / (c_bar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0
    if c1p * c2p:
        dh = h2p - h1p
        if dh > 180:
            dh -= 360
        elif dh < -180:
            dh += 360
    dhh = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_bar, c_bar_p = (l1 + l2) / 2, (c1p + c2p) / 2
    h_bar = h1p + h2p
    if c1p * c2p:
        if abs(h1p - h2p) <= 180:
            h_bar = (h1p + h2p) / 2
        else:
            h_bar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_bar - 30)) + 0.24 * math.cos(math.radians(2 * h_bar))
         + 0.32 * math.cos(math.radians(3 * h_bar + 6))
         - 0.20 * math.cos(math.radians(4 * h_bar - 63)))
    d_theta = 30 * math.exp(-(((h_bar - 275) / 25) ** 2))
    rc = 2 * math.sqrt(c_bar_p ** 7 / (c_bar_p ** 7 + 25 ** 7))
    sl = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    sc = 1 + 0.045 * c_bar_p
    sh = 1 + 0.015 * c_bar_p * t
    rt = -math.sin(math.radians(2 * d_theta)) * rc
    return math.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2
                     + rt * (dc / sc) * (dhh / sh))


def min_difference(colours: Sequence[str]) -> tuple[float, str, str, str]:
    """Return the smallest difference between two of ``colours`` over every vision.

    Returns
    -------
    (float, str, str, str)
        The CIEDE2000 difference, the two colours and the vision it is seen with.
    """
    worst = (math.inf, "", "", "")
    for vision in CVD:
        for a, b in itertools.combinations(dict.fromkeys(colours), 2):
            d = delta_e2000(lab(a, vision), lab(b, vision))
            if d < worst[0]:
                worst = (d, a, b, vision)
    return worst


def chart_colour_sets() -> dict[str, list[str]]:
    """Colours drawn together as separate series, per chart of the app.

    The scenario lines of every line chart (current, baseline and up to
    :data:`greenpath.app.charts.MAX_SAVED` saved scenarios), the parts of each stacked
    chart and the lever groups of the wedge chart.
    """
    from greenpath.app import charts as live
    from greenpath.outputs import charts as mpl

    names = [mpl.BASELINE, "current", *(f"saved {i}" for i in range(live.MAX_SAVED))]
    scenario = list(mpl.scenario_colors(names).values())
    colours = mpl.COLORS
    out = {"scenarios": scenario,
           "industry": [colours[k] for k in mpl.INDUSTRY_SERIES],
           "energy_mix": [colours[k] for k in mpl.ENERGY_SERIES],
           "renewables": [colours[k] for k in mpl.RENEWABLE_SERIES]}
    # The wedges' lever groups (greenpath.runners.wedges.lever_groups, spaces as underscores, as
    # the wedge chart looks them up) and "other" for the groups beyond the largest.
    groups = ("timing", "industry", "energy", "buildings", "transport", "energy_supply")
    out["wedges"] = [colours.get(g, colours["other"]) for g in (*groups, "other")]
    return out
