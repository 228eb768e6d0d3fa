"""One browser session's state: every ``st.session_state`` key the app keeps, in one place.

Streamlit keeps a session's values in ``st.session_state``, a mapping indexed by string
keys.  The pages never index it: they read and write the typed attributes of
:class:`Session`, whose keys and defaults are listed here once (:data:`FIELDS`), and the
values of the widgets Streamlit itself keys (:data:`WIDGETS`) through
:meth:`Session.widget` and :meth:`Session.set_widget`.  ``tests/app/test_session.py``
fails on a ``session_state`` read anywhere else in the app.

State (all keys start ``gp_``)

=================  ==========================================================================
``base``           :class:`~greenpath.app.state.Base`, the preset or uploaded scenario
``values``         lever -> setting in normal form, validated when it entered (a widget,
                   a preset, an upload, a link, a saved scenario)
``saved``          name -> saved settings
``compare``        names of the saved scenarios drawn on the charts
``lang``           language of the pages
``page``           page shown (simulator, model, calibration)
``present``        presentation mode on
``chart``          the slide presentation mode shows
``errors``         messages of the last bad share link, shown until dismissed
``upload``         ``(kind, file name, message or the file's warnings)`` of the last upload
``view``           the charts in view
``hint``           the first-visit hint is shown (until the first lever move)
``undo``           what an "Undo" offer restores (None: no offer)
``sets``           target sets chosen (None: all)
``view_msg``       a message about the chart picker, shown once
``save_msg``       ``(kind, message)`` of the last save, shown once
``shell``          what the page around the simulator fragment showed when last drawn
=================  ==========================================================================

Widget values are copied into the state above by callbacks because Streamlit forgets the
state of widgets that are not drawn (e.g. the levers while the model page is shown).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, overload

import streamlit as st

from greenpath.app import charts as live

T = TypeVar("T")

#: The charts a meeting starts with in view, next to the levers ("graphs to show").
DEFAULT_VIEW = ("co2", "coal", "renewables")

# ------------------------------------------------------------------ widget keys
# Keys of the widgets whose values the app reads or sets through the session state
# (Streamlit keeps a keyed widget's value under its key).
W_LANG = "w_lang"
W_PAGE = "w_page"
W_PRESENT = "w_present"
W_PRESET = "w_preset"
W_UPLOAD = "w_upload"
W_COMPARE = "w_compare"
W_SETS = "w_sets"
W_VIEW = "w_view"
W_CHART = "w_chart"
W_SAVE_NAME = "w_save_name"
W_SAVE_REPLACE = "w_save_replace"
#: The scenario panel's tab bar: the label of the open tab.
W_TABS = "w_tabs"
#: Prefix of a lever's slider key (:func:`lever_key`).
W_LEVER = "w_lever_"
#: Prefix of a lever section's key (:func:`section_key`): whether the section is open.
W_SECTION = "w_section_"
#: Every widget key above (the lever sliders by their prefix).
WIDGETS = (W_LANG, W_PAGE, W_PRESENT, W_PRESET, W_UPLOAD, W_COMPARE, W_SETS, W_VIEW,
           W_CHART, W_SAVE_NAME, W_SAVE_REPLACE, W_TABS, W_LEVER, W_SECTION)


def lever_key(name: str) -> str:
    """Return the widget key of the slider of lever ``name``."""
    return W_LEVER + name


def section_key(section: str) -> str:
    """Return the widget key of lever section ``section`` (true while it is open)."""
    return W_SECTION + section


def _is_widget(key: str) -> bool:
    return key in WIDGETS or key.startswith((W_LEVER, W_SECTION))


# ------------------------------------------------------------------ state keys
@dataclass(frozen=True)
class Field(Generic[T]):
    """One value of the session: its ``st.session_state`` key and its default."""

    key: str
    default: Callable[[], T]

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Field[T]: ...

    @overload
    def __get__(self, obj: Session, owner: type | None = None) -> T: ...

    def __get__(self, obj: Session | None, owner: type | None = None) -> T | Field[T]:
        """Return the session's value (the default while none is set); the field on the class."""
        if obj is None:
            return self
        store = obj.store
        return store[self.key] if self.key in store else self.default()

    def __set__(self, obj: Session, value: T) -> None:
        """Set the session's value."""
        obj.store[self.key] = value


def _none() -> None:
    return None


class Session:
    """The state of one browser session (see the module docstring).

    Parameters
    ----------
    store
        The mapping the values live in; default ``st.session_state`` of the session
        running (one :class:`Session` object can serve every session: it holds nothing).
    """

    base: Field[Any] = Field("gp_base", _none)
    values: Field[dict] = Field("gp_values", dict)
    saved: Field[dict] = Field("gp_saved", dict)
    compare: Field[list] = Field("gp_compare", list)
    lang: Field[str] = Field("gp_lang", lambda: "en")
    page: Field[str] = Field("gp_page", lambda: "simulator")
    present: Field[bool] = Field("gp_present", lambda: False)
    chart: Field[str] = Field("gp_chart", lambda: next(iter(live.CHARTS)))
    errors: Field[list] = Field("gp_errors", list)
    upload: Field[tuple | None] = Field("gp_upload", _none)
    view: Field[list] = Field("gp_view", lambda: list(DEFAULT_VIEW))
    hint: Field[bool] = Field("gp_hint", lambda: True)
    undo: Field[dict | None] = Field("gp_undo", _none)
    sets: Field[list | None] = Field("gp_sets", _none)
    view_msg: Field[str | None] = Field("gp_view_msg", _none)
    save_msg: Field[tuple | None] = Field("gp_save_msg", _none)
    shell: Field[tuple | None] = Field("gp_shell", _none)

    def __init__(self, store: MutableMapping[str, Any] | None = None) -> None:
        self._store = store

    @property
    def store(self) -> MutableMapping[str, Any]:
        """The mapping the values live in."""
        if self._store is None:
            return cast(MutableMapping[str, Any], st.session_state)
        return self._store

    @classmethod
    def fields(cls) -> dict[str, Field]:
        """Return every value of the session: attribute name -> :class:`Field`."""
        return {n: f for n, f in vars(cls).items() if isinstance(f, Field)}

    @property
    def started(self) -> bool:
        """Whether this session's values were set (:meth:`start`)."""
        return Session.base.key in self.store

    def start(self, base: Any) -> None:
        """Give a new session every value's default and ``base`` as the scenario in use."""
        for name, f in self.fields().items():
            if name != "base":
                setattr(self, name, f.default())
        self.base = base

    def take(self, name: str) -> Any:
        """Return a value shown once (``view_msg``, ``save_msg``) and clear it."""
        f = self.fields()[name]
        return self.store.pop(f.key, None)

    # -------------------------------------------------------------- widgets
    def widget(self, key: str, default: Any = None) -> Any:
        """Return the value of the widget ``key`` (one of :data:`WIDGETS`), or ``default``."""
        if not _is_widget(key):
            raise KeyError(f"{key!r} is not a widget key of the app; allowed {', '.join(WIDGETS)}")
        return self.store.get(key, default)

    def set_widget(self, key: str, value: Any) -> None:
        """Set the value the widget ``key`` (one of :data:`WIDGETS`) shows when drawn."""
        if not _is_widget(key):
            raise KeyError(f"{key!r} is not a widget key of the app; allowed {', '.join(WIDGETS)}")
        self.store[key] = value
