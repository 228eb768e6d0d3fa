"""`greenpath report`.

Every file written, the deck opens with the expected slides and images, the workbook
has the data with units, nothing is overwritten without --force.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from pptx import Presentation
from pptx.enum.shapes import MSO_SHAPE_TYPE

from greenpath.cli import main
from greenpath.cli.commands.report import build_report
from greenpath.files import OutputExistsError
from greenpath.i18n import t
from greenpath.outputs import charts
from greenpath.outputs import deck as report
from greenpath.runners import wedges

SCENARIO_TOML = """
[scenario]
name = "policy_test"
extends = "baseline"
title_en = "Policy package (test)"
title_zh = "政策组合(测试)"

[levers]
wind_build_rate = 250
industrial_coal_substitution_rate = 0.1
distributed_pv_build_rate = { 2021 = 60, 2025 = 150 }
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scen") / "policy_test.toml"
    path.write_text(SCENARIO_TOML, encoding="utf-8")
    return path


class FakeWedges:
    """A stand-in for greenpath.runners.wedges.compute (its signature), recording its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, scenario, variable="co2_emissions", **kwargs):
        self.calls.append((scenario.name, variable))
        years = range(2021, 2036)
        return pd.DataFrame([(y, g, v * (y - 2020)) for y in years
                             for g, v in (("industry", 0.5), ("energy supply", 0.3))],
                            columns=["year", "group", "contribution"])


@pytest.fixture
def fake_wedges():
    return FakeWedges()


@pytest.fixture(scope="module")
def built(model, scenario_file, tmp_path_factory):
    """One full report of two scenarios in both languages, wedges included."""
    out = tmp_path_factory.mktemp("report")
    result = build_report(["baseline", str(scenario_file)], out, lang="both",
                                 model=model, wedges=wedges.compute)
    return out, result


def _slides(path):
    prs = Presentation(str(path))
    return prs, list(prs.slides)


def _pictures(slide):
    return [s for s in slide.shapes if s.shape_type == MSO_SHAPE_TYPE.PICTURE]


def test_writes_every_expected_file(built):
    out, result = built
    expected = report.planned_files(out, [*charts.CHARTS, *charts.WEDGE_CHARTS], ["en", "zh"])
    assert sorted(result.paths) == sorted(expected)
    for path in expected:
        assert path.is_file(), path
        assert path.stat().st_size > 1000, path
    assert (out / "coal_use_zh.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (out / "coal_use_en.svg").read_bytes()[:500]
    assert not list(out.glob(".*"))  # no temporary files left


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_deck_has_title_charts_levers_targets(built, lang, model, scenario_file):
    out, result = built
    prs, slides = _slides(out / f"report_{lang}.pptx")
    assert prs.slide_width * 9 == prs.slide_height * 16  # 16:9
    with_pictures = [s for s in slides if _pictures(s)]
    from greenpath.outputs import cost_deck
    from greenpath.runners import costs
    from greenpath.scenarios import scenario as scenarios

    cost_rep = costs.analyse(scenarios.load(str(scenario_file)), samples=0)
    n_mac = 1 if cost_rep.attrs["players"] else 0  # the MAC curve (costs, issue 19)
    n_cost = math.ceil(len(cost_deck.table(cost_rep, lang)) / report.ROWS_PER_SLIDE)
    # the charts, the two wedge charts and the MAC curve
    assert len(with_pictures) == len(charts.CHARTS) + 2 + n_mac
    assert all(len(_pictures(s)) == 1 for s in with_pictures)
    # slide order: title, charts, lever slides, target slides
    assert not _pictures(slides[0])
    assert t("chart_report_title", lang) in slides[0].shapes.title.text_frame.text
    from greenpath.scenarios import scenario as scenarios
    from greenpath.scenarios import targets

    base = scenarios.load("baseline")
    policy = scenarios.load(str(scenario_file))
    n_lever_rows = len(report.lever_table([base, policy], base, lang))
    n_targets = len(targets.load())
    n_lever = math.ceil(n_lever_rows / report.ROWS_PER_SLIDE)
    n_target = math.ceil(n_targets / report.ROWS_PER_SLIDE)
    assert n_lever_rows == 3  # the three levers the test scenario sets
    assert len(slides) == 1 + 1 + len(charts.CHARTS) + 2 + n_mac + n_cost + n_lever + n_target
    tables = [s for s in slides if any(sh.has_table for sh in s.shapes)]
    titles = [next(sh.text_frame.text for sh in s.shapes if sh.has_text_frame) for s in tables]
    assert sum(t("chart_report_levers_title", lang) in x for x in titles) == n_lever
    assert sum(t("chart_report_targets_title", lang) in x for x in titles) == n_target
    # every slide has the footer with the model version and data vintage
    sha = model.hash[:8]
    # (chart slides: the chart's own footer, repeated in the picture's alt text)
    for slide in slides:
        texts = [sh.text_frame.text for sh in slide.shapes if sh.has_text_frame]
        texts += [p._element.nvPicPr.cNvPr.get("descr") for p in _pictures(slide)]
        assert any(sha in x and str(charts.data_vintage()) in x for x in texts)
    for slide in with_pictures:
        (picture,) = _pictures(slide)
        assert (picture.width, picture.height) == (prs.slide_width, prs.slide_height)


def test_lever_slide_lists_what_differs_with_labels(built):
    out, _ = built
    _, slides = _slides(out / "report_zh.pptx")
    cells = []
    for slide in slides:
        for shape in slide.shapes:
            if shape.has_table:
                cells += [c.text_frame.text for row in shape.table.rows for c in row.cells]
    assert "风电年新增装机" in cells  # registry label_zh of wind_build_rate
    assert "250" in cells
    assert any("2021: 60 → 2025: 150" in c for c in cells)
    assert t("chart_report_col_clause", "zh") in cells
    assert "五(一)" in cells  # wind build rate's clause
    # levers equal to the baseline are not listed
    assert "碳价" not in cells


def test_targets_slide_shows_met_or_missed(built):
    out, _ = built
    _, slides = _slides(out / "report_en.pptx")
    cells = []
    for slide in slides:
        for shape in slide.shapes:
            if shape.has_table:
                cells += [c.text_frame.text for row in shape.table.rows for c in row.cells]
    assert "Coal consumption 2025 vs 2020" in cells
    # verdict, then the chance of meeting it (share of the uncertainty runs, greenpath/runners/chance.py)
    assert any(re.search(r"· (met|missed) · chance [<>]?\d+ %$", c) for c in cells)


def test_workbook_has_one_sheet_per_chart_with_units(built):
    out, _ = built
    sheets = pd.read_excel(out / report.DATA_FILE, sheet_name=None, engine="openpyxl")
    for key in charts.CHARTS:
        df = sheets[key]
        assert {"scenario", "series", "label_en", "label_zh", "year", "value", "unit"} <= \
            set(df.columns), key
        assert df["unit"].notna().all()
        assert set(df["scenario"]) == {"baseline", "policy_test"}
    assert {"levers", "targets", "about"} <= set(sheets)
    coal = sheets["coal_use"]
    assert (coal["label_zh"] == "煤炭").any()
    about = dict(zip(sheets["about"]["key"], sheets["about"]["value"], strict=True))
    assert str(about["data_vintage"]) == str(charts.data_vintage())


def test_real_wedges_add_up_to_the_reduction(built):
    out, _ = built
    sheets = pd.read_excel(out / report.DATA_FILE, sheet_name=None, engine="openpyxl")
    wedges = sheets["wedges"]
    assert set(wedges["scenario"]) == {"policy_test"}
    # the test scenario changes fuel switching and energy supply levers only; the deck's
    # wedges are of territorial CO2, which local renewables do not move (the public coal
    # units run on provincial dispatch, renewables displace imports), so only the fuel
    # switching group appears
    assert set(wedges["series"]) == {"energy"}
    co2 = sheets["co2_emissions"]
    co2 = co2[co2["series"] == "co2_emissions"].pivot(index="year", columns="scenario",
                                                      values="value")
    total = wedges.groupby("year")["value"].sum()
    diff = (co2["baseline"] - co2["policy_test"]).loc[total.index]
    assert (total - diff).abs().max() < 1e-6


def test_real_wedges_including_imports_add_up_and_show_local_renewables(built):
    out, _ = built
    sheets = pd.read_excel(out / report.DATA_FILE, sheet_name=None, engine="openpyxl")
    wedges = sheets["wedges_including_imports"]
    assert set(wedges["scenario"]) == {"policy_test"}
    # local renewables displace imported electricity: the energy supply group, absent
    # from the territorial wedges, reduces CO2 including imports
    assert "energy supply" in set(wedges["series"])
    by_group = wedges.groupby("series")["value"].sum()
    assert by_group["energy supply"] > 0
    co2 = sheets["co2_including_imports"]
    co2 = co2[co2["series"] == "co2_including_imports"].pivot(index="year", columns="scenario",
                                                              values="value")
    total = wedges.groupby("year")["value"].sum()
    diff = (co2["baseline"] - co2["policy_test"]).loc[total.index]
    assert (total - diff).abs().max() < 1e-6


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_deck_has_both_wedge_charts_titled(built, lang):
    out, _ = built
    _, slides = _slides(out / f"report_{lang}.pptx")
    alts = [p._element.nvPicPr.cNvPr.get("descr") for s in slides for p in _pictures(s)]
    for key in charts.WEDGE_CHARTS:
        assert sum(a.startswith(charts.chart_title(key, lang)) for a in alts) == 1, key
    assert charts.chart_title("wedges", lang) != charts.chart_title(
        "wedges_including_imports", lang)


def test_wedges_skipped_with_a_visible_note(tmp_path, model, scenario_file):
    result = build_report(["baseline", str(scenario_file)], tmp_path, lang="zh",
                                 model=model)
    assert t("chart_report_wedges_unavailable", "en") in result.notes["en"]
    assert not list(tmp_path.glob("wedges_*"))
    _, slides = _slides(tmp_path / "report_zh.pptx")
    # the charts and the MAC curve of the costs (issue 19), no wedge charts
    assert len([s for s in slides if _pictures(s)]) == len(charts.CHARTS) + 1
    title_text = slides[0].placeholders[1].text_frame.text
    assert t("chart_report_wedges_unavailable", "zh") in title_text


def test_refuses_to_overwrite_and_writes_nothing(built, model, scenario_file):
    out, _ = built
    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(OutputExistsError, match="--force"):
        build_report(["baseline", str(scenario_file)], out, lang="en", model=model)
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_failure_part_way_leaves_no_files(tmp_path, model, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "build_workbook", broken)
    out = tmp_path / "pack"
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(["baseline"], out, lang="en", model=model)
    assert not out.exists() or not list(out.iterdir())


def test_targets_slide_colours_met_green_missed_red(built):
    out, _ = built
    _, slides = _slides(out / "report_en.pptx")
    colours = {}
    for slide in slides:
        for shape in slide.shapes:
            if shape.has_table:
                for row in shape.table.rows:
                    for cell in row.cells:
                        runs = cell.text_frame.paragraphs[0].runs
                        text = cell.text_frame.text
                        if runs and runs[0].font.color and runs[0].font.color.type:
                            colours[text] = tuple(runs[0].font.color.rgb)
    met = [c for x, c in colours.items() if x.split(" · chance")[0].endswith("· met")]
    missed = [c for x, c in colours.items() if x.split(" · chance")[0].endswith("· missed")]
    assert met
    assert missed
    assert set(met) == {report.MET_RGB}
    assert set(missed) == {report.MISSED_RGB}


def test_one_existing_file_blocks_the_whole_report(tmp_path, model):
    mine = tmp_path / "report_en.pptx"
    mine.write_bytes(b"my own deck")
    with pytest.raises(OutputExistsError, match="report_en.pptx"):
        build_report(["baseline"], tmp_path, lang="en", model=model)
    assert mine.read_bytes() == b"my own deck"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report_en.pptx"]
    # with force it is replaced by a real deck
    build_report(["baseline"], tmp_path, lang="en", model=model, force=True)
    prs, slides = _slides(mine)
    assert len([s for s in slides if _pictures(s)]) == len(charts.CHARTS)


def test_wedges_chart_and_slide_when_a_wedge_function_is_given(tmp_path, model, scenario_file,
                                                    fake_wedges):
    result = build_report(["baseline", str(scenario_file)], tmp_path, lang="zh",
                                 model=model, wedges=fake_wedges)
    assert (tmp_path / "wedges_zh.png").is_file()
    assert (tmp_path / "wedges_zh.svg").is_file()
    assert (tmp_path / "wedges_including_imports_zh.png").is_file()
    # both CO2 measures, not for the baseline
    assert fake_wedges.calls == [("policy_test", "co2_emissions"),
                           ("policy_test", "co2_including_imports")]
    _, slides = _slides(tmp_path / "report_zh.pptx")
    assert len([s for s in slides if _pictures(s)]) == len(charts.CHARTS) + 2 + 1  # + MAC curve
    sheets = pd.read_excel(tmp_path / report.DATA_FILE, sheet_name=None, engine="openpyxl")
    assert set(sheets["wedges"]["series"]) == {"industry", "energy supply"}
    assert not result.notes["en"] or all("wedges" not in n for n in result.notes["en"])


def test_baseline_only_gets_a_note_instead_of_wedges(tmp_path, model, fake_wedges):
    result = build_report(["baseline"], tmp_path, lang="en", model=model,
                                 wedges=fake_wedges)
    assert t("chart_report_wedges_baseline_only", "en") in result.notes["en"]
    assert not list(tmp_path.glob("wedges_*"))
    assert fake_wedges.calls == []


def test_lever_table_baseline_alone_is_empty():
    from greenpath.scenarios import scenario as scenarios

    base = scenarios.load("baseline")
    table = report.lever_table([base], base, "en")
    assert table.empty
    assert t("chart_report_col_baseline", "en") in table.columns


def test_bad_requests_are_user_errors(tmp_path, capsys):
    code = main(["report", "no_such_scenario", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "no_such_scenario" in capsys.readouterr().err
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert main(["report", "baseline", "--out", str(afile)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["report", "baseline", "baseline", "--out", str(tmp_path / "r")]) == 2
    assert "twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", "baseline", "--out", str(tmp_path), "--lang", "fr"])


def test_cli_writes_then_refuses_then_forces(tmp_path, capsys):
    out = tmp_path / "pack"
    assert main(["report", "baseline", "--out", str(out), "--lang", "en",
                 "--presentation"]) == 0
    printed = capsys.readouterr().out
    assert "report_en.pptx" in printed
    assert "note:" in printed
    assert main(["report", "baseline", "--out", str(out), "--lang", "en"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["report", "baseline", "--out", str(out), "--lang", "en", "--force"]) == 0
    expected = report.planned_files(out, list(charts.CHARTS), ["en"])
    assert all(p.is_file() for p in expected)
    assert math.isclose(len(list(out.iterdir())), len(expected))


# ---------------------------------------------------------------- decks that render anywhere
def _runs_xml(slides):
    from pptx.oxml.ns import qn

    return [r for slide in slides for r in slide._element.iter(qn("a:r"))]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_text_run_names_an_east_asian_font(built, lang):
    """A PC without a CJK theme font shows Chinese in Microsoft YaHei, not as boxes."""
    from pptx.oxml.ns import qn

    out, _ = built
    prs, slides = _slides(out / f"report_{lang}.pptx")
    runs = _runs_xml(slides)
    assert len(runs) > 50
    for run in runs:
        rpr = run.find(qn("a:rPr"))
        assert rpr is not None, run.findtext(qn("a:t"))
        (ea,) = rpr.findall(qn("a:ea"))
        assert ea.get("typeface") == report.EA_FONT, run.findtext(qn("a:t"))
        # schema order: fill before the fonts, the fonts before anything else
        tags = [c.tag for c in rpr]
        if qn("a:solidFill") in tags:
            assert tags.index(qn("a:solidFill")) < tags.index(qn("a:ea"))
    # the English deck carries Chinese too (clauses), so this matters in both
    if lang == "en":
        assert any(any("\u4e00" <= ch <= "\u9fff" for ch in (r.findtext(qn("a:t")) or ""))
                   for r in runs)
    from pptx.opc.constants import RELATIONSHIP_TYPE as RT

    theme = prs.slide_master.part.part_related_by(RT.THEME).blob
    assert theme.count(f'<a:ea typeface="{report.EA_FONT}"/>'.encode()) == 2


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_character_of_the_deck_has_a_glyph_in_the_bundled_fonts(built, lang):
    """The fonts the charts embed (Noto Sans CJK SC, DejaVu Sans) cover all deck text."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    from pptx.oxml.ns import qn

    out, _ = built
    _, slides = _slides(out / f"report_{lang}.pptx")
    text = "".join(r.findtext(qn("a:t")) or "" for r in _runs_xml(slides))
    covered = set(FT2Font(str(charts.FONT_FILE)).get_charmap())
    covered |= set(FT2Font(font_manager.findfont("DejaVu Sans")).get_charmap())
    missing = sorted({ch for ch in text if not ch.isspace() and ord(ch) not in covered})
    assert missing == []


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_table_cell_clips_a_wrapped_line(built, lang):
    """Every row is at least as tall as the longest of its cells needs at its width."""
    from pptx.util import Pt

    out, _ = built
    prs, slides = _slides(out / f"report_{lang}.pptx")
    checked = wrapped = 0
    for slide in slides:
        for shape in slide.shapes:
            if not shape.has_table:
                continue
            table = shape.table
            widths = [c.width / 914400 for c in table.columns]
            assert shape.top + sum(r.height for r in table.rows) <= prs.slide_height - Pt(24)
            for row in table.rows:
                texts = [c.text_frame.text for c in row.cells]
                font = row.cells[0].text_frame.paragraphs[0].runs[0].font.size.pt
                need = report.row_height_pt(texts, widths, font)
                assert row.height >= Pt(need) - 1, texts
                lines = max(report.cell_lines(x, w, font) for x, w in zip(texts, widths, strict=True))
                wrapped += lines > 1
                checked += 1
    assert checked > 20
    assert wrapped  # the test would be empty without a wrapped cell


def test_row_height_grows_with_the_lines_of_a_cell():
    one = report.row_height_pt(["short", "x"], [2.0, 1.0], 14)
    two = report.row_height_pt(["a label that wraps in two", "x"], [2.0, 1.0], 14)
    assert report.cell_lines("a label that wraps in two", 2.0, 14) == 2
    assert two == pytest.approx(one + 14 * report.LINE_HEIGHT)
    assert report.cell_lines("中文标签" * 10, 2.0, 14) > report.cell_lines("abcd" * 10, 2.0, 14)


def test_key_numbers_slide_follows_the_title(built, model):
    from greenpath.model import indicators
    from greenpath.scenarios import scenario as scenarios
    from greenpath.scenarios import targets as tg

    out, _ = built
    _, slides = _slides(out / "report_en.pptx")
    (table,) = [sh.table for sh in slides[1].shapes if sh.has_table]
    assert t("chart_report_key_title", "en") in slides[1].shapes[0].text_frame.text
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0][0] == "Scenario"
    base = scenarios.load("baseline")
    frame = model.run(**base.run_kwargs()).frame
    (row,) = [r for r in rows if r[0] == base.title_en]
    head = tg.headline(frame)
    assert row[1] == ("not peaked (rising in 2035)" if head["still_rising"]
                      else f"{head['peak_year']}: {head['peak_value']:.1f} Mt")
    assert row[2] == f"{frame.loc[2030, 'co2_emissions']:.1f} Mt"
    assert row[3] == f"{frame.loc[2035, 'co2_emissions']:.1f} Mt"
    coal = 100 * indicators.change_vs(frame, "total_coal_consumption").loc[2025]
    assert row[4].startswith(f"{coal:+.1f} %")
    renewables = frame.loc[2025, "renewable_capacity"]
    assert row[5].startswith(f"{renewables:,.0f} MW (target 1,000 MW / 2,500 MW:")
    # the chance of meeting each, as the targets slide gives it (calibration v2's posterior)
    cells: dict[str, str] = {}
    for slide in slides[2:]:
        for shape in slide.shapes:
            if shape.has_table:
                header = [c.text for c in shape.table.rows[0].cells]
                if "baseline" in header:
                    at = header.index("baseline")
                    cells.update({r.cells[0].text: r.cells[at].text for r in shape.table.rows})
    coal_chance = cells["Coal consumption 2025 vs 2020"].rsplit(" · ", 1)[1]
    assert coal_chance.startswith("chance ")
    assert row[4].endswith(f": missed, {coal_chance})") or row[4].endswith(f": met, {coal_chance})")
    ren = [cells[label].rsplit(" · ", 1)[1] for label in cells if label.startswith("Renewable capacity 2025")]
    assert len(ren) == 2
    assert all(c in row[5] for c in ren), (row[5], ren)


def test_report_set_keeps_one_target_set(tmp_path, model, capsys):
    out = tmp_path / "seed"
    assert main(["report", "baseline", "--out", str(out), "--lang", "en", "--set",
                 "seed_2021"]) == 0
    capsys.readouterr()
    sheets = pd.read_excel(out / report.DATA_FILE, sheet_name=None, engine="openpyxl")
    assert set(sheets["targets"]["set"].fillna("")) <= {"", "seed_2021"}
    assert "seed_2021" in set(sheets["targets"]["set"].fillna(""))
    _, slides = _slides(out / "report_en.pptx")
    cells = [c.text for sh in slides[1].shapes if sh.has_table for r in sh.table.rows
             for c in r.cells]
    assert any("(target 1,000 MW:" in c for c in cells)
    assert not any("2,500" in c for c in cells)
    assert main(["report", "baseline", "--out", str(tmp_path / "x"), "--set", "seed"]) == 2
    assert "did you mean 'seed_2021'" in capsys.readouterr().err
