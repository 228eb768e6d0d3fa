"""The browser's CJK font (greenpath/app/webfont.py): a subset serves the app's own text.

A page load used to download the whole 16 MB font, in English too, and the server
compressed it again for every request (seconds of its event loop per new session).
"""

from __future__ import annotations

import tomllib

from greenpath.app import webfont

CONFIG = webfont.ROOT / ".streamlit" / "config.toml"


def _ranges(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().removeprefix("U+").partition("-")
        out.append((int(lo, 16), int(hi or lo, 16)))
    return out


def test_the_subset_has_every_cjk_character_of_the_app_text():
    """Fails when a new string holds a character the subset lacks: run scripts/make_web_font.py."""
    wanted = {ord(c) for c in webfont.project_characters()}
    assert len(wanted) > 500  # the Chinese string table, labels, presets: not an empty scan
    have = webfont.covered(webfont.SUBSET)
    full = webfont.covered(webfont.FULL)
    missing = sorted(chr(c) for c in (wanted & full) - have)
    assert not missing, f"not in {webfont.SUBSET.name}: {''.join(missing)}"
    assert webfont.SUBSET.stat().st_size < webfont.FULL.stat().st_size / 20


def test_the_config_declares_the_full_font_first_and_the_subset_last():
    """Browsers search a family's faces in reverse order: the subset must come last."""
    faces = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["theme"]["fontFaces"]
    ours = [f for f in faces if f["family"] == "Greenpath Noto Sans SC"]
    assert [f["url"].rsplit("/", 1)[-1] for f in ours] == [webfont.FULL.name, webfont.SUBSET.name]
    for face in ours:
        assert _ranges(face["unicodeRange"]) == list(webfont.RANGES)
        assert (webfont.ROOT / "static" / face["url"].rsplit("/", 1)[-1]).is_file()


def test_the_language_switch_is_inside_the_subset():
    """The English page shows "中文" (the language switch): it must not need the full font."""
    have = webfont.covered(webfont.SUBSET)
    assert all(webfont.in_range(c) and ord(c) in have for c in "中文")
