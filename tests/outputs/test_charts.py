"""Meeting charts.

Every chart in both languages for one and several scenarios, target lines at the
plan's values, Chinese glyphs present, house style, bad input refused.
"""

from __future__ import annotations

import io
import tomllib
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from greenpath.i18n import t
from greenpath.outputs import charts
from greenpath.scenarios import scenario as scenarios

CHART_FUNCS = {key: fn for key, (fn, _) in charts.CHARTS.items()}
TOML = Path(charts.__file__).parents[1] / "i18n" / "charts.toml"


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def runs(model):
    """Baseline and a policy scenario (more renewables, coal switching)."""
    base = scenarios.load("baseline")
    policy = base.derive("policy", params={
        "wind_build_rate": 250.0, "distributed_pv_build_rate": 200.0,
        "industrial_coal_substitution_rate": 0.1, "industrial_saving_action_rate": 0.05},
        title_en="Policy package (test)", title_zh="政策组合(测试)")
    out = {}
    for s in (base, policy):
        result = model.run(**s.run_kwargs())
        result.metadata["title_en"], result.metadata["title_zh"] = s.title_en, s.title_zh
        out[s.name] = result
    return out


@pytest.fixture
def one(runs):
    return {"baseline": runs["baseline"]}


def _render(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def _lines(fig: Figure, prefix: str) -> list[Line2D]:
    return [a for ax in fig.axes for a in ax.get_lines()
            if (a.get_gid() or "").startswith(prefix)]


def _texts(fig: Figure) -> list[str]:
    return [x.get_text() for x in fig.findobj(Text) if x.get_text()]


def _wedge_table(runs) -> pd.DataFrame:
    """Synthetic contributions: baseline − policy split over six groups."""
    diff = runs["baseline"].frame["co2_emissions"] - runs["policy"].frame["co2_emissions"]
    shares = {"industry": 0.4, "energy": 0.2, "energy supply": 0.25, "buildings": 0.1,
              "transport": 0.04, "timing": 0.01}
    rows = [(y, g, v * s) for y, v in diff.items() if y >= 2021 for g, s in shares.items()]
    return pd.DataFrame(rows, columns=["year", "group", "contribution"])


# ---------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("presentation", [False, True], ids=["normal", "presentation"])
def test_no_two_labels_of_a_chart_overlap(runs, lang, presentation):
    """No label of a chart overprints another one.

    The peak-year target label at the top of the CO2 chart once overprinted the
    "policy from 2021" label (zh, and en at projector size).
    """
    for key, draw in CHART_FUNCS.items():
        fig = draw(runs, lang, presentation=presentation)
        _render(fig)
        fig.set_dpi(charts.style(presentation).dpi)
        assert charts.label_overlaps(fig) == [], key


def test_label_overlaps_finds_overprinted_labels():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(4, 3))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.annotate("first label", xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, -4),
                textcoords="offset points", ha="center", va="top")
    ax.annotate("second label", xy=(0.5, 1.0), xycoords="axes fraction", xytext=(0, -6),
                textcoords="offset points", ha="center", va="top")
    assert charts.label_overlaps(fig) == [("first label", "second label")]
    charts.separate_labels(fig)
    assert charts.label_overlaps(fig) == []


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("key", list(CHART_FUNCS))
@pytest.mark.parametrize("several", [False, True], ids=["one", "several"])
def test_every_chart_renders(runs, key, lang, several):
    results = runs if several else {"baseline": runs["baseline"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph is a UserWarning
        fig = CHART_FUNCS[key](results, lang)
        png = _render(fig)
    assert png.startswith(b"\x89PNG")
    texts = _texts(fig)
    assert charts.chart_title(key, lang) in texts
    footer = [x for x in texts if runs["baseline"].metadata["model_sha256"][:8] in x]
    assert footer, "footer with the model version missing"
    assert str(charts.data_vintage()) in footer[0]
    assert all(n in footer[0] for n in results)
    # units on every visible y axis that starts a row, a year axis, policy start marked
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_visible() and ax.get_ylabel()]
    assert ylabels
    assert all("(" in y for y in ylabels)
    assert any(ax.get_xlabel() == t("chart_axis_year", lang) for ax in fig.axes)
    assert _lines(fig, "policy_start:2021")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_wedges_renders_one_and_several(runs, lang):
    table = _wedge_table(runs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = charts.wedges({"policy": table}, {"policy": runs["policy"]}, lang,
                            baseline=runs["baseline"])
        _render(fig)
        fig2 = charts.wedges({"policy": table, "half": table.assign(
            contribution=table["contribution"] / 2)},
            {"policy": runs["policy"], "half": runs["policy"]}, lang)
        _render(fig2)
    assert charts.chart_title("wedges", lang) in _texts(fig)
    assert len([ax for ax in fig2.axes if ax.get_visible()]) == 2
    # at most five areas: the smallest groups are summed into "other"
    areas = {c.get_gid() for ax in fig.axes for c in ax.collections
             if (c.get_gid() or "").startswith("area:")}
    assert len(areas) == 5
    assert "area:other" in areas
    # the total reduction line equals baseline − scenario
    (total,) = _lines(fig, "line:total_reduction")
    expect = (runs["baseline"].frame["co2_emissions"]
              - runs["policy"].frame["co2_emissions"]).loc[2021:]
    np.testing.assert_allclose(total.get_ydata(), expect.to_numpy())


def test_wedges_data_groups_and_sums(runs):
    table = _wedge_table(runs)
    data = charts.wedges_data(table, max_groups=5)
    assert data["series"].nunique() == 5
    assert list(dict.fromkeys(data["series"]))[-1] == "other"
    # grouping keeps every year's total
    np.testing.assert_allclose(data.groupby("year")["value"].sum().to_numpy(),
                               table.groupby("year")["contribution"].sum().to_numpy())
    with pytest.raises(ValueError, match="contribution"):
        charts.wedges_data(table.rename(columns={"contribution": "x"}))


# ---------------------------------------------------------------------------- targets
def test_coal_target_line_at_minus_12_percent_of_2020(runs):
    fig = charts.coal_use(runs, "en")
    (line,) = _lines(fig, "target:")
    expected = 0.88 * runs["baseline"].frame.loc[2020, "total_coal_consumption"]
    np.testing.assert_allclose(line.get_ydata(), expected)
    assert line.get_xdata()[0] == 2020
    assert 2025 in list(line.get_xdata())
    assert line.get_linestyle() == "--"
    assert any("一(二)" in x and "−12%" in x for x in _texts(fig))


def test_renewable_target_lines_1gw_and_2_5gw(runs):
    fig = charts.renewable_capacity(runs, "zh")
    by_id = {ln.get_gid(): ln for ln in _lines(fig, "target:")}
    seed = [ln for gid, ln in by_id.items() if "seed" in gid]
    fyp = [ln for gid, ln in by_id.items() if "fyp14" in gid]
    assert seed
    assert fyp
    np.testing.assert_allclose(seed[0].get_ydata(), 1000.0)
    np.testing.assert_allclose(fyp[0].get_ydata(), 2500.0)
    assert any("五(一)" in x and "100万千瓦" in x for x in _texts(fig))
    # one line per panel (two scenarios), and only the seed plan when asked
    assert len(_lines(fig, "target:renewable_capacity_2025_seed")) == 2
    only_seed = charts.renewable_capacity(runs, "en", sets=["seed_2021"])
    values = sorted(float(ln.get_ydata()[0]) for ln in _lines(only_seed, "target:"))
    assert values == [1000.0, 1000.0]


def test_intensity_targets_minus_16_and_minus_19_5(runs):
    fig = charts.intensity_change(runs, "en")
    ys = {ln.get_gid(): float(ln.get_ydata()[0]) for ln in _lines(fig, "target:")}
    assert ys["target:energy_intensity_2025"] == pytest.approx(-0.16)
    assert ys["target:co2_intensity_2025"] == pytest.approx(-0.195)
    # scenario lines are change vs 2020: zero in 2020
    for ln in _lines(fig, "scenario:"):
        x = list(ln.get_xdata())
        assert ln.get_ydata()[x.index(2020)] == pytest.approx(0.0, abs=1e-12)


def test_target_lines_follow_an_edited_targets_file(runs, tmp_path):
    from greenpath.scenarios import targets as tg

    text = tg.DEFAULT_TARGETS.read_text(encoding="utf-8").replace(
        "value = -12\n", "value = -20\n", 1)
    path = tmp_path / "edited.toml"
    path.write_text(text, encoding="utf-8")
    fig = charts.coal_use(runs, "en", targets=path)
    (line,) = _lines(fig, "target:")
    expected = 0.80 * runs["baseline"].frame.loc[2020, "total_coal_consumption"]
    np.testing.assert_allclose(line.get_ydata(), expected)


def test_co2_peak_marked_and_ceads_history(runs):
    from greenpath.model.indicators import peak

    fig = charts.co2_emissions(runs, "en")
    for name, result in runs.items():
        (marker,) = _lines(fig, f"peak:{name}")
        year, value = peak(result.frame)
        assert (marker.get_xdata()[0], marker.get_ydata()[0]) == (year, pytest.approx(value))
    (obs,) = _lines(fig, "observed:ceads")
    assert obs.get_linestyle() == "None"
    assert obs.get_marker() == "s"
    assert 2010 in list(obs.get_xdata())
    assert t("chart_history_ceads", "en") in _texts(fig)


# ---------------------------------------------------------------------------- style
def test_colours_one_per_carrier_and_scenario(runs):
    fig = charts.energy_mix(runs, "en")
    coal = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "area:coal"]
    assert coal
    assert all(matplotlib.colors.to_hex(c.get_facecolor()[0]) == charts.COLORS["coal"]
                        for c in coal)
    colours = {}
    for fn in (charts.coal_use, charts.co2_emissions):
        for ln in _lines(fn(runs, "en"), "scenario:"):
            colours.setdefault(ln.get_gid(), set()).add(matplotlib.colors.to_hex(ln.get_color()))
    assert all(len(c) == 1 for c in colours.values())
    assert colours["scenario:baseline"] == {charts.SCENARIO_PALETTE[0]}
    assert colours["scenario:baseline"] != colours["scenario:policy"]


def test_history_has_markers_projection_does_not(runs):
    fig = charts.coal_use(runs, "en")
    for ln in _lines(fig, "scenario:"):
        years = np.asarray(ln.get_xdata())
        marked = years[list(ln.get_markevery())]
        assert marked.max() == 2020
        assert marked.min() == years.min()


def test_policy_start_follows_the_scenario(model):
    late = scenarios.load("baseline").derive("late", params={"policy_start_year": 2024})
    result = model.run(**late.run_kwargs())
    fig = charts.co2_emissions({"late": result}, "en")
    assert _lines(fig, "policy_start:2024")
    assert not _lines(fig, "policy_start:2021")


def test_presentation_is_1080p_with_larger_fonts(one):
    small = charts.coal_use(one, "en")
    large = charts.coal_use(one, "en", presentation=True)
    w, h = large.get_size_inches() * large.dpi
    assert (round(w), round(h)) == (1920, 1080)

    def title_size(fig):
        return next(x.get_fontsize() for x in fig.findobj(Text)
                    if x.get_text() == charts.chart_title("coal_use", "en"))

    assert title_size(large) >= 1.5 * title_size(small)
    assert max(ln.get_linewidth() for ln in _lines(large, "scenario:")) > \
        max(ln.get_linewidth() for ln in _lines(small, "scenario:"))


def test_no_global_matplotlib_state_changed(runs):
    before = dict(matplotlib.rcParams)
    for fn in CHART_FUNCS.values():
        _render(fn(runs, "zh", presentation=True))
    assert dict(matplotlib.rcParams) == before


def test_bands_drawn_per_scenario(runs):
    years = np.arange(2021, 2036)
    frame = runs["baseline"].frame
    bands = pd.DataFrame({"scenario": "baseline", "variable": "co2_emissions", "year": years,
                          "p10": frame.loc[years, "co2_emissions"].to_numpy() * 0.9,
                          "p90": frame.loc[years, "co2_emissions"].to_numpy() * 1.1})
    fig = charts.co2_emissions(runs, "en", bands=bands)
    polys = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "band:baseline"]
    assert len(polys) == 1
    assert isinstance(polys[0], PolyCollection)
    assert t("chart_band", "en") in _texts(fig)
    assert not [c for ax in fig.axes for c in ax.collections if c.get_gid() == "band:policy"]
    # a band table without scenario column is ambiguous for several scenarios
    with pytest.raises(ValueError, match="scenario"):
        charts.co2_emissions(runs, "en", bands=bands.drop(columns="scenario"))
    with pytest.raises(ValueError, match="p90"):
        charts.coal_use(runs, "en", bands=bands.drop(columns="p90"))
    # intensity bands are given as levels and drawn as change vs 2020
    lvl = frame.loc[years, "energy_intensity"].to_numpy()
    ib = pd.DataFrame({"variable": "energy_intensity", "year": years,
                       "p10": lvl * 0.95, "p90": lvl * 1.05})
    fig = charts.intensity_change({"baseline": runs["baseline"]}, "en", bands=ib)
    (poly,) = [c for c in fig.axes[0].collections if c.get_gid() == "band:baseline"]
    ys = poly.get_paths()[0].vertices[:, 1]
    assert ys.min() > -1
    assert ys.max() < 1


def _legend_patch(fig: Figure, label: str):
    (legend,) = fig.legends
    texts = [x.get_text() for x in legend.get_texts()]
    return legend.legend_handles[texts.index(label)]


def test_band_legend_swatch_has_the_band_colour(runs):
    """The legend's P10-P90 swatch is the band's own colour, not grey."""
    from matplotlib.colors import to_rgb

    years = np.arange(2021, 2036)
    frame = runs["policy"].frame
    for variable, draw in (("co2_emissions", charts.co2_emissions),
                           ("total_coal_consumption", charts.coal_use),
                           ("renewable_capacity", charts.renewable_capacity)):
        bands = pd.DataFrame({"scenario": "policy", "variable": variable, "year": years,
                              "p10": frame.loc[years, variable].to_numpy() * 0.9,
                              "p90": frame.loc[years, variable].to_numpy() * 1.1})
        fig = draw(runs, "en", bands=bands)
        (poly,) = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "band:policy"]
        swatch = _legend_patch(fig, t("chart_band", "en"))
        band_colour = to_rgb(poly.get_facecolor()[0][:3])
        assert to_rgb(swatch.get_facecolor()[:3]) == pytest.approx(band_colour), variable
        assert band_colour == pytest.approx(to_rgb(charts.scenario_colors(list(runs))["policy"]))


def test_co2_chart_draws_the_peak_year_target_like_the_live_chart(runs):
    from greenpath.scenarios import targets as tg

    (target,) = [x for x in tg.load() if x.indicator == "peak_year:co2_emissions"]
    fig = charts.co2_emissions(runs, "zh")
    (line,) = _lines(fig, f"target:{target.id}")
    assert set(line.get_xdata()) == {target.value}
    assert target.label_zh in _texts(fig)
    # the app's live chart draws the same target from the same references
    from greenpath.app import charts as live

    marks = live.target_marks(runs["baseline"].frame, "zh")["co2"]
    assert [(m.kind, m.value, m.label) for m in marks] == [("year", target.value,
                                                             target.label_zh)]
    # a target set that leaves it out removes it from both
    assert not _lines(charts.co2_emissions(runs, "en", targets=[]), "target:")


# ---------------------------------------------------------------------------- data
def test_energy_mix_stack_sums_to_total(runs):
    data = charts.energy_mix_data(runs)
    wide = data.pivot_table(index=["scenario", "year"], columns="series", values="value")
    parts = wide[list(charts.ENERGY_SERIES)].sum(axis=1)
    np.testing.assert_allclose(parts, wide["total_energy"], rtol=1e-9)
    assert (wide["local_renewables"] >= 0).all()
    assert set(data["unit"]) == {charts.UNIT_TEXT["energy"]}


def test_data_tables_are_tidy_with_units(runs):
    for key, (_, data_fn) in charts.CHARTS.items():
        data = data_fn(runs)
        assert list(data.columns) == charts.TIDY_COLUMNS, key
        assert data["unit"].str.len().gt(0).all(), key
        assert set(data["scenario"]) == set(runs), key


def test_single_dataframe_input(runs):
    fig = charts.coal_use(runs["baseline"].frame, "en")
    assert len(_lines(fig, "scenario:")) == 1


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_clearly(runs):
    with pytest.raises(ValueError, match="language 'fr'"):
        charts.coal_use(runs, "fr")
    with pytest.raises(ValueError, match="lacks the variable.*total_coal_consumption"):
        charts.coal_use({"x": runs["baseline"].frame.drop(columns="total_coal_consumption")})
    seven = {f"s{i}": runs["baseline"] for i in range(7)}
    with pytest.raises(ValueError, match="at most 6"):
        charts.co2_emissions(seven)
    with pytest.raises(TypeError, match="RunResult"):
        charts.co2_emissions(42)
    with pytest.raises(ValueError, match="empty"):
        charts.co2_emissions({"x": pd.DataFrame()})
    with pytest.raises(ValueError, match="variable"):
        charts.co2_emissions(runs, variable="gdp")


def test_save_refuses_to_overwrite(tmp_path, one):
    fig = charts.coal_use(one, "en")
    path = charts.save(fig, tmp_path / "coal.svg")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="--force"):
        charts.save(fig, path)
    assert path.read_bytes() == before
    charts.save(fig, path, overwrite=True)
    with pytest.raises(ValueError, match="format"):
        charts.save(fig, tmp_path / "coal.gif")


# ---------------------------------------------------------------------------- CJK font
class _Typical(dict):
    """Every placeholder ({year}, {pct}, {chance}, ...) filled with a typical value."""

    def __missing__(self, key: str) -> str:
        return "2025"


def _zh_strings() -> list[str]:
    data = tomllib.loads(TOML.read_text(encoding="utf-8"))
    out = []
    for entry in data.values():
        text = entry["zh"]
        # fill placeholders with typical values so the rendered text is complete
        text = text.format_map(_Typical())
        out.append(text)
    return out


def test_every_chinese_string_renders_without_missing_glyphs():
    strings = _zh_strings()
    assert len(strings) > 50
    fig = Figure(figsize=(8, 40))
    for i, text in enumerate(strings):
        fig.text(0.01, 1 - (i + 1) / (len(strings) + 1), text, fontfamily=charts.FONT_FAMILY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _render(fig)


def test_missing_glyph_check_can_fail():
    """The check above would catch a character neither font has (Tangut U+17000)."""
    fig = Figure()
    fig.text(0.1, 0.5, "焦作 \U00017000", fontfamily=charts.FONT_FAMILY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="[Gg]lyph"):
            _render(fig)


def test_cjk_font_ships_and_is_registered():
    assert charts.FONT_FILE.is_file()
    assert (charts.FONT_FILE.parent / "OFL.txt").is_file()
    assert str(charts.FONT_FILE) == charts.FONT_PATH
    from matplotlib import font_manager

    found = font_manager.fontManager.findfont(
        font_manager.FontProperties(family=charts.FONT_NAME), fallback_to_default=False)
    assert Path(found).name == charts.FONT_FILE.name


def test_missing_font_error_names_font_and_install(monkeypatch, tmp_path):
    monkeypatch.setattr(charts, "FONT_FILE", tmp_path / "absent.otf")
    monkeypatch.setattr(charts.font_manager, "findSystemFonts", lambda *a, **k: [])
    with pytest.raises(charts.FontMissingError) as info:
        charts.register_font()
    message = str(info.value)
    assert "Noto Sans CJK SC" in message
    assert "fonts-noto-cjk" in message


def test_recorded_co2_starts_in_the_models_first_year():
    """CEADs begins in 2004; drawn at the axis edge it would stack on 2005."""
    from greenpath.app import runner
    from greenpath.outputs import charts

    assert charts._observed_co2().index.min() == 2005
    assert runner.history_series("co2_emissions").index.min() == 2005
