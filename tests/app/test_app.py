"""The Streamlit app, headless (``streamlit.testing.v1.AppTest``), and its helpers.

Every page is run; levers, language, uploads and share links are driven through the
widgets; bad input must show an error naming what was wrong and leave the scenario
as it was; two sessions moving levers at the same time must never see each other's
values.
"""

from __future__ import annotations

import json
import re
import threading
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from greenpath.app import model_view, runner, sections, session, state, uncertainty
from greenpath.app.plain import shown as md_shown
from greenpath.i18n import t, table, unit_text
from greenpath.model import registry as reg
from greenpath.scenarios import scenario as sc

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def new_app(query: dict[str, str] | None = None, more: bool = False,
            all_levers: bool = True) -> AppTest:
    """Start a fresh session of the app and run it once.

    ``more``: open "More charts" (the charts not in view are built only while it is open).
    ``all_levers``: open every lever section (a section draws its levers only while open;
    the page opens with the energy section open).
    """
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    if more:
        at.session_state["w_more"] = True
    if all_levers:
        for section, _ in sections.grouped_levers():
            at.session_state[session.section_key(section.id)] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, key: str, lang: str = "en") -> str:
    """Value of the KPI whose label is the string ``key``."""
    label = t(key, lang)
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def badge(at: AppTest, target_label: str) -> str:
    """'met' or 'missed' for the target line whose label is ``target_label``."""
    for md in at.markdown:
        if f"**{target_label}**" in md.value:
            return "met" if ":green-badge[" in md.value else "missed"
    raise AssertionError(f"no target line {target_label!r}")


def open_tab(at: AppTest, tab: str, lang: str = "en") -> AppTest:
    """Open tab ``tab`` (one of ``TABS``) of the scenario panel: only the open tab is drawn."""
    label = t(f"app_tab_{tab}", lang)
    if session.W_TABS in at.session_state and at.session_state[session.W_TABS] == label:
        return at  # open already (and AppTest cannot rerun a page showing an upload)
    at.session_state[session.W_TABS] = label
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def toml_preview(at: AppTest) -> str:
    """Return the text of the scenario-file tab's TOML preview (opening that tab)."""
    open_tab(at, "file")
    return next(c.value for c in at.code if "[scenario]" in c.value)


def lever(at: AppTest, name: str):
    return at.slider(key=f"w_lever_{name}")


def errors(at: AppTest) -> str:
    return "\n".join(md_shown(e.value) for e in at.error)


def charts(at: AppTest) -> list[str]:
    """Vega-Lite specs (with their data) of every chart on the page."""
    return [el.proto.spec + "".join(f"{d.name}:{d.data.data.hex()}" for d in el.proto.datasets)
            for el in at.get("vega_lite_chart")]


def co2_2030(at: AppTest) -> float:
    return float(metric(at, "app_kpi_co2_2030").replace(",", ""))


def _target_label(target_id: str) -> str:
    from greenpath.scenarios import targets as tg

    return next(x.label_en for x in tg.load() if x.id == target_id)


RENEWABLES_1GW = _target_label("renewable_capacity_2025_seed")


# ------------------------------------------------------------------ pages
def test_simulator_page_draws_kpis_targets_and_charts():
    at = new_app()
    assert at.title[0].value == t("app_title", "en")
    assert co2_2030(at) > 0
    assert len(at.get("vega_lite_chart")) == 3  # the headline charts in view
    at.session_state["w_more"] = True
    at.run()
    assert len(at.get("vega_lite_chart")) >= 7
    assert any(":green-badge[" in m.value or ":red-badge[" in m.value for m in at.markdown)
    assert len(at.slider) == len(reg.levers())
    assert not at.error


def test_model_page_has_variable_table_and_diagram():
    at = new_app({"page": "model"})
    assert at.title[0].value == t("app_model_title", "en")
    assert at.get("graphviz_chart")
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.startswith("digraph")
    assert at.dataframe, "variable table missing"
    frame = at.dataframe[0].value
    assert {"equation", "unit", "comment", "source"} <= set(frame.columns)
    # another sector, searched
    at.selectbox(key="w_sector").set_value("Renewable power").run()
    assert not at.exception
    assert "wind_capacity" in at.get("graphviz_chart")[0].proto.spec


def test_calibration_page_runs():
    at = new_app({"page": "calibration"})
    assert at.title[0].value == t("app_calibration_title", "en")
    assert at.get("vega_lite_chart"), "recorded vs simulated chart missing"
    assert not at.exception


def test_page_switch_keeps_lever_values():
    at = new_app()
    lever(at, "wind_build_rate").set_value(321.0).run()
    at.radio(key="w_page").set_value("model").run()
    assert not at.exception
    at.radio(key="w_page").set_value("simulator").run()
    assert lever(at, "wind_build_rate").value == pytest.approx(321.0)


# ------------------------------------------------------------------ levers
def test_lever_changes_co2_number_and_chart():
    at = new_app()
    before_co2, before_charts = co2_2030(at), charts(at)
    lever(at, "industrial_saving_action_rate").set_value(0.08).run()
    assert not at.exception
    assert co2_2030(at) < before_co2 - 0.5
    assert charts(at)[0] != before_charts[0]
    assert "unsaved changes" in " ".join(m.value for m in at.markdown)


def test_lever_flips_target_badge():
    at = new_app()
    for name in ("wind_build_rate", "utility_pv_build_rate", "distributed_pv_build_rate"):
        lever(at, name).set_value(0.0).run()
    assert badge(at, RENEWABLES_1GW) == "missed"
    lever(at, "distributed_pv_build_rate").set_value(600.0).run()
    assert badge(at, RENEWABLES_1GW) == "met"
    at.button(key="w_revert").click().run()
    assert lever(at, "distributed_pv_build_rate").value == pytest.approx(
        reg.levers()["distributed_pv_build_rate"].default)
    assert not any(s.label.endswith("●") for s in at.slider)


def test_preset_change_sets_its_levers():
    at = new_app()
    at.selectbox(key="w_preset").set_value("plan_2021").run()
    assert not at.exception
    plan = sc.load("plan_2021")
    assert lever(at, "wind_build_rate").value == pytest.approx(plan.params["wind_build_rate"])
    # a year table of the preset is shown as such, not as a slider
    assert "backward_capacity_exit_rate" in plan.tables
    assert not any(s.key == "w_lever_backward_capacity_exit_rate" for s in at.slider)
    at.button(key="w_const_backward_capacity_exit_rate").click().run()
    assert lever(at, "backward_capacity_exit_rate").value == pytest.approx(0.02)


# ------------------------------------------------------------------ language
def test_language_switch_translates_interface_and_charts():
    at = new_app()
    at.radio(key="w_lang").set_value("zh").run()
    assert not at.exception
    assert at.title[0].value == t("app_title", "zh")
    assert metric(at, "app_kpi_co2_2030", "zh")
    specs = "".join(json.dumps(json.loads(el.proto.spec), ensure_ascii=False)
                    for el in at.get("vega_lite_chart"))
    assert t("chart_axis_co2", "zh") in specs
    assert re.search(r"[\u4e00-\u9fff]", specs), "no Chinese text in the chart specs"
    labels = [s.label for s in at.slider]
    assert reg.levers()["wind_build_rate"].label_zh in " ".join(labels)


# ------------------------------------------------------------------ uploads
def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    open_tab(at, "file")
    at.file_uploader(key="w_upload").set_value((name, data, "application/toml")).run()
    assert not at.exception
    return at


def test_upload_good_scenario_sets_levers():
    at = new_app()
    text = (ROOT / "scenarios" / "plan_14th_fyp.toml").read_text(encoding="utf-8")
    text = text.replace('name = "plan_14th_fyp"', 'name = "my_variant"')
    text = re.sub(r"(?m)^wind_build_rate = .*$", "wind_build_rate = 222.0", text)
    _upload(at, "my_variant.toml", text.encode())
    assert not at.error
    assert lever(at, "wind_build_rate").value == pytest.approx(222.0)
    assert lever(at, "utility_pv_build_rate").value == pytest.approx(
        sc.load("plan_14th_fyp").params["utility_pv_build_rate"])
    assert at.selectbox(key="w_preset").value == "__uploaded__"
    assert t("app_upload_loaded", "en", file="my_variant.toml") in md_shown(at.success[0].value)


def test_upload_message_sits_under_the_uploader_and_is_cleared_with_the_file():
    """The error is shown in the scenario-file tab, after the uploader, not at the top."""
    at = new_app()
    _upload(at, "bad.toml", b'[levers]\nwind_build_rate = 9999\n')
    tab = next(tb for tb in at.tabs if tb.label == t("app_tab_file", "en"))
    assert "bad.toml: [levers] wind_build_rate = 9999" in " ".join(md_shown(e.value) for e in tab.error)
    assert len(at.error) == len(tab.error), errors(at)  # not repeated at the top of the page
    at.file_uploader(key="w_upload").set_value(None).run()
    assert not at.exception
    assert not at.error  # a removed file leaves no stale message behind
    _upload(at, "good.toml", b'[levers]\nwind_build_rate = 200\n')
    assert not at.error, errors(at)  # a file extending no preset can be saved again
    assert lever(at, "wind_build_rate").value == pytest.approx(200.0)
    assert "extends" not in toml_preview(at)


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("bad_range.toml", b'[levers]\nwind_build_rate = 9999\n', "wind_build_rate"),
    ("misspelt.toml", b'[levers]\nwnd_build_rate = 100\n', "did you mean 'wind_build_rate'"),
    ("syntax.toml", b'[levers\nwind_build_rate = 100\n', "not valid TOML"),
    ("binary.toml", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("big.toml", b"#" * (sc.MAX_FILE_BYTES + 1), "larger than"),
    ("constant.toml", b'[levers]\nexec = "__import__(\'os\')"\n', "unknown lever 'exec'"),
])
def test_upload_bad_scenario_shows_error_and_changes_nothing(name, data, expected):
    at = new_app()
    lever(at, "wind_build_rate").set_value(150.0).run()
    co2, values = co2_2030(at), {s.key: s.value for s in at.slider}
    _upload(at, name, data)
    assert expected in errors(at), errors(at)
    assert t("app_error_upload", "en", file=name) in errors(at)
    assert {s.key: s.value for s in at.slider} == values
    assert co2_2030(at) == co2
    at.button(key="w_dismiss_upload").click().run()
    assert not at.error


def test_bad_range_error_names_file_key_value_and_range():
    at = new_app()
    _upload(at, "bad.toml", b'[levers]\nwind_build_rate = 9999\n')
    p = reg.levers()["wind_build_rate"]
    assert f"bad.toml: [levers] wind_build_rate = 9999: outside the allowed range " \
           f"{p.min:g} to {p.max:g}" in errors(at)


# ------------------------------------------------------------------ share links
def test_good_link_restores_settings():
    at = new_app({"scenario": "plan_2021", "wind_build_rate": "300", "lang": "zh"})
    assert not at.error
    assert at.selectbox(key="w_preset").value == "plan_2021"
    assert lever(at, "wind_build_rate").value == pytest.approx(300.0)
    assert lever(at, "prefab_share_target").value == pytest.approx(
        sc.load("plan_2021").params["prefab_share_target"])
    assert at.title[0].value == t("app_title", "zh")
    # the address bar is kept as a link of what is shown: only the lever that differs
    assert at.query_params["wind_build_rate"] in ("300", ["300"])
    assert "prefab_share_target" not in at.query_params


@pytest.mark.parametrize(("query", "expected"), [
    ({"wind_build_rate": "9999"}, "outside the allowed range"),
    ({"wind_build_rate": "lots"}, "must be a number"),
    ({"wnd_build_rate": "100"}, "did you mean 'wind_build_rate'"),
    ({"scenario": "plan_2031", "wind_build_rate": "100"}, "no such preset"),
    ({"emission_factor_coal": "1"}, "emission_factor_coal"),
])
def test_bad_link_shows_error_and_leaves_scenario(query, expected):
    at = new_app(query)
    assert expected in errors(at), errors(at)
    assert t("app_error_link", "en") in errors(at)
    base = state.lever_values(state.load_preset("baseline"))
    for s in at.slider:
        assert s.value == pytest.approx(base[s.key.removeprefix("w_lever_")]), s.key


def test_bad_language_in_link_is_reported_rest_applies():
    at = new_app({"lang": "fr", "wind_build_rate": "120"})
    assert "lang = 'fr'" in errors(at)
    assert lever(at, "wind_build_rate").value == pytest.approx(120.0)


def test_link_encodes_only_levers_that_differ_and_round_trips():
    base = state.load_preset("plan_2021")
    values = state.lever_values(base)
    values["wind_build_rate"] = 333.0
    current = state.compose(base, values)
    query = state.encode_link("plan_2021", current.settings(), "en", "simulator")
    assert query == {"scenario": "plan_2021", "lang": "en", "page": "simulator",
                     "wind_build_rate": "333"}
    request, errs = state.decode_link(query, ("en", "zh"), ("simulator",))
    assert not errs
    assert request.preset == "plan_2021"
    assert request.settings == {"wind_build_rate": 333.0}


def test_link_of_uploaded_scenario_without_preset_restores_it():
    base = state.from_upload(b'[levers]\nwind_build_rate = 250\n'
                             b'backward_capacity_exit_rate = { 2021 = 0.03, 2026 = 0.0 }\n'
                             b'[uncertainties]\ngdp_growth_2023_to_2030 = 0.05\n', "u.toml")
    assert base.preset is None
    query = state.encode_link(base.preset, base.scenario.settings(), "en", "simulator")
    request, errs = state.decode_link(query, ("en", "zh"), ("simulator",))
    assert not errs
    restored = {**state.preset_settings(request.preset), **request.settings}
    assert state.run_key(restored) == state.run_key(base.scenario.settings())


# ------------------------------------------------------------------ save / compare
def test_save_draws_comparison_and_never_overwrites_without_asking():
    at = new_app()
    lever(at, "wind_build_rate").set_value(400.0).run()
    at.text_input(key="w_save_name").input("fast wind").run()
    at.button(key="w_save").click().run()
    assert "fast wind" in at.session_state["gp_saved"]
    saved = dict(at.session_state["gp_saved"]["fast wind"])
    specs = "".join(charts(at))
    assert "fast wind" in specs
    # same name again with other settings: refused until "replace" is ticked
    lever(at, "wind_build_rate").set_value(50.0).run()
    at.button(key="w_save").click().run()
    assert at.session_state["gp_saved"]["fast wind"] == saved
    assert at.warning
    assert "fast wind" in md_shown(at.warning[0].value)
    at.checkbox(key="w_save_replace").check().run()
    at.button(key="w_save").click().run()
    assert at.session_state["gp_saved"]["fast wind"]["wind_build_rate"] == pytest.approx(50.0)


def test_every_new_save_joins_the_charts_and_the_oldest_makes_room():
    at = new_app()
    lever(at, "wind_build_rate").set_value(400.0).run()
    _save(at, "fast wind")
    lever(at, "wind_build_rate").set_value(450.0).run()
    _save(at, "faster wind")  # the second save reaches the charts too
    assert at.multiselect(key="w_compare").value == ["fast wind", "faster wind"]
    specs = "".join(charts(at))
    assert "fast wind" in specs
    assert "faster wind" in specs
    for i, name in enumerate(("third", "fourth")):
        lever(at, "wind_build_rate").set_value(300.0 + i).run()
        _save(at, name)
    assert at.multiselect(key="w_compare").value == ["faster wind", "third", "fourth"]
    at.multiselect(key="w_compare").unselect("third").run()
    assert "third" not in "".join(charts(at))
    at.button(key="w_rm_fourth").click().run()
    assert at.multiselect(key="w_compare").value == ["faster wind"]


def test_changed_scenario_is_titled_preset_plus_changes_in_file_and_line():
    at = new_app()
    preset = sc.load("baseline")
    assert t("app_as_preset", "en") in " ".join(m.value for m in at.markdown)
    lever(at, "wind_build_rate").set_value(321.0).run()
    changed_en = t("app_title_changed", "en", title=preset.title_en)
    changed_zh = t("app_title_changed", "zh", title=preset.title_zh)
    assert any(changed_en in md_shown(m.value) for m in at.markdown)
    toml = tomllib.loads(toml_preview(at))
    assert toml["scenario"]["title_en"] == changed_en
    assert toml["scenario"]["title_zh"] == changed_zh
    assert toml["levers"]["wind_build_rate"] == pytest.approx(321.0)
    # the name the settings are saved under titles them from then on
    _save(at, "my wind")
    toml = tomllib.loads(toml_preview(at))
    assert toml["scenario"]["title_en"] == toml["scenario"]["title_zh"] == "my wind"


def test_deck_title_slide_names_the_changed_scenario(model):
    import io

    from pptx import Presentation

    from greenpath.app import exports

    base = sc.load("baseline")
    title = t("app_title_changed", "en", title=base.title_en)
    current = base.derive("baseline", params={"wind_build_rate": 321.0}, title_en=title,
                          title_zh=t("app_title_changed", "zh", title=base.title_zh))
    rc, rb = model.run(**current.run_kwargs()), model.run(**base.run_kwargs())
    shown = [exports.Shown("Current", "Current", current, rc),
             exports.Shown("baseline", "Baseline", base, rb)]
    deck = Presentation(io.BytesIO(exports.deck(shown, "en", presentation=False)))
    first = " ".join(sh.text_frame.text for sh in deck.slides[0].shapes if sh.has_text_frame)
    assert f"{title}; {base.title_en}" in first


def test_chinese_main_page_shows_no_english_units_set_ids_or_raw_names():
    """Units, target-set ids and lever tooltips of the simulator page in Chinese."""
    at = new_app({"lang": "zh"})
    shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    shown += [f"{m.label} {m.value} {m.proto.help}" for m in at.metric]
    for widget in (*at.slider, *at.multiselect, *at.selectbox, *at.toggle):
        shown.append(f"{widget.label} {widget.proto.help}")
    shown += [" ".join(map(str, m.options)) for m in at.multiselect]
    text = "\n".join(shown)
    english = ["MW/Year", "1/Year", "10k tce", "Dmnl", "CNY/tCO2", "MtCO2/Year",
               "per year", "share (0–1)", "fyp14_energy", "seed_2021"]
    found = [w for w in english if w in text]
    assert not found, found
    assert not re.search(r"\bMW\b", text), re.findall(r".{30}\bMW\b.{10}", text)
    assert t("app_target_set_seed_2021", "zh") in text
    for name, p in reg.levers().items():  # every lever's tooltip is Chinese
        help_text = next(s.proto.help for s in at.slider if s.key == f"w_lever_{name}")
        assert re.search(r"[\u4e00-\u9fff]", help_text), (name, help_text)
        assert help_text != p.description


def test_every_lever_target_set_and_sector_has_chinese_words(model):
    """The data the app labels from the string table: a new name shows up here."""
    from greenpath.i18n import has
    from greenpath.scenarios import targets as tg

    assert not [n for n in reg.levers() if not has(f"app_lever_help_{n}")]
    sets = {x.set for x in tg.load() if x.set}
    assert not [x for x in sets if not has(f"app_target_set_{x}")]
    groups = set(model.variables()["group"])
    assert not [g for g in groups if not has("app_sector_" + model_view.py_name(g))]
    kinds = set(model.variables()["kind"])
    assert not [k for k in kinds if not has(f"app_kind_{k}")]


def test_chinese_model_page_names_sectors_in_chinese():
    at = new_app({"page": "model", "lang": "zh"})
    sector = at.selectbox(key="w_sector")
    assert "Renewable power" not in sector.options
    assert t("app_sector_renewable_power", "zh") in sector.options
    assert t("app_sector_renewable_power", "zh") in at.subheader[0].value
    frame = at.dataframe[0].value
    assert set(frame["group"]) == {t("app_sector_renewable_power", "zh")}
    assert not set(frame["kind"]) & {"auxiliary", "stock", "constant", "lever"}
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["vensim_name"]["pinned"] is True  # the name stays in view


def test_large_sector_opens_on_a_readable_part_and_offers_the_whole():
    at = new_app({"page": "model"})
    at.selectbox(key="w_sector").set_value("Industry").run()
    part = at.selectbox(key="w_part_industry")
    assert part.value != "__whole__"
    dot = at.get("graphviz_chart")[0].proto.spec
    assert dot.count("->") < 60  # a part, not the 285 links of the whole sector
    part.set_value("__whole__").run()
    assert at.get("graphviz_chart")[0].proto.spec.count("->") > 200
    at.toggle(key="w_diagram_full").set_value(True).run()
    assert not at.exception
    assert at.get("graphviz_chart")


def test_chinese_calibration_page_translates_columns_and_axis():
    at = new_app({"page": "calibration", "lang": "zh"})
    headers = " ".join(json.dumps(json.loads(df.proto.columns), ensure_ascii=False)
                       for df in at.dataframe)
    assert "mape_pct" not in headers.replace('"mape_pct": {', "")
    assert t("app_cal_col_mape_pct", "zh") in headers
    assert t("app_cal_col_lewis_grade", "zh") in headers
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    title = spec["encoding"]["y"]["title"]
    assert title == f"{t('app_var_co2_emissions', 'zh')} ({unit_text('MtCO2/Year', 'zh')})"


def test_calibration_axis_title_is_the_variable_label_and_unit():
    at = new_app({"page": "calibration"})
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["y"]["title"] == "CO₂ emissions (Mt CO₂ per year)"


def test_co2_chart_explains_the_early_history():
    at = new_app()
    note = next((c.value for c in at.caption if "CEADs" in c.value), "")
    assert re.search(r"\d+–\d+ Mt a year in 2005–2011", note), note
    assert "shape of 2005–2010" in note
    at.radio(key="w_lang").set_value("zh").run()
    assert any("CEADs清单" in c.value for c in at.caption)


def test_bands_on_every_headline_chart():
    """CO2, coal, renewables and both intensity panels draw a P10-P90 band."""
    at = new_app(more=True)
    banded = [el for el in at.get("vega_lite_chart") if '"p90"' in el.proto.spec]
    assert len(banded) == 6, len(banded)  # both CO2 measures, coal, renewables, intensities
    bands = runner.compute_bands(state.run_key({}))
    assert set(bands["variable"]) == set(runner.BAND_VARIABLES)


def test_presentation_hides_the_sidebar_and_reaches_the_targets():
    at = new_app()
    at.toggle(key="w_present").set_value(True).run()
    assert any("stSidebar" in h.proto.body for h in at.get("html"))
    for _ in range(len(runner_slides())):
        if at.session_state["gp_chart"] == "targets":
            break
        at.button(key="w_next").click().run()
    assert at.session_state["gp_chart"] == "targets"
    assert not at.get("vega_lite_chart")
    assert any(":red-badge[" in m.value or ":green-badge[" in m.value for m in at.markdown)
    at.button(key="w_present_exit").click().run()
    assert not at.session_state["gp_present"]
    assert len(at.get("vega_lite_chart")) >= 3


def runner_slides() -> tuple[str, ...]:
    from greenpath.app import ui

    return ui.SLIDES


def test_link_setting_only_an_uncertainty_says_so():
    name, p = next((n, p) for n, p in reg.uncertainties().items() if p.unit.lower() != "year")
    value = p.min + 0.37 * (p.max - p.min)
    at = new_app({name: repr(value)})
    line = " ".join(md_shown(m.value) for m in at.markdown)
    assert t("app_as_preset", "en") not in line
    assert t("app_link_settings", "en", n=1) in line
    base = sc.load("baseline")
    assert t("app_title_changed", "en", title=base.title_en) in line


def test_repeated_link_parameter_is_an_error_and_changes_nothing():
    at = new_app({"wind_build_rate": ["100", "200"]})
    assert "wind_build_rate is given 2 times" in errors(at), errors(at)
    base = state.lever_values(state.load_preset("baseline"))
    assert lever(at, "wind_build_rate").value == pytest.approx(base["wind_build_rate"])
    request, errs = state.decode_link({"lang": ["zh", "en"], "wind_build_rate": "120"},
                                      ("en", "zh"), ("simulator",))
    assert request.lang is None
    assert request.settings == {"wind_build_rate": 120.0}
    assert "lang is given 2 times" in " ".join(errs)


def test_downloads_offer_toml_csv_and_chart_files():
    at = new_app()
    keys = set()
    for tab in ("file", "downloads"):
        open_tab(at, tab)
        keys |= {getattr(el, "key", None) for el in at.get("download_button")}
    for expected in ("w_dl_toml", "w_dl_csv", "w_dl_xlsx", "w_dl_pptx", "w_dl_co2_png",
                     "w_dl_co2_svg"):
        assert expected in keys, keys


def test_presentation_mode_shows_one_chart():
    at = new_app()
    at.toggle(key="w_present").set_value(True).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1
    first = charts(at)[0]
    at.button(key="w_next").click().run()
    assert charts(at)[0] != first
    assert re.search(r'labelFontSize": ?22', at.get("vega_lite_chart")[0].proto.spec)


# ------------------------------------------------------------------ sessions
def _one_script_run_at_a_time(monkeypatch) -> None:
    """Serialise AppTest script runs across threads.

    AppTest is written for one test at a time: each run swaps class-wide state (the
    mock ``Runtime._instance``, the pages manager, config options) and resets it when
    it ends, so two AppTests running their scripts at the same moment fail inside
    Streamlit ("Runtime hasn't been created!", widget-id KeyErrors): a harness race,
    not an app fault (a real server has one Runtime for all sessions; the load script
    in benchmarks/ drives real concurrent sessions). With this lock the two sessions
    still interleave move by move and share every cache and the model pool, which is
    what isolation is about; concurrent model runs are tested on the pool itself
    (test_model_pool_lends_each_model_to_one_caller_at_a_time).
    """
    from streamlit.testing.v1.app_test import AppTest

    lock = threading.Lock()
    real_run = AppTest._run

    def run(self, *args, **kwargs):
        with lock:
            return real_run(self, *args, **kwargs)

    monkeypatch.setattr(AppTest, "_run", run)


def test_two_sessions_moving_levers_concurrently_stay_isolated(monkeypatch):
    """Each session sees the CO2 of its own lever value, whatever the other does.

    The lever values are used by no other test, the references come from a model of
    the test's own and every cache is cleared first: the two sessions' first moves
    really run the model instead of reading the result cache. The two sessions run in
    two threads, interleaved move by move (see _one_script_run_at_a_time).
    """
    import streamlit as st

    lever_name, values = "industrial_saving_action_rate", (0.013, 0.071)
    keys = {v: state.run_key({**sc.load("baseline").settings(), lever_name: v})
            for v in values}
    own = runner.ModelPool(size=1)
    reference = {v: f"{own.run(k).frame.loc[2030, 'co2_emissions']:,.1f}"
                 for v, k in keys.items()}
    assert reference[values[0]] != reference[values[1]]
    runs: list[tuple] = []
    original = runner.ModelPool.run

    def recorded(self, key, *args, **kwargs):
        runs.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(runner.ModelPool, "run", recorded)
    _one_script_run_at_a_time(monkeypatch)
    st.cache_data.clear()
    results: dict[str, list] = {"a": [], "b": []}
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def session(name: str, order: list[float]) -> None:
        try:
            at = new_app()
            start.wait(timeout=TIMEOUT)
            for v in order:
                lever(at, lever_name).set_value(v).run()
                assert not at.exception
                results[name].append((v, metric(at, "app_kpi_co2_2030"),
                                      lever(at, lever_name).value))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    a = threading.Thread(target=session, args=("a", [values[0], values[1]] * 2))
    b = threading.Thread(target=session, args=("b", [values[1], values[0]] * 2))
    a.start()
    b.start()
    a.join()
    b.join()
    assert not failures, failures
    for v, k in keys.items():
        assert k in runs, f"the app never ran {lever_name} = {v}: only the cache was read"
    for name in ("a", "b"):
        assert len(results[name]) == 4
        for value, co2, shown in results[name]:
            assert shown == pytest.approx(value)
            assert co2 == reference[value], (name, value, co2)


def test_model_pool_lends_each_model_to_one_caller_at_a_time():
    pool = runner.ModelPool(size=2)
    keys = [state.run_key({"industrial_saving_action_rate": v}) for v in (0.0, 0.03, 0.06)]
    serial = {k: pool.run(k).frame["co2_emissions"].to_numpy() for k in keys}
    out: list[tuple] = []
    failures: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(9):
                k = keys[(i + offset) % 3]
                out.append((k, pool.run(k).frame["co2_emissions"].to_numpy()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures, failures
    assert pool.created <= 2
    assert len(out) == 27
    for k, values in out:
        assert (values == serial[k]).all()


def test_run_key_is_sorted_settings_and_baseline_is_empty():
    assert state.run_key({}) == ()
    assert state.run_key(sc.load("baseline").settings()) == ()
    a = state.run_key({"wind_build_rate": 200.0, "biomass_build_rate": 20.0})
    b = state.run_key({"biomass_build_rate": 20.0, "wind_build_rate": 200.0})
    assert a == b == (("biomass_build_rate", 20.0), ("wind_build_rate", 200.0))
    assert state.run_key({"wind_build_rate": reg.effective_defaults()["wind_build_rate"]}) == ()
    hash(state.run_key(sc.load("plan_2021").settings()))


# ------------------------------------------------------------------ what the first page draws
def _lever_keys(at: AppTest) -> set[str]:
    return {s.key.removeprefix(session.W_LEVER) for s in at.slider}


def test_first_page_draws_only_the_open_lever_section():
    """A closed lever section draws no levers; opening one draws exactly its levers.

    Issue 16: the first page and every move send the energy section's 14 levers, not all 33.
    """
    grouped = dict((sec.id, [p.name for p in params]) for sec, params in sections.grouped_levers())
    at = new_app(all_levers=False)
    assert _lever_keys(at) == set(grouped["energy"])
    titles = [e.label for e in at.expander]
    for sec_id in grouped:
        assert t(f"app_section_{sec_id}", "en") in titles
    at.session_state[session.section_key("production")] = True
    at.run()
    assert _lever_keys(at) == set(grouped["energy"]) | set(grouped["production"])
    at.session_state[session.section_key("energy")] = False
    at.run()
    assert _lever_keys(at) == set(grouped["production"])
    # a lever in a closed section keeps its moved value, and the page says where it is
    lever(at, "backward_capacity_exit_rate").set_value(0.05).run()
    at.session_state[session.section_key("production")] = False
    at.run()
    assert not _lever_keys(at)
    assert set(state.changes(at.session_state["gp_base"], at.session_state["gp_values"])) == {
        "backward_capacity_exit_rate"}
    moved = t("app_sections_changed", "en", sections=t(
        "app_section_count", "en", section=t("app_section_production", "en"), n=1))
    assert moved in [c.value for c in at.caption]


def test_lever_section_titles_never_change():
    """A moved lever leaves every section title as it was, and its section open.

    A section that tracks whether it is open takes its title as part of its identity: a
    title counting moved levers made the section a new, closed one mid-move.
    """
    at = new_app(all_levers=False)
    at.session_state[session.section_key("production")] = True
    at.run()
    before = [e.label for e in at.expander]
    lever(at, "backward_capacity_exit_rate").set_value(0.05).run()
    assert [e.label for e in at.expander] == before
    assert "backward_capacity_exit_rate" in _lever_keys(at)  # still open


def test_scenario_panel_draws_only_the_open_tab():
    at = new_app()
    assert at.text_input(key=session.W_SAVE_NAME)  # the first tab: save for comparison
    assert not at.get("file_uploader")
    assert not at.code
    assert not {"w_dl_toml", "w_dl_csv"} & {getattr(b, "key", None)
                                           for b in at.get("download_button")}
    open_tab(at, "file")
    assert at.get("file_uploader")
    assert toml_preview(at)
    assert not any(getattr(w, "key", None) == session.W_SAVE_NAME for w in at.text_input)
    open_tab(at, "share")
    assert any("wind_build_rate" in c.value or "?" in c.value for c in at.code)
    open_tab(at, "downloads")
    assert {"w_dl_csv", "w_dl_xlsx", "w_dl_pptx"} <= {getattr(b, "key", None)
                                                     for b in at.get("download_button")}


# ------------------------------------------------------------------ tables and config
def test_every_lever_has_a_section():
    assert sections.unmapped() == []
    listed = [p.name for _, params in sections.grouped_levers() for p in params]
    assert sorted(listed) == sorted(reg.levers())


def test_every_lever_clause_has_an_english_gloss_citing_the_same_clause():
    numerals = dict(zip("一二三四五六七八九", "123456789", strict=True))
    for name, p in reg.levers().items():
        gloss = t(f"app_clause_{name}", "en")
        assert gloss, name
        for sec, sub in re.findall(r"([一二三四五六七八九])\(([一二三四五六七八九])\)", p.clause):
            assert f"{numerals[sec]}({numerals[sub]})" in gloss, (name, p.clause, gloss)


def test_every_string_the_app_uses_exists_in_both_languages():
    used = set()
    for path in [ROOT / "app.py", *(ROOT / "greenpath" / "app").glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["'](\w+)["']""", path.read_text(encoding="utf-8")))
    missing = sorted(k for k in used if k not in table())
    assert not missing, missing
    for sec in sections.SECTIONS:
        assert t(f"app_section_{sec.id}", "zh")
    own = tomllib.loads((ROOT / "greenpath" / "i18n" / "app.toml").read_text(encoding="utf-8"))
    assert all(k.startswith("app_") for k in own)


def test_no_deprecated_streamlit_caching():
    for path in [ROOT / "app.py", *(ROOT / "greenpath" / "app").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"st\.cache\(|st\.experimental_|@st\.cache\b(?!_)", text), path


def test_streamlit_config_is_local_and_strict():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert server["headless"] is True
    assert server["enableXsrfProtection"] is True
    assert server["maxUploadSize"] <= 1


# ------------------------------------------------------------------ live charts
def _live_runs(model, **params):
    from greenpath.app import charts as live

    current, base = model.run(params=params), model.run()
    return [live.Run("Current", "current", current.frame, current),
            live.Run("Baseline", "baseline", base.frame, base)]


def _text_layers(spec: dict) -> list[dict]:
    out = []
    for layer in spec.get("layer", []):
        out += _text_layers(layer) if "layer" in layer else (
            [layer] if layer.get("mark", {}).get("type") == "text" else [])
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_live_target_labels_stay_inside_the_plot(model, lang):
    """Level targets are labelled right-aligned at the plot's right end, in short lines."""
    from greenpath.app import charts as live

    runs = _live_runs(model)
    ctx = live.ChartContext(lang=lang, targets=live.target_marks(runs[0].frame, lang))
    labelled = 0
    for chart_id in ("coal", "renewables", "intensity"):
        for spec in live.build(chart_id, runs, ctx):
            for layer in _text_layers(spec):
                label = layer["data"]["values"][0].get("label", "")
                if layer["encoding"]["x"]["field"] != "x1":
                    continue  # the policy-start label
                labelled += 1
                x1 = layer["data"]["values"][0]["x1"]
                assert x1 == layer["encoding"]["x"]["scale"]["domain"][1]
                assert layer["mark"]["align"] == "right"
                assert layer["mark"]["lineBreak"] == "\n"
                assert max(len(part) for part in label.split("\n")) <= 30, label
                if layer["mark"]["baseline"] == "bottom":  # raised by its extra lines
                    extra = label.count("\n")
                    assert layer["mark"]["dy"] == -4 - extra * layer["mark"]["lineHeight"]
    assert labelled >= 2 * 5  # halo and text of each of the five level targets


def test_live_co2_names_a_missing_peak_in_the_legend_not_on_the_plot(model):
    from greenpath.app import charts as live

    runs = _live_runs(model)
    ctx = live.ChartContext(lang="en", targets=live.target_marks(runs[0].frame, "en"))
    spec = live.co2_chart(runs, ctx)
    text = json.dumps(spec, ensure_ascii=False)
    last = int(runs[0].frame.index.max())
    if live.mpl.co2_emissions_data(live._frames(runs)).query(
            "series == 'peak' and scenario == 'Current'")["year"].iloc[0] == last:
        assert "labelExpr" in text
        assert t("chart_no_peak", "en", year=last) in text
        assert not [la for la in _text_layers(spec)
                    if t("chart_no_peak", "en", year=last) in json.dumps(la["data"])]
    runs = _live_runs(model, industrial_saving_action_rate=0.1,
                      industrial_coal_substitution_rate=0.25, wind_build_rate=500.0,
                      utility_pv_build_rate=500.0, distributed_pv_build_rate=600.0)
    spec = live.co2_chart(runs, ctx)
    peak = live.mpl.co2_emissions_data(live._frames(runs)).query(
        "series == 'peak' and scenario == 'Current'")["year"].iloc[0]
    if peak < last:  # a peak is labelled next to its marker, with a halo
        labels = [json.dumps(la["data"], ensure_ascii=False) for la in _text_layers(spec)]
        assert sum(f"Peak {peak}" in x for x in labels) == 2


# ------------------------------------------------------------------ model diagram
def test_integ_flows_reads_signed_flows():
    assert model_view.integ_flows("INTEG ( wind commissioning - wind retirement, 0)") == [
        ("wind_commissioning", 1), ("wind_retirement", -1)]
    assert model_view.integ_flows("INTEG ( (target - level) / time, 1)") is None
    assert model_view.integ_flows("level * 2") is None


def test_sector_diagrams_draw_stocks_flows_and_links(model):
    variables = model.variables()
    deps = model._model._dependencies
    dot = model_view.sector_dot("Renewable power", variables, deps)
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    assert re.search(r'"wind_capacity" \[label="[^"]*", shape=box', dot)
    assert '"wind_commissioning" -> "wind_capacity" [color=' in dot   # inflow pipe
    assert '"wind_capacity" -> "wind_retirement" [color=' in dot      # outflow pipe
    assert '"wind_build_rate" -> ' in dot                             # lever, information link
    for group in set(variables["group"]) - {"Control"}:
        text = model_view.sector_dot(group, variables, deps)
        assert text.count("{") == text.count("}"), group


# ------------------------------------------------------------------ downloads
def test_exports_csv_workbook_and_deck_hold_the_shown_scenarios(model):
    import io

    import openpyxl
    from pptx import Presentation

    from greenpath.app import exports
    from greenpath.scenarios import targets as tg

    current, base = sc.load("plan_2021"), sc.load("baseline")
    rc, rb = model.run(**current.run_kwargs()), model.run(**base.run_kwargs())
    shown = [exports.Shown("Current", "Current", current, rc, tg.evaluate(rc)),
             exports.Shown("baseline", "Baseline", base, rb, tg.evaluate(rb))]
    csv = exports.results_csv(shown).decode("utf-8-sig").splitlines()
    assert csv[0] == "scenario,year,variable,value,unit"
    assert {line.split(",")[0] for line in csv[1:]} == {"Current", "Baseline"}
    book = openpyxl.load_workbook(io.BytesIO(exports.workbook(shown)))
    assert {"co2_emissions", "levers", "targets", "about"} <= set(book.sheetnames)
    levers = [row[0] for row in book["levers"].iter_rows(min_row=2, values_only=True)]
    assert "wind_build_rate" in levers
    deck = Presentation(io.BytesIO(exports.deck(shown, "zh", presentation=False)))
    assert len(deck.slides) >= 1 + 6 + 2


# ------------------------------------------------------------------ calibration page data
def test_calibration_view_reads_report_images_fit_and_parameters(tmp_path):
    from PIL import Image

    from greenpath.app import calibration_view

    report = tmp_path / "report"
    report.mkdir()
    Image.new("RGB", (4, 4)).save(report / "fit_co2.png")
    Image.new("RGB", (4, 4)).save(report / "extra.png")
    (report / "README.md").write_text("# Fit\n\n![CO2 fit](fit_co2.png)\n\n"
                                      "![outside](../secret.png)\n", encoding="utf-8")
    (tmp_path / "secret.png").write_bytes(b"not shown")
    name = next(iter(reg.uncertainties()))
    cal = tmp_path / "calibrated.toml"
    cal.write_text(f'[meta]\nseed = 1\n[parameters]\n{name} = {reg.uncertainties()[name].default}\n'
                   f'[uncertainty.sd]\n{name} = 0.01\n'
                   '[fit.gdp_real_level]\nrole = "fitted"\nmape = 1.5\nr2 = 0.99\n',
                   encoding="utf-8")
    out = calibration_view.load(report, cal)
    assert out.error is None
    assert [c for c, _ in out.images] == ["CO2 fit", "extra"]
    assert "![" not in out.readme
    kinds = [(k, x.strip()) for k, x, _ in out.blocks]
    assert kinds == [("md", "# Fit"), ("img", "CO2 fit"), ("img", "extra")]
    assert out.meta == {"seed": 1}
    assert out.parameters.loc[0, "name"] == name
    assert out.parameters.loc[0, "sd"] == pytest.approx(0.01)
    assert out.fit.loc[0, "variable"] == "gdp_real_level"
    assert out.fit.loc[0, "mape"] == pytest.approx(1.5)
    cal.write_text("[parameters\n", encoding="utf-8")
    assert "not valid TOML" in calibration_view.load(report, cal).error
    empty = calibration_view.load(tmp_path / "missing", tmp_path / "none.toml")
    assert (empty.readme, empty.images, empty.path) == (None, [], None)


def test_failing_analysis_panel_is_reported_and_page_survives(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(runner, "compute_wedges", broken)
    monkeypatch.setattr(uncertainty, "compute", broken)  # the bands' and chances' ensemble
    at = new_app({"wind_build_rate": "123.25"}, more=True)  # settings no other test computes
    warnings = " ".join(w.value for w in at.warning)
    assert "solver exploded" in warnings
    assert t("app_wedges", "en") in warnings
    assert t("app_bands", "en") in warnings
    assert co2_2030(at) > 0
    assert len(at.get("vega_lite_chart")) >= 6


def test_model_pool_never_mixes_run_structures_on_one_model():
    """Tables, no tables, tables again on one pool equal runs on fresh models.

    One model running these in turn once returned wrong values for the third run (an
    engine bug, since fixed); the pool keeps one structure per model regardless.
    """
    from greenpath.engines.pysd_engine import JiaozuoModel

    with_tables = state.run_key(sc.load("plan_2021").settings())
    without = state.run_key({"wind_build_rate": 150.0})
    assert runner.ModelPool.structure(with_tables)
    assert runner.ModelPool.structure(without) == ()
    fresh = {k: JiaozuoModel().run(**state.run_kwargs(k)).frame["co2_emissions"].to_numpy()
             for k in (with_tables, without)}
    pool = runner.ModelPool(size=1)
    for k in (with_tables, without, with_tables, without, with_tables):
        assert (pool.run(k).frame["co2_emissions"].to_numpy() == fresh[k]).all()
    assert pool.created == 2


def test_model_pool_drops_idle_models_of_old_structures():
    built = []

    def factory():
        built.append(object())
        return built[-1]

    pool = runner.ModelPool(size=1, factory=factory, max_structures=2)
    for structure in (("a",), ("b",), ("c",), ("a",)):
        with pool.model(structure) as m:
            assert m is not None
    assert len(built) == 4  # "a" was dropped when "c" came, and rebuilt
    with pool.model(("c",)) as m:
        assert m is built[2]


# ------------------------------------------------------------------ meeting use
def _status_line(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(f"**{t('app_scenario', 'en')}:**"))


def _save(at: AppTest, name: str) -> AppTest:
    open_tab(at, "compare")
    at.text_input(key="w_save_name").set_value(name).run()
    at.button(key="w_save").click().run()
    assert not at.exception
    return at


def test_saved_scenario_keeps_its_own_values_and_the_status_says_saved():
    """Save "Wind 500", move wind to 0: the current file is not called "Wind 500"."""
    at = new_app()
    lever(at, "wind_build_rate").set_value(500.0).run()
    _save(at, "Wind 500")
    line = _status_line(at)
    assert t("app_status_saved", "en", name="Wind 500") in line
    assert "unsaved" not in line
    lever(at, "wind_build_rate").set_value(0.0).run()
    assert t("app_unsaved", "en", n=1) in _status_line(at)
    preview = toml_preview(at)
    assert "Wind 500" not in preview
    assert "Wind_500" not in preview
    assert re.search(r"(?m)^wind_build_rate = 0(\.0)?$", preview), preview
    saved = tomllib.loads(state.saved_toml(
        "Wind 500", at.session_state["gp_saved"]["Wind 500"], "baseline"))
    assert saved["scenario"]["name"] == "Wind_500"
    assert saved["levers"]["wind_build_rate"] == pytest.approx(500.0)
    open_tab(at, "compare")
    assert "w_dl_saved_Wind 500" in {getattr(b, "key", None) for b in at.get("download_button")}


def test_preset_change_with_unsaved_changes_offers_undo():
    at = new_app()
    lever(at, "wind_build_rate").set_value(333.0).run()
    at.selectbox(key="w_preset").set_value("plan_2021").run()
    assert lever(at, "wind_build_rate").value == pytest.approx(
        sc.load("plan_2021").params["wind_build_rate"])
    offer = " ".join(w.value for w in at.warning)
    assert "1" in offer
    assert t("app_undo", "en") in [b.label for b in at.button]
    at.button(key="w_undo").click().run()
    assert lever(at, "wind_build_rate").value == pytest.approx(333.0)
    assert at.selectbox(key="w_preset").value == "baseline"
    assert "w_undo" not in {b.key for b in at.button}
    # no changes: nothing to undo, nothing offered
    at2 = new_app()
    at2.selectbox(key="w_preset").set_value("plan_2021").run()
    assert "w_undo" not in {b.key for b in at2.button}


def test_saved_scenarios_travel_in_the_link_and_survive_a_reload():
    at = new_app()
    lever(at, "wind_build_rate").set_value(410.0).run()
    _save(at, "Wind 410")
    query = {k: at.query_params[k] for k in at.query_params}
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in query.items()}
    assert flat["s1"] == "Wind 410"
    assert flat["s1.wind_build_rate"] == "410"
    assert flat["compare"] == "1"
    again = new_app(flat)  # a reload, or a colleague opening the link
    assert not again.error, errors(again)
    assert list(again.session_state["gp_saved"]) == ["Wind 410"]
    assert again.session_state["gp_compare"] == ["Wind 410"]
    assert state.run_key(again.session_state["gp_saved"]["Wind 410"]) == state.run_key(
        at.session_state["gp_saved"]["Wind 410"])
    assert t("app_status_saved", "en", name="Wind 410") in _status_line(again)


def test_link_with_a_bad_saved_scenario_keeps_the_good_ones_and_says_which():
    saved, compare, errs = state.decode_saved(
        {"s1": "Good", "s1.wind_build_rate": "300", "s2": "Bad", "s2.wind_build_rate": "9999",
         "compare": "1,2"}, "baseline")
    assert list(saved) == ["Good"]
    assert compare == ["Good"]
    text = " ".join(errs)
    assert "outside the allowed range" in text
    assert "'Bad' was not restored" in text


def test_graphs_to_show_picker_keeps_two_to_four_charts():
    from greenpath.app import ui

    at = new_app()
    assert at.session_state["gp_view"] == list(ui.DEFAULT_VIEW)
    view = at.pills(key="w_view")
    view.set_value(["co2", "coal", "renewables", "intensity"]).run()
    assert at.session_state["gp_view"] == ["co2", "renewables", "coal", "intensity"]
    at.pills(key="w_view").set_value(["co2"]).run()
    assert len(at.session_state["gp_view"]) == 4
    assert t("app_view_limits", "en", lo=ui.VIEW_MIN, hi=ui.VIEW_MAX) in [
        w.value for w in at.warning]
    assert len(at.get("vega_lite_chart")) == 5  # intensity has two panels


def test_target_strip_shows_the_targets_of_the_charts_in_view():
    at = new_app()
    strip = [m.value for m in at.markdown
             if m.value.startswith((":red-badge[", ":green-badge[")) and "**" not in m.value]
    coal = _target_label("coal_consumption_2025")
    assert any(coal in b for b in strip)
    # next to every verdict, the chance of meeting it (share of the bands' runs, greenpath/runners/chance.py)
    assert strip
    assert all(" · chance " in b and " %" in b for b in strip), strip
    assert not any(_target_label("urban_gas_penetration_2025") in b for b in strip)
    # the full panel (every target) sits in the popover
    assert badge(at, _target_label("urban_gas_penetration_2025")) in ("met", "missed")


def test_first_visit_hint_until_a_lever_moves():
    at = new_app()
    assert any(t("app_hint", "en") in m.value for m in at.markdown)
    lever(at, "wind_build_rate").set_value(222.0).run()
    assert not any(t("app_hint", "en") in m.value for m in at.markdown)


def test_link_with_one_bad_parameter_names_the_fine_ones_it_did_not_apply():
    """Nothing is half-applied, and the message lists what was fine besides what was not."""
    at = new_app({"wind_build_rate": "300", "utility_pv_build_rate": "99999"})
    text = errors(at)
    assert "utility_pv_build_rate" in text
    assert "outside the allowed range" in text
    label = reg.levers()["wind_build_rate"].label_en
    assert f"{label} (wind_build_rate) = 300" in text, text
    base = state.lever_values(state.load_preset("baseline"))
    assert lever(at, "wind_build_rate").value == pytest.approx(base["wind_build_rate"])
    zh = new_app({"wind_build_rate": "300", "utility_pv_build_rate": "99999", "lang": "zh"})
    assert "链接中的以下设置本身无误" in errors(zh)


def test_messages_point_to_the_app_not_the_command_line():
    at = new_app()
    _upload(at, "misspelt.toml", b'[levers]\nwnd_build_rate = 100\n')
    text = errors(at)
    assert "greenpath vars" not in text
    assert "Model page" in text
    assert "did you mean 'wind_build_rate'" in text
    _upload(at, "binary.toml", b"\xff\xfe\x00garbage")
    assert "byte 0" not in errors(at)
    assert "save it as UTF-8" in errors(at)


def test_chinese_model_diagram_names_the_levers_in_chinese():
    at = new_app({"page": "model", "lang": "zh"})
    at.selectbox(key="w_sector").set_value("Renewable power").run()
    dot = at.get("graphviz_chart")[0].proto.spec
    wind = reg.levers()["wind_build_rate"].label_zh
    assert wind
    assert wind in dot
    english = new_app({"page": "model"})
    english.selectbox(key="w_sector").set_value("Renewable power").run()
    assert wind not in english.get("graphviz_chart")[0].proto.spec


def test_chinese_calibration_page_says_the_report_is_the_english_original():
    at = new_app({"page": "calibration", "lang": "zh"})
    assert not at.exception
    if at.image:  # the fit report is there
        assert t("app_cal_report_original", "zh") in [i.value for i in at.info]


def test_charts_of_settings_seen_before_are_not_built_again(monkeypatch):
    """A move back to settings any session has seen reuses their chart specs."""
    from greenpath.app import charts as live

    built = []
    original = live.build

    def counting(chart_id, *args, **kwargs):
        built.append(chart_id)
        return original(chart_id, *args, **kwargs)

    monkeypatch.setattr(live, "build", counting)
    at = new_app()
    lever(at, "wind_build_rate").set_value(187.0).run()  # values no other test uses
    lever(at, "wind_build_rate").set_value(189.0).run()
    assert len(built) >= 3, built
    first = charts(at)
    built.clear()
    lever(at, "wind_build_rate").set_value(187.0).run()
    lever(at, "wind_build_rate").set_value(189.0).run()
    assert built == [], built
    assert charts(at) == first
    other = new_app({"wind_build_rate": "189"})  # another user, same settings
    assert built == [], built
    assert charts(other) == first


# ------------------------------------------------------------------ CO2 incl. imported electricity
def co2_imports_2030(at: AppTest) -> float:
    return float(metric(at, "app_kpi_co2_imports_2030").replace(",", ""))


def test_kpi_of_co2_including_imports_moves_with_local_renewables():
    """More wind lowers the incl.-imports KPI and leaves the territorial one.

    Local renewables displace imported electricity; the public coal units run on
    provincial dispatch either way.
    """
    at = new_app()
    territorial, incl = co2_2030(at), co2_imports_2030(at)
    assert incl > 0
    assert incl != pytest.approx(territorial, abs=0.05)
    lever(at, "wind_build_rate").set_value(500.0).run()  # the top of its range
    assert not at.exception
    assert co2_imports_2030(at) < incl - 0.3
    assert co2_2030(at) == pytest.approx(territorial, abs=0.05)
    at.radio(key="w_lang").set_value("zh").run()
    assert metric(at, "app_kpi_co2_imports_2030", "zh")


def test_co2_including_imports_chart_offered_among_headline_charts():
    from greenpath.app import ui

    at = new_app()
    assert "co2_imports" in ui.CHART_ORDER
    assert ui.CHART_ORDER.index("co2_imports") == ui.CHART_ORDER.index("co2") + 1
    at.pills(key="w_view").set_value(["co2", "co2_imports"]).run()
    assert at.session_state["gp_view"] == ["co2", "co2_imports"]
    titles = " ".join(m.value for m in at.markdown)
    assert t("chart_title_co2_emissions", "en") in titles
    assert t("chart_title_co2_including_imports", "en") in titles
    specs = [el.proto.spec for el in at.get("vega_lite_chart")]
    assert len(specs) == 2
    assert all('"p90"' in x for x in specs)  # each with its P10-P90 band
    assert t("chart_history_ceads", "en") in specs[0]
    assert t("chart_history_ceads", "en") not in specs[1]  # no record on that boundary


def test_live_co2_including_imports_chart_draws_that_variable_band_and_target(model):
    from greenpath.app import charts as live
    from greenpath.scenarios import targets as tg

    runs = _live_runs(model)
    frame = runs[0].frame
    bands = pd.DataFrame({"year": frame.index.astype(int), "variable": "co2_including_imports",
                          "p10": frame["co2_including_imports"] - 1.0,
                          "p90": frame["co2_including_imports"] + 1.0})
    for lang in ("en", "zh"):
        ctx = live.ChartContext(lang=lang, targets=live.target_marks(frame, lang), bands=bands)
        (spec,) = live.build("co2_imports", runs, ctx)
        line = next(x for x in spec["layer"] if x.get("mark", {}).get("type") == "line"
                    and "value" in x["encoding"].get("y", {}).get("field", ""))
        mine = [r for r in line["data"]["values"] if r["scenario"] == "Current"]
        got = pd.Series({r["year"]: r["value"] for r in mine})
        assert got.to_numpy() == pytest.approx(
            frame.loc[got.index, "co2_including_imports"].to_numpy(), rel=1e-5)
        assert got.to_numpy() != pytest.approx(
            frame.loc[got.index, "co2_emissions"].to_numpy(), rel=1e-3)
        text = json.dumps(spec, ensure_ascii=False)
        assert '"p90"' in text
        (target,) = [x for x in tg.load() if x.indicator == "peak_year:co2_including_imports"]
        label = target.label_zh if lang == "zh" else target.label_en
        assert json.dumps(label, ensure_ascii=False)[1:-1] in text
        # the territorial chart keeps its own peak target, not this one
        (territorial,) = live.build("co2", runs, ctx)
        assert json.dumps(label, ensure_ascii=False)[1:-1] not in json.dumps(
            territorial, ensure_ascii=False)
        # a band of one measure is never drawn on the other measure's chart
        assert '"p90"' not in json.dumps(territorial)


def test_wedges_of_both_co2_measures_in_the_app_and_its_deck(model):
    import io

    from pptx import Presentation

    from greenpath.app import charts as live
    from greenpath.app import exports
    from greenpath.outputs import charts as mpl

    key = state.run_key({"wind_build_rate": 400.0, "industrial_coal_substitution_rate": 0.2})
    territorial = runner.compute_wedges(key, "current")
    incl = runner.compute_wedges(key, "current", "co2_including_imports")
    assert incl.attrs["variable"] == "co2_including_imports"
    by_group = incl.groupby("group")["contribution"].sum()
    assert by_group["energy supply"] > 0  # renewables displace imported electricity
    assert abs(territorial.groupby("group")["contribution"].sum()["energy supply"]) < \
        by_group["energy supply"]
    runs = _live_runs(model, wind_build_rate=400.0, industrial_coal_substitution_rate=0.2)
    ctx = live.ChartContext(lang="zh")
    for chart_id, wedges in (("wedges", territorial), ("wedges_imports", incl)):
        (spec,) = live.build(chart_id, runs, ctx, wedges)
        area = spec["layer"][0]["data"]["values"]
        total = pd.DataFrame(area).groupby("year")["value"].sum()
        variable = live.WEDGE_CHARTS[chart_id]
        diff = runs[1].frame[variable] - runs[0].frame[variable]
        assert total.to_numpy() == pytest.approx(diff.loc[total.index].to_numpy(), abs=1e-6)
    assert live.CHARTS["wedges_imports"] == "chart_title_wedges_including_imports"
    current, base = sc.load("baseline"), sc.load("baseline")
    rc = model.run(params={"wind_build_rate": 400.0, "industrial_coal_substitution_rate": 0.2})
    shown = [exports.Shown("Current", "Current", current, rc),
             exports.Shown("baseline", "Baseline", base, model.run())]
    deck = Presentation(io.BytesIO(exports.deck(shown, "en", {"Current": territorial},
                                                presentation=False,
                                                wedges_imports={"Current": incl})))
    alts = [sh._element.nvPicPr.cNvPr.get("descr") for slide in deck.slides
            for sh in slide.shapes if sh.shape_type == 13]
    for chart in mpl.WEDGE_CHARTS:
        assert sum(a.startswith(mpl.chart_title(chart, "en")) for a in alts) == 1, chart
