"""The Streamlit pages: simulator, model, calibration.

``app.py`` calls :func:`main`.  Data flow of one interaction: a widget callback validates
the lever's value once (:func:`greenpath.app.state.lever_setting`) into the session's lever
values -> :func:`greenpath.app.state.request` gives their run key (sorted settings, the
run request) -> it selects a cached result (``st.cache_data``), run by the engine without
validating again -> charts are built as Vega-Lite and drawn in the browser.

The session's values (the scenario in use, the lever values, the saved scenarios, the
language, ...) are the attributes of :class:`greenpath.app.session.Session` (``ss``): its
module lists every ``st.session_state`` key and default, and the widget keys whose values
are read or set.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlencode, urlsplit

import pandas as pd
import streamlit as st

from greenpath.app import calibration_view, exports, model_view, runner, sections, session, state, uncertainty
from greenpath.app import charts as live
from greenpath.app.plain import md
from greenpath.engines.pysd_engine import RunResult
from greenpath.i18n import LANGS, has, t, t_or, unit_text
from greenpath.model import indicators
from greenpath.model import registry as reg
from greenpath.runners.chance import format_chance
from greenpath.scenarios import scenario as sc

PAGES = ("simulator", "model", "calibration")
DEFAULT_SECTOR = "Renewable power"
UPLOAD_LIMIT_BYTES = sc.MAX_FILE_BYTES
CHART_ORDER = tuple(live.CHARTS)
#: What presentation mode steps through: every chart, then the target panel.
SLIDES = (*CHART_ORDER, "targets")
#: Tabs of the scenario panel (labels ``app_tab_<id>``).
TABS = ("compare", "file", "share", "downloads")
#: Rows of the chart grid (the two-panel intensity chart gets a row of its own).
#: The wedges come last: they need 2^n runs, and everything above is already on screen
#: while they are computed.
GRID = (("co2", "co2_imports"), ("renewables", "coal"), ("energy_mix", "industry"),
        ("intensity",), ("wedges", "wedges_imports"))
#: The charts a meeting starts with in view, next to the levers ("graphs to show").
DEFAULT_VIEW = session.DEFAULT_VIEW
#: How many charts the view holds: fewer leaves the screen empty, more makes them unreadable.
VIEW_MIN, VIEW_MAX = 2, 4
#: Height of a chart's plotting area in the view (pixels): three side by side, or a 2x2
#: grid, stay inside a 1366x768 screen with the KPIs and the target strip above them.
VIEW_HEIGHT = {2: 210, 3: 190, 4: 140}
#: chart id -> model variables whose targets the badge strip shows while the chart is in view.
CHART_TARGETS = {
    "co2": ("co2_emissions",), "co2_imports": ("co2_including_imports",),
    "coal": ("total_coal_consumption",),
    "renewables": ("renewable_capacity",),
    "intensity": ("energy_intensity", "co2_intensity"), "energy_mix": ("non_fossil_share",),
    "industry": ("industrial_intensity", "industrial_energy_saving"), "wedges": (),
    "wedges_imports": (),
}
ss = session.Session()


# ====================================================================== cached work
@st.cache_resource(show_spinner=False)
def model_pool() -> runner.ModelPool:
    """Return the models shared by all sessions; each run borrows one exclusively."""
    return runner.ModelPool()


@st.cache_data(max_entries=512, show_spinner=False)
def cached_run(key: state.RunKey) -> RunResult:
    """Return the run of ``key`` (a sorted settings tuple); a copy for every caller."""
    return model_pool().run(key)


@st.cache_data(max_entries=512, show_spinner=False)
def cached_verdicts(key: state.RunKey, sets: tuple[str, ...] | None) -> pd.DataFrame | None:
    """Targets met / missed for the run of ``key`` (None: module not available)."""
    return runner.evaluate_targets(cached_run(key).frame, sets)


def cached_targets(key: state.RunKey, sets: tuple[str, ...] | None) -> pd.DataFrame | None:
    """Targets met / missed for the run of ``key`` (None: module not available).

    Column ``chance``: the share of the uncertainty draws (projection uncertainties and
    the calibration's posterior, the same runs as the bands: :mod:`greenpath.app.uncertainty`)
    that meet each target; left out when those runs failed (the bands panel says why).
    """
    table = cached_verdicts(key, sets)
    if table is not None:
        try:
            found = cached_uncertainty(key)
        except Exception:  # noqa: BLE001 - reported by the bands panel (_optional_panel)
            return table
        table["chance"] = table["id"].map(found.chances["chance"]).to_numpy(dtype=float)
    return table


@st.cache_data(show_spinner=False)
def cached_target_sets() -> list[str]:
    """Named target sets of the targets file (e.g. conflicting plans)."""
    return runner.target_sets()


@st.cache_data(max_entries=64, show_spinner=False)
def cached_marks(lang: str, sets: tuple[str, ...] | None) -> dict:
    """Targets drawn on the charts."""
    base_key = state.run_key(cached_preset(state.default_preset()).settings())
    return live.target_marks(cached_run(base_key).frame, lang, sets)


@st.cache_data(max_entries=128, show_spinner=False)
def cached_wedges(key: state.RunKey, variable: str = "co2_emissions") -> pd.DataFrame | None:
    """Wedges of ``variable`` for ``key`` against the baseline (None: module not available)."""
    return runner.compute_wedges(key, "current", variable)


@st.cache_data(max_entries=128, show_spinner=False)
def cached_uncertainty(key: state.RunKey) -> uncertainty.Uncertainty:
    """Bands and target chances around ``key`` from one ensemble."""
    return uncertainty.compute(key)


def cached_bands(key: state.RunKey) -> pd.DataFrame:
    """P10-P90 bands around ``key``."""
    return cached_uncertainty(key).bands


@st.cache_data(max_entries=256, show_spinner=False)
def cached_specs(chart_id: str, signature: tuple, _runs: list[live.Run],
                 _ctx: live.ChartContext, _wedges: pd.DataFrame | None) -> list[dict]:
    """Vega-Lite specs of a chart, built once per ``signature`` (all users, all visits).

    ``signature`` (:func:`_chart_signature`) determines everything the unhashed
    arguments hold: the runs by their run keys, the bands and wedges by the current
    run key, the target marks by language and target sets.  The data go as named datasets
    (:func:`greenpath.app.charts.with_named_data`): a move that changes only the numbers
    updates the drawn chart in place.
    """
    return [live.with_named_data(spec) for spec in live.build(chart_id, _runs, _ctx, _wedges)]


def _chart_signature(runs: list[live.Run], ctx: live.ChartContext) -> tuple:
    """Return what a chart's specs depend on (see :func:`cached_specs`)."""
    return (tuple((r.label, r.role, r.key) for r in runs), ctx.lang, ctx.present,
            ctx.plot_height, ctx.compact, ctx.policy_start, ctx.x_start, _sets(),
            ctx.bands is not None, tuple(sorted(ctx.history)))


@st.cache_data(show_spinner=False)
def cached_variables() -> pd.DataFrame:
    """Return the model's variable table."""
    with model_pool().model() as m:
        return m.variables()


def variable_names(lang: str) -> dict[str, str]:
    """Return the model variables' names in ``lang`` where known (English: none needed).

    Chinese: the registry's labels of levers and uncertainties, then the app's own
    ``app_var_<name>`` strings; other variables keep their model names.
    """
    if lang != "zh":
        return {}
    return dict(_zh_names())


@st.cache_data(show_spinner=False)
def _zh_names() -> dict[str, str]:
    """Return the Chinese names of the model's variables.

    Registry labels, the app's and the tables' output names (``app_var_``, ``var_``), then
    ``model_var_`` (``i18n/model_names.toml``).
    """
    out = {n: p.label_zh for n, p in reg.load_registry().items() if p.label_zh}
    for n in cached_variables()["name"]:
        if n not in out:
            for prefix in ("app_var_", "var_", "model_var_"):
                if has(prefix + n):
                    out[n] = t(prefix + n, "zh")
                    break
    return out


@st.cache_data(show_spinner=False)
def cached_dot(group: str, label: str, only: tuple[str, ...] | None = None,
               lang: str = "en") -> str:
    """DOT text of one sector's stock-and-flow diagram (``only``: one part of it)."""
    with model_pool().model() as m:
        deps = m._model._dependencies
        variables = m.variables()
        groups = {g: sector_label(g, lang) for g in set(variables["group"])}
        return model_view.sector_dot(group, variables, deps, net_change_label=label,
                                     only=only, names=variable_names(lang), group_names=groups)


@st.cache_data(show_spinner=False)
def cached_parts(group: str) -> dict[str, list[str]]:
    """Parts of a large sector's diagram (:func:`greenpath.app.model_view.sector_parts`)."""
    with model_pool().model() as m:
        return model_view.sector_parts(group, m.variables(), m._model._dependencies)


@st.cache_data(show_spinner=False)
def cached_history(variable: str) -> pd.Series | None:
    """Return recorded values of a chart variable."""
    return runner.history_series(variable)


@st.cache_data(show_spinner=False)
def cached_preset(name: str) -> sc.Scenario:
    """Return a shipped preset, validated."""
    return sc.load(name)


# ====================================================================== session state
def _init() -> None:
    """Defaults for a new session, then the share link's settings (once)."""
    if ss.started:
        return
    base = state.load_preset(state.default_preset())  # raises before the session starts
    ss.start(base)
    _set_base(base)
    # Every value of a repeated parameter, so a link giving one twice is an error.
    query = {k: st.query_params.get_all(k) for k in st.query_params}
    request, errors = state.decode_link(query, LANGS, PAGES)
    errors = [user_message(e, ss.lang) for e in errors]
    if request.lang:
        ss.lang = request.lang
    if request.page:
        ss.page = request.page
    if request.sets_scenario:
        try:
            _apply_link(request)
        except (sc.ScenarioError, reg.RegistryError) as exc:
            errors.append(user_message(str(exc), ss.lang))
    saved, compare, saved_errors = state.decode_saved(query, ss.base.preset)
    ss.saved = saved
    ss.compare = compare[: live.MAX_SAVED]
    errors.extend(user_message(e, ss.lang) for e in saved_errors)
    if request.not_applied:
        errors.append(t("app_link_not_applied", ss.lang, settings=", ".join(
            f"{_setting_label(k, ss.lang)} = {state.format_setting(v)}"
            for k, v in request.not_applied.items())))
    if errors:
        ss.errors = [t("app_error_link", ss.lang), *errors]


_CLI_HINT = re.compile(r"(?:listed by |see )?`greenpath vars --kind (lever|uncertainty)`"
                       r"(?: lists them)?(?: for the allowed names)?")


def user_message(text: str, lang: str) -> str:
    """Return a validation message as the app's user can act on it.

    The scenario rules are shared with the command line, whose messages point to
    ``greenpath vars --kind lever``; in the app the same list is the Model page's table.
    """
    return _CLI_HINT.sub(lambda m: t("app_vars_hint", lang,
                                     kind=t(f"app_kind_{m.group(1)}", lang)), text)


def _setting_label(name: str, lang: str) -> str:
    """Return a setting's name as the sidebar shows it, with its key (what a link holds)."""
    p = state.settable().get(name)
    if p is None:
        return name
    label = lever_label(p, lang)
    return name if label == name else f"{label} ({name})"


def _set_base(base: state.Base) -> None:
    ss.base = base
    ss.values = state.lever_values(base)


def _apply_link(request: state.LinkRequest) -> None:
    """Preset plus the link's settings; raises before changing anything."""
    base = state.load_preset(request.preset or state.default_preset())
    levers = {k: v for k, v in request.settings.items() if k in reg.levers()}
    others = {k: v for k, v in request.settings.items() if k not in levers}
    if others:  # validated by state.decode_link
        scenario = base.scenario.derive(
            base.scenario.name,
            params={k: v for k, v in others.items() if not isinstance(v, tuple)},
            tables={k: v for k, v in others.items() if isinstance(v, tuple)},
            checked=True, title_en=base.scenario.title_en, title_zh=base.scenario.title_zh,
            description=base.scenario.description)
        base = state.Base(scenario=scenario, preset=base.preset)
    values = state.lever_values(base)
    values.update(levers)
    ss.base = base
    ss.values = values


def _base_changes(base: state.Base) -> list[str]:
    """Return the settings in which a base that is not an upload differs from its preset (a link's)."""
    if base.uploaded or base.preset is None:
        return []
    return sorted(state.diff(base.scenario.settings(), cached_preset(base.preset).settings()))


def _titles(base: state.Base, key: state.RunKey, changed: bool) -> tuple[str, str]:
    """Return the English and Chinese titles of the scenario on screen.

    A saved scenario's name when the settings (run key ``key``) are one; the base's
    title with "+ changes" once levers (``changed``) or a link's settings depart from
    it; else the base's.
    """
    for name, saved in ss.saved.items():
        if state.run_key(saved) == key:
            return name, name
    s = base.scenario
    if changed or _base_changes(base):
        en, zh = s.title_en or s.name, s.title_zh or s.title_en or s.name
        return t("app_title_changed", "en", title=en), t("app_title_changed", "zh", title=zh)
    return s.title_en, s.title_zh


def on_screen() -> tuple[sc.Scenario, state.RunKey, list[str]]:
    """Return what the levers describe: the scenario, its run request and the levers changed.

    The scenario is titled as :func:`_titles` says; the lever values were validated when
    they entered the session, so nothing here validates them again.
    """
    base: state.Base = ss.base
    key = state.request(base, ss.values)
    changed = state.changed_levers(base, ss.values)
    title_en, title_zh = _titles(base, key, bool(changed))
    scenario = state.compose(base, ss.values, name=base.scenario.name, title_en=title_en,
                             title_zh=title_zh, description=base.scenario.description)
    return scenario, key, changed


def current_scenario() -> sc.Scenario:
    """Return the scenario the levers describe (see :func:`on_screen`)."""
    return on_screen()[0]


# ====================================================================== callbacks
def _on_lang() -> None:
    ss.lang = ss.widget(session.W_LANG)


def _on_page() -> None:
    ss.page = ss.widget(session.W_PAGE)


def _on_present() -> None:
    ss.present = ss.widget(session.W_PRESENT)


def _keep_for_undo(what: str) -> None:
    """Before the base is replaced: keep unsaved lever changes for an "Undo" offer.

    ``what`` names the replacement (shown in the offer).  Nothing is kept when the levers
    are as their base has them, or when the settings are a saved scenario's.
    """
    base: state.Base = ss.base
    changed = state.changed_levers(base, ss.values)
    if not changed:
        ss.undo = None
        return
    if _saved_as(state.request(base, ss.values)) is not None:
        ss.undo = None
        return
    ss.undo = {"base": base, "values": dict(ss.values), "n": len(changed), "what": what}


def _on_undo() -> None:
    undo = ss.undo
    if undo:
        ss.base = undo["base"]
        ss.values = undo["values"]
    ss.undo = None


def _on_undo_dismiss() -> None:
    ss.undo = None


def _on_preset() -> None:
    choice = ss.widget(session.W_PRESET)
    if choice == _UPLOADED:
        return
    _keep_for_undo(_preset_label(choice, ss.lang))
    _set_base(state.load_preset(choice))


def _lever_decimals(p: reg.Parameter) -> int:
    return max(0, -math.floor(math.log10(_lever_step(p))))


def _on_lever(name: str) -> None:
    p = reg.levers()[name]
    value = ss.widget(session.lever_key(name))
    ss.values[name] = state.lever_setting(name, float(round(value, _lever_decimals(p) + 3)))
    ss.hint = False  # the levers are found
    ss.undo = None  # an undo offer is about the settings before this move


def _on_constant(name: str) -> None:
    """Replace a year table by a constant (its value in the policy start year)."""
    years, values = ss.values[name]
    ss.values[name] = state.lever_setting(name, float(round(pd.Series(values, index=years).iloc[0], 6)))


def _on_revert() -> None:
    _keep_for_undo(t("app_revert", ss.lang))
    _set_base(ss.base)


def _on_upload() -> None:
    """Load an uploaded file; its outcome is shown under the uploader until the next one.

    Removing the file from the uploader clears the message.
    """
    uploaded = ss.widget(session.W_UPLOAD)
    if uploaded is None:
        ss.upload = None
        return
    try:
        base = state.from_upload(uploaded.getvalue(), uploaded.name, UPLOAD_LIMIT_BYTES,
                                 saved=ss.saved)
    except (sc.ScenarioError, reg.RegistryError) as exc:
        ss.upload = ("error", uploaded.name, user_message(str(exc), ss.lang))
        return
    ss.upload = ("success", uploaded.name, tuple(base.scenario.warnings))
    _keep_for_undo(uploaded.name)
    _set_base(base)


def _on_compare() -> None:
    ss.compare = list(ss.widget(session.W_COMPARE))


def _on_sets() -> None:
    ss.sets = list(ss.widget(session.W_SETS))


def _sets() -> tuple[str, ...] | None:
    """Target sets chosen (None: all)."""
    chosen = ss.sets
    return None if chosen is None else tuple(chosen)


def _on_dismiss() -> None:
    ss.errors = []


def _on_hint_ok() -> None:
    ss.hint = False


def _on_view() -> None:
    """Keep the charts picked for the view, two to four of them, in the page's order."""
    chosen = [c for c in CHART_ORDER if c in (ss.widget(session.W_VIEW) or ())]
    if not VIEW_MIN <= len(chosen) <= VIEW_MAX:
        ss.view_msg = t("app_view_limits", ss.lang, lo=VIEW_MIN, hi=VIEW_MAX)
        return
    ss.view = chosen


def _on_dismiss_upload() -> None:
    ss.upload = None


def _on_save() -> None:
    name = (ss.widget(session.W_SAVE_NAME) or "").strip()
    if not name:
        ss.save_msg = ("error", t("app_save_need_name", ss.lang))
        return
    if name in ss.saved and not ss.widget(session.W_SAVE_REPLACE):
        ss.save_msg = ("warning", t("app_save_exists", ss.lang, name=md(name)))
        return
    ss.saved[name] = dict(current_scenario().settings())
    ss.save_msg = ("success", t("app_saved", ss.lang, name=md(name)))
    ss.set_widget(session.W_SAVE_REPLACE, False)
    # A new save is drawn at once; beyond the limit the longest-shown one makes room.
    compare = [n for n in ss.compare if n != name and n in ss.saved]
    ss.compare = [*compare, name][-live.MAX_SAVED:]


def _on_load_saved(name: str) -> None:
    settings = ss.saved[name]
    _keep_for_undo(name)
    base: state.Base = ss.base
    values = {n: state.full(settings)[n] for n in reg.levers()}
    others = {k: v for k, v in state.diff(settings, base.scenario.settings()).items()
              if k not in values}
    if others:  # uncertainties differ: the saved settings become the base
        scenario = sc.Scenario(name=state.safe_name(name), path=None, title_en=name,
                               title_zh=name, params={k: v for k, v in settings.items()
                                                      if not isinstance(v, tuple)},
                               tables={k: v for k, v in settings.items()
                                       if isinstance(v, tuple)})
        ss.base = state.Base(scenario=scenario, preset=base.preset, uploaded=True)
    ss.values = values


def _on_remove_saved(name: str) -> None:
    ss.saved.pop(name, None)
    ss.compare = [n for n in ss.compare if n != name]


def _on_chart_step(step: int) -> None:
    i = SLIDES.index(ss.chart)
    ss.chart = SLIDES[(i + step) % len(SLIDES)]


def _on_present_exit() -> None:
    ss.present = False


def _on_chart_pick() -> None:
    ss.chart = ss.widget(session.W_CHART)


_UPLOADED = "__uploaded__"


# ====================================================================== sidebar
def _lever_step(p: reg.Parameter) -> float:
    if p.unit.strip().lower() == "year":
        return 1.0
    span = p.max - p.min
    return float(10.0 ** math.floor(math.log10(span / 100.0))) if span > 0 else 1.0


def _fmt(value: float, p: reg.Parameter | None = None) -> str:
    if p is not None and p.unit.strip().lower() == "year":
        return f"{value:.0f}"
    return f"{value:,.4g}"


def _table_text(value: state.Table) -> str:
    return ", ".join(f"{int(y)}: {_fmt(v)}" for y, v in zip(*value, strict=True))


def _clause(p: reg.Parameter, lang: str) -> str:
    if not p.clause:
        return t("app_no_clause", lang)
    gloss = t(f"app_clause_{p.name}", "en")
    return p.clause if lang == "zh" else f"{p.clause} — *{gloss}*"


def lever_label(p: reg.Parameter, lang: str) -> str:
    """Return a lever's name in ``lang`` (registry labels)."""
    if lang == "zh" and p.label_zh:
        return p.label_zh
    return p.label_en or p.name


def lever_help(p: reg.Parameter, lang: str) -> str:
    """Return a lever's tooltip: the registry's description, in Chinese from the table."""
    if lang == "zh":
        return t_or(f"app_lever_help_{p.name}", "zh", p.description)
    return p.description


def _lever_widget(p: reg.Parameter, lang: str, start: state.Setting, changed: bool) -> None:
    """Draw one lever: its slider (or year table), marked "●" when ``changed`` from ``start``."""
    value = ss.values[p.name]
    key = session.lever_key(p.name)
    label = lever_label(p, lang) + (" ●" if changed else "")
    start_text = _table_text(start) if isinstance(start, tuple) else _fmt(start, p)
    info = t("app_lever_info", lang, unit=unit_text(p.unit, lang),
             lo=_fmt(p.min, p), hi=_fmt(p.max, p), preset=start_text)
    tip = lever_help(p, lang)
    if isinstance(value, tuple):
        st.markdown(f"**{label}**")
        st.caption(t("app_lever_table", lang, table=_table_text(value)))
        st.button(t("app_lever_make_constant", lang), key=f"w_const_{p.name}",
                  on_click=_on_constant, args=(p.name,))
    else:
        is_year = p.unit.strip().lower() == "year"
        step = _lever_step(p)
        decimals = max(_lever_decimals(p), 0)
        if is_year:
            ss.set_widget(key, int(round(value)))
            # ``value`` repeats the state set above: without it Streamlit copies the whole
            # session state per slider to find out whether it is a range (30 copies a move).
            st.slider(label, min_value=int(p.min), max_value=int(p.max), step=1, key=key,
                      value=int(round(value)), on_change=_on_lever, args=(p.name,), help=tip)
        else:
            ss.set_widget(key, float(value))
            shown = decimals
            while shown < 4 and abs(round(float(value), shown) - float(value)) > 1e-12:
                shown += 1
            st.slider(label, min_value=float(p.min), max_value=float(p.max), step=step,
                      key=key, value=float(value), format=f"%.{shown}f", on_change=_on_lever,
                      args=(p.name,), help=tip)
    st.caption(f"{info}  \n{_clause(p, lang)}")


def _preset_options() -> list[str]:
    names = sc.available()
    return [*names, _UPLOADED] if ss.base.uploaded else names


def _preset_label(name: str, lang: str) -> str:
    if name == _UPLOADED:
        s: sc.Scenario = ss.base.scenario
        return t("app_uploaded_label", lang, name=(s.title_zh if lang == "zh" else s.title_en)
                 or s.name)
    s = cached_preset(name)
    return (s.title_zh if lang == "zh" else s.title_en) or name


def sidebar(lang: str) -> None:
    """Language, page, presentation mode and preset (the levers: :func:`sidebar_levers`)."""
    with st.sidebar:
        if ss.page == "simulator" and not ss.present:  # the main area keeps its height
            st.title(t("app_title", lang), anchor=False)
        ss.set_widget(session.W_LANG, ss.lang)
        st.radio(t("app_language", lang), LANGS, key=session.W_LANG, horizontal=True,
                 format_func=lambda x: {"en": "English", "zh": "中文"}[x], on_change=_on_lang)
        ss.set_widget(session.W_PAGE, ss.page)
        st.radio(t("app_page", lang), PAGES, key=session.W_PAGE, horizontal=True,
                 format_func=lambda x: t(f"app_page_{x}", lang), on_change=_on_page)
        if ss.page != "simulator":
            return
        ss.set_widget(session.W_PRESENT, ss.present)
        st.toggle(t("app_present", lang), key=session.W_PRESENT, on_change=_on_present,
                  help=t("app_present_help", lang))
        options = _preset_options()
        ss.set_widget(session.W_PRESET, _UPLOADED if ss.base.uploaded else ss.base.preset)
        st.selectbox(t("app_preset", lang), options, key=session.W_PRESET,
                     format_func=lambda x: _preset_label(x, lang), on_change=_on_preset,
                     help=t("app_preset_help", lang))


def sidebar_levers(lang: str) -> None:
    """Draw the first-visit hint and the levers under the preset (called by :func:`simulator`).

    A lever section draws its sliders only while it is open (the energy section is open
    when the page opens): the first page and every lever move send the browser the
    energy section's 14 levers instead of all 33 with their captions (issue 16: first load).
    A section's title never changes, because Streamlit takes the title of a section that
    tracks its state as part of its identity: a title with a changed-count would turn
    into a new, closed section while its lever is moved.  Which sections hold moved
    levers is said on one line above them instead.
    """
    with st.sidebar:
        start = state.lever_values(ss.base)
        changed = state.changes(ss.base, ss.values)
        grouped = sections.grouped_levers()
        moved = [(t(f"app_section_{section.id}", lang), n) for section, params in grouped
                 if (n := sum(p.name in changed for p in params))]
        # One container, drawn on every run, holds what comes and goes above the
        # sections: the sidebar's elements after it keep their places.  (Without it the
        # sections and their sliders moved one place down or up when the hint or this
        # line came or went, and Streamlit's page could keep the old sliders beside the
        # new ones for a moment: a click then sent their old values as lever moves.)
        with st.container(key="lever_notes"):
            if ss.hint and not ss.present:
                first_visit_hint(lang)
            if moved:
                st.caption(t("app_sections_changed", lang, sections=" · ".join(
                    t("app_section_count", lang, section=title, n=n) for title, n in moved)))
        for section, params in grouped:
            box = st.expander(t(f"app_section_{section.id}", lang),
                              expanded=section.id == "energy",
                              key=session.section_key(section.id), on_change="rerun")
            if box.open:
                with box:
                    for p in params:
                        _lever_widget(p, lang, start[p.name], p.name in changed)


# ====================================================================== simulator page
def _runs(current_key: state.RunKey, lang: str) -> list[live.Run]:
    """Collect the current, baseline and saved scenarios chosen for comparison."""
    base_key = state.run_key(cached_preset(state.default_preset()).settings())
    current, baseline = t("app_series_current", lang), t("app_series_baseline", lang)
    res = cached_run(current_key)
    runs = [live.Run(current, "current", res.frame, res, current_key)]
    res = cached_run(base_key)
    runs.append(live.Run(baseline, "baseline", res.frame, res, base_key))
    taken = {current, baseline, live.mpl.BASELINE}
    for name in ss.compare[: live.MAX_SAVED]:
        if name not in ss.saved:
            continue
        label = name
        while label in taken:
            label += " ′"
        taken.add(label)
        key = state.run_key(ss.saved[name])
        res = cached_run(key)
        runs.append(live.Run(label, "saved", res.frame, res, key))
    return runs


def _delta(x: float, fmt: str) -> str | None:
    """Return a change for ``st.metric``; None when it rounds to zero (no arrow, no colour)."""
    text = format(x, fmt)
    return None if float(text.replace(",", "")) == 0 else text


def _metric(label: str, value: str, delta: str | None = None, help_text: str | None = None,
            inverse: bool = False) -> None:
    st.metric(label, value, delta, delta_color="inverse" if inverse else "normal",
              help=help_text, border=True, width="content")


def kpis(runs: list[live.Run], lang: str) -> None:
    """Headline numbers of the current scenario, with the change vs the baseline."""
    cur, base = runs[0].frame, runs[1].frame
    co2, co2_b = cur.loc[2030, "co2_emissions"], base.loc[2030, "co2_emissions"]
    co2_i = cur.loc[2030, "co2_including_imports"]
    co2_i_b = base.loc[2030, "co2_including_imports"]
    year, value = indicators.peak(cur, "co2_emissions")
    peak_text = (t("app_kpi_no_peak", lang) if year == int(cur.index.max()) else str(year))
    year_b, _ = indicators.peak(base, "co2_emissions")
    ren, ren_b = cur.loc[2025, "renewable_capacity"], base.loc[2025, "renewable_capacity"]
    # Each number as wide as its label, wrapping to a second row on a narrow screen:
    # five equal columns cut the labels short at 1440 px.
    with st.container(horizontal=True, wrap=True, key="kpis"):
        _metric(t("app_kpi_co2_2030", lang), f"{co2:,.1f}", _delta(co2 - co2_b, "+,.1f"),
                t("app_kpi_co2_help", lang), inverse=True)
        _metric(t("app_kpi_co2_imports_2030", lang), f"{co2_i:,.1f}",
                _delta(co2_i - co2_i_b, "+,.1f"), t("app_kpi_co2_imports_help", lang),
                inverse=True)
        _metric(t("app_kpi_peak", lang), peak_text, None,
                t("app_kpi_peak_help", lang, value=f"{value:,.1f}", base=year_b))
        _metric(t("app_kpi_renewables_2025", lang), f"{ren:,.0f}", _delta(ren - ren_b, "+,.0f"),
                t("app_kpi_vs_baseline", lang))
        for column, key in (("total_coal_consumption", "app_kpi_coal_2025"),
                            ("energy_intensity", "app_kpi_energy_intensity_2025")):
            change = 100 * indicators.change_vs(cur, column).loc[2025]
            change_b = 100 * indicators.change_vs(base, column).loc[2025]
            _metric(t(key, lang), f"{change:+.1f}%", _delta(change - change_b, "+.1f"),
                    t("app_kpi_vs_baseline_pp", lang), inverse=True)


def target_set_label(name: str, lang: str) -> str:
    """Return the name of a target set of the targets file (``app_target_set_<id>``)."""
    return t_or(f"app_target_set_{name}", lang, name)


def _target_label(row: pd.Series, lang: str) -> str:
    return str(row.get(f"label_{lang}") or row.get("label_en") or row.get("id"))


_COMPARISON = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}


def _policy_start(setting: float | tuple) -> int:
    """Return the first policy year as set; 2021 when it follows a year table."""
    return 2021 if isinstance(setting, tuple) else int(setting)


def _target_number(x: float | None, unit: str, signed: bool = False) -> str:
    """Return a target's number at the precision its unit deserves."""
    if x is None or not pd.notna(x):
        return "—"
    x = float(x)
    sign = "+" if signed else ""
    if unit.lower() == "year":
        return f"{x:{sign}.0f}"
    if unit in ("%", "MW", "10k tce"):
        return f"{x:{sign},.1f}" if unit == "%" else f"{x:{sign},.0f}"
    return f"{x:{sign},.3g}"


def target_panel(targets: pd.DataFrame | None, lang: str, compact: bool = False) -> None:
    """Met / missed badges with margins, one line per target."""
    st.subheader(t("app_targets", lang))
    if targets is None:
        st.info(t("app_not_available", lang, what=t("app_targets", lang)))
        return
    all_sets = cached_target_sets()
    if all_sets and not compact:
        ss.set_widget(session.W_SETS, list(all_sets if ss.sets is None else ss.sets))
        st.multiselect(t("app_target_sets", lang), all_sets, key=session.W_SETS, on_change=_on_sets,
                       help=t("app_target_sets_help", lang),
                       format_func=lambda x: target_set_label(x, lang))
    met = int(targets["met"].astype(bool).sum())
    st.caption(t("app_targets_summary", lang, met=met, total=len(targets)))
    cols = st.columns(3 if compact else 2)
    for i, (_, row) in enumerate(targets.iterrows()):
        ok = bool(row["met"])
        badge = (f":green-badge[✔ {t('app_met', lang)}]" if ok
                 else f":red-badge[✘ {t('app_missed', lang)}]")
        unit = str(row.get("unit") or "")
        value, target, margin = row.get("value"), row.get("target"), row.get("margin")
        detail = t("app_target_detail", lang, year=int(row["year"]),
                   value=_target_number(value, unit),
                   comparison=_COMPARISON.get(str(row.get("comparison")), row.get("comparison")),
                   target=_target_number(target, unit),
                   unit="" if unit.lower() == "year" else unit_text(unit, lang),
                   margin=_target_number(margin, unit, signed=True))
        if "chance" in row and row["chance"] == row["chance"]:
            detail += " · " + t("app_target_chance", lang, chance=format_chance(float(row["chance"])))
        if row.get("set"):
            detail += f" · {target_set_label(str(row['set']), lang)}"
        with cols[i % len(cols)]:
            st.markdown(f"{badge} **{_target_label(row, lang)}**  \n{detail}",
                        help=str(row.get("source") or ""))


def co2_history_note(frame: pd.DataFrame, recorded: pd.Series | None, lang: str) -> str | None:
    """Explain why the model's CO2 lies far below the CEADs inventory before 2012.

    The figures are read from the data (recorded 2005-2011, the model's history, the
    2010-12 fall), so a recalibration never leaves the caption stale.
    """
    if recorded is None or recorded.empty or "co2_emissions" not in frame:
        return None
    early = recorded[(recorded.index >= 2005) & (recorded.index <= 2011)]
    model = frame.loc[(frame.index >= 2005) & (frame.index <= 2011), "co2_emissions"]
    if early.empty or model.empty or not {2010, 2012} <= set(recorded.index):
        return None
    drop = 100.0 * (1.0 - recorded.loc[2012] / recorded.loc[2010])
    return t("app_co2_history_note", lang, ceads=f"{early.min():.0f}–{early.max():.0f}",
             model=f"{model.min():.0f}–{model.max():.0f}", drop=f"{drop:.0f}")


def _chart_downloads(chart_id: str, lang: str, runs: list[live.Run],
                     wedges: pd.DataFrame | None, ctx: live.ChartContext) -> None:
    row = st.container(horizontal=True)
    for fmt in ("png", "svg"):
        with row:
            st.download_button(
                fmt.upper(), data=_chart_file_maker(chart_id, fmt, lang, runs, wedges, ctx),
                file_name=f"greenpath_{chart_id}_{lang}.{fmt}",
                mime="image/png" if fmt == "png" else "image/svg+xml",
                key=f"w_dl_{chart_id}_{fmt}", on_click="ignore", icon=":material/download:",
                help=t("app_chart_file_help", lang))


def _chart_file_maker(chart_id: str, fmt: str, lang: str, runs: list[live.Run],
                      wedges: pd.DataFrame | None,
                      ctx: live.ChartContext) -> Callable[[], bytes]:
    """Deferred: the meeting chart is drawn only when the button is pressed."""
    results = {live.meeting_name(r): r.result for r in runs}
    labels = {live.meeting_name(r): r.label for r in runs}
    sets, present = _sets(), ctx.present
    current = next(r for r in runs if r.role == "current")
    bands = None if ctx.bands is None else ctx.bands.assign(scenario=live.meeting_name(current))

    def make() -> bytes:
        fig = runner.meeting_figure(live.MEETING_CHART[chart_id], results, labels, lang,
                                    present, wedges=wedges, sets=sets, bands=bands)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=fig.dpi, facecolor="white",
                    metadata={"Software": None} if fmt == "png" else None)
        return buf.getvalue()
    return make


def _optional_panel(compute: Callable, *args, what: str):
    """Run an analysis a panel adds (bands, wedges); show its failure instead of the page's.

    The rest of the page does not depend on it, so an error is shown as a warning naming
    the analysis and the message, and the panel is left out.
    """
    try:
        return compute(*args)
    except Exception as exc:  # noqa: BLE001 - shown to the user, never swallowed
        st.warning(t("app_panel_failed", ss.lang, what=t(what, ss.lang),
                     error=md(f"{type(exc).__name__}: {exc}")))
        return None


class _LazyWedges:
    """The wedge tables of a run key, each computed the first time a chart asks for it."""

    def __init__(self, key: state.RunKey) -> None:
        self.key = key
        self._values: dict[str, pd.DataFrame | None] = {}
        self._failed: dict[str, bool] = {}

    def failed(self, variable: str = "co2_emissions") -> bool:
        """Return whether the table of ``variable`` was asked for and its computation failed."""
        return self._failed.get(variable, False)

    def get(self, variable: str = "co2_emissions") -> pd.DataFrame | None:
        """Return the wedge table of ``variable`` (None: its computation failed)."""
        if variable not in self._values:
            value = _optional_panel(cached_wedges, self.key, variable, what="app_wedges")
            self._values[variable] = value
            self._failed[variable] = value is None
        return self._values[variable]


def draw_chart(chart_id: str, runs: list[live.Run], ctx: live.ChartContext,
               lazy_wedges: _LazyWedges, lang: str, downloads: bool = True) -> None:
    """One chart (one or two panels) in a keyed container, with its downloads."""
    with st.container(key=f"chart_{chart_id}", border=True):
        title = t(live.CHARTS[chart_id], lang)
        st.markdown(f"### {title}" if ctx.present else f"**{title}**")
        variable = live.WEDGE_CHARTS.get(chart_id)
        wedges = lazy_wedges.get(variable) if variable else None
        if variable and wedges is None:
            if not lazy_wedges.failed(variable):
                st.info(t("app_not_available", lang, what=t("app_wedges", lang)))
            return
        if wedges is not None and (wedges.empty or not wedges["contribution"].abs().gt(1e-9).any()):
            st.info(t("chart_report_wedges_baseline_only", lang))
            return
        panels = cached_specs(chart_id, _chart_signature(runs, ctx), runs, ctx, wedges)
        cols = st.columns(len(panels)) if len(panels) > 1 else [st.container()]
        for i, (col, chart) in enumerate(zip(cols, panels, strict=True)):
            with col:
                st.vega_lite_chart(chart, width="stretch", key=f"vl_{chart_id}_{i}")
        if downloads:
            _chart_downloads(chart_id, lang, runs, wedges, ctx)


def _shown(runs: list[live.Run], current: sc.Scenario) -> list[exports.Shown]:
    """Return the scenarios on screen, as the exports want them."""
    out = []
    for r in runs:
        if r.role == "current":
            scenario = current
        elif r.role == "baseline":
            scenario = cached_preset(state.default_preset())
        else:
            scenario = state.key_scenario(r.key, r.label, title_en=r.label, title_zh=r.label)
        if r.result is None:
            raise ValueError(f"run {r.label!r} has no result to export")
        out.append(exports.Shown(live.meeting_name(r), r.label, scenario, r.result,
                                 cached_targets(r.key, _sets())))
    return out


def _deferred(make: Callable[..., bytes], *args, **kwargs) -> Callable[[], bytes]:
    """Wrap a download so it is built only when its button is pressed."""
    def run() -> bytes:
        return make(*args, **kwargs)
    return run


def _wedge_tables(runs: list[live.Run], wedges: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if wedges is None or wedges.empty or not wedges["contribution"].abs().gt(1e-9).any():
        return {}
    current = next(r for r in runs if r.role == "current")
    return {live.meeting_name(current): wedges}


def _saved_download(name: str, base: state.Base, lang: str) -> None:
    """Download button of one saved scenario (its file, whatever the levers show now)."""
    try:
        text = state.saved_toml(name, ss.saved[name], base.preset)
    except sc.ScenarioError as exc:
        st.error(str(exc))
        return
    st.download_button("TOML", data=text.encode("utf-8"),
                       file_name=f"{state.safe_name(name)}.toml", mime="application/toml",
                       key=f"w_dl_saved_{name}", on_click="ignore",
                       icon=":material/download:", help=t("app_saved_download_help", lang,
                                                          name=name))


def upload_message(lang: str) -> None:
    """Show the outcome of the last upload, under the uploader: what failed, or what was loaded."""
    msg = ss.upload
    if not msg:
        return
    kind, name, detail = msg
    if kind == "error":
        st.error(f"{t('app_error_upload', lang, file=md(name))}\n\n{md(detail)}")
        st.button(t("app_dismiss", lang), key="w_dismiss_upload", on_click=_on_dismiss_upload)
    else:
        st.success(t("app_upload_loaded", lang, file=md(name)))
        for warning in detail or ():
            st.warning(md(warning))


def scenario_panel(current: sc.Scenario, lang: str, runs: list[live.Run],
                   lazy_wedges: _LazyWedges) -> None:
    """Save / load / share the scenario, and download data and decks."""
    # The tab bar tracks which tab is open, and only that tab's contents are drawn: the
    # first page does not build (nor the browser load the code of) an uploader, a TOML
    # preview, a link box and four downloads nobody has asked for yet (issue 16: first
    # load), and a lever move does not re-send them.  A tab click reruns the simulator
    # fragment (cached results: ~0.1 s), which draws that tab; a download button therefore
    # appears only with the run its deferred file belongs to.  A language switch renames
    # the tabs and so opens the first.
    tabs = st.tabs([t(f"app_tab_{x}", lang) for x in TABS], key=session.W_TABS,
                   on_change="rerun")
    draw = {"compare": lambda: _compare_tab(lang),
            "file": lambda: _file_tab(current, lang),
            "share": lambda: _share_tab(current, lang),
            "downloads": lambda: _downloads_tab(current, lang, runs, lazy_wedges)}
    for name, tab in zip(TABS, tabs, strict=True):
        if tab.open:
            with tab:
                draw[name]()


def _compare_tab(lang: str) -> None:
    """Save the levers under a name; the saved scenarios, drawn for comparison."""
    base: state.Base = ss.base
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    with c1:
        st.text_input(t("app_save_name", lang), key=session.W_SAVE_NAME,
                      placeholder=t("app_save_placeholder", lang))
    with c2:
        st.button(t("app_save", lang), key="w_save", on_click=_on_save, type="primary")
    if (ss.widget(session.W_SAVE_NAME) or "").strip() in ss.saved:
        st.checkbox(t("app_save_replace", lang, name=md(ss.widget(session.W_SAVE_NAME).strip())),
                    key=session.W_SAVE_REPLACE)
    msg = ss.take("save_msg")
    if msg:
        getattr(st, msg[0])(msg[1])
    if ss.saved:
        ss.set_widget(session.W_COMPARE, [n for n in ss.compare if n in ss.saved])
        st.multiselect(t("app_compare_with", lang), list(ss.saved), key=session.W_COMPARE,
                       max_selections=live.MAX_SAVED, on_change=_on_compare)
        for name in list(ss.saved):
            c1, c2, c4, c3 = st.columns([4, 1, 1, 1], vertical_alignment="center")
            c1.markdown(f"• {md(name)}")
            c2.button(t("app_load", lang), key=f"w_load_{name}", on_click=_on_load_saved,
                      args=(name,))
            with c4:
                _saved_download(name, base, lang)
            with c3.popover(t("app_remove", lang)):
                st.button(t("app_remove_confirm", lang, name=md(name)), key=f"w_rm_{name}",
                          on_click=_on_remove_saved, args=(name,))
    else:
        st.caption(t("app_no_saved", lang))


def _file_tab(current: sc.Scenario, lang: str) -> None:
    """Download the scenario as a TOML file (with its preview), or upload one."""
    base: state.Base = ss.base
    # The file is named after what it holds: a saved scenario's name only while the
    # levers are exactly that scenario (the name typed in the save box is not used).
    saved = _saved_as(state.run_key(current.settings()))
    changed = bool(state.changed_levers(base, ss.values) or _base_changes(base))
    if saved is not None:
        meta = {"title_en": saved, "title_zh": saved, "name": state.safe_name(saved)}
    else:
        meta = {"name": state.safe_name(f"{current.name}_custom" if changed
                                        else current.name)}
    try:
        named = sc.Scenario(**{**current.__dict__, **meta})
        text = state.scenario_toml(named, base)
    except sc.ScenarioError as exc:
        st.error(f"{t('app_error_scenario', lang)}\n\n{md(exc)}")
    else:
        st.download_button(t("app_download_toml", lang), data=text.encode("utf-8"),
                           file_name=f"{named.name}.toml", mime="application/toml",
                           key="w_dl_toml", on_click="ignore",
                           icon=":material/download:")
        title = named.title_zh if lang == "zh" else named.title_en
        with st.expander(t("app_toml_preview", lang, title=md(title or named.name))):
            st.code(text, language="toml")
    st.file_uploader(t("app_upload", lang), type=["toml"], key=session.W_UPLOAD,
                     on_change=_on_upload, help=t("app_upload_help", lang,
                                                  limit=f"{UPLOAD_LIMIT_BYTES:,}"),
                     max_upload_size=1)
    st.caption(t("app_upload_limit_note", lang))
    upload_message(lang)


def _share_tab(current: sc.Scenario, lang: str) -> None:
    """Show the share link of what is on screen."""
    base: state.Base = ss.base
    query = state.encode_link(base.preset, current.settings(), lang, ss.page)
    query.update(state.encode_saved(base.preset, ss.saved, ss.compare))
    url = ""
    try:
        url = (st.context.url or "").split("?")[0]
    except Exception:  # noqa: BLE001 - no browser context in headless tests
        url = ""
    if url and urlsplit(url).path == "":
        url += "/"
    st.caption(t("app_share_help", lang))
    st.code(f"{url}?{urlencode(query)}", language=None, wrap_lines=True)
    if base.uploaded and base.preset is None:
        st.caption(t("app_share_from_baseline", lang))


def _downloads_tab(current: sc.Scenario, lang: str, runs: list[live.Run],
                   lazy_wedges: _LazyWedges) -> None:
    """Offer the data (CSV, XLSX) and the meeting deck (PPTX) of the scenarios drawn."""
    shown = _shown(runs, current)
    row = st.container(horizontal=True)
    with row:
        st.download_button(t("app_download_csv", lang),
                           data=_deferred(exports.results_csv, shown),
                           file_name="greenpath_results.csv", mime="text/csv",
                           key="w_dl_csv", on_click="ignore", icon=":material/download:")
    # The wedges are computed when a file is asked for, not on every lever move.
    def wedges(variable: str = "co2_emissions") -> dict[str, pd.DataFrame]:
        return _wedge_tables(runs, runner.compute_wedges(lazy_wedges.key, "current",
                                                         variable))

    def imports() -> dict[str, pd.DataFrame]:
        return wedges("co2_including_imports")

    with row:
        st.download_button(
            t("app_download_xlsx", lang),
            data=_deferred(lambda: exports.workbook(shown, wedges(), imports())),
            file_name="greenpath_report_data.xlsx", key="w_dl_xlsx", on_click="ignore",
            mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            icon=":material/download:")
        st.download_button(
            t("app_download_pptx", lang),
            data=_deferred(lambda sets: exports.deck(shown, lang, wedges(), sets,
                                                     wedges_imports=imports()), _sets()),
            file_name=f"greenpath_report_{lang}.pptx", key="w_dl_pptx", on_click="ignore",
            mime="application/vnd.openxmlformats-officedocument.presentationml.presentation",
            icon=":material/download:")
    st.caption(t("app_downloads_help", lang))


def simulator_page(lang: str, levers: Callable[[], None] | None = None) -> None:
    """Levers -> scenario -> cached run -> KPIs, targets, charts, files.

    ``levers`` draws the sidebar's levers: called right after the KPIs (the sidebar is its
    own container, so the order of the calls does not change the layout), so the KPIs
    reach the browser before the ~100 elements of the levers (issue 16); called at the
    latest when this returns or fails.
    """
    pending = [levers] if levers is not None else []

    def draw_levers() -> None:
        while pending:
            pending.pop()()

    try:
        _simulator_page(lang, draw_levers)
    except Exception:  # the levers stay usable under an error (not on Streamlit's stop/rerun)
        draw_levers()
        raise
    draw_levers()


def _simulator_page(lang: str, draw_levers: Callable[[], None]) -> None:
    try:
        current, key, changed = on_screen()
    except sc.ScenarioError as exc:  # lever values are validated before they are kept
        st.error(f"{t('app_error_scenario', lang)}\n\n{md(exc)}")
        return
    runs = _runs(key, lang)
    base: state.Base = ss.base
    title = (current.title_zh if lang == "zh" else current.title_en) or current.name
    base_title = ((base.scenario.title_zh if lang == "zh" else base.scenario.title_en)
                  or base.scenario.name)
    present = ss.present
    if present:
        _presentation_style()
    else:
        st.html(_MEETING_CSS)
    head, side = st.columns([5, 2], vertical_alignment="center")
    with head, st.container(key="scenario_line"):
        st.markdown(f"**{t('app_scenario', lang)}:** {md(title)} · "
                    f"*{_status(base, changed, key, lang)}*")
    with side, st.container(horizontal=True, horizontal_alignment="right"):
        if not present:
            view_picker(lang)
        st.button(t("app_revert", lang), key="w_revert", on_click=_on_revert,
                  disabled=not changed, help=t("app_revert_help", lang, title=md(base_title)))
        if present:  # the sidebar and its toggle are hidden on the projector
            st.button(t("app_present_exit", lang), key="w_present_exit",
                      on_click=_on_present_exit, icon=":material/close_fullscreen:")
    undo_offer(lang)
    if ss.errors:
        st.error("\n\n".join(md(e) for e in ss.errors))
        st.button(t("app_dismiss", lang), key="w_dismiss", on_click=_on_dismiss)
    ctx = live.ChartContext(
        lang=lang, present=present,
        policy_start=_policy_start(state.full(current.settings())["policy_start_year"]),
        targets=cached_marks(lang, _sets()),
        history={v: cached_history(v) for v in runner.HISTORY})
    wedges = _LazyWedges(key)
    if present:
        ctx = replace(ctx, bands=_optional_panel(cached_bands, key, what="app_bands"))
        _presentation(runs, ctx, wedges, cached_targets(key, _sets()), lang)
        return
    msg = ss.take("view_msg")
    if msg:
        st.warning(msg)
    kpis(runs, lang)
    draw_levers()
    view = _view()
    # The bands and the chances (one ensemble of 500 runs) after the KPIs: those reach
    # the browser first.
    ctx = replace(ctx, bands=_optional_panel(cached_bands, key, what="app_bands"))
    target_strip(cached_targets(key, _sets()), view, lang)
    view_ctx = replace(ctx, plot_height=VIEW_HEIGHT[min(max(len(view), 2), 4)],
                       compact=len(view) > 2)
    rows = [view] if len(view) <= 3 else [view[:2], view[2:]]
    with st.container(key="view"):
        for row in rows:
            cols = st.columns(len(row))
            for col, chart_id in zip(cols, row, strict=True):
                with col:
                    draw_chart(chart_id, runs, view_ctx, wedges, lang)
    if ctx.bands is None:
        st.caption(t("app_bands_unavailable", lang))
    else:
        st.caption(t("app_bands_note", lang, n=ctx.bands.attrs.get("n", runner.BAND_SAMPLES),
                     k=len(ctx.bands.attrs.get("sampled", []))))
        drawn = ctx.bands.attrs.get("posterior", [])
        st.caption(t("app_bands_posterior", lang, m=len(drawn)) if drawn else
                   t("app_bands_no_posterior", lang, why=ctx.bands.attrs.get("posterior_source", "")))
    note = co2_history_note(runs[0].frame, ctx.history.get("co2_emissions"), lang)
    if note:
        st.caption(note)
    others = [c for c in CHART_ORDER if c not in view]
    if others:
        # Built only while open: a lever move then costs the charts in view, not all
        # seven (the wedges alone need 2^n runs).
        more = st.expander(t("app_more_charts", lang, n=len(others)), key="w_more",
                           on_change="rerun")
        if more.open:
            with more:
                # The wedges need 2^n runs: drawn last, after everything else is on screen.
                others.sort(key=lambda c: c in live.WEDGE_CHARTS)
                for i in range(0, len(others), 2):
                    row = others[i:i + 2]
                    pair = st.columns(2)
                    for col, chart_id in zip(pair, row, strict=False):
                        with col:
                            draw_chart(chart_id, runs, ctx, wedges, lang)
    from greenpath.app import cost_panel  # costs and co-benefits (issue 19)

    cost_panel.render(current, key, lang)
    st.subheader(t("app_scenario_files", lang))
    scenario_panel(current, lang, runs, wedges)


#: The simulator's meeting layout: the page starts right under Streamlit's header bar,
#: so the KPIs, the target strip and the charts in view fit a 1366x768 screen.
_MEETING_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding: 2.9rem 1.5rem 2rem 1.5rem; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 0.55rem; }
.st-key-scenario_line p { margin-bottom: 0; }
.st-key-kpis { flex-wrap: nowrap !important; }
.st-key-kpis > div { flex: 1 1 0 !important; min-width: 0 !important; }
.st-key-kpis [data-testid="stMetric"] { padding: 0.1rem 0.45rem; }
.st-key-kpis [data-testid="stMetricValue"] { font-size: 1.3rem; }
.st-key-kpis [data-testid="stMetricLabel"] p { font-size: 0.78rem; }
.st-key-kpis [data-testid="stMetricLabel"] * { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
.st-key-hint { background: rgba(28, 131, 225, 0.08); }
.st-key-hint p { font-size: 0.92rem; margin-bottom: 0; }
.st-key-view [data-testid="stVerticalBlockBorderWrapper"] { padding: 0.4rem 0.6rem; }
.st-key-view strong { font-size: 0.95rem; }
.st-key-target_strip p { font-size: 0.85rem; margin-bottom: 0; }
[data-testid="stSidebar"] h1 { font-size: 1.35rem; padding-top: 0; }
</style>"""


def undo_offer(lang: str) -> None:
    """After a preset, upload or saved scenario replaced unsaved lever changes: offer them back."""
    undo = ss.undo
    if not undo:
        return
    with st.container(horizontal=True, vertical_alignment="center", key="undo"):
        st.warning(t("app_undo_note", lang, n=undo["n"], what=undo["what"]),
                   icon=":material/undo:", width="stretch")
        st.button(t("app_undo", lang), key="w_undo", on_click=_on_undo, type="primary")
        st.button(t("app_dismiss", lang), key="w_undo_dismiss", on_click=_on_undo_dismiss)


def first_visit_hint(lang: str) -> None:
    """How to use the simulator, over the levers, until the first lever move or "Got it"."""
    with st.container(key="hint", border=True):
        st.markdown(f":material/tune: {t('app_hint', lang)}")
        st.button(t("app_hint_ok", lang), key="w_hint_ok", on_click=_on_hint_ok,
                  type="tertiary", icon=":material/check:")


def _view() -> list[str]:
    """Return the charts in view (see :data:`DEFAULT_VIEW`)."""
    return [c for c in ss.view if c in CHART_ORDER] or list(DEFAULT_VIEW)


def view_picker(lang: str) -> None:
    """Draw the "graphs to show" picker (two to four charts fill the view), one click away."""
    ss.set_widget(session.W_VIEW, _view())
    with st.popover(t("app_view_pick", lang), icon=":material/insert_chart:",
                    key="w_view_menu", help=t("app_view_help", lang, lo=VIEW_MIN, hi=VIEW_MAX)):
        st.pills(t("app_view_pick", lang), CHART_ORDER, selection_mode="multi", key=session.W_VIEW,
                 format_func=lambda c: t(live.CHARTS[c], lang), on_change=_on_view,
                 label_visibility="collapsed")


def _indicator_variable(indicator: str) -> str:
    """Return the model variable of a target's indicator (``change_vs_2020:x`` -> ``x``)."""
    return str(indicator).rsplit(":", 1)[-1]


def _badge(row: pd.Series, lang: str) -> str:
    """Return a target's met / missed badge with its margin."""
    unit = str(row.get("unit") or "")
    margin = _target_number(row.get("margin"), unit, signed=True)
    unit_shown = "" if unit.lower() == "year" else unit_text(unit, lang)
    text = f"{margin} {unit_shown}".strip()
    return (f":green-badge[✔ {t('app_met', lang)} {text}]" if bool(row["met"])
            else f":red-badge[✘ {t('app_missed', lang)} {text}]")


def target_strip(targets: pd.DataFrame | None, view: list[str], lang: str,
                 every: bool = True) -> None:
    """Met / missed badges of the targets drawn in view; every target one click away.

    ``every``: offer the full target panel in a popover.
    """
    if targets is None:
        st.caption(t("app_not_available", lang, what=t("app_targets", lang)))
        return
    shown = {v for c in view for v in CHART_TARGETS.get(c, ())}
    met = int(targets["met"].astype(bool).sum())
    with st.container(horizontal=True, wrap=True, vertical_alignment="center",
                      key="target_strip", gap="small"):
        if every:
            with st.popover(t("app_targets_all", lang, met=met, total=len(targets)),
                            key="w_targets_all", icon=":material/flag:"):
                target_panel(targets, lang)
        for _, row in targets.iterrows():
            if _indicator_variable(row.get("indicator", "")) not in shown:
                continue
            unit = str(row.get("unit") or "")
            margin = _target_number(row.get("margin"), unit, signed=True)
            unit_shown = "" if unit.lower() == "year" else unit_text(unit, lang)
            text = f"{_target_label(row, lang)} · {margin} {unit_shown}".strip()
            if "chance" in row and row["chance"] == row["chance"]:
                text += " · " + t("app_target_chance_badge", lang, chance=format_chance(float(row["chance"])))
            text = text.replace("[", "(").replace("]", ")")
            badge = (f":green-badge[✔ {text}]" if bool(row["met"])
                     else f":red-badge[✘ {text}]")
            st.markdown(badge, width="content", help=_target_help(row, lang))


def _target_help(row: pd.Series, lang: str) -> str:
    """Return a target's detail line and source (a badge's tooltip)."""
    unit = str(row.get("unit") or "")
    detail = t("app_target_detail", lang, year=int(row["year"]),
               value=_target_number(row.get("value"), unit),
               comparison=_COMPARISON.get(str(row.get("comparison")), row.get("comparison")),
               target=_target_number(row.get("target"), unit),
               unit="" if unit.lower() == "year" else unit_text(unit, lang),
               margin=_target_number(row.get("margin"), unit, signed=True))
    source = str(row.get("source") or "")
    return f"{detail}\n\n{source}" if source else detail


def _saved_as(key: state.RunKey) -> str | None:
    """Return the name of a saved scenario with the settings of ``key`` (None: none)."""
    return next((name for name, saved in ss.saved.items()
                 if state.run_key(saved) == key), None)


def _status(base: state.Base, changed: list[str], key: state.RunKey, lang: str) -> str:
    """Say how the scenario on screen departs from where it started (levers, a link).

    Settings equal to a saved scenario are "saved as" it, whatever the base says.
    """
    saved = _saved_as(key)
    if saved is not None:
        return t("app_status_saved", lang, name=md(saved))  # a name the user typed
    parts = []
    if changed:
        parts.append(t("app_unsaved", lang, n=len(changed)))
    others = [k for k in _base_changes(base) if k not in reg.levers()]
    if others:
        parts.append(t("app_link_settings", lang, n=len(others)))
    if parts:
        return "; ".join(parts)
    return t("app_as_uploaded" if base.uploaded else "app_as_preset", lang)


#: Presentation mode on a projector: no sidebar or header, large navigation.
_PRESENT_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stHeader"], [data-testid="stExpandSidebarButton"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 1.5rem 5rem 1rem 5rem; max-width: 100%; }
.st-key-scenario_line p { font-size: 1.45rem; line-height: 1.3; }
.st-key-w_prev button, .st-key-w_next button { min-height: 4.2rem; }
.st-key-w_prev button p, .st-key-w_next button p { font-size: 2.4rem; line-height: 1; }
.st-key-w_chart [role="group"] { min-height: 4.2rem; }
.st-key-w_chart input { font-size: 1.8rem !important; }
[role="listbox"] [role="option"] { font-size: 1.5rem; }
.st-key-w_present_exit button p, .st-key-w_revert button p { font-size: 1.3rem; }
.st-key-present_targets p, .st-key-present_targets li { font-size: 1.0rem; }
.st-key-target_strip p, .st-key-target_strip span { font-size: 1.1rem !important; }
[data-testid="stMainBlockContainer"] [data-testid="stVerticalBlock"] { gap: 0.6rem; }
</style>"""


def _presentation_style() -> None:
    st.html(_PRESENT_CSS)


def _slide_name(slide: str, lang: str) -> str:
    return t("app_targets", lang) if slide == "targets" else t(live.CHARTS[slide], lang)


def _presentation(runs, ctx, wedges, targets, lang) -> None:
    """One chart (or the target panel) at a time, large fonts, for the projector."""
    if ss.chart not in SLIDES:
        ss.chart = SLIDES[0]
    ss.set_widget(session.W_CHART, ss.chart)
    c1, c2, c3 = st.columns([1, 6, 1], vertical_alignment="bottom")
    c1.button("◀", key="w_prev", on_click=_on_chart_step, args=(-1,), width="stretch",
              help=t("app_slide_prev", lang))
    c2.selectbox(t("app_chart_pick", lang), SLIDES, key=session.W_CHART,
                 format_func=lambda c: _slide_name(c, lang), on_change=_on_chart_pick,
                 label_visibility="collapsed")
    c3.button("▶", key="w_next", on_click=_on_chart_step, args=(1,), width="stretch",
              help=t("app_slide_next", lang))
    if ss.chart == "targets":
        with st.container(key="present_targets"):
            target_grid(targets, lang)
        return
    # A plot height that leaves the title, legends, axis and the chart's targets (with the
    # chance of meeting each, which can wrap to a second line) on a
    # 1366x768 projector as on 1920x1080 (the page does not scroll).
    # The intensity chart's two panels carry a title each.
    height = PRESENT_HEIGHT - (50 if ss.chart == "intensity" else 0)
    draw_chart(ss.chart, runs, replace(ctx, plot_height=height), wedges, lang,
               downloads=False)
    target_strip(targets, [ss.chart], lang, every=False)


#: Plotting height of a chart slide (pixels): see :func:`_presentation`.
PRESENT_HEIGHT = 240


def target_grid(targets: pd.DataFrame | None, lang: str) -> None:
    """Every target on one screen: badge, name and margin, one line each, in columns.

    The slide's picker already names it, so no heading: 22 targets fit 1366x768.
    """
    if targets is None:
        st.info(t("app_not_available", lang, what=t("app_targets", lang)))
        return
    met = int(targets["met"].astype(bool).sum())
    st.caption(t("app_targets_summary", lang, met=met, total=len(targets)))
    with st.container(horizontal=True, wrap=True, gap="small", key="target_grid"):
        for _, row in targets.iterrows():
            st.markdown(f"{_badge(row, lang)} {_target_label(row, lang)}", width=385,
                        help=_target_help(row, lang))


# ====================================================================== model page
def sector_label(group: str, lang: str) -> str:
    """Return a model sector's name in ``lang`` (``app_sector_<name>``; else as the model has it)."""
    return t_or("app_sector_" + model_view.py_name(group), lang, group)


_WHOLE = "__whole__"
#: Links beyond which a sector's diagram opens on its first part, not the whole.
_OPEN_ON_PART = 120


def _diagram(group: str, variables: pd.DataFrame, lang: str) -> None:
    """Draw a sector's diagram; a large one can be read part by part or at full size."""
    whole = cached_dot(group, t("app_net_change", lang), lang=lang)
    links = whole.count("->")
    parts = cached_parts(group) if links > model_view.SPLIT_LINKS else {}
    names = {**variables.set_index("name")["vensim_name"].to_dict(), **variable_names(lang)}
    choice = _WHOLE
    if len(parts) > 1:
        options = [_WHOLE, *parts]
        label = {_WHOLE: t("app_diagram_whole", lang), "": t("app_diagram_rest", lang)}
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        choice = c1.selectbox(
            t("app_diagram_part", lang), options, key=f"w_part_{model_view.py_name(group)}",
            index=1 if links > _OPEN_ON_PART else 0, help=t("app_diagram_part_help", lang),
            format_func=lambda x: label.get(x) or t("app_diagram_stock", lang,
                                                    stock=names.get(x, x)))
        full = c2.toggle(t("app_diagram_full", lang), key="w_diagram_full",
                         help=t("app_diagram_full_help", lang))
    else:
        full = False
    dot = whole if choice == _WHOLE else cached_dot(group, t("app_net_change", lang),
                                                    tuple(parts[choice]), lang)
    if full:
        # Natural size in a box that scrolls both ways: every label at its font size.
        with st.container(height=720, key="diagram_full"):
            st.html("<style>.st-key-diagram_full [data-testid='stGraphVizChart'] svg "
                    "{ max-width: none !important; width: auto !important; "
                    "height: auto !important; }"
                    ".st-key-diagram_full { overflow: auto !important; }</style>")
            st.graphviz_chart(dot, width="content")
        return
    # A small diagram drawn at its natural size; stretching it would blow the text up.
    st.graphviz_chart(dot, width="stretch" if dot.count("->") > 12 else "content")


def model_page(lang: str) -> None:
    """Variable table with equations, and a stock-and-flow diagram per sector."""
    st.title(t("app_model_title", lang), anchor=False)
    st.caption(t("app_model_intro", lang))
    variables = cached_variables()
    groups = [g for g in dict.fromkeys(variables["group"]) if g != "Control"]
    default = groups.index(DEFAULT_SECTOR) if DEFAULT_SECTOR in groups else 0
    group = st.selectbox(t("app_sector", lang), groups, key="w_sector", index=default,
                         format_func=lambda g: sector_label(g, lang))
    st.subheader(t("app_diagram", lang, sector=sector_label(group, lang)))
    st.caption(t("app_diagram_legend", lang))
    _diagram(group, variables, lang)
    st.subheader(t("app_variables", lang))
    c1, c2 = st.columns([2, 1])
    query = c1.text_input(t("app_search", lang), key="w_var_search")
    only = c2.toggle(t("app_only_sector", lang), key="w_var_only_sector", value=True)
    table = model_view.variable_table(variables)
    if only:
        table = table[table["group"] == group]
    if query:
        mask = pd.Series(False, index=table.index)
        for col in ("vensim_name", "name", "equation", "comment", "unit"):
            mask |= table[col].astype(str).str.contains(query, case=False, regex=False)
        table = table[mask]
    table = table.assign(group=table["group"].map(lambda g: sector_label(g, lang)),
                         kind=table["kind"].map(lambda k: t_or(f"app_kind_{k}", lang, k)))
    if lang != "en":
        # The name in the reader's language first; the model's own name stays beside it.
        # Units in words (the English table keeps the .mdl's notation).
        table = table.assign(unit=table["unit"].map(lambda u: unit_text(str(u), lang)))
        zh = variable_names(lang)
        table.insert(0, "label", table["name"].map(lambda n: zh.get(n, n)))
        st.caption(t("app_model_original", lang))
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "label": st.column_config.TextColumn(t("app_col_label", lang), pinned=True),
        # The names stay in view while the wide table scrolls sideways.
        "vensim_name": st.column_config.TextColumn(t("app_col_name", lang), pinned=True),
        "name": t("app_col_python", lang),
        "group": t("app_col_sector", lang), "kind": t("app_col_kind", lang),
        "unit": t("app_col_unit", lang), "equation": t("app_col_equation", lang),
        "comment": t("app_col_comment", lang), "min": t("app_col_min", lang),
        "max": t("app_col_max", lang), "source": t("app_col_source", lang)})


# ====================================================================== calibration page
#: Columns of the calibration tables whose values are words to translate.
_CAL_VALUES = ("role", "lewis_grade")


def _calibration_table(frame: pd.DataFrame, lang: str) -> None:
    """Draw a table of ``calibrated.toml`` with its headers (and grades) in ``lang``.

    Headers are ``app_cal_col_<column>``, values of :data:`_CAL_VALUES` columns
    ``app_cal_<value>``; a column the file adds later shows under its own name.
    """
    shown = frame.copy()
    if lang != "en":
        # A name in the reader's language before the file's key: the fit series'
        # (``app_cal_series_<key>``), the parameters' registry labels; units in words.
        if "variable" in shown:
            shown.insert(0, "label", shown["variable"].map(
                lambda v: t_or(f"app_cal_series_{v}", lang, str(v))))
        elif "name" in shown:
            zh = variable_names(lang)
            shown.insert(0, "label", shown["name"].map(lambda n: zh.get(n, n)))
        if "unit" in shown:
            shown["unit"] = shown["unit"].map(lambda u: unit_text(str(u), lang))
        if "source" in shown:
            st.caption(t("app_cal_source_original", lang))
    for col in _CAL_VALUES:
        if col in shown:
            shown[col] = shown[col].map(
                lambda v: t_or(f"app_cal_{model_view.py_name(str(v))}", lang, str(v)))
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        c: t("app_col_label", lang) if c == "label" else t_or(f"app_cal_col_{c}", lang, c)
        for c in shown.columns})


def variable_label(name: str, lang: str) -> str:
    """Return the name of a model output in ``lang`` (``app_var_<name>``; else the name)."""
    return t_or(f"app_var_{name}", lang, name)


def calibration_page(lang: str) -> None:
    """Fit charts and statistics of the calibration, and recorded vs simulated."""
    st.title(t("app_calibration_title", lang), anchor=False)
    cal = calibration_view.load()
    if cal.error:
        st.error(md(cal.error))
    if cal.path is None:
        st.info(t("app_not_available", lang, what=t("app_calibrated_file", lang)))
    else:
        st.caption(t("app_calibration_in_force", lang, file=md(cal.path.name)))
        if cal.meta:
            with st.expander(t("app_calibration_meta", lang)):
                if lang != "en":
                    st.caption(t("app_cal_meta_original", lang))
                st.json(cal.meta)
        if cal.fit is not None:
            st.subheader(t("app_fit_statistics", lang))
            _calibration_table(cal.fit, lang)
        if cal.parameters is not None:
            st.subheader(t("app_fitted_parameters", lang))
            _calibration_table(cal.parameters, lang)
    st.subheader(t("app_recorded_vs_simulated", lang))
    variable = st.selectbox(t("app_variable", lang), list(calibration_view.COMPARABLE),
                            key="w_cal_var", format_func=lambda v: variable_label(v, lang))
    base_key = state.run_key(state.preset_settings(state.default_preset()))
    result = cached_run(base_key)
    data = calibration_view.recorded_vs_simulated(result.frame, variable)
    if data is not None:
        data["series"] = data["series"].map({"recorded": t("app_recorded", lang),
                                             "simulated": t("app_simulated", lang)})
        unit = result.units.get(variable, "")
        spec = {
            "data": {"values": data.to_dict("records")}, "height": 320, "width": "container",
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "year", "type": "quantitative", "axis": {"format": "d"},
                      "title": t("chart_axis_year", lang),
                      "scale": {"zero": False, "nice": False}},
                "y": {"field": "value", "type": "quantitative",
                      "title": f"{variable_label(variable, lang)} ({unit_text(unit, lang)})"},
                "color": {"field": "series", "type": "nominal", "title": None,
                          "scale": {"range": [live.HISTORY_COLOUR,
                                              live.mpl.SCENARIO_PALETTE[1]]}},
                "tooltip": [{"field": "series"}, {"field": "year"}, {"field": "value"}]},
            "config": {"font": live.FONT},
        }
        st.vega_lite_chart(spec, width="stretch", key="vl_calibration")
    st.subheader(t("app_fit_report", lang))
    if cal.readme is None and not cal.images:
        st.info(t("app_not_available", lang, what=t("app_fit_report", lang)))
    if lang != "en" and cal.blocks:
        # The report is the calibration step's own text (generated in English).
        st.info(t("app_cal_report_original", lang))
    for kind, text, path in cal.blocks:
        if kind == "img":
            st.image(str(path), caption=text, width="stretch")
        else:
            st.markdown(text)


# ====================================================================== entry point
def _sync_link(lang: str) -> None:
    """Keep the address bar a share link of what is on screen."""
    try:
        current = current_scenario()
    except sc.ScenarioError:
        return
    want = state.encode_link(ss.base.preset, current.settings(), lang, ss.page)
    want.update(state.encode_saved(ss.base.preset, ss.saved, ss.compare))
    if st.query_params.to_dict() != want:
        st.query_params.from_dict(want)


def main() -> None:
    """Draw the app for this session."""
    _init()
    lang = ss.lang
    st.set_page_config(page_title=t("app_title", lang), page_icon="🌱", layout="wide",
                       initial_sidebar_state="expanded")
    sidebar(lang)
    page = ss.page
    if page == "simulator":
        ss.shell = _shell()
        simulator(lang)
        return
    if page == "model":
        model_page(lang)
    else:
        calibration_page(lang)
    _sync_link(lang)


def _shell() -> tuple:
    """Return what the page around the simulator fragment shows (see :func:`simulator`)."""
    s = ss.base.scenario
    return (ss.lang, ss.page, ss.present, ss.base.preset, ss.base.uploaded,
            s.title_en, s.title_zh)


@st.fragment
def simulator(lang: str) -> None:
    """Draw the levers and everything they change: a lever move reruns this, not the page.

    The title, language, page, presentation toggle and preset around it stay as drawn.
    A widget in here whose callback changed one of those (an upload or a saved
    scenario becomes the base, presentation mode is left, an undo restores another
    preset) reruns the whole page instead, so the sidebar never shows a stale preset.
    """
    if ss.shell != _shell():
        st.rerun(scope="app")
    simulator_page(lang, levers=lambda: sidebar_levers(lang))
    _sync_link(lang)
