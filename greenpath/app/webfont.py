"""The browser's CJK font: a small subset for the app's own text, the full font as fallback.

The app serves Noto Sans CJK SC (16.4 MB, ``greenpath/outputs/fonts/``) so Chinese renders
in browsers without a system CJK font.  Served whole, every new browser session
downloaded it, even in English (the language switch says "中文"), and Streamlit's server
gzip-compressed the 16 MB again for every request: measured 5.9-7.6 s per page load at
load average 10, on the server's event loop, which answers no other user meanwhile.

Now two faces of the same family are declared (``[[theme.fontFaces]]`` in
``.streamlit/config.toml``): the full font first, then :data:`SUBSET` (every CJK
character of the app's own text: strings, labels, presets, targets, model comments; a
WOFF file of a few hundred kB, which the server sends as it is, without compressing it
again).  A browser checks the faces of a family in reverse order of declaration, so it
takes the subset for any character in it and downloads the full font only for a
character that is not (e.g. in the title of an uploaded scenario).

``python scripts/make_web_font.py`` writes the subset again; a test fails when the app's
text holds a character the subset lacks.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FONTS = ROOT / "greenpath" / "outputs" / "fonts"
FULL = FONTS / "NotoSansCJKsc-Regular.otf"
SUBSET = FONTS / "NotoSansCJKsc-app.woff"
#: Where the app's text lives: string tables, code, registry, presets, targets, model.
SOURCES = ("greenpath", "scenarios", "targets", "model")
SUFFIXES = (".toml", ".csv", ".py", ".md", ".mdl", ".json", ".txt", ".dot")
#: The ``unicodeRange`` of both faces (the config's; CJK, kana, full-width forms).
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
