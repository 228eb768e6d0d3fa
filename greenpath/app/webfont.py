"""The browser's CJK font: a small subset for the app's own text, the full font as fallback.

The app serves Noto Sans CJK SC (16.4 MB, ``greenpath/outputs/fonts/``) so Chinese renders
in browsers without a system CJK font.  Served whole, every new browser session
downloaded it, even in English (the language switch says "中文"), and Streamlit's server
gzip-compressed the 16 MB again for every request: measured 5.9-7.6 s per page load at
load average 10, on the server's event loop, which answers no other user meanwhile.

Now two faces of the same family are declared (``[[theme.fontFaces]]`` in
``.streamlit/config.toml``) with ``unicodeRange`` values that do not overlap:
:data:`SUBSET` for exactly the code points it maps (every CJK character of the app's own
text: strings, labels, presets, targets, model comments; a WOFF file of a few hundred
kB, which the server sends as it is, without compressing it again), the full font for
the rest of the CJK ranges.  A browser downloads a face only for characters in its
range, so the full font only for a character outside the subset (e.g. in the title of
an uploaded scenario).

``python scripts/make_web_font.py`` writes the subset and both ranges in the config
again; a test fails when the app's text holds a character the subset lacks or the
config's ranges do not match the subset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FONTS = ROOT / "greenpath" / "outputs" / "fonts"
FULL = FONTS / "NotoSansCJKsc-Regular.otf"
CONFIG = ROOT / ".streamlit" / "config.toml"
SUBSET = FONTS / "NotoSansCJKsc-app.woff"
#: Where the app's text lives: string tables, code, registry, presets, targets, model.
SOURCES = ("greenpath", "scenarios", "targets", "model")
SUFFIXES = (".toml", ".csv", ".py", ".md", ".mdl", ".json", ".txt", ".dot")
#: The ranges the two faces share out (CJK, kana, full-width forms).
RANGES = ((0x2E80, 0x2FFF), (0x3000, 0x303F), (0x3040, 0x30FF), (0x3100, 0x31FF),
          (0x3200, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF))
#: Always in the subset: CJK punctuation and full-width forms (small, and any text uses them).
ALWAYS = ((0x3000, 0x303F), (0xFF00, 0xFFEF))


def in_range(ch: str) -> bool:
    """Return whether ``ch`` is a character the CJK faces are declared for."""
    return any(lo <= ord(ch) <= hi for lo, hi in RANGES)


def project_characters(root: Path = ROOT) -> set[str]:
    """Every character of the declared ranges in the app's text files."""
    chars: set[str] = set()
    for name in SOURCES:
        for path in sorted((root / name).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            chars |= {c for c in set(text) if in_range(c)}
    return chars


def make(out: Path = SUBSET, full: Path = FULL) -> tuple[int, int]:
    """Write the subset WOFF of :func:`project_characters` (and :data:`ALWAYS`) to ``out``.

    Returns (characters asked for, bytes written).
    """
    from fontTools import subset

    codes = {ord(c) for c in project_characters()}
    for lo, hi in ALWAYS:
        codes |= set(range(lo, hi + 1))
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    font = subset.load_font(str(full), options)
    sub = subset.Subsetter(options)
    sub.populate(unicodes=sorted(codes))
    sub.subset(font)
    subset.save_font(font, str(out), options)
    return len(codes), out.stat().st_size


def covered(path: Path = SUBSET) -> set[int]:
    """Code points the font file at ``path`` maps to a glyph."""
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return set(font.getBestCmap())


def subset_codes(path: Path = SUBSET) -> list[int]:
    """Return the code points of the declared ranges that the subset maps (its ``unicodeRange``)."""
    return sorted(c for c in covered(path) if in_range(chr(c)))


def full_codes(subset: Iterable[int]) -> list[int]:
    """Return the rest of the declared ranges: the full font's ``unicodeRange``."""
    taken = set(subset)
    return [c for lo, hi in RANGES for c in range(lo, hi + 1) if c not in taken]


def css_ranges(codes: Iterable[int]) -> str:
    """Return code points as a CSS ``unicode-range`` value (``U+4E2D, U+6587-6589``)."""
    parts: list[str] = []
    run: list[int] = []
    for c in sorted(set(codes)):
        if run and c == run[-1] + 1:
            run[-1] = c
            continue
        if run:
            parts.append(_part(*run))
        run = [c, c]
    if run:
        parts.append(_part(*run))
    return ", ".join(parts)


def parse_ranges(text: str) -> set[int]:
    """Return the code points of a CSS ``unicode-range`` value."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().removeprefix("U+").partition("-")
        out.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    return out


def _part(lo: int, hi: int) -> str:
    return f"U+{lo:04X}" if lo == hi else f"U+{lo:04X}-{hi:04X}"


def write_config(config: Path = CONFIG) -> None:
    """Set the ``unicodeRange`` of the two faces in the app's config to match the subset."""
    codes = subset_codes()
    ranges = {FULL.name: css_ranges(full_codes(codes)), SUBSET.name: css_ranges(codes)}
    text = config.read_text(encoding="utf-8")
    for name, value in ranges.items():
        pattern = re.compile(r'(url = "app/static/' + re.escape(name)
                             + r'"\n(?:[a-z]+ = .*\n)*?unicodeRange = )".*"')
        text, n = pattern.subn(lambda m, v=value: f'{m.group(1)}"{v}"', text)  # type: ignore[misc]
        if n != 1:
            raise ValueError(f"{config}: no [[theme.fontFaces]] with url app/static/{name} "
                             "and a unicodeRange under it")
    config.write_text(text, encoding="utf-8")
