"""One translation table for every user-facing string (app, charts, reports).

Strings live in TOML files in this folder (``app.toml``, ``charts.toml``, ...), one
table per key with ``en`` and ``zh`` entries::

    [co2_emissions]
    en = "CO2 emissions"
    zh = "二氧化碳排放"

All files are merged; a key defined twice is an error, so two features cannot silently
disagree about a label.  Lever and parameter labels come from the registry
(``label_en`` / ``label_zh``) and need no entry here.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from pathlib import Path

LANGS = ("en", "zh")
_DIR = Path(__file__).parent


class TranslationError(KeyError):
    """A missing key or language, or a key defined twice."""


@lru_cache(maxsize=1)
def table() -> dict[str, dict[str, str]]:
    """All strings, merged from every TOML file in this folder."""
    merged: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for path in sorted(_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for key, entry in data.items():
            if key in merged:
                raise TranslationError(f"{path.name}: key {key!r} already defined in {origin[key]}")
            missing = [lang for lang in LANGS if lang not in entry]
            if missing:
                raise TranslationError(f"{path.name}: key {key!r} lacks {missing}")
            merged[key] = {lang: str(entry[lang]) for lang in LANGS}
            origin[key] = path.name
    return merged


def t(key: str, lang: str = "en", **fmt) -> str:
    """Return the string ``key`` in ``lang``, formatted with ``fmt``."""
    if lang not in LANGS:
        raise TranslationError(f"language {lang!r} not one of {LANGS}")
    try:
        text = table()[key][lang]
    except KeyError:
        raise TranslationError(f"no translation for {key!r}") from None
    return text.format(**fmt) if fmt else text


def has(key: str) -> bool:
    """Return whether the table holds ``key``."""
    return key in table()


def t_or(key: str, lang: str, default: str, **fmt) -> str:
    """Return the string ``key`` in ``lang``, or ``default`` when the table lacks ``key``.

    For labels of data the app shows but does not own (target sets, model sectors,
    calibration columns): a name added to the data later shows as it is until the
    table gets an entry (the tests list the names that have none).
    """
    return t(key, lang, **fmt) if has(key) else default


def unit_key(unit: str) -> str:
    """Return the key of a unit's words: ``chart_unit_`` plus the unit in lower snake case."""
    # "%" is a word of its own: "%/Year" must not become the key of "Year".
    return "chart_unit_" + re.sub(r"\W+", "_", unit.lower().replace("%", "pct")).strip("_")


def unit_text(unit: str, lang: str) -> str:
    """Put a registry or target unit in words (``Dmnl`` -> share 0-1, ``1/Year`` -> per year).

    A unit without an entry (``%``) is returned as it is.
    """
    return t_or(unit_key(unit), lang, unit)
