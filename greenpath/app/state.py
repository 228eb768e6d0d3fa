"""Scenario settings as the app holds them: run keys, share links, saved scenarios.

Nothing here imports Streamlit, so every rule is tested directly.

Settings
    ``name -> float | (years, values)`` for levers and uncertainties, as
    :meth:`greenpath.scenarios.scenario.Scenario.settings` returns them.
Run key
    The hashable identity of a run: the settings that differ from the model defaults,
    sorted, tables as tuples.  Two sessions with the same settings share one cached
    result whatever the scenarios are called; the baseline is the empty key.
    It is the app's run request: built from settings validated where they entered
    (:func:`lever_setting`, a preset, an upload, a link), it goes to the engine as it is
    (:meth:`greenpath.app.runner.ModelPool.run`) and is not validated again.
Lever move
    widget value -> :func:`lever_setting` (rounded by the page, validated once, normal
    form) in the session's lever values -> :func:`request`: the levers that differ from
    the base over its settings (normal form, nothing normalised again) -> their run key
    -> the engine's keyword arguments (:func:`run_kwargs`) -> the engine.
Share link
    ``?scenario=<preset>&lang=zh&page=simulator&wind_build_rate=276`` -- only the
    settings that differ from the preset are written.  Decoding validates every value
    with the scenario file rules and reports every problem; a link with any bad
    setting changes nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from greenpath.model import registry as reg
from greenpath.scenarios import scenario as sc
from greenpath.scenarios import settings as st
from greenpath.scenarios.settings import NormalSetting as Setting
from greenpath.scenarios.settings import NormalTable as Table  # noqa: F401  (the pages use state.Table)
from greenpath.scenarios.settings import RunKey

#: Query-parameter names that are not model settings.
RESERVED_QUERY = ("scenario", "lang", "page", "compare")
#: Saved scenarios in a share link: ``s1=Wind 500&s1.wind_build_rate=500`` (the name, then
#: each setting that differs from the link's preset); ``compare=1,2`` those drawn.
_SAVED_QUERY = re.compile(r"^s(\d{1,2})(?:\.(.+))?$")
LINK_SOURCE = "link"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.\-]+")


class LinkError(ValueError):
    """A share link that cannot be applied; ``messages`` names each bad parameter."""

    def __init__(self, messages: Sequence[str]):
        self.messages = list(messages)
        super().__init__("; ".join(self.messages))


# ------------------------------------------------------------------ settings and keys
# One definition of a setting, its equality and its run key, shared with the TOML writer,
# the wedges and the batch: greenpath.scenarios.settings.
settable, defaults, normalise, same = st.settable, st.defaults, st.normalise, st.same
full, diff, run_key, key_settings = st.full, st.diff, st.run_key, st.key_settings
run_kwargs = st.run_kwargs
#: How a lever value from a widget is named in a validation error.
LEVER_SOURCE = "app"


def lever_setting(name: str, value: object) -> Setting:
    """Return a lever value entering the session from a widget, validated, in normal form.

    The one validation of a lever move: the scenario-file rules
    (:func:`greenpath.scenarios.scenario.validate`: a lever of the registry, a number in
    its range, a whole year for a year).  Everything after it (the run key, the scenario
    on screen, the engine run) takes the value as it is.

    Raises
    ------
    greenpath.scenarios.ScenarioError
        The value breaks a rule; the message names the lever, the value and what is allowed.
    """
    _, params, tables = sc.validate({"levers": {name: value}}, LEVER_SOURCE)
    return normalise({**params, **tables}[name])


def key_scenario(key: RunKey, name: str = "custom", title_en: str = "",
                 title_zh: str = "") -> sc.Scenario:
    """Return a :class:`~greenpath.scenarios.scenario.Scenario` holding the settings of ``key``."""
    params, tables = st.split(key)
    return sc.Scenario(name=safe_name(name), path=None, title_en=title_en, title_zh=title_zh,
                       params=params, tables=tables)


def safe_name(text: str, fallback: str = "my_scenario") -> str:
    """``text`` made usable as a scenario name (letters, digits, ``_ - .``)."""
    name = _SAFE_NAME.sub("_", text.strip()).strip("_.-")
    return name or fallback


# ------------------------------------------------------------------ the scenario in use
@dataclass
class Base:
    """The scenario the levers start from: a shipped preset or an uploaded file.

    Attributes
    ----------
    scenario
        The resolved scenario (its ``settings()`` are what "revert" returns to).
    preset
        The shipped preset a share link or a saved file refers to: the scenario itself
        when shipped, else its ``extends`` (None: the model defaults).
    uploaded
        True for a scenario read from an uploaded file.
    """

    scenario: sc.Scenario
    preset: str | None
    uploaded: bool = False

    @cached_property
    def settings(self) -> dict[str, Setting]:
        """Every settable parameter as the scenario gives it (defaults where it is silent), normal form."""
        return full(self.scenario.settings())


def load_preset(name: str) -> Base:
    """Return a shipped preset as a :class:`Base`."""
    return Base(scenario=sc.load(name), preset=name)


def preset_settings(name: str | None) -> dict[str, Setting]:
    """Return settings of a shipped preset (empty for None: the model defaults)."""
    return {} if name is None else {k: normalise(v) for k, v in sc.load(name).settings().items()}


def lever_values(base: Base) -> dict[str, Setting]:
    """Return the value of every lever in ``base`` (tables stay tables)."""
    settings = base.settings
    return {n: settings[n] for n in reg.levers()}


def changes(base: Base, levers: Mapping[str, Setting]) -> dict[str, Setting]:
    """Return the lever values that differ from what ``base`` gives ("unsaved changes").

    ``levers`` are the session's values: validated and in normal form.
    """
    start = base.settings
    return {n: v for n, v in levers.items() if not same(v, start[n])}


def request(base: Base, levers: Mapping[str, Setting]) -> RunKey:
    """Return the run request of ``base`` with ``levers``: its run key.

    The levers that differ from the base over its settings, in normal form; the same key
    as :func:`run_key` of :func:`compose`'s settings, with no setting validated or
    normalised again.
    """
    return st.normal_key({**base.settings, **changes(base, levers)})


def compose(base: Base, levers: Mapping[str, Setting], name: str = "current",
            **meta: str) -> sc.Scenario:
    """Compose the current scenario: ``base`` with the lever values that differ from it.

    ``levers`` were validated where they entered the session (:func:`lever_setting`,
    the base's own settings, a link), so :meth:`Scenario.derive` takes them as they are.
    """
    params, tables = st.split(changes(base, levers))
    return base.scenario.derive(safe_name(name), params=params, tables=tables, checked=True,
                                **meta)


def changed_levers(base: Base, levers: Mapping[str, Setting]) -> list[str]:
    """Levers whose value differs from ``base`` ("unsaved changes")."""
    return list(changes(base, levers))


def scenario_toml(current: sc.Scenario, base: Base) -> str:
    """TOML text of ``current``, written relative to the base's shipped preset.

    Without a shipped preset (an upload extending none) every setting that differs from
    the model defaults is written and the file extends nothing: the uploaded file's own
    name is not a scenario another user can load.
    """
    if base.preset:
        return sc.to_toml(current, parent=sc.load(base.preset))
    return sc.to_toml(sc.Scenario(**{**current.__dict__, "extends": None}), parent=None)


def saved_toml(name: str, settings: Mapping[str, object], preset: str | None) -> str:
    """TOML text of a saved scenario: its own settings, named and titled after it.

    Written relative to ``preset`` (the base's shipped preset; None: the model defaults),
    whatever the levers show now, so the file holds what its name says.
    """
    scenario = key_scenario(run_key(settings), name, title_en=name, title_zh=name)
    return sc.to_toml(scenario, parent=sc.load(preset) if preset else None)


def from_upload(data: bytes, file_name: str, max_bytes: int = sc.MAX_FILE_BYTES,
                saved: Mapping[str, Mapping[str, object]] | None = None) -> Base:
    """Validate an uploaded scenario file (never executed: TOML data only).

    Its ``extends`` may name a shipped scenario or one of the user's ``saved`` scenarios
    (name -> settings, the session's own), never a file on the server.

    Raises
    ------
    greenpath.scenarios.ScenarioError
        Too large, not UTF-8 text, not valid TOML, or breaking a scenario rule; the
        message names the file, the key, the value and what is allowed.
    """
    if len(data) > max_bytes:
        raise sc.ScenarioError(
            f"{file_name}: {len(data):,} bytes is larger than the {max_bytes:,} bytes "
            "allowed for a scenario file"
        )
    parents = {name: sc.Scenario(name=name, path=None, title_en=name, title_zh=name,
                                 params=st.split(settings)[0], tables=st.split(settings)[1],
                                 chain=[name], chain_paths=[None])
               for name, settings in (saved or {}).items() if sc.NAME_PATTERN.fullmatch(name)}
    scenario = sc.from_text(sc.decode(data, file_name), source=file_name, parents=parents)
    preset = (scenario.extends if scenario.extends in sc.available() and scenario.extends not in parents
              else None)
    return Base(scenario=scenario, preset=preset, uploaded=True)


# ------------------------------------------------------------------ share links
def format_setting(value: Setting) -> str:
    """Format a setting as query text: ``276`` or ``2021:0.02;2025:0.02;2026:0``."""
    def num(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else repr(float(x))

    if isinstance(value, tuple):
        return ";".join(f"{int(y)}:{num(v)}" for y, v in zip(*value, strict=True))
    return num(value)


def _parse_setting(text: str, where: str = LINK_SOURCE) -> object:
    """Query text -> a number, a ``{year: value}`` dict, or the text itself (invalid).

    Raises
    ------
    greenpath.scenarios.ScenarioError
        A year given twice (``2021:60;2021:70``), as a scenario file's year table does.
    """
    text = text.strip()
    if ":" in text:
        table: dict[str, object] = {}
        for part in text.split(";"):
            year, sep, value = part.partition(":")
            if not sep or ":" in value:  # not year:value (no nested tables: no recursion)
                return text
            if year.strip() in table:
                raise sc.ScenarioError(f"{where} = {text!r}: year {year.strip()} is given twice; "
                                       "give each year once")
            table[year.strip()] = _parse_setting(value)
        return table
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def default_preset() -> str:
    """Return the preset a link without ``scenario`` refers to: the baseline."""
    names = sc.available()
    return "baseline" if "baseline" in names or not names else names[0]


def encode_link(preset: str | None, settings: Mapping[str, object], lang: str,
                page: str) -> dict[str, str]:
    """Query parameters restoring ``settings`` from ``preset`` (only what differs).

    A scenario without a shipped preset (an upload that extends none) is written
    relative to the baseline: every setting that differs from it is in the link.
    """
    preset = preset or default_preset()
    out = {"scenario": preset, "lang": lang, "page": page}
    changed = diff(settings, preset_settings(preset))
    for name in sorted(changed, key=list(settable()).index):
        out[name] = format_setting(changed[name])
    return out


@dataclass
class LinkRequest:
    """What a share link asks for; ``None`` fields are left as they are."""

    preset: str | None = None
    settings: dict[str, Setting] = field(default_factory=dict)
    lang: str | None = None
    page: str | None = None
    #: Valid settings of a link that was not applied because another one was bad (the
    #: message lists them, so the user knows what to fix and what was fine).
    not_applied: dict[str, Setting] = field(default_factory=dict)

    @property
    def sets_scenario(self) -> bool:
        """Whether the link names a scenario or any setting."""
        return self.preset is not None or bool(self.settings)


def decode_link(query: Mapping[str, str | Sequence[str]], langs: Sequence[str],
                pages: Sequence[str]) -> tuple[LinkRequest, list[str]]:
    """Read share-link query parameters.

    Parameters
    ----------
    query
        Parameter -> value, or -> every value it was given
        (``{k: st.query_params.get_all(k)}``): a parameter given more than once is an
        error, never "the last one wins".

    Returns
    -------
    (LinkRequest, list of str)
        The request and one message per problem.  When any scenario parameter is bad,
        the request carries no scenario at all (the current scenario stays untouched);
        a bad ``lang`` or ``page`` is dropped on its own.
    """
    errors: list[str] = []
    scenario_errors: list[str] = []
    single: dict[str, str] = {}
    for key, value in query.items():
        values = [value] if isinstance(value, str) else list(value)
        if len(values) == 1:
            single[key] = values[0]
            continue
        if not values:
            continue
        message = (f"{LINK_SOURCE}: {key} is given {len(values)} times "
                   f"({', '.join(repr(v) for v in values)}); give it once")
        (errors if key in ("lang", "page") else scenario_errors).append(message)
    query = single
    request = LinkRequest()
    lang = query.get("lang")
    if lang is not None:
        if lang in langs:
            request.lang = lang
        else:
            errors.append(f"{LINK_SOURCE}: lang = {lang!r}: allowed {', '.join(langs)}")
    page = query.get("page")
    if page is not None:
        if page in pages:
            request.page = page
        else:
            errors.append(f"{LINK_SOURCE}: page = {page!r}: allowed {', '.join(pages)}")
    preset = query.get("scenario")
    presets = sc.available()
    if preset is not None and preset not in presets:
        scenario_errors.append(
            f"{LINK_SOURCE}: scenario = {preset!r}: no such preset; allowed "
            f"{', '.join(presets)}{reg.suggest(preset, presets)}"
        )
    registry = reg.load_registry()
    overrides: dict[str, Setting] = {}
    for key, text in query.items():
        if key in RESERVED_QUERY or _SAVED_QUERY.match(key):
            continue
        section = "uncertainties" if key in registry and registry[key].kind == "uncertainty" \
            else "levers"
        try:
            parsed = _parse_setting(text, f"{LINK_SOURCE}: [{section}] {key}")
            _, params, tables = sc.validate({section: {key: parsed}}, LINK_SOURCE)
        except sc.ScenarioError as exc:
            scenario_errors.append(str(exc))
            continue
        overrides.update({k: normalise(v) for k, v in params.items()})
        overrides.update({k: normalise(v) for k, v in tables.items()})
    errors.extend(scenario_errors)
    if not scenario_errors and (preset is not None or overrides):
        request.preset = preset or default_preset()
        request.settings = overrides
    elif scenario_errors:
        request.not_applied = overrides
    return request, errors


# ------------------------------------------------------------------ saved scenarios in links
def encode_saved(preset: str | None, saved: Mapping[str, Mapping[str, object]],
                 compare: Sequence[str]) -> dict[str, str]:
    """Query parameters carrying the saved scenarios (see :data:`_SAVED_QUERY`).

    Each saved scenario is written as the settings that differ from ``preset`` (the
    link's ``scenario``), so the link restores exactly what was saved.
    """
    preset = preset or default_preset()
    base = preset_settings(preset)
    order = list(settable())
    out: dict[str, str] = {}
    names = list(saved)
    for i, name in enumerate(names, 1):
        out[f"s{i}"] = name
        changed = diff(saved[name], base)
        for key in sorted(changed, key=order.index):
            out[f"s{i}.{key}"] = format_setting(changed[key])
    shown = [str(names.index(n) + 1) for n in compare if n in saved]
    if shown:
        out["compare"] = ",".join(shown)
    return out


def decode_saved(query: Mapping[str, str | Sequence[str]], preset: str | None,
                 ) -> tuple[dict[str, dict[str, Setting]], list[str], list[str]]:
    """Read the saved scenarios of a share link.

    Returns
    -------
    (dict, list of str, list of str)
        Name -> settings (the preset's with the link's changes), the names to draw,
        and one message per problem.  A saved scenario with any bad setting is left
        out (its message says so); the others are kept.
    """
    base = preset_settings(preset or default_preset())
    registry = reg.load_registry()
    names: dict[int, str] = {}
    parts: dict[int, dict[str, str]] = {}
    errors: list[str] = []
    for key, value in query.items():
        match = _SAVED_QUERY.match(key)
        if not match:
            continue
        values = [value] if isinstance(value, str) else list(value)
        if len(values) != 1:
            errors.append(f"{LINK_SOURCE}: {key} is given {len(values)} times; give it once")
            continue
        index, setting = int(match.group(1)), match.group(2)
        if setting is None:
            names[index] = values[0].strip()
        else:
            parts.setdefault(index, {})[setting] = values[0]
    out: dict[str, dict[str, Setting]] = {}
    bad: set[int] = set()
    for index in sorted(set(names) | set(parts)):
        name = names.get(index, "")
        if not name:
            errors.append(f"{LINK_SOURCE}: saved scenario s{index} has no name (s{index}=...)")
            bad.add(index)
            continue
        settings: dict[str, Setting] = dict(base)
        problems = []
        for key, text in parts.get(index, {}).items():
            section = ("uncertainties" if key in registry
                       and registry[key].kind == "uncertainty" else "levers")
            try:
                _, params, tables = sc.validate({section: {key: _parse_setting(text)}},
                                                f"{LINK_SOURCE}, saved scenario {name!r}")
            except sc.ScenarioError as exc:
                problems.append(str(exc))
                continue
            settings.update({k: normalise(v) for k, v in {**params, **tables}.items()})
        if problems or name in out:
            if name in out:
                problems.append(f"{LINK_SOURCE}: saved scenario {name!r} is given twice")
            errors.extend(problems)
            errors.append(f"{LINK_SOURCE}: saved scenario {name!r} was not restored")
            bad.add(index)
            continue
        out[name] = settings
    compare: list[str] = []
    asked = query.get("compare")
    if isinstance(asked, str):
        listed: str | None = asked
    else:  # every value given (st.query_params.get_all)
        given = list(asked or [])
        if len(given) > 1:
            errors.append(f"{LINK_SOURCE}: compare is given {len(given)} times; give it once")
        listed = given[0] if len(given) == 1 else None
    if listed and listed.strip():
        for part in listed.split(","):
            index = int(part) if part.strip().isdigit() else -1
            if index in names and index not in bad:
                compare.append(names[index])
            elif index not in bad:
                errors.append(f"{LINK_SOURCE}: compare = {listed!r}: {part.strip()!r} is not "
                              f"the number of a saved scenario in the link")
    return out, compare, errors
