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


def md(text: object) -> str:
    """Return ``text`` with every Markdown-active character escaped (shown as typed).

    Line breaks become Markdown line breaks, so a multi-line message keeps its lines
    and a line cannot start a heading, list or quote.
    """
    lines = str(text).splitlines() or [""]
    return "  \n".join(_PUNCTUATION.sub(r"\\\1", line) for line in lines)


__all__ = ["md", "shown"]


def shown(markdown: str) -> str:
    """Return the text :func:`md` output reads as: the escapes and line-break spaces removed.

    Only the inverse of :func:`md` (for tests and logs), not a Markdown renderer.
    """
    return _ESCAPED.sub(r"\1", markdown.replace("  \n", "\n"))


_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
