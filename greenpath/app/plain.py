"""User-supplied text shown as plain text in Streamlit's Markdown.

Streamlit renders Markdown in ``st.markdown``, ``st.error`` / ``st.warning`` /
``st.success``, ``st.caption``, widget labels and ``help`` tooltips.  HTML is escaped
there, but links, remote images (``![](https://...)``), emphasis, headings and
Streamlit's colour and icon directives are not.  Every string the user supplied --
titles and names from uploads and saved scenarios, file names, key names and values
quoted in error messages from uploads and share links -- goes through :func:`md` before
it reaches one of those calls, so it shows exactly as typed.
"""

from __future__ import annotations

import re

# CommonMark lets a backslash escape any ASCII punctuation character.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
#: WORD JOINER: invisible, no line break; put where GitHub-flavoured Markdown would
#: otherwise turn text into a link.
WORD_JOINER = "\u2060"
# Streamlit's Markdown finds bare URLs (``https://``, ``www.``) and e-mail addresses in
# the text after the escapes are resolved, so escapes cannot stop them: an invisible
# word joiner inside the pattern does.
_AUTOLINK = re.compile(r"(?i)(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)")


def md(text: object) -> str:
    """Return ``text`` with every Markdown-active character escaped (shown as typed).

    Line breaks become Markdown line breaks, so a multi-line message keeps its lines
    and a line cannot start a heading, list or quote.  A bare URL or e-mail address gets
    an invisible word joiner (after ``:``, ``www`` or ``@``), so it is not made a link.
    """
    lines = _AUTOLINK.sub(WORD_JOINER, str(text)).splitlines() or [""]
    return "  \n".join(_PUNCTUATION.sub(r"\\\1", line) for line in lines)


def shown(markdown: str) -> str:
    """Return the text :func:`md` output reads as: the escapes and line-break spaces removed.

    Only the inverse of :func:`md` (for tests and logs), not a Markdown renderer.
    """
    return _ESCAPED.sub(r"\1", markdown.replace("  \n", "\n")).replace(WORD_JOINER, "")


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


__all__ = ["WORD_JOINER", "md", "shown"]
