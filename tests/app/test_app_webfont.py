"""The browser's CJK font (greenpath/app/webfont.py): a subset serves the app's own text.

A page load used to download the whole 16 MB font, in English too, and the server
compressed it again for every request (seconds of its event loop per new session).
"""

from __future__ import annotations

import tomllib

from greenpath.app import webfont

CONFIG = webfont.ROOT / ".streamlit" / "config.toml"


def test_the_subset_has_every_cjk_character_of_the_app_text():
    """Fails when a new string holds a character the subset lacks: run scripts/make_web_font.py."""
    wanted = {ord(c) for c in webfont.project_characters()}
    assert len(wanted) > 500  # the Chinese string table, labels, presets: not an empty scan
    have = webfont.covered(webfont.SUBSET)
    full = webfont.covered(webfont.FULL)
    missing = sorted(chr(c) for c in (wanted & full) - have)
    assert not missing, f"not in {webfont.SUBSET.name}: {''.join(missing)}"
    assert webfont.SUBSET.stat().st_size < webfont.FULL.stat().st_size / 20


def test_the_config_shares_the_ranges_out_between_subset_and_full_font():
    """The subset's range is exactly what it maps; the full font's range is the rest."""
    faces = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["theme"]["fontFaces"]
    ours = {f["url"].rsplit("/", 1)[-1]: f for f in faces
            if f["family"] == "Greenpath Noto Sans SC"}
    assert set(ours) == {webfont.FULL.name, webfont.SUBSET.name}
    for name in ours:
        assert (webfont.ROOT / "static" / name).is_file()
    sub = webfont.parse_ranges(ours[webfont.SUBSET.name]["unicodeRange"])
    full = webfont.parse_ranges(ours[webfont.FULL.name]["unicodeRange"])
    assert sub == set(webfont.subset_codes()), "run scripts/make_web_font.py"
    assert not sub & full
    assert sub | full == {c for lo, hi in webfont.RANGES for c in range(lo, hi + 1)}


def test_css_ranges_round_trip():
    codes = {0x4E2D, 0x6587, 0x6588, 0x6589, 0x3000}
    assert webfont.css_ranges(codes) == "U+3000, U+4E2D, U+6587-6589"
    assert webfont.parse_ranges(webfont.css_ranges(codes)) == codes


def test_the_language_switch_is_inside_the_subset():
    """The English page shows "中文" (the language switch): it must not need the full font."""
    have = webfont.covered(webfont.SUBSET)
    assert all(webfont.in_range(c) and ord(c) in have for c in "中文")
